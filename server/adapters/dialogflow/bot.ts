import type { Bot, BotCapabilities, BotInput, BotOutput } from "../../core/bot.js";
import type { Conversation } from "../../core/conversation.js";
import type { RetryContext } from "../../core/outbox.js";
import type { Logger } from "../../logger.js";
import { DialogflowError, type DialogflowClient } from "./client.js";
import {
  BOT_NAME,
  MAX_QUERY_TEXT,
  cxOutputs,
  detectIntentBody,
  esOutputs,
  queryOf,
  sessionIdOf,
  sessionPath,
  type Edition,
} from "./mapper.js";

export interface DialogflowBotOptions {
  client: DialogflowClient;
  projectId: string;
  location: string | undefined;
  /** Set: a CX agent; unset: the project's ES agent. */
  agentId: string | undefined;
  /** The language sent when a conversation has none, or one the agent does not speak. */
  language: string;
  handoffIntents: readonly string[];
  logger: Logger;
}

/** Languages remembered as refused by the agent; beyond this many the memory starts again. */
const MAX_REFUSED_LANGUAGES = 64;

/**
 * Dialogflow as a bot: Liaison calls detectIntent for every customer message (Dialogflow cannot push), with the
 * conversation as the session, and turns the answer into replies, a hand-off or an end.
 *
 * A repeated delivery (the outbox retries after a timeout whose outcome is unknown) asks Dialogflow again: it cannot
 * tell a repeat from a new turn, so the agent may hear that message twice. Its replies are keyed by the customer's
 * message and their position (see `replyKey`), so the core records each of them once.
 */
export class DialogflowBot implements Bot {
  readonly name = BOT_NAME;
  readonly capabilities: BotCapabilities = { buttons: true, files: false, maxTextLength: MAX_QUERY_TEXT };
  private readonly edition: Edition;
  private readonly handoffIntents: ReadonlySet<string>;
  /** Conversation languages the agent refused: they are asked in the default language from then on. */
  private readonly refusedLanguages = new Set<string>();

  constructor(private readonly options: DialogflowBotOptions) {
    this.edition = options.agentId === undefined ? "es" : "cx";
    this.handoffIntents = new Set(options.handoffIntents.map((name) => name.trim().toLowerCase()));
  }

  async deliver(conversation: Conversation, input: BotInput, retry?: RetryContext): Promise<BotOutput[]> {
    const query = queryOf(input);
    if (query === undefined) return [];
    const session = sessionPath(this.edition, this.options, sessionIdOf(conversation.id));
    if (retry?.outcomeUnknown === true) {
      this.options.logger.debug(
        { conversationId: conversation.id },
        "detectIntent repeated after an unknown outcome: the agent may hear this input twice",
      );
    }
    const language = this.languageOf(conversation);
    let answer: unknown;
    try {
      answer = await this.options.client.detectIntent(session, detectIntentBody(this.edition, query, language));
    } catch (error) {
      if (!(error instanceof DialogflowError) || !error.languageRefused || language === this.options.language) {
        throw error;
      }
      // The conversation's language (the widget's default "en" included) is not one the agent speaks: the default
      // language it does speak beats handing the customer to a human for it.
      if (this.refusedLanguages.size >= MAX_REFUSED_LANGUAGES) this.refusedLanguages.clear();
      this.refusedLanguages.add(language.toLowerCase());
      this.options.logger.info(
        { language, fallback: this.options.language },
        "the Dialogflow agent does not speak the conversation's language: asking in DIALOGFLOW_LANGUAGE",
      );
      answer = await this.options.client.detectIntent(
        session,
        detectIntentBody(this.edition, query, this.options.language),
      );
    }
    const responseId = (answer as { responseId?: unknown }).responseId;
    const keyBase =
      input.kind === "message"
        ? input.message.id
        : typeof responseId === "string" && responseId !== ""
          ? responseId
          : undefined;
    const mapping = { handoffIntents: this.handoffIntents, keyBase };
    return this.edition === "es" ? esOutputs(answer, mapping) : cxOutputs(answer, mapping);
  }

  private languageOf(conversation: Conversation): string {
    const language = conversation.language.trim();
    if (language === "" || this.refusedLanguages.has(language.toLowerCase())) return this.options.language;
    return language;
  }
}
