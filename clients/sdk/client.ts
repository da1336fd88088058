import { io, type Socket } from "socket.io-client";
import type {
  Attachment,
  Button,
  ClientToServerEvents,
  ConversationFilter,
  ConversationId,
  ConversationInfo,
  ConversationUpdated,
  EndAck,
  JoinConversation,
  JoinRole,
  Message,
  MessageId,
  OkAck,
  Participant,
  RegisterConnectorAck,
  SendAck,
  SendChatMessage,
  SendTyping,
  ServerToClientEvents,
  Tag,
} from "../../protocol/index.js";
import { checkAnswer, type AnswerName, type Answers } from "./answers.js";
import { TypedEmitter } from "./emitter.js";
import { errorFromInfo, isLiaisonError, LiaisonError } from "./errors.js";
import { validate } from "./schema.js";

/** The socket.io-client socket the SDK wraps, typed with the protocol's event maps. */
export type LiaisonSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Options of {@link LiaisonClient}. */
export interface LiaisonClientOptions {
  /** The gateway's URL, e.g. `https://chat.example.com`. */
  url: string;
  /** For connectors, agent applications and back-office tools; sent in the handshake. Customers have none. */
  apiKey?: string;
  /** The Socket.IO path, for gateways behind a path-prefix proxy (default `/socket.io`). */
  path?: string;
  /** Time allowed for each call, retries included (default 10 s). */
  timeoutMs?: number;
  /** Transports to try, in order (default: long-polling, then upgrade to WebSocket). */
  transports?: ("polling" | "websocket" | "webtransport")[];
  /** First delay before reconnecting after the connection dropped (default 1 s, doubled up to the max). */
  reconnectionDelayMs?: number;
  /** Longest delay between reconnection attempts (default 5 s). */
  reconnectionDelayMaxMs?: number;
  /**
   * Reconnect also when the server closed the socket itself (default `true`). Socket.IO leaves that case to the
   * application; a chat client wants to stay connected through a server restart or a rebalancing.
   */
  reconnectOnServerDisconnect?: boolean;
  /** How many delivered message ids a connector remembers to drop redeliveries (default 10 000). */
  deliveryDedupeWindow?: number;
}

/** Who joins a conversation, and how. */
export interface JoinOptions {
  conversationId: ConversationId;
  /** The participant's id. */
  id: string;
  /** The participant's display name. */
  name: string;
  /** The customer's token from `init` (required for customers). */
  token?: string;
  /** With an API key: `agent`, `supervisor`, `bot` or `connector` (the server's default). */
  role?: JoinRole;
  /**
   * Ask for the history after this `seq` (0: all of it). By default the client asks only for what it has not
   * seen yet in this conversation, and for all of it the first time.
   */
  since?: number;
  /**
   * History messages per page (the server's default, 200, when absent; at most 1,000). The client joins again
   * for each next page until it has the whole history; a smaller page makes more, smaller answers.
   */
  limit?: number;
}

/** A message to send: text and/or attachments. */
export interface OutgoingMessage {
  text?: string;
  attachments?: Attachment[];
  /** Recipients; empty or absent: everyone in the conversation. */
  to?: Participant[];
  /** `"whisper"`: agents and supervisors only. */
  tag?: Tag;
  /** An agent's edit: the id of the message this one corrects. */
  replaces?: MessageId;
  /** The receiving account (connectors: the customer's number). */
  refId?: string;
  /** The idempotency key; generated when absent. A resend with the same id is never delivered twice. */
  id?: MessageId;
  /** A customer pressing one of a bot's buttons (`text` may then be left out: the button's text is recorded). */
  button?: Button;
  /** A bot's buttons, in rows (for a client that joined with `role: "bot"`); `text` may then be left out. */
  buttons?: Button[][];
}

/** What a connector does with a message for one of its customers; resolve once it is handed on. */
export type DeliveryHandler = (message: Message) => Promise<void> | void;

