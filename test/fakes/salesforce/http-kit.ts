import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import type { FaultMatch, SfApi, SfRequestRecord } from "./types.js";

/** Bodies above this are refused before a handler sees them (the file endpoint's own limit is lower). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** The request log keeps this much of each body (file uploads would otherwise fill it). */
const RECORDED_BODY_BYTES = 64 * 1024;

/** One request as a handler sees it: the body read whole, and a signal that fires when the client goes away. */
export interface FakeRequest {
  readonly n: number;
  readonly api: SfApi;
  readonly method: string;
  readonly url: URL;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Aborted when the connection closes before the answer was written. */
  readonly signal: AbortSignal;
  /** First value of a header (names are case-insensitive). */
  header(name: string): string | undefined;
}

/** What a handler answers: a whole response, or a stream it writes itself (server-sent events). */
export type Reply =
  | { status: number; json?: unknown; text?: string; headers?: Record<string, string> }
  | { stream: (res: ServerResponse, req: FakeRequest) => void };

export type Handler = (req: FakeRequest) => Reply | Promise<Reply>;

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return headers === undefined ? { status, json: body } : { status, json: body, headers };
}

export function text(status: number, body: string, headers?: Record<string, string>): Reply {
  return headers === undefined ? { status, text: body } : { status, text: body, headers };
}

export function empty(status: number): Reply {
  return { status };
}

/** Thrown by handlers for an error answer; the dispatcher turns it into the reply. */
export class ReplyError extends Error {
  constructor(readonly reply: Reply) {
    super("reply");
  }
}

function matches(match: FaultMatch | undefined, req: { method: string; path: string }): boolean {
  if (match === undefined) return true;
  if (match.method !== undefined && match.method.toUpperCase() !== req.method) return false;
  if (match.path === undefined) return true;
  return typeof match.path === "string" ? req.path.startsWith(match.path) : match.path.test(req.path);
}

interface CountedFault<T> {
  count: number;
  match: FaultMatch | undefined;
  extra: T;
}

interface TimedFailure {
  until: number;
  status: number;
  retryAfterSeconds: number | undefined;
  match: FaultMatch | undefined;
}

/** Failure injection shared by both APIs: statuses, hung requests, dropped connections, outages. */
export class Faults {
  failures: CountedFault<{ status: number; retryAfterSeconds: number | undefined }>[] = [];
  timed: TimedFailure[] = [];
  hangs: CountedFault<undefined>[] = [];
  drops: CountedFault<{ when: "before" | "after" }>[] = [];
  outage: "503" | "reset" | "refused" | undefined;

  private take<T>(list: CountedFault<T>[], req: { method: string; path: string }): CountedFault<T> | undefined {
    const found = list.find((fault) => fault.count > 0 && matches(fault.match, req));
    if (found) found.count -= 1;
    return found;
  }

  failure(req: {
    method: string;
    path: string;
  }): { status: number; retryAfterSeconds: number | undefined } | undefined {
    const counted = this.take(this.failures, req);
    if (counted) return counted.extra;
    const now = Date.now();
    this.timed = this.timed.filter((t) => t.until > now);
    const timed = this.timed.find((t) => matches(t.match, req));
    return timed ? { status: timed.status, retryAfterSeconds: timed.retryAfterSeconds } : undefined;
  }

  hang(req: { method: string; path: string }): boolean {
    return this.take(this.hangs, req) !== undefined;
  }

  drop(req: { method: string; path: string }): "before" | "after" | undefined {
    return this.take(this.drops, req)?.extra.when;
  }
}

export interface DispatcherHooks {
  /** The API a path belongs to, or undefined for an unknown path (404 in the API's own style). */
  route(method: string, path: string): { api: SfApi; handler: Handler } | { api: SfApi; notFound: Reply };
  /** The answer to an injected failure, in the style of the API it hits. */
  injected(api: SfApi, status: number, retryAfterSeconds: number | undefined): Reply;
}

/**
 * The HTTP front of the fake: records every request in arrival order (with its headers and body), applies the
 * injected faults, runs the handler and writes its reply (or drops the connection after running it).
 */
