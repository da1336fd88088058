import { createPrivateKey, sign, type KeyObject } from "node:crypto";
import { z } from "zod";

/** The scope of every Dialogflow call (the API also takes `…/auth/dialogflow`; Google's clients ask for this one). */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/** The longest an assertion may live: Google refuses one whose `exp` is more than an hour after its `iat`. */
const ASSERTION_LIFETIME_SECONDS = 3600;

/**
 * A service account, as its key file describes it. The private key is held as a `KeyObject`: it signs, and it never
 * shows its material when the configuration is inspected or serialised (a `KeyObject` serialises as `{}`).
 */
export interface ServiceAccount {
  readonly clientEmail: string;
  /** `private_key_id`: the `kid` of what it signs, so that Google picks the right public key at once. */
  readonly keyId: string | undefined;
  readonly privateKey: KeyObject;
  /** Where its assertions are exchanged for access tokens: the key file's own `token_uri`. */
  readonly tokenUri: string;
  readonly projectId: string | undefined;
}

const KeyFileSchema = z.looseObject({
  type: z.literal("service_account", { error: 'has no "type": "service_account"' }),
  client_email: z.string({ error: "has no client_email" }).min(1, "has no client_email"),
  private_key: z.string({ error: "has no private_key" }).min(1, "has no private_key"),
  private_key_id: z.string().optional(),
  token_uri: z.string({ error: "has no token_uri" }).min(1, "has no token_uri"),
  project_id: z.string().optional(),
});

/**
 * Whether assertions may be posted to this token endpoint: https, or plain http to this machine only (a signed
 * assertion buys an hour's access token; it must not cross a network in clear text).
 */
function tokenUriProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "has a token_uri that is not a URL";
  }
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) return undefined;
  return "has a token_uri that is not https";
}

/**
 * Reads a service-account key file's JSON. Returns the account, or what is wrong with it, in words that never quote
 * the file (it holds a private key).
 */
export function parseServiceAccount(json: string): ServiceAccount | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { problem: "is not JSON (expected a service account key file)" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { problem: "is not a service account key (expected a JSON object)" };
  }
  const parsed = KeyFileSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0]?.message ?? "is not a service account key";
    return { problem: `is not a service account key: it ${first}` };
  }
  const key = parsed.data;
  const uriProblem = tokenUriProblem(key.token_uri);
  if (uriProblem !== undefined) return { problem: `is not a usable service account key: it ${uriProblem}` };
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.private_key);
  } catch {
    return { problem: "is not a usable service account key: its private_key is not a PEM private key" };
  }
  if (privateKey.asymmetricKeyType !== "rsa") {
    return { problem: "is not a usable service account key: its private_key is not an RSA key" };
  }
  return {
    clientEmail: key.client_email,
    keyId: key.private_key_id === "" ? undefined : key.private_key_id,
    privateKey,
    tokenUri: key.token_uri,
    projectId: key.project_id,
  };
}

/**
 * The JWT-bearer assertion Google's token endpoint exchanges for an access token: RS256, signed with the account's
 * key, for the key's own `token_uri` as audience, valid for an hour from `nowSeconds`.
 */
export function signAssertion(account: ServiceAccount, nowSeconds: number, scope = CLOUD_PLATFORM_SCOPE): string {
  const header = { alg: "RS256", typ: "JWT", ...(account.keyId === undefined ? {} : { kid: account.keyId }) };
  const claims = {
    iss: account.clientEmail,
    scope,
    aud: account.tokenUri,
    iat: nowSeconds,
    exp: nowSeconds + ASSERTION_LIFETIME_SECONDS,
  };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign("RSA-SHA256", Buffer.from(input), account.privateKey);
  return `${input}.${signature.toString("base64url")}`;
}

function base64url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}
