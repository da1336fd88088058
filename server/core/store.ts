import type { ConversationState, Message, OpenConversationState, StoredMessage } from "../../protocol/index.js";
import type { Conversation } from "./conversation.js";
import { timestampMs } from "./timestamps.js";

/**
 * A message before the store gives it its `seq`. `append` and `init` take their drafts over (the memory store
 * keeps the object itself as the stored message): a caller does not change a draft after handing it in.
 */
export type MessageDraft = Omit<Message, "seq">;

/** Fields a state change may set together with it. */
export type ConversationPatch = Partial<
  Pick<Conversation, "agent" | "endedAt" | "endReason" | "endedBy" | "desk" | "subject">
>;

export interface AppendOptions {
  /**
   * Idempotency: when a message with this id is already in the conversation, nothing is appended and the stored
   * message is returned (`duplicate`); whether the resend says the same is for the caller to compare.
   */
  dedupe?: { id: string };
  /** Refuse (status `ended`) when the conversation has ended. */
  requireOpen?: boolean;
  /**
   * A per-conversation boolean flag (presence of a participant, "greeted"): the message is appended only when the
   * flag's current value differs from `value`, and the flag is set to `value` in the same step (else `skipped`).
   */
  flag?: { key: string; value: boolean };
  /**
   * A state change made in the same atomic step as the append. When the current state is not in `from`, the
   * state is left alone; with `required`, nothing is appended either (status `skipped`, or `ended`).
   */
  transition?: {
    from: readonly ConversationState[];
    to: ConversationState;
    patch?: ConversationPatch;
    required?: boolean;
    /** Skip the state change while any flag with this prefix is still set (after `flag` is applied). */
    unlessFlagPrefix?: string;
  };
  /** Also queue the message for the connectors of this channel, in the same step. */
  connectorChannel?: string;
  /** Also queue outbox work for the conversation, in the same step (see OutboxRequest). */
  outbox?: readonly OutboxRequest[];
  /**
   * Append only while the conversation's last recorded message (see `findIdle`) is older than this, in epoch ms;
   * else `skipped`. Ending a conversation for inactivity checks this in the same step, so a message that arrives
   * between finding the conversation idle and ending it keeps the conversation open.
   */
  idleBeforeMs?: number;
}

/**
 * The outbox lanes of a conversation, each worked strictly in order: `desk` (the agent side: open the session,
 * the customer's messages, notes for the agent, the customer's typing for a desk that takes it in order, close),
 * `channel` (the customer side when an adapter delivers there: agent replies and activities) and `bot` (the bot that
 * owns the conversation before a human does: the customer's messages, and events such as the agent side closing).
 */
export type OutboxLane = "desk" | "channel" | "bot";

/**
 * Work queued with an append, in the order given, all in the same atomic step:
 * - `message`: deliver the appended message; with `states`, only when the conversation's state (after the append's
 *   transition) is one of them, so that whoever owns the conversation at that moment gets it;
 * - `close`: close the desk session (once: a close already queued is not repeated); `note`: a text for the agent;
 * - `open`: open a (new) desk session;
 * - `event`: tell the bot something (`name`) that is not a message;
 * - `digest`: show the agent the conversation before the appended message (rendered when delivered, from the log),
 *   leaving out the customer's messages from the first message item of lane `from` on (but `except`): those are the
 *   ones a `move` in the same step hands over as messages of their own;
 * - `move`: move the message items waiting in lane `from` to the end of this lane, in order, as fresh items; `from`
 *   keeps only `except` (the item its worker is delivering now) and loses its other items;
 * - `clear`: drop every item of this lane but `except`.
 */
export type OutboxRequest =
  | { lane: OutboxLane; kind: "message"; states?: readonly ConversationState[] }
  | { lane: "desk"; kind: "close"; reason: string }
  | { lane: "desk"; kind: "note"; text: string }
  | { lane: "desk"; kind: "open" }
  | { lane: "bot"; kind: "event"; name: string }
  | { lane: "desk"; kind: "digest"; from: OutboxLane; except?: string }
  | { lane: OutboxLane; kind: "move"; from: OutboxLane; except?: string }
  | { lane: OutboxLane; kind: "clear"; except?: string };

/** One unit of outbox work. */
export interface OutboxItem {
  /**
   * Unique within the conversation's lane: `open`, `note` (queued by `init`), `m:<seq>`, `n:<seq>`, `o:<seq>`,
   * `e:<seq>`, `d:<seq>`, `close`, and for typing the id `queueTyping` was given. A moved item keeps its id.
   */
  id: string;
  kind: "open" | "message" | "close" | "note" | "event" | "digest" | "typing";
  /**
   * For `message`: the seq of the message to deliver (it is read from the log); for `note`, `event` and `digest`:
   * the seq of the message they came with.
   */
  seq?: number;
  /** For `close`. */
  reason?: string;
  /** For `note`: the text for the agent. */
  text?: string;
  /** For `event`: what happened (`agent_closed`). */
  name?: string;
  /** For `digest`: the customer's messages from this seq on are not in it (they follow as messages). */
  upTo?: number;
  /** For `typing`: whether the customer started or stopped typing. */
  state?: "start" | "stop";
  /** For `typing`: when it was queued (epoch ms); a typing indicator is worth nothing late. */
  queuedAt?: number;
  attempts: number;
  /** Epoch ms before which the item is not tried again. */
  notBefore: number;
  lastError?: string;
  /** Epoch ms when the last failed attempt started: what a retry checks the desk for (did it land after all?). */
  lastAttemptAt?: number;
}

