/** Small pieces every adapter client needs the same way. */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

/** An external API's answer, read whole. */
export interface ApiResponse {
  readonly status: number;
  /** Lower-case names; a repeated header is joined with ", " by Node. */
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

export interface ApiRequest {
  readonly method: "GET" | "POST";
  readonly headers: Record<string, string>;
  /** JSON text, or a form (sent as `multipart/form-data`). */
  readonly body?: string | FormData | undefined;
  /** The whole exchange — connecting, sending, the answer's last byte — must fit in this. */
  readonly timeoutMs: number;
  /** A longer answer is cut off as an error. */
  readonly maxResponseBytes?: number;
}

/**
 * Sockets to the same desk or bot platform are kept open between calls (every message is a call). An idle socket is
 * closed after 4 s, before the usual 5 s of Node and nginx servers, so a call rarely meets a socket the other side
 * has just closed; Node also honours a `Keep-Alive: timeout=N` hint from the server.
 */
const IDLE_SOCKET_MS = 4_000;
const agents = {
  http: new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: "lifo" }),
  https: new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: "lifo" }),
};

const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The error of a call that did not finish within its `timeoutMs`. */
export class ApiTimeoutError extends Error {
  readonly code = "ETIMEDOUT";
  constructor(timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`);
    this.name = "TimeoutError";
  }
}

/**
 * One call to an external API over `node:http(s)` with keep-alive sockets. Cheaper per call than `fetch`, whose
 * web-streams machinery cost a third of the gateway's CPU on the desk path in the benchmark. Rejects with Node's
 * network error (its `code`, e.g. ECONNREFUSED, is in the message) or `ApiTimeoutError`; any HTTP status resolves.
 */
export async function apiRequest(url: URL, request: ApiRequest): Promise<ApiResponse> {
  const headers = { ...request.headers };
  let body: string | Uint8Array | undefined;
  if (request.body instanceof FormData) {
    // The multipart encoding (boundary, per-part headers) as fetch would send it; uploads are rare.
    const encoded = new Response(request.body);
    body = new Uint8Array(await encoded.arrayBuffer());
    headers["content-type"] = encoded.headers.get("content-type") ?? "multipart/form-data";
  } else {
    body = request.body;
  }
  if (body !== undefined)
    headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
  const maxBytes = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const deadline = performance.now() + request.timeoutMs;
  try {
    return await exchange(url, request.method, headers, body, maxBytes, request.timeoutMs);
  } catch (error) {
    // The keep-alive race: the server closed an idle socket just as this request went out on it. Nothing reached
    // the server's application, so a GET is sent again at once on a fresh socket; anything else goes back to its
    // caller, whose retry knows whether a repeat is harmless.
    const remainingMs = Math.floor(deadline - performance.now());
    if (!(error instanceof StaleSocketError) || request.method !== "GET" || remainingMs <= 0) throw error;
    return exchange(url, request.method, headers, body, maxBytes, remainingMs);
  }
}

/** A request that failed on a reused keep-alive socket before any answer came: the server had closed it. */
class StaleSocketError extends Error {
  readonly code: unknown;
  constructor(cause: Error) {
    super(cause.message, { cause });
    this.name = cause.name;
    this.code = (cause as { code?: unknown }).code;
  }
}

function exchange(
  url: URL,
  method: ApiRequest["method"],
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  maxBytes: number,
  timeoutMs: number,
): Promise<ApiResponse> {
  const https = url.protocol === "https:";
  return new Promise<ApiResponse>((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(url, {
      method,
      headers,
      agent: https ? agents.https : agents.http,
    });
    let settled = false;
    let answered = false;
    const settle = (outcome: ApiResponse | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (outcome instanceof Error) {
        // The socket is not handed back for reuse: it may hold the rest of an answer nobody reads.
        req.destroy();
        const stale =
          req.reusedSocket && !answered && /^(ECONNRESET|EPIPE)$/.test(String((outcome as { code?: unknown }).code));
        reject(stale ? new StaleSocketError(outcome) : outcome);
      } else {
        resolve(outcome);
      }
    };
    const timer = setTimeout(() => settle(new ApiTimeoutError(timeoutMs)), timeoutMs);
    // Node may report one failure on the request and on the answer both: every report after the first is ignored.
    req.on("error", settle);
    req.once("response", (res) => {
      answered = true;
      res.on("error", settle);
      const chunks: Buffer[] = [];
      let length = 0;
      res.on("data", (chunk: Buffer) => {
        length += chunk.length;
        if (length > maxBytes) settle(new Error(`answer longer than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.once("end", () => {
        const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, length).toString("utf8");
        settle({ status: res.statusCode ?? 0, headers: res.headers, text });
      });
      // The socket died mid-answer without an error event.
      res.once("close", () => {
        if (!res.complete) settle(new Error("connection closed before the answer was complete"));
      });
    });
    req.end(body);
  });
}

/** A header's value as one string (undefined when absent). */
export function header(response: ApiResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** The body of an API request, JSON or multipart; sets the JSON content type on `headers` when needed. */
export function requestBody(
  request: { json?: unknown; form?: FormData },
  headers: Record<string, string>,
): string | FormData | undefined {
  if (request.json !== undefined) {
    headers["content-type"] = "application/json";
    return JSON.stringify(request.json);
  }
  return request.form;
}

/** The bytes of a `data:` URL (base64 or percent-encoded); undefined when it is not one or is malformed. */
export function decodeDataUrl(url: string): Uint8Array | undefined {
  if (!url.startsWith("data:")) return undefined;
  const comma = url.indexOf(",");
  if (comma < 0) return undefined;
  const meta = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  if (meta.endsWith(";base64")) return Buffer.from(payload, "base64");
  try {
    return Buffer.from(decodeURIComponent(payload));
  } catch {
    return undefined;
  }
}
