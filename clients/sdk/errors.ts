import type { ErrorCode } from "../../protocol/index.js";
import { checkAnswer, errorStatuses } from "./answers.js";

/**
 * Every code a {@link LiaisonError} can carry: the server's error codes, plus three the SDK produces itself:
 * `timeout` (no answer in time), `disconnected` (the socket went away, or the client was closed) and
 * `bad_response` (the server answered something that does not match the protocol).
 */
export type LiaisonErrorCode = ErrorCode | "timeout" | "disconnected" | "bad_response";

/** Extra fields of a {@link LiaisonError}. */
export interface LiaisonErrorOptions {
  /** The HTTP status, for errors from the REST API. */
  status?: number;
  /** The server's `details` (for `invalid_payload`, the failing fields). */
  details?: Record<string, unknown>;
  /** From `Retry-After` on a `429 rate_limited`. */
  retryAfterSeconds?: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** The one error type the SDK rejects with. Branch on {@link LiaisonError.code}, never on the message. */
export class LiaisonError extends Error {
  override readonly name = "LiaisonError";
  /** What went wrong, machine-readable. */
  readonly code: LiaisonErrorCode;
  /** The HTTP status, for errors from the REST API. */
  readonly status?: number;
  /** The server's `details`, if it sent any. */
  readonly details?: Record<string, unknown>;
  /** Seconds to wait before retrying, when the server said so. */
  readonly retryAfterSeconds?: number;

  /**
   * @param code - the error code
   * @param message - human-readable text (for logs, not for branching)
   * @param options - status, details, retry delay and cause
   */
  constructor(code: LiaisonErrorCode, message: string, options: LiaisonErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.status !== undefined) this.status = options.status;
    if (options.details !== undefined) this.details = options.details;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * Whether `error` is a {@link LiaisonError}, optionally with one of the given codes.
 *
 * @param error - anything caught
 * @param codes - accept only these codes (any code when empty)
 */
export function isLiaisonError(error: unknown, ...codes: LiaisonErrorCode[]): error is LiaisonError {
  return error instanceof LiaisonError && (codes.length === 0 || codes.includes(error.code));
}

/** Builds a {@link LiaisonError} from the `error` object of a failed ack or HTTP body, if it has the right shape. */
export function errorFromInfo(info: unknown, status?: number): LiaisonError | undefined {
  const checked = checkAnswer("errorInfo", info);
  if (!checked.ok) return undefined;
  const { code, message, details } = checked.value;
  const options: LiaisonErrorOptions = {};
  if (status !== undefined) options.status = status;
  if (details !== undefined) options.details = details;
  return new LiaisonError(code, message, options);
}

/** The code an HTTP status stands for when the body carries none (a proxy's error page, say). */
export function codeForStatus(status: number): LiaisonErrorCode {
  // 422 is what the transcript route answers when no e-mail address is on file.
  if (status === 422) return "invalid_payload";
  // 409 is shared by conflict and conversation_ended; only the body can tell them apart.
  if (status === 409) return "conflict";
  for (const [code, codeStatus] of Object.entries(errorStatuses)) {
    if (codeStatus === status) return code as ErrorCode;
  }
  if (status >= 500) return status === 502 || status === 504 ? "unavailable" : "internal";
  return "bad_response";
}
