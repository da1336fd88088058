import type { ChatMessage, Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import {
  DeskSessionClosedError,
  type Desk,
  type DeskCapabilities,
  type DeskSession,
  type DeskStreamSink,
} from "../../core/desk.js";
import { AdapterError } from "../../core/errors.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { ChatApiError, ChatClient, type ChatSessionRef } from "./chat-client.js";
import { chasitorInitBody, eventsFromPoll, formatChatCursor, parseChatCursor } from "./chat-mapper.js";
import { DESK_NAME } from "./client.js";

export const chatCapabilities: DeskCapabilities = {
  // Files go to the agent as links in the text: the legacy API has no visitor upload.
  attachments: true,
  edits: false,
  queuePosition: true,
  // Every Chasitor POST takes the next request sequence: typing goes out on the desk outbox lane with the messages,
  // so that it never takes a message's number.
  typing: "ordered",
  buttons: false,
  maxTextLength: 4_000,
};

/** Slack added to `clientPollTimeout` before an unanswered poll is abandoned. */
const POLL_SLACK_MS = 5_000;

export interface ChatDeskOptions {
  baseUrl: string;
  apiVersion: number;
  orgId: string;
  deploymentId: string;
  buttonId: string;
  timeoutMs: number;
  store: ConversationStore;
  logger: Logger;
  /** A signed, expiring link to one of a message's files that Liaison serves itself (`data:` URLs). */
  fileLink: (conversationId: string, messageId: string, index: number) => string;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
}

/**
 * The Salesforce desk on the legacy Chat REST API: one chat session per hand-off. The request sequence of the
 * session's POSTs is kept with the conversation per affinity token (`seq.<affinity>` = `<n> <what>`), so that a
 * retried POST keeps its number (Salesforce drops the repeat) and every node continues the count. The poll loop runs
 * as the desk stream (one node at a time); it alone reconnects after a 503, and POSTs wait until it has resynced.
 */
export class SalesforceChatDesk implements Desk {
  readonly name = DESK_NAME;
  readonly capabilities = chatCapabilities;
  readonly client: ChatClient;
  /** Why Salesforce refuses the org id or the deployment. */
  private readonly refusal: ProblemLog;

  constructor(private readonly options: ChatDeskOptions) {
    this.refusal = new ProblemLog(options.logger);
    this.client = new ChatClient({
      baseUrl: options.baseUrl,
      apiVersion: options.apiVersion,
      timeoutMs: options.timeoutMs,
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
  }

  /** Set while Salesforce refuses the org id or the deployment. */
  problem(): AdapterNotice | undefined {
    return this.refusal.get();
  }

  /**
   * Asks Salesforce whether it knows the org and the deployment (a chat request with wrong ids is accepted and then
   * fails like one nobody could take): at start, and after each failed chat request.
   */
  async verify(): Promise<void> {
    try {
      await this.client.availability(this.options.orgId.slice(0, 15), this.options.deploymentId, this.options.buttonId);
      this.refusal.clear();
    } catch (error) {
      if (!(error instanceof ChatApiError) || error.upstreamStatus !== 400) throw error;
      this.refusal.set({
        log: `Salesforce refused the org id or the deployment (SALESFORCE_ORG_ID, SALESFORCE_DEPLOYMENT_ID): ${error.message}`,
        ready: "Salesforce refuses the org id or the deployment (400)",
      });
    }
  }

  async open(conversation: Conversation): Promise<DeskSession> {
    const current = (await this.options.store.get(conversation.id)) ?? conversation;
    let ids = current.desk.ids;
    for (let attempt = 0; ; attempt++) {
      if (ids.chatKey === undefined || ids.affinity === undefined || ids.chatId === undefined) {
        ids = await this.newSession(conversation.id);
      }
      const session = { key: ids.chatKey ?? "", affinityToken: ids.affinity ?? "" };
      const body = chasitorInitBody(conversation, {
        organizationId: this.options.orgId.slice(0, 15),
        deploymentId: this.options.deploymentId,
        buttonId: this.options.buttonId,
        sessionId: ids.chatId ?? "",
      });
      try {
        // Sequence 1, also when repeated: a ChasitorInit that did arrive is dropped as a duplicate.
        await this.client.post(session, "ChasitorInit", body, 1);
        return { ids: { ...ids } };
      } catch (error) {
        // The session ran out before the chat was requested: a new one.
        if (error instanceof ChatApiError && error.sessionGone && attempt === 0) {
          ids = {};
          continue;
        }
        throw error;
      }
    }
  }

  async send(conversation: Conversation, message: ChatMessage): Promise<void> {
    const links = message.attachments.map((attachment, index) =>
      attachment.contentUrl.startsWith("data:")
        ? `${attachment.name}: ${this.options.fileLink(conversation.id, message.id, index)}`
        : `${attachment.name}: ${attachment.contentUrl}`,
    );
    const text = [message.text, ...links].filter((part) => part.trim() !== "").join("\n");
    if (text === "") return;
    await this.posted(conversation, `m:${message.id}`, "ChatMessage", { text });
  }

  /** ChasitorTyping or ChasitorNotTyping, only as an item of the desk outbox lane (`queued`): see `posted`. */
  async typing(
    conversation: Conversation,
    state: "start" | "stop",
    queued?: { id: string; late: boolean },
  ): Promise<void> {
    if (queued === undefined) {
      throw new AdapterError(DESK_NAME, "typing is sent only in order with the messages", false);
    }
    const what = `t:${queued.id}`;
    // A late indicator is sent only if an earlier attempt took its request number (the session's last): Salesforce
    // may have it, and the next request must not find a gap.
    if (queued.late && !(await this.holdsLastNumber(conversation, what))) return;
    await this.posted(conversation, what, state === "start" ? "ChasitorTyping" : "ChasitorNotTyping", {});
  }

  /** Whether `what` took the current chat session's last request number. */
  private async holdsLastNumber(conversation: Conversation, what: string): Promise<boolean> {
    const ids = (await this.options.store.get(conversation.id))?.desk.ids ?? conversation.desk.ids;
    const { affinity } = ids;
    return affinity !== undefined && (ids[`seq.${affinity}`] ?? "").split(" ")[1] === what;
  }

  async close(conversation: Conversation): Promise<void> {
    try {
      await this.posted(conversation, "end", "ChatEnd", { reason: "client" });
    } catch (error) {
      // The chat is over already (ended by the agent, timed out, or this very ChatEnd landed before).
      if (error instanceof DeskSessionClosedError) return;
      throw error;
    }
  }

  /**
   * The poll loop: `System/Messages` from the stored ack, each answer's events recorded before the next poll
   * acknowledges it; a 503 reconnects the session (ReconnectSession, then ChasitorResyncState once
   * ChasitorSessionData came), 403 and 409 end the conversation.
   */
  async stream(
    conversation: Conversation,
    cursor: string | undefined,
    sink: DeskStreamSink,
    signal: AbortSignal,
  ): Promise<void> {
    const { chatId, chatKey } = conversation.desk.ids;
    let affinity = conversation.desk.ids.affinity;
    if (chatId === undefined || chatKey === undefined || affinity === undefined) {
      throw new AdapterError(DESK_NAME, "no Salesforce chat session for this conversation", false);
    }
    const pollTimeoutMs = Number(conversation.desk.ids.pollTimeout ?? "40") * 1000 + POLL_SLACK_MS;
    let position = parseChatCursor(cursor);
    let agent: Participant | undefined = conversation.agent;
    while (!signal.aborted) {
      const session: ChatSessionRef = { key: chatKey, affinityToken: affinity };
      let poll;
      try {
        poll = await this.client.messages(session, position.ack, pollTimeoutMs, signal);
      } catch (error) {
        if (!(error instanceof ChatApiError)) throw error;
        if (error.affinityChanged) {
          affinity = await this.client.reconnect(chatKey, position.offset);
          // One step: the new token and "resync pending", so that no POST goes out with it before the resync.
          await this.options.store.bindDesk(conversation.id, { affinity, resync: affinity });
          continue;
        }
        if (error.sessionGone || error.upstreamStatus === 409) {
          const reason = error.sessionGone ? "salesforce_chat_session_ended" : "salesforce_chat_terminated";
          await sink.events([{ type: "closed", by: "system", reason }]);
          return;
        }
        throw error;
      }
      if (poll === undefined) continue;
      const mapped = eventsFromPoll(poll, chatId, { agentMessages: position.agentMessages, agent });
      agent = mapped.agent;
      if (mapped.resync) await this.resync(conversation.id, { key: chatKey, affinityToken: affinity });
      position = { ack: poll.sequence, offset: poll.offset ?? position.offset, agentMessages: mapped.agentMessages };
      await sink.events(mapped.events, formatChatCursor(position));
      if (mapped.events.some((event) => event.type === "noAgentAvailable")) {
        this.verify().catch((error: unknown) => this.options.logger.debug({ err: error }, "availability check failed"));
      }
      if (mapped.ended) return;
    }
  }

  /** After ReconnectSession: ChasitorResyncState as the first POST (sequence 1), then POSTs may go on. */
  private async resync(conversationId: string, session: ChatSessionRef): Promise<void> {
    await this.client.post(session, "ChasitorResyncState", { organizationId: this.options.orgId.slice(0, 15) }, 1);
    await this.options.store.bindDesk(conversationId, { [`seq.${session.affinityToken}`]: "1 resync", resync: "none" });
  }

  /**
   * A Chasitor POST with the session's next request sequence, or the one an earlier attempt of the same POST (`what`)
   * took under the same affinity token: Salesforce drops a repeat of a sequence it has. The outbox sends one item of
   * a conversation at a time, so the count read here is not raced by another POST of it.
   */
  private async posted(conversation: Conversation, what: string, name: string, body: unknown): Promise<void> {
    const ids = (await this.options.store.get(conversation.id))?.desk.ids ?? conversation.desk.ids;
    const { chatKey, affinity } = ids;
    if (chatKey === undefined || affinity === undefined) {
      throw new AdapterError(DESK_NAME, "no Salesforce chat session for this conversation", false);
    }
    if (ids.resync === affinity) {
      throw new AdapterError(DESK_NAME, "the chat is being reconnected", true, undefined, { retryAfterMs: 500 });
    }
    const key = `seq.${affinity}`;
    const [last, lastWhat] = (ids[key] ?? "1 init").split(" ");
    const sequence = lastWhat === what ? Number(last) : Number(last) + 1;
    if (lastWhat !== what) await this.options.store.bindDesk(conversation.id, { [key]: `${sequence} ${what}` });
    try {
      await this.client.post({ key: chatKey, affinityToken: affinity }, name, body, sequence);
    } catch (error) {
      if (error instanceof ChatApiError && (error.sessionGone || error.upstreamStatus === 409)) {
        throw new DeskSessionClosedError("the Salesforce chat has ended");
      }
      throw error;
    }
  }

  /** A new chat session, kept with the conversation before a chat is requested in it. */
  private async newSession(conversationId: string): Promise<Record<string, string>> {
    const session = await this.client.sessionId();
    const ids = {
      chatId: session.id,
      chatKey: session.key,
      affinity: session.affinityToken,
      pollTimeout: String(session.clientPollTimeout),
      [`seq.${session.affinityToken}`]: "1 init",
      resync: "none",
    };
    await this.options.store.bindDesk(conversationId, ids);
    return ids;
  }
}
