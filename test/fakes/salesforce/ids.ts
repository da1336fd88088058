import { createHmac, randomBytes, randomUUID } from "node:crypto";

/** A UUID as the RFC writes it, lower case only (Salesforce refuses upper case: "The UUID must be in lowercase"). */
const LOWER_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Version 4 only, with the RFC variant nibble (8, 9, a or b), as the conversation id must be. */
const LOWER_UUID_V4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A conversation id Salesforce accepts: a lower-case version 4 UUID. */
export function isConversationUuid(value: unknown): value is string {
  return typeof value === "string" && LOWER_UUID_V4_RE.test(value);
}

/** An entry or file id: any lower-case RFC 4122 UUID (a name-based version 5 id is fine). */
export function isEntryUuid(value: unknown): value is string {
  return typeof value === "string" && LOWER_UUID_RE.test(value);
}

export function uuid(): string {
  return randomUUID();
}

const SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/** The 18-character, case-safe form of a 15-character Salesforce id (three checksum characters). */
export function to18(id15: string): string {
  let suffix = "";
  for (let chunk = 0; chunk < 3; chunk += 1) {
    let bits = 0;
    for (let i = 0; i < 5; i += 1) {
      const char = id15.charAt(chunk * 5 + i);
      if (char >= "A" && char <= "Z") bits |= 1 << i;
    }
    suffix += SUFFIX_ALPHABET.charAt(bits);
  }
  return id15 + suffix;
}

/** A Salesforce-looking record id with the given 3-character key prefix, 15 characters. */
export function recordId(prefix: string, n: number): string {
  return `${prefix}5g${String(n).padStart(10, "0")}`.slice(0, 15);
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString("base64url");
}

export interface AccessTokenClaims {
  sub: string;
  /** Seconds since the epoch. */
  exp: number;
  iat: number;
  orgId: string;
  esDeveloperName: string;
  clientId: string;
}

/**
 * A JWT-shaped access token (ES256 header, the claims a client reads: `sub`, `exp`), signed with a per-fake key
 * so that a token from another fake or a hand-edited one is refused.
 */
export function signAccessToken(claims: AccessTokenClaims, key: Buffer): string {
  const head = base64url(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "fake-salesforce" }));
  const body = base64url(JSON.stringify(claims));
  const signature = createHmac("sha256", key).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${signature}`;
}

/** The claims of a token this fake signed, or undefined for anything else. */
export function verifyAccessToken(token: string, key: Buffer): AccessTokenClaims | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [head, body, signature] = parts as [string, string, string];
  const expected = createHmac("sha256", key).update(`${head}.${body}`).digest("base64url");
  if (signature !== expected) return undefined;
  try {
    return JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as AccessTokenClaims;
  } catch {
    return undefined;
  }
}

export function randomKey(): Buffer {
  return randomBytes(32);
}

/** Eight hex characters, the shape of a Live Agent affinity token ("878a1fa0"). */
export function affinityToken(): string {
  return randomBytes(4).toString("hex");
}

/** A Live Agent session key: `{session id}!{milliseconds}!{signature}` as in Salesforce's ReconnectSession example. */
export function sessionKey(sessionId: string): string {
  return `${sessionId}!${Date.now()}!${randomBytes(20).toString("base64")}`;
}
