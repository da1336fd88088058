import { beforeAll, describe, expect, it } from "vitest";
import { glyphRuns, loadFonts, type TranscriptFonts } from "../../server/transcript/fonts.js";

const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;

describe("glyphRuns", () => {
  let fonts: TranscriptFonts;
  beforeAll(async () => {
    fonts = await loadFonts();
  });

  const runs = (text: string, face: "regular" | "bold" = "regular") =>
    glyphRuns(fonts, text, face).map((run) => [run.font, run.text]);

  it("gives every run a font that has a glyph for each of its characters", () => {
    const line = "Hi Ana! Заказ 8812 · 您好，退款 · नमस्ते दुनिया · شکریہ · שלום · 👍🏽❤️👨‍👩‍👧 1️⃣ 🇵🇰 é";
    for (const face of ["regular", "bold", "oblique"] as const) {
      const found = glyphRuns(fonts, line, face);
      expect(found.map((run) => run.text).join("")).not.toContain("\uFFFD");
      for (const run of found) {
        for (const char of run.text) {
          if (IGNORABLE.test(char)) continue;
          expect(fonts.covers(run.font, char.codePointAt(0) ?? 0), `${run.font} for ${char}`).toBe(true);
        }
      }
    }
  });

  it("splits a line mixing scripts into one run per covering font", () => {
    expect(runs("Order 退款 ठीक 👍 ok")).toEqual([
      ["regular", "Order "],
      ["cjk", "退款"],
      ["regular", " "],
      ["devanagari", "ठीक"],
      ["regular", " "],
      ["emoji", "👍"],
      ["regular", " ok"],
    ]);
    expect(runs("Ali ठीक", "bold")).toEqual([
      ["bold", "Ali "],
      ["devanagariBold", "ठीक"],
    ]);
  });

  it("keeps an emoji sequence in one run of the emoji font, so that it is shaped as one emoji", () => {
    expect(runs("👨‍👩‍👧")).toEqual([["emoji", "👨‍👩‍👧"]]);
    expect(runs("👍🏽")).toEqual([["emoji", "👍🏽"]]);
    // DejaVu has a heart symbol; followed by the emoji selector it is the emoji.
    expect(runs("❤️")).toEqual([["emoji", "❤️"]]);
    expect(runs("❤")).toEqual([["regular", "❤"]]);
  });

  it("keeps combining marks with their letter, and draws what no font has as U+FFFD", () => {
    expect(runs("e\u0301")).toEqual([["regular", "e\u0301"]]);
    expect(runs("\u{10FFFD}")).toEqual([["regular", "\uFFFD"]]);
  });
});
