import { createHash } from "node:crypto";
import { z } from "zod";
import type { Attachment, ChatMessage, Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import type { DeskEvent } from "../../core/desk.js";
import { shortcodesToUnicode } from "../../core/emoji.js";
import type { RcVisitorInput } from "./client.js";

export const DESK_NAME = "rocketchat";

/** Visitor tokens Liaison mints carry this prefix, so a webhook can tell our rooms from the widget's. */
export const VISITOR_TOKEN_PREFIX = "lz-";

const UserSchema = z.looseObject({ _id: z.string(), username: z.string().optional(), name: z.string().optional() });

const FileAttachmentSchema = z.looseObject({
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
  agent: UserSchema.optional(),
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
 * The `_id` our message gets in Rocket.Chat: derived from the conversation and our message id, so a retry after an
 * unknown outcome is recognised by Rocket.Chat as the same message (duplicate key) and never shown twice.
 */
export function rocketChatMessageId(conversation: Conversation, message: ChatMessage, part = ""): string {
  return createHash("sha256").update(`${conversation.id}\0${message.id}\0${part}`).digest("base64url").slice(0, 24);
}

/**
 * What a webhook says, as desk events. `fileUrl` turns an agent's file into a link the customer can open.
 * Visitor echoes and system messages are not agent activity and are dropped.
 */
export function eventsFromWebhook(
  payload: WebhookPayload,
  fileUrl: (file: { id: string; name: string; jwt?: string }) => string,
): DeskEvent[] {
  switch (payload.type) {
    case "LivechatSessionTaken": {
      const agent = payload.agent ?? payload.servedBy;
      return agent ? [{ type: "agentJoined", agent: agentParticipant(agent) }] : [];
    }
    case "LivechatSessionQueued":
      return [{ type: "queued" }];
    case "LivechatSessionForwarded": {
      const events: DeskEvent[] = [];
      if (payload.oldServedBy) events.push({ type: "agentLeft", agent: agentParticipant(payload.oldServedBy) });
      const agent = payload.agent ?? payload.servedBy;
      if (agent) events.push({ type: "agentJoined", agent: agentParticipant(agent) });
      return events;
    }
    case "LivechatSession": {
      const closing = payload.messages?.find((message) => message.closingMessage === true);
      const closer = payload.closedBy ?? payload.agent ?? payload.servedBy;
      const byCustomer = payload.closer === "visitor";
      const reason =
        closing?.msg !== undefined && closing.msg !== ""
          ? closing.msg
          : byCustomer
            ? "closed by visitor"
            : "closed by agent";
      return [
        byCustomer || !closer
          ? { type: "closed", by: byCustomer ? "customer" : "system", reason }
          : { type: "closed", by: "agent", agent: agentParticipant(closer), reason },
      ];
    }
    case "Message":
      return (payload.messages ?? []).flatMap((message) => agentMessageEvent(message, fileUrl));
    default:
      // LivechatSessionStart, LeadCapture, LivechatEdit, LivechatOfflineMessage: nothing for the customer.
      return [];
  }
}

function agentMessageEvent(
  message: WebhookMessage,
  fileUrl: (file: { id: string; name: string; jwt?: string }) => string,
): DeskEvent[] {
  // Without agentId it is the visitor's own message echoed back (visitor-message webhooks on); `t` marks system ones.
  if (message.agentId === undefined || message.token !== undefined || (message.t !== undefined && message.t !== "")) {
    return [];
  }
  // The close comment also comes in the LivechatSession event, which ends the conversation with it as the reason.
  if (message.closingMessage === true) return [];
  const id = message._id;
  if (id === undefined) return [];
  const agent = agentParticipant(message.u ?? { _id: message.agentId });
  const attachments: Attachment[] = [];
  let text = message.msg ?? "";
  if (message.file) {
    const detail = message.attachments?.[0];
    const type =
      message.file.type ?? detail?.image_type ?? detail?.audio_type ?? detail?.video_type ?? "application/octet-stream";
    const jwt = jwtOf(message.fileUpload?.publicFilePath);
    attachments.push({
      type,
      name: message.file.name,
      contentUrl: fileUrl({ id: message.file._id, name: message.file.name, ...(jwt === undefined ? {} : { jwt }) }),
    });
    // A file's caption is the attachment's description; `msg` is empty, or the string "undefined" (sendToCRM quirk).
    if (text === "" || text === "undefined") text = detail?.description ?? "";
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

function jwtOf(publicFilePath: string | undefined): string | undefined {
  if (publicFilePath === undefined) return undefined;
  try {
    return new URL(publicFilePath).searchParams.get("token") ?? undefined;
  } catch {
    return undefined;
  }
}
