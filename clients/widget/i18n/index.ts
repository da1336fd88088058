import { ar } from "./ar.js";
import { en, type Strings } from "./en.js";
import { es } from "./es.js";
import { fr } from "./fr.js";
import { ur } from "./ur.js";

export type { Strings } from "./en.js";

/** The languages the widget speaks, by their BCP 47 primary subtag. */
export const languages: Readonly<Record<string, Strings>> = { en, ar, fr, es, ur };

/** Languages written right to left. */
const rtl: ReadonlySet<string> = new Set(["ar", "ur", "fa", "he"]);

/** A resolved language: its tag, its strings and its writing direction. */
export interface Locale {
  readonly language: string;
  readonly strings: Strings;
  readonly dir: "ltr" | "rtl";
}

/**
 * Picks the widget's language: the first of `wanted` (e.g. `data-language`, then the browser's languages) whose
 * primary subtag the widget speaks, else English.
 */
export function resolveLocale(...wanted: readonly (string | undefined)[]): Locale {
  for (const tag of wanted) {
    const primary = tag?.trim().toLowerCase().split(/[-_]/)[0];
    const strings = primary === undefined ? undefined : languages[primary];
    if (primary !== undefined && strings !== undefined) {
      return { language: primary, strings, dir: rtl.has(primary) ? "rtl" : "ltr" };
    }
  }
  return { language: "en", strings: en, dir: "ltr" };
}

/** Fills `{name}`-style placeholders. */
export function format(template: string, values: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole));
}
