import * as z from "zod";
import type { AckFailure } from "./errors.js";
import {
  AttachmentSchema,
  ButtonRowsSchema,
  ButtonSchema,
  ClientIdSchema,
  ConversationIdSchema,
  ConversationStateSchema,
  ConversationSummarySchema,
  ConversationViewSchema,
  hasContent,
  noContentIssue,
  MAX_ATTACHMENTS,
  MessageSchema,
  OpenConversationStateSchema,
  ParticipantSchema,
  TagSchema,
  TypingStateSchema,
  type Message,
} from "./message.js";

const ChannelNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, _ . - only");

/** `registerConnector`: an API-key socket declares the channel it delivers to. `id` must equal `channel`. */
export const RegisterConnectorSchema = z
  .object({ id: z.string().min(1).max(64), name: z.string().max(256), channel: ChannelNameSchema })
  .refine((value) => value.id === value.channel, { message: "id must equal channel", path: ["id"] });
export type RegisterConnector = z.infer<typeof RegisterConnectorSchema>;

/** Roles an API-key socket may take when it joins (customers join with a token instead). */
export const JoinRoleSchema = z.enum(["agent", "supervisor", "bot", "connector"]);
export type JoinRole = z.infer<typeof JoinRoleSchema>;

/** History messages a `conversationInfo` carries when the join names no `limit`. */
export const HISTORY_PAGE_DEFAULT = 200;
/** The most history messages a join may ask for in one `conversationInfo`. */
export const HISTORY_PAGE_MAX = 1_000;

/** `joinConversation`. */
export const JoinConversationSchema = z.object({
  conversationId: ConversationIdSchema,
  id: z.string().min(1).max(256),
  name: z.string().max(256),
  token: z.string().min(1).max(256).optional(),
  role: JoinRoleSchema.optional(),
  /** The last `seq` the client already has; history after it is sent, and nothing before. */
  since: z.number().int().nonnegative().optional(),
  /**
   * The most history messages `conversationInfo` carries (default {@link HISTORY_PAGE_DEFAULT}, at most
   * {@link HISTORY_PAGE_MAX}). When more follow it says `hasMore`, and the client joins again with `since` set to
   * its `lastSeq`.
   */
  limit: z.number().int().min(1).max(HISTORY_PAGE_MAX).optional(),
});
export type JoinConversation = z.infer<typeof JoinConversationSchema>;

/** `sendMessage` with a chat message. `seq`/`timestamp` are the server's and are ignored if sent. */
export const SendChatMessageSchema = z
  .object({
    type: z.literal("ChatMessage"),
    /** The client's idempotency key: a resend with the same id is acknowledged again, never delivered twice. */
    id: ClientIdSchema.optional(),
    conversationId: ConversationIdSchema,
    /** Informational; the server sets `from` to the authenticated participant. */
    from: ParticipantSchema.optional(),
    to: z.array(ParticipantSchema).max(50).default([]),
    text: z.string().default(""),
    refId: z.string().max(256).optional(),
    attachments: z.array(AttachmentSchema).max(MAX_ATTACHMENTS).default([]),
    tag: TagSchema.default(""),
    replaces: ClientIdSchema.optional(),
    /**
     * A customer pressing one of the bot's buttons. `text` may be left empty: the button's `text` is then recorded
     * as the message's text, what agents and transcripts show.
     */
    button: ButtonSchema.optional(),
    /** Buttons offered by a bot (a socket that joined with `role: "bot"`), in rows; `text` may then be empty. */
    buttons: ButtonRowsSchema.optional(),
  })
  .refine(hasContent, noContentIssue);
export type SendChatMessage = z.input<typeof SendChatMessageSchema>;

/** `sendMessage` with a typing indicator: relayed to the others, never stored. */
export const SendTypingSchema = z.object({
  type: z.literal("ActivityMessage"),
  activityType: z.literal("typing"),
  id: ClientIdSchema.optional(),
  conversationId: ConversationIdSchema,
  info: z.object({ state: TypingStateSchema }),
});
export type SendTyping = z.input<typeof SendTypingSchema>;

