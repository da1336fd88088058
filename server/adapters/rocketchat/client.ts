import { z } from "zod";
import { AdapterError } from "../../core/errors.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { apiRequest, header, requestBody, type ApiResponse } from "../http.js";

/** Rocket.Chat's user/agent reference. */
const UserRefSchema = z.object({ _id: z.string(), username: z.string().optional(), name: z.string().optional() });

export const RcVisitorSchema = z.looseObject({ _id: z.string(), token: z.string(), department: z.string().optional() });
export const RcRoomSchema = z.looseObject({
  _id: z.string(),
  open: z.boolean().optional(),
  servedBy: UserRefSchema.optional(),
});
export const RcMessageSchema = z.looseObject({
  _id: z.string(),
  rid: z.string(),
  msg: z.string().optional(),
  /** The visitor's token, on the visitor's own messages. */
  token: z.string().optional(),
  ts: z.string().optional(),
  file: z.looseObject({ _id: z.string(), name: z.string(), type: z.string().optional() }).optional(),
  fileUpload: z.looseObject({ size: z.number().optional() }).optional(),
});
export type RcVisitor = z.infer<typeof RcVisitorSchema>;
export type RcRoom = z.infer<typeof RcRoomSchema>;
export type RcMessage = z.infer<typeof RcMessageSchema>;

export interface RcVisitorInput {
  token: string;
  name: string;
  email?: string;
  phone?: string;
  department?: string;
  customFields?: { key: string; value: string; overwrite: boolean }[];
}

export interface RocketChatClientOptions {
  baseUrl: string;
  userId?: string;
  authToken?: string;
  timeoutMs: number;
  /** Where it is logged that Rocket.Chat keeps rate-limiting, when that starts and ends. */
  logger: Pick<Logger, "warn">;
  /** Reports each request's latency and outcome (adapter metrics; a 429 is `rate_limited`). */
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  now?: () => number;
}

/** A refusal by Rocket.Chat, with its error code (`errorType`, or the code in the message's trailing `[code]`). */
export class RocketChatError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status: number | undefined,
    readonly errorType: string | undefined,
    options?: { cause?: unknown; retryAfterMs?: number; body?: unknown },
  ) {
    super("rocketchat", message, retryable, status, options);
    this.name = "RocketChatError";
    this.body = options?.body;
  }

  /** The answer's parsed JSON, when there was one. */
  readonly body: unknown;
}

/** How long rate-limit hits are remembered for `/ready`, and how many within it make a problem. */
const LIMITED_WINDOW_MS = 5 * 60_000;
const LIMITED_PROBLEM_HITS = 3;

/**
 * What `livechat/message` answers when the `_id` is stored already: `sendMessage()` returns nothing, and Livechat's
 * wrapper fails on it (`Object.assign(undefined, …)` since 6.0, `_.extend` then `API.v1.failure()` in 5.x).
 */
function isStoredIdAnswer(body: unknown): boolean {
  if (body === null || typeof body !== "object") return false;
  const answer = body as Record<string, unknown>;
  if (answer.success !== false) return false;
  return answer.error === "Cannot convert undefined or null to object" || Object.keys(answer).length === 1;
}

/**
 * The only code that talks to Rocket.Chat: the visitor side of the Livechat REST API, plus the few calls that
 * need an agent/bot user. Every failure becomes a RocketChatError that says whether to retry.
 */
export class RocketChatClient {
  private readonly baseUrl: string;
  private readonly now: () => number;
  /**
   * Until when each route may not be called: Rocket.Chat counts calls per client IP and route pattern (every
   * conversation's messages share one counter), so once one answer says the window is used up, nobody calls that
   * route before it resets.
   */
  private readonly gates = new Map<string, number>();
  /** When each route last ran into the limit (a 429, or the last call of a window), with the limit it reported. */
  private readonly limitHits: { at: number; route: string; limit: string | undefined }[] = [];
  private readonly rateLimited: ProblemLog;

  constructor(private readonly options: RocketChatClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.now = options.now ?? Date.now;
    this.rateLimited = new ProblemLog(options.logger);
  }

  get hasUserCredentials(): boolean {
    return this.options.userId !== undefined && this.options.authToken !== undefined;
  }

  async registerVisitor(visitor: RcVisitorInput): Promise<RcVisitor> {
    const body = await this.call("POST", "livechat/visitor", { json: { visitor } });
    return parse(RcVisitorSchema, (body as { visitor?: unknown }).visitor, "livechat/visitor");
  }