/** The events of {@link LiaisonClient}, with the arguments their listeners receive. */
export type LiaisonClientEvents = {
  /**
   * A message of a joined conversation (history first, then live), each once and in `seq` order per
   * conversation. Typing activities have no `seq` and pass straight through. Messages this client sent are not
   * echoed: {@link LiaisonClient.send} resolves with their `seq` instead.
   */
  message: [message: Message];
  /**
   * The server's answer to a join (also after an automatic re-join), before its history goes to `message`: one per
   * page of history, the last with `hasMore: false`.
   */
  conversationInfo: [info: ConversationInfo];
  /**
   * A change in the queue this client subscribed to ({@link LiaisonClient.subscribeConversations}): a conversation
   * created (no `previousState`), queued, taken, handed off or ended, with its summary as of that change. Updates of
   * one conversation from several gateway nodes may arrive out of order: the higher `conversation.lastSeq` is the
   * newer. Nothing is replayed after a reconnect: list the queue again on `connected` with `reconnected: true`.
   */
  conversationUpdated: [update: ConversationUpdated];
  /** Connected, with the connector registered and every conversation re-joined: calls go out now. */
  connected: [event: { reconnected: boolean }];
  /** The connection dropped (`reason` from Socket.IO); the client reconnects by itself unless closed. */
  disconnected: [event: { reason: string }];
  /** A failure no call can report: a refused connection, a failed re-join, a delivery handler that threw. */
  error: [error: LiaisonError];
};

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_DEDUPE_WINDOW = 10_000;
/** Sent message ids remembered per client, so a re-join's history does not echo them back. */
const OWN_IDS_WINDOW = 10_000;
const REJOIN_ATTEMPTS = 3;

interface PendingJoin {
  /** Live messages that arrived while the join was in flight: they follow the history. */
  readonly buffer: Message[];
  settle(result: ConversationInfo | LiaisonError): void;
}

/** A join under way: which page to ask for next, and what the pages brought so far. */
interface JoinProgress {
  /** The caller's options, with its `since` until the first page has arrived, then without (see `join`). */
  next: JoinOptions;
  /** Every page's messages, for the result of `join` (a re-join after a reconnect keeps none). */
  messages?: Message[];
}

interface ConversationState {
  /** The highest `seq` passed to `message` listeners (or sent by this client and seen in history). */
  lastSeq: number;
  /** Set once joined: what to re-join with after a reconnect. */
  joined?: Omit<JoinOptions, "since">;
  pending?: PendingJoin;
  /** Joins of one conversation run one after the other. */
  chain: Promise<unknown>;
}

type Waiter = (error?: LiaisonError) => void;

/**
 * A typed client of the Liaison Customer Channel protocol, for customers (with the token from
 * {@link initConversation}), agent applications, bots and connectors (with an API key).
 *
 * It owns one Socket.IO socket and keeps it whole: calls time out, sends are idempotent and retried through
 * reconnects, and after every reconnect it re-registers the connector and re-joins each conversation from the
 * last `seq` it saw, so `message` listeners get every message exactly once, in order.
 *
 * @example
 * ```ts
 * const client = new LiaisonClient({ url });
 * client.on("message", (m) => render(m));
 * await client.connect();
 * await client.join({ conversationId, id: participant.id, name: participant.name, token });
 * await client.send(conversationId, { text: "Hello" });
 * ```
 */
export class LiaisonClient extends TypedEmitter<LiaisonClientEvents> {
  /** The underlying socket (for diagnostics and tests; do not emit on it directly). */
  readonly socket: LiaisonSocket;

  readonly #timeoutMs: number;
  readonly #reconnectOnServerDisconnect: boolean;
  readonly #conversations = new Map<ConversationId, ConversationState>();
  readonly #ownIds: BoundedSet;
  readonly #delivered: BoundedSet;
  readonly #inFlightDeliveries = new Map<string, Promise<void>>();
  readonly #pendingJoins = new Set<PendingJoin>();
  readonly #waiters = new Set<Waiter>();
  #deliveryHandler: DeliveryHandler | undefined;
  #connector: { channel: string; name: string } | undefined;
  /** The queue filter to subscribe with again after a reconnect, while subscribed. */
  #subscription: ConversationFilter | undefined;
  /** Bumped on every connect and disconnect: work started under an older value is stale. */
  #generation = 0;
  #ready = false;
  #started = false;
  #closed = false;
  #everReady = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #lastConnectError: string | undefined;

