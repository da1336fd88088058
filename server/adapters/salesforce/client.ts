import { request as undiciRequest } from "undici";
import { z } from "zod";
import { AdapterError } from "../../core/errors.js";
import { apiRequest, header, requestBody, type ApiResponse } from "../http.js";

/** The desk's name: `DESK=salesforce`, the metric label, the logger component. */
export const DESK_NAME = "salesforce";

const REST = "/iamessage/api/v2";
const SSE_PATH = "/eventrouter/v1/sse";

const TokenSchema = z.looseObject({ accessToken: z.string().min(1), lastEventId: z.string().optional() });

/** An unauthenticated end user's access token and where the event stream stood when it was issued. */
export interface MessagingToken {
  accessToken: string;
  lastEventId: string | undefined;
}

/** One frame of the event stream. */
export interface SseFrame {
  id: string | undefined;
  event: string;
  data: string;
}

export interface MessagingClientOptions {
  baseUrl: string;
  orgId: string;
  deployment: string;
  timeoutMs: number;
  /** No byte on the event stream for this long (Salesforce pings every 30 s or so): the stream is dead. */
  streamIdleMs: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
}

/** A refusal by Salesforce or a failure to reach it; `status` is the HTTP status when there was one. */
export class SalesforceError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status: number | undefined,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(DESK_NAME, message, retryable, status, options);
    this.name = "SalesforceError";
  }

  /** The end user's bearer was refused (expired or unknown). */
  get unauthorized(): boolean {
    return this.upstreamStatus === 401;
  }
}

/** A conversation id as Salesforce requires it: a lower-case version 4 UUID. */
const CONVERSATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The only code that talks to Salesforce Messaging for In-App and Web, as the end user of a Custom Client deployment:
 * the REST API under `/iamessage/api/v2` and the server-sent event stream. Every failure is a SalesforceError that
 * says whether to retry (5xx, 408, 429 with its Retry-After, network errors and timeouts are retried).
 */
export class MessagingClient {
  private readonly baseUrl: string;

