import type { ConversationState, ConversationSummary, Message, Role } from "../../protocol/index.js";

/** A message published to every node once it is recorded (or, for typing, once it is accepted). */
export interface Published {
  conversationId: string;
  message: Message;
  /** The socket that sent it: it gets the ack instead of `messageArrived`. */
  originSocketId?: string;
  /** For the agent side only (a supervisor's typing): customers and connectors never see it. */
  staffOnly?: boolean;
  /**
   * Set when the message created the conversation or came with a change of its state (or of its agent): what the
   * queue's subscribers are told (`conversationUpdated`).
   */
  queue?: QueueChange;
}

/** A conversation's new place in the queue. */
export interface QueueChange {
  /** The conversation as of the message. */
  conversation: ConversationSummary;
  /** Its state before; absent when the message created it. */
  previousState?: ConversationState;
}

/**
 * Carries recorded messages to the sockets of the conversation, wherever they are connected. In process for one
 * node; across nodes it rides the Socket.IO adapter. Best effort: a subscriber that misses a message catches up
 * from the store (gaps in `seq` are refilled), so the bus never has to be durable.
 */
export interface MessageBus {
  publish(event: Published): void;
  subscribe(listener: (event: Published) => void): () => void;
}

/**
 * Counters the core reports; the composition root binds them to Prometheus. A destination is
 * `connector:<channel>`, `desk:<name>`, `channel:<name>` or `bot:<name>`.
 */
export interface CoreMetrics {
  messageIn(channel: string, role: Role): void;
  delivered(destination: string): void;
  retried(destination: string): void;
  failed(destination: string): void;
  /**
   * A conversation changed hands: to the desk (`bot`, `bot_unavailable`, `takeover`) or back to the bot
   * (`agent_closed`).
   */
  handOff(reason: string): void;
  /** A bot said or decided something while it did not own the conversation: not recorded, not delivered. */
  botOutputDropped(bot: string, output: string): void;
}

export const noMetrics: CoreMetrics = {
  messageIn: () => undefined,
  delivered: () => undefined,
  retried: () => undefined,
  failed: () => undefined,
  handOff: () => undefined,
  botOutputDropped: () => undefined,
};

/** A clock the tests can steer. */
export type Clock = () => Date;

/** The logging surface the core needs (pino satisfies it). */
export interface CoreLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
