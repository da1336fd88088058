import { createHash } from "node:crypto";
import { z } from "zod";
import type { Attachment } from "../../../protocol/index.js";
import type { RpMessage } from "./client.js";

export const CHANNEL = "rapidpro";

const text = z.string().nullable().optional();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What a flow's "Call Webhook" node sends: RapidPro's default body (contact, flow, results), the richer
 * legacy/resthook body (adds input, run, path, channel), or the old mediator's custom body (adds department).
 * Unknown keys are ignored; every field but `contact.uuid` is optional.
 */
export const FlowWebhookSchema = z.looseObject({
  contact: z.looseObject({
    uuid: z.string().regex(UUID, "must be a contact UUID"),
    name: text,
    urn: text,
    language: text,
  }),
  department: text,
  text,
  results: z
    .record(
      z.string(),
      z.looseObject({
        value: z.union([z.string(), z.number()]).nullable().optional(),
        category: text,
        created_on: text,
      }),
    )
    .nullable()
    .optional(),
  input: z
    .looseObject({
      uuid: text,
      text,
      attachments: z
        .array(z.union([z.string(), z.looseObject({ content_type: z.string().optional(), url: z.string() })]))
        .nullable()
        .optional(),
    })
    .nullable()
    .optional(),
  flow: z.looseObject({ uuid: text, name: text }).nullable().optional(),
  run: z.looseObject({ uuid: text }).nullable().optional(),
});
export type FlowWebhook = z.infer<typeof FlowWebhookSchema>;

