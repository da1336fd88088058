import { AdapterError } from "../../core/errors.js";
import type { Logger } from "../../logger.js";
import { ProblemLog, type AdapterNotice } from "../contract.js";
import { apiRequest, header, type ApiResponse } from "../http.js";
import { signAssertion, type ServiceAccount } from "./credentials.js";

export interface DialogflowClientOptions {
  /** `https://dialogflow.googleapis.com`, a regional host, or a test server. */
  apiUrl: string;
  account: ServiceAccount;
  timeoutMs: number;
  /** Where a problem that keeps every call from succeeding is logged when it appears. */
  logger: Pick<Logger, "warn">;
  /** Reports each request's latency and outcome (adapter metrics; a 429 is `rate_limited`). */
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  now?: () => number;
}

/** A refusal or failure of Dialogflow (or of Google's token endpoint), with Google's canonical status when it gave one. */
export class DialogflowError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status: number | undefined,
    /** Google's canonical code (`INVALID_ARGUMENT`, `PERMISSION_DENIED`…), or the OAuth error (`invalid_grant`…). */
    readonly googleStatus: string | undefined,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super("dialogflow", message, retryable, status, options);
    this.name = "DialogflowError";
  }

  /** Dialogflow refused the request's `languageCode` (the agent does not speak it). */
  get languageRefused(): boolean {
    return this.upstreamStatus === 400 && /\blanguage\b/i.test(this.message) && !/\bnot set\b/i.test(this.message);
  }
}

interface CachedToken {
  value: string;
  /** When to fetch a new one: shortly before Google's expiry. */
  refreshAt: number;
}

/** Google's `expires_in` is 3599 s; a token is replaced when a tenth of its life (at most 5 minutes) is left. */
const MAX_EARLY_REFRESH_MS = 5 * 60_000;

/**
 * The only code that talks to Dialogflow and to Google's token endpoint. An access token is obtained with a
 * service-account assertion signed here (node:crypto, RS256) and exchanged at the key file's own `token_uri`: Google's
 * auth library posts to its constant token URL whatever the key says, so it is not used. The token is shared by every
 * call and cached until shortly before it expires; a 401 from the API gets a new one and the call is made once more.
 */
export class DialogflowClient {
  private readonly apiUrl: string;
  private readonly now: () => number;
  private token: CachedToken | undefined;
  private pendingToken: Promise<string> | undefined;
  private readonly problems: ProblemLog;

  constructor(private readonly options: DialogflowClientOptions) {
    this.apiUrl = options.apiUrl.replace(/\/+$/, "");
    this.now = options.now ?? Date.now;
    this.problems = new ProblemLog(options.logger);
  }

  /**
   * What keeps every call from succeeding: refused credentials or permission, an agent that is not there. Undefined
   * once a call succeeds again.
   */
  problem(): AdapterNotice | undefined {
    return this.problems.get();
  }

  /**
   * `POST {apiUrl}/{session}:detectIntent` (`session` is `v2/projects/…/sessions/S` or `v3/projects/…/sessions/S`).
   * Resolves with Google's JSON answer; every failure is a DialogflowError that says whether to retry.
   */
  async detectIntent(session: string, body: unknown): Promise<unknown> {
    const url = new URL(`${this.apiUrl}/${session}:detectIntent`);
    const json = JSON.stringify(body);
    let token = await this.accessToken();
    let response = await this.post(url, json, token);
    if (response.status === 401) {
      // The token expired early or was revoked: one new token, one more try.
      this.forgetToken(token);
      token = await this.accessToken();
      response = await this.post(url, json, token);
    }
    if (response.status >= 200 && response.status < 300) {
      const answer = parseJson(response.text);
      if (answer === undefined || typeof answer !== "object" || answer === null) {
        throw new DialogflowError("detectIntent: the answer is not JSON", true, response.status, undefined);
      }
      this.problems.clear();
      return answer;
    }
    throw this.apiFailure(response);
  }

  /** The cached access token, or a new one (one request at a time, shared by every caller waiting for it). */
  private async accessToken(): Promise<string> {
    const cached = this.token;
    if (cached !== undefined && this.now() < cached.refreshAt) return cached.value;
    this.pendingToken ??= this.fetchToken().finally(() => {
      this.pendingToken = undefined;
    });
    return this.pendingToken;
  }

  private forgetToken(value: string): void {
    if (this.token?.value === value) this.token = undefined;
  }

