import * as z from "zod";

/**
 * The error-code catalogue, shared by Socket.IO acks and HTTP bodies.
 * Callers branch on `code`; `status` is the HTTP status used on REST surfaces.
 */
export const errorCatalogue = {
  invalid_payload: { status: 400, message: "The payload is invalid." },
  unauthorized: { status: 401, message: "Authentication is required." },
  forbidden: { status: 403, message: "You are not allowed to do this." },
  not_found: { status: 404, message: "Not found." },
  conversation_ended: { status: 409, message: "The conversation has ended." },
  conflict: { status: 409, message: "This conflicts with the current state." },
  payload_too_large: { status: 413, message: "The payload is too large." },
  rate_limited: { status: 429, message: "Too many requests; retry later." },
  internal: { status: 500, message: "Internal error." },
  not_configured: { status: 501, message: "This feature is not configured on this gateway." },
  unavailable: { status: 503, message: "The service is temporarily unavailable." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export const errorCodes = Object.keys(errorCatalogue) as [ErrorCode, ...ErrorCode[]];

export const ErrorCodeSchema = z.enum(errorCodes);

/** The `error` object of a failed ack or an HTTP error body. */
export const ErrorInfoSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

/** HTTP error body: `{ "error": { code, message, details? } }`. */
export const ErrorBodySchema = z.object({ error: ErrorInfoSchema });
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** Socket.IO failure ack: `{ ok: false, error }`. */
export const AckFailureSchema = z.object({ ok: z.literal(false), error: ErrorInfoSchema });
export type AckFailure = z.infer<typeof AckFailureSchema>;
