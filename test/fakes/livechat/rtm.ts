import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";
import type { CustomerTokenRecord, CustomerTokens } from "./accounts.js";
import { ACTIONS } from "./actions.js";
import { INVALID_TOKEN_MESSAGE, LcError } from "./errors.js";
import type { Faults } from "./faults.js";
import type { FileStore } from "./files.js";
import { parsePayload, payloadSchemas } from "./schema.js";
import { lastThread } from "./state.js";
import type { CustomerRecord, FakeState, Happening } from "./state.js";
import type { RtmConnectionInfo, RtmFrameRecord } from "./types.js";
import { formatUs, isRecord } from "./util.js";
import { SUPPORTED_VERSIONS } from "./web-api.js";

/*
 * The Customer Chat RTM API: `ws(s)://…/v3.6/customer/rtm/ws?organization_id=<uuid>`. JSON frames: requests
 * `{request_id?, action, payload?, version?}`, responses `{request_id?, action, type:"response", success, payload}`,
 * pushes `{version, request_id?, action, type:"push", payload}` (`request_id` only on the requester's socket).
 * The client must log in within 30 s, then ping (a `ping` action or a WebSocket ping) or be closed after about
 * 30 s; until it has logged in, `ping` does nothing. At most 10 requests may wait for an answer per socket.
 * LiveChat ends a session by pushing `customer_disconnected {reason}` and then closing the socket.
 */

export const PENDING_REQUESTS_LIMIT = 10;

/**
 * `customer_disconnected` reasons and what LiveChat suggests a client does on each: the documented table, plus the
 * reasons the customer SDK also handles (`customer_banned`, `customer_temporarily_blocked`, `inactivity_timeout`,
 * `product_version_changed`, `users_limit_reached`).
 */
export const DISCONNECT_REASONS = {
  access_token_revoked: "new token, then reconnect",
  access_token_expired: "new token, then reconnect",
  connection_evicted: "reconnect",
  connection_timeout: "reconnect",
  internal_error: "reconnect",
  service_temporarily_unavailable: "reconnect",
  too_many_unauthorized_connections: "reconnect",
  inactivity_timeout: "reconnect when the customer acts",
  license_not_found: "do not reconnect",
  license_expired: "do not reconnect",
  misdirected_connection: "do not reconnect (here): data.region says where",
  unsupported_version: "do not reconnect",
  too_many_connections: "do not reconnect",
  logged_out_remotely: "do not reconnect",
  customer_banned: "do not reconnect",
  customer_temporarily_blocked: "do not reconnect",
  product_version_changed: "do not reconnect",
  users_limit_reached: "reconnect when the customer acts",
} as const;

export type DisconnectReason = keyof typeof DISCONNECT_REASONS;

export interface RtmSettings {
  organizationId: string;
  loginTimeoutMs: number;
  pingTimeoutMs: number;
}

interface Connection {
  id: number;
  ws: WebSocket;
  version: string;
  open: boolean;
  customer?: CustomerRecord;
  token?: CustomerTokenRecord;
  /** Push names subscribed at login (`pushes`), or every push. */
  pushes: Set<string> | "all";
  timers: { login?: NodeJS.Timeout; ping?: NodeJS.Timeout; expiry?: NodeJS.Timeout };
  /** Requests waiting while answers are held. */
  waiting: Record<string, unknown>[];
}

