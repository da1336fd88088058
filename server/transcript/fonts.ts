import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The styles a transcript asks for; each is drawn in DejaVu Sans, with other fonts for what DejaVu lacks. */
export type Face = "regular" | "bold" | "oblique";

/** Every font a transcript may embed, by the name it is registered under in pdfkit. */
export type FontName = Face | "devanagari" | "devanagariBold" | "cjk" | "emoji";

export const FONT_NAMES: readonly FontName[] = [
  "regular",
  "bold",
  "oblique",
  "devanagari",
  "devanagariBold",
  "cjk",
  "emoji",
];

/**
 * Where each font comes from: `[package, path inside it]`. DejaVu Sans covers Latin, Greek, Cyrillic, Arabic-script
 * and Hebrew text; Noto Sans Devanagari adds Hindi, Marathi and Nepali (fontkit shapes its conjuncts and vowel
 * signs); Noto Sans CJK SC adds Chinese, simplified and traditional, and Japanese kana (the package's subset has
 * every unified ideograph of the basic block, but no Korean Hangul); Noto Emoji draws emoji in monochrome, which is what a PDF can carry portably. CJK and emoji have one weight only: a bold CJK face would be
 * another 8 MB to read for the sender's name alone.
 */
const SOURCES: Record<FontName, readonly [string, string]> = {
  regular: ["dejavu-fonts-ttf", "ttf/DejaVuSans.ttf"],
  bold: ["dejavu-fonts-ttf", "ttf/DejaVuSans-Bold.ttf"],
  oblique: ["dejavu-fonts-ttf", "ttf/DejaVuSans-Oblique.ttf"],
  devanagari: ["@expo-google-fonts/noto-sans-devanagari", "400Regular/NotoSansDevanagari_400Regular.ttf"],
  devanagariBold: ["@expo-google-fonts/noto-sans-devanagari", "700Bold/NotoSansDevanagari_700Bold.ttf"],
  cjk: ["@embedpdf/fonts-sc", "fonts/NotoSansHans-Regular.otf"],
  emoji: ["@expo-google-fonts/noto-emoji", "400Regular/NotoEmoji_400Regular.ttf"],
};

/** The order in which fonts are tried for a character of each face. */
const FALLBACK: Record<Face, readonly FontName[]> = {
  regular: ["regular", "bold", "oblique", "devanagari", "cjk", "emoji"],
  bold: ["bold", "regular", "oblique", "devanagariBold", "cjk", "emoji"],
  oblique: ["oblique", "regular", "bold", "devanagari", "cjk", "emoji"],
};

export interface TranscriptFonts {
  /** Each font's file, to register with pdfkit. */
  readonly files: Readonly<Record<FontName, Buffer>>;
  /** Whether `font` has a glyph for `codePoint`. */
  covers(font: FontName, codePoint: number): boolean;
}

let fontsLoading: Promise<TranscriptFonts> | undefined;

/** Reads every font once per thread (about 10 MB); later calls share the result. */
export function loadFonts(): Promise<TranscriptFonts> {
  if (fontsLoading === undefined) {
    fontsLoading = readFonts();
    // A failed read is not cached: the next transcript tries again.
    fontsLoading.catch(() => {
      fontsLoading = undefined;
    });
  }
  return fontsLoading;
}

async function readFonts(): Promise<TranscriptFonts> {
  const require = createRequire(import.meta.url);
  const entries = await Promise.all(
    FONT_NAMES.map(async (name) => {
      const [pkg, file] = SOURCES[name];
      const data = await readFile(join(packageRoot(require, pkg), file));
      return [name, { data, covers: coverage(data) }] as const;
    }),
  );
  const loaded = Object.fromEntries(entries) as Record<FontName, { data: Buffer; covers: (cp: number) => boolean }>;
  return {
    files: Object.fromEntries(FONT_NAMES.map((name) => [name, loaded[name].data])) as Record<FontName, Buffer>,
    covers: (font, codePoint) => loaded[font].covers(codePoint),
  };
}

