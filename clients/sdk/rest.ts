import type {
  ConnectorMessageRequest,
  ConnectorMessageResponse,
  ConversationId,
  ConversationList,
  OpenConversationState,
  InitRequest,
  InitResponse,
} from "../../protocol/index.js";
import { checkAnswer } from "./answers.js";
import { codeForStatus, errorFromInfo, LiaisonError } from "./errors.js";
import { validate } from "./schema.js";

/** Default time allowed for one REST call, response body included. */
export const DEFAULT_REST_TIMEOUT_MS = 10_000;

/** Options every REST call takes. */
export interface RestOptions {
  /** Time allowed for the whole call, body included (default 10 s); then it rejects with `timeout`. */
  timeoutMs?: number;
}

/** How a transcript request is authorized: the customer's token from `init`, or an API key. */
export type TranscriptAuth = { token: string } | { apiKey: string };

/**
 * Starts (or resumes) a conversation: `POST /api/customer/init`.
 *
 * @param baseUrl - the gateway's base URL, e.g. `https://chat.example.com` (a path prefix is kept)
 * @param body - the customer: `firstName`, `channel` and at least one of `refId`, `phone`, `email`
 * @param opts - `apiKey` (connectors calling on a customer's behalf) and `timeoutMs`
 * A `requestId` is generated when the body has none, and a call that timed out or could not reach the gateway is
 * tried once more with the same one, so a retry never starts a second conversation.
 *
 * @returns the conversation id, the customer participant and the token to join with
 * @throws {@link LiaisonError} `invalid_payload`, `conflict` (the account has an open conversation and no API key
 *   was given), `rate_limited` (see `retryAfterSeconds`), `unavailable`, `internal`, `timeout`, or `bad_response`
 *   when the answer does not match the protocol
 */
export async function initConversation(
  baseUrl: string,
  body: InitRequest,
  opts: RestOptions & { apiKey?: string } = {},
): Promise<InitResponse> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (opts.apiKey !== undefined) headers.authorization = `Bearer ${opts.apiKey}`;
  const hasRequestId = Object.keys(body).some((key) => ["requestid", "reqestid"].includes(key.toLowerCase()));
  const payload = JSON.stringify(hasRequestId ? body : { ...body, requestId: crypto.randomUUID() });
  const attempt = async (): Promise<InitResponse> => {
    const response = await request(
      endpoint(baseUrl, "/api/customer/init"),
      { method: "POST", headers, body: payload },
      opts.timeoutMs,
    );
    return validate("initResponse", await readJson(response), "init response");
  };
  try {
    return await attempt();
  } catch (error) {
    // The first try may have created the conversation: the same requestId returns it instead of a second one.
    const transient =
      error instanceof LiaisonError &&
      (error.code === "timeout" || (error.code === "unavailable" && error.status === undefined));
    if (!transient) throw error;
    return attempt();
  }
}

/**
 * Downloads the PDF transcript of an ended conversation: `GET /api/customer/transcript/:id/pdf`.
 *
 * @param baseUrl - the gateway's base URL
 * @param conversationId - the conversation
 * @param auth - the customer's `token` or an `apiKey`, sent as `Authorization: Bearer` (never in the URL, which
 *   proxies log)
 * @param opts - `timeoutMs`
 * @returns the PDF bytes
 * @throws {@link LiaisonError} `not_found` (unknown or not yet ended), `unauthorized`, `forbidden`, `rate_limited`
 *   (see `retryAfterSeconds`), `unavailable` (the gateway is busy rendering others: retry after
 *   `retryAfterSeconds`), `timeout`, `bad_response` (not a PDF)
 */
