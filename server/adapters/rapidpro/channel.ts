import type { ChatMessage, StoredMessage } from "../../../protocol/index.js";
import type { Channel } from "../../core/channel.js";
import type { RetryContext } from "../../core/outbox.js";
import type { Conversation } from "../../core/conversation.js";
import type { Logger } from "../../logger.js";
import { decodeDataUrl } from "../http.js";
import { RapidProClient, RapidProError } from "./client.js";
import type { RapidProConfig } from "./config.js";
import { CHANNEL, localized, splitText } from "./mapper.js";

export interface RapidProChannelOptions {
  config: RapidProConfig & { RAPIDPRO_URL: string; RAPIDPRO_TOKEN: string };
  texts: { attended: Record<string, string>; closed: Record<string, string> };
  /** The desk's name: a `deliveryFailed` from it means the contact's own message did not reach the agent. */
  deskName: string;
  /** Origins/hosts whose file links may be fetched (Liaison's PUBLIC_URL, FILE_FETCH_HOSTS): an SSRF guard. */
  fetchable: (url: URL) => boolean;
  logger: Logger;
  observe?: (operation: string, outcome: "ok" | "error", seconds: number) => void;
}

/** How long an agent file that cannot be fetched is retried before the reply goes out without it. */
const FILE_GIVE_UP_MS = 10 * 60_000;

/** How far RapidPro's clock may lag ours when a retry looks for a message that was sent after all. */
const CLOCK_SLACK_MS = 120_000;

/**
 * RapidPro contacts as a customer channel: what the agent side says reaches the contact through API v2 (agent
 * replies split to `RAPIDPRO_MAX_TEXT`, files through `media.json`, edits as corrections, the attended and closed
 * texts) and, when the agent closes, the contact is handed back to a flow.
 */
export class RapidProChannel implements Channel {
  readonly name = CHANNEL;
  readonly client: RapidProClient;
  private tokenRejected = false;

