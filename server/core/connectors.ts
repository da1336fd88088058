import type { Message } from "../../protocol/index.js";
import type { ConnectorEntry, ConversationStore } from "../store/store.js";
import type { CoreLogger, CoreMetrics } from "./ports.js";

/** One connected connector (a socket registered for a channel). */
export interface ConnectorEndpoint {
  readonly id: string;
  /** Offers the message; resolves true only when the connector acknowledged it with `{ ok: true }` in time. */
  deliver(message: Message, timeoutMs: number): Promise<boolean>;
}

export interface ConnectorDispatcherOptions {
  ackTimeoutMs: number;
  maxInFlight: number;
  /** First redelivery delay after a refusal; doubles up to `maxBackoffMs`. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

interface ChannelState {
  endpoints: ConnectorEndpoint[];
  inFlight: Set<string>;
  attempts: Map<string, { count: number; notBefore: number }>;
  pumping: boolean;
  again: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * At-least-once delivery of customer-bound messages to the connectors of a channel. Entries are durable in the
 * store; they leave it only when a connector acknowledges them. Everything goes to one connector socket (the
 * oldest registered) so an SMS is sent once; a delivery not acknowledged in time is offered again, with the same
 * id, to the next socket of the channel. Each conversation has at most one delivery in flight, so its messages
 * arrive in `seq` order.
 */
export class ConnectorDispatcher {
  private readonly channels = new Map<string, ChannelState>();
  private stopped = false;

  constructor(
    private readonly store: ConversationStore,
    private readonly options: ConnectorDispatcherOptions,
    private readonly logger: CoreLogger,
    private readonly metrics: CoreMetrics,
  ) {}

  add(channel: string, endpoint: ConnectorEndpoint): void {
    this.state(channel).endpoints.push(endpoint);
    this.notify(channel);
  }

  remove(channel: string, endpointId: string): void {
    const state = this.channels.get(channel);
    if (!state) return;
    state.endpoints = state.endpoints.filter((endpoint) => endpoint.id !== endpointId);
  }

  hasEndpoint(channel: string): boolean {
    return (this.channels.get(channel)?.endpoints.length ?? 0) > 0;
  }

  /** Something was queued for the channel: deliver what can be delivered now. */
  notify(channel: string): void {
    const state = this.state(channel);
    if (state.endpoints.length === 0 || this.stopped) return;
    if (state.pumping) {
      state.again = true;
      return;
    }
    state.pumping = true;
    void this.pump(channel, state).finally(() => {
      state.pumping = false;
      if (state.again) {
        state.again = false;
        this.notify(channel);
      }
    });
  }

  /** Number of deliveries awaiting an ack, across channels. */
  inFlightCount(): number {
    let count = 0;
    for (const state of this.channels.values()) count += state.inFlight.size;
    return count;
  }

  stop(): void {
    this.stopped = true;
    for (const state of this.channels.values()) clearTimeout(state.timer);
  }

  private async pump(channel: string, state: ChannelState): Promise<void> {
    let pending: ConnectorEntry[];
    try {
      pending = await this.store.pendingConnector(channel, this.options.maxInFlight + state.inFlight.size);
    } catch (error) {
      this.logger.error({ err: error, channel }, "connector queue read failed");
      this.schedule(channel, state, this.options.maxBackoffMs ?? 30_000);
      return;
    }
    const now = Date.now();
    let nextWake = Number.POSITIVE_INFINITY;
    // One delivery in flight per conversation keeps each customer's messages in order (a redelivery never lets a
    // later message overtake it); conversations proceed in parallel.
    const blocked = new Set<string>();
    for (const entry of pending) {
      if (state.inFlight.size >= this.options.maxInFlight) break;
      const key = orderingKey(entry);
      if (blocked.has(key)) continue;
      blocked.add(key);
      if (state.inFlight.has(entry.id)) continue;
      const attempt = state.attempts.get(entry.id);
      if (attempt && attempt.notBefore > now) {
        nextWake = Math.min(nextWake, attempt.notBefore);
        continue;
      }
      const endpoint = state.endpoints[(attempt?.count ?? 0) % state.endpoints.length];
      if (!endpoint) return;
      this.offer(channel, state, entry, endpoint);
    }
    if (Number.isFinite(nextWake)) this.schedule(channel, state, nextWake - now);
  }

  private offer(channel: string, state: ChannelState, entry: ConnectorEntry, endpoint: ConnectorEndpoint): void {
    state.inFlight.add(entry.id);
    const settle = async (acked: boolean): Promise<void> => {
      if (acked) {
        state.attempts.delete(entry.id);
        await this.store.ackConnector(channel, entry.id);
        this.metrics.delivered(`connector:${channel}`);
        return;
      }
      const count = (state.attempts.get(entry.id)?.count ?? 0) + 1;
      const base = this.options.baseBackoffMs ?? 250;
      const delay = Math.min(this.options.maxBackoffMs ?? 30_000, base * 2 ** Math.min(count - 1, 16));
      // A timed-out offer goes straight to the next socket; refusals by every socket back off.
      const notBefore = count % Math.max(1, state.endpoints.length) === 0 ? Date.now() + delay : 0;
      state.attempts.set(entry.id, { count, notBefore });
      this.metrics.retried(`connector:${channel}`);
      this.logger.debug({ channel, entryId: entry.id, attempt: count }, "connector delivery not acknowledged");
    };
    endpoint
      .deliver(entry.message, this.options.ackTimeoutMs)
      .catch(() => false)
      .then(settle)
      .catch((error: unknown) => this.logger.error({ err: error, channel }, "connector ack bookkeeping failed"))
      .finally(() => {
        state.inFlight.delete(entry.id);
        this.notify(channel);
      });
  }

  private schedule(channel: string, state: ChannelState, delayMs: number): void {
    if (state.timer !== undefined || this.stopped) return;
    state.timer = setTimeout(
      () => {
        state.timer = undefined;
        this.notify(channel);
      },
      Math.max(10, delayMs),
    );
    state.timer.unref();
  }

  private state(channel: string): ChannelState {
    let state = this.channels.get(channel);
    if (!state) {
      state = {
        endpoints: [],
        inFlight: new Set(),
        attempts: new Map(),
        pumping: false,
        again: false,
        timer: undefined,
      };
      this.channels.set(channel, state);
    }
    return state;
  }
}

/** Entries that must stay in order share a key: a conversation, or a campaign recipient. */
function orderingKey(entry: ConnectorEntry): string {
  return entry.message.conversationId === "" ? `to:${entry.message.refId ?? ""}` : entry.message.conversationId;
}
