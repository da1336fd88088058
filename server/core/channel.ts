import type { StoredMessage } from "../../protocol/index.js";
import type { ConversationStore, OutboxItem } from "../store/store.js";
import type { Conversation } from "./conversation.js";
import { retryContext, type LaneHandler, type RetryContext } from "./outbox.js";

/**
 * A customer-side system Liaison delivers to itself (RapidPro API v2), as opposed to sockets and connectors that
 * come to Liaison. `deliver` may be repeated with `retry.since` after an attempt whose outcome is unknown: it must
 * not send again what already arrived. It renders what it can (agent replies, an agent taking or closing the chat)
 * and skips what means nothing on its side.
 */
export interface Channel {
  /** The conversation channel it serves (`rapidpro`). */
  readonly name: string;
  deliver(conversation: Conversation, message: StoredMessage, retry?: RetryContext): Promise<void>;
  /** Why the channel cannot deliver now (a rejected credential), for `/ready`; undefined when healthy. */
  problem?(): string | undefined;
}

export interface ChannelEffects {
  /** The channel refused a message for good: the agents are told. */
  channelUndeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void>;
}

/** The channel lane: every customer-bound message of the conversation, in `seq` order. */
export class ChannelLane implements LaneHandler {
  readonly lane = "channel";
  readonly destination: string;

  constructor(
    private readonly store: ConversationStore,
    private readonly channel: Channel,
    private readonly effects: ChannelEffects,
  ) {
    this.destination = `channel:${channel.name}`;
  }

  async deliver(conversation: Conversation, item: OutboxItem): Promise<void> {
    const [message] = await this.store.read(conversation.id, (item.seq ?? 1) - 1, 1);
    if (!message) return;
    await this.channel.deliver(conversation, message, retryContext(item));
  }

  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    return this.effects.channelUndeliverable(conversation, item, reason);
  }
}