/** `sendMessage` payload: a chat message (the default when `type` is absent) or a typing activity. */
export const SendMessageSchema = z.preprocess(
  (value) =>
    value !== null && typeof value === "object" && !Array.isArray(value) && !("type" in value)
      ? { ...value, type: "ChatMessage" }
      : value,
  z.discriminatedUnion("type", [SendChatMessageSchema, SendTypingSchema]),
);
export type SendMessage = SendChatMessage | SendTyping;

/** `endConversation`. */
export const EndConversationSchema = z.object({
  conversationId: ConversationIdSchema,
  reason: z.string().max(256).optional(),
});
export type EndConversation = z.infer<typeof EndConversationSchema>;

/** `leaveConversation` (our addition): stop receiving a conversation; agents produce `participantLeft`. */
export const LeaveConversationSchema = z.object({ conversationId: ConversationIdSchema });
export type LeaveConversation = z.infer<typeof LeaveConversationSchema>;

/** Which conversations of the queue a subscriber hears of; every field narrows it, none: every open conversation. */
export const ConversationFilterSchema = z.strictObject({
  /** States to watch (default all three): an update is sent when the conversation enters, is in or leaves one. */
  states: z
    .array(OpenConversationStateSchema)
    .min(1)
    .max(3)
    .transform((states) => [...new Set(states)])
    .optional(),
  /** Only conversations of this channel (`web`, `sms`, …). */
  channel: z.string().trim().toLowerCase().pipe(ChannelNameSchema).optional(),
  /** Only conversations with this subject (the department that routes them). */
  subject: z.string().trim().min(1).max(256).optional(),
});
export type ConversationFilter = z.input<typeof ConversationFilterSchema>;

/**
 * `subscribeConversations` (API-key sockets only): from now on the socket receives `conversationUpdated` for the
 * conversations the filter matches, whichever node records the change. Subscribing again replaces the filter.
 * Sent without a payload, it watches every open conversation.
 */
export const SubscribeConversationsSchema = z.preprocess(
  (value) => (value === undefined ? {} : value),
  ConversationFilterSchema,
);

/** `unsubscribeConversations`: no more `conversationUpdated` for this socket (`{}` or no payload). */
export const UnsubscribeConversationsSchema = z.preprocess(
  (value) => (value === undefined ? {} : value),
  z.strictObject({}),
);
export type UnsubscribeConversations = z.infer<typeof UnsubscribeConversationsSchema>;

/**
 * `conversationUpdated`: a conversation was created (no `previousState`), changed state (queued, taken by an agent,
 * handed off, ended) or was taken by another agent. `conversation` is the summary as `GET /api/conversations` lists
 * it, as of that change.
 */
export const ConversationUpdatedSchema = z.object({
  conversation: ConversationSummarySchema,
  /** The state before the change; absent when the change created the conversation. */
  previousState: ConversationStateSchema.optional(),
});
export type ConversationUpdated = z.infer<typeof ConversationUpdatedSchema>;

/**
 * `conversationInfo`, emitted to a socket after it joins: one page of history. While a page says `hasMore`, the
 * socket receives no `messageArrived` for the conversation (what is recorded meanwhile comes in the next pages);
 * the join whose page reaches the end of the log starts the live feed right after that page.
 */
export const ConversationInfoSchema = z.object({
  conversation: ConversationViewSchema,
  /** History after the join's `since`, oldest first, at most its `limit`; whispers removed for customers and connectors. */
  messages: z.array(MessageSchema),
  /** More of the log follows `lastSeq`: join again with `since: lastSeq` for the next page. */
  hasMore: z.boolean(),
  /**
   * The `seq` this page reaches in the conversation's log, whispers a customer does not see included (so it may be
   * beyond the last of `messages`): the `since` of the next join. With no message after `since`, `since` itself
   * (or the last `seq` of the log, when `since` is beyond it).
   */
  lastSeq: z.number().int().nonnegative(),
  participant: ParticipantSchema,
  role: z.enum(["customer", "agent", "supervisor", "bot", "connector"]),
});
export type ConversationInfo = z.infer<typeof ConversationInfoSchema>;

