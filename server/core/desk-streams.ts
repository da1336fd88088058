import type { Conversation } from "./conversation.js";
import type { Desk, DeskEvent, DeskStreamSink } from "./desk.js";
import { OutageLog } from "./outage-log.js";
import type { CoreLogger } from "./ports.js";
import type { ConversationStore, ListPosition } from "./store.js";

export interface DeskStreamsOptions {
  /** This node's id: the owner of the leases it takes. */
  nodeId: string;
  /** How often the open conversations are looked through for streams that run nowhere. */
  scanMs: number;
  /** How long a node holds a stream without renewing its lease (renewed every third of it). */
  leaseMs: number;
  /** First wait before a failed stream runs again; doubles up to `restartMaxMs`, with jitter. */
  restartBaseMs: number;
  restartMaxMs: number;
  /** Conversations read from the store per page of a scan. */
  pageSize: number;
}

/** What a stream's events are recorded through (the conversation core). */
export interface DeskStreamEffects {
  applyDeskEvents(conversation: Conversation, events: readonly DeskEvent[]): Promise<void>;
}

/** Counts the composition root binds to Prometheus. */
export interface DeskStreamMetrics {
  /** Streams running on this node changed by `delta`. */
  running(delta: number): void;
  /** A stream failed and is started again. */
  restarted(): void;
}

/** A desk whose agents' events come over a stream per conversation. */
export type StreamDesk = Desk & Required<Pick<Desk, "stream">>;

/** Whether the desk has an inbound stream per conversation for `DeskStreams` to run. */
export const hasStream = (desk: Desk): desk is StreamDesk => desk.stream !== undefined;

interface Running {
  controller: AbortController;
  done: Promise<void>;
  failing: boolean;
}

/** Raised into a stream's sink once its run was aborted (lease lost, stop): its late results are not recorded. */
class StreamAbortedError extends Error {
  constructor() {
    super("the desk stream was stopped");
    this.name = "StreamAbortedError";
  }
}

const OPEN_STREAM_STATES = ["queued", "active"] as const;

/**
 * Runs the inbound stream (`Desk.stream`) of every open desk session, each on exactly one node at a time: a lease
 * `ds:<conversationId>` in the store, renewed while it runs; a node that dies leaves leases that run out, and another
 * node's scan takes its conversations over from the stored cursor. A stream that fails runs again with backoff,
 * holding its lease; one that ends (the session is over) is not started again unless a later scan finds its
 * conversation still open. The cursor is stored with the desk session it belongs to (its `openedAt`), so that a
 * later session of the same conversation (after a bot resumed it) starts afresh.
 */
