import type { ChatMessage, StoredMessage } from "../../../protocol/index.js";
import type { Channel } from "../../core/channel.js";
import type { RetryContext } from "../../core/outbox.js";
import type { Conversation } from "../../core/conversation.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { decodeDataUrl } from "../http.js";
import { RapidProClient, RapidProError } from "./client.js";
import type { RapidProConfig } from "./config.js";
import { CHANNEL, MAX_MEDIA_BYTES, localized, rapidProTakes, splitText } from "./mapper.js";

export interface RapidProChannelOptions {
  config: RapidProConfig & { RAPIDPRO_URL: string; RAPIDPRO_TOKEN: string };
  texts: { attended: Record<string, string>; closed: Record<string, string> };
  /** The desk's name: a `deliveryFailed` from it means the contact's own message did not reach the agent. */
  deskName: string;
  /** Origins/hosts whose file links may be fetched (Liaison's PUBLIC_URL, FILE_FETCH_HOSTS): an SSRF guard. */
  fetchable: (url: URL) => boolean;
  logger: Logger;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  /** A file of a delivered message did not go as a file (the agents are told; see ConversationService). */
  fileNotAttached?: (
    conversation: Conversation,
    message: { id: string },
    file: { index: number; name: string },
    outcome: "link" | "dropped",
    reason: string,
  ) => Promise<void>;
}

