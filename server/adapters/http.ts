/** Small pieces every adapter client needs the same way. */
import type { IncomingHttpHeaders } from "node:http";
import { Agent, interceptors, request as undiciRequest, type Dispatcher } from "undici";

/** An external API's answer, read whole. */
export interface ApiResponse {
  readonly status: number;
  /** Lower-case names; a repeated header is an array. */
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

export interface ApiRequest {
  readonly method: "GET" | "POST" | "DELETE";
  readonly headers: Record<string, string>;
  /** JSON text, or a form (sent as `multipart/form-data`). */
  readonly body?: string | FormData | undefined;
  /** The whole exchange — connecting, sending, the answer's last byte — must fit in this. */
  readonly timeoutMs: number;
  /** A longer answer is cut off as an error. */
  readonly maxResponseBytes?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/**
 * One connection pool per upstream (undici's `Agent` keeps a `Pool` per origin), shared by every adapter: every
 * message is a call, so connections stay open between calls. An idle connection is closed after 4 s, before the usual
 * 5 s of Node and nginx servers, so a call rarely meets a connection the other side has just closed (undici also
 * honours a server's `Keep-Alive: timeout=N`). When one does, a GET is sent again at once (the retry interceptor,
 * for a connection reset only); a POST goes back to its caller, whose retry knows whether a repeat is harmless.
 */
const dispatcher: Dispatcher = new Agent({ keepAliveTimeout: 4_000, connections: 64 }).compose(
  interceptors.retry({
    methods: ["GET"],
    maxRetries: 1,
    minTimeout: 0,
    statusCodes: [],
    errorCodes: ["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"],
  }),
);

/** The error of a call that did not finish within its `timeoutMs`. */
export class ApiTimeoutError extends Error {
  readonly code = "ETIMEDOUT";
  constructor(timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`);
    this.name = "TimeoutError";
  }
}

/**
 * One call to an external API through undici. Rejects with the network error (its `code`, e.g. ECONNREFUSED, is in
 * the message) or `ApiTimeoutError`; any HTTP status resolves.
 */
export async function apiRequest(url: URL, request: ApiRequest): Promise<ApiResponse> {
  const signal = AbortSignal.timeout(request.timeoutMs);
  const maxBytes = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  let headers = request.headers;
  let body: string | Uint8Array | null = null;
  if (request.body instanceof FormData) {
    // Encoded as fetch encodes it (boundary, each part's headers): Node's global FormData is its own bundled undici's,
    // which this undici does not take as a body. Uploads are rare.
    const encoded = new Response(request.body);
    body = new Uint8Array(await encoded.arrayBuffer());
    headers = { ...headers, "content-type": encoded.headers.get("content-type") ?? "multipart/form-data" };
  } else if (request.body !== undefined) {
    body = request.body;
  }
  try {
    const response = await undiciRequest(url, { method: request.method, headers, body, signal, dispatcher });
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > maxBytes) {
        response.body.destroy();
        throw new Error(`answer longer than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return {
      status: response.statusCode,
      headers: response.headers,
      text: Buffer.concat(chunks, length).toString("utf8"),
    };
  } catch (error) {
    if (signal.aborted) throw new ApiTimeoutError(request.timeoutMs);
    throw error;
  }
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
