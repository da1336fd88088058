import { request as undiciRequest } from "undici";
import { z } from "zod";
import { AdapterError } from "../../core/errors.js";
import { apiRequest, type ApiResponse } from "../http.js";
import { DESK_NAME } from "./client.js";

const SessionIdSchema = z.looseObject({
  id: z.string().min(1),
  key: z.string().min(1),
  affinityToken: z.string().min(1),
  clientPollTimeout: z.number().positive().optional(),
});

const PollSchema = z.looseObject({
  messages: z.array(z.looseObject({ type: z.string(), message: z.unknown().optional() })),
  sequence: z.number().int(),
  offset: z.number().int().optional(),
});

/** What `System/SessionId` hands out: the session's id, its secret key and the server's affinity token. */
export interface ChatSessionInfo {
  id: string;
  key: string;
  affinityToken: string;
  /** Seconds after which an unanswered long poll is abandoned and issued again. */
  clientPollTimeout: number;
}

/** The headers every call after SessionId carries. */
export interface ChatSessionRef {
  key: string;
  affinityToken: string;
}

/** A 200 of the long poll: the messages not acknowledged yet, numbered up to `sequence`. */
export type ChatPoll = z.infer<typeof PollSchema>;

export interface ChatClientOptions {
  /** `https://<host>/chat/rest` */
  baseUrl: string;
  apiVersion: number;
  timeoutMs: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
}

/** A refusal by the Chat API or a failure to reach it. */
export class ChatApiError extends AdapterError {
  constructor(message: string, retryable: boolean, status: number | undefined, options?: { cause?: unknown }) {
    super(DESK_NAME, message, retryable, status, options);
    this.name = "ChatApiError";
  }

  /** 503: the server handed the session over (a new affinity token is needed: ReconnectSession). */
  get affinityChanged(): boolean {
    return this.upstreamStatus === 503;
  }

  /** 403: the session is not valid any more (ended, expired, unknown). */
  get sessionGone(): boolean {
    return this.upstreamStatus === 403;
  }
}

/**
 * The only code that talks to Salesforce's legacy Chat REST API ("Live Agent"), visitor side: `System/SessionId`,
 * the Chasitor POSTs with `X-LIVEAGENT-SEQUENCE`, the `System/Messages` long poll and `System/ReconnectSession`.
 */
export class ChatClient {
  private readonly baseUrl: string;