/** The directory a package is installed in. */
function packageRoot(require: NodeJS.Require, pkg: string): string {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    // A package whose `exports` hide its package.json: found through its main file instead.
    const main = require.resolve(pkg);
    const marker = join("node_modules", pkg);
    return main.slice(0, main.lastIndexOf(marker) + marker.length);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Choosing a font per character

/** A piece of text drawn in one font. */
export interface GlyphRun {
  text: string;
  font: FontName;
}

const CONTROL = /\p{Cc}/u;
const SPACE = /\s/u;
const MARK = /\p{M}/u;
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
const EMOJI_MODIFIER = /\p{Emoji_Modifier}/u;
const EMOJI_PRESENTATION = /\p{Emoji_Presentation}/u;
const EMOJI_VARIATION = "\uFE0F";
const KEYCAP = "\u20E3";
export const REPLACEMENT = "\uFFFD";

/**
 * Urdu letters DejaVu Sans has no glyph for, drawn as the nearest Arabic letter it has (heh goal as heh, yeh barree as
 * Farsi yeh...). A reader sees the word; without this they would see blank boxes in common words such as شکریہ.
 */
const SUBSTITUTES: Readonly<Record<string, string>> = {
  "\u06C1": "\u0647",
  "\u06C2": "\u0647\u0654",
  "\u06C3": "\u0629",
  "\u06D2": "\u06CC",
  "\u06D3": "\u0626",
};

/**
 * Splits `text` into runs, each in a font that has a glyph for every character of it (pdfkit would draw a blank box
 * otherwise, and shaping works within one font only). Control characters become spaces (line breaks are the
 * caller's) or are dropped; a character no font has becomes U+FFFD.
 *
 * Emoji (characters shown as emoji by default, or followed by the emoji variation selector) prefer the emoji font,
 * so that a ❤️ or a ✌🏽 is one emoji rather than DejaVu's symbol next to a stray skin tone. Combining marks, joiners
 * and variation selectors stay in the font of the character they belong to, so that they are shaped with it.
 */
export function glyphRuns(fonts: TranscriptFonts, text: string, face: Face): GlyphRun[] {
  const runs: GlyphRun[] = [];
  const push = (char: string, font: FontName) => {
    const last = runs[runs.length - 1];
    if (last?.font === font) last.text += char;
    else runs.push({ text: char, font });
  };
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const raw = chars[i] ?? "";
    if (CONTROL.test(raw) && !SPACE.test(raw)) continue;
    const char = CONTROL.test(raw) ? " " : raw;
    const previous = runs[runs.length - 1]?.font;
    if (previous !== undefined && (IGNORABLE.test(char) || (MARK.test(char) && covers(fonts, previous, char)))) {
      push(char, previous);
      continue;
    }
    const next = chars[i + 1];
    const emoji = EMOJI_PRESENTATION.test(char) || next === EMOJI_VARIATION || next === KEYCAP;
    for (const [drawn, font] of resolve(fonts, char, face, emoji)) push(drawn, font);
  }
  return runs;
}

function resolve(fonts: TranscriptFonts, char: string, face: Face, emoji: boolean): [string, FontName][] {
  const order = emoji ? ["emoji" as const, ...FALLBACK[face]] : FALLBACK[face];
  const font = order.find((candidate) => covers(fonts, candidate, char));
  if (font !== undefined) return [[char, font]];
  const substitute = SUBSTITUTES[char];
  if (substitute !== undefined) return [...substitute].flatMap((part) => resolve(fonts, part, face, false));
  // A skin-tone modifier without its emoji is decoration: dropping it reads better than a box.
  if (EMOJI_MODIFIER.test(char)) return [];
  return [[REPLACEMENT, face]];
}

function covers(fonts: TranscriptFonts, font: FontName, char: string): boolean {
  return fonts.covers(font, char.codePointAt(0) ?? 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Coverage

/**
 * Which code points a TrueType or OpenType font has glyphs for, from its `cmap` (format 12, else format 4). A
 * binary search over the font's ranges: this is asked for every character of a transcript.
 */
function coverage(font: Buffer): (codePoint: number) => boolean {
  const starts: number[] = [];
  const ends: number[] = [];
  let cmap = -1;
  for (let i = 0, tables = font.readUInt16BE(4); i < tables; i++) {
    const record = 12 + i * 16;
    if (font.toString("latin1", record, record + 4) === "cmap") cmap = font.readUInt32BE(record + 8);
  }
  if (cmap < 0) throw new Error("font has no cmap table");
  let format4 = -1;
  let format12 = -1;
  for (let i = 0, subtables = font.readUInt16BE(cmap + 2); i < subtables; i++) {
    const record = cmap + 4 + i * 8;
    const platform = font.readUInt16BE(record);
    const encoding = font.readUInt16BE(record + 2);
    const offset = cmap + font.readUInt32BE(record + 4);
    if (platform !== 0 && !(platform === 3 && (encoding === 1 || encoding === 10))) continue;
    const format = font.readUInt16BE(offset);
    if (format === 12 && format12 < 0) format12 = offset;
    if (format === 4 && format4 < 0) format4 = offset;
  }
  if (format12 >= 0) {
    for (let i = 0, groups = font.readUInt32BE(format12 + 12); i < groups; i++) {
      const group = format12 + 16 + i * 12;
      starts.push(font.readUInt32BE(group));
      ends.push(font.readUInt32BE(group + 4));
    }
  } else if (format4 >= 0) {
    const segments = font.readUInt16BE(format4 + 6) / 2;
    for (let i = 0; i < segments; i++) {
      const end = font.readUInt16BE(format4 + 14 + i * 2);
      const start = font.readUInt16BE(format4 + 16 + segments * 2 + i * 2);
      if (start !== 0xffff) {
        starts.push(start);
        ends.push(end);
      }
    }
  } else {
    throw new Error("font has no Unicode cmap");
  }
  return (codePoint) => {
    let low = 0;
    let high = starts.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (codePoint < (starts[mid] ?? 0)) high = mid - 1;
      else if (codePoint > (ends[mid] ?? 0)) low = mid + 1;
      else return true;
    }
    return false;
  };
}
