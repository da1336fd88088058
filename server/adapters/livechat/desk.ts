import type { Attachment, ChatMessage, Participant } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import {
  DeskSessionClosedError,
  NoAgentAvailableError,
  type Desk,
  type DeskCapabilities,
  type DeskEvent,
  type DeskSession,
  type DeskStreamSink,
} from "../../core/desk.js";
import { AdapterError } from "../../core/errors.js";
import type { RetryContext } from "../../core/outbox.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import type { AdapterNotice } from "../contract.js";
import { decodeDataUrl } from "../http.js";
import { LiveChatClient, LiveChatError } from "./client.js";
import type { LiveChatConfig } from "./config.js";
import { RtmClosedError, RtmConnection, type RtmPush } from "./rtm.js";
import {
  DESK_NAME,
  LcChatSchema,
  PayloadSchemas,
  authorsOf,
  eventsFromChat,
  eventsFromPayload,
  usersOf,
  MAX_TEXT_CHARS,
  agentParticipant,
  customerFields,
  groupFor,
  messageEvent,
  type LcChat,
  type LcUser,
  type MapContext,
} from "./mapper.js";

/** LiveChat takes uploads up to 10 MB; a larger file goes as a link. */
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

/** How many of the conversation's first messages `open` reads to find the one to start the chat with. */
const FIRST_MESSAGE_SCAN = 50;

export const capabilities: DeskCapabilities = {
  attachments: true,
  edits: false,
  queuePosition: true,
  // LiveChat's sneak peek needs the draft's text, which Liaison's typing indicator does not carry.
  typing: false,
  buttons: false,
  maxTextLength: MAX_TEXT_CHARS,
};

/** The LiveChat config with the variables the desk cannot run without. */
export type LiveChatDeskConfig = LiveChatConfig & {
  LIVECHAT_AGENT_TOKEN: string;
  LIVECHAT_CLIENT_ID: string;
  LIVECHAT_ORGANIZATION_ID: string;
};

export interface LiveChatDeskOptions {
  config: LiveChatDeskConfig;
  store: ConversationStore;
  logger: Logger;
  /** Hosts whose http(s) attachment URLs Liaison may fetch to upload the file (SSRF guard); others go as links. */
  fetchHosts: readonly string[];
  maxFileBytes: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  /** An agent typing (RTM only: LiveChat has no webhook for it), relayed to the customer. */
  onTyping?: (conversation: Conversation, agent: Participant, typing: boolean) => void;
  /** RTM ping interval (LiveChat asks for 15 s); shorter only in tests. */
  pingIntervalMs?: number;
}

/**
 * The key of a customer's channel account: its next conversation is the same LiveChat customer, whose agents see the
 * earlier threads. Only for accounts a trusted caller vouched for (a connector, an API key): anyone may start a web
 * conversation naming any `refId`, and must not be shown as someone else to an agent.
 */
function accountOf(conversation: Pick<Conversation, "channel" | "refId" | "verified">): string | undefined {
  if (conversation.refId === undefined || conversation.verified !== true) return undefined;
  return `${conversation.channel}:${conversation.refId}`;
}

/**
 * The LiveChat desk: Liaison acts as the customer of the Customer Chat API. Each customer account becomes a LiveChat
 * customer (agent_token grant), each conversation a thread of that customer's chat (start_chat, then resume_chat).
 * Every method is idempotent, as the outbox may repeat a call whose outcome it never learnt.
 */
export class LiveChatDesk implements Desk {
  readonly name = DESK_NAME;
  readonly capabilities = capabilities;
  readonly client: LiveChatClient;
  /** Agents' names by LiveChat user id (from joins, chats and the agent list of `get_chat`). */
  private readonly agentNames = new Map<string, string>();

