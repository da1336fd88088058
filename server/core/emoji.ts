import { createRequire } from "node:module";

interface CompactEmoji {
  hexcode: string;
  unicode: string;
  skins?: CompactEmoji[];
}
type Shortcodes = Record<string, string | string[]>;

const require = createRequire(import.meta.url);

/**
 * Shortcode sets, most authoritative first: Rocket.Chat's emoji picker is JoyPixels (emoji-toolkit); agents also
 * type GitHub/Slack-style codes. The first set to define a code wins.
 */
const SHORTCODE_SETS = ["joypixels", "github", "iamcal"] as const;

let table: Map<string, string> | undefined;

function load(): Map<string, string> {
  const unicodeByHex = new Map<string, string>();
  const visit = (emoji: CompactEmoji) => {
    unicodeByHex.set(emoji.hexcode, emoji.unicode);
    emoji.skins?.forEach(visit);
  };
  (require("emojibase-data/en/compact.json") as CompactEmoji[]).forEach(visit);
  const byCode = new Map<string, string>();
  for (const set of SHORTCODE_SETS) {
    const codes = require(`emojibase-data/en/shortcodes/${set}.json`) as Shortcodes;
    for (const [hexcode, names] of Object.entries(codes)) {
      const unicode = unicodeByHex.get(hexcode);
      if (unicode === undefined) continue;
      for (const name of Array.isArray(names) ? names : [names]) {
        if (!byCode.has(name)) byCode.set(name, unicode);
      }
    }
  }
  return byCode;
}

/** The Unicode emoji of a shortcode (without colons), if it is one. */
export function emojiForShortcode(code: string): string | undefined {
  table ??= load();
  return table.get(code.toLowerCase());
}

// A shortcode stands alone: not glued to a word or number before it (so "10:30:00" and URLs stay as they are).
const SHORTCODE = /(^|[^\p{L}\p{N}:]):([a-z0-9_+-]{1,64}):(?=$|[^\p{L}\p{N}])/giu;

/** Replaces `:shortcode:` emoji (as desks store them) with Unicode; unknown codes are left as typed. */
export function shortcodesToUnicode(text: string): string {
  if (!text.includes(":")) return text;
  // Two passes, so that adjacent codes (":wave::smile:") share their middle colon.
  let result = text;
  for (let pass = 0; pass < 2; pass++) {
    result = result.replace(SHORTCODE, (match, before: string, code: string) => {
      const emoji = emojiForShortcode(code);
      return emoji === undefined ? match : `${before}${emoji}`;
    });
  }
  return result;
}
