import { createHash } from "node:crypto";
import { z } from "zod";
import { MAX_ATTACHMENTS, type Attachment, type ChatMessage, type Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import type { DeskEvent } from "../../core/desk.js";
import { shortcodesToUnicode } from "../../core/emoji.js";
import type { RcVisitorInput } from "./client.js";

export const DESK_NAME = "rocketchat";

/** Visitor tokens Liaison mints carry this prefix, so a webhook can tell our rooms from the widget's. */
export const VISITOR_TOKEN_PREFIX = "lz-";

const UserSchema = z.looseObject({ _id: z.string(), username: z.string().optional(), name: z.string().optional() });

/**
 * The payload's `agent`: Rocket.Chat always gives `_id`; bodies written for the old LiveAgents mediator (its
 * documented minimal body) give only a `name`.
 */
const PayloadAgentSchema = z.looseObject({
  _id: z.string().optional(),
  username: z.string().optional(),
  name: z.string().optional(),
});

const FileAttachmentSchema = z.looseObject({
  type: z.string().optional(),
  /** The original file's id (newer Rocket.Chat); else `title_link` names it. */
  fileId: z.string().optional(),
  title: z.string().optional(),
  title_link: z.string().optional(),
  description: z.string().optional(),
  image_type: z.string().optional(),
  audio_type: z.string().optional(),
  video_type: z.string().optional(),
});

/** One message of a webhook payload (the fields we read; Rocket.Chat sends many more). */
export const WebhookMessageSchema = z.looseObject({
  /** Absent in the sample payload of Rocket.Chat's "Send Test" button. */
  _id: z.string().optional(),
  msg: z.string().optional(),
  t: z.string().optional(),
  token: z.string().optional(),
  agentId: z.string().optional(),
  username: z.string().optional(),
  ts: z.string().optional(),
  editedAt: z.string().optional(),
  closingMessage: z.boolean().optional(),
  u: UserSchema.optional(),
  file: z.looseObject({ _id: z.string(), name: z.string(), type: z.string().optional() }).optional(),
  attachments: z.array(FileAttachmentSchema).optional(),
  fileUpload: z.looseObject({ publicFilePath: z.string().optional(), type: z.string().optional() }).optional(),
});
export type WebhookMessage = z.infer<typeof WebhookMessageSchema>;

/** The Omnichannel webhook envelope (a.8). */
export const WebhookPayloadSchema = z.looseObject({
  type: z.string(),
  _id: z.string().optional(),
  visitor: z.looseObject({ token: z.string().optional() }).optional(),
  agent: PayloadAgentSchema.optional(),
  servedBy: UserSchema.optional(),
  oldServedBy: UserSchema.optional(),
  closer: z.string().optional(),
  closedBy: UserSchema.optional(),
  messages: z.array(WebhookMessageSchema).optional(),
});
export type WebhookPayload = z.infer<typeof WebhookPayloadSchema>;

/** Our participant for a Rocket.Chat user (the same id whether we learn of it from a room or a webhook). */
export function agentParticipant(user: { _id: string; username?: string; name?: string }): Participant {
  return { id: `${DESK_NAME}:${user._id}`, name: user.name ?? user.username ?? user._id };
}

/**
 * The participant of a payload's `agent`: by `_id`, or (a mediator-style body names the agent only) by name, which
 * is stable for as long as the agent's name is; undefined when it has neither.
 */
function payloadAgent(agent: z.infer<typeof PayloadAgentSchema> | undefined): Participant | undefined {
  if (agent === undefined) return undefined;
  if (agent._id !== undefined && agent._id !== "") {
    return agentParticipant({ ...agent, _id: agent._id });
  }
  const name = agent.name?.trim() || agent.username?.trim();
  return name ? { id: `${DESK_NAME}:name:${name}`, name } : undefined;
}

/** The visitor Liaison registers for a conversation's customer. */
export function visitorFor(conversation: Conversation, token: string, department: string | undefined): RcVisitorInput {
  const visitor: RcVisitorInput = { token, name: conversation.customer.name };
  // Rocket.Chat merges visitors by phone or e-mail (and hands back the other visitor's token and room): only an
  // identity someone vouched for may be sent, or anyone could type a stranger's number and read their chat.
  if (conversation.verified === true) {
    if (conversation.customer.email !== undefined) visitor.email = conversation.customer.email;
    if (conversation.customer.phone !== undefined) visitor.phone = conversation.customer.phone;
    else if (
      conversation.channel !== "web" &&
      conversation.refId !== undefined &&
      /^\+?\d[\d\s-]{5,}$/.test(conversation.refId)
    ) {
      visitor.phone = conversation.refId;
    }
  }
  if (department !== undefined) visitor.department = department;
  return visitor;
}

/**
 * The `_id` our message gets in Rocket.Chat: derived from the conversation and our message id, so that a retry after
 * an unknown outcome finds the message already stored (Rocket.Chat then stores nothing) and it is never shown twice.
 */
export function rocketChatMessageId(conversation: Conversation, message: ChatMessage, part = ""): string {
  return createHash("sha256").update(`${conversation.id}\0${message.id}\0${part}`).digest("base64url").slice(0, 24);
}

/** What the mapping may need besides the payload. */
export interface WebhookContext {
  /** Turns an agent's file into a link the customer can open. */
  fileUrl: (file: { id: string; name: string; jwt?: string }) => string;
  /**
   * When Liaison opened the room (epoch ms): a close transcript's messages older than that belong to an earlier
   * conversation in the same room (a visitor's open room adopted at hand-off), not to this one.
   */
  openedAt?: number;
}

/** How far Rocket.Chat's clock may lag ours when a close transcript is compared with the room's opening. */
const CLOCK_SLACK_MS = 120_000;

/**
 * What a webhook says, as desk events. Visitor echoes and system messages are not agent activity and are dropped.
 */
export function eventsFromWebhook(payload: WebhookPayload, context: WebhookContext): DeskEvent[] {
  switch (payload.type) {
    case "LivechatSessionTaken": {
      const agent = payloadAgent(payload.agent) ?? (payload.servedBy ? agentParticipant(payload.servedBy) : undefined);
      return agent ? [{ type: "agentJoined", agent }] : [];
    }
    case "LivechatSessionQueued":
      return [{ type: "queued" }];
    case "LivechatSessionForwarded": {
      const events: DeskEvent[] = [];
      if (payload.oldServedBy) events.push({ type: "agentLeft", agent: agentParticipant(payload.oldServedBy) });
      const agent = payloadAgent(payload.agent) ?? (payload.servedBy ? agentParticipant(payload.servedBy) : undefined);
      if (agent) events.push({ type: "agentJoined", agent });
      return events;
    }
    case "LivechatSession": {
      const closing = payload.messages?.find((message) => message.closingMessage === true);
      const closer = payload.closedBy
        ? agentParticipant(payload.closedBy)
        : (payloadAgent(payload.agent) ?? (payload.servedBy ? agentParticipant(payload.servedBy) : undefined));
      const byCustomer = payload.closer === "visitor";
      const reason =
        closing?.msg !== undefined && closing.msg !== ""
          ? closing.msg
          : byCustomer
            ? "closed by visitor"
            : "closed by agent";
      // Rocket.Chat sends each webhook on its own, so the agent's last words (a Message webhook) may come after the
      // close. The close carries the room's transcript: its agent messages go first, so the customer sees them
      // before the end; the recorder drops those already recorded, and a late Message webhook is then a repeat.
      const transcript = (payload.messages ?? [])
        .filter((message) => context.openedAt === undefined || isSince(message.ts, context.openedAt - CLOCK_SLACK_MS))
        .flatMap((message) => agentMessageEvent(message, context));
      return [
        ...transcript,
        byCustomer || !closer
          ? { type: "closed", by: byCustomer ? "customer" : "system", reason }
          : { type: "closed", by: "agent", agent: closer, reason },
      ];
    }
    case "Message": {
      const mediatorAgent = payloadAgent(payload.agent);
      return (payload.messages ?? []).flatMap((message, index) =>
        isMediatorMessage(message) && mediatorAgent
          ? mediatorMessageEvent(payload, message, index, mediatorAgent)
          : agentMessageEvent(message, context),
      );
    }
    default:
      // LivechatSessionStart, LeadCapture, LivechatEdit, LivechatOfflineMessage: nothing for the customer.
      return [];
  }
}

function isSince(ts: string | undefined, since: number): boolean {
  const time = ts === undefined ? Number.NaN : Date.parse(ts);
  return Number.isFinite(time) && time >= since;
}

/**
 * A message of the old mediator's documented minimal body (`messages: [{ msg }]` under an `agent` with a name):
 * Rocket.Chat's own items always carry `username` (and `u`), its visitor echoes a `username` too, so an item with
 * none of `_id`, `agentId`, `username`, `u` and `token` can only be such a body's agent message.
 */
function isMediatorMessage(message: WebhookMessage): boolean {
  return (
    message._id === undefined &&
    message.agentId === undefined &&
    message.username === undefined &&
    message.u === undefined &&
    message.token === undefined &&
    (message.t === undefined || message.t === "") &&
    message.msg !== undefined &&
    message.msg.trim() !== ""
  );
}

/**
 * A mediator-style message has no id, so one is derived for the idempotency key: from the room (or visitor), the
 * agent, the item's position in the payload, its `ts` when it has one, and the text. A retry of the same webhook
 * then maps to the same key and is recorded once. The cost: without `ts`, an agent who sends the very same text
 * again (a second "ok?") in a later webhook of the same room gets the same key, and that repeat is dropped as a
 * retry; senders that can should add `ts` (or `_id`), which tells the two apart.
 */
function mediatorMessageEvent(
  payload: WebhookPayload,
  message: WebhookMessage,
  index: number,
  agent: Participant,
): DeskEvent[] {
  const text = message.msg ?? "";
  const room = payload._id ?? payload.visitor?.token ?? "";
  const key = createHash("sha256")
    .update(`${room}\0${agent.id}\0${index}\0${message.ts ?? ""}\0${text}`)
    .digest("base64url")
    .slice(0, 24);
  return [
    { type: "agentMessage", externalId: `mediator:${key}`, agent, text: shortcodesToUnicode(text), attachments: [] },
  ];
}

function agentMessageEvent(message: WebhookMessage, context: WebhookContext): DeskEvent[] {
  // Without agentId it is the visitor's own message echoed back (visitor-message webhooks on); `t` marks system ones.
  if (message.agentId === undefined || message.token !== undefined || (message.t !== undefined && message.t !== "")) {
    return [];
  }
  // The close comment also comes in the LivechatSession event, which ends the conversation with it as the reason.
  if (message.closingMessage === true) return [];
  const id = message._id;
  if (id === undefined) return [];
  const agent = agentParticipant(message.u ?? { _id: message.agentId });
  const files = filesOf(message);
  const attachments: Attachment[] = files.map((file) => ({
    type: file.type,
    name: file.name,
    contentUrl: context.fileUrl({ id: file.id, name: file.name, ...(file.jwt === undefined ? {} : { jwt: file.jwt }) }),
  }));
  let text = message.msg ?? "";
  if (files.length > 0) {
    // A file's caption is its attachment's description; `msg` is then absent (sendToCRM sends
    // `msg || JSON.stringify(blocks)`, which is undefined for a file without text).
    if (text === "") text = [...new Set(files.flatMap((file) => (file.caption ? [file.caption] : [])))].join("\n");
  } else if (text.startsWith("[{") && text.endsWith("}]")) {
    // A UIKit blocks message serialised by sendToCRM: nothing a customer channel can show as text.
    return [];
  }
  const event: Extract<DeskEvent, { type: "agentMessage" }> = {
    type: "agentMessage",
    externalId: message.editedAt === undefined ? id : `${id}@${message.editedAt}`,
    agent,
    text: shortcodesToUnicode(text),
    attachments,
  };
  if (message.editedAt !== undefined) {
    event.editOf = id;
    event.editedAt = message.editedAt;
  }
  return [event];
}

interface AgentFile {
  id: string;
  name: string;
  type: string;
  caption?: string;
  jwt?: string;
}

/**
 * Every file of a message. The webhook carries `file` (the first file only) and all `attachments`, one per file when
 * an agent sends several (`FileUpload_EnableMultipleFilesPerMessage`); never `files`. An attachment names its file by
 * `fileId`, else by its `title_link` (`/file-upload/<id>/<name>`). Its `image_url` and `image_type` may be a
 * thumbnail's, so the download link is built from the id, and the first file's type comes from `file`.
 */
function filesOf(message: WebhookMessage): AgentFile[] {
  const first = message.file;
  const firstJwt = jwtOf(message.fileUpload?.publicFilePath);
  const files: AgentFile[] = [];
  for (const attachment of message.attachments ?? []) {
    const linked = fileLinkOf(attachment.title_link);
    if (attachment.type !== "file" && attachment.fileId === undefined && linked === undefined) continue;
    const id = attachment.fileId ?? linked?.id ?? (files.length === 0 ? first?._id : undefined);
    if (id === undefined || files.some((file) => file.id === id)) continue;
    const isFirst = id === first?._id;
    const name =
      ((isFirst ? first?.name : undefined) ?? attachment.title ?? linked?.name ?? "file").slice(0, 255) || "file";
    const type =
      (isFirst ? first?.type : undefined) ??
      attachment.audio_type ??
      attachment.video_type ??
      attachment.image_type ??
      typeByExtension(name);
    const file: AgentFile = { id, name, type: /^[\w.+-]+\/[\w.+-]+$/.test(type) ? type : "application/octet-stream" };
    if (attachment.description !== undefined && attachment.description !== "") file.caption = attachment.description;
    if (isFirst && firstJwt !== undefined) file.jwt = firstJwt;
    files.push(file);
  }
  if (files.length === 0 && first) {
    const file: AgentFile = { id: first._id, name: first.name, type: first.type ?? "application/octet-stream" };
    if (firstJwt !== undefined) file.jwt = firstJwt;
    files.push(file);
  }
  return files.slice(0, MAX_ATTACHMENTS);
}

/**
 * The type of a file the webhook names but does not type: only the first file's type travels (in `file`), and an
 * attachment says it only for images, audio and video. Common document types are known by their extension; the
 * download itself carries Rocket.Chat's Content-Type.
 */
const TYPES_BY_EXTENSION: Record<string, string> = {
  pdf: "application/pdf",
  txt: "text/plain",
  csv: "text/csv",
  doc: "application/msword",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls: "application/vnd.ms-excel",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ppt: "application/vnd.ms-powerpoint",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  odt: "application/vnd.oasis.opendocument.text",
  zip: "application/zip",
};

function typeByExtension(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot < 0 ? undefined : TYPES_BY_EXTENSION[name.slice(dot + 1).toLowerCase()]) ?? "application/octet-stream";
}

/** The file id and name in a `title_link` (`/file-upload/<id>/<name>`, the name URI-encoded). */
function fileLinkOf(link: string | undefined): { id: string; name: string } | undefined {
  const match = link === undefined ? null : /\/file-upload\/([^/?#]+)\/([^?#]+)/.exec(link);
  if (!match?.[1] || !match[2]) return undefined;
  try {
    return { id: decodeURIComponent(match[1]), name: decodeURIComponent(match[2]) };
  } catch {
    return { id: match[1], name: match[2] };
  }
}

function jwtOf(publicFilePath: string | undefined): string | undefined {
  if (publicFilePath === undefined) return undefined;
  try {
    return new URL(publicFilePath).searchParams.get("token") ?? undefined;
  } catch {
    return undefined;
  }
}
