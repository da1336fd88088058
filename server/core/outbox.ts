import type { ConversationStore, OutboxItem, OutboxLane } from "./store.js";
import type { Conversation } from "./conversation.js";
import { NoAgentAvailableError } from "./desk.js";
import { AdapterError } from "./errors.js";
import { OutageLog } from "./outage-log.js";
import type { CoreLogger, CoreMetrics } from "./ports.js";

/**
 * What a retried delivery knows of the earlier attempts: when the first failed one started, and whether any of them
 * may have landed (a timeout, a 5xx after the request was sent) or certainly did not (a 429, a refused connection).
 */
export interface RetryContext {
  since: number;
  outcomeUnknown: boolean;
}

/** The retry context of an item, or undefined on its first attempt. */
export function retryContext(item: OutboxItem): RetryContext | undefined {
  if (item.lastAttemptAt === undefined) return undefined;
  const error = item.lastError ?? "";
  // Refusals before anything was done: rate limits, rejected tokens, refused connections, unknown hosts.
  const certainlyNot = /\b(429|403|401)\b|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|rate limited|no-agent-online/.test(error);
  return { since: item.lastAttemptAt, outcomeUnknown: !certainlyNot };
}

/** Unexpected (non-adapter) failures of one item before it is reported as undeliverable. */
const MAX_UNEXPECTED_ATTEMPTS = 8;

/** What one lane does with its items: deliver them, and report those that can never be delivered. */
export interface LaneHandler {
  readonly lane: OutboxLane;
  /** Metric label: `desk:<name>`, `channel:<name>` or `bot:<name>`. */
  readonly destination: string;
  /** Delivers the item; throws AdapterError (retryable or not) or NoAgentAvailableError. */
  deliver(conversation: Conversation, item: OutboxItem): Promise<void>;
  /** The destination refused the item for good: tell whoever sent it. The item is dropped afterwards. */
  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void>;
  /** The desk has nobody who could take the conversation (desk lane only). */
  noAgent?(conversation: Conversation, reason: string): Promise<void>;
  /**
   * How long an item may keep failing, counted from its first failed attempt, before it is reported as
   * undeliverable like a refusal for good (the bot lane: a bot that cannot be reached hands the conversation to the
   * desk). Retries are then never scheduled past that moment; undefined: retried for as long as it takes.
   */
  readonly giveUpAfterMs?: number;
}

export interface OutboxOptions {
  /** First retry delay after a transient failure; doubles per attempt up to `maxDelayMs`, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How often "no agent available" is retried, at first and at most. */
  noAgentBaseMs: number;
  noAgentMaxMs: number;
  /** How often the store is scanned for deferred items that came due. */
  pollMs: number;
  /** This node's name: the owner of its leases. */
  nodeId: string;
  /** How long a node may hold a conversation's lane without renewing (longer than any one delivery). */
  leaseMs?: number;
  now?: () => number;
  random?: () => number;
}

/**
 * Works one outbox lane: each conversation's items strictly in order, one at a time, each kept in the store until
 * the destination accepted it. Transient failures are retried with exponential backoff and jitter (never sooner
 * than the destination's Retry-After); an item refused for good is reported and dropped so it does not block the
 * rest. Delivery is exactly once as far as the destination can tell: handlers make every call idempotent.
 */
export class OutboxWorker {
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly random: () => number;
  /** The destination failing transiently (network, 5xx, 429): logged once per outage, reported by `/ready`. */
  private readonly outage: OutageLog;
  /** The store failing the scan for due work. */
  private readonly scanOutage: OutageLog;

  constructor(
    private readonly store: ConversationStore,
    private readonly handler: LaneHandler,
    private readonly options: OutboxOptions,
    private readonly logger: CoreLogger,
    private readonly metrics: CoreMetrics,
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.outage = new OutageLog(logger, handler.destination, this.now);
    this.scanOutage = new OutageLog(logger, `${handler.lane} outbox scan`, this.now);
  }

  /** Metric label and `/ready` key of the lane's destination (`desk:<name>`, `channel:<name>`). */
  get destination(): string {
    return this.handler.destination;
  }

  /** Why the destination cannot be reached now (for `/ready`); undefined while it can. */
  problem(): string | undefined {
    return this.outage.problem();
  }

