import { z } from "zod";
import type { Attachment, ChatMessage, Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import type { DeskEvent } from "../../core/desk.js";
import type { LiveChatConfig } from "./config.js";

export const DESK_NAME = "livechat";

/** Longest text of one `message` event: 16 KB of UTF-8, and a character takes at most 4 bytes. */
export const MAX_TEXT_CHARS = 4_096;

/** An event as LiveChat shows it (customer view: `recipients`; agent view and webhooks: `visibility`). */
export const LcEventSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  created_at: z.string().optional(),
  author_id: z.string().optional(),
  custom_id: z.string().optional(),
  recipients: z.string().optional(),
  visibility: z.string().optional(),
  text: z.string().optional(),
  url: z.string().optional(),
  name: z.string().optional(),
  content_type: z.string().optional(),
  thumbnail_url: z.string().optional(),
  template_id: z.string().optional(),
  elements: z
    .array(
      z.looseObject({
        title: z.string().optional(),
        subtitle: z.string().optional(),
        buttons: z.array(z.looseObject({ text: z.string().optional() })).optional(),
      }),
    )
    .optional(),
});
export type LcEvent = z.infer<typeof LcEventSchema>;

export const LcUserSchema = z.looseObject({
  id: z.string(),
  type: z.string().optional(),
  name: z.string().optional(),
  present: z.boolean().optional(),
});
export type LcUser = z.infer<typeof LcUserSchema>;

const QueueSchema = z.looseObject({ position: z.number().optional(), wait_time: z.number().optional() });

export const LcThreadSchema = z.looseObject({
  id: z.string(),
  active: z.boolean().optional(),
  user_ids: z.array(z.string()).optional(),
  events: z.array(LcEventSchema).optional(),
  queue: QueueSchema.optional(),
});

export const LcChatSchema = z.looseObject({
  id: z.string(),
  thread: LcThreadSchema.optional(),
  users: z.array(LcUserSchema).optional(),
});
export type LcChat = z.infer<typeof LcChatSchema>;

/** The payloads Liaison reads, by push or webhook action (pushes and webhooks share their shapes). */
export const PayloadSchemas = {
  incoming_event: z.looseObject({ chat_id: z.string(), thread_id: z.string().optional(), event: LcEventSchema }),
  incoming_chat: z.looseObject({ chat: LcChatSchema }),
  chat_deactivated: z.looseObject({
    chat_id: z.string(),
    thread_id: z.string().optional(),
    user_id: z.string().optional(),
  }),
  chat_transferred: z.looseObject({
    chat_id: z.string(),
    thread_id: z.string().optional(),
    queue: QueueSchema.optional(),
  }),
  user_added_to_chat: z.looseObject({
    chat_id: z.string(),
    thread_id: z.string().optional(),
    user: LcUserSchema,
    user_type: z.string().optional(),
  }),
  user_removed_from_chat: z.looseObject({
    chat_id: z.string(),
    thread_id: z.string().optional(),
    user_id: z.string(),
    user_type: z.string().optional(),
  }),
  queue_position_updated: z.looseObject({
    chat_id: z.string(),
    thread_id: z.string().optional(),
    queue: QueueSchema,
  }),
  incoming_typing_indicator: z.looseObject({
    chat_id: z.string(),
    thread_id: z.string().optional(),
    typing_indicator: z.looseObject({ author_id: z.string(), is_typing: z.boolean() }),
  }),
} as const;

export type LcAction = keyof typeof PayloadSchemas;

/** The webhook envelope (`secret_key` in the body, no signature header). */
export const WebhookSchema = z.looseObject({
  webhook_id: z.string().optional(),
  secret_key: z.string().optional(),
  action: z.string(),
  organization_id: z.string().optional(),
  payload: z.record(z.string(), z.unknown()),
});

/** The chat of a payload, whatever its action (`chat_id`, or `chat.id` for `incoming_chat`). */
export function chatIdOf(payload: Record<string, unknown>): string | undefined {
  if (typeof payload.chat_id === "string") return payload.chat_id;
  const chat = payload.chat as { id?: unknown } | undefined;
  return typeof chat?.id === "string" ? chat.id : undefined;
}

