import { describe, expect, it } from "vitest";
import { isoTimestamp } from "../../server/core/timestamps.js";

describe("isoTimestamp", () => {
  it("is toISOString for every instant, reusing the string only within one millisecond", () => {
    const base = Date.parse("2026-11-21T12:00:00.000Z");
    // Forwards, repeated, backwards (a test clock), across a second and a year boundary.
    const instants = [
      base,
      base,
      base + 1,
      base + 1,
      base,
      base + 999,
      base + 1_000,
      Date.parse("2026-12-31T23:59:59.999Z"),
      Date.parse("2027-01-01T00:00:00.000Z"),
    ];
    for (const ms of instants) expect(isoTimestamp(new Date(ms))).toBe(new Date(ms).toISOString());
    const first = isoTimestamp(new Date(base + 5));
    expect(isoTimestamp(new Date(base + 5))).toBe(first);
  });

  it("throws on an invalid date, as toISOString does", () => {
    expect(() => isoTimestamp(new Date(Number.NaN))).toThrow(RangeError);
  });
});