  constructor(private readonly options: MessagingClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  /** `POST authorization/unauthenticated/access-token`: a new anonymous end user. */
  async accessToken(): Promise<MessagingToken> {
    const body = await this.call("token", "POST", "authorization/unauthenticated/access-token", undefined, {
      json: {
        orgId: this.options.orgId,
        esDeveloperName: this.options.deployment,
        capabilitiesVersion: "1",
        platform: "Web",
        context: { appName: "liaison", clientVersion: "1.0.0" },
      },
    });
    return tokenOf(body, "access-token");
  }

  /** `GET authorization/continuation-access-token`: a fresh token for the same end user (the same expiry). */
  async continuation(token: string): Promise<MessagingToken> {
    const body = await this.call("continuation", "GET", "authorization/continuation-access-token", token);
    return tokenOf(body, "continuation-access-token");
  }

  /** `POST conversation`: starts the conversation (and Omni-Channel routing). */
  async createConversation(
    token: string,
    conversationId: string,
    routingAttributes: Record<string, string>,
    language: string,
  ): Promise<void> {
    if (!CONVERSATION_ID.test(conversationId)) {
      throw new SalesforceError(`conversation id ${conversationId} is not a lower-case v4 UUID`, false, undefined);
    }
    await this.call("conversation", "POST", "conversation", token, {
      json: { conversationId, esDeveloperName: this.options.deployment, routingAttributes, language },
    });
  }

  /** `POST conversation/{id}/message`: a text entry with the client's own id. */
  async sendMessage(token: string, conversationId: string, messageId: string, text: string): Promise<void> {
    await this.call("message", "POST", `conversation/${conversationId}/message`, token, {
      json: {
        message: {
          id: messageId,
          messageType: "StaticContentMessage",
          staticContent: { formatType: "Text", text },
        },
        esDeveloperName: this.options.deployment,
        isNewMessagingSession: false,
      },
    });
  }

  /** `POST conversation/{id}/file`: one file as an attachment entry. */
  async sendFile(
    token: string,
    conversationId: string,
    ids: { messageId: string; fileId: string },
    file: { name: string; type: string; data: Uint8Array },
  ): Promise<void> {
    const form = new FormData();
    const entry = {
      message: { id: ids.messageId, fileId: ids.fileId },
      esDeveloperName: this.options.deployment,
      isNewMessagingSession: false,
    };
    form.append("messageEntry", new Blob([JSON.stringify(entry)], { type: "application/json" }));
    form.append("fileData", new Blob([file.data], { type: file.type }), file.name);
    await this.call("file", "POST", `conversation/${conversationId}/file`, token, { form });
  }

  /** `POST conversation/{id}/entry`: the end user started or stopped typing. */
  async typing(token: string, conversationId: string, entryId: string, typing: boolean): Promise<void> {
    await this.call("typing", "POST", `conversation/${conversationId}/entry`, token, {
      json: { entryType: typing ? "TypingStartedIndicator" : "TypingStoppedIndicator", id: entryId },
    });
  }

  /** The identifiers of the conversation's latest message entries (newest first, at most 50). */
  async recentMessageIds(token: string, conversationId: string): Promise<string[]> {
    const body = await this.call("entries", "GET", `conversation/${conversationId}/entries`, token, {
      query: { limit: "50", direction: "FromEnd", entryTypeFilter: "Message" },
    });
    const entries = (body as { conversationEntries?: unknown } | undefined)?.conversationEntries;
    if (!Array.isArray(entries)) return [];
    return entries.flatMap((entry: unknown) => {
      const id = (entry as { identifier?: unknown } | null)?.identifier;
      return typeof id === "string" ? [id] : [];
    });
  }

  /** `DELETE conversation/{id}`: the end user leaves the conversation for good. */
  async closeConversation(token: string, conversationId: string): Promise<void> {
    await this.call("close", "DELETE", `conversation/${conversationId}`, token, {
      query: { esDeveloperName: this.options.deployment },
    });
  }

  /**
   * Opens the end user's event stream from `lastEventId` and yields its frames until Salesforce ends it (the
   * generator returns), it breaks, or it stays silent past `streamIdleMs` (both throw), or `signal` aborts (returns).
   */
  async *stream(token: string, lastEventId: string, signal: AbortSignal): AsyncGenerator<SseFrame> {
    const idle = new AbortController();
    const both = AbortSignal.any([signal, idle.signal]);
    let timer = setTimeout(() => idle.abort(), this.options.timeoutMs);
    const started = performance.now();
    let response: Awaited<ReturnType<typeof undiciRequest>>;
    try {
      response = await undiciRequest(`${this.baseUrl}${SSE_PATH}`, {
        method: "GET",
        headers: {
          accept: "text/event-stream",
          authorization: `Bearer ${token}`,
          // The stream takes the 15-character form of the org id.
          "x-org-id": this.options.orgId.slice(0, 15),
          "last-event-id": lastEventId,
        },
        signal: both,
      });
    } catch (error) {
      clearTimeout(timer);
      if (signal.aborted) return;
      this.options.observe?.("stream", "error", (performance.now() - started) / 1000);
      throw new SalesforceError(`event stream: ${describe(error)}`, true, undefined, { cause: error });
    }
    if (response.statusCode !== 200) {
      clearTimeout(timer);
      const text = await response.body.text().catch(() => "");
      const outcome = response.statusCode === 429 ? "rate_limited" : "error";
      this.options.observe?.("stream", outcome, (performance.now() - started) / 1000);
      throw failure("event stream", response.statusCode, text, retryAfterMs(response.headers["retry-after"]));
    }
    this.options.observe?.("stream", "ok", (performance.now() - started) / 1000);
    const parser = new SseParser();
    try {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), this.options.streamIdleMs);
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        timer.refresh();
        for (const frame of parser.push(chunk.toString("utf8"))) yield frame;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (idle.signal.aborted) {
        throw new SalesforceError(`event stream: silent for ${this.options.streamIdleMs} ms`, true, undefined);
      }
      throw new SalesforceError(`event stream: ${describe(error)}`, true, undefined, { cause: error });
    } finally {
      clearTimeout(timer);
      if (!response.body.destroyed) response.body.destroy();
    }
  }

  private async call(
    operation: string,
    method: "GET" | "POST" | "DELETE",
    route: string,
    token: string | undefined,
    request: { json?: unknown; form?: FormData; query?: Record<string, string> } = {},
  ): Promise<unknown> {
    const url = new URL(`${this.baseUrl}${REST}/${route}`);
    for (const [key, value] of Object.entries(request.query ?? {})) url.searchParams.set(key, value);
    const headers: Record<string, string> = { accept: "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const body = requestBody(request, headers);
    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(url, { method, headers, body, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      this.options.observe?.(operation, "error", (performance.now() - started) / 1000);
      throw new SalesforceError(`${operation}: ${describe(error)}`, true, undefined, { cause: error });
    }
    const ok = response.status >= 200 && response.status < 300;
    const outcome = ok ? "ok" : response.status === 429 ? "rate_limited" : "error";
    this.options.observe?.(operation, outcome, (performance.now() - started) / 1000);
    if (!ok) throw failure(operation, response.status, response.text, retryAfterMs(header(response, "retry-after")));
    if (response.text.trim() === "") return undefined;
    try {
      return JSON.parse(response.text) as unknown;
    } catch {
      return undefined;
    }
  }
}

/** Reads server-sent event frames out of the text as it arrives (lines ending in LF, CRLF or CR). */
export class SseParser {
  private buffer = "";
  private id: string | undefined;
  private event = "";
  private data: string[] = [];

  push(text: string): SseFrame[] {
    this.buffer += text;
    const frames: SseFrame[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (match === null || (match[0] === "\r" && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      if (line === "") {
        if (this.data.length > 0 || this.event !== "") {
          frames.push({ id: this.id, event: this.event === "" ? "message" : this.event, data: this.data.join("\n") });
        }
        this.id = undefined;
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") this.id = value;
      else if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
    }
    return frames;
  }
}

function tokenOf(body: unknown, route: string): MessagingToken {
  const parsed = TokenSchema.safeParse(body);
  if (!parsed.success) throw new SalesforceError(`${route}: unexpected response shape`, true, 200);
  return { accessToken: parsed.data.accessToken, lastEventId: parsed.data.lastEventId };
}

function failure(operation: string, status: number, text: string, retryAfter: number | undefined): SalesforceError {
  const summary = `${operation}: ${status} ${messageOf(text)}`;
  if (status === 429) return new SalesforceError(summary, true, status, { retryAfterMs: retryAfter ?? 30_000 });
  const retryable = status >= 500 || status === 408;
  return new SalesforceError(summary, retryable, status, retryAfter === undefined ? {} : { retryAfterMs: retryAfter });
}

/** Salesforce's error message (`{code, message}`), or the start of the body. */
function messageOf(text: string): string {
  try {
    const message = (JSON.parse(text) as { message?: unknown } | null)?.message;
    if (typeof message === "string") return message.slice(0, 200);
  } catch {
    // Not JSON: the text itself.
  }
  return text.slice(0, 200);
}

/** `Retry-After` in seconds or as an HTTP date. */
function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === "") return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
    return typeof code === "string" ? `${error.name} ${code}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