  /**
   * Creates the client; nothing is sent until {@link LiaisonClient.connect}.
   *
   * @param options - the gateway URL, an API key for non-customers, timeouts and transport settings
   */
  constructor(options: LiaisonClientOptions) {
    super();
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#reconnectOnServerDisconnect = options.reconnectOnServerDisconnect ?? true;
    this.#delivered = new BoundedSet(options.deliveryDedupeWindow ?? DEFAULT_DEDUPE_WINDOW);
    this.#ownIds = new BoundedSet(OWN_IDS_WINDOW);
    this.socket = io(options.url, {
      autoConnect: false,
      // One connection per client: socket.io-client would otherwise share a connection between clients of one URL.
      forceNew: true,
      reconnection: true,
      reconnectionDelay: options.reconnectionDelayMs ?? 1000,
      reconnectionDelayMax: options.reconnectionDelayMaxMs ?? 5000,
      timeout: this.#timeoutMs,
      ...(options.path === undefined ? {} : { path: options.path }),
      ...(options.transports === undefined ? {} : { transports: options.transports }),
      ...(options.apiKey === undefined ? {} : { auth: { apiKey: options.apiKey } }),
    });
    this.socket.on("connect", () => this.#onConnect());
    this.socket.on("disconnect", (reason) => this.#onDisconnect(reason));
    this.socket.on("connect_error", (error) => this.#onConnectError(error));
    this.socket.on("messageArrived", (message: unknown, ack?: unknown) => this.#onMessageArrived(message, ack));
    this.socket.on("conversationInfo", (info: unknown) => this.#onConversationInfo(info));
    this.socket.on("conversationUpdated", (update: unknown) => this.#onConversationUpdated(update));
  }

  /** Whether the socket is connected and resynchronised (connector registered, conversations re-joined). */
  get connected(): boolean {
    return this.#ready;
  }

  /**
   * Opens the connection. After that the client reconnects by itself until {@link LiaisonClient.close}.
   *
   * @throws {@link LiaisonError} `unauthorized` (or another code) when the server refuses the handshake,
   *   `timeout` when it cannot connect in time (it keeps trying in the background), `disconnected` once closed
   */
  async connect(): Promise<void> {
    if (this.#closed) throw closedError();
    this.#started = true;
    if (this.#ready) return;
    const deadline = Date.now() + this.#timeoutMs;
    if (!this.socket.active) this.socket.connect();
    await this.#waitReady(deadline);
  }

  /** Closes the connection for good; pending calls reject with `disconnected`. Listeners stay attached. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#generation++;
    this.#ready = false;
    this.socket.disconnect();
    this.#notifyWaiters(closedError());
    this.#failPendingJoins(closedError());
  }

  /**
   * Joins a conversation, and resolves with the server's `conversationInfo`. Its history (after the last `seq`
   * this client saw, or all of it the first time) goes to `message` listeners before this resolves; live
   * messages follow. The server sends history in pages: the client joins again for each next page until it has
   * all of it, and each page has the call's timeout. After a reconnect the client re-joins (and pages) by itself.
   *
   * @param opts - the conversation, the participant (`id`, `name`), and the customer's `token` or the `role`
   *   an API-key client takes
   * @returns the conversation as of the last page, the whole history the pages brought (in `messages`), and the
   *   participant and role the server recorded
   * @throws {@link LiaisonError} `unauthorized`/`forbidden` (bad token, wrong channel), `not_found`,
   *   `invalid_payload`, `timeout`, `disconnected`
   */
  async join(opts: JoinOptions): Promise<ConversationInfo> {
    const deadline = this.#deadline();
    // One progress for every attempt: a retry after a timeout or a reconnect carries on from the last page that
    // arrived, rather than applying the caller's `since` again and passing the same messages on twice.
    const progress: JoinProgress = { next: opts, messages: [] };
    const info = await this.#retrying(deadline, () => this.#joinSerially(progress, deadline));
    const { since: _since, ...joined } = opts;
    this.#stateOf(opts.conversationId).joined = joined;
    return info;
  }

  /**
   * Leaves a conversation: no more messages from it, and no re-join after a reconnect.
   *
   * @param conversationId - the conversation to leave
   * @throws {@link LiaisonError} `timeout`, or a server error code
   */
  async leave(conversationId: ConversationId): Promise<void> {
    const state = this.#conversations.get(conversationId);
    if (state !== undefined) delete state.joined;
    // A dropped socket has left every room already.
    if (!this.#ready) return;
    try {
      await this.#emitAck("leaveConversation", { conversationId }, "okAck", this.#timeoutMs);
    } catch (error) {
      // not_found: this socket is not in it (a re-join failed, say), which is what leaving wants anyway.
      if (!isLiaisonError(error, "disconnected", "not_found")) throw error;
    }
  }

  /**
   * Sends a chat message. Without `message.id` a fresh id is generated; the message is retried with that same id
   * through timeouts and reconnects until the client timeout, and the server stores and delivers it once.
   *
   * @param conversationId - a conversation this client joined (or, for a connector, of its channel)
   * @param message - text and/or attachments, and optional recipients, tag, edit target, `refId` and id
   * @returns the server's ack: the message `id`, its `seq` and `timestamp`
   * @throws {@link LiaisonError} `invalid_payload`, `forbidden` (e.g. a customer's whisper),
   *   `conversation_ended`, `payload_too_large`, `rate_limited`, `timeout`, `disconnected`; `details.id` holds
   *   the message id, to retry later without a duplicate
   */
  async send(conversationId: ConversationId, message: OutgoingMessage): Promise<SendAck> {
    const deadline = this.#deadline();
    const id = message.id ?? crypto.randomUUID();
    const payload: SendChatMessage = { type: "ChatMessage", conversationId, id };
    if (message.text !== undefined) payload.text = message.text;
    if (message.attachments !== undefined) payload.attachments = message.attachments;
    if (message.to !== undefined) payload.to = message.to;
    if (message.tag !== undefined) payload.tag = message.tag;
    if (message.replaces !== undefined) payload.replaces = message.replaces;
    if (message.refId !== undefined) payload.refId = message.refId;
    if (message.button !== undefined) payload.button = message.button;
    if (message.buttons !== undefined) payload.buttons = message.buttons;
    // Before the first attempt: a re-join's history may bring the message back before its ack does.
    this.#ownIds.add(ownKey(conversationId, id));
    try {
      return await this.#retrying(deadline, (remaining) => this.#emitAck("sendMessage", payload, "sendAck", remaining));
    } catch (error) {
      if (!(error instanceof LiaisonError)) throw error;
      throw new LiaisonError(error.code, error.message, {
        ...(error.status === undefined ? {} : { status: error.status }),
        details: { ...error.details, id },
        cause: error,
      });
    }
  }

  /**
   * Tells the others this participant started or stopped typing. Best effort: sent once, never retried.
   *
   * @param conversationId - a joined conversation
   * @param state - `start` or `stop`
   * @throws {@link LiaisonError} `timeout`, `disconnected`, or a server error code
   */
  async typing(conversationId: ConversationId, state: "start" | "stop"): Promise<void> {
    const payload: SendTyping = { type: "ActivityMessage", activityType: "typing", conversationId, info: { state } };
    if (!this.#ready) throw new LiaisonError("disconnected", "not connected");
    await this.#emitAck("sendMessage", payload, "sendAck", this.#timeoutMs);
  }

  /**
   * Ends a conversation; every participant then gets an `endOfConversation` activity. Retried through
   * reconnects: ending twice is harmless (`alreadyEnded`).
   *
   * @param conversationId - the conversation
   * @param reason - free text recorded with the end
   * @returns the ack; `alreadyEnded` when it had ended before
   * @throws {@link LiaisonError} `forbidden`, `not_found`, `timeout`, `disconnected`
   */
  async end(conversationId: ConversationId, reason?: string): Promise<EndAck> {
    const deadline = this.#deadline();
    const payload = reason === undefined ? { conversationId } : { conversationId, reason };
    return this.#retrying(deadline, (remaining) => this.#emitAck("endConversation", payload, "endAck", remaining));
  }

  /**
   * Registers this API-key client as the connector of a channel: the server then hands it every message for
   * that channel's customers (see {@link LiaisonClient.onDelivery}, to be set before). Re-registered by itself
   * after every reconnect.
   *
   * @param channel - the channel, e.g. `sms` (also the connector id)
   * @param name - a display name for the connector
   * @returns the connector the server recorded
   * @throws {@link LiaisonError} `unauthorized`, `invalid_payload`, `timeout`, `disconnected`
   */
  async registerConnector(channel: string, name: string): Promise<RegisterConnectorAck["connector"]> {
    const deadline = this.#deadline();
    const ack = await this.#retrying(deadline, (remaining) =>
      this.#emitAck("registerConnector", { id: channel, name, channel }, "registerConnectorAck", remaining),
    );
    this.#connector = { channel, name };
    return ack.connector;
  }

  /**
   * Subscribes this API-key client to the queue: from now on `conversationUpdated` tells it of every conversation
   * the filter matches that is created, queued, taken, handed off or ended, on whichever gateway node. Calling it
   * again replaces the filter. Renewed by itself after every reconnect.
   *
   * @param filter - `states` (`bot`, `queued`, `active`; an update comes when a conversation enters, is in or leaves
   *   one), `channel` and `subject`; empty: every open conversation
   * @throws {@link LiaisonError} `unauthorized` (no API key), `forbidden` (a connector's other channel),
   *   `invalid_payload`, `timeout`, `disconnected`
   */
  async subscribeConversations(filter: ConversationFilter = {}): Promise<void> {
    const deadline = this.#deadline();
    await this.#retrying(deadline, (remaining) => this.#emitAck("subscribeConversations", filter, "okAck", remaining));
    this.#subscription = filter;
  }

  /**
   * Stops `conversationUpdated` for this client, and its renewal after a reconnect.
   *
   * @throws {@link LiaisonError} `timeout`, or a server error code
   */
  async unsubscribeConversations(): Promise<void> {
    this.#subscription = undefined;
    // A dropped socket is subscribed to nothing any more.
    if (!this.#ready) return;
    try {
      await this.#emitAck("unsubscribeConversations", {}, "okAck", this.#timeoutMs);
    } catch (error) {
      if (!isLiaisonError(error, "disconnected")) throw error;
    }
  }

  /**
   * Sets the connector's delivery handler (one per client; a new one replaces the old). Each message the server
   * hands over is acknowledged only once the handler resolves; if it throws (or no handler is set) the message
   * is not acknowledged and the server offers it again later. Redeliveries of a message already handled (or being
   * handled) are acknowledged without calling the handler again, within the last `deliveryDedupeWindow` ids.
   *
   * @param handler - sends the message on to the customer (an SMS, say)
   * @returns a function that removes the handler
   */
  onDelivery(handler: DeliveryHandler): () => void {
    this.#deliveryHandler = handler;
    return () => {
      if (this.#deliveryHandler === handler) this.#deliveryHandler = undefined;
    };
  }

  // ---- connection lifecycle ----

  #onConnect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#lastConnectError = undefined;
    const generation = ++this.#generation;
    void this.#resync(generation);
  }

  /** Re-registers the connector and re-joins every conversation, then lets calls through. */
  async #resync(generation: number): Promise<void> {
    const stale = () => generation !== this.#generation || this.#closed;
    if (this.#connector !== undefined) {
      const { channel, name } = this.#connector;
      try {
        await this.#emitAck(
          "registerConnector",
          { id: channel, name, channel },
          "registerConnectorAck",
          this.#timeoutMs,
        );
      } catch (error) {
        if (stale()) return;
        this.emit("error", asLiaisonError(error, `re-registering the ${channel} connector failed`));
      }
    }
    const subscription = this.#subscription;
    if (subscription !== undefined) {
      try {
        await this.#emitAck("subscribeConversations", subscription, "okAck", this.#timeoutMs);
      } catch (error) {
        if (stale()) return;
        this.emit("error", asLiaisonError(error, "renewing the queue subscription failed"));
      }
    }
    const joins = [...this.#conversations.values()].flatMap((state) =>
      state.joined === undefined ? [] : [this.#rejoin(state.joined, stale)],
    );
    await Promise.all(joins);
    if (stale() || !this.socket.connected) return;
    const reconnected = this.#everReady;
    this.#ready = true;
    this.#everReady = true;
    this.#notifyWaiters();
    this.emit("connected", { reconnected });
  }

  async #rejoin(opts: Omit<JoinOptions, "since">, stale: () => boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#joinSerially({ next: opts }, this.#deadline());
        return;
      } catch (error) {
        if (stale()) return;
        const failure = asLiaisonError(error, `re-joining ${opts.conversationId} failed`);
        const retryable = isLiaisonError(failure, "timeout", "unavailable", "internal", "rate_limited");
        if (retryable && attempt < REJOIN_ATTEMPTS) continue;
        // An ended conversation has nothing more to say.
        if (failure.code === "conversation_ended") {
          const state = this.#conversations.get(opts.conversationId);
          if (state !== undefined) delete state.joined;
          return;
        }
        this.emit("error", failure);
        return;
      }
    }
  }

  #onDisconnect(reason: string): void {
    this.#generation++;
    this.#ready = false;
    this.#failPendingJoins(new LiaisonError("disconnected", `disconnected (${reason})`));
    this.emit("disconnected", { reason });
    if (reason === "io server disconnect" && this.#reconnectOnServerDisconnect && !this.#closed) {
      // Socket.IO does not reconnect after a server-side disconnect; wait like its own backoff would.
      const delay = this.socket.io.reconnectionDelay() * (0.5 + Math.random());
      this.#reconnectTimer = setTimeout(() => {
        if (!this.#closed && !this.socket.connected) this.socket.connect();
      }, delay);
    }
  }

  #onConnectError(error: Error & { data?: unknown }): void {
    this.#lastConnectError = error.message;
    // `active` is false when the server refused the handshake: Socket.IO will not retry by itself.
    if (this.socket.active) return;
    const data = isRecord(error.data) ? error.data : {};
    const code = checkAnswer("errorCode", data.code);
    const failure =
      errorFromInfo(data) ??
      errorFromInfo(data.error) ??
      new LiaisonError(code.ok ? code.value : "unauthorized", `connection refused: ${error.message}`, {
        cause: error,
      });
    this.#notifyWaiters(failure);
    this.emit("error", failure);
  }

  // ---- incoming ----

  #onConversationInfo(raw: unknown): void {
    const conversationId = isRecord(raw) && isRecord(raw.conversation) ? raw.conversation.id : undefined;
    const state = typeof conversationId === "string" ? this.#conversations.get(conversationId) : undefined;
    let info: ConversationInfo;
    try {
      const checked = validate("conversationInfo", raw, "conversationInfo");
      const messages = checked.messages;
      if (!messages.every(isMessageLike)) {
        throw new LiaisonError("bad_response", "unexpected conversationInfo messages from the server");
      }
      info = { ...checked, messages };
    } catch (error) {
      const failure = asLiaisonError(error, "unexpected conversationInfo from the server");
      if (state?.pending !== undefined) state.pending.settle(failure);
      else this.emit("error", failure);
      return;
    }
    const target = state ?? this.#stateOf(info.conversation.id);
    const pending = target.pending;
    delete target.pending;
    this.emit("conversationInfo", info);
    for (const message of [...info.messages].sort(bySeq)) this.#accept(message);
    // Where the page ends in the log, past whispers this participant does not see: the next page starts there (a
    // page of hidden whispers still moves on), and so does the live feed.
    if (info.lastSeq > target.lastSeq) target.lastSeq = info.lastSeq;
    // Live messages that came in during the join (from this socket's earlier, live session) follow the history only
    // when this page is its end; before that they are in the pages still to come, and passing them on now would
    // move lastSeq past those pages.
    if (!info.hasMore) for (const message of pending?.buffer ?? []) this.#accept(message);
    pending?.settle(info);
  }

  #onConversationUpdated(raw: unknown): void {
    let update: ConversationUpdated;
    try {
      update = validate("conversationUpdated", raw, "conversationUpdated");
    } catch (error) {
      this.emit("error", asLiaisonError(error, "unexpected conversationUpdated from the server"));
      return;
    }
    this.emit("conversationUpdated", update);
  }

  #onMessageArrived(raw: unknown, ack: unknown): void {
    if (!isMessageLike(raw)) {
      this.emit("error", new LiaisonError("bad_response", "unexpected messageArrived from the server"));
      return;
    }
    // The server asks for an ack only of connector deliveries.
    if (typeof ack === "function") {
      this.#deliver(raw, ack as (res: OkAck) => void);
      return;
    }
    const pending = this.#conversations.get(raw.conversationId)?.pending;
    if (pending !== undefined) pending.buffer.push(raw);
    else this.#accept(raw);
  }

