import type { ServerResponse } from "node:http";
import type { DialogflowEdition } from "./types.js";

/*
 * Google's API error model on the REST surface: `{"error": {"code", "message", "status", "details"?}}`, the HTTP
 * status being the canonical code's mapping (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
 * NOT_FOUND 404, RESOURCE_EXHAUSTED 429, INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504).
 */

export const CANONICAL: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** The messages Google's front end gives for a bare status. */
const DEFAULT_MESSAGES: Record<number, string> = {
  400: "Request contains an invalid argument.",
  401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
  403: "The caller does not have permission",
  404: "Requested entity was not found.",
  409: "The operation was aborted.",
  429: "Quota exceeded for quota metric 'Dialogflow Trial Edition text query operations' and limit 'Dialogflow Trial Edition text query operations per minute' of service 'dialogflow.googleapis.com'",
  500: "Internal error encountered.",
  501: "Operation is not implemented, or supported, or enabled.",
  503: "The service is currently unavailable.",
  504: "Deadline expired before operation could complete.",
};

export const MISSING_CREDENTIALS =
  "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
export const INVALID_CREDENTIALS = DEFAULT_MESSAGES[401] as string;
export const INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes.";

export class GoogleApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: unknown[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body(): { error: Record<string, unknown> } {
    return {
      error: {
        code: this.code,
        message: this.message,
        status: CANONICAL[this.code] ?? "UNKNOWN",
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export function statusError(code: number, headers: Record<string, string> = {}): GoogleApiError {
  return new GoogleApiError(code, DEFAULT_MESSAGES[code] ?? "Unknown error.", undefined, headers);
}

export function invalidArgument(message: string, field?: string): GoogleApiError {
  return new GoogleApiError(400, message, [
    {
      "@type": "type.googleapis.com/google.rpc.BadRequest",
      fieldViolations: [{ ...(field === undefined ? {} : { field }), description: message }],
    },
  ]);
}

/** An authentication failure with the ErrorInfo Google attaches (service and method of the call). */
export function authError(
  code: 401 | 403,
  message: string,
  reason: string,
  edition: DialogflowEdition,
): GoogleApiError {
  return new GoogleApiError(code, message, [
    {
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason,
      domain: "googleapis.com",
      metadata: {
        service: "dialogflow.googleapis.com",
        method:
          edition === "es"
            ? "google.cloud.dialogflow.v2.Sessions.DetectIntent"
            : "google.cloud.dialogflow.cx.v3.Sessions.DetectIntent",
      },
    },
  ]);
}

export function sendGoogleError(res: ServerResponse, error: GoogleApiError): void {
  res.writeHead(error.code, {
    "content-type": "application/json; charset=UTF-8",
    vary: "Origin, X-Origin, Referer",
    ...error.headers,
  });
  res.end(JSON.stringify(error.body, null, 2));
}

/** Google's front end answers an unknown path (or method) with its HTML page, not the JSON error model. */
export function sendNotFoundPage(res: ServerResponse, path: string): void {
  res.writeHead(404, { "content-type": "text/html; charset=UTF-8" });
  res.end(
    `<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n` +
      `  <p><b>404.</b> <ins>That’s an error.</ins>\n` +
      `  <p>The requested URL <code>${path.replace(/[<>&]/g, "")}</code> was not found on this server.  <ins>That’s all we know.</ins>\n`,
  );
}

/** The OAuth token endpoint's error body. */
export function sendOAuthError(res: ServerResponse, status: number, error: string, description: string): void {
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-cache, no-store, max-age=0, must-revalidate",
    pragma: "no-cache",
  });
  res.end(JSON.stringify({ error, error_description: description }, null, 2));
}
