import type { Member } from "../../protocol/index.js";

/**
 * Who is in which conversation on this node, counted by socket. When a participant's last socket disconnects and
 * none comes back within the grace period (a page reload, a mobile network hop), they are reported gone, so a
 * dropped agent does not hold a conversation forever.
 */
export class Presence {
  private readonly counts = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly graceMs: number,
    private readonly onGone: (conversationId: string, member: Member) => void,
  ) {}

  joined(conversationId: string, member: Member): void {
    const key = keyOf(conversationId, member);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  /** A socket stopped being in the conversation; `disconnected` starts the grace period when it was the last. */
  released(conversationId: string, member: Member, disconnected: boolean): void {
    const key = keyOf(conversationId, member);
    const remaining = (this.counts.get(key) ?? 1) - 1;
    if (remaining > 0) {
      this.counts.set(key, remaining);
      return;
    }
    this.counts.delete(key);
    if (!disconnected) return;
    clearTimeout(this.timers.get(key));
    const timer = setTimeout(() => {
      this.timers.delete(key);
      if (!this.counts.has(key)) this.onGone(conversationId, member);
    }, this.graceMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

const keyOf = (conversationId: string, member: Member): string =>
  `${conversationId}\u0000${member.role}\u0000${member.id}`;

/** The Socket.IO room of one participant's sockets in one conversation, on every node. */
export const presenceRoom = (conversationId: string, member: Member): string =>
  `presence:${conversationId}:${member.role}:${member.id}`;
