import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

/*
 * Compact JWS with RS256, on node:crypto alone: what a service account signs (the token endpoint's assertion, or a
 * self-signed JWT used directly as a bearer token) and what Google checks.
 */

export type JwtHeader = { alg?: unknown; typ?: unknown; kid?: unknown } & Record<string, unknown>;
export type JwtClaims = Record<string, unknown>;

export interface DecodedJwt {
  header: JwtHeader;
  claims: JwtClaims;
  signingInput: string;
  signature: Buffer;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/**
 * Signs `claims` with a PEM private key (RSA-SHA256). The header is written as given: gtoken sends `{alg: "RS256"}`,
 * google-auth-library's JWTAccess `{alg: "RS256", typ: "JWT", kid}`.
 */
export function signJwt(
  claims: JwtClaims,
  privateKeyPem: string,
  header: Record<string, unknown> = { alg: "RS256", typ: "JWT" },
): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign("RSA-SHA256", Buffer.from(input), createPrivateKey(privateKeyPem));
  return `${input}.${base64url(signature)}`;
}

/** Splits and parses a compact JWS; `undefined` when it is not one (three base64url parts, JSON objects). */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]*$/.test(part))) return undefined;
  const [head, body, sig] = parts as [string, string, string];
  try {
    const header = JSON.parse(Buffer.from(head, "base64url").toString("utf8")) as unknown;
    const claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as unknown;
    if (!isObject(header) || !isObject(claims)) return undefined;
    return { header, claims, signingInput: `${head}.${body}`, signature: Buffer.from(sig, "base64url") };
  } catch {
    return undefined;
  }
}

/** Whether the JWS is RS256 and its signature verifies with `publicKey`. */
export function verifyRs256(jwt: DecodedJwt, publicKey: KeyObject): boolean {
  if (jwt.header.alg !== "RS256" || jwt.signature.length === 0) return false;
  return verify("RSA-SHA256", Buffer.from(jwt.signingInput), publicKey, jwt.signature);
}

export function publicKeyOf(privateKeyPem: string): KeyObject {
  return createPublicKey(createPrivateKey(privateKeyPem));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
