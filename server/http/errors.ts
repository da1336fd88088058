import type { ErrorRequestHandler, RequestHandler, Response } from "express";
import type { ErrorBody } from "../../protocol/index.js";
import { GatewayError } from "../core/errors.js";
import type { Logger } from "../logger.js";

/** The HTTP body of every refusal: `{ "error": { "code", "message" } }`. */
export const errorBody = (error: GatewayError): ErrorBody => ({ error: error.toInfo() });

/** A POST refused while the node shuts down: the sender retries on another node (with `Retry-After: 1`). */
export const shuttingDownError = (): GatewayError =>
  new GatewayError("unavailable", "This node is shutting down; retry.");

export function sendError(res: Response, error: GatewayError): void {
  res.status(error.status).json(errorBody(error));
}

/** Unknown routes: a JSON 404 like every other error. */
export const notFound: RequestHandler = (req, res) => {
  sendError(res, new GatewayError("not_found", `No route for ${req.method} ${req.path}.`));
};

/** Body parser failures are the client's; GatewayErrors carry their status; anything else is logged and 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    if (error instanceof GatewayError) {
      sendError(res, error);
      return;
    }
    if (error instanceof URIError) {
      // A path with a malformed percent-encoding (`/%ff`): the client's mistake, not worth a stack in the log.
      sendError(res, new GatewayError("invalid_payload", "The path is not valid: malformed percent-encoding."));
      return;
    }
    const parserType = (error as { type?: unknown }).type;
    if (parserType === "entity.parse.failed") {
      sendError(res, new GatewayError("invalid_payload", "The body is not valid JSON."));
    } else if (parserType === "entity.too.large") {
      sendError(res, new GatewayError("payload_too_large"));
    } else if (parserType === "encoding.unsupported" || parserType === "charset.unsupported") {
      sendError(res, new GatewayError("invalid_payload", "Unsupported body encoding.", undefined, { status: 415 }));
    } else if (isClientError(error)) {
      // The body parser's other refusals (a corrupt gzip/deflate/br body, an aborted upload) are the client's too.
      sendError(res, new GatewayError("invalid_payload", "The body could not be read.", undefined, { status: 400 }));
    } else {
      logger.error({ err: error, method: req.method, path: req.path }, "request failed");
      sendError(res, new GatewayError("internal"));
    }
  };
}

function isClientError(error: unknown): boolean {
  const { status, expose } = error as { status?: unknown; expose?: unknown };
  return expose === true && typeof status === "number" && status >= 400 && status < 500;
}
