import { createHash, timingSafeEqual } from "node:crypto";

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/**
 * Checks API keys in constant time: both sides are hashed to a fixed length first, so neither the key's length nor
 * its prefix leaks through timing.
 */
export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get configured(): boolean {
    return this.digests.length > 0;
  }

  verify(candidate: unknown): boolean {
    if (typeof candidate !== "string" || candidate.length === 0 || candidate.length > 1024) return false;
    const hashed = digest(candidate);
    let match = false;
    for (const known of this.digests) match = timingSafeEqual(known, hashed) || match;
    return match;
  }
}

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
