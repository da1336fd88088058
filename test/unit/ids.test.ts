import { describe, expect, it } from "vitest";
import {
  newConversationId,
  newCustomerToken,
  newMessageId,
  newParticipantId,
  newRequestId,
} from "../../server/core/ids.js";

describe("ids", () => {
  it("carry 128 random bits (256 for customer tokens), URL-safe, with their kind's prefix", () => {
    expect(newConversationId()).toMatch(/^c_[A-Za-z0-9_-]{22}$/);
    expect(newMessageId()).toMatch(/^m_[A-Za-z0-9_-]{22}$/);
    expect(newParticipantId()).toMatch(/^p_[A-Za-z0-9_-]{22}$/);
    expect(newRequestId()).toMatch(/^r_[A-Za-z0-9_-]{22}$/);
    expect(newCustomerToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("never repeat, across many refills of the random pool and with sizes mixed", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      seen.add(newMessageId().slice(2));
      seen.add(newCustomerToken());
      // A 16-byte id's bytes must not reappear inside a token either: compare the raw bytes of both.
      seen.add(Buffer.from(newConversationId().slice(2), "base64url").toString("hex"));
    }
    expect(seen.size).toBe(15_000);
  });

  it("spread over every bit: each of the 128 bit positions is set in about half of 4,000 ids", () => {
    const ones = new Array<number>(128).fill(0);
    const count = 4_000;
    for (let i = 0; i < count; i++) {
      const bytes = Buffer.from(newMessageId().slice(2), "base64url");
      for (let bit = 0; bit < 128; bit++) if ((bytes[bit >> 3]! >> (bit & 7)) & 1) ones[bit]!++;
    }
    // Binomial(4000, 0.5): mean 2000, sd ≈ 32; ±250 is about 8 sd.
    for (const n of ones) expect(Math.abs(n - count / 2)).toBeLessThan(250);
  });
});