export async function fetchTranscriptPdf(
  baseUrl: string,
  conversationId: ConversationId,
  auth: TranscriptAuth,
  opts: RestOptions = {},
): Promise<Uint8Array> {
  const response = await request(
    endpoint(baseUrl, `/api/customer/transcript/${encodeURIComponent(conversationId)}/pdf`),
    { method: "GET", headers: { authorization: bearer(auth), accept: "application/pdf" } },
    opts.timeoutMs,
  );
  const type = response.headers.get("content-type") ?? "";
  const bytes = await readBytes(response);
  if (!type.toLowerCase().startsWith("application/pdf")) {
    throw new LiaisonError("bad_response", `expected application/pdf, got ${type || "no content type"}`, {
      status: response.status,
    });
  }
  return bytes;
}

/**
 * Has the gateway e-mail the transcript (PDF attached) of an ended conversation:
 * `POST /api/customer/transcript/:id/email`. It goes to the customer's address from `init`, or to `opts.to`,
 * which only an API key may choose.
 *
 * @param baseUrl - the gateway's base URL
 * @param conversationId - the conversation
 * @param auth - an `apiKey` (then `opts.to` is allowed) or the customer's `token`, sent as `Authorization: Bearer`
 * @param opts - `to` (API key only) and `timeoutMs`
 * @throws {@link LiaisonError} `invalid_payload` (no address on file, or `to` with a token), `not_configured`
 *   (no mail transport), `not_found`, `unauthorized`, `rate_limited` (see `retryAfterSeconds`), `unavailable`,
 *   `timeout`
 */
export function emailTranscript(
  baseUrl: string,
  conversationId: ConversationId,
  auth: { apiKey: string },
  opts?: RestOptions & { to?: string },
): Promise<void>;
export function emailTranscript(
  baseUrl: string,
  conversationId: ConversationId,
  auth: { token: string },
  opts?: RestOptions,
): Promise<void>;
export async function emailTranscript(
  baseUrl: string,
  conversationId: ConversationId,
  auth: TranscriptAuth,
  opts: RestOptions & { to?: string } = {},
): Promise<void> {
  if (opts.to !== undefined && !("apiKey" in auth)) {
    throw new LiaisonError("invalid_payload", "only an API key may choose the transcript recipient", {
      details: { to: "requires an API key" },
    });
  }
  const response = await request(
    endpoint(baseUrl, `/api/customer/transcript/${encodeURIComponent(conversationId)}/email`),
    {
      method: "POST",
      headers: { authorization: bearer(auth), "content-type": "application/json" },
      body: JSON.stringify(opts.to === undefined ? {} : { to: opts.to }),
    },
    opts.timeoutMs,
  );
  await readBytes(response);
}

/**
 * Sends a third-party or campaign message to a customer of a connector channel:
 * `POST /api/connectors/:channel/messages`.
 *
 * @param baseUrl - the gateway's base URL
 * @param channel - the channel, e.g. `sms`
 * @param apiKey - an API key
 * @param body - `refId` (the customer's account), `text` and/or `attachments`, and an optional idempotency `id`
 * @param opts - `timeoutMs`
 * @returns the message id and whether it was `sent` to a connector or `queued` until one connects
 * @throws {@link LiaisonError} `invalid_payload`, `unauthorized`, `forbidden`, `rate_limited`, `timeout`,
 *   `bad_response`
 */
export async function sendConnectorMessage(
  baseUrl: string,
  channel: string,
  apiKey: string,
  body: ConnectorMessageRequest,
  opts: RestOptions = {},
): Promise<ConnectorMessageResponse> {
  const response = await request(
    endpoint(baseUrl, `/api/connectors/${encodeURIComponent(channel)}/messages`),
    {
      method: "POST",
      headers: {
        authorization: `Bearer ${apiKey}`,
        "content-type": "application/json",
        accept: "application/json",
      },
      body: JSON.stringify(body),
    },
    opts.timeoutMs,
  );
  return validate("connectorMessageResponse", await readJson(response), "connector message response");
}

/** Which page of the queue {@link listConversations} asks for. */
export interface ConversationQuery {
  /** `bot`, `queued` and/or `active` (default: all three). */
  states?: OpenConversationState[];
  /** Only this channel's conversations. */
  channel?: string;
  /** Only conversations with this subject. */
  subject?: string;
  /** Conversations per page (default 50, at most 200). */
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string;
}

