import type { StoredMessage } from "../../protocol/index.js";
import type { ConversationStore, OutboxItem } from "./store.js";
import type { Conversation } from "./conversation.js";
import { AdapterError } from "./errors.js";
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
}

export interface ChannelEffects {
  /** The channel refused a message for good: the agents are told. */
  channelUndeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void>;
}

/** The channel lane: every customer-bound message of a conversation, in `seq` order, to its conversation's channel. */
export class ChannelLane implements LaneHandler {
  readonly lane = "channel";
  readonly destination: string;
  private readonly channels: ReadonlyMap<string, Channel>;

  constructor(
    private readonly store: ConversationStore,
    channels: readonly Channel[],
    private readonly effects: ChannelEffects,
  ) {
    this.channels = new Map(channels.map((channel) => [channel.name, channel]));
    this.destination = channels.length === 1 ? `channel:${channels[0]?.name ?? ""}` : "channel";
  }

  async deliver(conversation: Conversation, item: OutboxItem): Promise<void> {
    const channel = this.channels.get(conversation.channel);
    if (channel === undefined) throw new AdapterError(conversation.channel, "no adapter serves this channel", false);
    const [message] = await this.store.read(conversation.id, (item.seq ?? 1) - 1, 1);
    if (!message) return;
    await channel.deliver(conversation, message, retryContext(item));
  }

  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    return this.effects.channelUndeliverable(conversation, item, reason);
  }
}
