import { randomUUID } from "node:crypto";
import type { Attachment, ChatMessage, Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import {
  DeskSessionClosedError,
  type Desk,
  type DeskCapabilities,
  type DeskSession,
  type DeskStreamSink,
} from "../../core/desk.js";
import { AdapterError } from "../../core/errors.js";
import type { RetryContext } from "../../core/outbox.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { decodeDataUrl } from "../http.js";
import { DESK_NAME, MessagingClient, SalesforceError } from "./client.js";
import type { RoutableField } from "./config.js";
import {
  END_REASONS,
  eventsFromStream,
  messageEntryId,
  newConversationUuid,
  routingAttributesOf,
  uuidFrom,
} from "./mapper.js";

export const messagingCapabilities: DeskCapabilities = {
  attachments: true,
  edits: false,
  queuePosition: true,
  typing: true,
  buttons: false,
  // Not stated by Salesforce; longer text is split by the core.
  maxTextLength: 4_000,
};

/** The longest wait between two reconnections of a stream that Salesforce keeps closing without sending anything. */
const RECONNECT_MAX_MS = 30_000;

export interface MessagingDeskOptions {
  baseUrl: string;
  orgId: string;
  deployment: string;
  routingAttributes: Partial<Record<RoutableField, string>> | undefined;
  timeoutMs: number;
  /** No byte on the event stream for this long: it is dead and opened again (Salesforce pings every 30 s or so). */
  streamIdleMs: number;
  store: ConversationStore;
  logger: Logger;
  /** Hosts whose http(s) attachment URLs Liaison may fetch to upload the file (SSRF guard); others go as links. */
  fetchHosts: readonly string[];
  maxFileBytes: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
}

/** The end user's token was refused and cannot be renewed: the conversation cannot go on. */
class SubjectLostError extends Error {
  constructor() {
    super("Salesforce no longer accepts this end user's token");
    this.name = "SubjectLostError";
  }
}

/**
 * The Salesforce desk on Messaging for In-App and Web: Liaison is the end user of a Custom Client deployment, one
 * anonymous end user (access token) and one Salesforce conversation per hand-off. Agents' events come over the end
 * user's event stream, run by `DeskStreams`. Every method is idempotent, as the outbox may repeat any of them.
 */
export class SalesforceMessagingDesk implements Desk {
  readonly name = DESK_NAME;
  readonly capabilities = messagingCapabilities;
  readonly client: MessagingClient;
  /** The newest token this node knows per Salesforce conversation (a continuation may have replaced the stored one). */
  private readonly tokens = new Map<string, string>();
  /** Why Salesforce refuses the configuration (the org, the deployment) or the event stream. */
  private readonly refusal: ProblemLog;

  constructor(private readonly options: MessagingDeskOptions) {
    this.refusal = new ProblemLog(options.logger);
    this.client = new MessagingClient({
      baseUrl: options.baseUrl,
      orgId: options.orgId,
      deployment: options.deployment,
      timeoutMs: options.timeoutMs,
      streamIdleMs: options.streamIdleMs,
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
  }

  /** Set while Salesforce refuses the org id or the deployment, or the event stream. */
  problem(): AdapterNotice | undefined {
    return this.refusal.get();
  }

  initialIds(): Record<string, string> {
    return { conversationId: newConversationUuid() };
  }

  async open(conversation: Conversation): Promise<DeskSession> {
    // The stored record: an earlier attempt may have kept a token there before it failed.
    const current = (await this.options.store.get(conversation.id)) ?? conversation;
    let conversationId = current.desk.ids.conversationId ?? uuidFrom(`liaison:${conversation.id}:conversation`);
    let token = this.tokenOf(conversationId, current);
    let lastEventId = current.desk.ids.lastEventId;
    if (token === undefined) {
      ({ token, lastEventId } = await this.newEndUser(conversation.id, conversationId));
    }
    const attributes = routingAttributesOf(conversation, this.options.routingAttributes);
    try {
      token = await this.authed(conversationId, conversation.id, token, (bearer) =>
        this.client.createConversation(bearer, conversationId, attributes, conversation.language),
      );
    } catch (error) {
      if (error instanceof SubjectLostError) {
        // The token ran out before the conversation could be created: start over as a new end user, with a new
        // conversation (the old id may exist for the lost end user, whom nobody can reach any more).
        conversationId = newConversationUuid();
        ({ token, lastEventId } = await this.newEndUser(conversation.id, conversationId));
        await this.client.createConversation(token, conversationId, attributes, conversation.language);
      } else if (!(error instanceof SalesforceError && error.upstreamStatus === 409)) {
        // 409: the conversation exists already: an earlier attempt created it and its answer was lost.
        throw error;
      }
    }
    return { ids: { conversationId, accessToken: token, lastEventId: lastEventId ?? "0" } };
  }

  async send(conversation: Conversation, message: ChatMessage, retry?: RetryContext): Promise<void> {
    const { conversationId, token } = this.session(conversation);
    try {
      const uploads: Attachment[] = [];
      const links: string[] = [];
      for (const attachment of message.attachments) {
        if (this.uploadable(attachment)) uploads.push(attachment);
        else links.push(`${attachment.name}: ${attachment.contentUrl}`);
      }
      const text = [message.text, ...links].filter((part) => part.trim() !== "").join("\n");
      let bearer = token;
      if (text !== "") {
        const entryId = messageEntryId(conversation, message.id);
        bearer = await this.delivered(conversationId, conversation.id, bearer, entryId, retry, (t) =>
          this.client.sendMessage(t, conversationId, entryId, text),
        );
      }
      for (const [index, attachment] of uploads.entries()) {
        const file = await this.content(attachment);
        const ids = {
          messageId: messageEntryId(conversation, message.id, `file:${index}`),
          fileId: messageEntryId(conversation, message.id, `fileId:${index}`),
        };
        bearer = await this.delivered(conversationId, conversation.id, bearer, ids.messageId, retry, (t) =>
          this.client.sendFile(t, conversationId, ids, file),
        );
      }
    } catch (error) {
      if (error instanceof SubjectLostError) throw new DeskSessionClosedError(END_REASONS.authLost);
      // 404: the conversation is gone; 417: its messaging session ended (the agent closed it) and Liaison does not
      // start another one: the conversation is over on the agent side.
      if (error instanceof SalesforceError && (error.upstreamStatus === 404 || error.upstreamStatus === 417)) {
        throw new DeskSessionClosedError(`the Salesforce conversation has ended (${error.upstreamStatus})`);
      }
      throw error;
    }
  }

  async typing(conversation: Conversation, state: "start" | "stop"): Promise<void> {
    const { conversationId, token } = this.session(conversation);
    await this.authed(conversationId, conversation.id, token, (bearer) =>
      this.client.typing(bearer, conversationId, randomUUID(), state === "start"),
    );
  }

  async close(conversation: Conversation): Promise<void> {
    const { conversationId, token } = this.session(conversation);
    try {
      await this.authed(conversationId, conversation.id, token, (bearer) =>
        this.client.closeConversation(bearer, conversationId),
      );
    } catch (error) {
      // Nobody can reach the conversation any more, or it is closed already (400) or gone (404): done.
      if (error instanceof SubjectLostError) return;
      if (error instanceof SalesforceError && (error.upstreamStatus === 400 || error.upstreamStatus === 404)) return;
      throw error;
    }
  }

  /**
   * Reads the end user's event stream from `cursor` (the last event recorded, else where the token said the stream
   * stood) until the conversation ends on Salesforce's side. A stream Salesforce closes is opened again at once,
   * then with backoff while it keeps closing empty; a refused token is renewed once; failures go to `DeskStreams`,
   * which starts the stream again from the stored cursor.
   */
  async stream(
    conversation: Conversation,
    cursor: string | undefined,
    sink: DeskStreamSink,
    signal: AbortSignal,
  ): Promise<void> {
    const { conversationId } = this.session(conversation);
    let token = this.session(conversation).token;
    let lastEventId = cursor ?? conversation.desk.ids.lastEventId ?? "0";
    let agent: Participant | undefined = conversation.agent;
    let emptyCloses = 0;
    while (!signal.aborted) {
      let received = false;
      try {
        for await (const frame of this.client.stream(token, lastEventId, signal)) {
          this.refusal.clear();
          if (frame.id === undefined) continue;
          const mapped = eventsFromStream(frame.event, frame.data, conversationId, { agent });
          // The agent who joined last: Salesforce reports them leaving before the session's end that they caused.
          for (const event of mapped.events) if (event.type === "agentJoined") agent = event.agent;
          await sink.events(mapped.events, frame.id);
          lastEventId = frame.id;
          received = true;
          if (mapped.ended) return;
        }
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof SalesforceError)) throw error;
        if (error.unauthorized) {
          try {
            token = await this.renew(conversationId, conversation.id, token);
          } catch (renewal) {
            if (!(renewal instanceof SubjectLostError)) throw renewal;
            this.options.logger.warn({ conversationId: conversation.id }, "salesforce end user token lost");
            await sink.events([{ type: "closed", by: "system", reason: END_REASONS.authLost }]);
            return;
          }
          continue;
        }
        if (error.upstreamStatus === 400) {
          this.refusal.set({
            log: `Salesforce refused the event stream (${error.message})`,
            ready: "Salesforce refuses the event stream (400)",
          });
        }
        if (error.upstreamStatus === 429) {
          await delay(error.retryAfterMs ?? 1_000, signal);
          continue;
        }
        throw error;
      }
      // Salesforce closed the stream (deploys, load balancing, idle limits): open it again from the last event.
      emptyCloses = received ? 0 : emptyCloses + 1;
      if (emptyCloses > 0) await delay(Math.min(RECONNECT_MAX_MS, 1_000 * 1.5 ** (emptyCloses - 1)), signal);
    }
  }

  /** A new anonymous end user for the conversation, kept with it before anything is created on its behalf. */
  private async newEndUser(liaisonId: string, conversationId: string): Promise<{ token: string; lastEventId: string }> {
    let issued;
    try {
      issued = await this.client.accessToken();
    } catch (error) {
      if (error instanceof SalesforceError && error.upstreamStatus === 400) {
        this.refusal.set({
          log:
            "Salesforce refused the org id or the deployment (SALESFORCE_ORG_ID, SALESFORCE_MESSAGING_DEPLOYMENT): " +
            error.message,
          ready: "Salesforce refuses the org id or the deployment (400)",
        });
      }
      throw error;
    }
    this.refusal.clear();
    const lastEventId = issued.lastEventId ?? "0";
    await this.options.store.bindDesk(liaisonId, {
      conversationId,
      accessToken: issued.accessToken,
      lastEventId,
    });
    this.tokens.set(conversationId, issued.accessToken);
    return { token: issued.accessToken, lastEventId };
  }

  /**
   * Sends one entry with its own id. A repeated id is refused by some deployments (409), and a retry after an
   * unknown outcome that is refused otherwise checks the conversation's entries: either way, an entry Salesforce has
   * is delivered, never shown twice.
   */
  private async delivered(
    conversationId: string,
    liaisonId: string,
    token: string,
    entryId: string,
    retry: RetryContext | undefined,
    call: (bearer: string) => Promise<void>,
  ): Promise<string> {
    try {
      return await this.authed(conversationId, liaisonId, token, call);
    } catch (error) {
      if (!(error instanceof SalesforceError)) throw error;
      if (error.upstreamStatus === 409) return token;
      if (error.upstreamStatus === 400 && retry !== undefined) {
        const bearer = this.tokens.get(conversationId) ?? token;
        if ((await this.client.recentMessageIds(bearer, conversationId)).includes(entryId)) return bearer;
      }
      throw error;
    }
  }

  /** Runs a call with the end user's token; a refused token is renewed once (continuation) and the call repeated. */
  private async authed(
    conversationId: string,
    liaisonId: string,
    token: string,
    call: (bearer: string) => Promise<void>,
  ): Promise<string> {
    try {
      await call(token);
      return token;
    } catch (error) {
      if (!(error instanceof SalesforceError) || !error.unauthorized) throw error;
    }
    const renewed = await this.renew(conversationId, liaisonId, token);
    try {
      await call(renewed);
    } catch (error) {
      if (error instanceof SalesforceError && error.unauthorized) throw new SubjectLostError();
      throw error;
    }
    return renewed;
  }

  /** A continuation token for the same end user, kept with the conversation; SubjectLostError when refused. */
  private async renew(conversationId: string, liaisonId: string, token: string): Promise<string> {
    let renewed;
    try {
      renewed = await this.client.continuation(token);
    } catch (error) {
      if (error instanceof SalesforceError && error.unauthorized) throw new SubjectLostError();
      throw error;
    }
    this.tokens.set(conversationId, renewed.accessToken);
    await this.options.store.bindDesk(liaisonId, { accessToken: renewed.accessToken });
    return renewed.accessToken;
  }

  private tokenOf(conversationId: string, conversation: Conversation): string | undefined {
    return this.tokens.get(conversationId) ?? conversation.desk.ids.accessToken;
  }

  private session(conversation: Conversation): { conversationId: string; token: string } {
    const conversationId = conversation.desk.ids.conversationId;
    const token = conversationId === undefined ? undefined : this.tokenOf(conversationId, conversation);
    if (conversationId === undefined || token === undefined) {
      throw new AdapterError(DESK_NAME, "no Salesforce conversation for this conversation", false);
    }
    return { conversationId, token };
  }

  private uploadable(attachment: Attachment): boolean {
    if (attachment.contentUrl.startsWith("data:")) return true;
    try {
      return this.options.fetchHosts.includes(new URL(attachment.contentUrl).hostname);
    } catch {
      return false;
    }
  }

  private async content(attachment: Attachment): Promise<{ name: string; type: string; data: Uint8Array }> {
    if (attachment.contentUrl.startsWith("data:")) {
      const data = decodeDataUrl(attachment.contentUrl);
      if (data === undefined)
        throw new AdapterError(DESK_NAME, `${attachment.name} is not a readable data: URL`, false);
      return { name: attachment.name, type: attachment.type, data };
    }
    let response: Response;
    try {
      response = await fetch(attachment.contentUrl, { signal: AbortSignal.timeout(30_000), redirect: "error" });
    } catch (error) {
      throw new AdapterError(DESK_NAME, `fetching ${attachment.name} failed`, true, undefined, { cause: error });
    }
    if (!response.ok) {
      throw new AdapterError(
        DESK_NAME,
        `fetching ${attachment.name}: ${response.status}`,
        response.status >= 500,
        response.status,
      );
    }
    const data = new Uint8Array(await response.arrayBuffer());
    if (data.byteLength > this.options.maxFileBytes) {
      throw new AdapterError(DESK_NAME, `${attachment.name} is larger than ${this.options.maxFileBytes} bytes`, false);
    }
    return { name: attachment.name, type: attachment.type, data };
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
