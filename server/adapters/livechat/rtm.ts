import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { LiveChatError, describe, liveChatError } from "./client.js";

/** LiveChat closes a socket that has not logged in within 30 s. */
export const LOGIN_DEADLINE_MS = 30_000;
/** LiveChat closes a socket after about 30 s without a ping; it asks for one every 15 s. */
export const PING_INTERVAL_MS = 15_000;

/**
 * `customer_disconnected` reasons after which LiveChat says to connect again (with a new token first for the two
 * token reasons); any other reason means "do not reconnect" (license gone, another region, a version LiveChat no
 * longer serves, the customer logged out or banned).
 */
const RECONNECT_REASONS = new Set([
  "access_token_revoked",
  "access_token_expired",
  "connection_evicted",
  "connection_timeout",
  "internal_error",
  "service_temporarily_unavailable",
  "too_many_unauthorized_connections",
]);

/** Why an RTM session ended: a drop, or LiveChat's `customer_disconnected` with its reason. */
export class RtmClosedError extends LiveChatError {
  constructor(
    message: string,
    /** `customer_disconnected`'s reason, when LiveChat gave one. */
    readonly reason: string | undefined,
    options?: { cause?: unknown; data?: Record<string, unknown> },
  ) {
    super(message, reason === undefined || RECONNECT_REASONS.has(reason), undefined, reason, options);
    this.name = "RtmClosedError";
  }

  /** LiveChat said the token ran out or was revoked: a new one is needed before connecting again. */
  get tokenEnded(): boolean {
    return this.reason === "access_token_expired" || this.reason === "access_token_revoked";
  }
}

/** A push frame: `{action, type: "push", payload}`. */
export interface RtmPush {
  action: string;
  payload: Record<string, unknown>;
}

export interface RtmOptions {
  /** `wss://…/v3.6/customer/rtm/ws?organization_id=…`. */
  url: string;
  /** How long a request may wait for its response (LiveChat's own threshold is 15 s). */
  requestTimeoutMs: number;
  /** Called in the order pushes arrive. */
  onPush(push: RtmPush): void;
  /** Ping interval (LiveChat asks for 15 s); shorter only in tests. */
  pingIntervalMs?: number;
}

interface Pending {
  action: string;
  resolve(payload: Record<string, unknown>): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One customer RTM socket of the Customer Chat API: JSON request frames with a `request_id`, their responses, and
 * pushes. It pings every 15 s once logged in; `closed` settles when the socket ends, with why.
 */
export class RtmConnection {
  private readonly ws: WebSocket;
  private readonly pending = new Map<string, Pending>();
  private pinger: NodeJS.Timeout | undefined;
  private disconnect: { reason: string; data?: Record<string, unknown> } | undefined;
  private ended = false;
  private lastError: Error | undefined;
  /** Settles once the socket is gone: rejects with RtmClosedError, or resolves when `close()` ended it. */
  readonly closed: Promise<void>;

  private constructor(private readonly options: RtmOptions) {
    this.ws = new WebSocket(options.url, { handshakeTimeout: options.requestTimeoutMs, perMessageDeflate: false });
    this.closed = new Promise<void>((resolve, reject) => {
      this.ws.on("close", (code) => {
        this.stopPinging();
        const error = this.closedError(code);
        for (const pending of this.pending.values()) {
          clearTimeout(pending.timer);
          pending.reject(error ?? new RtmClosedError(`${pending.action}: socket closed`, undefined));
        }
        this.pending.clear();
        if (error === undefined) resolve();
        else reject(error);
      });
    });
    // Observed by whoever waits on it; never an unhandled rejection when nobody does.
    this.closed.catch(() => undefined);
    this.ws.on("message", (data, isBinary) => {
      if (!isBinary) this.onFrame(Buffer.from(data as Buffer).toString("utf8"));
    });
    this.ws.on("error", (error) => {
      // The close event follows and reports it.
      this.lastError = error;
    });
  }

  /** Opens the socket (within the request timeout). */
  static async open(options: RtmOptions): Promise<RtmConnection> {
    const connection = new RtmConnection(options);
    await new Promise<void>((resolve, reject) => {
      connection.ws.once("open", () => resolve());
      connection.closed.then(
        () => reject(new RtmClosedError("socket closed before it opened", undefined)),
        (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
      );
    });
    return connection;
  }

  /**
   * Logs in as the customer (LiveChat closes a socket that has not within 30 s), then pings every 15 s. Answers the
   * login response's payload.
   */
  async login(accessToken: string, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const payload = await this.request(
      "login",
      { token: `Bearer ${accessToken}`, ...extra },
      Math.min(this.options.requestTimeoutMs, LOGIN_DEADLINE_MS),
    );
    this.stopPinging();
    this.pinger = setInterval(
      () => this.send({ action: "ping", payload: {} }),
      this.options.pingIntervalMs ?? PING_INTERVAL_MS,
    );
    return payload;
  }

  /** Sends a request and waits for its response; a failed response rejects with LiveChat's error. */
  request(
    action: string,
    payload: Record<string, unknown>,
    timeoutMs = this.options.requestTimeoutMs,
  ): Promise<Record<string, unknown>> {
    if (this.ended || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RtmClosedError(`${action}: socket not open`, undefined));
    }
    const requestId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new LiveChatError(`${action}: no RTM answer within ${timeoutMs} ms`, true, undefined, undefined));
      }, timeoutMs);
      this.pending.set(requestId, { action, resolve, reject, timer });
      this.send({ request_id: requestId, action, payload });
    });
  }

  /** Closes the socket; `closed` then resolves. */
  close(): void {
    this.ended = true;
    this.stopPinging();
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
  }

  private send(frame: Record<string, unknown>): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private stopPinging(): void {
    clearInterval(this.pinger);
    this.pinger = undefined;
  }

  private onFrame(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    const { type, action, request_id: requestId, success, payload } = frame as Record<string, unknown>;
    const body = payload !== null && typeof payload === "object" ? (payload as Record<string, unknown>) : {};
    if (type === "response" && typeof requestId === "string") {
      const pending = this.pending.get(requestId);
      if (!pending) return;
      this.pending.delete(requestId);
      clearTimeout(pending.timer);
      if (success === true) {
        pending.resolve(body);
        return;
      }
      const error = (body.error ?? {}) as { type?: unknown; message?: unknown; data?: unknown };
      pending.reject(
        liveChatError(pending.action, undefined, {
          type: typeof error.type === "string" ? error.type : "internal",
          ...(typeof error.message === "string" ? { message: error.message } : {}),
          ...(error.data !== null && typeof error.data === "object"
            ? { data: error.data as Record<string, unknown> }
            : {}),
        }),
      );
      return;
    }
    if (type !== "push" || typeof action !== "string") return;
    if (action === "customer_disconnected") {
      const reason = typeof body.reason === "string" ? body.reason : "unknown";
      const data =
        body.data !== null && typeof body.data === "object" ? (body.data as Record<string, unknown>) : undefined;
      this.disconnect = { reason, ...(data === undefined ? {} : { data }) };
      return;
    }
    this.options.onPush({ action, payload: body });
  }

  private closedError(code: number): RtmClosedError | undefined {
    if (this.disconnect !== undefined) {
      const { reason, data } = this.disconnect;
      return new RtmClosedError(`LiveChat disconnected the customer: ${reason}`, reason, {
        ...(data === undefined ? {} : { data }),
      });
    }
    if (this.ended) return undefined;
    const why = this.lastError === undefined ? "" : `: ${describe(this.lastError)}`;
    return new RtmClosedError(`RTM socket closed (${code})${why}`, undefined);
  }
}
