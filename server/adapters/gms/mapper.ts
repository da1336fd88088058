import { z } from "zod";
import { ButtonSchema, ContentUrlSchema, MimeTypeSchema, type ChatMessage } from "../../../protocol/index.js";
import type { BotOutput } from "../../core/bot.js";
import type { Conversation } from "../../core/conversation.js";
import { decodeDataUrl } from "../http.js";

/** The platform's `chat_id`: an integer (its documentation's type), one per conversation, below 2³¹. */
export const MAX_CHAT_ID = 2 ** 31 - 1;

/** The key of the `chat_id` in a conversation's bot binding. */
export const CHAT_ID_KEY = "chatId";

/** The visitor's fields the platform maps into its channel variables. */
export interface GmsVisitorFields {
  name?: string;
  login?: string;
  phone?: string;
  email?: string;
  site?: string;
}

/** One customer message as the platform's webhook takes it (`new_message`). */
export interface GmsEvent {
  event: "new_message";
  chat_id: number;
  visitor: { id: string; fields: GmsVisitorFields };
  message:
    | { id: string; kind: "visitor"; text: string }
    | {
        id: string;
        kind: "file_visitor";
        data: { id: string; state: "ready"; name: string; content_type: string; size: number; url: string };
      }
    | { id: string; kind: "keyboard_response"; data: { button: { id: string; text: string } } };
}

/** Where a customer's file is served to the platform, by signed link: `/files/gms/<conversation>/<seq>/<index>/<name>`. */
export const FILE_PATH = "/files/gms";

export function filePath(conversationId: string, seq: number, index: number, name: string): string {
  return `${FILE_PATH}/${encodeURIComponent(conversationId)}/${seq}/${index}/${encodeURIComponent(name)}`;
}

/**
 * The events for one customer message, in order: the button press (`keyboard_response`) or the text (`visitor`),
 * then each file (`file_visitor`, as a signed, expiring Liaison link). A file's size is known for a file sent
 * inline (`data:`); for one sent as a link it is not, and is given as 0. Ids derive from the message id, so a
 * repeated delivery repeats the same ids (the platform drops a `message.id` it has seen).
 */
export function eventsFor(
  conversation: Conversation,
  chatId: number,
  message: ChatMessage,
  fileUrl: (index: number, name: string) => string,
): GmsEvent[] {
  const base = { event: "new_message" as const, chat_id: chatId, visitor: visitorOf(conversation) };
  const events: GmsEvent[] = [];
  if (message.button !== undefined) {
    events.push({
      ...base,
      message: {
        id: message.id,
        kind: "keyboard_response",
        data: { button: { id: message.button.id, text: message.button.text } },
      },
    });
  } else if (message.text.trim() !== "") {
    events.push({ ...base, message: { id: message.id, kind: "visitor", text: message.text } });
  }
  message.attachments.forEach((attachment, index) => {
    events.push({
      ...base,
      message: {
        id: `${message.id}:file:${index}`,
        kind: "file_visitor",
        data: {
          id: `${message.id}:${index}`,
          state: "ready",
          name: attachment.name,
          content_type: attachment.type,
          size: decodeDataUrl(attachment.contentUrl)?.byteLength ?? 0,
          url: fileUrl(index, attachment.name),
        },
      },
    });
  });
  return events;
}

/** The same `visitor.id` for every message of the conversation: its customer's participant id. */
function visitorOf(conversation: Conversation): GmsEvent["visitor"] {
  const fields: GmsVisitorFields = {};
  const { customer } = conversation;
  if (customer.name.trim() !== "") fields.name = customer.name;
  if (customer.phone !== undefined) fields.phone = customer.phone;
  if (customer.email !== undefined) fields.email = customer.email;
  // The customer's account on their channel (a phone number for SMS, a login elsewhere), when the channel named one.
  if (conversation.refId !== undefined) fields.login = conversation.refId;
  if (conversation.url !== undefined) fields.site = conversation.url;
  return { id: conversation.customer.id, fields };
}

const ChatIdSchema = z
  .number({ error: "chat_id must be an integer" })
  .int("chat_id must be an integer")
  .min(1, "chat_id must be positive")
  .max(MAX_CHAT_ID, "chat_id is not one Liaison gave");

/** A button from the platform: ids may come as numbers from bot builders; Liaison keeps them as text. */
const GmsButtonSchema = z.object({
  id: z.union([z.string(), z.number()]).transform(String).pipe(ButtonSchema.shape.id),
  text: ButtonSchema.shape.text,
});

const OperatorMessage = z.object({ kind: z.literal("operator"), text: z.string().min(1) });
const KeyboardMessage = z.object({
  kind: z.literal("keyboard"),
  text: z.string().optional(),
  buttons: z.array(z.array(GmsButtonSchema).min(1).max(10)).min(1).max(20),
});
const FileMessage = z.object({
  kind: z.literal("file_operator"),
  data: z.object({
    url: ContentUrlSchema.refine((url) => /^https?:\/\//i.test(url), "must be an http(s) URL"),
    name: z.string().min(1).max(255),
    media_type: MimeTypeSchema,
  }),
});

/** `POST /gms/send_message`: `{ chat_id, message }`, the message an `operator` text, a `keyboard` or a `file_operator`. */
export const SendMessageBodySchema = z.object({
  chat_id: ChatIdSchema,
  message: z.discriminatedUnion("kind", [OperatorMessage, KeyboardMessage, FileMessage], {
    error: "message.kind must be operator, keyboard or file_operator",
  }),
});

/** `POST /gms/close_chat`. */
export const CloseChatBodySchema = z.object({ chat_id: ChatIdSchema });

/** `POST /gms/redirect_chat`: `dep_key` names the department (the queue); `operator_id` is not used by Liaison. */
export const RedirectChatBodySchema = z.object({
  chat_id: ChatIdSchema,
  dep_key: z.union([z.string(), z.number()]).transform(String).optional(),
  operator_id: z.union([z.string(), z.number()]).optional(),
});

/** A `send_message` as the bot output Liaison records. The platform gives its calls no id: each is one message. */
export function replyOf(message: z.output<typeof SendMessageBodySchema>["message"]): BotOutput {
  switch (message.kind) {
    case "operator":
      return { type: "reply", text: message.text, attachments: [] };
    case "keyboard":
      return { type: "reply", text: message.text ?? "", buttons: message.buttons, attachments: [] };
    case "file_operator":
      return {
        type: "reply",
        text: "",
        attachments: [{ type: message.data.media_type, name: message.data.name, contentUrl: message.data.url }],
      };
  }
}