  constructor(private readonly options: ChatClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  /** `GET System/SessionId`, with affinity `null`: a new session. */
  async sessionId(): Promise<ChatSessionInfo> {
    const response = await this.call("session", "GET", "System/SessionId", { "x-liveagent-affinity": "null" });
    const parsed = SessionIdSchema.safeParse(parseJson(response.text));
    if (!parsed.success) throw new ChatApiError("SessionId: unexpected response shape", true, response.status);
    return { ...parsed.data, clientPollTimeout: parsed.data.clientPollTimeout ?? 40 };
  }

  /** A Chasitor POST (`ChasitorInit`, `ChatMessage`, `ChatEnd`, …) with its request sequence. */
  async post(session: ChatSessionRef, name: string, body: unknown, sequence: number): Promise<void> {
    await this.call(name, "POST", `Chasitor/${name}`, {
      ...this.sessionHeaders(session),
      "x-liveagent-sequence": String(sequence),
      "content-type": "application/json",
      body: JSON.stringify(body),
    });
  }

  /**
   * One long poll of `System/Messages` from `ack`: the messages, or undefined for a 204 (nothing new, or the poll
   * was not answered within `clientPollTimeout` and is abandoned to be issued again), or undefined once `signal`
   * aborts. The request is aborted with the signal: only one poll per session may be outstanding.
   */
  async messages(
    session: ChatSessionRef,
    ack: number,
    pollTimeoutMs: number,
    signal: AbortSignal,
  ): Promise<ChatPoll | undefined> {
    const timeout = AbortSignal.timeout(pollTimeoutMs);
    const started = performance.now();
    let status: number;
    let text: string;
    try {
      const response = await undiciRequest(`${this.baseUrl}/System/Messages?ack=${ack}`, {
        method: "GET",
        headers: {
          accept: "application/json",
          "x-liveagent-api-version": String(this.options.apiVersion),
          ...this.sessionHeaders(session),
        },
        signal: AbortSignal.any([signal, timeout]),
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if (signal.aborted || timeout.aborted) return undefined;
      this.options.observe?.("poll", "error", (performance.now() - started) / 1000);
      throw new ChatApiError(`Messages: ${describe(error)}`, true, undefined, { cause: error });
    }
    this.options.observe?.("poll", status < 300 ? "ok" : "error", (performance.now() - started) / 1000);
    if (status === 204) return undefined;
    if (status !== 200) throw failure("Messages", status, text);
    const parsed = PollSchema.safeParse(parseJson(text));
    if (!parsed.success) throw new ChatApiError("Messages: unexpected response shape", true, status);
    return parsed.data;
  }

  /** `GET System/ReconnectSession` after a 503: the session's new affinity token (the request sequence restarts). */
  async reconnect(key: string, offset: number): Promise<string> {
    const response = await this.call("reconnect", "GET", `System/ReconnectSession?ReconnectSession.offset=${offset}`, {
      "x-liveagent-affinity": "null",
      "x-liveagent-session-key": key,
    });
    const messages = (parseJson(response.text) as { messages?: unknown } | undefined)?.messages;
    const found = Array.isArray(messages)
      ? (messages as { type?: unknown; message?: { affinityToken?: unknown } }[]).find(
          (m) => m.type === "ReconnectSession",
        )
      : undefined;
    const token = found?.message?.affinityToken;
    if (typeof token !== "string" || token === "") {
      throw new ChatApiError("ReconnectSession: no affinity token in the answer", true, response.status);
    }
    return token;
  }

  /**
   * `GET Visitor/Availability` for the button: whether an agent could take a chat now. Salesforce answers 400 when it
   * does not know the org or the deployment.
   */
  async availability(orgId: string, deploymentId: string, buttonId: string): Promise<boolean> {
    const query = new URLSearchParams({ org_id: orgId, deployment_id: deploymentId, "Availability.ids": buttonId });
    const response = await this.call("availability", "GET", `Visitor/Availability?${query.toString()}`, {});
    const messages = (parseJson(response.text) as { messages?: unknown } | undefined)?.messages;
    const results = Array.isArray(messages)
      ? (messages as { message?: { results?: unknown } }[]).flatMap((m) =>
          Array.isArray(m.message?.results) ? (m.message.results as { id?: unknown; isAvailable?: unknown }[]) : [],
        )
      : [];
    return results.some((result) => result.isAvailable === true);
  }

  private sessionHeaders(session: ChatSessionRef): Record<string, string> {
    return { "x-liveagent-affinity": session.affinityToken, "x-liveagent-session-key": session.key };
  }

  private async call(
    operation: string,
    method: "GET" | "POST",
    route: string,
    headers: Record<string, string> & { body?: string },
  ): Promise<ApiResponse> {
    const { body, ...rest } = headers;
    const url = new URL(`${this.baseUrl}/${route}`);
    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(url, {
        method,
        headers: { accept: "application/json", "x-liveagent-api-version": String(this.options.apiVersion), ...rest },
        body,
        timeoutMs: this.options.timeoutMs,
      });
    } catch (error) {
      this.options.observe?.(operation, "error", (performance.now() - started) / 1000);
      throw new ChatApiError(`${operation}: ${describe(error)}`, true, undefined, { cause: error });
    }
    const ok = response.status >= 200 && response.status < 300;
    this.options.observe?.(operation, ok ? "ok" : "error", (performance.now() - started) / 1000);
    if (!ok) throw failure(operation, response.status, response.text);
    return response;
  }
}

function failure(operation: string, status: number, text: string): ChatApiError {
  // 503 is an affinity change (reconnect, then retry); 5xx otherwise and 408 are transient.
  const retryable = status >= 500 || status === 408;
  return new ChatApiError(`${operation}: ${status} ${text.slice(0, 200)}`, retryable, status);
}

function parseJson(text: string): unknown {
  try {
    return text.trim() === "" ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
    return typeof code === "string" ? `${error.name} ${code}` : `${error.name}: ${error.message}`;
  }
  return String(error);
}