  /** Scans for due work now and every `pollMs` (work left by a previous run, deferred retries). */
  start(): void {
    const tick = () => {
      this.timer = undefined;
      if (this.stopped) return;
      this.store
        .outboxDue(this.handler.lane, this.now(), 500)
        .then((ids) => {
          this.scanOutage.succeeded();
          ids.forEach((id) => this.notify(id));
        })
        .catch((error: unknown) => this.scanOutage.failed(error))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(tick, this.options.pollMs);
            this.timer.unref();
          }
        });
    };
    tick();
  }

  /** The conversation has new work in this lane: run it now unless it already runs. */
  notify(conversationId: string): void {
    if (this.stopped) return;
    if (this.running.has(conversationId)) {
      this.again.add(conversationId);
      return;
    }
    this.running.add(conversationId);
    const run = this.drain(conversationId)
      .catch((error: unknown) => this.logger.error({ err: error, conversationId }, "outbox run failed"))
      .finally(() => {
        this.running.delete(conversationId);
        this.inFlight.delete(run);
        if (this.again.delete(conversationId)) this.notify(conversationId);
      });
    this.inFlight.add(run);
  }

  /** Stops taking work and waits (up to `graceMs`) for the deliveries under way. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => {
        timeout = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timeout);
  }

  private async drain(conversationId: string): Promise<void> {
    const lane = this.handler.lane;
    const lease = `ob:${lane}:${conversationId}`;
    const leaseMs = this.options.leaseMs ?? 60_000;
    // One node at a time works a conversation's lane, so its items go out in order; a dead node's lease runs out.
    if (!(await this.store.acquireLease(lease, this.options.nodeId, leaseMs))) return;
    try {
      await this.drainHeld(conversationId, lease, leaseMs);
    } finally {
      await this.store.releaseLease(lease, this.options.nodeId).catch(() => undefined);
    }
  }

  private async drainHeld(conversationId: string, lease: string, leaseMs: number): Promise<void> {
    const lane = this.handler.lane;
    // A single delivery may outlast the lease (files, long texts): renew it in the background while we work, so
    // no other node takes the conversation over a delivery that is still under way.
    let held = true;
    const renew = setInterval(
      () => {
        this.store
          .acquireLease(lease, this.options.nodeId, leaseMs)
          .then((ok) => {
            held = held && ok;
          })
          .catch(() => {
            held = false;
          });
      },
      Math.max(250, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    try {
      while (!this.stopped && held) {
        const item = await this.store.outboxHead(conversationId, lane);
        if (!item || item.notBefore > this.now()) return;
        const conversation = await this.store.get(conversationId);
        if (!conversation) return;
        const started = this.now();
        try {
          await this.handler.deliver(conversation, item);
          this.outage.succeeded();
          await this.store.outboxComplete(conversationId, lane, item.id);
          this.metrics.delivered(this.handler.destination);
        } catch (error) {
          const proceed = await this.failed(
            conversation,
            { ...item, lastAttemptAt: item.lastAttemptAt ?? started },
            error,
          );
          if (!proceed) return;
        } finally {
          this.logger.debug({ conversationId, lane, item: item.id, ms: this.now() - started }, "outbox item tried");
        }
      }
    } finally {
      clearInterval(renew);
    }
  }

  /** Decides what a failure means; true when the next item may be tried right away. */
  private async failed(conversation: Conversation, item: OutboxItem, error: unknown): Promise<boolean> {
    const attempts = item.attempts + 1;
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof NoAgentAvailableError && this.handler.noAgent) {
      // The desk answered: it works, it only has nobody free.
      this.outage.succeeded();
      await this.handler.noAgent(conversation, error.reason);
      const delay = error.retryAfterMs ?? this.backoff(attempts, this.options.noAgentBaseMs, this.options.noAgentMaxMs);
      await this.defer(conversation, item, attempts, delay, message);
      return false;
    }
    // A bug-shaped failure (not the destination's answer) gets a bounded number of tries, then is reported, so one
    // poisoned item cannot block the conversation forever.
    const givingUp = !(error instanceof AdapterError) && attempts >= MAX_UNEXPECTED_ATTEMPTS;
    if ((error instanceof AdapterError && !error.retryable) || givingUp) {
      await this.giveUp(conversation, item, error, message, "destination refused an outbox item for good");
      return true;
    }
    if (error instanceof AdapterError) {
      this.outage.failed(error);
    } else {
      this.logger.error(
        { err: error, conversationId: conversation.id, item: item.id },
        "outbox item failed unexpectedly",
      );
    }
    const retryAfter = error instanceof AdapterError ? error.retryAfterMs : undefined;
    let delay = Math.max(retryAfter ?? 0, this.backoff(attempts, this.options.baseDelayMs, this.options.maxDelayMs));
    const giveUpAfterMs = this.handler.giveUpAfterMs;
    if (giveUpAfterMs !== undefined) {
      // item.lastAttemptAt is the start of its first failed attempt (this one's, the first time).
      const deadline = (item.lastAttemptAt ?? this.now()) + giveUpAfterMs;
      const now = this.now();
      // Past the deadline, or told to wait beyond it: the destination will not take the item in time.
      if (now >= deadline || now + (retryAfter ?? 0) > deadline) {
        const seconds = Math.round((now - (item.lastAttemptAt ?? now)) / 1000);
        await this.giveUp(
          conversation,
          item,
          error,
          `unavailable for ${seconds} s: ${message}`,
          "destination failed an outbox item for too long",
        );
        return true;
      }
      delay = Math.min(delay, deadline - now);
    }
    this.metrics.retried(this.handler.destination);
    await this.defer(conversation, item, attempts, delay, message);
    return false;
  }

  /** Reports the item as undeliverable and drops it, so the rest of the lane goes on. */
  private async giveUp(
    conversation: Conversation,
    item: OutboxItem,
    error: unknown,
    reason: string,
    log: string,
  ): Promise<void> {
    this.logger.warn(
      {
        conversationId: conversation.id,
        lane: this.handler.lane,
        item: item.id,
        upstreamStatus: error instanceof AdapterError ? error.upstreamStatus : undefined,
        err: error,
      },
      log,
    );
    this.metrics.failed(this.handler.destination);
    await this.handler.undeliverable(conversation, item, reason);
    await this.store.outboxComplete(conversation.id, this.handler.lane, item.id);
  }

  private async defer(conversation: Conversation, item: OutboxItem, attempts: number, delayMs: number, error: string) {
    await this.store.outboxDefer(conversation.id, this.handler.lane, item.id, {
      attempts,
      notBefore: this.now() + delayMs,
      lastError: error.slice(0, 500),
      // The first failed attempt: anything it (or a later one) delivered happened after it.
      lastAttemptAt: item.lastAttemptAt ?? this.now(),
    });
    this.logger.debug({ conversationId: conversation.id, item: item.id, attempts, delayMs }, "outbox item deferred");
    const timer = setTimeout(() => this.notify(conversation.id), delayMs + 5);
    timer.unref();
  }

  /** Exponential backoff with "equal jitter": half fixed, half random, so retries spread but never come early. */
  private backoff(attempts: number, baseMs: number, maxMs: number): number {
    const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempts - 1, 20));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
}