/** Our participant for a LiveChat agent. */
export function agentParticipant(agentId: string, name: string | undefined): Participant {
  return { id: `${DESK_NAME}:${agentId}`, name: name ?? "Agent" };
}

/** The LiveChat group a conversation goes to: its subject's in LIVECHAT_GROUPS, else LIVECHAT_GROUP_ID. */
export function groupFor(conversation: Pick<Conversation, "subject">, config: LiveChatConfig): number {
  const subject = conversation.subject.trim();
  const mapped = subject === "" ? undefined : config.LIVECHAT_GROUPS?.[subject];
  return mapped ?? config.LIVECHAT_GROUP_ID;
}

/** What LiveChat should know of the customer (`update_customer`): the name, the e-mail and the session fields. */
export function customerFields(conversation: Conversation): Record<string, unknown> {
  const fields: Record<string, string>[] = [{ channel: conversation.channel }];
  if (conversation.subject.trim() !== "") fields.push({ subject: conversation.subject });
  fields.push({ liaison_conversation: conversation.id });
  if (conversation.customer.phone !== undefined && conversation.verified === true) {
    fields.push({ phone: conversation.customer.phone });
  }
  const update: Record<string, unknown> = { name: conversation.customer.name, session_fields: fields };
  if (conversation.customer.email !== undefined && z.email().safeParse(conversation.customer.email).success) {
    update.email = conversation.customer.email;
  }
  return update;
}

/** The customer's text as one `message` event, tagged with Liaison's message id. */
export function messageEvent(message: Pick<ChatMessage, "id" | "text">, text = message.text): Record<string, unknown> {
  return { type: "message", text, custom_id: message.id };
}

/** What Liaison knows about the chat's agents while mapping: their names, by LiveChat user id. */
export interface MapContext {
  /** The LiveChat customer (our own side): its events are ours, never an agent's. */
  customerId: string;
  agentName(agentId: string): string | undefined;
}

/** An agent's event (message, file, card) as a desk event; undefined for anything else. */
export function agentEvent(event: LcEvent, ctx: MapContext): DeskEvent | undefined {
  if (event.author_id === undefined || event.author_id === ctx.customerId) return undefined;
  // Internal notes between agents are not for the customer.
  if (event.recipients === "agents" || event.visibility === "agents") return undefined;
  const agent = agentParticipant(event.author_id, ctx.agentName(event.author_id));
  const attachments: Attachment[] = [];
  let text: string;
  switch (event.type) {
    case "message":
      text = event.text ?? "";
      break;
    case "file": {
      if (event.url === undefined) return undefined;
      const attachment: Attachment = {
        type: event.content_type ?? "application/octet-stream",
        name: event.name ?? (new URL(event.url).pathname.split("/").pop() || "file"),
        contentUrl: event.url,
      };
      if (event.thumbnail_url !== undefined) attachment.thumbnailUrl = event.thumbnail_url;
      attachments.push(attachment);
      text = "";
      break;
    }
    case "rich_message":
      text = richText(event);
      break;
    default:
      return undefined;
  }
  if (text === "" && attachments.length === 0) return undefined;
  return { type: "agentMessage", externalId: event.id, agent, text, attachments };
}

/** A card or quick replies written out: titles, subtitles and the buttons' texts. */
function richText(event: LcEvent): string {
  const lines: string[] = [];
  for (const element of event.elements ?? []) {
    if (element.title !== undefined && element.title !== "") lines.push(element.title);
    if (element.subtitle !== undefined && element.subtitle !== "") lines.push(element.subtitle);
    const buttons = (element.buttons ?? []).map((b) => b.text).filter((t): t is string => t !== undefined && t !== "");
    if (buttons.length > 0) lines.push(buttons.map((b) => `[${b}]`).join(" "));
  }
  return lines.join("\n");
}

/** The events of a chat as `get_chat` shows it (after a reconnect, or a missed webhook): agents present, messages. */
export function eventsFromChat(chat: LcChat, ctx: MapContext): DeskEvent[] {
  const events: DeskEvent[] = [];
  const thread = chat.thread;
  for (const user of chat.users ?? []) {
    if (user.type === "agent" && user.present === true && (thread?.user_ids ?? []).includes(user.id)) {
      events.push({ type: "agentJoined", agent: agentParticipant(user.id, user.name) });
    }
  }
  for (const event of thread?.events ?? []) {
    const mapped = agentEvent(event, ctx);
    if (mapped) events.push(mapped);
  }
  // Closed while Liaison was not listening: who closed it is not in the chat.
  if (thread?.active === false) events.push({ type: "closed", by: "system", reason: "chat_deactivated" });
  return events;
}