  /** Passes a message to listeners unless they had it already (or this client sent it). */
  #accept(message: Message): void {
    if (message.seq === undefined) {
      this.emit("message", message);
      return;
    }
    const state = this.#stateOf(message.conversationId);
    if (message.seq <= state.lastSeq) return;
    state.lastSeq = message.seq;
    if (this.#ownIds.has(ownKey(message.conversationId, message.id))) return;
    this.emit("message", message);
  }

  #deliver(message: Message, ack: (res: OkAck) => void): void {
    const generation = this.#generation;
    // An ack id belongs to one connection: acking on a newer one could acknowledge a different message.
    const acknowledge = () => {
      if (generation === this.#generation && this.socket.connected) ack({ ok: true });
    };
    const key = ownKey(message.conversationId, message.id);
    if (this.#delivered.has(key)) {
      acknowledge();
      return;
    }
    const inFlight = this.#inFlightDeliveries.get(key);
    if (inFlight !== undefined) {
      inFlight.then(acknowledge, () => undefined);
      return;
    }
    const handler = this.#deliveryHandler;
    if (handler === undefined) {
      this.emit("error", new LiaisonError("not_configured", `no delivery handler for message ${message.id}`));
      return;
    }
    const handled = (async () => handler(message))();
    this.#inFlightDeliveries.set(key, handled);
    handled.then(
      () => {
        this.#inFlightDeliveries.delete(key);
        this.#delivered.add(key);
        acknowledge();
      },
      (error: unknown) => {
        this.#inFlightDeliveries.delete(key);
        this.emit(
          "error",
          new LiaisonError(
            "internal",
            `the delivery handler failed on message ${message.id}; it will be offered again`,
            {
              details: { messageId: message.id, conversationId: message.conversationId },
              cause: error,
            },
          ),
        );
      },
    );
  }