  private async fetchToken(): Promise<string> {
    const { account, timeoutMs } = this.options;
    const started = this.now();
    const form = new URLSearchParams({
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: signAssertion(account, Math.floor(started / 1000)),
    });
    const clock = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(new URL(account.tokenUri), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: form.toString(),
        timeoutMs,
      });
    } catch (error) {
      this.observe("token", "error", clock);
      throw new DialogflowError(`token: ${describe(error)}`, true, undefined, undefined, { cause: error });
    }
    const json = parseJson(response.text) as
      { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } | undefined;
    if (response.status === 200) {
      const value = json?.access_token;
      const expiresIn = Number(json?.expires_in);
      if (typeof value !== "string" || value === "" || !Number.isFinite(expiresIn) || expiresIn <= 0) {
        this.observe("token", "error", clock);
        throw new DialogflowError("token: the answer has no access_token and expires_in", true, 200, undefined);
      }
      this.observe("token", "ok", clock);
      const lifetimeMs = expiresIn * 1000;
      this.token = { value, refreshAt: started + lifetimeMs - Math.min(MAX_EARLY_REFRESH_MS, lifetimeMs / 10) };
      return value;
    }
    this.observe("token", response.status === 429 ? "rate_limited" : "error", clock);
    const error = typeof json?.error === "string" ? json.error : undefined;
    const description = typeof json?.error_description === "string" ? json.error_description : undefined;
    const said = [error, description].filter((part) => part !== undefined).join(": ");
    const summary = `token: ${response.status}${said === "" ? "" : ` ${said.slice(0, 300)}`}`;
    if (response.status === 429 || response.status >= 500) {
      throw new DialogflowError(summary, true, response.status, error, retryAfterOf(response));
    }
    // invalid_grant (a key Google does not know, a bad signature, a clock far off), invalid_scope,
    // unauthorized_client: the key is refused, and asking again will not change that.
    this.problems.set({
      log: `Google refuses the Dialogflow service account's key (${said === "" ? response.status : said.slice(0, 200)})`,
      ready: `Google refuses the service account's key (${response.status})`,
    });
    throw new DialogflowError(summary, false, response.status, error);
  }

  private async post(url: URL, json: string, token: string): Promise<ApiResponse> {
    const clock = performance.now();
    try {
      const response = await apiRequest(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json; charset=utf-8",
          accept: "application/json",
        },
        body: json,
        timeoutMs: this.options.timeoutMs,
      });
      const ok = response.status >= 200 && response.status < 300;
      this.observe("detectIntent", ok ? "ok" : response.status === 429 ? "rate_limited" : "error", clock);
      return response;
    } catch (error) {
      this.observe("detectIntent", "error", clock);
      throw new DialogflowError(`detectIntent: ${describe(error)}`, true, undefined, undefined, { cause: error });
    }
  }

  /** Google's error model: `{error: {code, message, status}}`; a path Google does not serve is an HTML 404 page. */
  private apiFailure(response: ApiResponse): DialogflowError {
    const json = parseJson(response.text) as { error?: { message?: unknown; status?: unknown } } | undefined;
    const status = typeof json?.error?.status === "string" ? json.error.status : undefined;
    const message = typeof json?.error?.message === "string" ? json.error.message : undefined;
    const summary = `detectIntent: ${response.status}${status === undefined ? "" : ` ${status}`}${
      message === undefined ? "" : ` ${message.slice(0, 300)}`
    }`;
    const code = response.status;
    if (code === 429 || code === 408 || code === 409 || code === 499 || (code >= 500 && code !== 501)) {
      return new DialogflowError(summary, true, code, status, retryAfterOf(response));
    }
    if (code === 401) {
      this.problems.set({
        log: "Dialogflow refuses the access tokens of the service account (401 after a new token)",
        ready: "Dialogflow refuses the service account's access tokens (401)",
      });
    } else if (code === 403) {
      this.problems.set({
        log: `Dialogflow denies the service account (403${message === undefined ? "" : `: ${message.slice(0, 200)}`}): grant it the Dialogflow API Client role`,
        ready: "Dialogflow denies the service account (403): it needs the Dialogflow API Client role",
      });
    } else if (code === 404) {
      this.problems.set(
        message === undefined
          ? {
              log: "Dialogflow answers 404: check DIALOGFLOW_API_URL, DIALOGFLOW_PROJECT_ID, DIALOGFLOW_LOCATION and DIALOGFLOW_AGENT_ID",
              ready: "Dialogflow answers 404 without naming an agent: the API address or the agent is wrong",
            }
          : {
              log: `Dialogflow has no such agent (${message.slice(0, 200)}): check DIALOGFLOW_PROJECT_ID, DIALOGFLOW_LOCATION and DIALOGFLOW_AGENT_ID`,
              ready: "Dialogflow has no such agent (404)",
            },
      );
    }
    // 400 (a request Dialogflow refuses), 401 twice, 403, 404: asking again changes nothing.
    return new DialogflowError(summary, false, code, status);
  }

  private observe(operation: string, outcome: "ok" | "error" | "rate_limited", startedAt: number): void {
    this.options.observe?.(operation, outcome, (performance.now() - startedAt) / 1000);
  }
}

/** `Retry-After` in seconds or as an HTTP date; without it the outbox's own backoff applies. */
function retryAfterOf(response: ApiResponse): { retryAfterMs?: number } {
  const value = header(response, "retry-after");
  if (value === undefined) return {};
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds) && seconds >= 0) return { retryAfterMs: seconds * 1000 };
  const date = Date.parse(value);
  return Number.isFinite(date) ? { retryAfterMs: Math.max(0, date - Date.now()) } : {};
}

function parseJson(text: string): unknown {
  try {
    return text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    const code = (error as { code?: unknown }).code;
    if (typeof cause?.code === "string") return `${error.name} ${cause.code}`;
    return typeof code === "string" ? `${error.message} (${code})` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