/**
 * One page of the queue: the open conversations, newest first by their last message: `GET /api/conversations`.
 * While the answer has a `nextCursor`, more may follow: call again with it as `cursor`. A page may hold fewer than
 * `limit` (even none) and still have a `nextCursor`, when a `channel` or `subject` filter passes over many.
 *
 * @param baseUrl - the gateway's base URL
 * @param apiKey - an API key
 * @param query - states, channel, subject, page size and cursor
 * @param opts - `timeoutMs`
 * @returns the conversations (customer, state, desk, agent, last message time) and the next page's cursor
 * @throws {@link LiaisonError} `invalid_payload` (a bad filter or cursor), `unauthorized`, `unavailable`,
 *   `timeout`, `bad_response`
 */
export async function listConversations(
  baseUrl: string,
  apiKey: string,
  query: ConversationQuery = {},
  opts: RestOptions = {},
): Promise<ConversationList> {
  const params = new URLSearchParams();
  if (query.states !== undefined) params.set("state", query.states.join(","));
  if (query.channel !== undefined) params.set("channel", query.channel);
  if (query.subject !== undefined) params.set("subject", query.subject);
  if (query.limit !== undefined) params.set("limit", String(query.limit));
  if (query.cursor !== undefined) params.set("cursor", query.cursor);
  const search = params.toString() === "" ? "" : `?${params.toString()}`;
  const response = await request(
    endpoint(baseUrl, `/api/conversations${search}`),
    { method: "GET", headers: { authorization: `Bearer ${apiKey}`, accept: "application/json" } },
    opts.timeoutMs,
  );
  return validate("conversationList", await readJson(response), "conversation list");
}

/** Joins the base URL and a path without losing a path prefix (`new URL("/api", base)` would drop it). */
function endpoint(baseUrl: string, path: string): string {
  return baseUrl.replace(/\/+$/, "") + path;
}

function bearer(auth: TranscriptAuth): string {
  return `Bearer ${"apiKey" in auth ? auth.apiKey : auth.token}`;
}

/**
 * Sends the request; resolves with a 2xx response, rejects with a {@link LiaisonError} for anything else. The
 * timeout signal stays attached to the response, so reading its body is bounded by the same timeout.
 */
async function request(url: string, init: RequestInit, timeoutMs = DEFAULT_REST_TIMEOUT_MS): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw transportError(error, url);
  }
  if (response.ok) return response;
  throw await httpError(response);
}

async function httpError(response: Response): Promise<LiaisonError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // The status alone still says what went wrong.
  }
  let info: unknown;
  try {
    const body = checkAnswer("errorBody", JSON.parse(text));
    if (body.ok) info = body.value.error;
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status.
  }
  const error =
    errorFromInfo(info, response.status) ??
    new LiaisonError(codeForStatus(response.status), `HTTP ${response.status} ${response.statusText}`.trim(), {
      status: response.status,
    });
  const retryAfter = Number(response.headers.get("retry-after"));
  if (response.headers.has("retry-after") && Number.isFinite(retryAfter) && retryAfter >= 0) {
    return new LiaisonError(error.code, error.message, {
      status: response.status,
      ...(error.details === undefined ? {} : { details: error.details }),
      retryAfterSeconds: retryAfter,
    });
  }
  return error;
}

async function readJson(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw transportError(error, response.url);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new LiaisonError("bad_response", "the server answered with invalid JSON", {
      status: response.status,
      cause: error,
    });
  }
}

async function readBytes(response: Response): Promise<Uint8Array> {
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw transportError(error, response.url);
  }
}

function transportError(error: unknown, url: string): LiaisonError {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return new LiaisonError("timeout", `no complete answer from ${url} in time`, { cause: error });
  }
  return new LiaisonError("unavailable", `cannot reach ${url}`, { cause: error });
}