  // ---- calls ----

  #deadline(): number {
    if (this.#closed) throw closedError();
    if (!this.#started) throw new LiaisonError("disconnected", "call connect() first");
    return Date.now() + this.#timeoutMs;
  }

  /**
   * Runs `attempt` once the connection is ready, again after each timeout or disconnect, until the deadline.
   * Only idempotent calls go through here (sends carry their id).
   */
  async #retrying<T>(deadline: number, attempt: (remainingMs: number) => Promise<T>): Promise<T> {
    let last: LiaisonError | undefined;
    for (;;) {
      if (this.#closed) throw closedError();
      if (Date.now() >= deadline) throw last ?? new LiaisonError("timeout", "no answer in time");
      try {
        await this.#waitReady(deadline);
        return await attempt(deadline - Date.now());
      } catch (error) {
        if (this.#closed) throw closedError();
        if (!isLiaisonError(error, "timeout", "disconnected")) throw error;
        last = error;
      }
    }
  }

  async #emitAck<E extends keyof ClientToServerEvents, N extends AnswerName>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
    answer: N,
    timeoutMs: number,
  ): Promise<Answers[N]> {
    // Checked right before emitting: Socket.IO would buffer the packet and send it after the next connect, ahead
    // of the re-join it depends on.
    if (!this.socket.connected) throw new LiaisonError("disconnected", `${event}: not connected`);
    // socket.io-client's emitWithAck types cannot resolve a generic event name; the payload type is still checked
    // by this method's signature, and the ack is validated below.
    const emitter = this.socket.timeout(Math.max(1, Math.ceil(timeoutMs))) as unknown as {
      emitWithAck(event: E, payload: Parameters<ClientToServerEvents[E]>[0]): Promise<unknown>;
    };
    let response: unknown;
    try {
      response = await emitter.emitWithAck(event, payload);
    } catch (error) {
      // Socket.IO rejects pending acks at once when the socket drops, and on its timer otherwise.
      throw this.socket.connected
        ? new LiaisonError("timeout", `${event}: no ack within ${Math.round(timeoutMs)} ms`, { cause: error })
        : new LiaisonError("disconnected", `${event}: disconnected before the ack`, { cause: error });
    }
    if (isRecord(response) && response.ok === false) {
      throw errorFromInfo(response.error) ?? new LiaisonError("bad_response", `${event}: malformed error ack`);
    }
    return validate(answer, response, `${event} ack`);
  }

  async #joinSerially(progress: JoinProgress, deadline: number): Promise<ConversationInfo> {
    const state = this.#stateOf(progress.next.conversationId);
    const run = state.chain.then(
      () => this.#joinPages(progress, deadline),
      () => this.#joinPages(progress, deadline),
    );
    state.chain = run.catch(() => undefined);
    return run;
  }

