import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { AccountsError } from "./errors.js";
import type { FakeState } from "./state.js";
import type { CustomerToken } from "./types.js";
import { isRecord, uuid } from "./util.js";

/*
 * The accounts server's customer-token endpoint (`POST /v2/customer/token`), agent_token grant: a backend holding an
 * agent's OAuth token (scope `customers:own`) creates customers, or gets a fresh token for an existing one by
 * `entity_id`. There is no refresh token: an expired customer token is replaced by asking again with the entity id.
 */

export interface CustomerTokenRecord {
  token: string;
  entityId: string;
  clientId: string;
  expiresAtMs: number;
  state: "valid" | "expired" | "revoked";
}

export class CustomerTokens {
  private readonly records = new Map<string, CustomerTokenRecord>();
  private readonly listeners: ((record: CustomerTokenRecord) => void)[] = [];

  constructor(private readonly region: string) {}

  issue(entityId: string, clientId: string, ttlSeconds: number): CustomerTokenRecord {
    const record: CustomerTokenRecord = {
      token: `${this.region}:${randomBytes(18).toString("base64url")}`,
      entityId,
      clientId,
      expiresAtMs: Date.now() + ttlSeconds * 1000,
      state: "valid",
    };
    this.records.set(record.token, record);
    return record;
  }

  /** The token's record while it may be used; undefined when unknown, expired or revoked. */
  valid(token: string): CustomerTokenRecord | undefined {
    const record = this.records.get(token);
    if (!record) return undefined;
    if (record.state === "valid" && Date.now() >= record.expiresAtMs) this.invalidate(record, "expired");
    return record.state === "valid" ? record : undefined;
  }

  /** Called when a token stops being valid by a control (the RTM server disconnects its sockets). */
  onInvalidated(listener: (record: CustomerTokenRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Expires or revokes a token, or every valid token of an entity. */
  end(tokenOrEntityId: string, state: "expired" | "revoked"): number {
    const records = [...this.records.values()].filter(
      (r) => r.state === "valid" && (r.token === tokenOrEntityId || r.entityId === tokenOrEntityId),
    );
    if (records.length === 0) throw new Error(`no valid customer token for ${tokenOrEntityId}`);
    for (const record of records) this.invalidate(record, state);
    return records.length;
  }

  private invalidate(record: CustomerTokenRecord, state: "expired" | "revoked"): void {
    record.state = state;
    for (const listener of this.listeners) listener(record);
  }
}

export interface AccountsSettings {
  clientId: string;
  organizationId: string;
  customerTokenTtlSeconds: number;
}

const INVALID_REQUEST =
  "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";

export function accountsHandler(
  state: FakeState,
  tokens: CustomerTokens,
  settings: AccountsSettings,
): (req: IncomingMessage, res: ServerResponse, body: Buffer) => void {
  return (req, res, raw) => {
    const path = new URL(req.url ?? "/", "http://accounts").pathname;
    if (path !== "/v2/customer/token") {
      res
        .writeHead(404, { "content-type": "application/json" })
        .end(JSON.stringify({ oauth_exception: "resource_not_found", exception_description: "Not found" }));
      return;
    }
    try {
      const token = issueToken(state, tokens, settings, req, raw);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(token));
    } catch (error) {
      const failure =
        error instanceof AccountsError ? error : new AccountsError("server_error", "Internal server error", 500);
      res.writeHead(failure.status, { "content-type": "application/json" }).end(JSON.stringify(failure.body()));
    }
  };
}

function issueToken(
  state: FakeState,
  tokens: CustomerTokens,
  settings: AccountsSettings,
  req: IncomingMessage,
  raw: Buffer,
): CustomerToken {
  if (req.method !== "POST") throw new AccountsError("invalid_request", INVALID_REQUEST);
  // The documented calls post JSON, with or without a JSON Content-Type (curl -d sends form-urlencoded).
  let body: unknown;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new AccountsError("invalid_request", INVALID_REQUEST);
  }
  if (!isRecord(body)) throw new AccountsError("invalid_request", INVALID_REQUEST);
  const grantType = body.grant_type;
  if (typeof grantType !== "string") throw new AccountsError("invalid_request", INVALID_REQUEST);
  if (grantType !== "agent_token") {
    throw new AccountsError(
      "unsupported_grant_type",
      grantType === "cookie" || grantType === "identity_token"
        ? `The ${grantType} grant is refused: Liaison uses the agent_token grant only.`
        : "The authorization grant type is not supported by the authorization server.",
    );
  }
  if (typeof body.client_id !== "string" || body.client_id === "" || body.client_id !== settings.clientId) {
    throw new AccountsError(
      "unauthorized_client",
      "The client is not authorized to request a token using this method. (client_id_not_found)",
    );
  }
  if (body.response_type !== "token") {
    throw new AccountsError(
      body.response_type === undefined ? "invalid_request" : "unsupported_response_type",
      body.response_type === undefined
        ? INVALID_REQUEST
        : "The authorization server does not support obtaining a token using this method.",
    );
  }
  const authorization = req.headers.authorization;
  if (authorization === undefined || authorization === "") throw new AccountsError("invalid_request", INVALID_REQUEST);
  const [scheme, credential = ""] = authorization.split(" ", 2);
  if (scheme?.toLowerCase() !== "bearer") {
    throw new AccountsError(
      "invalid_grant",
      "The agent_token grant needs an agent's OAuth access token (Bearer); personal access tokens are not accepted.",
    );
  }
  const agentToken = state.agentTokens.get(credential);
  if (!agentToken || agentToken.expired) {
    throw new AccountsError(
      "invalid_grant",
      "The provided authorization grant is invalid, expired, revoked, or was issued to another client.",
    );
  }
  if (!agentToken.scopes.includes("customers:own")) {
    throw new AccountsError("access_denied", "The agent token lacks the customers:own scope.");
  }
  if (body.organization_id !== undefined && body.organization_id !== settings.organizationId) {
    throw new AccountsError("invalid_request", INVALID_REQUEST);
  }
  let ttl = settings.customerTokenTtlSeconds;
  if (body.expires_in !== undefined) {
    if (!Number.isInteger(body.expires_in) || (body.expires_in as number) <= 0) {
      throw new AccountsError("invalid_request", INVALID_REQUEST);
    }
    ttl = body.expires_in as number;
  }
  let entityId: string;
  if (body.entity_id === undefined) {
    entityId = state.createCustomer(settings.clientId, uuid()).id;
  } else {
    if (typeof body.entity_id !== "string" || !state.customers.has(body.entity_id)) {
      throw new AccountsError("resource_not_found", "The customer (entity_id) does not exist.");
    }
    entityId = body.entity_id;
  }
  const record = tokens.issue(entityId, settings.clientId, ttl);
  return {
    access_token: record.token,
    client_id: settings.clientId,
    entity_id: entityId,
    expires_in: ttl,
    token_type: "Bearer",
    organization_id: settings.organizationId,
  };
}