export class Dispatcher {
  readonly requests: SfRequestRecord[] = [];
  readonly faults = new Faults();
  /** Responses held open by `hangNext`, destroyed when the fake closes. */
  private readonly hung = new Set<ServerResponse>();
  private count = 0;

  constructor(private readonly hooks: DispatcherHooks) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const n = (this.count += 1);
    const method = (req.method ?? "GET").toUpperCase();
    const url = new URL(req.url ?? "/", "http://fake.invalid");
    const path = url.pathname;
    const routed = this.hooks.route(method, path);
    const record: SfRequestRecord = {
      n,
      api: routed.api,
      method,
      path,
      query: url.search.replace(/^\?/, ""),
      headers: flattenHeaders(req.headers),
      body: "",
      status: undefined,
    };
    this.requests.push(record);
    const controller = new AbortController();
    res.on("close", () => {
      record.status = res.headersSent ? res.statusCode : 0;
      if (!res.writableFinished) controller.abort();
      this.hung.delete(res);
    });

    if (this.faults.outage === "reset") {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("error", () => res.destroy());
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      record.body = body.subarray(0, RECORDED_BODY_BYTES).toString("utf8");
      const fake: FakeRequest = {
        n,
        api: routed.api,
        method,
        url,
        path,
        headers: req.headers,
        body,
        signal: controller.signal,
        header: (name) => firstHeader(req.headers, name),
      };
      if (tooLarge) {
        write(res, fake, { status: 413, text: "Request Entity Too Large" });
        return;
      }
      void this.answer(fake, res, routed);
    });
  }

  private async answer(
    req: FakeRequest,
    res: ServerResponse,
    routed: { api: SfApi; handler: Handler } | { api: SfApi; notFound: Reply },
  ): Promise<void> {
    const faults = this.faults;
    if (faults.outage === "503") {
      write(res, req, this.hooks.injected(req.api, 503, undefined));
      return;
    }
    const failure = faults.failure(req);
    if (failure) {
      write(res, req, this.hooks.injected(req.api, failure.status, failure.retryAfterSeconds));
      return;
    }
    if (faults.hang(req)) {
      this.hung.add(res);
      return;
    }
    const drop = faults.drop(req);
    if (drop === "before") {
      res.destroy();
      return;
    }
    let reply: Reply;
    try {
      reply = "handler" in routed ? await routed.handler(req) : routed.notFound;
    } catch (error) {
      // A bug of the fake itself: answered 500 with its message, so that the test that hit it sees why.
      reply =
        error instanceof ReplyError
          ? error.reply
          : { status: 500, text: `fake Salesforce error: ${error instanceof Error ? error.message : String(error)}` };
    }
    if (res.destroyed) return;
    if (drop === "after") {
      // The request was processed; the client never learns it, which is what provokes a retry.
      if ("stream" in reply) reply.stream(res, req);
      res.destroy();
      return;
    }
    write(res, req, reply);
  }

  /** Ends every hung request (when the fake closes). */
  releaseHung(): void {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
  }

  hungCount(): number {
    return this.hung.size;
  }
}

function write(res: ServerResponse, req: FakeRequest, reply: Reply): void {
  if ("stream" in reply) {
    reply.stream(res, req);
    return;
  }
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.json !== undefined) {
    res.writeHead(reply.status, { "Content-Type": "application/json;charset=UTF-8", ...headers });
    res.end(JSON.stringify(reply.json));
    return;
  }
  if (reply.text !== undefined) {
    res.writeHead(reply.status, { "Content-Type": "text/plain;charset=UTF-8", ...headers });
    res.end(reply.text);
    return;
  }
  res.writeHead(reply.status, headers);
  res.end();
}

export function statusText(status: number): string {
  return STATUS_CODES[status] ?? "Error";
}

function firstHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) flat[key] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

/** Parses a JSON body; undefined when the body is not JSON (the caller answers in its API's style). */
export function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString("utf8")) as unknown };
  } catch {
    return { ok: false };
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
