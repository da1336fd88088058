import type { ConversationStore, OutboxItem } from "../store/store.js";
import type { Conversation } from "./conversation.js";
import { NoAgentAvailableError, type Desk, type DeskSession } from "./desk.js";
import { AdapterError } from "./errors.js";
import type { CoreLogger, CoreMetrics } from "./ports.js";

/** What the outbox reports back to the conversation core. */
export interface OutboxEffects {
  /** The desk session exists: persist its ids, record who took the conversation. */
  opened(conversation: Conversation, session: DeskSession): Promise<void>;
  /** The desk has nobody to take the conversation; it stays queued and the open is retried. */
  noAgent(conversation: Conversation, reason: string): Promise<void>;
  /** The desk refused the item for good: the sender is told. */
  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void>;
}

export interface DeskOutboxOptions {
  /** First retry delay after a transient failure; doubles per attempt up to `maxDelayMs`, with full jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How often "no agent available" is retried, at first and at most. */
  noAgentBaseMs: number;
  noAgentMaxMs: number;
  /** How often the store is scanned for deferred items that came due. */
  pollMs: number;
  now?: () => number;
  random?: () => number;
}

/**
 * Delivers each conversation's desk work (open the session, each customer message, close) strictly in order, one
 * item at a time, exactly once as far as the desk can tell: items stay in the store until the desk accepted them,
 * transient failures are retried with exponential backoff and jitter (honouring the desk's Retry-After), and an
 * item the desk refuses for good is reported to the sender instead of blocking the rest.
 */
export class DeskOutbox {
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly destination: string;

  constructor(
    private readonly store: ConversationStore,
    private readonly desk: Desk,
    private readonly effects: OutboxEffects,
    private readonly options: DeskOutboxOptions,
    private readonly logger: CoreLogger,
    private readonly metrics: CoreMetrics,
  ) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.destination = `desk:${desk.name}`;
  }

  /** Scans for due work now and every `pollMs` (work left by a previous run, deferred retries). */
  start(): void {
    const tick = () => {
      this.timer = undefined;
      if (this.stopped) return;
      this.store
        .outboxDue(this.now(), 500)
        .then((ids) => ids.forEach((id) => this.notify(id)))
        .catch((error: unknown) => this.logger.warn({ err: error }, "outbox scan failed"))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(tick, this.options.pollMs);
            this.timer.unref();
          }
        });
    };
    tick();
  }

  /** The conversation has new work: run it now unless it already runs. */
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
    while (!this.stopped) {
      const item = await this.store.outboxHead(conversationId);
      if (!item || item.notBefore > this.now()) return;
      const conversation = await this.store.get(conversationId);
      if (!conversation) return;
      const started = this.now();
      try {
        await this.deliver(conversation, item);
        await this.store.outboxComplete(conversationId, item.id);
        this.metrics.delivered(this.destination);
      } catch (error) {
        const proceed = await this.failed(
          conversation,
          { ...item, lastAttemptAt: item.lastAttemptAt ?? started },
          error,
        );
        if (!proceed) return;
      } finally {
        this.logger.debug({ conversationId, item: item.id, ms: this.now() - started }, "outbox item tried");
      }
    }
  }

  private async deliver(conversation: Conversation, item: OutboxItem): Promise<void> {
    const opened = conversation.desk.openedAt !== undefined;
    switch (item.kind) {
      case "open": {
        // Ended before anyone could open the session: there is nothing to open any more.
        if (conversation.state === "ended") return;
        const session = await this.desk.open(conversation);
        await this.effects.opened(conversation, session);
        return;
      }
      case "message": {
        if (!opened) {
          // The session was never opened (the conversation ended while no agent was available): the message
          // cannot reach an agent, and the customer is told so.
          await this.effects.undeliverable(conversation, item, "no desk session");
          return;
        }
        const [message] = await this.store.read(conversation.id, (item.seq ?? 1) - 1, 1);
        if (message?.type !== "ChatMessage") return;
        await this.desk.send(conversation, message);
        return;
      }
      case "close":
        if (opened) await this.desk.close(conversation, item.reason ?? "ended");
        return;
    }
  }

  /** Decides what a failure means; true when the next item may be tried right away. */
  private async failed(conversation: Conversation, item: OutboxItem, error: unknown): Promise<boolean> {
    const attempts = item.attempts + 1;
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof NoAgentAvailableError) {
      await this.effects.noAgent(conversation, error.reason);
      const delay = error.retryAfterMs ?? this.backoff(attempts, this.options.noAgentBaseMs, this.options.noAgentMaxMs);
      await this.defer(conversation, item, attempts, delay, message);
      return false;
    }
    if (error instanceof AdapterError && !error.retryable) {
      this.logger.warn(
        { conversationId: conversation.id, item: item.id, upstreamStatus: error.upstreamStatus, err: error },
        "desk refused an outbox item for good",
      );
      this.metrics.failed(this.destination);
      if (item.kind !== "close") await this.effects.undeliverable(conversation, item, message);
      await this.store.outboxComplete(conversation.id, item.id);
      return true;
    }
    if (!(error instanceof AdapterError)) {
      this.logger.error(
        { err: error, conversationId: conversation.id, item: item.id },
        "outbox item failed unexpectedly",
      );
    }
    const retryAfter = error instanceof AdapterError ? error.retryAfterMs : undefined;
    const delay = Math.max(retryAfter ?? 0, this.backoff(attempts, this.options.baseDelayMs, this.options.maxDelayMs));
    this.metrics.retried(this.destination);
    await this.defer(conversation, item, attempts, delay, message);
    return false;
  }

  private async defer(conversation: Conversation, item: OutboxItem, attempts: number, delayMs: number, error: string) {
    await this.store.outboxDefer(conversation.id, item.id, {
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