/** The contact's message in a sendMessageToAgent call, its files, and an idempotency key when the body has one. */
export function contactMessage(body: FlowWebhook): { text: string; attachments: Attachment[]; id?: string } {
  const fromResults = resultValue(body, "clientmessage") ?? resultValue(body, "client_message");
  const inputText = body.input?.text ?? undefined;
  // Result values are cut at 640 characters by mailroom; the input is whole. Prefer the whole text when it is the
  // same message.
  let message = body.text === null || body.text === undefined || body.text.trim() === "" ? undefined : body.text;
  if (message === undefined) {
    message =
      inputText !== undefined && (fromResults === undefined || inputText.startsWith(fromResults))
        ? inputText
        : fromResults;
  }
  const attachments = (body.input?.attachments ?? []).flatMap((entry): Attachment[] => {
    const parsed =
      typeof entry === "string" ? splitAttachment(entry) : { type: entry.content_type ?? "", url: entry.url };
    if (!parsed || !/^https?:\/\//.test(parsed.url)) return [];
    const name = decodeURIComponent(new URL(parsed.url).pathname.split("/").pop() ?? "") || "file";
    return [
      {
        type: /^[\w.+-]+\/[\w.+-]+$/.test(parsed.type) ? parsed.type : "application/octet-stream",
        name,
        contentUrl: parsed.url,
      },
    ];
  });
  const result: { text: string; attachments: Attachment[]; id?: string } = { text: message ?? "", attachments };
  const inputId = body.input?.uuid ?? undefined;
  if (inputId !== undefined && inputId !== "") {
    result.id = `rapidpro:${inputId}`;
  } else {
    // No message id (the editor's default body): the run and the moment the result was saved identify one flow
    // step, when the body carries them; otherwise each call is a new message (never drop a real repeat).
    const runId = body.run?.uuid ?? undefined;
    const savedAt = body.results?.clientmessage?.created_on ?? body.results?.client_message?.created_on ?? undefined;
    if (runId && savedAt)
      result.id = `rapidpro:${createHash("sha256").update(`${body.contact.uuid}\0${runId}\0${savedAt}`).digest("base64url").slice(0, 32)}`;
  }
  return result;
}

/** A readable name for the contact: their name, else their URN's path, else "Contact". */
export function contactName(body: FlowWebhook): string {
  const name = body.contact.name?.trim();
  if (name) return name;
  const urn = body.contact.urn?.split("#")[0];
  return urn?.split(":").slice(1).join(":") || "Contact";
}

/** The flow's results as one line for the agent ("department: Counselling · age: 24"). */
export function resultsSummary(body: FlowWebhook): string | undefined {
  const entries = Object.entries(body.results ?? {})
    .filter(([key]) => key !== "clientmessage" && key !== "client_message")
    .map(([key, result]) => `${key}: ${String(result.value ?? "")}`)
    .filter((line) => !line.endsWith(": "));
  return entries.length > 0 ? entries.join(" · ") : undefined;
}

/**
 * The hand-off digest posted to the agent: the contact's recent bot conversation, oldest first, with UTC times
 * (the old integration's timezone and null-date bugs are why times are printed explicitly), capped in length.
 */
export function historyDigest(
  contact: string,
  messages: readonly RpMessage[],
  hours: number,
  results: string | undefined,
  maxLength = 3500,
): string | undefined {
  const lines = [...messages]
    .filter((message) => (message.text ?? "") !== "" || (message.attachments?.length ?? 0) > 0)
    .sort((a, b) => (a.created_on ?? "").localeCompare(b.created_on ?? ""))
    .map((message) => {
      const when = message.created_on
        ? `${message.created_on.slice(0, 10)} ${message.created_on.slice(11, 16)} UTC`
        : "";
      const who = message.direction === "in" ? contact : "Bot";
      const files = (message.attachments ?? []).map((file) => ` [${file.content_type ?? "file"}]`).join("");
      return `${when} ${who}: ${message.text ?? ""}${files}`.trim();
    });
  if (lines.length === 0 && results === undefined) return undefined;
  const head = `Conversation with the bot before the hand-off (last ${hours} h):`;
  const tail = results === undefined ? [] : [`Flow results: ${results}`];
  let body = lines;
  // Keep the most recent lines when the digest is too long.
  while (body.length > 0 && [head, ...body, ...tail].join("\n").length > maxLength) body = body.slice(1);
  return [head, ...(body.length < lines.length ? ["…"] : []), ...body, ...tail].join("\n");
}

/**
 * Splits text into parts of at most `max` characters (code points; `weight` may count some characters as more, as a
 * broadcast counts `@` twice once escaped), each cut at the last whitespace within the limit when there is one (a word
 * longer than the limit is cut). RapidPro trims every message, so the whitespace at a cut is dropped: the parts joined
 * with a space give back the text. No part counters are added.
 */
export function splitText(text: string, max: number, weight: (char: string) => number = () => 1): string[] {
  const chars = Array.from(text.trim());
  const parts: string[] = [];
  let start = 0;
  while (start < chars.length) {
    let end = start;
    let total = 0;
    while (end < chars.length && total + weight(chars[end] ?? "") <= max) {
      total += weight(chars[end] ?? "");
      end++;
    }
    if (end === chars.length) {
      parts.push(chars.slice(start).join(""));
      break;
    }
    // A single character over the limit still makes progress.
    if (end === start) end = start + 1;
    let cut = end;
    let next = end;
    for (let i = end; i > start; i--) {
      if (/\s/.test(chars[i] ?? "")) {
        cut = i;
        next = i;
        while (next < chars.length && /\s/.test(chars[next] ?? "")) next++;
        break;
      }
    }
    parts.push(chars.slice(start, cut).join("").trimEnd());
    start = next;
  }
  return parts.filter((part) => part !== "");
}

/**
 * `Media.ALLOWED_CONTENT_TYPES` (temba/msgs/models.py, since v9.1.92) and `MAX_UPLOAD_SIZE`: what `media.json` takes.
 * The type is matched as RapidPro's fnmatch does, case-sensitive.
 */
const MEDIA_TYPES = /^(image\/(apng|avif|gif|jpeg|png|webp)|audio\/.*|video\/.*|application\/pdf)$/s;
export const MAX_MEDIA_BYTES = 25 * 1024 * 1024;

export function rapidProTakes(type: string): boolean {
  return MEDIA_TYPES.test(type);
}

/** A text for the contact's language: `texts[language]`, its primary subtag, or the default. */
export function localized(texts: Record<string, string>, language: string, fallback: string): string {
  const lower = language.toLowerCase();
  return texts[lower] ?? texts[lower.split("-")[0] ?? lower] ?? fallback;
}

function resultValue(body: FlowWebhook, key: string): string | undefined {
  const value = body.results?.[key]?.value;
  return value === undefined || value === null ? undefined : String(value);
}

function splitAttachment(value: string): { type: string; url: string } | undefined {
  const match = /^([^:]+\/[^:]+):(https?:\/\/.+)$/.exec(value);
  return match ? { type: match[1] ?? "", url: match[2] ?? "" } : undefined;
}