export class DeskStreams {
  private readonly running = new Map<string, Running>();
  private readonly outage: OutageLog;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: ConversationStore,
    private readonly desk: StreamDesk,
    private readonly effects: DeskStreamEffects,
    private readonly options: DeskStreamsOptions,
    private readonly logger: CoreLogger,
    private readonly metrics: DeskStreamMetrics = { running: () => undefined, restarted: () => undefined },
  ) {
    this.outage = new OutageLog(logger, `desk ${desk.name} streams`);
  }

  /** The conversations whose stream runs on this node now. */
  get active(): readonly string[] {
    return [...this.running.keys()];
  }

  /** Scans now and then every `scanMs`. */
  start(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(this.tick, 0);
  }

  /** A conversation's desk session was just opened: its stream starts here now, unless it runs elsewhere. */
  notify(conversationId: string): void {
    if (this.stopped || this.running.has(conversationId)) return;
    this.store
      .get(conversationId)
      .then((conversation) => {
        if (conversation !== undefined && this.wanted(conversation)) return this.tryStart(conversation);
        return undefined;
      })
      .catch((error: unknown) => this.logger.warn({ err: error, conversationId }, "desk stream start failed"));
  }

  /** For `/ready`: while every stream of this node fails, since when. */
  problem(): string | undefined {
    if (this.running.size === 0) return undefined;
    for (const entry of this.running.values()) if (!entry.failing) return undefined;
    return this.outage.problem();
  }

  /** Aborts every stream (each gives its lease back) and stops scanning; resolves once they have all ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const entry of this.running.values()) entry.controller.abort();
    await Promise.all([this.scanning, ...[...this.running.values()].map((entry) => entry.done)]);
  }

  /** One look through the open conversations: starts the streams that run nowhere, aborts those that ended. */
  async scan(): Promise<void> {
    const seen = new Set<string>();
    let after: ListPosition | undefined;
    do {
      const page = await this.store.listOpen({
        states: OPEN_STREAM_STATES,
        limit: this.options.pageSize,
        scan: this.options.pageSize,
        ...(after === undefined ? {} : { after }),
      });
      for (const { conversation } of page.conversations) {
        if (this.stopped) return;
        seen.add(conversation.id);
        if (this.wanted(conversation) && !this.running.has(conversation.id)) await this.tryStart(conversation);
      }
      after = page.next;
    } while (after !== undefined && !this.stopped);
    // A stream whose conversation was not listed may have ended (or moved while the pages were read): ask.
    for (const [id, entry] of this.running) {
      if (seen.has(id)) continue;
      const conversation = await this.store.get(id);
      if (conversation === undefined || !this.wanted(conversation)) entry.controller.abort();
    }
  }

  private readonly tick = (): void => {
    this.scanning = this.scan()
      .catch((error: unknown) => this.logger.warn({ err: error }, "desk stream scan failed"))
      .finally(() => {
        this.scanning = undefined;
        if (!this.stopped) this.timer = setTimeout(this.tick, this.options.scanMs);
      });
  };

  /** Whether the conversation has an open session of this desk whose stream should run. */
  private wanted(conversation: Conversation): boolean {
    return (
      (conversation.state === "queued" || conversation.state === "active") &&
      conversation.desk.desk === this.desk.name &&
      conversation.desk.openedAt !== undefined
    );
  }

  private async tryStart(conversation: Conversation): Promise<void> {
    const id = conversation.id;
    if (this.stopped || this.running.has(id)) return;
    const controller = new AbortController();
    // Reserved before the lease is asked for, so that a scan and a notify never both start it.
    const entry: Running = { controller, done: Promise.resolve(), failing: false };
    this.running.set(id, entry);
    let leased = false;
    try {
      leased = await this.store.acquireLease(leaseKey(id), this.options.nodeId, this.options.leaseMs);
    } catch (error) {
      this.logger.warn({ err: error, conversationId: id }, "desk stream lease failed");
    }
    if (!leased || this.stopped) {
      this.running.delete(id);
      if (leased) await this.release(id);
      return;
    }
    this.metrics.running(1);
    entry.done = this.run(conversation, entry).finally(() => {
      this.running.delete(id);
      this.metrics.running(-1);
    });
  }

  /** Holds the lease and runs the stream, again after each failure, until it ends or is aborted. */
  private async run(first: Conversation, entry: Running): Promise<void> {
    const id = first.id;
    const { signal } = entry.controller;
    const renewal = setInterval(() => {
      this.store.acquireLease(leaseKey(id), this.options.nodeId, this.options.leaseMs).then(
        (held) => {
          if (!held) entry.controller.abort();
        },
        // Unknown whether it was renewed: stop at once rather than risk two nodes running it.
        () => entry.controller.abort(),
      );
    }, this.options.leaseMs / 3);
    let conversation: Conversation | undefined = first;
    let failures = 0;
    try {
      while (!signal.aborted && conversation !== undefined && this.wanted(conversation)) {
        try {
          const cursor = cursorOf(await this.store.deskCursor(id), conversation);
          await this.desk.stream(conversation, cursor, this.sink(conversation, entry), signal);
          this.healthy(entry);
          return;
        } catch (error) {
          if (signal.aborted) return;
          failures += 1;
          entry.failing = true;
          this.outage.failed(error);
          this.metrics.restarted();
          this.logger.debug({ err: error, conversationId: id, failures }, "desk stream failed");
          await abortableDelay(backoff(failures, this.options.restartBaseMs, this.options.restartMaxMs), signal);
          conversation = await this.store.get(id).catch(() => conversation);
        }
      }
    } finally {
      clearInterval(renewal);
      if (entry.failing) this.healthy(entry);
      await this.release(id);
    }
  }

  private sink(conversation: Conversation, entry: Running): DeskStreamSink {
    const id = conversation.id;
    const { signal } = entry.controller;
    const session = conversation.desk.openedAt ?? "";
    const storeCursor = (cursor: string) => this.store.setDeskCursor(id, `${session} ${cursor}`);
    return {
      events: async (events, cursor) => {
        if (signal.aborted) throw new StreamAbortedError();
        if (events.length > 0) {
          // The latest record: an end recorded meanwhile makes a late agent message a record, not a delivery.
          const current = (await this.store.get(id)) ?? conversation;
          await this.effects.applyDeskEvents(current, events);
        }
        if (cursor !== undefined) {
          if (signal.aborted) throw new StreamAbortedError();
          await storeCursor(cursor);
        }
        this.healthy(entry);
      },
      cursor: async (cursor) => {
        if (signal.aborted) throw new StreamAbortedError();
        await storeCursor(cursor);
        this.healthy(entry);
      },
    };
  }

  private healthy(entry: Running): void {
    if (!entry.failing) return;
    entry.failing = false;
    for (const other of this.running.values()) if (other.failing) return;
    this.outage.succeeded();
  }

  private async release(id: string): Promise<void> {
    await this.store
      .releaseLease(leaseKey(id), this.options.nodeId)
      .catch((error: unknown) =>
        this.logger.debug({ err: error, conversationId: id }, "desk stream lease release failed"),
      );
  }
}

const leaseKey = (conversationId: string): string => `ds:${conversationId}`;

/** The stored cursor, when it belongs to the conversation's current desk session (`<openedAt> <cursor>`). */
function cursorOf(stored: string | undefined, conversation: Conversation): string | undefined {
  if (stored === undefined) return undefined;
  const space = stored.indexOf(" ");
  if (space < 0 || stored.slice(0, space) !== (conversation.desk.openedAt ?? "")) return undefined;
  return stored.slice(space + 1);
}

/** Exponential backoff with full jitter over its upper half. */
function backoff(failures: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Waits `ms`, or less when `signal` aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
