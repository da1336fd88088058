import type { Response } from "express";

/**
 * How Rocket.Chat's REST layer turns a thrown error into a response (ApiClass.ts, spec a.0):
 * a plain `Error('x')` → 400 `{success:false, error:"x"}`; a `Meteor.Error(code, reason, details)` →
 * 400 `{success:false, error:"<reason> [<code>]", errorType: code, details?}`, except `error-unauthorized`
 * (→ 403 without errorType) and `error-too-many-requests` (→ 429 without errorType).
 */

/** `throw new Error(message)` in an RC handler. */
export class RcPlainError extends Error {}

/** `throw new Meteor.Error(code, reason?, details?)`. Its message is `"<reason> [<code>]"`, or `"[<code>]"`. */
export class RcMeteorError extends Error {
  constructor(
    readonly code: string,
    readonly reason?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(reason === undefined ? `[${code}]` : `${reason} [${code}]`);
  }
}

/** A response the handler returns directly (`API.v1.unauthorized()`, `API.v1.failure({reason})`, …). */
export class RcDirectResponse extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(`direct ${status}`);
  }
}

/**
 * `API.v1.forbidden()`, used by `livechat/upload` for every visitor denial: `"unauthorized"` before 8.0, `"forbidden"`
 * from 8.0 (`shouldBreakInVersion('8.0.0')`).
 */
export function forbidden(version: number): RcDirectResponse {
  return new RcDirectResponse(403, { success: false, error: version >= 8 ? "forbidden" : "unauthorized" });
}

/** `API.v1.failure(object)`: 400 with the object and `success:false` appended. */
export function failureObject(body: Record<string, unknown>): RcDirectResponse {
  return new RcDirectResponse(400, { ...body, success: false });
}

/** The 401 of an `authRequired` route: its `status`/`message` pair is gone from 8.0. */
export function loggedOutBody(version: number): Record<string, unknown> {
  return version >= 8
    ? { success: false, error: "You must be logged in to do this." }
    : {
        success: false,
        error: "You must be logged in to do this.",
        status: "error",
        message: "You must be logged in to do this.",
      };
}

export function sendSuccess(res: Response, body: Record<string, unknown> = {}): void {
  res.status(200).json({ ...body, success: true });
}

export function sendError(res: Response, error: unknown): void {
  if (error instanceof RcDirectResponse) {
    res.set(error.headers).status(error.status).json(error.body);
    return;
  }
  if (error instanceof RcMeteorError) {
    if (error.code === "error-unauthorized") {
      res.status(403).json({ success: false, error: error.message });
      return;
    }
    if (error.code === "error-too-many-requests") {
      res.status(429).json({ success: false, error: error.message });
      return;
    }
    res.status(400).json({
      success: false,
      error: error.message,
      errorType: error.code,
      ...(error.details === undefined ? {} : { details: error.details }),
    });
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  res.status(400).json({ success: false, error: message });
}
