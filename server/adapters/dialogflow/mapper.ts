import { createHash } from "node:crypto";
import {
  ButtonSchema,
  ContentUrlSchema,
  type Attachment,
  type Button,
  type ChatMessage,
  type ConversationId,
} from "../../../protocol/index.js";
import type { BotInput, BotOutput } from "../../core/bot.js";

export const BOT_NAME = "dialogflow";

/** Dialogflow refuses a text query longer than this ("Input text exceeds 256 characters."), counted in UTF-16 units. */
export const MAX_QUERY_TEXT = 256;
/** The longest session id Dialogflow takes, in bytes. */
export const MAX_SESSION_ID_BYTES = 36;

/** The event Dialogflow receives when the agent side closed and the conversation is the bot's again. */
export const AGENT_CLOSED_EVENT = "liaison_agent_closed";
/** The event Dialogflow receives for a customer's message that holds files and no text. */
export const FILE_EVENT = "liaison_file";

export type Edition = "es" | "cx";

/** What one detectIntent asks: a text, or an event. */
export type Query = { text: string } | { event: string };

/**
 * The session id of a conversation: its id when Dialogflow takes it as it is (at most 36 bytes of letters, digits,
 * `_` and `-`; Liaison's own ids are 24), else `h_` and 34 characters of the id's SHA-256 in base64url: 36 bytes,
 * the same for every message of the conversation, and as unlikely to collide as the ids themselves.
 */
export function sessionIdOf(conversationId: ConversationId): string {
  if (/^[A-Za-z0-9_-]+$/.test(conversationId) && Buffer.byteLength(conversationId) <= MAX_SESSION_ID_BYTES) {
    return conversationId;
  }
  return `h_${createHash("sha256")
    .update(conversationId)
    .digest("base64url")
    .slice(0, MAX_SESSION_ID_BYTES - 2)}`;
}

/**
 * A text cut to `max` UTF-16 units, at the last blank of its second half when there is one, never inside a
 * surrogate pair. Dialogflow matches one turn per text: the parts of a split message would each be a turn of their
 * own (each answered, each able to fill a form or move a flow), while a message's opening sentences carry its intent.
 */
export function cutText(text: string, max = MAX_QUERY_TEXT): string {
  if (text.length <= max) return text;
  let end = max;
  const blank = text.slice(0, max + 1).search(/\s\S*$/);
  if (blank > max / 2) end = blank;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, end).trimEnd();
}

/**
 * The button a customer's message presses, if it does. The protocol's `button` field of a customer's `ChatMessage`
 * arrives with the bot stage; until then the field is read here without its type, and checked.
 */
export function pressedButton(message: ChatMessage): Button | undefined {
  const parsed = ButtonSchema.safeParse((message as { button?: unknown }).button);
  return parsed.success ? parsed.data : undefined;
}

/**
 * What Dialogflow is asked for an input: a press as the button's text; a text cut to 256 characters; a message with
 * files and no text as the event `liaison_file` (Dialogflow reads text only; the files stay in the conversation for
 * the agent); the agent side closing as the event `liaison_agent_closed`. Undefined when there is nothing to ask.
 */
export function queryOf(input: BotInput): Query | undefined {
  if (input.kind === "event") return { event: AGENT_CLOSED_EVENT };
  const button = pressedButton(input.message);
  if (button !== undefined) return { text: cutText(button.text.trim() || button.id) };
  const text = input.message.text.trim();
  if (text !== "") return { text: cutText(text) };
  if (input.message.attachments.length > 0) return { event: FILE_EVENT };
  return undefined;
}

/**
 * The detectIntent body. ES: the language inside the text or event input; CX: beside it, in `queryInput`.
 */
export function detectIntentBody(edition: Edition, query: Query, languageCode: string): Record<string, unknown> {
  if (edition === "es") {
    return "text" in query
      ? { queryInput: { text: { text: query.text, languageCode } } }
      : { queryInput: { event: { name: query.event, languageCode } } };
  }
  return "text" in query
    ? { queryInput: { text: { text: query.text }, languageCode } }
    : { queryInput: { event: { event: query.event }, languageCode } };
}