  constructor(private readonly options: RapidProChannelOptions) {
    const { config } = options;
    this.client = new RapidProClient({
      baseUrl: config.RAPIDPRO_URL,
      token: config.RAPIDPRO_TOKEN,
      timeoutMs: config.RAPIDPRO_TIMEOUT_MS,
      onAuth: (rejected) => {
        if (rejected && !this.tokenRejected) options.logger.error({}, "rapidpro rejected the API token (403)");
        this.tokenRejected = rejected;
      },
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
  }

  problem(): string | undefined {
    return this.tokenRejected ? "RapidPro rejects RAPIDPRO_TOKEN (403)" : undefined;
  }

  async deliver(conversation: Conversation, message: StoredMessage, retry?: RetryContext): Promise<void> {
    const contact = conversation.refId;
    if (contact === undefined || conversation.simulated === true) return;
    const { config, texts } = this.options;
    if (message.type === "ChatMessage") {
      if (message.tag === "whisper") return;
      await this.send(contact, this.chatText(message), message, retry);
      return;
    }
    switch (message.activityType) {
      case "participantJoined":
        if (message.info.role !== "agent") return;
        await this.send(
          contact,
          localized(texts.attended, conversation.language, config.ATTENDED_TEXT).replaceAll(
            "{agent}",
            message.info.participant.name,
          ),
          undefined,
          retry,
        );
        return;
      case "endOfConversation":
        // Ended for want of an agent while the flow was told so (registerClient's 503): nothing to say.
        if (message.info.endedBy.role === "system" && conversation.desk.openedAt === undefined) return;
        await this.send(contact, localized(texts.closed, conversation.language, config.CLOSED_TEXT), undefined, retry);
        if (config.RAPIDPRO_CLOSE_FLOW !== undefined) {
          await this.client.startFlow(config.RAPIDPRO_CLOSE_FLOW, contact, {
            closed_by: message.info.endedBy.role,
            conversation_id: conversation.id,
          });
        }
        return;
      case "deliveryFailed":
        if (message.info.destination === this.options.deskName)
          await this.send(contact, config.UNDELIVERED_TEXT, undefined, retry);
        return;
      default:
        // Greetings, typing, queue positions and roster changes mean nothing to a RapidPro contact.
        return;
    }
  }

  private chatText(message: ChatMessage): string {
    return message.replaces === undefined || message.text === "" ? message.text : `Correction: ${message.text}`;
  }

  /**
   * Sends text (split into parts) and files. RapidPro takes no client id, so on a retry (only then) each part is
   * first looked up among the contact's messages sent since the failed attempt and skipped when it is there.
   */
  private async send(contact: string, text: string, message: ChatMessage | undefined, retry?: RetryContext) {
    const files = message ? await this.uploadFiles(message, retry) : { references: [], missing: [] };
    const attachments = files.references;
    if (files.missing.length > 0)
      text = [text, ...files.missing.map((name) => `(${name} could not be delivered)`)].join("\n").trim();
    const parts = text === "" ? [] : splitText(text, this.options.config.RAPIDPRO_MAX_TEXT);
    // Only an attempt whose outcome is unknown (a timeout, a 5xx) may have sent something: a 429 or a refused
    // connection certainly did not, and looking then would swallow a reply that repeats an earlier text.
    const sentBefore = retry?.outcomeUnknown === true ? await this.sentSince(contact, retry.since) : [];
    const outgoing: { text: string; attachments: string[] }[] = parts.map((part, index) => ({
      text: part,
      attachments: index === 0 ? attachments : [],
    }));
    if (outgoing.length === 0 && attachments.length > 0) outgoing.push({ text: "", attachments });
    for (const part of outgoing) {
      const already = sentBefore.findIndex((sent) => sent === part.text && part.text !== "");
      if (already >= 0) {
        sentBefore.splice(already, 1);
        continue;
      }
      if (this.options.config.RAPIDPRO_SEND === "broadcasts") {
        await this.client.broadcast(contact, part.text, part.attachments);
        continue;
      }
      const sent = await this.client.sendMessage(contact, part.text, part.attachments);
      if (sent.status === "failed") {
        throw new RapidProError("the contact cannot be reached (RapidPro marked the message failed)", false, 201, sent);
      }
    }
  }

  private async sentSince(contact: string, since: number): Promise<string[]> {
    const recent = await this.client.messages(contact, new Date(since - CLOCK_SLACK_MS));
    return recent.filter((m) => m.direction === "out").map((m) => m.text ?? "");
  }

  /**
   * Agent files: fetched (from Liaison's signed link or the desk), uploaded to RapidPro's media, attached. A file
   * that still cannot be fetched after FILE_GIVE_UP_MS of retries is left out with a note, so it does not hold up
   * every later reply to the contact.
   */
  private async uploadFiles(
    message: ChatMessage,
    retry: RetryContext | undefined,
  ): Promise<{ references: string[]; missing: string[] }> {
    const references: string[] = [];
    const missing: string[] = [];
    const givingUp = retry !== undefined && Date.now() - retry.since > FILE_GIVE_UP_MS;
    for (const attachment of message.attachments) {
      let data: Uint8Array | undefined = decodeDataUrl(attachment.contentUrl);
      if (data === undefined && attachment.contentUrl.startsWith("data:")) {
        missing.push(attachment.name);
        continue;
      }
      if (data === undefined) {
        if (!URL.canParse(attachment.contentUrl) || !this.options.fetchable(new URL(attachment.contentUrl))) {
          missing.push(attachment.name);
          continue;
        }
        let response: Response | undefined;
        try {
          response = await fetch(attachment.contentUrl, { signal: AbortSignal.timeout(30_000), redirect: "error" });
        } catch (error) {
          if (!givingUp) {
            throw new RapidProError(`fetching ${attachment.name} failed`, true, undefined, undefined, { cause: error });
          }
        }
        if (!response?.ok) {
          // Refused for good (4xx), or unreachable for too long: the reply goes out without it, with a note.
          if (givingUp || (response !== undefined && response.status < 500)) {
            missing.push(attachment.name);
            continue;
          }
          throw new RapidProError(
            `fetching ${attachment.name}: ${response?.status ?? "no answer"}`,
            true,
            response?.status,
          );
        }
        data = new Uint8Array(await response.arrayBuffer());
      }
      references.push(await this.client.uploadMedia({ name: attachment.name, type: attachment.type, data }));
    }
    return { references, missing };
  }
}
