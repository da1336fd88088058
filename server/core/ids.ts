import { randomFillSync } from "node:crypto";

/**
 * Random bytes are drawn from the CSPRNG 4 KiB at a time and handed out in slices, as Node's own `randomUUID`
 * does for its ids: a `randomBytes(16)` per id is a call into OpenSSL each time, and a send without a client id, a
 * join or an init makes one to five ids. Each byte is handed out once.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `bytes` fresh random bytes (at most the pool's size), URL-safe base64. */
function randomBase64url(bytes: number): string {
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const text = pool.toString("base64url", offset, offset + bytes);
  offset += bytes;
  return text;
}

/** 128 random bits, URL-safe. */
const random128 = (): string => randomBase64url(16);

export const newConversationId = (): string => `c_${random128()}`;
export const newMessageId = (): string => `m_${random128()}`;
export const newParticipantId = (): string => `p_${random128()}`;
export const newRequestId = (): string => `r_${random128()}`;
/** Customer tokens carry 256 random bits (the protocol asks for at least 128). */
export const newCustomerToken = (): string => randomBase64url(32);
