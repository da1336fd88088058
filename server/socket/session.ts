import type { Member, Message, StoredMessage } from "../../protocol/index.js";
import type { Conversation } from "../core/conversation.js";
import { isWhisper, type Actor } from "../core/conversations.js";
import type { Published } from "../core/ports.js";

/** What a session needs of its socket. */
export interface SessionSocket {
  readonly id: string;
  emit(event: "messageArrived", message: Message): void;
}

/** How long a gap in `seq` may stay open before the session refills it from the store. */
export const GAP_FILL_MS = 500;

/** Where sessions refill gaps in their live feed, and report when they cannot. */
export interface SessionSource {
  read(conversationId: string, afterSeq: number): Promise<StoredMessage[]>;
  gapFillFailed(conversationId: string, error: unknown): void;
}

/**
 * One socket joined to one conversation. It hands the socket every recorded message exactly once and in `seq`
 * order: the bus may deliver out of order (concurrent appends, several nodes) or lose a message (another node's
 * publish), so early arrivals wait in `pending` and a gap that stays open is refilled from the store.
 * While `syncing` (between joining and sending `conversationInfo`), everything is held back.
 *
 * A join whose history page does not reach the end of the log (`hasMore`) leaves the session `paging`: the socket
 * gets nothing live, and nothing is held for it, because everything recorded meanwhile is in the log and comes in
 * its next pages. Pushing the rest of the backlog live instead would send the whole history at once, which paging
 * exists to bound. The client's next join replaces the `Session` object; the one whose page reaches the end goes live.
 */
export class Session {
  private lastSeq = 0;
  private syncing = true;
  private paging = false;
  /** Made only when needed (most sessions never hold or wait on anything: idle sockets are most of the memory). */
  private held: Published[] | undefined;
  private pending: Map<number, Published> | undefined;
  private gapTimer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly conversationId: string;
  private actorMade: Actor | undefined;

  constructor(
    /** The conversation as it was when the socket joined: only its fields that never change after init are used. */
    readonly conversation: Conversation,
    readonly member: Member,
    private readonly socket: SessionSocket,
    private readonly options: {
      seesWhispers: boolean;
      /** False for connector sockets of a connector channel: they get customer-bound messages through acked delivery. */
      live: boolean;
      /** Where a gap in the live feed is refilled from (one per socket, shared by its sessions). */
      source: SessionSource;
    },
  ) {
    this.conversationId = conversation.id;
  }

  /** Who acts through this socket's join: made on the first send, then used by every send. */
  get actor(): Actor {
    this.actorMade ??= {
      ...this.member,
      socketId: this.socket.id,
      participant: Object.freeze({ id: this.member.id, name: this.member.name }),
    };
    return this.actorMade;
  }

  /**
   * The socket has its history up to `lastSeq`: release what arrived meanwhile and go live, unless more history
   * follows (`hasMore`): then stay silent until the client's next join (see the class comment).
   */
  ready(lastSeq: number, hasMore = false): void {
    this.lastSeq = lastSeq;
    this.syncing = false;
    const held = this.held;
    this.held = undefined;
    if (hasMore) {
      this.paging = true;
      return;
    }
    for (const event of held ?? []) this.receive(event);
  }

  receive(event: Published): void {
    if (this.closed || this.paging) return;
    const { message } = event;
    if (message.seq === undefined) {
      // Typing: never stored, relayed as it comes.
      if (!this.syncing) this.emit(event);
      return;
    }
    if (this.syncing) {
      (this.held ??= []).push(event);
      return;
    }
    if (message.seq <= this.lastSeq) return;
    if (message.seq !== this.lastSeq + 1) {
      (this.pending ??= new Map()).set(message.seq, event);
      this.gapTimer ??= setTimeout(() => void this.fillGap(), GAP_FILL_MS);
      return;
    }
    this.advance(event);
    const pending = this.pending;
    for (let next = pending?.get(this.lastSeq + 1); next; next = pending?.get(this.lastSeq + 1)) {
      pending?.delete(this.lastSeq + 1);
      this.advance(next);
    }
    if ((pending?.size ?? 0) === 0 && this.gapTimer) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.gapTimer);
    this.pending = undefined;
    this.held = undefined;
  }

  private advance(event: Published): void {
    this.lastSeq = event.message.seq ?? this.lastSeq;
    this.emit(event);
  }

  private emit(event: Published): void {
    if (!this.options.live || event.originSocketId === this.socket.id) return;
    if (!this.options.seesWhispers && (isWhisper(event.message) || event.staffOnly === true)) return;
    this.socket.emit("messageArrived", event.message);
  }

  private async fillGap(): Promise<void> {
    this.gapTimer = undefined;
    const pending = this.pending;
    if (this.closed || !pending || pending.size === 0) return;
    try {
      const missing = await this.options.source.read(this.conversationId, this.lastSeq);
      for (const message of missing) {
        if (this.closed) return;
        if (message.seq <= this.lastSeq) continue;
        const known = pending.get(message.seq);
        pending.delete(message.seq);
        this.advance(known ?? { conversationId: this.conversationId, message });
      }
    } catch (error) {
      this.options.source.gapFillFailed(this.conversationId, error);
      if (!this.closed && pending.size > 0) this.gapTimer = setTimeout(() => void this.fillGap(), GAP_FILL_MS);
    }
  }
}
