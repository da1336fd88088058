import type { Attachment, ChatMessage, Participant } from "../../protocol/index.js";
import type { Conversation } from "./conversation.js";

/** What a desk can carry; the core adapts messages to it. */
export interface DeskCapabilities {
  attachments: boolean;
  edits: boolean;
  queuePosition: boolean;
  /**
   * The desk shows the customer typing (`Desk.typing`): `true` sent at once, best effort; `"ordered"` carried on
   * the conversation's desk outbox lane, in order with the messages (a desk that numbers every request, as the
   * legacy Salesforce Chat API does, where a request sent outside that order could take a message's number).
   */
  typing: boolean | "ordered";
  /** The desk shows a bot's buttons; a desk that does not gets their texts written out in the message. */
  buttons: boolean;
  /** Longest text the desk accepts in one message (longer text is split); undefined: no limit. */
  maxTextLength?: number;
}

/** What opening a desk session produced: the desk's own ids (persisted with the conversation) and its state. */
export interface DeskSession {
  ids: Record<string, string>;
  /** Set when the desk assigned an agent at once. */
  agent?: Participant;
  queuePosition?: number;
}

/**
 * The agent side of a conversation (Rocket.Chat, Salesforce, LiveChat). Every call may be retried by the outbox
 * with the same arguments after a failure whose outcome is unknown (a timeout), so each must be idempotent: open
 * finds the session it already opened, send recognises a message it already delivered, close accepts "already
 * closed". Failures are AdapterErrors (`retryable`, `retryAfterMs`) or NoAgentAvailableError.
 */
export interface Desk {
  readonly name: string;
  readonly capabilities: DeskCapabilities;
  /**
   * Ids of the desk session chosen when the conversation starts (a visitor token), stored with it and indexed, so
   * that every retried open reuses them and a desk webhook finds the conversation before the session is open.
   * `stableRefId`: the conversation's channel says its `refId` is a stable, unguessable account id.
   */
  initialIds?(conversation: { channel: string; refId?: string }, stableRefId: boolean): Record<string, string>;
  open(conversation: Conversation): Promise<DeskSession>;
  /**
   * Delivers one customer message (text and/or files) to the session. `retry.since` (epoch ms) is set when an
   * earlier attempt failed in an unknown way: what it may have delivered since then must not be sent again.
   */
  send(
    conversation: Conversation,
    message: ChatMessage,
    retry?: { since: number; outcomeUnknown: boolean },
  ): Promise<void>;
  close(conversation: Conversation, reason: string): Promise<void>;
  /** Throws while the desk cannot be reached (for `/ready`). */
  ping?(): Promise<void>;
  /**
   * For a desk that shows the customer typing (`capabilities.typing`): tells the open session that the customer
   * started or stopped typing. With `typing: true`, best effort, from whichever node the customer is connected to,
   * never retried. With `"ordered"`, the desk outbox lane calls it in order with the messages, with `queued.id`
   * naming this one indicator: an attempt that failed is retried with the same id, and must be idempotent like
   * `send`. `queued.late` says the indicator is worth nothing any more (queued too long ago, or the conversation is
   * with the bot or ended): the desk sends it then only if an earlier attempt, on any node, may have taken a place
   * in its order (a request number that must not be left as a gap).
   */
  typing?(conversation: Conversation, state: "start" | "stop", queued?: { id: string; late: boolean }): Promise<void>;
  /**
   * For a desk that delivers agent events over a connection held open per conversation (a long-poll loop, a
   * server-sent event stream, a websocket) rather than by webhook: runs the inbound stream of one open desk session
   * until the session ends (resolve), `signal` aborts (resolve promptly), or it fails (throw: `DeskStreams` starts it
   * again with backoff, from the last stored cursor). It runs on one node at a time (a lease), from `cursor`: where
   * the last run stopped, undefined for a session's first run.
   */
  stream?(
    conversation: Conversation,
    cursor: string | undefined,
    sink: DeskStreamSink,
    signal: AbortSignal,
  ): Promise<void>;
}

/** Where a desk stream reports what it received. */
export interface DeskStreamSink {
  /**
   * Records the events (idempotently: agent messages are deduped by `externalId`) and then, when given, stores
   * `cursor` (the legacy Chat `ack`, MIAW's Last-Event-Id, LiveChat's last event id) with the conversation. Resolves
   * once both are durable; the stream must not move its own cursor past them before that.
   */
  events(events: readonly DeskEvent[], cursor?: string): Promise<void>;
  /** Stores a cursor without events (a poll that moved the ack forward). */
  cursor(cursor: string): Promise<void>;
}

/** The desk has no agent who could take the conversation now; the outbox tries again later. */
export class NoAgentAvailableError extends Error {
  constructor(
    readonly reason: string,
    readonly retryAfterMs?: number,
  ) {
    super(reason);
    this.name = "NoAgentAvailableError";
  }
}

/**
 * The desk session is gone (the room was closed without Liaison hearing of it, e.g. a lost close webhook): the
 * conversation is over on the agent side.
 */
export class DeskSessionClosedError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "DeskSessionClosedError";
  }
}

/** Inbound events from a desk (webhook or poll), already mapped to our model. */
export type DeskEvent =
  | { type: "queued"; position?: number; estimatedWaitSeconds?: number }
  | { type: "agentJoined"; agent: Participant }
  | { type: "agentLeft"; agent: Participant }
  | {
      type: "agentMessage";
      /** The desk's message id: the idempotency key (`<externalId>` for the original, plus the edit time for edits). */
      externalId: string;
      agent: Participant;
      text: string;
      attachments: Attachment[];
      /** Set on an edit: the desk's id of the original message. */
      editOf?: string;
      editedAt?: string;
    }
  | { type: "closed"; by: "agent" | "customer" | "system"; agent?: Participant; reason: string }
  | { type: "noAgentAvailable"; reason: string }
  /** The agent started or stopped typing: relayed to the customer, never recorded. */
  | { type: "typing"; agent: Participant; state: "start" | "stop" };

/** Where a desk event belongs: the conversation, found by the desk's own reference. */
export interface DeskEventEnvelope {
  desk: string;
  conversationId: string;
  events: DeskEvent[];
}

/** Messages a desk must deliver, as the outbox hands them over. */
export type DeskOutboundMessage = ChatMessage;