  async room(token: string): Promise<{ room: RcRoom; newRoom: boolean }> {
    const body = (await this.call("GET", "livechat/room", { query: { token } })) as {
      room?: unknown;
      newRoom?: unknown;
    };
    return { room: parse(RcRoomSchema, body.room, "livechat/room"), newRoom: body.newRoom === true };
  }

  /**
   * Sends visitor text with our `_id`. Rocket.Chat stores nothing for an `_id` it already has and answers 400 (see
   * `isStoredIdAnswer`) instead of an error that says so, and the same text could come from another fault: the
   * message is looked up by `_id`, and only when it is in this room, from this visitor, was it delivered.
   */
  async sendMessage(message: { token: string; rid: string; msg: string; _id: string }): Promise<"sent" | "duplicate"> {
    try {
      await this.call("POST", "livechat/message", { json: message });
      return "sent";
    } catch (error) {
      if (!(error instanceof RocketChatError) || error.upstreamStatus !== 400 || !isStoredIdAnswer(error.body)) {
        throw error;
      }
      const stored = await this.message(message._id, message.token, message.rid);
      if (stored?.rid === message.rid && stored.token === message.token) return "duplicate";
      throw error;
    }
  }

  /** A message by `_id` (any room: Rocket.Chat only checks the token and rid given), or undefined if unknown. */
  async message(id: string, token: string, rid: string): Promise<RcMessage | undefined> {
    try {
      const body = (await this.call("GET", `livechat/message/${encodeURIComponent(id)}`, {
        query: { token, rid },
        operation: "livechat/message/:_id",
      })) as { message?: unknown };
      return parse(RcMessageSchema, body.message, "livechat/message/:_id");
    } catch (error) {
      if (error instanceof RocketChatError && error.errorType === "invalid-message") return undefined;
      throw error;
    }
  }

  async upload(
    rid: string,
    token: string,
    file: { name: string; type: string; data: Uint8Array },
    description?: string,
  ): Promise<void> {
    const form = new FormData();
    form.set("file", new Blob([file.data], { type: file.type }), file.name);
    if (description !== undefined && description !== "") form.set("description", description);
    try {
      await this.call("POST", `livechat/upload/${encodeURIComponent(rid)}`, {
        form,
        headers: { "x-visitor-token": token },
        operation: "livechat/upload/:rid",
      });
    } catch (error) {
      // Every visitor denial of the upload route is API.v1.forbidden() ("unauthorized", "forbidden" from 8.0): no
      // token header (never ours), an unknown token, or no OPEN room of this rid for this token. For Liaison that
      // means the room is no longer open to the visitor.
      if (error instanceof RocketChatError && error.upstreamStatus === 403) {
        throw new RocketChatError(error.message, false, 403, "upload-forbidden", { cause: error, body: error.body });
      }
      throw error;
    }
  }

  /** The room's latest messages, newest first. */
  async history(rid: string, token: string, limit = 50): Promise<RcMessage[]> {
    const body = (await this.call("GET", `livechat/messages.history/${encodeURIComponent(rid)}`, {
      query: { token, limit: String(limit) },
      operation: "livechat/messages.history/:rid",
    })) as { messages?: unknown };
    return parse(z.array(RcMessageSchema), body.messages ?? [], "livechat/messages.history");
  }

  async closeRoom(rid: string, token: string): Promise<void> {
    await this.call("POST", "livechat/room.close", { json: { rid, token } });
  }

  /** Closes as the configured user (needs `close-livechat-room`). */
  async closeByUser(rid: string, comment: string): Promise<void> {
    await this.call("POST", "livechat/room.closeByUser", { json: { rid, comment }, auth: true });
  }

  /** The agent serving the room (name and username), or undefined when Rocket.Chat hides agent info. */
  async agentInfo(rid: string, token: string): Promise<{ _id: string; username?: string; name?: string } | undefined> {
    const route = `livechat/agent.info/${encodeURIComponent(rid)}/${encodeURIComponent(token)}`;
    const body = (await this.call("GET", route, { operation: "livechat/agent.info/:rid/:token" })) as {
      agent?: unknown;
    };
    const agent = UserRefSchema.safeParse(body.agent);
    return agent.success ? agent.data : undefined;
  }

