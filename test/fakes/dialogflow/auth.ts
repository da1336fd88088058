import { generateKeyPair, randomBytes, randomInt, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { promisify } from "node:util";
import { authError, INSUFFICIENT_SCOPES, INVALID_CREDENTIALS, MISSING_CREDENTIALS, sendOAuthError } from "./errors.js";
import { decodeJwt, publicKeyOf, verifyRs256, type DecodedJwt } from "./jwt.js";
import type { DialogflowAuth, DialogflowEdition, IssuedToken, ServiceAccountKey, TokenRequest } from "./types.js";

/*
 * Google's side of a service account: the OAuth token endpoint (the JWT-bearer grant that google-auth-library's
 * gtoken uses: a form post of `grant_type` and an RS256 `assertion` with iss, scope, aud, iat, exp ≤ 1 h), and the
 * API's check of the bearer token (an access token it issued, or a self-signed JWT as google-auth-library's JWTAccess
 * sends when it skips the token endpoint).
 */

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** The audience google-auth-library signs its assertions for, whatever the key file's token_uri says. */
const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";
/** Scopes that grant dialogflow.sessions.detectIntent (the API's discovery document lists these two). */
const DIALOGFLOW_SCOPES = [
  "https://www.googleapis.com/auth/cloud-platform",
  "https://www.googleapis.com/auth/dialogflow",
];
const MAX_LIFETIME_SECONDS = 3600;
/** How far in the future `iat` may be (clock skew); Google's own tolerance is not documented. */
const SKEW_SECONDS = 300;
const SHORT_LIVED =
  "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
const SELF_SIGNED_AUDIENCE = /^https:\/\/([a-z0-9-]+-)?dialogflow\.googleapis\.com\/$/;

const generateKeyPairAsync = promisify(generateKeyPair);

export async function newKeyPair(): Promise<{ privateKey: string; keyId: string }> {
  const { privateKey } = await generateKeyPairAsync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKey, keyId: randomBytes(20).toString("hex") };
}

export function keyFile(
  projectId: string,
  clientEmail: string,
  tokenUri: string,
  pair: { privateKey: string; keyId: string },
): ServiceAccountKey {
  return {
    type: "service_account",
    project_id: projectId,
    private_key_id: pair.keyId,
    private_key: pair.privateKey,
    client_email: clientEmail,
    client_id: String(randomInt(1, 10)) + Array.from({ length: 20 }, () => randomInt(0, 10)).join(""),
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: tokenUri,
    auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
    universe_domain: "googleapis.com",
  };
}

interface Account {
  clientEmail: string;
  keyId: string;
  publicKey: KeyObject;
}

type Claims = Record<string, unknown>;

class OAuthRefusal extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

export class Auth {
  readonly issued = new Map<string, IssuedToken>();
  readonly requests: TokenRequest[] = [];
  lifetimeSeconds: number;
  denied = false;
  private readonly account: Account;

  constructor(
    key: ServiceAccountKey,
    private readonly tokenUri: string,
    lifetimeSeconds: number,
  ) {
    this.account = {
      clientEmail: key.client_email,
      keyId: key.private_key_id,
      publicKey: publicKeyOf(key.private_key),
    };
    this.lifetimeSeconds = lifetimeSeconds;
  }

  expireAll(): void {
    const now = Date.now();
    for (const token of this.issued.values()) token.expiresAt = Math.min(token.expiresAt, now);
  }