  constructor(private readonly options: LiveChatDeskOptions) {
    const { config } = options;
    this.client = new LiveChatClient({
      apiUrl: config.LIVECHAT_API_URL,
      accountsUrl: config.LIVECHAT_ACCOUNTS_URL,
      clientId: config.LIVECHAT_CLIENT_ID,
      agentToken: config.LIVECHAT_AGENT_TOKEN,
      organizationId: config.LIVECHAT_ORGANIZATION_ID,
      timeoutMs: config.LIVECHAT_TIMEOUT_MS,
      logger: options.logger,
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
  }

  async open(conversation: Conversation): Promise<DeskSession> {
    const entityId = await this.customerOf(conversation);
    await this.updateCustomer(conversation, entityId);
    const group = groupFor(conversation, this.options.config);
    const first = await this.firstMessage(conversation);
    const events = first === undefined ? [] : [messageEvent(first)];

    let chatId: string;
    let threadId: string;
    const existing = await this.latestChat(entityId);
    try {
      if (existing === undefined) {
        const started = (await this.client.call(entityId, "start_chat", {
          chat: { access: { group_ids: [group] }, thread: { events } },
        })) as { chat_id?: unknown; thread_id?: unknown };
        chatId = String(started.chat_id);
        threadId = String(started.thread_id);
      } else if (existing.active) {
        // A start or resume whose answer was lost, or a chat the customer's last conversation left open.
        chatId = existing.id;
        threadId = existing.lastThreadId;
      } else {
        const resumed = (await this.client.call(entityId, "resume_chat", {
          chat: { id: existing.id, access: { group_ids: [group] }, thread: { events } },
        })) as { thread_id?: unknown };
        chatId = existing.id;
        threadId = String(resumed.thread_id);
      }
    } catch (error) {
      if (
        error instanceof LiveChatError &&
        ["groups_offline", "group_offline", "group_unavailable"].includes(error.errorType ?? "")
      ) {
        throw new NoAgentAvailableError(error.errorType ?? "groups_offline");
      }
      // Another attempt (or node) started or resumed the chat meanwhile: the next attempt adopts it.
      if (
        error instanceof LiveChatError &&
        ["chat_limit_reached", "chat_already_active"].includes(error.errorType ?? "")
      ) {
        throw new LiveChatError(error.message, true, error.upstreamStatus, error.errorType, { cause: error });
      }
      throw error;
    }
    // Bound at once, so that a webhook of this chat finds the conversation.
    await this.options.store.bindDesk(conversation.id, { chatId, threadId });

    const chat = await this.chat(entityId, chatId, threadId);
    const session: DeskSession = { ids: { entityId, chatId, threadId } };
    const account = accountOf(conversation);
    if (account !== undefined) session.ids.account = account;
    if (first !== undefined && chat.thread?.events?.some((event) => event.custom_id === first.id) === true) {
      session.ids.firstMessageId = first.id;
    }
    const agent = chat.users?.find(
      (user) => user.type === "agent" && user.present === true && chat.thread?.user_ids?.includes(user.id) === true,
    );
    if (agent) session.agent = agentParticipant(agent.id, agent.name);
    const position = chat.thread?.queue?.position;
    if (agent === undefined && position !== undefined) session.queuePosition = position;
    return session;
  }

  async send(conversation: Conversation, message: ChatMessage, retry?: RetryContext): Promise<void> {
    const { entityId, chatId, threadId, firstMessageId } = conversation.desk.ids;
    if (entityId === undefined || chatId === undefined) {
      throw new AdapterError(DESK_NAME, "no LiveChat chat for this conversation", false);
    }
    if (message.id === firstMessageId) return;
    const parts = await this.parts(message);
    // LiveChat keeps custom_id but does not deduplicate on it: after an attempt whose outcome is unknown, what the
    // thread already holds is not sent again.
    const landed = retry?.outcomeUnknown === true ? await this.customIds(entityId, chatId, threadId) : new Set();
    try {
      for (const part of parts) {
        if (landed.has(part.customId)) continue;
        const event =
          part.kind === "text"
            ? messageEvent({ id: part.customId, text: part.text })
            : { type: "file", url: await this.client.upload(entityId, part.file), custom_id: part.customId };
        await this.client.call(entityId, "send_event", { chat_id: chatId, event });
      }
    } catch (error) {
      if (error instanceof LiveChatError && error.errorType === "chat_inactive") {
        throw new DeskSessionClosedError("the LiveChat chat was closed (chat_inactive)");
      }
      throw error;
    }
  }

  async close(conversation: Conversation): Promise<void> {
    const { entityId, chatId } = conversation.desk.ids;
    if (entityId === undefined || chatId === undefined) return;
    try {
      await this.client.call(entityId, "deactivate_chat", { id: chatId });
    } catch (error) {
      if (error instanceof LiveChatError && error.errorType === "chat_inactive") return;
      throw error;
    }
  }

  /**
   * The conversation's customer RTM socket: logs in (a fresh token when the last one ran out), catches up from the
   * thread (`get_chat`: what was pushed while nobody listened), then records each push in order; `cursor` is the
   * last agent event recorded. Resolves when the thread is closed or `signal` aborts; throws when the socket drops
   * or LiveChat disconnects the customer, and `DeskStreams` runs it again with backoff.
   */
  async stream(
    conversation: Conversation,
    cursor: string | undefined,
    sink: DeskStreamSink,
    signal: AbortSignal,
  ): Promise<void> {
    const { entityId, chatId, threadId } = conversation.desk.ids;
    if (entityId === undefined || chatId === undefined || threadId === undefined || signal.aborted) return;
    const token = await this.client.token(entityId);
    const pushes: RtmPush[] = [];
    let wake: (() => void) | undefined;
    const rtm = await RtmConnection.open({
      url: this.client.rtmUrl(),
      requestTimeoutMs: this.options.config.LIVECHAT_TIMEOUT_MS,
      ...(this.options.pingIntervalMs === undefined ? {} : { pingIntervalMs: this.options.pingIntervalMs }),
      onPush: (push) => {
        pushes.push(push);
        wake?.();
      },
    });
    const abort = (): void => rtm.close();
    signal.addEventListener("abort", abort, { once: true });
    try {
      try {
        await rtm.login(token.accessToken);
      } catch (error) {
        if (error instanceof LiveChatError && error.errorType === "authentication") this.client.dropToken(token);
        throw error;
      }
      const caughtUp = await this.catchUp(conversation, rtm, cursor, sink);
      if (caughtUp === "closed") return;
      for (;;) {
        for (let push = pushes.shift(); push !== undefined; push = pushes.shift()) {
          if (await this.record(conversation, push, sink)) return;
        }
        const arrived = new Promise<void>((resolve) => (wake = resolve));
        await Promise.race([arrived, rtm.closed]);
        wake = undefined;
        if (signal.aborted) return;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof RtmClosedError && error.tokenEnded) this.client.dropToken(token);
      throw error;
    } finally {
      signal.removeEventListener("abort", abort);
      rtm.close();
    }
  }

  /**
   * Records what the thread holds after `cursor` (pushes are never repeated: what came while the socket was down
   * is only in the thread). Says whether the thread is already closed.
   */
  private async catchUp(
    conversation: Conversation,
    rtm: RtmConnection,
    cursor: string | undefined,
    sink: DeskStreamSink,
  ): Promise<"open" | "closed"> {
    const { chatId = "", threadId = "" } = conversation.desk.ids;
    const parsed = LcChatSchema.safeParse(await rtm.request("get_chat", { chat_id: chatId, thread_id: threadId }));
    if (!parsed.success) throw new LiveChatError("get_chat: unexpected answer", true, 200, undefined);
    const chat = parsed.data;
    this.learn(chat.users ?? []);
    const all = chat.thread?.events ?? [];
    const seen = cursor === undefined ? -1 : all.findIndex((event) => event.id === cursor);
    const unseen = all.slice(seen + 1);
    const ctx = await this.context(conversation);
    const events = eventsFromChat(
      { ...chat, ...(chat.thread ? { thread: { ...chat.thread, events: unseen } } : {}) },
      ctx,
    );
    const last = unseen.at(-1)?.id;
    if (events.length > 0 || last !== undefined) await sink.events(events, last);
    return chat.thread?.active === false ? "closed" : "open";
  }

  /** Records one push of the conversation's thread; true once the thread is closed (the stream is done). */
  private async record(conversation: Conversation, push: RtmPush, sink: DeskStreamSink): Promise<boolean> {
    const { chatId, threadId } = conversation.desk.ids;
    const { action, payload } = push;
    if (payload.chat_id !== undefined && payload.chat_id !== chatId) return false;
    if (typeof payload.thread_id === "string" && payload.thread_id !== threadId) return false;
    this.learn(usersOf(action, payload));
    const ctx = await this.context(conversation, authorsOf(payload));
    if (action === "incoming_typing_indicator") {
      const parsed = PayloadSchemas.incoming_typing_indicator.safeParse(payload);
      const author = parsed.success ? parsed.data.typing_indicator.author_id : ctx.customerId;
      if (parsed.success && author !== ctx.customerId) {
        this.options.onTyping?.(
          conversation,
          agentParticipant(author, ctx.agentName(author)),
          parsed.data.typing_indicator.is_typing,
        );
      }
      return false;
    }
    const events: DeskEvent[] = eventsFromPayload(action, payload, ctx);
    const eventId = action === "incoming_event" ? (payload.event as { id?: unknown } | undefined)?.id : undefined;
    const cursor = typeof eventId === "string" ? eventId : undefined;
    if (events.length > 0 || cursor !== undefined) await sink.events(events, cursor);
    return action === "chat_deactivated";
  }

  /** Set while LiveChat rejects the agent token or serves the license from another region. */
  problem(): AdapterNotice | undefined {
    return this.client.problem();
  }

  /** Remembers the agents' names a push or webhook tells. */
  learn(users: readonly LcUser[]): void {
    for (const user of users)
      if (user.type === "agent" && user.name !== undefined) this.agentNames.set(user.id, user.name);
  }

  /**
   * What the mapper needs for this conversation: the customer's id and the agents' names, looked up in the chat
   * (`get_chat`) when an agent of `agentIds` is not known yet.
   */
  async context(conversation: Conversation, agentIds: readonly string[] = []): Promise<MapContext> {
    const { entityId = "", chatId } = conversation.desk.ids;
    const current = conversation.agent;
    const named = (id: string): string | undefined =>
      this.agentNames.get(id) ?? (current?.id === agentParticipant(id, undefined).id ? current.name : undefined);
    const unknown = agentIds.filter((id) => id !== entityId && named(id) === undefined);
    if (unknown.length > 0 && entityId !== "" && chatId !== undefined) {
      try {
        this.learn((await this.chat(entityId, chatId)).users ?? []);
      } catch (error) {
        // A name is a nicety: the message goes on with a generic one.
        this.options.logger.debug({ err: error, conversationId: conversation.id }, "agent names not read");
      }
    }
    return { customerId: entityId, agentName: named };
  }

  /** The chat (one thread of it: the latest unless named), as the customer sees it. */
  async chat(entityId: string, chatId: string, threadId?: string): Promise<LcChat> {
    const answer = await this.client.call(entityId, "get_chat", {
      chat_id: chatId,
      ...(threadId === undefined ? {} : { thread_id: threadId }),
    });
    const chat = LcChatSchema.safeParse(answer);
    if (!chat.success) throw new LiveChatError("get_chat: unexpected answer", true, 200, undefined);
    this.learn(chat.data.users ?? []);
    return chat.data;
  }

  /**
   * The LiveChat customer of the conversation: the one already bound to it, else the one of the customer's channel
   * account (the same SMS customer's last conversation), else a new one. Bound before the chat is started, so that a
   * repeated open finds the customer (and its chat) instead of creating another.
   */
  private async customerOf(conversation: Conversation): Promise<string> {
    const bound = conversation.desk.ids.entityId;
    if (bound !== undefined) return bound;
    const account = accountOf(conversation);
    let entityId: string | undefined;
    if (account !== undefined) {
      const previous = await this.options.store.findByDeskRef(DESK_NAME, "account", account);
      const known = previous?.id === conversation.id ? undefined : previous?.desk.ids.entityId;
      if (known !== undefined) {
        try {
          await this.client.token(known);
          entityId = known;
        } catch (error) {
          if (!(error instanceof LiveChatError) || error.errorType !== "resource_not_found") throw error;
          this.options.logger.info({ conversationId: conversation.id }, "livechat customer gone; starting a new one");
        }
      }
    }
    entityId ??= (await this.client.createCustomer()).entityId;
    await this.options.store.bindDesk(conversation.id, { entityId, ...(account === undefined ? {} : { account }) });
    return entityId;
  }

  /** Name, e-mail and session fields (subject, channel): what the agent sees of the customer. */
  private async updateCustomer(conversation: Conversation, entityId: string): Promise<void> {
    try {
      await this.client.call(entityId, "update_customer", customerFields(conversation));
    } catch (error) {
      // A field LiveChat refuses must not keep the customer from an agent.
      if (!(error instanceof LiveChatError) || error.retryable) throw error;
      this.options.logger.warn(
        { conversationId: conversation.id, err: error },
        "livechat refused the customer's details",
      );
    }
  }

  /** The customer's chat (LiveChat gives a customer one chat), with whether a thread of it is active. */
  private async latestChat(
    entityId: string,
  ): Promise<{ id: string; active: boolean; lastThreadId: string } | undefined> {
    const answer = (await this.client.call(entityId, "list_chats", { limit: 25 })) as {
      chats_summary?: { id?: unknown; active?: unknown; last_thread_id?: unknown }[];
    };
    const chat = answer.chats_summary?.find((summary) => typeof summary.id === "string");
    if (chat === undefined) return undefined;
    return { id: String(chat.id), active: chat.active === true, lastThreadId: String(chat.last_thread_id) };
  }

  /**
   * The message to start the chat with: a plain conversation's first text from the customer. After a bot, the
   * digest goes first, so nothing is put in the start.
   */
  private async firstMessage(conversation: Conversation): Promise<ChatMessage | undefined> {
    if (conversation.bot !== undefined) return undefined;
    const messages = await this.options.store.read(conversation.id, 0, FIRST_MESSAGE_SCAN);
    const first = messages.find(
      (message): message is ChatMessage & { seq: number } =>
        message.type === "ChatMessage" && message.from.id === conversation.customer.id && message.tag === "",
    );
    if (first === undefined || first.attachments.length > 0 || first.text.trim() === "") return undefined;
    if (first.text.length > MAX_TEXT_CHARS) return undefined;
    return first;
  }

  /** The `custom_id`s of the thread's events (this conversation's thread, or the chat's latest). */
  private async customIds(entityId: string, chatId: string, threadId: string | undefined): Promise<Set<string>> {
    const chat = await this.chat(entityId, chatId, threadId);
    const ids = new Set<string>();
    for (const event of chat.thread?.events ?? []) if (event.custom_id !== undefined) ids.add(event.custom_id);
    return ids;
  }

  /** A message as LiveChat events: its text (links to files Liaison may not fetch included), then each file. */
  private async parts(
    message: ChatMessage,
  ): Promise<
    (
      | { kind: "text"; customId: string; text: string }
      | { kind: "file"; customId: string; file: { name: string; type: string; data: Uint8Array } }
    )[]
  > {
    const links: string[] = [];
    const files: { name: string; type: string; data: Uint8Array }[] = [];
    for (const attachment of message.attachments) {
      const file = await this.content(attachment);
      if (file === undefined) links.push(`${attachment.name}: ${attachment.contentUrl}`);
      else files.push(file);
    }
    const text = [message.text, ...links].filter((part) => part.trim() !== "").join("\n");
    const parts: Awaited<ReturnType<LiveChatDesk["parts"]>> = [];
    if (text !== "") parts.push({ kind: "text", customId: message.id, text });
    for (const file of files) {
      parts.push({ kind: "file", customId: parts.length === 0 ? message.id : `${message.id}/${parts.length}`, file });
    }
    return parts;
  }

  /** The file's bytes when Liaison may and can upload it, else undefined (it goes as a link). */
  private async content(attachment: Attachment): Promise<{ name: string; type: string; data: Uint8Array } | undefined> {
    const limit = Math.min(this.options.maxFileBytes, MAX_UPLOAD_BYTES);
    if (attachment.contentUrl.startsWith("data:")) {
      const data = decodeDataUrl(attachment.contentUrl);
      if (data === undefined)
        throw new AdapterError(DESK_NAME, `${attachment.name} is not a readable data: URL`, false);
      if (data.byteLength > limit) {
        throw new AdapterError(DESK_NAME, `${attachment.name} is larger than LiveChat's ${limit} bytes`, false);
      }
      return { name: attachment.name, type: attachment.type, data };
    }
    let host: string;
    try {
      host = new URL(attachment.contentUrl).hostname;
    } catch {
      return undefined;
    }
    if (!this.options.fetchHosts.includes(host)) return undefined;
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
    // Too large for LiveChat: the agent gets the link instead.
    if (data.byteLength > limit) return undefined;
    return { name: attachment.name, type: attachment.type, data };
  }
}
