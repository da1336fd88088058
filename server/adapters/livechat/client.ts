import { z } from "zod";
import { AdapterError } from "../../core/errors.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { apiRequest, type ApiResponse } from "../http.js";

/** The Customer Chat API version Liaison speaks (Web and RTM). */
export const API_VERSION = "3.6";

/** Renew a customer token this long before LiveChat says it expires, so no call carries one that just ran out. */
const TOKEN_RENEW_MARGIN_MS = 5 * 60_000;

/** Past this many cached tokens, the expired ones are forgotten (customers whose conversations are over). */
const TOKEN_CACHE_SWEEP = 1_000;

/** A customer token by the agent_token grant (`POST /v2/customer/token`). */
const TokenAnswerSchema = z.looseObject({
  access_token: z.string().min(1),
  entity_id: z.string().min(1),
  expires_in: z.number().positive(),
});

const ErrorBodySchema = z.looseObject({
  error: z.looseObject({
    type: z.string(),
    message: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  }),
});

const OAuthErrorSchema = z.looseObject({
  oauth_exception: z.string(),
  exception_description: z.string().optional(),
});

/**
 * Error types after which LiveChat did nothing and asking again later may succeed. `authentication` is here because
 * a rejected customer token is replaced and the call repeated once before it reaches a caller.
 */
const RETRYABLE_TYPES = new Set([
  "authentication",
  "internal",
  "service_unavailable",
  "request_timeout",
  "too_many_requests",
  "pending_requests_limit_reached",
]);

/** LiveChat's rate limits: the call was refused before anything was done. */
const RATE_LIMITED = new Set(["too_many_requests", "pending_requests_limit_reached"]);

/** A customer token and the LiveChat customer it belongs to. */
export interface CustomerToken {
  accessToken: string;
  entityId: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** A refusal by LiveChat, with its `error.type` (or the accounts server's `oauth_exception`). */
export class LiveChatError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status: number | undefined,
    readonly errorType: string | undefined,
    options?: { cause?: unknown; retryAfterMs?: number; data?: Record<string, unknown> },
  ) {
    super("livechat", message, retryable, status, options);
    this.name = "LiveChatError";
    this.data = options?.data;
  }

  /** The error's `data` (`misdirected_request` names the region there). */
  readonly data: Record<string, unknown> | undefined;
}

export interface LiveChatClientOptions {
  apiUrl: string;
  accountsUrl: string;
  clientId: string;
  agentToken: string;
  organizationId: string;
  timeoutMs: number;
  /** Where a refused agent token or a license served from another region is logged when it appears. */
  logger: Pick<Logger, "warn">;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  now?: () => number;
}

/**
 * The only code that calls LiveChat over HTTP: customer tokens from the accounts server (agent_token grant), the
 * Customer Chat Web API and file uploads. It keeps one token per LiveChat customer, renewed before it expires and
 * after LiveChat calls it invalid. Every failure becomes a LiveChatError that says whether to retry.
 */
export class LiveChatClient {
  private readonly apiUrl: string;
  private readonly accountsUrl: string;
  private readonly now: () => number;
  private readonly tokens = new Map<string, CustomerToken>();
  /** Grants under way per entity, so that concurrent callers share one. */
  private readonly granting = new Map<string, Promise<CustomerToken>>();
  /** Why the accounts server refused the agent token last time, until a grant succeeds again. */
  private readonly agentTokenRefusal: ProblemLog;
  /** Set while the Web API answers `misdirected_request` (the license is served from another region). */
  private readonly misdirected: ProblemLog;

  constructor(private readonly options: LiveChatClientOptions) {
    this.apiUrl = options.apiUrl.replace(/\/+$/, "");
    this.accountsUrl = options.accountsUrl.replace(/\/+$/, "");
    this.now = options.now ?? Date.now;
    this.agentTokenRefusal = new ProblemLog(options.logger);
    this.misdirected = new ProblemLog(options.logger);
  }