  /** `POST /token`: the JWT-bearer grant. */
  handleToken(req: IncomingMessage, raw: Buffer, res: ServerResponse): void {
    const record: TokenRequest = { seq: this.requests.length + 1, at: Date.now(), status: 0 };
    this.requests.push(record);
    try {
      // Only a form body is read: a JSON body leaves grant_type empty, as Google's endpoint does.
      const form = /^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "")
        ? new URLSearchParams(raw.toString("utf8"))
        : new URLSearchParams();
      const grantType = form.get("grant_type") ?? "";
      record.grantType = grantType;
      if (grantType !== JWT_BEARER) {
        throw new OAuthRefusal(400, "unsupported_grant_type", `Invalid grant_type: ${grantType}`);
      }
      const assertion = form.get("assertion");
      if (assertion === null || assertion === "") {
        throw new OAuthRefusal(400, "invalid_request", "Missing required parameter: assertion");
      }
      const jwt = decodeJwt(assertion);
      if (!jwt) throw new OAuthRefusal(400, "invalid_grant", "Invalid JWT Signature.");
      record.header = jwt.header;
      record.claims = jwt.claims;
      const { claims } = jwt;
      if (typeof claims.iss === "string") record.clientEmail = claims.iss;
      if (claims.iss !== this.account.clientEmail) {
        throw new OAuthRefusal(400, "invalid_grant", "Invalid grant: account not found");
      }
      if (!this.signedByAccount(jwt)) throw new OAuthRefusal(400, "invalid_grant", "Invalid JWT Signature.");
      if (claims.aud !== this.tokenUri && claims.aud !== GOOGLE_TOKEN_URL) {
        throw new OAuthRefusal(
          400,
          "invalid_grant",
          `Invalid JWT: Failed audience check. The right audience is ${this.tokenUri}`,
        );
      }
      if (!shortLived(claims)) throw new OAuthRefusal(400, "invalid_grant", SHORT_LIVED);
      // Domain-wide delegation: a service account without it may not act for someone else.
      if (claims.sub !== undefined && claims.sub !== claims.iss) {
        throw new OAuthRefusal(
          401,
          "unauthorized_client",
          "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
      }
      const scopes = typeof claims.scope === "string" ? claims.scope.split(" ").filter((s) => s !== "") : [];
      if (scopes.length === 0 || scopes.some((s) => !s.startsWith("https://www.googleapis.com/auth/"))) {
        throw new OAuthRefusal(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
      }
      const accessToken = `ya29.c.${randomBytes(48).toString("base64url")}`;
      this.issued.set(accessToken, {
        accessToken,
        clientEmail: this.account.clientEmail,
        scopes,
        expiresAt: Date.now() + this.lifetimeSeconds * 1000,
      });
      record.status = 200;
      record.accessToken = accessToken;
      res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-cache, no-store, max-age=0, must-revalidate",
        pragma: "no-cache",
      });
      res.end(
        JSON.stringify({ access_token: accessToken, expires_in: this.lifetimeSeconds, token_type: "Bearer" }, null, 2),
      );
    } catch (error) {
      if (!(error instanceof OAuthRefusal)) throw error;
      record.status = error.status;
      record.error = error.error;
      record.errorDescription = error.description;
      sendOAuthError(res, error.status, error.error, error.description);
    }
  }

  /**
   * The API's check of `Authorization: Bearer …`. Throws Google's 401/403; returns who called. A token may also be a
   * self-signed JWT of the service account (for the Dialogflow audience, or with a Dialogflow scope).
   */
  authenticate(header: string | undefined, edition: DialogflowEdition): DialogflowAuth {
    if (header === undefined || header === "") {
      throw authError(401, MISSING_CREDENTIALS, "CREDENTIALS_MISSING", edition);
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw authError(401, INVALID_CREDENTIALS, "ACCESS_TOKEN_TYPE_UNSUPPORTED", edition);
    const token = match[1] as string;
    const issued = this.issued.get(token);
    if (issued) {
      if (issued.expiresAt <= Date.now()) throw authError(401, INVALID_CREDENTIALS, "ACCESS_TOKEN_EXPIRED", edition);
      if (!issued.scopes.some((s) => DIALOGFLOW_SCOPES.includes(s))) {
        throw authError(403, INSUFFICIENT_SCOPES, "ACCESS_TOKEN_SCOPE_INSUFFICIENT", edition);
      }
      return { kind: "access-token", clientEmail: issued.clientEmail, token };
    }
    const jwt = decodeJwt(token);
    if (jwt && this.selfSignedOk(jwt)) {
      return { kind: "self-signed-jwt", clientEmail: this.account.clientEmail, token };
    }
    throw authError(401, INVALID_CREDENTIALS, "ACCESS_TOKEN_TYPE_UNSUPPORTED", edition);
  }

  private signedByAccount(jwt: DecodedJwt): boolean {
    if (jwt.header.kid !== undefined && jwt.header.kid !== this.account.keyId) return false;
    return verifyRs256(jwt, this.account.publicKey);
  }

  private selfSignedOk(jwt: DecodedJwt): boolean {
    const { claims } = jwt;
    if (claims.iss !== this.account.clientEmail) return false;
    if (claims.sub !== undefined && claims.sub !== claims.iss) return false;
    if (!this.signedByAccount(jwt) || !shortLived(claims)) return false;
    const scoped =
      typeof claims.scope === "string" && claims.scope.split(" ").some((s) => DIALOGFLOW_SCOPES.includes(s));
    return scoped || (typeof claims.aud === "string" && SELF_SIGNED_AUDIENCE.test(claims.aud));
  }
}

/** iat and exp present, exp in the future, at most an hour after iat, iat not ahead of the clock. */
function shortLived(claims: Claims): boolean {
  const { iat, exp } = claims;
  if (typeof iat !== "number" || typeof exp !== "number") return false;
  const now = Date.now() / 1000;
  return exp > now && exp > iat && exp - iat <= MAX_LIFETIME_SECONDS && iat <= now + SKEW_SECONDS;
}
