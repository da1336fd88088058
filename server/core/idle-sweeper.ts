import type { Actor, ConversationService } from "./conversations.js";
import { systemParticipant } from "./conversations.js";
import type { Clock, CoreLogger } from "./ports.js";
import type { ConversationStore } from "./store.js";

export interface IdleSweeperOptions {
  /** A conversation with no recorded message for this long ends (`IDLE_TIMEOUT_SECONDS`); 0: never. */
  idleMs: number;
  /** How often to look: an idle conversation ends within about this of its time. */
  everyMs: number;
  /** Conversations taken from the store per read. */
  batch: number;
}

/** The reason recorded in the `endOfConversation` of a conversation nobody wrote in. */
export const INACTIVE_REASON = "inactive";

const systemActor: Actor = { ...systemParticipant, role: "system" };

/** Reads a look may make at most, so that one look never runs on without end. */
const MAX_BATCHES_PER_LOOK = 50;

/**
 * Ends conversations that nobody has written in for `idleMs`: reason `inactive`, ended by the system, through
 * `ConversationService.end` like any other end (every participant gets the `endOfConversation`, an external desk's
 * session is closed through the outbox), after which the retention sweep deletes them in time like any ended one.
 *
 * Activity is any recorded message, chat or activity (a desk's queue update too). Typing is not: it is never
 * recorded, and counting it would cost a store write per keystroke indicator; someone who only types for a whole
 * timeout has not said anything. Re-joining records nothing either.
 *
 * Every node runs one over the shared store. Two nodes may pick the same conversation: the store's end is one
 * atomic state change, so one of them records the `endOfConversation` and the other finds it ended. A message that
 * comes in between the look and the end keeps the conversation open: the end checks idleness in the same step.
 */
export class IdleSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Pick<ConversationStore, "findIdle" | "get">,
    private readonly core: Pick<ConversationService, "end">,
    private readonly options: IdleSweeperOptions,
    private readonly clock: Clock,
    private readonly logger: CoreLogger,
  ) {}

  /** Looks every `everyMs` from now on (nothing when `idleMs` is 0). */
  start(): void {
    if (this.options.idleMs <= 0 || this.stopped || this.timer !== undefined) return;
    this.schedule();
  }

  /** Stops looking; resolves once a look under way has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One look: ends the conversations idle for longer than the timeout; resolves with how many it ended. */
  async sweep(): Promise<number> {
    const cutoffMs = this.clock().getTime() - this.options.idleMs;
    let ended = 0;
    // Not tried again in the same look (a later read of it would return it again): the next look will.
    const failed = new Set<string>();
    let lastError: unknown;
    for (let round = 0; round < MAX_BATCHES_PER_LOOK && !this.stopped; round++) {
      const ids = await this.store.findIdle(new Date(cutoffMs), this.options.batch);
      let changed = 0;
      for (const id of ids) {
        if (this.stopped) break;
        if (failed.has(id)) continue;
        try {
          const conversation = await this.store.get(id);
          if (conversation === undefined) continue;
          const result = await this.core.end(conversation, systemActor, INACTIVE_REASON, { idleBeforeMs: cutoffMs });
          if (result.stillActive === true) continue;
          changed += 1;
          if (!result.alreadyEnded) ended += 1;
        } catch (error) {
          failed.add(id);
          lastError = error;
        }
      }
      // A short read was the last; a full one where nothing changed would only come back the same.
      if (ids.length < this.options.batch || changed === 0) break;
    }
    // One line per look, not one per conversation: with the store down, every end of the look fails alike.
    if (failed.size > 0) this.logger.warn({ failed: failed.size, err: lastError }, "inactive conversations not ended");
    return ended;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.running = this.sweep()
        .then(
          (ended) => {
            if (ended > 0) this.logger.info({ ended }, "inactive conversations ended");
          },
          (error: unknown) => this.logger.warn({ err: error }, "inactivity sweep failed"),
        )
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule();
        });
    }, this.options.everyMs);
    this.timer.unref();
  }
}
