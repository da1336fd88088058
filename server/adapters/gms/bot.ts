import { randomInt } from "node:crypto";
import type { Bot, BotCapabilities, BotInput, BotOutput } from "../../core/bot.js";
import type { Conversation } from "../../core/conversation.js";
import type { UrlSigner } from "../../core/signed-urls.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { BOT_NAME, GmsClient, GmsError, type GmsClientOptions } from "./client.js";
import { CHAT_ID_KEY, MAX_CHAT_ID, eventsFor, filePath } from "./mapper.js";

export const capabilities: BotCapabilities = { buttons: true, files: true };

/** Tries at a free random `chat_id` before giving up for now (a retry tries again): collisions are rare. */
const CHAT_ID_TRIES = 8;

export interface GmsBotOptions {
  client: GmsClientOptions;
  store: ConversationStore;
  signer: UrlSigner;
  /** `PUBLIC_URL`: the base of the file links the platform is given. */
  publicUrl: string;
  /** Where a refusal of the platform is logged when it appears. */
  logger: Pick<Logger, "warn">;
}

/**
 * The GMS chatbots platform, reached through its "Omnichannel" connector. It answers asynchronously, by calling
 * Liaison's `/gms/*` routes (see webhook.ts), so `deliver` posts the customer's message and returns no output. Each
 * conversation is one chat: one stable integer `chat_id`, claimed in the store the first time, and one visitor id.
 * A repeated delivery posts the same message ids again, which the platform drops.
 */
export class GmsBot implements Bot {
  readonly name = BOT_NAME;
  readonly capabilities = capabilities;
  private readonly client: GmsClient;
  private readonly refused: ProblemLog;

  constructor(private readonly options: GmsBotOptions) {
    this.refused = new ProblemLog(options.logger);
    this.client = new GmsClient({
      ...options.client,
      onRefused: (problem) => {
        if (problem === undefined) this.refused.clear();
        else this.refused.set(problem);
        options.client.onRefused?.(problem);
      },
    });
  }

  /** Why the platform refuses events now (a final 400 or 404); undefined once one passes again. */
  problem(): AdapterNotice | undefined {
    return this.refused.get();
  }

  async deliver(conversation: Conversation, input: BotInput): Promise<BotOutput[]> {
    // The platform has no event for the agent side closing: the customer's next message is what it gets.
    if (input.kind !== "message") return [];
    const chatId = await this.chatId(conversation);
    const base = this.options.publicUrl.replace(/\/+$/, "");
    const events = eventsFor(conversation, chatId, input.message, (index, name) => {
      const path = filePath(conversation.id, input.message.seq, index, name);
      return `${base}${this.options.signer.sign(path)}`;
    });
    for (const event of events) await this.client.post(event);
    return [];
  }

  /** The conversation's `chat_id`: the one it has, or a random free one claimed for it now. */
  private async chatId(conversation: Conversation): Promise<number> {
    const known = conversation.bot?.ids[CHAT_ID_KEY];
    if (known !== undefined) return Number(known);
    for (let attempt = 0; attempt < CHAT_ID_TRIES; attempt++) {
      const candidate = randomInt(1, MAX_CHAT_ID + 1);
      const claimed = await this.options.store.bindBot(conversation.id, CHAT_ID_KEY, String(candidate));
      if (claimed.status === "bound") return candidate;
      if (claimed.status === "not_found") throw new GmsError("the conversation has no bot binding", false);
    }
    throw new GmsError("no free chat_id found", true);
  }
}