  /** Joins until a page says no more history follows; each next page starts after the last `seq` the client has. */
  async #joinPages(progress: JoinProgress, deadline: number): Promise<ConversationInfo> {
    for (let pageDeadline = deadline; ; pageDeadline = Math.max(deadline, Date.now() + this.#timeoutMs)) {
      const info = await this.#joinOnce(progress.next, pageDeadline);
      const { since: _since, ...rest } = progress.next;
      progress.next = rest;
      progress.messages?.push(...info.messages);
      if (!info.hasMore) return progress.messages === undefined ? info : { ...info, messages: progress.messages };
    }
  }

  async #joinOnce(opts: JoinOptions, deadline: number): Promise<ConversationInfo> {
    const state = this.#stateOf(opts.conversationId);
    if (opts.since !== undefined) state.lastSeq = opts.since;
    const payload: JoinConversation = { conversationId: opts.conversationId, id: opts.id, name: opts.name };
    if (opts.token !== undefined) payload.token = opts.token;
    if (opts.role !== undefined) payload.role = opts.role;
    if (opts.limit !== undefined) payload.limit = opts.limit;
    if (opts.since !== undefined || state.lastSeq > 0) payload.since = state.lastSeq;

    let settle: PendingJoin["settle"] = () => undefined;
    const info = new Promise<ConversationInfo>((resolve, reject) => {
      settle = (result) => (result instanceof LiaisonError ? reject(result) : resolve(result));
    });
    info.catch(() => undefined);
    // Registered before emitting: the server sends conversationInfo right after the ack.
    const pending: PendingJoin = { buffer: [], settle };
    state.pending = pending;
    this.#pendingJoins.add(pending);
    try {
      await this.#emitAck("joinConversation", payload, "okAck", deadline - Date.now());
      return await withDeadline(info, deadline, () =>
        this.socket.connected
          ? new LiaisonError("timeout", `no conversationInfo for ${opts.conversationId} in time`)
          : new LiaisonError("disconnected", `disconnected while joining ${opts.conversationId}`),
      );
    } finally {
      if (state.pending === pending) delete state.pending;
      this.#pendingJoins.delete(pending);
    }
  }

  #waitReady(deadline: number): Promise<void> {
    if (this.#ready) return Promise.resolve();
    if (this.#closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = (error) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(
        () =>
          waiter(
            this.socket.connected
              ? new LiaisonError("timeout", "the connection did not resynchronise in time")
              : new LiaisonError(
                  "disconnected",
                  this.#lastConnectError === undefined
                    ? "not connected"
                    : `not connected (last error: ${this.#lastConnectError})`,
                ),
          ),
        Math.max(0, deadline - Date.now()),
      );
      this.#waiters.add(waiter);
    });
  }

  #notifyWaiters(error?: LiaisonError): void {
    for (const waiter of [...this.#waiters]) waiter(error);
  }

  #failPendingJoins(error: LiaisonError): void {
    for (const pending of [...this.#pendingJoins]) pending.settle(error);
  }

  #stateOf(conversationId: ConversationId): ConversationState {
    let state = this.#conversations.get(conversationId);
    if (state === undefined) {
      state = { lastSeq: 0, chain: Promise.resolve() };
      this.#conversations.set(conversationId, state);
    }
    return state;
  }
}

