import * as z from "zod";

/** Ids chosen by clients (message ids, participant ids) are bounded, printable, and never empty. */
export const ClientIdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w.:@+\-=/]+$/, "use letters, digits and . _ : @ + - = / only");

export const ConversationIdSchema = z.string().min(1).max(64);
export type ConversationId = z.infer<typeof ConversationIdSchema>;
export type MessageId = string;

/** A person or program taking part in a conversation. */
export const ParticipantSchema = z.object({
  id: z.string().min(1).max(256),
  name: z.string().max(256),
});
export type Participant = z.infer<typeof ParticipantSchema>;

export const roles = ["customer", "agent", "supervisor", "bot", "connector", "system"] as const;
export const RoleSchema = z.enum(roles);
export type Role = z.infer<typeof RoleSchema>;

/** A participant together with the role it plays in the conversation. */
export const MemberSchema = ParticipantSchema.extend({ role: RoleSchema });
export type Member = z.infer<typeof MemberSchema>;

const MAX_URL = 2048;
const MAX_DATA_URL = 8 * 1024 * 1024;

/**
 * Whether a client may hand us this URL: http(s) or data:. `file:` and every other scheme are refused, because the
 * server never reads its own disk (or anything else) on a client's behalf.
 */
export function isContentUrl(value: string): boolean {
  if (value.startsWith("data:")) return isReadableDataUrl(value);
  if (value.length > MAX_URL) return false;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** A URL a client may hand us ({@link isContentUrl}). */
export const ContentUrlSchema = z.string().max(MAX_DATA_URL).refine(isContentUrl, {
  message: "must be an http(s) or data: URL",
});

/** A data: URL whose payload can actually be decoded (valid base64, or valid percent-encoding). */
function isReadableDataUrl(value: string): boolean {
  const match = /^data:[\w.+-]+\/[\w.+-]+(;[\w.+-]+=[\w.+-]+)*(;base64)?,/i.exec(value);
  if (!match) return false;
  const payload = value.slice(match[0].length);
  if (match[2] !== undefined) return /^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(payload);
  try {
    decodeURIComponent(payload);
    return true;
  } catch {
    return false;
  }
}

export const MimeTypeSchema = z
  .string()
  .max(255)
  .regex(/^[\w.+-]+\/[\w.+-]+$/, "must be a MIME type such as image/png");

/** A file carried by a message. */
export const AttachmentSchema = z.object({
  type: MimeTypeSchema,
  name: z.string().min(1).max(255),
  contentUrl: ContentUrlSchema,
  thumbnailUrl: ContentUrlSchema.optional(),
});
export type Attachment = z.infer<typeof AttachmentSchema>;

export const MAX_ATTACHMENTS = 10;

/** A button a bot offers: the customer presses it, and the bot receives its `id` and `text`. */
export const ButtonSchema = z.object({ id: z.string().min(1).max(256), text: z.string().min(1).max(256) });
export type Button = z.infer<typeof ButtonSchema>;

/** A bot's buttons, in rows (a row is shown side by side where there is room). */
export const ButtonRowsSchema = z.array(z.array(ButtonSchema).min(1).max(10)).max(20);

/**
 * A message must say something: text that is not blank, at least one file, a button press, or (a bot's) buttons.
 */
export const hasContent = (value: {
  text: string;
  attachments: readonly unknown[];
  button?: unknown;
  buttons?: readonly unknown[];
}): boolean =>
  value.text.trim().length > 0 ||
  value.attachments.length > 0 ||
  value.button !== undefined ||
  (value.buttons?.length ?? 0) > 0;
export const noContentIssue = {
  message: "a message needs text, an attachment, a button press or buttons",
  path: ["text"],
};

export const TagSchema = z.enum(["", "whisper"]);
export type Tag = z.infer<typeof TagSchema>;

/** Fields every message carries once the server has recorded it. */
const envelope = {
  id: z.string().min(1),
  /** Empty only for connector campaign messages sent outside any conversation. */
  conversationId: z.string(),
  timestamp: z.iso.datetime(),
  from: ParticipantSchema,
  to: z.array(ParticipantSchema),
  refId: z.string().optional(),
};

/** A message with text and/or files, as the server emits it in `messageArrived` and history. */
export const ChatMessageSchema = z.object({
  type: z.literal("ChatMessage"),
  ...envelope,
  /** Position in the conversation (1, 2, 3...); 0 only for a campaign message outside any conversation. */
  seq: z.number().int().nonnegative(),
  text: z.string(),
  attachments: z.array(AttachmentSchema),
  tag: TagSchema,
  /** Set on an agent's edit: the id of the message this one corrects. */
  replaces: z.string().optional(),
  /** A bot's buttons, in rows (its `text` may then be empty): the customer answers by pressing one. */
  buttons: ButtonRowsSchema.optional(),
  /** A customer's press of one of the bot's buttons; `text` is then the button's visible text. */
  button: ButtonSchema.optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const TypingStateSchema = z.enum(["start", "stop"]);

/** `info` of each activity type. */
export const activityInfoSchemas = {
  greetings: z.object({ text: z.string() }),
  typing: z.object({ participant: ParticipantSchema, state: TypingStateSchema }),
  handOff: z.object({ subject: z.string(), desk: z.string(), reason: z.string() }),
  queuePosition: z.object({
    position: z.number().int().nonnegative(),
    estimatedWaitSeconds: z.number().nonnegative().optional(),
  }),
  noAgentAvailable: z.object({ subject: z.string(), reason: z.string(), text: z.string() }),
  participantAdded: z.object({ participant: ParticipantSchema, role: RoleSchema }),
  participantRemoved: z.object({ participant: ParticipantSchema, role: RoleSchema }),
  participantJoined: z.object({ participant: ParticipantSchema, role: RoleSchema }),
  participantLeft: z.object({ participant: ParticipantSchema, role: RoleSchema }),
  endOfConversation: z.object({ reason: z.string(), endedBy: MemberSchema }),
  /** Our addition: a message could never be delivered to its destination (the sender is told). */
  deliveryFailed: z.object({ messageId: z.string(), destination: z.string(), reason: z.string() }),
} as const;

export type ActivityType = keyof typeof activityInfoSchemas;
export type ActivityInfo<T extends ActivityType> = z.infer<(typeof activityInfoSchemas)[T]>;

const activityVariant = <T extends ActivityType>(type: T) =>
  z.object({
    type: z.literal("ActivityMessage"),
    ...envelope,
    /** Absent only on `typing`, which is relayed and never stored. */
    seq: z.number().int().positive().optional(),
    activityType: z.literal(type),
    info: activityInfoSchemas[type],
  });

export const ActivityMessageSchema = z.discriminatedUnion("activityType", [
  activityVariant("greetings"),
  activityVariant("typing"),
  activityVariant("handOff"),
  activityVariant("queuePosition"),
  activityVariant("noAgentAvailable"),
  activityVariant("participantAdded"),
  activityVariant("participantRemoved"),
  activityVariant("participantJoined"),
  activityVariant("participantLeft"),
  activityVariant("endOfConversation"),
  activityVariant("deliveryFailed"),
]);
export type ActivityMessage = z.infer<typeof ActivityMessageSchema>;
export type ActivityOf<T extends ActivityType> = Extract<ActivityMessage, { activityType: T }>;

/** Anything that can arrive in `messageArrived` or in history. */
export const MessageSchema = z.union([ChatMessageSchema, ActivityMessageSchema]);
export type Message = ChatMessage | ActivityMessage;

/** A recorded message always has a `seq` (only typing activities have none, and they are never recorded). */
export type StoredMessage = Message & { seq: number };

export const conversationStates = ["bot", "queued", "active", "ended"] as const;
export const ConversationStateSchema = z.enum(conversationStates);
export type ConversationState = z.infer<typeof ConversationStateSchema>;

/** What participants see of a conversation (`conversationInfo.conversation`). */
export const ConversationViewSchema = z.object({
  id: z.string(),
  channel: z.string(),
  subject: z.string(),
  language: z.string(),
  state: ConversationStateSchema,
  customer: ParticipantSchema,
  agent: ParticipantSchema.optional(),
  /**
   * Who takes part, each with their role: the customer, the bot when one answered first (id `bot`, `BOT_NAME`), and
   * the agent who has the conversation now.
   */
  participants: z.array(MemberSchema),
  createdAt: z.iso.datetime(),
  endedAt: z.iso.datetime().optional(),
});
export type ConversationView = z.infer<typeof ConversationViewSchema>;

/** The states of a conversation that is not over: what the queue lists and watches. */
export const openConversationStates = ["bot", "queued", "active"] as const;
export const OpenConversationStateSchema = z.enum(openConversationStates);
export type OpenConversationState = z.infer<typeof OpenConversationStateSchema>;

/**
 * A conversation as the queue shows it to agent applications (`GET /api/conversations`, `conversationUpdated`).
 */
export const ConversationSummarySchema = z.object({
  id: z.string(),
  channel: z.string(),
  subject: z.string(),
  language: z.string(),
  state: ConversationStateSchema,
  customer: ParticipantSchema,
  /** The desk the conversation is handed to: `socket` (the built-in desk), `rocketchat`, … */
  desk: z.string(),
  /** The agent who took it, while one has. */
  agent: ParticipantSchema.optional(),
  createdAt: z.iso.datetime(),
  /** When its last message (of any kind, activities included) was recorded. */
  lastMessageAt: z.iso.datetime(),
  /**
   * The `seq` of its last message when this summary was taken. Of two summaries of one conversation (updates from
   * several nodes may arrive out of order), the one with the higher `lastSeq` is the newer.
   */
  lastSeq: z.number().int().nonnegative(),
});
export type ConversationSummary = z.infer<typeof ConversationSummarySchema>;