/** The API path of a session (without the version's leading slash and the `:detectIntent` verb). */
export function sessionPath(
  edition: Edition,
  where: { projectId: string; location: string | undefined; agentId: string | undefined },
  sessionId: string,
): string {
  const project = `projects/${encodeURIComponent(where.projectId)}`;
  const session = `sessions/${encodeURIComponent(sessionId)}`;
  if (edition === "es") {
    const location = where.location === undefined ? "" : `/locations/${encodeURIComponent(where.location)}`;
    return `v2/${project}${location}/agent/${session}`;
  }
  const location = encodeURIComponent(where.location ?? "global");
  return `v3/${project}/locations/${location}/agents/${encodeURIComponent(where.agentId ?? "")}/${session}`;
}

/**
 * The idempotency key of a reply: the customer's message it answers and the reply's position, so that a repeated
 * delivery of the same message records each reply once even though Dialogflow answers it anew (with another
 * responseId). An event has no message: its replies are keyed by Dialogflow's responseId. Kept within 128 characters
 * of the message-id alphabet.
 */
export function replyKey(base: string, index: number): string {
  const key = `dialogflow:${base}:${index}`;
  if (key.length <= 128) return key;
  return `dialogflow:h:${createHash("sha256").update(base).digest("base64url")}:${index}`;
}

export interface MappingOptions {
  /** Intent display names and actions that mean "a human", lower case. */
  handoffIntents: ReadonlySet<string>;
  /** The base of each reply's `externalId` (see `replyKey`); none: replies carry no externalId. */
  keyBase: string | undefined;
}

/** One piece of what the bot said, before pieces are joined into replies. */
interface Piece {
  text: string;
  buttons: Button[];
  attachments: Attachment[];
}

interface Decision {
  handOff?: { department?: string; reason: string };
  end?: boolean;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const objectOf = (value: unknown): Json => (isObject(value) ? value : {});
const arrayOf = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const stringOf = (value: unknown): string | undefined =>
  typeof value === "string" && value.trim() !== "" ? value : undefined;
const linesOf = (value: unknown): string[] => arrayOf(value).flatMap((line) => stringOf(line) ?? []);

/**
 * The outputs of an ES answer (`queryResult`): replies from `fulfillmentMessages` (text, quick replies, images,
 * cards, custom payloads) of one platform, else from `fulfillmentText`; a hand-off when the intent's display name or
 * action is a hand-off intent or a payload says `"handoff": true`; an end when the intent ends the interaction.
 */
export function esOutputs(answer: unknown, options: MappingOptions): BotOutput[] {
  const result = objectOf(objectOf(answer).queryResult);
  const intent = objectOf(result.intent);
  const decision: Decision = {};
  const pieces: Piece[] = [];
  const all = arrayOf(result.fulfillmentMessages).filter(isObject);
  const messages = onePlatform(all);
  // A hand-off payload counts on whichever platform's tab the bot author put it.
  for (const message of all) {
    if (!messages.includes(message) && isObject(message.payload)) payloadPieces(message.payload, decision);
  }
  for (const message of messages) {
    if (isObject(message.text)) pieces.push(textPiece(linesOf(message.text.text).join("\n")));
    else if (isObject(message.quickReplies)) {
      pieces.push({
        text: stringOf(message.quickReplies.title) ?? "",
        buttons: linesOf(message.quickReplies.quickReplies).flatMap((text) => buttonOf(text) ?? []),
        attachments: [],
      });
    } else if (isObject(message.image)) {
      const image = imageOf(message.image.imageUri);
      if (image !== undefined) pieces.push({ text: "", buttons: [], attachments: [image] });
    } else if (isObject(message.card)) pieces.push(cardPiece(message.card));
    else if (isObject(message.payload)) pieces.push(...payloadPieces(message.payload, decision));
  }
  const fallback = stringOf(result.fulfillmentText);
  if (messages.length === 0 && fallback !== undefined) pieces.push(textPiece(fallback));
  const name = stringOf(intent.displayName);
  const action = stringOf(result.action);
  decision.handOff ??= intentHandOff(options.handoffIntents, name, action);
  if (intent.endInteraction === true || objectOf(result.diagnosticInfo).end_conversation === true) decision.end = true;
  return outputs(pieces, decision, objectOf(result.parameters), options);
}

/**
 * The outputs of a CX answer (`queryResult`): replies from `responseMessages` (text, custom payloads); a hand-off
 * on a `liveAgentHandoff` message, a payload with `"handoff": true`, or a hand-off intent; an end on `endInteraction`.
 */
export function cxOutputs(answer: unknown, options: MappingOptions): BotOutput[] {
  const result = objectOf(objectOf(answer).queryResult);
  const decision: Decision = {};
  const pieces: Piece[] = [];
  for (const message of arrayOf(result.responseMessages).filter(isObject)) {
    if (isObject(message.text)) pieces.push(textPiece(linesOf(message.text.text).join("\n")));
    else if (isObject(message.payload)) pieces.push(...payloadPieces(message.payload, decision));
    else if (isObject(message.liveAgentHandoff)) {
      const department = departmentOf(objectOf(message.liveAgentHandoff.metadata));
      decision.handOff ??= { reason: "liveAgentHandoff", ...(department === undefined ? {} : { department }) };
    } else if (isObject(message.endInteraction)) decision.end = true;
  }
  const name =
    stringOf(objectOf(result.intent).displayName) ?? stringOf(objectOf(objectOf(result.match).intent).displayName);
  decision.handOff ??= intentHandOff(options.handoffIntents, name, undefined);
  return outputs(pieces, decision, objectOf(result.parameters), options);
}

/**
 * ES returns the messages of every platform an intent has responses for (the Default tab has none named, or
 * `PLATFORM_UNSPECIFIED`): the Default ones are shown, else those of the first platform, never two copies.
 */
function onePlatform(messages: Json[]): Json[] {
  const platformOf = (message: Json) => {
    const platform = stringOf(message.platform);
    return platform === undefined || platform === "PLATFORM_UNSPECIFIED" ? "" : platform;
  };
  const defaults = messages.filter((message) => platformOf(message) === "");
  if (defaults.length > 0 || messages.length === 0) return defaults;
  const first = platformOf(messages[0] as Json);
  return messages.filter((message) => platformOf(message) === first);
}

function intentHandOff(
  intents: ReadonlySet<string>,
  name: string | undefined,
  action: string | undefined,
): Decision["handOff"] {
  if (name !== undefined && intents.has(name.trim().toLowerCase())) return { reason: `intent ${name}` };
  if (action !== undefined && intents.has(action.trim().toLowerCase())) return { reason: `action ${action}` };
  return undefined;
}

const textPiece = (text: string): Piece => ({ text, buttons: [], attachments: [] });

function buttonOf(text: string): Button | undefined {
  const visible = cutText(text.trim(), 256);
  return visible === "" ? undefined : { id: visible, text: visible };
}

/** A link the customer should open, as a line of text (the protocol's buttons send text; they open nothing). */
function linkLine(text: string | undefined, link: string): string {
  return text === undefined ? link : `${text}: ${link}`;
}

const IMAGE_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
};