/** Success acks, per event. */
export const RegisterConnectorAckSchema = z.object({
  ok: z.literal(true),
  connector: z.object({ id: z.string(), name: z.string(), channel: z.string() }),
});
export const OkAckSchema = z.object({ ok: z.literal(true) });
export const SendAckSchema = z.object({
  ok: z.literal(true),
  id: z.string(),
  /** Absent for typing, which is not recorded. */
  seq: z.number().int().positive().optional(),
  timestamp: z.iso.datetime(),
});
export const EndAckSchema = z.object({ ok: z.literal(true), alreadyEnded: z.boolean().optional() });

export type OkAck = z.infer<typeof OkAckSchema>;
export type RegisterConnectorAck = z.infer<typeof RegisterConnectorAckSchema>;
export type SendAck = z.infer<typeof SendAckSchema>;
export type EndAck = z.infer<typeof EndAckSchema>;

/** Every ack is either a success of its event's shape or `{ ok: false, error }`. */
export type Ack<T> = T | AckFailure;

/** Client → server events: payload and ack, for typed clients. */
export interface ClientToServerEvents {
  registerConnector: (payload: RegisterConnector, ack: (res: Ack<RegisterConnectorAck>) => void) => void;
  joinConversation: (payload: JoinConversation, ack: (res: Ack<OkAck>) => void) => void;
  sendMessage: (payload: SendMessage, ack: (res: Ack<SendAck>) => void) => void;
  endConversation: (payload: EndConversation, ack: (res: Ack<EndAck>) => void) => void;
  leaveConversation: (payload: LeaveConversation, ack: (res: Ack<OkAck>) => void) => void;
  subscribeConversations: (payload: ConversationFilter, ack: (res: Ack<OkAck>) => void) => void;
  unsubscribeConversations: (payload: UnsubscribeConversations, ack: (res: Ack<OkAck>) => void) => void;
}

/** Server → client events. Connectors acknowledge `messageArrived` with `{ ok: true }`. */
export interface ServerToClientEvents {
  messageArrived: (message: Message, ack: (res: OkAck) => void) => void;
  conversationInfo: (info: ConversationInfo) => void;
  /** To sockets that subscribed to the queue (`subscribeConversations`). */
  conversationUpdated: (update: ConversationUpdated) => void;
}

export const clientEventNames = [
  "registerConnector",
  "joinConversation",
  "sendMessage",
  "endConversation",
  "leaveConversation",
  "subscribeConversations",
  "unsubscribeConversations",
] as const satisfies readonly (keyof ClientToServerEvents)[];

/** The schemas of one event: its payload and, when the receiver answers with an ack, the ack's success shape. */
export interface EventSchemas {
  payload: z.ZodType;
  /** A failed ack is always {@link AckFailure}. */
  ack?: z.ZodType;
}

/**
 * Every client → server event with its schemas, the same that validate it on the server. Kept in step with
 * {@link ClientToServerEvents} by the compiler: a missing or extra event does not compile. The published AsyncAPI
 * document is generated from it.
 */
export const clientEvents = {
  registerConnector: { payload: RegisterConnectorSchema, ack: RegisterConnectorAckSchema },
  joinConversation: { payload: JoinConversationSchema, ack: OkAckSchema },
  sendMessage: { payload: SendMessageSchema, ack: SendAckSchema },
  endConversation: { payload: EndConversationSchema, ack: EndAckSchema },
  leaveConversation: { payload: LeaveConversationSchema, ack: OkAckSchema },
  subscribeConversations: { payload: SubscribeConversationsSchema, ack: OkAckSchema },
  unsubscribeConversations: { payload: UnsubscribeConversationsSchema, ack: OkAckSchema },
} as const satisfies Record<keyof ClientToServerEvents, EventSchemas>;

/** Every server → client event with its schemas, kept in step with {@link ServerToClientEvents} the same way. */
export const serverEvents = {
  messageArrived: { payload: MessageSchema, ack: OkAckSchema },
  conversationInfo: { payload: ConversationInfoSchema },
  conversationUpdated: { payload: ConversationUpdatedSchema },
} as const satisfies Record<keyof ServerToClientEvents, EventSchemas>;
