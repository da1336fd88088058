import { z } from "zod";
import { AdapterError } from "../../core/errors.js";
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
  ts: z.string().optional(),
  file: z.object({ _id: z.string(), name: z.string(), type: z.string().optional() }).optional(),
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
  /** Reports each request's latency (adapter metrics). */
  observe?: (operation: string, outcome: "ok" | "error", seconds: number) => void;
  now?: () => number;
}

/** A refusal by Rocket.Chat, with its error code (`errorType`, or the code in the message's trailing `[code]`). */
export class RocketChatError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status: number | undefined,
    readonly errorType: string | undefined,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super("rocketchat", message, retryable, status, options);
    this.name = "RocketChatError";
  }
}

/** Routes Rocket.Chat rate-limits per IP (5 per minute by default): one gate for the whole gateway. */
const GATED = new Set(["livechat/visitor", "livechat/room"]);

/**
 * The only code that talks to Rocket.Chat: the visitor side of the Livechat REST API, plus the few calls that
 * need an agent/bot user. Every failure becomes a RocketChatError that says whether to retry.
 */
export class RocketChatClient {
  private readonly baseUrl: string;
  private readonly now: () => number;
  /** Until when Rocket.Chat told us to stop creating visitors and rooms (a shared per-IP limit). */
  private gatedUntil = 0;

  constructor(private readonly options: RocketChatClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.now = options.now ?? Date.now;
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

  /** Sends visitor text. A repeated `_id` is Mongo's duplicate-key error: the message is already there. */
  async sendMessage(message: { token: string; rid: string; msg: string; _id: string }): Promise<"sent" | "duplicate"> {
    try {
      await this.call("POST", "livechat/message", { json: message });
      return "sent";
    } catch (error) {
      if (
        error instanceof RocketChatError &&
        error.upstreamStatus === 400 &&
        /E11000|duplicate key/i.test(error.message)
      ) {
        return "duplicate";
      }
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
    await this.call("POST", `livechat/upload/${encodeURIComponent(rid)}`, {
      form,
      headers: { "x-visitor-token": token },
      operation: "livechat/upload",
    });
  }

  /** The room's latest messages, newest first. */
  async history(rid: string, token: string, limit = 50): Promise<RcMessage[]> {
    const body = (await this.call("GET", `livechat/messages.history/${encodeURIComponent(rid)}`, {
      query: { token, limit: String(limit) },
      operation: "livechat/messages.history",
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
    const body = (await this.call("GET", route, { operation: "livechat/agent.info" })) as { agent?: unknown };
    const agent = UserRefSchema.safeParse(body.agent);
    return agent.success ? agent.data : undefined;
  }

  /** Whether anyone can take a conversation of the department now (`livechat/config`, not rate-limited). */
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
    const gated = GATED.has(route);
    if (gated && this.gatedUntil > this.now()) {
      throw new RocketChatError(`${route}: rate limited`, true, 429, "error-too-many-requests", {
        retryAfterMs: this.gatedUntil - this.now(),
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

    const operation = request.operation ?? route;
    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(url, { method, headers, body, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      this.options.observe?.(operation, "error", (performance.now() - started) / 1000);
      throw new RocketChatError(`${route}: ${describe(error)}`, true, undefined, undefined, { cause: error });
    }
    const text = response.text;
    this.options.observe?.(operation, response.status === 200 ? "ok" : "error", (performance.now() - started) / 1000);
    const json = parseJson(text);
    if (response.status === 200 && json !== undefined && (json as { success?: unknown }).success !== false) return json;

    const { error, errorType } = errorOf(json);
    const summary = `${route}: ${response.status} ${error ?? text.slice(0, 200)}`;
    if (response.status === 429) {
      const retryAfterMs = retryAfter(response, this.now());
      if (gated) this.gatedUntil = Math.max(this.gatedUntil, this.now() + retryAfterMs);
      throw new RocketChatError(summary, true, 429, errorType ?? "error-too-many-requests", { retryAfterMs });
    }
    // A 200 without JSON, 5xx and anything we cannot read are transient; 4xx means Rocket.Chat said no.
    const retryable = response.status >= 500 || response.status === 408 || response.status === 200;
    throw new RocketChatError(summary, retryable, response.status, errorType);
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

/** How long a 429 asks us to wait: Retry-After (seconds), else X-RateLimit-Reset (a time), else one minute. */
export function retryAfter(response: ApiResponse, now: number): number {
  const retryAfterHeader = header(response, "retry-after");
  const seconds = Number(retryAfterHeader);
  if (retryAfterHeader !== undefined && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const resetHeader = header(response, "x-ratelimit-reset");
  const reset = Number(resetHeader);
  if (resetHeader !== undefined && Number.isFinite(reset) && reset > 0) {
    // Rocket.Chat sends an epoch time; tolerate seconds as well as milliseconds.
    const resetMs = reset > 1e12 ? reset : reset * 1000;
    return Math.max(1000, resetMs - now);
  }
  return 60_000;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    return typeof cause?.code === "string" ? `${error.name} ${cause.code}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
