/**
 * LiveChat's error body, `{ "error": { "type", "message", "data"? } }`: the same object is the Web API's response
 * body and a failed RTM response's payload. The types and default messages are LiveChat's published catalogue; the
 * customer SDK adds `chat_limit_reached`, `chat_already_active` and `customer_session_fields_limit_reached` (its
 * `serverErrorCodes` are the wire types upper-cased). LiveChat does not publish an HTTP status per type: the statuses
 * below are this fake's choice (see README), and a client must branch on `type`, never on the status.
 */
export const ERROR_CATALOGUE = {
  authentication: { status: 401, message: "Authentication error" },
  authorization: { status: 403, message: "Authorization error" },
  chat_already_active: { status: 422, message: "Chat is already active" },
  chat_anonymized: { status: 422, message: "Chat anonymized" },
  chat_inactive: { status: 422, message: "Chat is inactive" },
  chat_limit_reached: { status: 422, message: "Chat limit reached" },
  customer_banned: { status: 403, message: "Customer is banned" },
  customer_session_fields_limit_reached: { status: 422, message: "Customer session fields limit reached" },
  entity_too_large: { status: 413, message: "Upload limit exceeded (10MB)." },
  greeting_not_found: { status: 404, message: "Greeting not found" },
  group_not_found: { status: 404, message: "Group not found" },
  group_offline: { status: 422, message: "Group is offline" },
  group_unavailable: { status: 422, message: "No agent available for group" },
  groups_offline: { status: 422, message: "Groups offline" },
  internal: { status: 500, message: "Internal server error" },
  license_expired: { status: 402, message: "License expired" },
  license_not_found: { status: 404, message: "License not found" },
  limit_reached: { status: 422, message: "Limit reached" },
  misdirected_request: { status: 421, message: "Wrong region" },
  not_allowed: { status: 403, message: "Not allowed" },
  not_found: { status: 404, message: "Not found" },
  pending_requests_limit_reached: { status: 429, message: "Requests limit reached" },
  request_timeout: { status: 504, message: "Request timed out" },
  service_unavailable: { status: 503, message: "Service unavailable" },
  too_many_requests: { status: 429, message: "Too many requests" },
  unsupported_version: { status: 400, message: "Cannot call unsupported API versions." },
  users_limit_reached: { status: 429, message: "Users limit reached" },
  validation: { status: 400, message: "Wrong format of request" },
  wrong_product_version: { status: 400, message: "Wrong product version" },
} as const satisfies Record<string, { status: number; message: string }>;

export type LcErrorType = keyof typeof ERROR_CATALOGUE;

export const LC_ERROR_TYPES = Object.keys(ERROR_CATALOGUE) as LcErrorType[];

/** One LiveChat error: thrown by an action, answered by the Web API or the RTM socket. */
export class LcError extends Error {
  readonly type: LcErrorType;
  readonly data: Record<string, unknown> | undefined;

  constructor(type: LcErrorType, message?: string, data?: Record<string, unknown>) {
    super(message ?? ERROR_CATALOGUE[type].message);
    this.type = type;
    this.data = data;
  }

  get status(): number {
    return ERROR_CATALOGUE[this.type].status;
  }

  body(): { error: { type: LcErrorType; message: string; data?: Record<string, unknown> } } {
    return {
      error: { type: this.type, message: this.message, ...(this.data === undefined ? {} : { data: this.data }) },
    };
  }
}

/** The message LiveChat answers for a missing, unknown or expired customer token (seen in its SDKs' tests). */
export const INVALID_TOKEN_MESSAGE = "Invalid access token";

/**
 * The accounts server's error body (its OpenAPI `Default error object`): `oauth_exception` is one of the OAuth
 * error codes, `exception_description` the human text.
 */
export class AccountsError extends Error {
  constructor(
    readonly exception: string,
    readonly description: string,
    readonly status = 401,
  ) {
    super(description);
  }

  body(): { oauth_exception: string; exception_description: string } {
    return { oauth_exception: this.exception, exception_description: this.description };
  }
}
