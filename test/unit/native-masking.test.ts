import { describe, expect, it } from "vitest";
import { nativeMasking } from "../../server/socket/native-masking.js";

describe("ws's frame masking", () => {
  it("is native here: bufferutil is installed with a prebuilt binary for this platform", () => {
    expect(nativeMasking({})).toBe(true);
  });

  it("is JavaScript when WS_NO_BUFFER_UTIL tells ws not to load bufferutil", () => {
    expect(nativeMasking({ WS_NO_BUFFER_UTIL: "1" })).toBe(false);
  });
});