/** What became of one agent file. */
type FileOutcome =
  | { kind: "attached"; reference: string }
  /** Sent as a `name: url` line; `reason` when RapidPro would not take it as a file (else RAPIDPRO_MEDIA=links). */
  | { kind: "link"; url: string; reason?: string }
  | { kind: "dropped"; reason: string };

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
  /** What RapidPro's last 403 said about the credentials; cleared by the next success. */
  private readonly credentials: ProblemLog;
  /** Set once media.json answered like an older server's Surveyor endpoint (logged once). */
  private oldMediaEndpoint = false;

  constructor(private readonly options: RapidProChannelOptions) {
    const { config } = options;
    this.credentials = new ProblemLog(options.logger);
    this.client = new RapidProClient({
      baseUrl: config.RAPIDPRO_URL,
      token: config.RAPIDPRO_TOKEN,
      timeoutMs: config.RAPIDPRO_TIMEOUT_MS,
      onAuth: (problem) => {
        if (problem === undefined) this.credentials.clear();
        else this.credentials.set(problem);
      },
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
  }

  /** Set while RapidPro refuses the credentials. */
  problem(): AdapterNotice | undefined {
    return this.credentials.get();
  }

  async deliver(conversation: Conversation, message: StoredMessage, retry?: RetryContext): Promise<void> {
    const contact = conversation.refId;
    if (contact === undefined || conversation.simulated === true) return;
    const { config, texts } = this.options;
    if (message.type === "ChatMessage") {
      if (message.tag === "whisper") return;
      const outcomes = await this.send(contact, this.chatText(message), message, retry);
      const notify = this.options.fileNotAttached;
      if (notify === undefined) return;
      // Told only once the message went out (a retry reports each file once: see ConversationService).
      for (const [index, outcome] of outcomes.entries()) {
        const name = message.attachments[index]?.name ?? "a file";
        if (outcome.kind === "dropped") await notify(conversation, message, { index, name }, "dropped", outcome.reason);
        if (outcome.kind === "link" && outcome.reason !== undefined) {
          await notify(conversation, message, { index, name }, "link", outcome.reason);
        }
      }
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
   * first looked up among the contact's messages sent since the failed attempt and skipped when it is there. Files
   * RapidPro takes go as attachments of the first part; the others as `name: url` lines after the text.
   */
  private async send(
    contact: string,
    text: string,
    message: ChatMessage | undefined,
    retry?: RetryContext,
  ): Promise<FileOutcome[]> {
    const outcomes = message ? await this.files(message, retry) : [];
    const attachments: string[] = [];
    const lines: string[] = [];
    for (const [index, outcome] of outcomes.entries()) {
      const name = message?.attachments[index]?.name ?? "file";
      if (outcome.kind === "attached") attachments.push(outcome.reference);
      else if (outcome.kind === "link") lines.push(`${name}: ${outcome.url}`);
      else lines.push(`(${name} could not be delivered)`);
    }
    if (lines.length > 0) text = [text, ...lines].join("\n").trim();
    const broadcasts = this.options.config.RAPIDPRO_SEND === "broadcasts";
    // A broadcast's text reaches RapidPro with every `@` doubled, and RapidPro checks that length.
    const parts =
      text === ""
        ? []
        : splitText(
            text,
            this.options.config.RAPIDPRO_MAX_TEXT,
            broadcasts ? (char) => (char === "@" ? 2 : 1) : undefined,
          );
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
      try {
        if (broadcasts) {
          await this.client.broadcast(contact, part.text, part.attachments);
          continue;
        }
        const sent = await this.client.sendMessage(contact, part.text, part.attachments);
        if (sent.status === "failed") {
          throw new RapidProError(
            "the contact cannot be reached (RapidPro marked the message failed)",
            false,
            201,
            sent,
          );
        }
      } catch (error) {
        throw contactGone(error) ?? error;
      }
    }
    return outcomes;
  }

  private async sentSince(contact: string, since: number): Promise<string[]> {
    const recent = await this.client.messages(contact, new Date(since - CLOCK_SLACK_MS));
    return recent.filter((m) => m.direction === "out").map((m) => m.text ?? "");
  }

  /**
   * Agent files. One RapidPro takes (`Media.ALLOWED_CONTENT_TYPES`, at most 25 MB) is fetched (from Liaison's signed
   * link or the desk), uploaded to `media.json` and attached; one it does not take, or that it refuses on upload,
   * goes as its link when that is an http(s) URL the contact can open, else as a note; with RAPIDPRO_MEDIA=links
   * every file goes as its link. A file that still cannot be fetched after FILE_GIVE_UP_MS of retries is left out with
   * a note, so it does not hold up every later reply to the contact.
   */
  private async files(message: ChatMessage, retry: RetryContext | undefined): Promise<FileOutcome[]> {
    const outcomes: FileOutcome[] = [];
    const givingUp = retry !== undefined && Date.now() - retry.since > FILE_GIVE_UP_MS;
    for (const attachment of message.attachments) {
      const link = /^https?:\/\//i.test(attachment.contentUrl) ? attachment.contentUrl : undefined;
      const instead = (reason: string): FileOutcome =>
        link === undefined
          ? { kind: "dropped", reason: `${reason}, and it has no link the contact could open` }
          : { kind: "link", url: link, reason };
      if (this.options.config.RAPIDPRO_MEDIA === "links" || this.oldMediaEndpoint) {
        outcomes.push(link === undefined ? instead("RAPIDPRO_MEDIA=links") : { kind: "link", url: link });
        continue;
      }
      if (!rapidProTakes(attachment.type)) {
        outcomes.push(instead(`RapidPro does not take ${attachment.type} files`));
        continue;
      }
      const fetched = await this.content(attachment, givingUp);
      if ("offLimits" in fetched) {
        outcomes.push(instead(fetched.offLimits));
        continue;
      }
      if ("failed" in fetched) {
        outcomes.push({ kind: "dropped", reason: fetched.failed });
        continue;
      }
      const { data } = fetched;
      if (data.byteLength > MAX_MEDIA_BYTES) {
        outcomes.push(instead("it is larger than RapidPro's 25 MB"));
        continue;
      }
      try {
        const reference = await this.client.uploadMedia({ name: attachment.name, type: attachment.type, data });
        outcomes.push({ kind: "attached", reference });
      } catch (error) {
        const refusal = mediaRefusal(error);
        if (refusal === undefined) throw error;
        if (refusal === "old endpoint") {
          // Surveyor's endpoint answers our upload 400 {}: this server predates media.json (v8.1.37).
          this.options.logger.warn({}, "rapidpro's media.json is the old Surveyor endpoint: set RAPIDPRO_MEDIA=links");
          this.oldMediaEndpoint = true;
          outcomes.push(
            link === undefined ? instead("RapidPro older than v8.1.37 takes no uploads") : { kind: "link", url: link },
          );
          continue;
        }
        outcomes.push(instead(`RapidPro refused it: ${refusal}`));
      }
    }
    return outcomes;
  }

  /**
   * The file's bytes; or why Liaison may not fetch it (`offLimits`: the contact may still open its link); or why it
   * failed (`failed`: refused for good, or unreachable for too long, so its link would not open either).
   */
  private async content(
    attachment: { name: string; contentUrl: string },
    givingUp: boolean,
  ): Promise<{ data: Uint8Array } | { offLimits: string } | { failed: string }> {
    const decoded = decodeDataUrl(attachment.contentUrl);
    if (decoded !== undefined) return { data: decoded };
    if (attachment.contentUrl.startsWith("data:")) return { failed: "it is not a readable data: URL" };
    if (!URL.canParse(attachment.contentUrl) || !this.options.fetchable(new URL(attachment.contentUrl))) {
      return { offLimits: "Liaison may not fetch files from that host" };
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
        return { failed: `it could not be fetched (${response?.status ?? "no answer"})` };
      }
      throw new RapidProError(
        `fetching ${attachment.name}: ${response?.status ?? "no answer"}`,
        true,
        response?.status,
      );
    }
    return { data: new Uint8Array(await response.arrayBuffer()) };
  }
}

/**
 * Why `media.json` refused a file: DRF's message under `file` ("Unsupported file type.", "Limit for file uploads
 * is 25.0 MB."), or "old endpoint" for the `{}` of an older server's Surveyor endpoint; undefined for any other error.
 */
function mediaRefusal(error: unknown): string | undefined {
  if (!(error instanceof RapidProError) || error.upstreamStatus !== 400) return undefined;
  const body = error.body;
  if (body !== null && typeof body === "object" && Object.keys(body).length === 0) return "old endpoint";
  const file = (body as { file?: unknown } | undefined)?.file;
  return Array.isArray(file) && typeof file[0] === "string" ? file[0] : undefined;
}

/**
 * A 400 whose contact field says `No such object` (ContactField: unknown, or deleted in RapidPro): a clearer refusal
 * for the agent's note than the raw body.
 */
function contactGone(error: unknown): RapidProError | undefined {
  if (!(error instanceof RapidProError) || error.upstreamStatus !== 400) return undefined;
  // messages.json names the field `contact`, broadcasts.json `contacts`.
  const body = error.body as { contact?: unknown; contacts?: unknown } | undefined;
  const field = body?.contact ?? body?.contacts;
  const detail = Array.isArray(field) && typeof field[0] === "string" ? field[0] : undefined;
  if (detail?.startsWith("No such object") !== true) return undefined;
  return new RapidProError(`the contact is not in RapidPro (deleted?): ${detail}`, false, 400, error.body, {
    cause: error,
  });
}
