import { z } from "zod";
import { AdapterError } from "../../core/errors.js";
import type { AdapterNotice } from "../contract.js";
import { apiRequest, header, requestBody, type ApiResponse } from "../http.js";

export const RpMessageSchema = z.looseObject({
  uuid: z.string().optional(),
  direction: z.enum(["in", "out"]).optional(),
  status: z.string().optional(),
  text: z.string().nullable().optional(),
  attachments: z.array(z.looseObject({ content_type: z.string().optional(), url: z.string().optional() })).optional(),
  created_on: z.string().optional(),
});
export type RpMessage = z.infer<typeof RpMessageSchema>;

const MediaSchema = z.looseObject({ uuid: z.string(), content_type: z.string(), url: z.string() });

export interface RapidProClientOptions {
  baseUrl: string;
  token: string;
  timeoutMs: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  /** Told what is wrong whenever RapidPro refuses the credentials (403), and undefined once a call succeeds again. */
  onAuth?: (problem: AdapterNotice | undefined) => void;
}

/**
 * What a 403 says. API v2 never answers 401: session authentication comes first in its authentication classes, and
 * DRF then turns every authentication failure into a 403; DRF's `detail` tells them apart (temba/api/support.py,
 * APIPermission).
 */
export function credentialProblem(detail: string | undefined): AdapterNotice {
  if (detail === "Authentication credentials were not provided.") {
    return {
      log: `RapidPro received no credentials (403: ${detail}): is RAPIDPRO_TOKEN sent, or does a proxy drop the Authorization header?`,
      ready: "RapidPro received no credentials (403): a proxy may drop the Authorization header",
    };
  }
  if (detail?.startsWith("Invalid token") === true) {
    return { log: `RapidPro rejects RAPIDPRO_TOKEN (403: ${detail})`, ready: "RapidPro rejects the API token (403)" };
  }
  if (detail === "You do not have permission to perform this action.") {
    return {
      log: `RapidPro refuses RAPIDPRO_TOKEN's user (403: ${detail}): API tokens work for administrators and editors`,
      ready: "RapidPro refuses the API token's user (403): API tokens work for administrators and editors",
    };
  }
  return {
    log: `RapidPro answers 403${detail === undefined ? "" : ` (${detail})`}: check RAPIDPRO_TOKEN and RAPIDPRO_URL`,
    ready: "RapidPro refuses the credentials (403)",
  };
}

/** A refusal by RapidPro, with DRF's field errors when it gave any. */
export class RapidProError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status: number | undefined,
    readonly body?: unknown,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super("rapidpro", message, retryable, status, options);
    this.name = "RapidProError";
  }
}

/** A broadcast's text as RapidPro's template language reads it literally: `@@` is a literal `@`. */
export function escapeTemplate(text: string): string {
  return text.replaceAll("@", "@@");
}

/**
 * The only code that talks to RapidPro: API v2 with `Authorization: Token`. 429 honours Retry-After; 403 is refused
 * credentials (retried slowly, so fixing the token resumes delivery); other 4xx are for good.
 */
export class RapidProClient {
  private readonly baseUrl: string;

  constructor(private readonly options: RapidProClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  /** `POST messages.json`: one message to one contact. A 201 with status `failed` means the contact is unreachable. */
  async sendMessage(contact: string, text: string, attachments: string[]): Promise<RpMessage> {
    const body: Record<string, unknown> = { contact };
    if (text !== "") body.text = text;
    if (attachments.length > 0) body.attachments = attachments;
    return RpMessageSchema.parse(await this.call("POST", "messages", { json: body }));
  }

  /**
   * `POST broadcasts.json` for servers without messages.json. Text is a template there: `@` is escaped as `@@` (so the
   * caller splits text counting each `@` twice: the server checks the length of what it receives).
   */
  async broadcast(contact: string, text: string, attachments: string[]): Promise<void> {
    const body: Record<string, unknown> = { contacts: [contact] };
    if (text !== "") body.text = escapeTemplate(text);
    if (attachments.length > 0) body.attachments = attachments;
    await this.call("POST", "broadcasts", { json: body });
  }

  /**
   * `POST media.json` (v8.1.37 on): uploads a file; the answer's `"<content_type>:<url>"` can then be attached. A 400
   * with a `file` error is a refused file; a 400 `{}` is an older server's Surveyor endpoint under the same path.
   */
  async uploadMedia(file: { name: string; type: string; data: Uint8Array }): Promise<string> {
    const form = new FormData();
    form.set("file", new Blob([file.data], { type: file.type }), file.name);
    const media = MediaSchema.parse(await this.call("POST", "media", { form }));
    return `${media.content_type}:${media.url}`;
  }

  async startFlow(flow: string, contact: string, params: Record<string, string>): Promise<void> {
    await this.call("POST", "flow_starts", { json: { flow, contacts: [contact], params } });
  }

  /** A contact's messages (both directions) created after `after`, newest first (first page: up to 250). */
  async messages(contact: string, after: Date): Promise<RpMessage[]> {
    const body = (await this.call("GET", "messages", { query: { contact, after: after.toISOString() } })) as {
      results?: unknown;
    };
    return z.array(RpMessageSchema).parse(body.results ?? []);
  }

  private async call(
    method: "GET" | "POST",
    endpoint: string,
    request: { query?: Record<string, string>; json?: unknown; form?: FormData } = {},
  ): Promise<unknown> {
    const url = new URL(`${this.baseUrl}/api/v2/${endpoint}.json`);
    for (const [key, value] of Object.entries(request.query ?? {})) url.searchParams.set(key, value);
    const headers: Record<string, string> = {
      authorization: `Token ${this.options.token}`,
      accept: "application/json",
    };
    const body = requestBody(request, headers);
    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(url, { method, headers, body, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      this.options.observe?.(endpoint, "error", (performance.now() - started) / 1000);
      throw new RapidProError(
        `${endpoint}: ${error instanceof Error ? error.message : String(error)}`,
        true,
        undefined,
        undefined,
        {
          cause: error,
        },
      );
    }
    const text = response.text;
    const ok = response.status >= 200 && response.status < 300;
    const outcome = ok ? "ok" : response.status === 429 ? "rate_limited" : "error";
    this.options.observe?.(endpoint, outcome, (performance.now() - started) / 1000);
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (ok) {
      this.options.onAuth?.(undefined);
      return json;
    }
    const summary = `${endpoint}: ${response.status} ${text.slice(0, 300)}`;
    if (response.status === 429) {
      const seconds = Number(header(response, "retry-after") ?? Number.NaN);
      const retryAfterMs = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 60_000;
      throw new RapidProError(summary, true, 429, json, { retryAfterMs });
    }
    if (response.status === 403) {
      // Refused credentials: every call will fail until someone fixes them. Retry slowly rather than drop.
      const detail = (json as { detail?: unknown } | undefined)?.detail;
      this.options.onAuth?.(credentialProblem(typeof detail === "string" ? detail : undefined));
      throw new RapidProError(summary, true, 403, json, { retryAfterMs: 60_000 });
    }
    throw new RapidProError(summary, response.status >= 500, response.status, json);
  }
}