export class RtmServer {
  readonly frames: RtmFrameRecord[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly connections = new Map<number, Connection>();
  private nextId = 1;
  private holding = false;
  /** While an RTM request runs, pushes wait so that the requester gets its response first. */
  private deferred: (() => void)[] | undefined;

  constructor(
    private readonly state: FakeState,
    private readonly files: FileStore,
    private readonly tokens: CustomerTokens,
    private readonly faults: Faults,
    private readonly settings: RtmSettings,
  ) {
    state.customerOnline = (id) => [...this.connections.values()].some((c) => c.open && c.customer?.id === id);
    state.on((happening) => this.onHappening(happening));
    tokens.onInvalidated((record) => {
      for (const conn of this.connections.values()) {
        if (conn.open && conn.token === record) {
          this.disconnect(conn, record.state === "revoked" ? "access_token_revoked" : "access_token_expired");
        }
      }
    });
  }

  /** Takes the HTTP upgrade for the RTM path; anything else is refused. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://api");
    const match = /^\/v(\d+\.\d+)\/customer\/rtm\/ws$/.exec(url.pathname);
    if (!match || this.faults.outage === "refuse") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) =>
      this.accept(ws, match[1] ?? "", url.searchParams.get("organization_id")),
    );
  }

  private accept(ws: WebSocket, version: string, organizationId: string | null): void {
    const conn: Connection = {
      id: this.nextId++,
      ws,
      version: SUPPORTED_VERSIONS.has(version) ? version : "3.6",
      open: true,
      pushes: "all",
      timers: {},
      waiting: [],
    };
    this.connections.set(conn.id, conn);
    ws.on("message", (data, isBinary) =>
      this.onMessage(conn, isBinary ? "" : Buffer.from(data as Buffer).toString("utf8")),
    );
    ws.on("ping", () => {
      if (conn.customer) this.armPing(conn);
    });
    ws.on("close", () => this.forget(conn));
    ws.on("error", () => this.forget(conn));
    if (!SUPPORTED_VERSIONS.has(version)) {
      this.disconnect(conn, "unsupported_version");
      return;
    }
    if (organizationId !== this.settings.organizationId) {
      this.disconnect(conn, "license_not_found");
      return;
    }
    conn.timers.login = setTimeout(() => this.disconnect(conn, "connection_timeout"), this.settings.loginTimeoutMs);
  }

  private forget(conn: Connection): void {
    conn.open = false;
    for (const timer of Object.values(conn.timers)) clearTimeout(timer);
    conn.timers = {};
  }

  private armPing(conn: Connection): void {
    clearTimeout(conn.timers.ping);
    conn.timers.ping = setTimeout(() => this.disconnect(conn, "connection_timeout"), this.settings.pingTimeoutMs);
  }

  /** At the token's expiry the socket is told `access_token_expired` and closed (timers cap at about 24 days). */
  private armExpiry(conn: Connection, record: CustomerTokenRecord): void {
    const remaining = Math.min(Math.max(0, record.expiresAtMs - Date.now()), 2 ** 31 - 1);
    conn.timers.expiry = setTimeout(() => {
      if (this.tokens.valid(record.token)) this.armExpiry(conn, record);
      else if (record.state === "expired") this.disconnect(conn, "access_token_expired");
    }, remaining);
  }

  private send(conn: Connection, frame: Record<string, unknown>): void {
    if (!conn.open) return;
    this.frames.push({ seq: this.frames.length + 1, connectionId: conn.id, direction: "out", frame });
    conn.ws.send(JSON.stringify(frame));
  }

  /** `customer_disconnected`, then the server closes the socket. */
  disconnect(conn: Connection, reason: DisconnectReason, data?: Record<string, unknown>): void {
    if (!conn.open) return;
    this.send(conn, {
      version: conn.version,
      action: "customer_disconnected",
      type: "push",
      payload: { reason, ...(data === undefined ? {} : { data }) },
    });
    this.forget(conn);
    conn.ws.close(1000);
  }

  private onMessage(conn: Connection, text: string): void {
    if (!conn.open) return;
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      frame = undefined;
    }
    this.frames.push({ seq: this.frames.length + 1, connectionId: conn.id, direction: "in", frame: frame ?? text });
    if (!isRecord(frame) || typeof frame.action !== "string") {
      this.send(conn, {
        type: "response",
        success: false,
        payload: new LcError("validation", "Invalid message").body(),
        ...(isRecord(frame) && typeof frame.request_id === "string" ? { request_id: frame.request_id } : {}),
      });
      return;
    }
    // "Until authorization is completed, ping is a no-op."
    if (frame.action === "ping" && !conn.customer) return;
    if (this.holding && frame.action !== "ping") {
      if (conn.waiting.length >= PENDING_REQUESTS_LIMIT) {
        this.respond(conn, frame, new LcError("pending_requests_limit_reached"));
        return;
      }
      conn.waiting.push(frame);
      return;
    }
    this.process(conn, frame);
  }

  private process(conn: Connection, frame: Record<string, unknown>): void {
    const action = frame.action as string;
    const requestId = typeof frame.request_id === "string" ? frame.request_id : undefined;
    const call = {
      transport: "rtm" as const,
      action,
      payload: frame.payload,
      connectionId: conn.id,
      ...(requestId === undefined ? {} : { requestId }),
    };
    if (action === "ping") {
      this.armPing(conn);
      this.respond(conn, frame, {});
      return;
    }
    this.deferred = [];
    let result: Record<string, unknown> | LcError;
    try {
      result = this.run(conn, frame, action);
    } catch (error) {
      result = error instanceof LcError ? error : new LcError("internal");
    }
    const pushes = this.deferred;
    this.deferred = undefined;
    // After the action: a login has just told who the customer is.
    this.faults.record({
      ...call,
      ...(conn.customer ? { entityId: conn.customer.id } : {}),
      outcome: result instanceof LcError ? result.type : "ok",
    });
    this.respond(conn, frame, result);
    for (const push of pushes) push();
  }

