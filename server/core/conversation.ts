import type {
  ConversationId,
  ConversationState,
  ConversationSummary,
  ConversationView,
  Member,
  Participant,
  Role,
} from "../../protocol/index.js";

/** What Liaison knows of the customer, from `init`. */
export interface CustomerProfile extends Participant {
  firstName: string;
  lastName?: string;
  email?: string;
  phone?: string;
}

/** The desk a conversation is handed to, with the desk's own ids (room id, visitor token, chat id...). */
export interface DeskBinding {
  desk: string;
  ids: Record<string, string>;
  /** When the desk session was opened (absent: not yet, or never). */
  openedAt?: string;
}

/** The bot a conversation started with (`BOT`), and the bot's own ids for it (GMS's `chat_id`). */
export interface BotBinding {
  /** The bot's `BOT` name (`gms`). */
  bot: string;
  /** The bot participant's name (`BOT_NAME` when the conversation started): the `from` of its replies. */
  name: string;
  ids: Record<string, string>;
}

/** The bot participant's id in every conversation: its replies come `from` it. */
export const BOT_PARTICIPANT_ID = "bot";

/** A conversation as the store holds it. */
export interface Conversation {
  id: ConversationId;
  /** The customer's bearer token for this one conversation. */
  token: string;
  channel: string;
  refId?: string;
  customer: CustomerProfile;
  subject: string;
  language: string;
  url?: string;
  comment?: string;
  /** The customer's IANA time zone, when their client said (transcripts print times in it). */
  timeZone?: string;
  state: ConversationState;
  desk: DeskBinding;
  /** Set when a bot answered first: it owns the conversation in state `bot`. */
  bot?: BotBinding;
  agent?: Participant;
  requestId: string;
  createdAt: string;
  endedAt?: string;
  endReason?: string;
  endedBy?: Member;
  /** Started from a test tool (RapidPro's flow simulator): its customer is not real, nothing is sent to them. */
  simulated?: boolean;
  /** Started by a trusted caller (an API key, a RapidPro flow): its phone and e-mail were vouched for. */
  verified?: boolean;
}

/**
 * Legal state changes: `bot` → `queued` → `active` → `ended`; a desk may hand a conversation back to the queue
 * (agent left, forwarded), an agent may take a conversation over from the bot (`bot` → `active`), the agent side's
 * close may give it back to the bot (`BOT_AFTER_AGENT=resume`), and every open state may end. `ended` is final.
 */
const transitions: Readonly<Record<ConversationState, readonly ConversationState[]>> = {
  bot: ["queued", "active", "ended"],
  queued: ["active", "bot", "ended"],
  active: ["queued", "bot", "ended"],
  ended: [],
};

export function canTransition(from: ConversationState, to: ConversationState): boolean {
  return transitions[from].includes(to);
}

/** States from which `to` can be reached. */
export function statesLeadingTo(to: ConversationState): ConversationState[] {
  return (Object.keys(transitions) as ConversationState[]).filter((from) => canTransition(from, to));
}

export const openStates: readonly ConversationState[] = ["bot", "queued", "active"];

export function isOpen(conversation: Pick<Conversation, "state">): boolean {
  return conversation.state !== "ended";
}

/** What a participant sees of a conversation. */
export function toView(conversation: Conversation): ConversationView {
  const customer = { id: conversation.customer.id, name: conversation.customer.name };
  const participants: Member[] = [{ ...customer, role: "customer" }];
  if (conversation.bot) participants.push({ id: BOT_PARTICIPANT_ID, name: conversation.bot.name, role: "bot" });
  if (conversation.agent) participants.push({ ...conversation.agent, role: "agent" });
  const view: ConversationView = {
    id: conversation.id,
    channel: conversation.channel,
    subject: conversation.subject,
    language: conversation.language,
    state: conversation.state,
    customer,
    participants,
    createdAt: conversation.createdAt,
  };
  if (conversation.agent) view.agent = conversation.agent;
  if (conversation.endedAt) view.endedAt = conversation.endedAt;
  return view;
}

/** What the queue shows of a conversation (`GET /api/conversations`, `conversationUpdated`). */
export function toSummary(conversation: Conversation, lastMessageAt: string, lastSeq: number): ConversationSummary {
  const summary: ConversationSummary = {
    id: conversation.id,
    channel: conversation.channel,
    subject: conversation.subject,
    language: conversation.language,
    state: conversation.state,
    customer: { id: conversation.customer.id, name: conversation.customer.name },
    desk: conversation.desk.desk,
    createdAt: conversation.createdAt,
    lastMessageAt,
    lastSeq,
  };
  if (conversation.agent) summary.agent = { id: conversation.agent.id, name: conversation.agent.name };
  return summary;
}

/** Roles that see (and may send) whispers: the agent side's people, never customers, connectors or bots. */
export function seesWhispers(role: Role): boolean {
  return role === "agent" || role === "supervisor" || role === "system";
}