/** A set that forgets its oldest entries beyond `limit`. */
class BoundedSet {
  readonly #items = new Set<string>();
  constructor(private readonly limit: number) {}

  has(item: string): boolean {
    return this.#items.has(item);
  }

  add(item: string): void {
    this.#items.delete(item);
    this.#items.add(item);
    while (this.#items.size > this.limit) {
      const oldest = this.#items.values().next();
      if (oldest.done === true) break;
      this.#items.delete(oldest.value);
    }
  }
}

function ownKey(conversationId: string, id: string): string {
  return `${conversationId}\u0000${id}`;
}

function bySeq(a: Message, b: Message): number {
  return (a.seq ?? Number.POSITIVE_INFINITY) - (b.seq ?? Number.POSITIVE_INFINITY);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * A light check of what the server sends as a message: enough for the SDK's own bookkeeping, and lenient, so a
 * newer server's activity types still reach the application.
 */
function isMessageLike(value: unknown): value is Message {
  if (!isRecord(value)) return false;
  const { type, id, conversationId, seq } = value;
  return (
    (type === "ChatMessage" || type === "ActivityMessage") &&
    typeof id === "string" &&
    typeof conversationId === "string" &&
    (seq === undefined || (typeof seq === "number" && Number.isInteger(seq) && seq > 0))
  );
}

function asLiaisonError(error: unknown, message: string): LiaisonError {
  return error instanceof LiaisonError ? error : new LiaisonError("internal", message, { cause: error });
}

function closedError(): LiaisonError {
  return new LiaisonError("disconnected", "the client is closed");
}

function withDeadline<T>(promise: Promise<T>, deadline: number, onTimeout: () => LiaisonError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - Date.now()));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
