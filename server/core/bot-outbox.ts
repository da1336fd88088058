import type { Bot, BotInput, BotOutput } from "./bot.js";
import type { Conversation } from "./conversation.js";
import { retryContext, type LaneHandler } from "./outbox.js";
import type { ConversationStore, OutboxItem } from "./store.js";

/** What the bot lane reports back to the conversation core. */
export interface BotLaneEffects {
  /**
   * The bot answered the item at once (Dialogflow): record its outputs. Replies without an id of the bot's get ids
   * derived from the item, so a repeated delivery records them once; a hand-off leaves the item with the bot, which
   * has it.
   */
  botAnswered(conversation: Conversation, item: OutboxItem, outputs: readonly BotOutput[]): Promise<void>;
  /**
   * The bot refused the item for good, or failed for longer than it may: the conversation goes to the desk, the
   * item (and every customer message waiting behind it) with it.
   */
  botUnavailable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void>;
}

/**
 * The bot lane: while the bot owns a conversation (state `bot`), each customer message and event, in order, to the
 * bot. Once the conversation has changed hands (or ended), whatever is left is skipped: the bot hears nothing more.
 */
export class BotLane implements LaneHandler {
  readonly lane = "bot";
  readonly destination: string;

  constructor(
    private readonly store: ConversationStore,
    private readonly bot: Bot,
    private readonly effects: BotLaneEffects,
    /** `BOT_FAILURE_HANDOFF_SECONDS`: how long an item may fail before the conversation is handed to the desk. */
    readonly giveUpAfterMs: number,
  ) {
    this.destination = `bot:${bot.name}`;
  }

  async deliver(conversation: Conversation, item: OutboxItem): Promise<void> {
    if (conversation.state !== "bot") return;
    const input = await this.input(conversation, item);
    if (input === undefined) return;
    const outputs = await this.bot.deliver(conversation, input, retryContext(item));
    if (outputs.length > 0) await this.effects.botAnswered(conversation, item, outputs);
  }

  undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    return this.effects.botUnavailable(conversation, item, reason);
  }

  private async input(conversation: Conversation, item: OutboxItem): Promise<BotInput | undefined> {
    switch (item.kind) {
      case "event":
        return item.name === "agent_closed" ? { kind: "event", name: "agent_closed" } : undefined;
      case "message": {
        const [message] = await this.store.read(conversation.id, (item.seq ?? 1) - 1, 1);
        return message?.type === "ChatMessage" ? { kind: "message", message } : undefined;
      }
      default:
        return undefined;
    }
  }
}