  private run(conn: Connection, frame: Record<string, unknown>, action: string): Record<string, unknown> {
    if (frame.version !== undefined) {
      // "Versions lower than the version of the RTM connection are prohibited."
      if (typeof frame.version !== "string" || !SUPPORTED_VERSIONS.has(frame.version) || frame.version < conn.version) {
        throw new LcError("unsupported_version");
      }
    }
    const payload = frame.payload ?? {};
    if (action === "login") return this.login(conn, payload);
    const perform = ACTIONS[action];
    if (!perform) throw new LcError("not_found", `Action ${action} not found`);
    const customer = conn.customer;
    const token = conn.token;
    if (!customer || !token) throw new LcError("authentication", "Not logged in");
    if (!this.tokens.valid(token.token)) throw new LcError("authentication", INVALID_TOKEN_MESSAGE);
    if (customer.banned) throw new LcError("customer_banned");
    const injected = this.faults.takeFailure("rtm", action);
    if (injected) throw injected;
    this.faults.checkRate(customer.id, action);
    return perform(
      {
        state: this.state,
        files: this.files,
        customer,
        clientId: token.clientId,
        transport: "rtm",
        origin: {
          clientId: token.clientId,
          connectionId: conn.id,
          ...(typeof frame.request_id === "string" ? { requestId: frame.request_id } : {}),
        },
      },
      payload,
    );
  }

  private login(conn: Connection, payload: unknown): Record<string, unknown> {
    if (conn.customer) throw new LcError("validation", "Already logged in");
    const p = parsePayload(payloadSchemas.login, payload);
    // The token keeps its scheme: `"token": "Bearer dal:…"`.
    const match = /^Bearer (\S+)$/.exec(p.token);
    const record = match?.[1] === undefined ? undefined : this.tokens.valid(match[1]);
    const customer = record ? this.state.customers.get(record.entityId) : undefined;
    if (!record || !customer) throw new LcError("authentication", INVALID_TOKEN_MESSAGE);
    if (customer.banned) throw new LcError("customer_banned");
    if (p.group_id !== undefined && !this.state.groups.has(p.group_id)) throw new LcError("group_not_found");
    const subscribed = p.pushes?.[conn.version];
    conn.pushes = subscribed === undefined || subscribed.includes("all") ? "all" : new Set(subscribed);
    conn.customer = customer;
    conn.token = record;
    clearTimeout(conn.timers.login);
    delete conn.timers.login;
    this.armPing(conn);
    this.armExpiry(conn, record);
    if (p.customer)
      this.state.updateCustomer(customer, p.customer, { clientId: record.clientId, connectionId: conn.id });
    const chats = this.state.chatsOf(customer.id);
    return {
      customer: {
        id: customer.id,
        ...this.state.customerFields(customer),
        statistics: {
          chats_count: chats.length,
          threads_count: chats.reduce((n, chat) => n + chat.threads.length, 0),
          visits_count: 1,
          page_views_count: 0,
          greetings_shown_count: 0,
          greetings_accepted_count: 0,
        },
      },
      has_active_thread: chats.some((chat) => lastThread(chat).active),
      chats: chats.map((chat) => {
        const seen = chat.users.get(customer.id)?.seenUpToUs ?? 0;
        const unread = chat.threads.some((t) => t.events.some((e) => e.visibility === "all" && e.createdUs > seen));
        return { chat_id: chat.id, has_unread_events: unread };
      }),
    };
  }

