import { createHash, randomUUID } from "node:crypto";
import type { Attachment, Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import type { DeskEvent } from "../../core/desk.js";
import { defaultRoutingAttributes, type RoutableField } from "./config.js";

/** Reasons recorded when Salesforce ends a conversation. */
export const END_REASONS = {
  agent: "agent_ended",
  customer: "customer_ended",
  system: "session_ended",
  closed: "conversation_closed",
  authLost: "salesforce_session_expired",
} as const;

/** A UUID in Salesforce's accepted form (lower case, version 4 and the RFC variant) made from a name: stable. */
export function uuidFrom(name: string): string {
  const bytes = createHash("sha256").update(name).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A fresh conversation id for a new Salesforce conversation (chosen at hand-off, reused by every retried open). */
export function newConversationUuid(): string {
  return randomUUID();
}

/** The entry id of one of our messages: every retry of it carries the same one. */
export function messageEntryId(conversation: Conversation, messageId: string, part = "text"): string {
  return uuidFrom(`liaison:${conversation.id}:${messageId}:${part}`);
}

/** The customer's fields as the deployment's pre-chat fields (routing attributes); empty values are left out. */
export function routingAttributesOf(
  conversation: Conversation,
  mapping: Partial<Record<RoutableField, string>> | undefined,
): Record<string, string> {
  const values: Record<RoutableField, string | undefined> = {
    firstName: conversation.customer.firstName,
    lastName: conversation.customer.lastName,
    email: conversation.customer.email,
    phone: conversation.customer.phone,
    subject: conversation.subject,
    channel: conversation.channel,
  };
  const attributes: Record<string, string> = {};
  for (const [field, name] of Object.entries(mapping ?? defaultRoutingAttributes) as [RoutableField, string][]) {
    const value = values[field]?.trim();
    if (value !== undefined && value !== "") attributes[name] = value;
  }
  return attributes;
}

/** What one stream event means for the conversation. */
export interface MappedEvent {
  events: DeskEvent[];
  /** The conversation is over on Salesforce's side: the stream has nothing more to carry. */
  ended: boolean;
}

const nothing: MappedEvent = { events: [], ended: false };

interface Entry {
  identifier?: unknown;
  senderDisplayName?: unknown;
  sender?: { role?: unknown; subject?: unknown } | null;
  entryPayload?: unknown;
}

/**
 * Maps one event of the end user's stream to desk events. Events of other conversations, unknown event and entry
 * types, and what the end user itself sent (echoed back by Salesforce) map to nothing.
 */
export function eventsFromStream(
  event: string,
  data: string,
  conversationId: string,
  current: { agent?: Participant | undefined },
): MappedEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return nothing;
  }
  if (parsed === null || typeof parsed !== "object") return nothing;
  const body = parsed as { conversationId?: unknown; conversationEntry?: unknown; queuePosition?: unknown };
  if (body.conversationId !== conversationId) return nothing;
  if (event === "CONVERSATION_QUEUE_POSITION") {
    const position = (body.queuePosition as { position?: unknown } | null | undefined)?.position;
    return typeof position === "number" && position >= 0
      ? { events: [{ type: "queued", position }], ended: false }
      : nothing;
  }
  const entry = body.conversationEntry as Entry | null | undefined;
  if (entry === null || typeof entry !== "object") return nothing;
  const payload = payloadOf(entry.entryPayload);
  if (payload === undefined) return nothing;
  const role = typeof entry.sender?.role === "string" ? entry.sender.role : "";
  const sender: Participant = {
    id: typeof entry.sender?.subject === "string" && entry.sender.subject !== "" ? entry.sender.subject : role,
    name: typeof entry.senderDisplayName === "string" ? entry.senderDisplayName : role,
  };
  switch (event) {
    case "CONVERSATION_MESSAGE": {
      if (role === "EndUser" || typeof entry.identifier !== "string") return nothing;
      const message = messageOf(payload);
      if (message === undefined) return nothing;
      return {
        events: [{ type: "agentMessage", externalId: entry.identifier, agent: sender, ...message }],
        ended: false,
      };
    }
    case "CONVERSATION_ROUTING_RESULT": {
      const failureType = typeof payload.failureType === "string" ? payload.failureType : "None";
      if (failureType !== "None") {
        const reason = typeof payload.failureReason === "string" ? payload.failureReason : failureType;
        return { events: [{ type: "noAgentAvailable", reason }], ended: false };
      }
      if (payload.routingType === "Transfer") return nothing;
      const ewt = payload.estimatedWaitTime as
        { isEWTRequested?: unknown; estimatedWaitTimeInSeconds?: unknown } | undefined;
      const seconds = ewt?.estimatedWaitTimeInSeconds;
      return {
        events: [
          ewt?.isEWTRequested === true && typeof seconds === "number" && seconds >= 0
            ? { type: "queued", estimatedWaitSeconds: seconds }
            : { type: "queued" },
        ],
        ended: false,
      };
    }
    case "CONVERSATION_PARTICIPANT_CHANGED": {
      const changes = Array.isArray(payload.entries) ? (payload.entries as unknown[]) : [];
      const events: DeskEvent[] = [];
      for (const change of changes) {
        const item = change as { operation?: unknown; displayName?: unknown; participant?: unknown } | null;
        const participant = item?.participant as { role?: unknown; subject?: unknown } | null | undefined;
        if (participant?.role !== "Agent" || typeof participant.subject !== "string") continue;
        const agent = {
          id: participant.subject,
          name: typeof item?.displayName === "string" ? item.displayName : participant.subject,
        };
        if (item?.operation === "add") events.push({ type: "agentJoined", agent });
        else if (item?.operation === "remove") events.push({ type: "agentLeft", agent });
      }
      return { events, ended: false };
    }
    case "CONVERSATION_TYPING_STARTED_INDICATOR":
    case "CONVERSATION_TYPING_STOPPED_INDICATOR":
      if (role !== "Agent") return nothing;
      return {
        events: [{ type: "typing", agent: sender, state: event.endsWith("STARTED_INDICATOR") ? "start" : "stop" }],
        ended: false,
      };
    case "CONVERSATION_SESSION_STATUS_CHANGED": {
      if (payload.sessionStatus !== "Ended") return nothing;
      const by = payload.sessionEndedByRole;
      const closed: DeskEvent =
        by === "Agent" || by === "Supervisor"
          ? {
              type: "closed",
              by: "agent",
              ...(current.agent === undefined ? {} : { agent: current.agent }),
              reason: END_REASONS.agent,
            }
          : by === "EndUser"
            ? { type: "closed", by: "customer", reason: END_REASONS.customer }
            : { type: "closed", by: "system", reason: END_REASONS.system };
      return { events: [closed], ended: true };
    }
    case "CONVERSATION_CLOSE_CONVERSATION":
      return { events: [{ type: "closed", by: "customer", reason: END_REASONS.closed }], ended: true };
    default:
      return nothing;
  }
}

