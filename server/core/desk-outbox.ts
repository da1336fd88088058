import type { ChatMessage } from "../../protocol/index.js";
import type { ConversationStore, OutboxItem } from "./store.js";
import type { Conversation } from "./conversation.js";
import { DeskSessionClosedError, type Desk, type DeskSession } from "./desk.js";
import { DIGEST_WINDOW, handOffDigest, textWithButtons } from "./digest.js";
import { retryContext, type LaneHandler } from "./outbox.js";

/** What the desk lane reports back to the conversation core. */
export interface DeskEffects {
  /** The desk session exists: persist its ids, record who took the conversation. */
  opened(conversation: Conversation, session: DeskSession): Promise<void>;
  /** The desk has nobody to take the conversation; it stays queued and the open is retried. */
  noAgent(conversation: Conversation, reason: string): Promise<void>;
  /** The desk refused the item for good: the sender is told. */
  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void>;
  /** The desk session was closed behind our back: end the conversation as the desk would have. */
  sessionClosed(conversation: Conversation, reason: string): Promise<void>;
}

/**
 * How long a queued typing indicator stays worth sending: one not sent by then (the lane was busy with messages, or
 * the desk was down) is dropped unsent, unless an earlier attempt may have taken a place in the desk's order.
 */
export const TYPING_FRESH_MS = 5_000;

/**
 * The desk lane: open the session, then each customer message and note for the agent (after a bot, first the digest
 * of the bot conversation), and the customer's typing for a desk that takes it in order, then close.
 */
export class DeskLane implements LaneHandler {
  readonly lane = "desk";
  readonly destination: string;

  constructor(
    private readonly store: ConversationStore,
    private readonly desk: Desk,
    private readonly effects: DeskEffects,
    /** Told once a session's ids are bound (a desk with a stream starts reading it). */
    private readonly onOpened: (conversationId: string) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.destination = `desk:${desk.name}`;
  }

  async deliver(conversation: Conversation, item: OutboxItem): Promise<void> {
    const opened = conversation.desk.openedAt !== undefined;
    const retry = retryContext(item);
    switch (item.kind) {
      case "open": {
        // Ended before anyone could open the session: there is nothing to open any more.
        if (conversation.state === "ended") return;
        const session = await this.desk.open(conversation);
        await this.effects.opened(conversation, session);
        this.onOpened(conversation.id);
        return;
      }
      case "message": {
        if (!opened) {
          // The session was never opened (the conversation ended while no agent was available): the message
          // cannot reach an agent, and the customer is told so.
          await this.effects.undeliverable(conversation, item, "no desk session");
          return;
        }
        const [stored] = await this.store.read(conversation.id, (item.seq ?? 1) - 1, 1);
        if (stored?.type !== "ChatMessage") return;
        const message =
          stored.buttons !== undefined && !this.desk.capabilities.buttons
            ? { ...stored, text: textWithButtons(stored) }
            : stored;
        try {
          await this.desk.send(conversation, message, retry);
        } catch (error) {
          if (!(error instanceof DeskSessionClosedError)) throw error;
          // The agent side is gone: the customer learns the conversation ended, and that this message did not
          // arrive; everything queued after it is reported the same way.
          await this.effects.sessionClosed(conversation, error.reason);
          await this.effects.undeliverable(conversation, item, error.reason);
        }
        return;
      }
      case "note": {
        if (!opened || item.text === undefined) return;
        await this.desk.send(conversation, note(conversation, item, item.text), retry);
        return;
      }
      case "digest": {
        if (!opened) return;
        // Rendered now, from the log (which never changes), so that a repeated attempt sends the same text.
        const before = (item.seq ?? 1) - 1;
        const start = Math.max(0, before - DIGEST_WINDOW);
        const messages = await this.store.read(conversation.id, start, before - start);
        const text = handOffDigest(conversation, messages, item.upTo ?? before + 1);
        if (text !== undefined) await this.desk.send(conversation, note(conversation, item, text), retry);
        return;
      }
      case "close":
        if (opened) await this.desk.close(conversation, item.reason ?? "ended");
        return;
      case "typing":
        await this.typing(conversation, item, opened);
        return;
      case "event":
        // Events are for bots: a desk has nothing to do with one.
        return;
    }
  }

  private async typing(conversation: Conversation, item: OutboxItem, opened: boolean): Promise<void> {
    if (!opened || item.state === undefined || this.desk.typing === undefined) return;
    // Typing late, or for nobody, is worth nothing. But an attempt that started, on this node or on one that died
    // during it, may have taken a place in the desk's order (a request number), which only the desk knows: it is
    // told the indicator is late, and sends it only to keep that place.
    const late =
      this.now() - (item.queuedAt ?? 0) > TYPING_FRESH_MS ||
      conversation.state === "bot" ||
      conversation.state === "ended";
    try {
      await this.desk.typing(conversation, item.state, { id: item.id, late });
    } catch (error) {
      // The agent side is gone: the next message or the close finds out and ends the conversation.
      if (!(error instanceof DeskSessionClosedError)) throw error;
    }
  }

  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    if (item.kind !== "open" && item.kind !== "message") return Promise.resolve();
    return this.effects.undeliverable(conversation, item, reason);
  }

  noAgent(conversation: Conversation, reason: string): Promise<void> {
    return this.effects.noAgent(conversation, reason);
  }
}

/** A note for the agent (context, a delivery problem): sent like a message, with a stable id of its own. */
function note(conversation: Conversation, item: OutboxItem, text: string): ChatMessage {
  return {
    type: "ChatMessage",
    id: `note:${item.id}`,
    conversationId: conversation.id,
    seq: item.seq ?? 0,
    timestamp: new Date(item.lastAttemptAt ?? Date.now()).toISOString(),
    from: { id: "system", name: "Liaison" },
    to: [],
    text,
    attachments: [],
    tag: "",
  };
}