  /** The customer RTM socket's URL (`wss:` for an `https:` API, `ws:` for `http:`). */
  rtmUrl(): string {
    const url = new URL(`${this.apiUrl}/v${API_VERSION}/customer/rtm/ws`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("organization_id", this.options.organizationId);
    return url.toString();
  }

  /** Set while the accounts server rejects the agent token, or LiveChat says to use another region. */
  problem(): AdapterNotice | undefined {
    return this.agentTokenRefusal.get() ?? this.misdirected.get();
  }

  /** A new LiveChat customer and its first token. */
  async createCustomer(): Promise<CustomerToken> {
    const token = await this.grant(undefined);
    this.remember(token);
    return token;
  }

  private remember(token: CustomerToken): void {
    this.tokens.set(token.entityId, token);
    if (this.tokens.size <= TOKEN_CACHE_SWEEP) return;
    const now = this.now();
    for (const [entityId, cached] of this.tokens) if (cached.expiresAt <= now) this.tokens.delete(entityId);
  }

  /**
   * A valid token of the customer: the cached one unless it is close to expiry (or `fresh` asks for a new one, after
   * LiveChat refused it), else a new one for the same entity.
   */
  async token(entityId: string, fresh = false): Promise<CustomerToken> {
    const cached = this.tokens.get(entityId);
    if (!fresh && cached && cached.expiresAt - TOKEN_RENEW_MARGIN_MS > this.now()) return cached;
    const running = this.granting.get(entityId);
    if (running) return running;
    const grant = this.grant(entityId)
      .then((token) => {
        this.remember(token);
        return token;
      })
      .finally(() => this.granting.delete(entityId));
    this.granting.set(entityId, grant);
    return grant;
  }

  /** Forgets a token LiveChat no longer takes (expired or revoked), unless a newer one replaced it already. */
  dropToken(token: CustomerToken): void {
    if (this.tokens.get(token.entityId)?.accessToken === token.accessToken) this.tokens.delete(token.entityId);
  }

  /**
   * Calls a Customer Chat Web API action as the customer. A token LiveChat rejects (`authentication`) is replaced
   * by a new one for the same entity and the call made once more.
   */
  async call(entityId: string, action: string, payload: Record<string, unknown>): Promise<unknown> {
    const token = await this.token(entityId);
    try {
      return await this.request(token.accessToken, action, { json: payload });
    } catch (error) {
      if (!(error instanceof LiveChatError) || error.errorType !== "authentication") throw error;
      this.dropToken(token);
      const renewed = await this.token(entityId, true);
      return this.request(renewed.accessToken, action, { json: payload });
    }
  }

  /** Uploads a file as the customer (`upload_file`, multipart `file`); LiveChat answers the CDN URL to send. */
  async upload(entityId: string, file: { name: string; type: string; data: Uint8Array }): Promise<string> {
    const send = async (token: CustomerToken): Promise<unknown> => {
      const form = new FormData();
      form.set("file", new Blob([file.data], { type: file.type }), file.name);
      return this.request(token.accessToken, "upload_file", { form });
    };
    let answer: unknown;
    const token = await this.token(entityId);
    try {
      answer = await send(token);
    } catch (error) {
      if (!(error instanceof LiveChatError) || error.errorType !== "authentication") throw error;
      this.dropToken(token);
      answer = await send(await this.token(entityId, true));
    }
    const url = (answer as { url?: unknown } | undefined)?.url;
    if (typeof url !== "string" || url === "") {
      throw new LiveChatError("upload_file: answer without url", true, 200, undefined);
    }
    return url;
  }

  private async grant(entityId: string | undefined): Promise<CustomerToken> {
    const url = new URL(`${this.accountsUrl}/v2/customer/token`);
    const body: Record<string, string> = {
      grant_type: "agent_token",
      client_id: this.options.clientId,
      response_type: "token",
    };
    if (entityId !== undefined) body.entity_id = entityId;
    const started = performance.now();
    const observe = (outcome: "ok" | "error"): void =>
      this.options.observe?.("customer_token", outcome, (performance.now() - started) / 1000);
    let response: ApiResponse;
    try {
      response = await apiRequest(url, {
        method: "POST",
        headers: {
          accept: "application/json",
          "content-type": "application/json",
          authorization: `Bearer ${this.options.agentToken}`,
        },
        body: JSON.stringify(body),
        timeoutMs: this.options.timeoutMs,
      });
    } catch (error) {
      observe("error");
      throw new LiveChatError(`customer token: ${describe(error)}`, true, undefined, undefined, { cause: error });
    }
    const json = parseJson(response.text);
    if (response.status === 200) {
      const token = TokenAnswerSchema.safeParse(json);
      if (!token.success) {
        observe("error");
        throw new LiveChatError("customer token: unexpected answer", true, 200, undefined, { cause: token.error });
      }
      observe("ok");
      this.agentTokenRefusal.clear();
      return {
        accessToken: token.data.access_token,
        entityId: token.data.entity_id,
        expiresAt: this.now() + token.data.expires_in * 1000,
      };
    }
    observe("error");
    const oauth = OAuthErrorSchema.safeParse(json);
    const exception = oauth.success ? oauth.data.oauth_exception : undefined;
    const description = oauth.success ? (oauth.data.exception_description ?? "") : response.text.slice(0, 200);
    const summary = `customer token: ${response.status} ${exception ?? ""} ${description}`.trim();
    if (exception === "resource_not_found" && entityId !== undefined) {
      // The customer is gone on LiveChat's side (deleted): the caller starts a new one.
      throw new LiveChatError(summary, false, response.status, exception);
    }
    if (response.status >= 500 || exception === "temporarily_unavailable" || exception === "server_error") {
      throw new LiveChatError(summary, true, response.status, exception);
    }
    // The agent token itself was refused (expired, revoked, a personal access token, no customers:own, another
    // app's client id): nothing works until an operator fixes it, and /ready says so meanwhile.
    this.agentTokenRefusal.set({
      log:
        `LiveChat refused LIVECHAT_AGENT_TOKEN (${exception ?? response.status}): ` +
        "it must be an agent's OAuth access token with scope customers:own for LIVECHAT_CLIENT_ID",
      ready:
        `LiveChat refuses the agent token (${response.status}): ` +
        "it must be an agent's OAuth access token with scope customers:own for Liaison's LiveChat app",
    });
    throw new LiveChatError(summary, true, response.status, exception ?? "agent_token_refused");
  }

  private async request(
    accessToken: string,
    action: string,
    request: { json?: Record<string, unknown>; form?: FormData },
  ): Promise<unknown> {
    const url = new URL(`${this.apiUrl}/v${API_VERSION}/customer/action/${action}`);
    url.searchParams.set("organization_id", this.options.organizationId);
    const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${accessToken}` };
    let body: string | FormData | undefined = request.form;
    if (request.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(request.json);
    }
    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(url, { method: "POST", headers, body, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      this.options.observe?.(action, "error", (performance.now() - started) / 1000);
      throw new LiveChatError(`${action}: ${describe(error)}`, true, undefined, undefined, { cause: error });
    }
    const json = parseJson(response.text);
    const failure = ErrorBodySchema.safeParse(json);
    const limited = failure.success && RATE_LIMITED.has(failure.data.error.type);
    this.options.observe?.(
      action,
      response.status === 200 && !failure.success ? "ok" : limited ? "rate_limited" : "error",
      (performance.now() - started) / 1000,
    );
    if (response.status === 200 && !failure.success) {
      if (json === undefined) throw new LiveChatError(`${action}: answer is not JSON`, true, 200, undefined);
      this.misdirected.clear();
      return json;
    }
    if (failure.success && failure.data.error.type === "misdirected_request") {
      // The license lives in another data centre than LIVECHAT_API_URL serves: nothing works until an operator
      // points it there, so the work waits (retried) and /ready says where.
      const region = failure.data.error.data?.region;
      this.misdirected.set({
        log:
          `LiveChat serves this license from ${typeof region === "string" ? `region ${region}` : "another region"}: ` +
          "point LIVECHAT_API_URL at it",
        ready: "LiveChat serves this license from another region than the one Liaison calls",
      });
      throw new LiveChatError(
        `${action}: ${response.status} misdirected_request`,
        true,
        response.status,
        "misdirected_request",
        {
          ...(failure.data.error.data === undefined ? {} : { data: failure.data.error.data }),
        },
      );
    }
    return throwFailure(action, response.status, failure.success ? failure.data.error : undefined, response.text);
  }
}

/** LiveChat's error object (Web body or failed RTM response payload) as a LiveChatError. */
export function liveChatError(
  action: string,
  status: number | undefined,
  error: { type: string; message?: string | undefined; data?: Record<string, unknown> | undefined },
): LiveChatError {
  // The status goes into the message for the outbox (a 429 or 401 means nothing was done); LiveChat's own statuses
  // are not published, so the branch is on the type.
  const code = status ?? (RATE_LIMITED.has(error.type) ? 429 : error.type === "authentication" ? 401 : undefined);
  const summary = `${action}: ${code ?? ""} ${error.type}${error.message === undefined ? "" : ` (${error.message})`}`;
  return new LiveChatError(summary.replace(/: {2}/, ": "), RETRYABLE_TYPES.has(error.type), status, error.type, {
    ...(error.data === undefined ? {} : { data: error.data }),
  });
}

function throwFailure(
  action: string,
  status: number,
  error: { type: string; message?: string | undefined; data?: Record<string, unknown> | undefined } | undefined,
  text: string,
): never {
  if (error !== undefined) throw liveChatError(action, status, error);
  // No LiveChat error body: a proxy's or a load balancer's answer.
  const retryable = status >= 500 || status === 408 || status === 429 || status === 200;
  throw new LiveChatError(`${action}: ${status} ${text.slice(0, 200)}`, retryable, status, undefined);
}

function parseJson(text: string): unknown {
  try {
    return text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    return typeof cause?.code === "string" ? `${error.name} ${cause.code}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
