import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Request, Response } from "express";
import { GatewayError } from "../core/errors.js";
import type { Logger } from "../logger.js";
import { corsPolicy } from "./cors.js";
import { errorBody, shuttingDownError } from "./errors.js";

/** What a fast route answers on success. */
export interface FastAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * A POST endpoint taking JSON: the request's headers and parsed body in, its answer out; a GatewayError is a refusal.
 */
export type FastJsonHandler = (headers: IncomingHttpHeaders, body: unknown) => Promise<FastAnswer>;

/** The same handler as an express route, for the requests the fast path leaves to express (after its parsers). */
export function expressFastJson(handler: FastJsonHandler): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    const answer = await handler(req.headers, req.body);
    res.status(answer.status).type(answer.contentType).send(answer.body);
  };
}

export interface FastJsonRoute {
  handler: FastJsonHandler;
  /**
   * The body is JSON whatever the Content-Type says, or without one (RapidPro's flow webhooks: flow authors may delete
   * the header). As in the express app, such a body is read by the route's own parser, after `authorize`; one that
   * says `application/json` is read first, by the app's parser, so a bad body is refused before a bad token.
   */
  anyContentType?: boolean;
  /** Checks the request's credentials; throws a GatewayError to refuse it. */
  authorize?: (headers: IncomingHttpHeaders) => void;
}

export interface FastJsonOptions {
  /** The JSON body parser's limit (`MAX_PAYLOAD_BYTES`). */
  maxBytes: number;
  corsOrigins: readonly string[];
  isShuttingDown: () => boolean;
  logger: Logger;
}

/**
 * The hot inbound endpoints — a desk's webhook (one call per agent message), RapidPro's `sendMessageToAgent` (one per
 * contact message) — answered by `node:http` directly instead of through express. On this path express cost more
 * than the rest of the request: its per-request prototype swaps on `req` and `res` leave V8's property caches
 * megamorphic in Node's own HTTP code too, and its router walks every layer (a webhook through express: 230–430 µs
 * of CPU here, through `node:http` 80–90 µs).
 *
 * Only the plain case is taken: `POST` to one of `routes`' exact paths (no query string) with a JSON body
 * (`application/json`, or any type for a route that reads any, UTF-8, not compressed); for anything else the
 * function returns false and the caller hands the request to the express app, whose body parser and error handler
 * answer it as before. A request taken is answered as express's stack answers it: the `nosniff` and CORS headers, 503
 * with `Retry-After` while shutting down, the body parser's limit (413) and strict JSON (400, the same error bodies),
 * a GatewayError as `{ error }` with its status, anything else logged and 500.
 */
export function fastJsonRoutes(
  routes: ReadonlyMap<string, FastJsonRoute>,
  options: FastJsonOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const cors = corsPolicy(options.corsOrigins);
  return (req, res) => {
    if (req.method !== "POST" || req.url === undefined) return false;
    const route = routes.get(req.url);
    if (route === undefined) return false;
    const declaredJson = isPlainJson(req.headers);
    if (!declaredJson && !(route.anyContentType === true && isPlainBody(req.headers))) return false;
    res.setHeader("X-Content-Type-Options", "nosniff");
    cors(req.headers.origin, (name, value) => res.setHeader(name, value));
    if (options.isShuttingDown()) {
      res.setHeader("Retry-After", "1");
      writeError(res, shuttingDownError());
      return true;
    }
    const authorize = () => route.authorize?.(req.headers);
    const body = declaredJson
      ? readJson(req, options.maxBytes).then((parsed) => {
          authorize();
          return parsed;
        })
      : Promise.resolve()
          .then(authorize)
          .then(() => readJson(req, options.maxBytes));
    body
      .then((parsed) => route.handler(req.headers, parsed))
      .then((answer) => write(res, answer.status, answer.contentType, answer.body))
      .catch((error: unknown) => {
        if (error instanceof GatewayError) {
          writeError(res, error);
        } else {
          options.logger.error({ err: error, method: req.method, path: req.url }, "request failed");
          writeError(res, new GatewayError("internal"));
        }
      });
    return true;
  };
}

/** `application/json` with no parameter but `charset=utf-8`, and no content coding: what the fast path reads itself. */
function isPlainJson(headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  if (type === undefined || !isPlainBody(headers)) return false;
  return type.split(";")[0]?.trim().toLowerCase() === "application/json";
}

/** No content coding, and no Content-Type parameter but `charset=utf-8` (or no Content-Type at all). */
function isPlainBody(headers: IncomingHttpHeaders): boolean {
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity") return false;
  const params = (headers["content-type"] ?? "").split(";").slice(1);
  return params.every((param) => /^\s*charset\s*=\s*"?utf-8"?\s*$/i.test(param));
}

/**
 * The body as express's JSON parser (`strict`) gives it: `undefined` without a body (no length, not chunked), `{}` for
 * an empty one, else the parsed object or array; 413 past `maxBytes`, 400 for anything but a JSON object or array.
 */
function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = req.headers["content-length"];
  if (declared === undefined && req.headers["transfer-encoding"] === undefined) return Promise.resolve(undefined);
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(new GatewayError("payload_too_large"));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        req.off("data", onData);
        reject(new GatewayError("payload_too_large"));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("error", () => reject(new GatewayError("invalid_payload", "The body could not be read.")));
    req.once("end", () => {
      if (bytes > maxBytes) return;
      let text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString("utf8");
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.length === 0) {
        resolve({});
        return;
      }
      const first = /^[ \t\n\r]*(.)/.exec(text)?.[1];
      try {
        if (first !== "{" && first !== "[") throw new SyntaxError("not an object or array");
        resolve(JSON.parse(text));
      } catch {
        reject(new GatewayError("invalid_payload", "The body is not valid JSON."));
      }
    });
  });
}

function writeError(res: ServerResponse, error: GatewayError): void {
  write(res, error.status, "application/json; charset=utf-8", JSON.stringify(errorBody(error)));
}

function write(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}
