import type { ConversationUpdated, OpenConversationState, ConversationState } from "../../protocol/index.js";
import type { MessageBus, QueueChange } from "../core/ports.js";

/** A subscriber's filter, as parsed (`ConversationFilterSchema`). */
export interface QueueFilter {
  states?: readonly OpenConversationState[];
  channel?: string;
  subject?: string;
}

/** What the feed needs of a subscribed socket. */
export interface QueueSubscriber {
  readonly id: string;
  emit(event: "conversationUpdated", update: ConversationUpdated): void;
  /** The channel a registered connector is limited to, read at each update (it may register after subscribing). */
  scope(): string | undefined;
}

/**
 * This node's subscribers to the queue (`subscribeConversations`). Every node hears every change on the bus (each
 * publishes what it records to all), and tells its own subscribers whose filter matches.
 */
export class QueueFeed {
  private readonly subscribers = new Map<string, { subscriber: QueueSubscriber; filter: QueueFilter }>();
  private readonly unsubscribe: () => void;

  constructor(bus: MessageBus) {
    this.unsubscribe = bus.subscribe((event) => {
      if (event.queue !== undefined && this.subscribers.size > 0) this.deliver(event.queue);
    });
  }

  /** Subscribes the socket, or replaces its filter. */
  subscribe(subscriber: QueueSubscriber, filter: QueueFilter): void {
    this.subscribers.set(subscriber.id, { subscriber, filter });
  }

  /** Whether the socket was subscribed. */
  remove(socketId: string): boolean {
    return this.subscribers.delete(socketId);
  }

  get size(): number {
    return this.subscribers.size;
  }

  close(): void {
    this.unsubscribe();
    this.subscribers.clear();
  }

  private deliver(change: QueueChange): void {
    const update: ConversationUpdated =
      change.previousState === undefined
        ? { conversation: change.conversation }
        : { conversation: change.conversation, previousState: change.previousState };
    for (const { subscriber, filter } of this.subscribers.values()) {
      const scope = subscriber.scope();
      if (scope !== undefined && scope !== change.conversation.channel) continue;
      if (matches(filter, change)) subscriber.emit("conversationUpdated", update);
    }
  }
}

/**
 * Whether a change concerns a filter: its channel and subject, and a watched state before or after it, so that a
 * subscriber also learns when a conversation leaves what it watches (taken, ended).
 */
export function matches(filter: QueueFilter, change: QueueChange): boolean {
  const { conversation, previousState } = change;
  if (filter.channel !== undefined && filter.channel !== conversation.channel) return false;
  if (filter.subject !== undefined && filter.subject !== conversation.subject) return false;
  if (filter.states === undefined) return true;
  const watched = (state: ConversationState | undefined): boolean =>
    state !== undefined && (filter.states as readonly ConversationState[]).includes(state);
  return watched(conversation.state) || watched(previousState);
}
