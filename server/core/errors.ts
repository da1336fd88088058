import { errorCatalogue, type ErrorCode, type ErrorInfo } from "../../protocol/index.js";

/** The one error type every surface turns into an ack or an HTTP body. Branch on `code`, never on the message. */
export class GatewayError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message ?? errorCatalogue[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.status = options?.status ?? errorCatalogue[code].status;
  }

  toInfo(): ErrorInfo {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** A failure talking to an external system; `retryable` tells the outbox whether to try again. */
export class AdapterError extends GatewayError {
  constructor(
    readonly adapter: string,
    message: string,
    readonly retryable: boolean,
    readonly upstreamStatus?: number,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super("unavailable", message, undefined, options);
    this.name = "AdapterError";
    this.retryAfterMs = options?.retryAfterMs;
  }

  readonly retryAfterMs: number | undefined;
}

/** Turns zod issues into `details.fields`: one entry per failing path. */
export function invalidPayload(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
  message = "The payload is invalid.",
): GatewayError {
  const fields = issues.map((issue) => ({
    path:
      issue.path.map((segment) => (typeof segment === "symbol" ? segment.toString() : segment)).join(".") || "(root)",
    message: issue.message,
  }));
  return new GatewayError("invalid_payload", message, { fields });
}