/** `entryPayload`: a JSON string inside the JSON on the stream (an object in the entries list). */
function payloadOf(value: unknown): Record<string, unknown> | undefined {
  let payload = value;
  if (typeof payload === "string") {
    try {
      payload = JSON.parse(payload);
    } catch {
      return undefined;
    }
  }
  return payload !== null && typeof payload === "object" ? (payload as Record<string, unknown>) : undefined;
}

/** The text and files of a message entry; undefined for a kind of message Liaison cannot show. */
function messageOf(payload: Record<string, unknown>): { text: string; attachments: Attachment[] } | undefined {
  const message = payload.abstractMessage as { staticContent?: unknown } | null | undefined;
  const content = message?.staticContent as
    { formatType?: unknown; text?: unknown; attachments?: unknown; linkItem?: unknown } | null | undefined;
  if (content === null || content === undefined) return undefined;
  const text = typeof content.text === "string" ? content.text : "";
  switch (content.formatType) {
    case "Text":
      return text.trim() === "" ? undefined : { text, attachments: [] };
    case "Attachments": {
      const attachments: Attachment[] = [];
      for (const item of Array.isArray(content.attachments) ? (content.attachments as unknown[]) : []) {
        const file = item as { name?: unknown; mimeType?: unknown; url?: unknown } | null;
        if (typeof file?.url !== "string" || !/^https?:\/\//.test(file.url)) continue;
        attachments.push({
          name: typeof file.name === "string" && file.name !== "" ? file.name.slice(0, 255) : "file",
          type: typeof file.mimeType === "string" && file.mimeType !== "" ? file.mimeType : "application/octet-stream",
          contentUrl: file.url,
        });
      }
      return attachments.length === 0 && text.trim() === "" ? undefined : { text, attachments };
    }
    case "RichLink": {
      const url = (content.linkItem as { url?: unknown } | null | undefined)?.url;
      return typeof url === "string" && url !== "" ? { text: url, attachments: [] } : undefined;
    }
    default:
      return text.trim() === "" ? undefined : { text, attachments: [] };
  }
}