/** An image the bot shows, by its http(s) URL; its type from the name (Dialogflow gives none). */
function imageOf(value: unknown): Attachment | undefined {
  const url = stringOf(value);
  if (url === undefined || !ContentUrlSchema.safeParse(url).success || url.startsWith("data:")) return undefined;
  const last = new URL(url).pathname.split("/").pop() ?? "";
  let name: string;
  try {
    name = decodeURIComponent(last).slice(0, 255) || "image";
  } catch {
    name = last.slice(0, 255) || "image";
  }
  const extension = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? "";
  return { type: IMAGE_TYPES[extension] ?? "application/octet-stream", name, contentUrl: url };
}

/** An ES card: title and subtitle as text, its image, its buttons (a postback URL becomes a link line). */
function cardPiece(card: Json): Piece {
  const lines = [stringOf(card.title), stringOf(card.subtitle)].flatMap((line) => line ?? []);
  const buttons: Button[] = [];
  for (const button of arrayOf(card.buttons).filter(isObject)) {
    const text = stringOf(button.text);
    const postback = stringOf(button.postback);
    if (postback !== undefined && /^https?:\/\//i.test(postback)) lines.push(linkLine(text, postback));
    else {
      const made = buttonOf(text ?? postback ?? "");
      if (made !== undefined) buttons.push(made);
    }
  }
  const image = imageOf(card.imageUri);
  return { text: lines.join("\n"), buttons, attachments: image === undefined ? [] : [image] };
}

/**
 * A custom payload: `"handoff": true` (with `department` or `queue`) hands off; `richContent` (Dialogflow
 * Messenger's format, rows of items) gives chips as buttons, `button` items (a link as a line of text), `info`,
 * `description` and `accordion` items as text, and `image` items as images. Anything else is the bot author's own
 * and shows nothing.
 */
function payloadPieces(payload: Json, decision: Decision): Piece[] {
  if (payload.handoff === true) {
    const department = departmentOf(payload);
    decision.handOff ??= { reason: "payload", ...(department === undefined ? {} : { department }) };
  }
  const pieces: Piece[] = [];
  for (const row of arrayOf(payload.richContent)) {
    for (const item of arrayOf(row).filter(isObject)) {
      pieces.push(...richItemPieces(item));
    }
  }
  return pieces;
}

function richItemPieces(item: Json): Piece[] {
  const title = stringOf(item.title);
  const subtitle = stringOf(item.subtitle);
  switch (item.type) {
    case "chips": {
      const lines: string[] = [];
      const buttons: Button[] = [];
      for (const option of arrayOf(item.options).filter(isObject)) {
        const text = stringOf(option.text);
        const link = stringOf(option.link);
        if (link !== undefined) lines.push(linkLine(text, link));
        else if (text !== undefined) {
          const made = buttonOf(text);
          if (made !== undefined) buttons.push(made);
        }
      }
      // The buttons first, to join the text before them; the links after, as a text of their own.
      return [{ text: "", buttons, attachments: [] }, ...(lines.length === 0 ? [] : [textPiece(lines.join("\n"))])];
    }
    case "button": {
      const text = stringOf(item.text);
      const link = stringOf(item.link);
      if (link !== undefined) return [textPiece(linkLine(text, link))];
      const made = text === undefined ? undefined : buttonOf(text);
      return made === undefined ? [] : [{ text: "", buttons: [made], attachments: [] }];
    }
    case "info": {
      const link = stringOf(item.actionLink);
      const lines = [title, subtitle, link].flatMap((line) => line ?? []);
      return lines.length === 0 ? [] : [textPiece(lines.join("\n"))];
    }
    case "description":
    case "accordion": {
      const lines = [title, subtitle, ...linesOf(item.text), stringOf(item.text)].flatMap((line) => line ?? []);
      return lines.length === 0 ? [] : [textPiece(lines.join("\n"))];
    }
    case "image": {
      const image = imageOf(item.rawUrl);
      return image === undefined ? [] : [{ text: "", buttons: [], attachments: [image] }];
    }
    default:
      return [];
  }
}

/** The department a hand-off names: `department`, else `queue` (a string or a number). */
function departmentOf(source: Json): string | undefined {
  for (const key of ["department", "queue"]) {
    const value = source[key];
    const text = typeof value === "number" && Number.isFinite(value) ? String(value) : stringOf(value);
    if (text !== undefined) return text.trim().slice(0, 256);
  }
  return undefined;
}

/**
 * Pieces joined into replies (buttons without text of their own join the reply before them, as Dialogflow shows
 * them under it), then the hand-off, else the end: a conversation handed to a human is the human's to end.
 */
function outputs(pieces: Piece[], decision: Decision, parameters: Json, options: MappingOptions): BotOutput[] {
  const replies: Piece[] = [];
  for (const piece of pieces) {
    const last = replies.at(-1);
    const buttonsOnly = piece.text.trim() === "" && piece.attachments.length === 0 && piece.buttons.length > 0;
    if (buttonsOnly && last !== undefined && last.buttons.length === 0) {
      last.buttons = piece.buttons;
      continue;
    }
    if (piece.text.trim() === "" && piece.attachments.length === 0 && piece.buttons.length === 0) continue;
    replies.push({ ...piece });
  }
  const result: BotOutput[] = replies.map((reply, index) => {
    const buttons = rowsOf(reply.buttons);
    return {
      type: "reply",
      ...(options.keyBase === undefined ? {} : { externalId: replyKey(options.keyBase, index) }),
      text: reply.text,
      ...(buttons.length === 0 ? {} : { buttons }),
      attachments: reply.attachments,
    };
  });
  if (decision.handOff !== undefined) {
    const department = decision.handOff.department ?? departmentOf(parameters);
    result.push({
      type: "handOff",
      reason: decision.handOff.reason,
      ...(department === undefined ? {} : { department }),
    });
  } else if (decision.end === true) {
    result.push({ type: "end", reason: "endInteraction" });
  }
  return result;
}

/** Buttons in rows of at most 10, at most 20 rows, each id once (the protocol's limits). */
function rowsOf(buttons: Button[]): Button[][] {
  const unique = [...new Map(buttons.map((button) => [button.id, button])).values()].slice(0, 200);
  const rows: Button[][] = [];
  for (let i = 0; i < unique.length; i += 10) rows.push(unique.slice(i, i + 10));
  return rows;
}