export type AppendResult =
  /**
   * `conversation`: the record after the append, when the append asked for a transition (else not read back).
   * `previousState`: the state before, when the transition was made (also when it kept the state, as an agent
   * taking over an active conversation does); absent when it was not.
   */
  | { status: "appended"; message: StoredMessage; conversation?: Conversation; previousState?: ConversationState }
  | { status: "duplicate"; message: StoredMessage }
  | { status: "skipped"; conversation: Conversation }
  | { status: "ended"; conversation: Conversation }
  | { status: "not_found" };

/** When a message (or a conversation created without one) counts as activity, in epoch ms. */
export function activityMs(timestamp: string): number {
  const ms = timestampMs(timestamp);
  // Timestamps are the server's own ISO strings; an unreadable one counts as recent rather than as long idle.
  return Number.isFinite(ms) ? ms : Date.now();
}

/** Entries that must stay in order share a key: their conversation, or for campaign messages their recipient. */
export function connectorOrderingKey(entry: ConnectorEntry): string {
  return entry.message.conversationId === "" ? `to:${entry.message.refId ?? ""}` : entry.message.conversationId;
}

/** A message waiting for a connector of its channel to acknowledge it. */
export interface ConnectorEntry {
  /** Unique per channel: `<conversationId>:<seq>`, or the campaign message id. */
  id: string;
  message: Message;
  enqueuedAt: string;
}

/** A place in the list of open conversations, newest first: a last-activity time (epoch ms) and a conversation. */
export interface ListPosition {
  ms: number;
  id: string;
}

/** Which open conversations `listOpen` returns, and how many. */
export interface OpenConversationQuery {
  /** At least one. */
  states: readonly OpenConversationState[];
  channel?: string;
  subject?: string;
  /** The most conversations the page holds. */
  limit: number;
  /**
   * The most conversations the page may look at (those the `channel` and `subject` filters pass over count): bounds
   * the work of one page. At least `limit`.
   */
  scan: number;
  /** Start after this position (the previous page's `next`); absent: with the most recently active. */
  after?: ListPosition;
}

/** An open conversation as `listOpen` finds it. */
export interface ListedConversation {
  conversation: Conversation;
  /** Its place in the order: when its last message was recorded (see `findIdle`), in epoch ms. */
  lastActivityMs: number;
  /** Its last `seq`. */
  lastSeq: number;
}

export interface OpenConversationPage {
  conversations: ListedConversation[];
  /** Where the next page starts (the last conversation looked at); absent once nothing follows. */
  next?: ListPosition;
}

/** What `init` did: created the conversation, or found the one a key points at (and which key). */
export type InitResult =
  | { conversation: Conversation; created: true }
  | { conversation: Conversation; created: false; matchedBy: "requestId" | "channelRef" };

export interface InitKeys {
  /** A repeated `requestId` returns the conversation it created. */
  requestId: string;
  /** `channel` + `refId`: an open conversation for the same customer account is reused. */
  channelRef?: { channel: string; refId: string };
}

/**
 * Everything Liaison persists. Every method is atomic on its own; implementations: memory (one node) and Redis
 * (many nodes). Both pass `test/contract/store.contract.ts`.
 */
export interface ConversationStore {
  /**
   * Creates the conversation and appends `firstMessages` (the hand-off), unless `keys` find an existing one:
   * the same `requestId`, or an open conversation for the same channel + refId. A created conversation's first
   * messages are given their `seq` (1, 2, …) in place: the drafts become the stored messages.
   */
  init(
    conversation: Conversation,
    keys: InitKeys,
    firstMessages: readonly MessageDraft[],
    options?: { connectorChannel?: string; openDesk?: boolean; deskNote?: string },
  ): Promise<InitResult>;
  get(id: string): Promise<Conversation | undefined>;
  findOpenByChannelRef(channel: string, refId: string): Promise<Conversation | undefined>;
  /** The open conversation of this channel + refId, else the most recent one (ended), else undefined. */
  findLatestByChannelRef(channel: string, refId: string): Promise<Conversation | undefined>;
  /** Appends one message with the next `seq`, applying the options atomically. */
  append(conversationId: string, draft: MessageDraft, options?: AppendOptions): Promise<AppendResult>;
  /** The conversation's last `seq` (0 when it has no message or does not exist). */
  headSeq(conversationId: string): Promise<number>;
  /** Messages with `seq > afterSeq`, oldest first, at most `limit`. */
  read(conversationId: string, afterSeq: number, limit?: number): Promise<StoredMessage[]>;
  /** A message of the conversation by id (server-assigned or client-chosen). */
  findMessage(conversationId: string, messageId: string): Promise<StoredMessage | undefined>;

