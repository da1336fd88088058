import type { Attachment, Button, ChatMessage } from "../../protocol/index.js";
import type { Conversation } from "./conversation.js";
import type { RetryContext } from "./outbox.js";

/** What a bot can show; the core adapts its replies to the channel and the customer's messages to the bot. */
export interface BotCapabilities {
  /** The bot offers buttons (and understands a press). */
  buttons: boolean;
  /** The bot can take the customer's files (as links it fetches). */
  files: boolean;
  /** Longest text the bot accepts in one message (a longer customer message is cut or split); undefined: no limit. */
  maxTextLength?: number;
}

/** What the core hands a bot, one at a time, in order, through the conversation's `bot` outbox lane. */
export type BotInput =
  /** A customer's message (text, files, or the press of one of the bot's buttons). */
  | { kind: "message"; message: ChatMessage }
  /** Something the bot should know: the agent side has closed and the conversation is the bot's again. */
  | { kind: "event"; name: "agent_closed" };

/** What a bot says or decides, as the core records it. */
export type BotOutput =
  | {
      type: "reply";
      /**
       * The bot's own id of this reply, when it has one: the idempotency key (a repeated webhook records nothing).
       * Without one, each reply is recorded once per delivery of the input that caused it.
       */
      externalId?: string;
      text: string;
      buttons?: Button[][];
      attachments: Attachment[];
    }
  /** Hand the conversation to a human: `department` (when the bot names one) becomes its subject, routing the desk. */
  | { type: "handOff"; department?: string; reason?: string }
  /** The bot ends the conversation. */
  | { type: "end"; reason?: string };

/**
 * A bot that answers before a human does (GMS, Dialogflow). `deliver` may be repeated by the outbox with the same
 * input after a failure whose outcome is unknown (`retry`): a bot that dedupes by the message id takes care of it,
 * one that cannot says so in its README. A bot that answers at once (Dialogflow's detectIntent) returns its outputs;
 * one that answers later (GMS, by webhook) returns none and reports them through `BotEffects.botOutputs`.
 * Failures are `AdapterError`s: retryable (timeouts, 5xx, 429 with `retryAfterMs`) or not (the bot refuses for good:
 * the conversation is handed to the desk).
 */
export interface Bot {
  /** The `BOT` value, and the metric label `bot:<name>`. */
  readonly name: string;
  readonly capabilities: BotCapabilities;
  deliver(conversation: Conversation, input: BotInput, retry?: RetryContext): Promise<BotOutput[]>;
}

/** What the core does with a bot's outputs: implemented by the conversation core, called by bot webhooks. */
export interface BotEffects {
  /**
   * Records what the bot said or decided, in order. While a human owns the conversation (or after it ended), the
   * bot's replies are not delivered: they are counted and logged, never recorded.
   */
  botOutputs(conversation: Conversation, outputs: readonly BotOutput[]): Promise<void>;
}