/**
 * One push or webhook of the chat as desk events. `chat_deactivated` by the customer is Liaison's own close: the
 * conversation has ended already, nothing to record.
 */
export function eventsFromPayload(action: string, payload: unknown, ctx: MapContext): DeskEvent[] {
  switch (action) {
    case "incoming_event": {
      const parsed = PayloadSchemas.incoming_event.safeParse(payload);
      const event = parsed.success ? agentEvent(parsed.data.event, ctx) : undefined;
      return event ? [event] : [];
    }
    case "user_added_to_chat": {
      const parsed = PayloadSchemas.user_added_to_chat.safeParse(payload);
      if (!parsed.success) return [];
      const { user } = parsed.data;
      if ((user.type ?? parsed.data.user_type) !== "agent") return [];
      return [{ type: "agentJoined", agent: agentParticipant(user.id, user.name ?? ctx.agentName(user.id)) }];
    }
    case "user_removed_from_chat": {
      const parsed = PayloadSchemas.user_removed_from_chat.safeParse(payload);
      if (!parsed.success || parsed.data.user_id === ctx.customerId) return [];
      if (parsed.data.user_type !== undefined && parsed.data.user_type !== "agent") return [];
      const id = parsed.data.user_id;
      return [{ type: "agentLeft", agent: agentParticipant(id, ctx.agentName(id)) }];
    }
    case "queue_position_updated": {
      const parsed = PayloadSchemas.queue_position_updated.safeParse(payload);
      if (!parsed.success || parsed.data.queue.position === undefined) return [];
      return [queued(parsed.data.queue)];
    }
    case "chat_transferred": {
      const parsed = PayloadSchemas.chat_transferred.safeParse(payload);
      return parsed.success && parsed.data.queue?.position !== undefined ? [queued(parsed.data.queue)] : [];
    }
    case "incoming_chat": {
      const parsed = PayloadSchemas.incoming_chat.safeParse(payload);
      const position = parsed.success ? parsed.data.chat.thread?.queue : undefined;
      return position?.position === undefined ? [] : [queued(position)];
    }
    case "chat_deactivated": {
      const parsed = PayloadSchemas.chat_deactivated.safeParse(payload);
      if (!parsed.success) return [];
      const by = parsed.data.user_id;
      if (by === ctx.customerId) return [];
      if (by === undefined) return [{ type: "closed", by: "system", reason: "chat_deactivated" }];
      return [
        { type: "closed", by: "agent", agent: agentParticipant(by, ctx.agentName(by)), reason: "chat_deactivated" },
      ];
    }
    default:
      return [];
  }
}

function queued(queue: { position?: number | undefined; wait_time?: number | undefined }): DeskEvent {
  return {
    type: "queued",
    ...(queue.position === undefined ? {} : { position: queue.position }),
    ...(queue.wait_time === undefined ? {} : { estimatedWaitSeconds: queue.wait_time }),
  };
}

/** The users of a payload whose names it tells (to remember agents' names for later events). */
export function usersOf(action: string, payload: unknown): LcUser[] {
  if (action === "user_added_to_chat") {
    const parsed = PayloadSchemas.user_added_to_chat.safeParse(payload);
    return parsed.success ? [parsed.data.user] : [];
  }
  if (action === "incoming_chat") {
    const parsed = PayloadSchemas.incoming_chat.safeParse(payload);
    return parsed.success ? (parsed.data.chat.users ?? []) : [];
  }
  return [];
}

/** The LiveChat users a payload names without their names (an event's author, who left, who closed). */
export function authorsOf(payload: Record<string, unknown>): string[] {
  const ids: string[] = [];
  const event = payload.event as { author_id?: unknown } | undefined;
  if (typeof event?.author_id === "string") ids.push(event.author_id);
  if (typeof payload.user_id === "string") ids.push(payload.user_id);
  return ids;
}
