import type { ListPosition } from "../../core/store.js";

/** One conversation's place: its last activity (epoch ms) and its id. */
export interface RecencyEntry {
  readonly id: string;
  readonly ms: number;
}

/**
 * Oldest first: by time, then by id (as Redis orders the members of a sorted set with equal scores; conversation
 * ids are ASCII, where UTF-16 order is byte order).
 */
export function byRecency(a: ListPosition, b: ListPosition): number {
  if (a.ms !== b.ms) return a.ms - b.ms;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Conversations by last activity, then id: oldest first for the idle sweep, and newest first from any position for
 * the queue's pages. Setting a conversation's time adds a new entry and leaves the old one in place, skipped as stale
 * until the array is compacted; since the store only ever sets times at or after the latest one, a new entry goes at
 * the end (or among the last entries of the same millisecond), so a touch costs O(1) amortised.
 */
export class RecencyIndex {
  /** Sorted by `compare`, stale entries included. */
  private entries: RecencyEntry[] = [];
  private readonly live = new Map<string, RecencyEntry>();

  get size(): number {
    return this.live.size;
  }

  /** The conversation's last activity, if it is in the index. */
  get(id: string): number | undefined {
    return this.live.get(id)?.ms;
  }

  set(id: string, ms: number): void {
    const entry: RecencyEntry = { id, ms };
    this.live.set(id, entry);
    let at = this.entries.length;
    while (at > 0 && byRecency(this.entries[at - 1] as RecencyEntry, entry) > 0) at -= 1;
    if (at === this.entries.length) this.entries.push(entry);
    else this.entries.splice(at, 0, entry);
    this.compactIfStale();
  }

  delete(id: string): void {
    if (this.live.delete(id)) this.compactIfStale();
  }

  /** Live entries, least recently active first. Read it before changing the index again. */
  *oldest(): Generator<RecencyEntry> {
    for (const entry of this.entries) if (this.isLive(entry)) yield entry;
  }

  /**
   * Live entries strictly before `before` in the order (all of them without it), most recently active first. Read it
   * before changing the index again.
   */
  *newest(before?: ListPosition): Generator<RecencyEntry> {
    let end = this.entries.length;
    if (before !== undefined) {
      // The first entry at or after `before`: everything below it comes before.
      let low = 0;
      while (low < end) {
        const middle = (low + end) >>> 1;
        if (byRecency(this.entries[middle] as RecencyEntry, before) < 0) low = middle + 1;
        else end = middle;
      }
    }
    for (let index = end - 1; index >= 0; index -= 1) {
      const entry = this.entries[index] as RecencyEntry;
      if (this.isLive(entry)) yield entry;
    }
  }

  private isLive(entry: RecencyEntry): boolean {
    return this.live.get(entry.id) === entry;
  }

  /** Drops stale entries once they outnumber the live ones: each is copied once per doubling, O(1) amortised. */
  private compactIfStale(): void {
    if (this.entries.length <= 2 * this.live.size + 32) return;
    this.entries = this.entries.filter((entry) => this.isLive(entry));
  }
}