  private respond(conn: Connection, frame: Record<string, unknown>, result: Record<string, unknown> | LcError): void {
    this.send(conn, {
      ...(typeof frame.request_id === "string" ? { request_id: frame.request_id } : {}),
      action: frame.action,
      type: "response",
      success: !(result instanceof LcError),
      payload: result instanceof LcError ? result.body() : result,
    });
  }

  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const conn of this.connections.values()) {
      for (const frame of conn.waiting.splice(0)) this.process(conn, frame);
    }
  }

  private pushTo(
    customerId: string,
    action: string,
    payload: Record<string, unknown>,
    origin?: { connectionId?: number; requestId?: string },
  ): void {
    const targets = [...this.connections.values()].filter((c) => c.open && c.customer?.id === customerId);
    const deliver = () => {
      for (const conn of targets) {
        if (conn.pushes !== "all" && !conn.pushes.has(action)) continue;
        const requestId = origin?.connectionId === conn.id ? origin.requestId : undefined;
        this.send(conn, {
          version: conn.version,
          ...(requestId === undefined ? {} : { request_id: requestId }),
          action,
          type: "push",
          payload,
        });
      }
    };
    if (this.deferred) this.deferred.push(deliver);
    else deliver();
  }

  /** Turns the state's happenings into the customer's pushes, built now (a snapshot), sent now or after the response. */
  private onHappening(h: Happening): void {
    switch (h.kind) {
      case "incoming_chat":
        this.pushTo(
          h.chat.customerId,
          "incoming_chat",
          { chat: this.state.chatView(h.chat, h.thread), requester_id: h.requesterId },
          h.origin,
        );
        return;
      case "incoming_event":
        if (h.event.visibility !== "all") return;
        this.pushTo(
          h.chat.customerId,
          "incoming_event",
          { chat_id: h.chat.id, thread_id: h.thread.id, event: this.state.customerEventView(h.event) },
          h.origin,
        );
        return;
      case "chat_deactivated":
        this.pushTo(
          h.chat.customerId,
          "chat_deactivated",
          { chat_id: h.chat.id, thread_id: h.thread.id, ...(h.userId === undefined ? {} : { user_id: h.userId }) },
          h.origin,
        );
        return;
      case "chat_transferred": {
        const entry = this.state.queueEntry(h.thread);
        this.pushTo(h.chat.customerId, "chat_transferred", {
          chat_id: h.chat.id,
          thread_id: h.thread.id,
          requester_id: h.requesterId,
          reason: "manual",
          transferred_to: h.transferredTo,
          ...(entry && h.thread.queuedUs !== undefined
            ? { queue: { position: entry.position, wait_time: entry.waitTime, queued_at: formatUs(h.thread.queuedUs) } }
            : {}),
        });
        return;
      }
      case "user_added_to_chat":
        this.pushTo(h.chat.customerId, "user_added_to_chat", {
          chat_id: h.chat.id,
          thread_id: h.thread.id,
          user: this.state.userView(h.chat, h.userId),
          reason: h.reason,
          ...(h.requesterId === undefined ? {} : { requester_id: h.requesterId }),
        });
        return;
      case "user_removed_from_chat":
        this.pushTo(h.chat.customerId, "user_removed_from_chat", {
          chat_id: h.chat.id,
          thread_id: h.thread.id,
          user_id: h.userId,
          reason: h.reason,
          ...(h.requesterId === undefined ? {} : { requester_id: h.requesterId }),
        });
        return;
      case "typing":
        this.pushTo(h.chat.customerId, "incoming_typing_indicator", {
          chat_id: h.chat.id,
          thread_id: h.thread.id,
          typing_indicator: {
            author_id: h.authorId,
            recipients: "all",
            timestamp: Math.floor(Date.now() / 1000),
            is_typing: h.isTyping,
          },
        });
        return;
      case "queue_position_updated":
        this.pushTo(h.chat.customerId, "queue_position_updated", {
          chat_id: h.chat.id,
          thread_id: h.thread.id,
          queue: { position: h.position, wait_time: h.waitTime },
        });
        return;
      case "customer_updated":
        this.pushTo(h.customer.id, "customer_updated", { id: h.customer.id, ...h.fields }, h.origin);
        return;
      case "events_marked_as_seen":
        this.pushTo(
          h.chat.customerId,
          "events_marked_as_seen",
          { user_id: h.userId, chat_id: h.chat.id, seen_up_to: formatUs(h.seenUpToUs) },
          h.origin,
        );
        return;
      case "groups_status_updated":
        for (const customerId of new Set(
          [...this.connections.values()].flatMap((c) => (c.open && c.customer ? [c.customer.id] : [])),
        )) {
          this.pushTo(customerId, "groups_status_updated", { groups: h.groups });
        }
        return;
      case "customer_banned":
        for (const conn of this.connections.values()) {
          if (conn.open && conn.customer?.id === h.customer.id) this.disconnect(conn, "customer_banned");
        }
        return;
      case "session_fields_updated":
        return;
    }
  }

  // ── controls ──

  disconnectCustomer(entityId: string, reason: string, data?: Record<string, unknown>): void {
    if (!(reason in DISCONNECT_REASONS)) throw new Error(`customer_disconnected: unknown reason ${reason}`);
    const targets = [...this.connections.values()].filter((c) => c.open && c.customer?.id === entityId);
    if (targets.length === 0) throw new Error(`customer ${entityId} has no logged-in socket`);
    for (const conn of targets) this.disconnect(conn, reason as DisconnectReason, data);
  }

  /** Closes sockets without a word, like a network failure. */
  drop(entityId?: string): void {
    for (const conn of this.connections.values()) {
      if (!conn.open || (entityId !== undefined && conn.customer?.id !== entityId)) continue;
      this.forget(conn);
      conn.ws.terminate();
    }
  }

  info(): RtmConnectionInfo[] {
    return [...this.connections.values()].map((c) => ({
      id: c.id,
      version: c.version,
      ...(c.customer ? { entityId: c.customer.id } : {}),
      loggedIn: c.customer !== undefined,
      open: c.open,
    }));
  }

  close(): void {
    this.drop();
    this.wss.close();
  }
}
