import { describe, expect, it } from "vitest";
import { isoTimestamp, timestampMs } from "../../server/core/timestamps.js";

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

describe("timestampMs", () => {
  it("is Date.parse, for the timestamp made last and for any other", () => {
    const made = isoTimestamp(new Date(Date.parse("2026-12-07T21:30:00.123Z")));
    const others = ["2026-12-07T21:30:00.124Z", "2026-01-01T00:00:00Z", "2026-12-07T22:30:00.123+01:00", "", "soon"];
    for (const timestamp of [made, ...others]) expect(timestampMs(timestamp)).toBe(Date.parse(timestamp));
  });

  it("keeps what the last valid date made when an invalid one throws", () => {
    const made = isoTimestamp(new Date(Date.parse("2026-12-07T21:30:01.000Z")));
    expect(() => isoTimestamp(new Date(Number.NaN))).toThrow(RangeError);
    expect(timestampMs(made)).toBe(Date.parse("2026-12-07T21:30:01.000Z"));
    expect(isoTimestamp(new Date(Date.parse("2026-12-07T21:30:01.000Z")))).toBe(made);
  });
});