  /**
   * Whether anyone can take a conversation of the department now. `livechat/config` is rate-limited like every
   * route (the default rule), but not by the 5 per minute of `livechat/visitor` and `livechat/room`.
   */
  async online(department?: string): Promise<boolean> {
    const query: Record<string, string> = department === undefined ? {} : { department };
    const body = (await this.call("GET", "livechat/config", { query })) as { config?: { online?: unknown } };
    return body.config?.online === true;
  }

  /** Fetches a file an agent uploaded (`/file-upload/...`), with the user's credentials when configured. */
  async download(path: string, jwt?: string): Promise<Response> {
    const url = new URL(`${this.baseUrl}${path}`);
    if (jwt !== undefined) url.searchParams.set("token", jwt);
    const started = performance.now();
    try {
      const response = await fetch(url, {
        headers: this.hasUserCredentials ? this.authHeaders() : {},
        signal: AbortSignal.timeout(this.options.timeoutMs * 3),
      });
      this.options.observe?.("file", response.ok ? "ok" : "error", (performance.now() - started) / 1000);
      return response;
    } catch (error) {
      this.options.observe?.("file", "error", (performance.now() - started) / 1000);
      throw new RocketChatError(`file download failed: ${describe(error)}`, true, undefined, undefined, {
        cause: error,
      });
    }
  }

  /**
   * A problem while Rocket.Chat keeps rate-limiting: at least LIMITED_PROBLEM_HITS hits within the last
   * LIMITED_WINDOW_MS (one window running out once is normal traffic; several in a row hold conversations back).
   */
  rateLimitProblem(): AdapterNotice | undefined {
    this.judgeLimitHits();
    return this.rateLimited.get();
  }

  private authHeaders(): Record<string, string> {
    return { "X-User-Id": this.options.userId ?? "", "X-Auth-Token": this.options.authToken ?? "" };
  }