  /**
   * Queues a message that belongs to no conversation (a campaign message); deduped by `entryId`, also after the
   * entry was delivered (ids are remembered until `sweepEnded` passes their time).
   */
  enqueueConnector(channel: string, entry: ConnectorEntry): Promise<{ entry: ConnectorEntry; created: boolean }>;
  /**
   * The oldest waiting entry of each ordering key (a conversation, or a campaign recipient), oldest first: what
   * can be offered now without letting any message overtake an earlier one of its conversation.
   */
  pendingConnector(channel: string, limit: number): Promise<ConnectorEntry[]>;
  /** Removes an acknowledged entry; unknown ids are ignored (acks are at-least-once too). */
  ackConnector(channel: string, entryId: string): Promise<void>;
  /** Channels that have entries waiting. */
  connectorChannelsWithPending(): Promise<string[]>;

  /**
   * Merges the desk's ids into the conversation's binding and indexes each, so that `findByDeskRef` finds the
   * conversation from a desk webhook; `openedAt` marks the session as open. Returns the updated conversation.
   */
  bindDesk(conversationId: string, ids: Record<string, string>, openedAt?: string): Promise<Conversation | undefined>;
  findByDeskRef(desk: string, key: string, value: string): Promise<Conversation | undefined>;

  /**
   * Claims one of the bot's own ids for the conversation (GMS's integer `chat_id`): sets `key` to `value` in its bot
   * binding and indexes it for `findByBotRef`, unless another conversation of the same bot holds that value
   * (`taken`). Claiming again what the conversation holds is `bound`; a conversation without a bot is `not_found`.
   */
  bindBot(
    conversationId: string,
    key: string,
    value: string,
  ): Promise<{ status: "bound"; conversation: Conversation } | { status: "taken" | "not_found" }>;
  findByBotRef(bot: string, key: string, value: string): Promise<Conversation | undefined>;

  /**
   * Queues the customer's typing on the conversation's desk lane, outside an append (typing is not recorded), for a
   * desk that takes it in order with the messages. When the lane's last item is a typing item that is not its head
   * (so no attempt of it has started), that item takes the new `state` and `queuedAt` instead: a burst of typing
   * while the lane is busy leaves one item. False (nothing queued) when the conversation is unknown or has ended.
   */
  queueTyping(
    conversationId: string,
    typing: { id: string; state: "start" | "stop"; queuedAt: number },
  ): Promise<boolean>;

  /** The first item of the conversation's outbox lane, if any. */
  outboxHead(conversationId: string, lane: OutboxLane): Promise<OutboxItem | undefined>;
  /** Removes the item (only if it is still the head: a no-op for a stale worker). */
  outboxComplete(conversationId: string, lane: OutboxLane, itemId: string): Promise<void>;
  /** Records a failed attempt: the item stays at the head until `notBefore`. */
  outboxDefer(
    conversationId: string,
    lane: OutboxLane,
    itemId: string,
    update: { attempts: number; notBefore: number; lastError: string; lastAttemptAt: number },
  ): Promise<void>;
  /** Conversations whose lane head is due at `now`, oldest due first. */
  outboxDue(lane: OutboxLane, now: number, limit: number): Promise<string[]>;

  /**
   * Takes (or renews) a lease: true when `owner` holds `key` for the next `ttlMs`. Nodes use leases so that one
   * node at a time works a conversation's outbox or offers a connector entry; a dead node's leases run out.
   */
  acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease back if `owner` still holds it. */
  releaseLease(key: string, owner: string): Promise<void>;

  /**
   * Where the conversation's desk stream stopped reading (the legacy Chat `ack`, MIAW's Last-Event-Id, LiveChat's
   * last event id): the node that runs the stream next starts from here. Undefined before the first one is stored.
   */
  deskCursor(conversationId: string): Promise<string | undefined>;
  /** Stores the desk stream's cursor; it is dropped with the conversation by `sweepEnded`. */
  setDeskCursor(conversationId: string, cursor: string): Promise<void>;

  /**
   * Open conversations whose last recorded message (any message; a conversation with none counts from its last
   * `init` message or its `createdAt`) is older than `cutoff`, least recently active first, at most `limit`. Each
   * append moves its conversation to the back of this order (by the message's `timestamp`); an ended conversation
   * leaves it for good, also when a late message is recorded after the end.
   */
  findIdle(cutoff: Date, limit: number): Promise<string[]>;

  /**
   * Open conversations in the given states, most recently active first (by the time `findIdle` orders them, then by
   * id, descending), optionally of one channel and subject: one page, from `after` on. A conversation whose last
   * message moves it while a client pages is not repeated in later pages (it is now before their start).
   */
  listOpen(query: OpenConversationQuery): Promise<OpenConversationPage>;

  countByState(): Promise<Record<ConversationState, number>>;
  /** Deletes ended conversations whose `endedAt` is before `cutoff`; returns how many. */
  sweepEnded(cutoff: Date): Promise<number>;
  /** Throws when the store cannot serve requests. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
