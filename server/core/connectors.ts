import type { Message } from "../../protocol/index.js";
import { connectorOrderingKey, type ConnectorEntry, type ConversationStore } from "./store.js";
import type { CoreLogger, CoreMetrics } from "./ports.js";

/** How an offer ended: acknowledged `{ ok: true }`, refused (any other answer), or no answer in time. */
export type DeliveryOutcome = "acked" | "refused" | "timeout";

/** One connected connector (a socket registered for a channel). */
export interface ConnectorEndpoint {
  readonly id: string;
  /** Offers the message; settles as soon as the connector answers, the timeout passes, or the socket goes away. */
  deliver(message: Message, timeoutMs: number): Promise<DeliveryOutcome>;
}

export interface ConnectorDispatcherOptions {
  ackTimeoutMs: number;
  maxInFlight: number;
  /** Explicit refusals after which a message is given up (and reported); timeouts never count. */
  maxRefusals: number;
  /** First redelivery delay after every socket refused; doubles up to `maxBackoffMs`. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** A message given up: the core records it as a `deliveryFailed` activity. */
  onUndeliverable?: (channel: string, entry: ConnectorEntry, reason: string) => Promise<void>;
  /** This node's name: it claims each entry before offering it, so two nodes never offer the same one at once. */
  nodeId?: string;
}

interface ChannelState {
  endpoints: ConnectorEndpoint[];
  /** Entry id → ordering key of each offer awaiting an answer. */
  inFlight: Map<string, string>;
  attempts: Map<string, { offers: number; refusals: number; notBefore: number }>;
  /** Entries acknowledged lately: a queue snapshot read before their removal must not offer them again. */
  recentlyAcked: Set<string>;
  pumping: boolean;
  again: boolean;
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
}

const RECENT_ACKS = 10_000;

/**
 * At-least-once delivery of customer-bound messages to the connectors of a channel. Entries are durable in the
 * store and leave it only when a connector acknowledges them (or refuses them `maxRefusals` times). Offers go to
 * one connector socket (the oldest registered) so an SMS is sent once; an offer not acknowledged in time goes, with
 * the same id, to the next socket of the channel. Each conversation has at most one offer out at a time, so its
 * messages arrive in `seq` order, while other conversations proceed.
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

  /** Number of offers awaiting an answer, across channels. */
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
    let heads: ConnectorEntry[];
    try {
      heads = await this.store.pendingConnector(channel, this.options.maxInFlight + state.inFlight.size);
    } catch (error) {
      this.logger.error({ err: error, channel }, "connector queue read failed");
      this.schedule(channel, state, this.options.maxBackoffMs ?? 30_000);
      return;
    }
    const now = Date.now();
    let nextWake = Number.POSITIVE_INFINITY;
    const busy = new Set(state.inFlight.values());
    for (const entry of heads) {
      if (state.inFlight.size >= this.options.maxInFlight) break;
      const key = connectorOrderingKey(entry);
      if (busy.has(key) || state.inFlight.has(entry.id) || state.recentlyAcked.has(entry.id)) continue;
      const attempt = state.attempts.get(entry.id);
      if (attempt && attempt.notBefore > now) {
        nextWake = Math.min(nextWake, attempt.notBefore);
        continue;
      }
      const endpoint = state.endpoints[(attempt?.offers ?? 0) % state.endpoints.length];
      if (!endpoint) return;
      busy.add(key);
      if (!(await this.claim(channel, entry))) continue;
      this.offer(channel, state, entry, key, endpoint);
    }
    if (Number.isFinite(nextWake)) this.schedule(channel, state, nextWake - now);
  }

  /** Claims the entry cluster-wide for one offer (until the ack timeout); another node's claim means skip it. */
  private async claim(channel: string, entry: ConnectorEntry): Promise<boolean> {
    if (this.options.nodeId === undefined) return true;
    try {
      return await this.store.acquireLease(
        `cq:${channel}:${entry.id}`,
        this.options.nodeId,
        this.options.ackTimeoutMs + 1_000,
      );
    } catch (error) {
      this.logger.warn({ err: error, channel }, "connector claim failed");
      return false;
    }
  }

  private offer(channel: string, state: ChannelState, entry: ConnectorEntry, key: string, endpoint: ConnectorEndpoint) {
    state.inFlight.set(entry.id, key);
    endpoint
      .deliver(entry.message, this.options.ackTimeoutMs)
      .catch((): DeliveryOutcome => "timeout")
      .then((outcome) => this.settle(channel, state, entry, outcome))
      .catch((error: unknown) => this.logger.error({ err: error, channel }, "connector ack bookkeeping failed"))
      .finally(() => {
        state.inFlight.delete(entry.id);
        if (this.options.nodeId !== undefined) {
          void this.store.releaseLease(`cq:${channel}:${entry.id}`, this.options.nodeId).catch(() => undefined);
        }
        this.notify(channel);
      });
  }

  private async settle(channel: string, state: ChannelState, entry: ConnectorEntry, outcome: DeliveryOutcome) {
    const destination = `connector:${channel}`;
    if (outcome === "acked") {
      this.forget(state, entry.id);
      await this.store.ackConnector(channel, entry.id);
      this.metrics.delivered(destination);
      return;
    }
    const attempt = state.attempts.get(entry.id) ?? { offers: 0, refusals: 0, notBefore: 0 };
    attempt.offers += 1;
    if (outcome === "refused") attempt.refusals += 1;
    if (attempt.refusals >= this.options.maxRefusals) {
      this.forget(state, entry.id);
      await this.store.ackConnector(channel, entry.id);
      this.metrics.failed(destination);
      this.logger.warn(
        { channel, entryId: entry.id, refusals: attempt.refusals },
        "connector refused a message for good",
      );
      await this.options.onUndeliverable?.(
        channel,
        entry,
        `refused ${attempt.refusals} times by the ${channel} connector`,
      );
      return;
    }
    // A timed-out offer goes straight to the next socket; once every socket had its turn, back off.
    const base = this.options.baseBackoffMs ?? 250;
    const delay = Math.min(this.options.maxBackoffMs ?? 30_000, base * 2 ** Math.min(attempt.offers - 1, 16));
    attempt.notBefore = attempt.offers % Math.max(1, state.endpoints.length) === 0 ? Date.now() + delay : 0;
    state.attempts.set(entry.id, attempt);
    this.metrics.retried(destination);
    this.logger.debug(
      { channel, entryId: entry.id, outcome, offers: attempt.offers },
      "connector delivery not acknowledged",
    );
  }

  private forget(state: ChannelState, entryId: string): void {
    state.attempts.delete(entryId);
    state.recentlyAcked.add(entryId);
    if (state.recentlyAcked.size > RECENT_ACKS) {
      const oldest = state.recentlyAcked.values().next().value;
      if (oldest !== undefined) state.recentlyAcked.delete(oldest);
    }
  }

  private schedule(channel: string, state: ChannelState, delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + Math.max(10, delayMs);
    if (state.timer !== undefined && state.timerAt <= at) return;
    clearTimeout(state.timer);
    state.timerAt = at;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.notify(channel);
    }, at - Date.now());
    state.timer.unref();
  }

  private state(channel: string): ChannelState {
    let state = this.channels.get(channel);
    if (!state) {
      state = {
        endpoints: [],
        inFlight: new Map(),
        attempts: new Map(),
        recentlyAcked: new Set(),
        pumping: false,
        again: false,
        timer: undefined,
        timerAt: 0,
      };
      this.channels.set(channel, state);
    }
    return state;
  }
}