  private async call(
    method: "GET" | "POST",
    route: string,
    request: {
      query?: Record<string, string>;
      json?: unknown;
      form?: FormData;
      headers?: Record<string, string>;
      auth?: boolean;
      /** Metric label when the route carries ids. */
      operation?: string;
    } = {},
  ): Promise<unknown> {
    const operation = request.operation ?? route;
    const gate = `${method} ${operation}`;
    const until = this.gates.get(gate) ?? 0;
    if (until > this.now()) {
      throw new RocketChatError(`${operation}: rate limited`, true, 429, "error-too-many-requests", {
        retryAfterMs: until - this.now(),
      });
    }
    if (request.auth && !this.hasUserCredentials) {
      throw new RocketChatError(
        `${route} needs ROCKETCHAT_USER_ID and ROCKETCHAT_AUTH_TOKEN`,
        false,
        undefined,
        "no-credentials",
      );
    }
    const url = new URL(`${this.baseUrl}/api/v1/${route}`);
    for (const [key, value] of Object.entries(request.query ?? {})) url.searchParams.set(key, value);
    const headers: Record<string, string> = { accept: "application/json", ...request.headers };
    if (request.auth) Object.assign(headers, this.authHeaders());
    const body = requestBody(request, headers);

    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(url, { method, headers, body, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      this.options.observe?.(operation, "error", (performance.now() - started) / 1000);
      throw new RocketChatError(`${route}: ${describe(error)}`, true, undefined, undefined, { cause: error });
    }
    const text = response.text;
    const outcome = response.status === 200 ? "ok" : response.status === 429 ? "rate_limited" : "error";
    this.options.observe?.(operation, outcome, (performance.now() - started) / 1000);
    this.pace(gate, operation, response);
    const json = parseJson(text);
    if (response.status === 200 && json !== undefined && (json as { success?: unknown }).success !== false) return json;

    const { error, errorType } = errorOf(json);
    const summary = `${route}: ${response.status} ${error ?? text.slice(0, 200)}`;
    if (response.status === 429) {
      const retryAfterMs = Math.max(1, (this.gates.get(gate) ?? 0) - this.now());
      throw new RocketChatError(summary, true, 429, errorType ?? "error-too-many-requests", {
        retryAfterMs,
        body: json,
      });
    }
    // A 200 without JSON, 5xx and anything we cannot read are transient; 4xx means Rocket.Chat said no.
    const retryable = response.status >= 500 || response.status === 408 || response.status === 200;
    throw new RocketChatError(summary, retryable, response.status, errorType, { body: json });
  }

  /**
   * Closes the route's gate until its window resets when the answer says none is left: a 429, or (the counter is
   * incremented before it is checked) `X-RateLimit-Remaining: 0` on the window's last allowed call, so that the next
   * call waits instead of being refused.
   */
  private pace(gate: string, operation: string, response: ApiResponse): void {
    const refused = response.status === 429;
    if (!refused && header(response, "x-ratelimit-remaining") !== "0") return;
    const until = this.now() + retryAfter(response, this.now());
    this.gates.set(gate, Math.max(this.gates.get(gate) ?? 0, until));
    this.limitHits.push({ at: this.now(), route: operation, limit: header(response, "x-ratelimit-limit") });
    this.judgeLimitHits();
  }

  /**
   * Drops the hits older than LIMITED_WINDOW_MS and says whether the rest make a problem: at a hit (so the problem is
   * logged as it starts) and when `/ready` asks (the end of one is noticed then, or at the next hit).
   */
  private judgeLimitHits(): void {
    const since = this.now() - LIMITED_WINDOW_MS;
    while (this.limitHits.length > 0 && (this.limitHits[0]?.at ?? 0) < since) this.limitHits.shift();
    if (this.limitHits.length < LIMITED_PROBLEM_HITS) {
      this.rateLimited.clear();
      return;
    }
    const routes = new Map<string, string | undefined>();
    for (const hit of this.limitHits) routes.set(hit.route, hit.limit ?? routes.get(hit.route));
    // Sorted: the text changes only when the routes do, not when their hits age out in another order.
    const named = [...routes]
      .map(([route, limit]) => (limit === undefined ? route : `${route} (${limit} per window)`))
      .sort();
    // Without the count of hits, which grows with each: the log says it when the problem starts or its routes change.
    this.rateLimited.set({
      log:
        `Rocket.Chat keeps rate-limiting ${named.join(", ")} (${LIMITED_PROBLEM_HITS} times or more within 5 ` +
        "minutes): raise API_Enable_Rate_Limiter_Limit_Calls_Default or turn API_Enable_Rate_Limiter off",
      ready: "Rocket.Chat keeps rate-limiting Liaison (its REST API rate limiter)",
    });
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, route: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new RocketChatError(`${route}: unexpected response shape`, true, 200, undefined, { cause: result.error });
  }
  return result.data;
}

function parseJson(text: string): unknown {
  try {
    return text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

/** Rocket.Chat's error code: `errorType`, the trailing `[code]` of `error`, the bare `error`, or upload's `reason`. */
export function errorOf(json: unknown): { error?: string; errorType?: string } {
  if (json === null || typeof json !== "object") return {};
  const { error, errorType, reason } = json as { error?: unknown; errorType?: unknown; reason?: unknown };
  const message = typeof error === "string" ? error : typeof reason === "string" ? reason : undefined;
  if (typeof errorType === "string") return { error: message, errorType };
  const bracketed = message === undefined ? undefined : /\[([\w.-]+)\]\s*$/.exec(message)?.[1];
  if (bracketed !== undefined) return { error: message, errorType: bracketed };
  if (message !== undefined && /^[\w-]+$/.test(message)) return { error: message, errorType: message };
  return message === undefined ? {} : { error: message };
}

/**
 * How long a rate-limited route must wait: until `X-RateLimit-Reset` (an epoch in ms, on every answer of a limited
 * route; Rocket.Chat sends no Retry-After), else a Retry-After that a proxy in front of it may add, else one minute.
 */
export function retryAfter(response: ApiResponse, now: number): number {
  const resetHeader = header(response, "x-ratelimit-reset");
  const reset = Number(resetHeader);
  if (resetHeader !== undefined && Number.isFinite(reset) && reset > 0) {
    // Rocket.Chat sends an epoch time in ms (tolerate seconds), by its own clock: a clock behind ours makes the reset
    // look past, so a short floor keeps retries from coming back at once (the outbox's backoff grows from there).
    const resetMs = reset > 1e12 ? reset : reset * 1000;
    return Math.max(250, resetMs - now);
  }
  const retryAfterHeader = header(response, "retry-after");
  const seconds = Number(retryAfterHeader);
  if (retryAfterHeader !== undefined && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  return 60_000;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    return typeof cause?.code === "string" ? `${error.name} ${cause.code}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
