import { describe, expect, it } from "vitest";
import { en } from "../../clients/widget/i18n/en.js";
import { format, languages, resolveLocale } from "../../clients/widget/i18n/index.js";
import { formatBytes, newId, safeHref, splitLinks } from "../../clients/widget/text.js";

describe("the widget's text", () => {
  it("makes http(s) and www. addresses links, leaving the punctuation around them as text", () => {
    expect(splitLinks("See https://example.com/a?b=1. Or (www.example.org/x), thanks!")).toEqual([
      { kind: "text", text: "See " },
      { kind: "link", text: "https://example.com/a?b=1", href: "https://example.com/a?b=1" },
      { kind: "text", text: ". Or (" },
      { kind: "link", text: "www.example.org/x", href: "https://www.example.org/x" },
      { kind: "text", text: "), thanks!" },
    ]);
    expect(splitLinks("https://en.wikipedia.org/wiki/Tea_(meal)")).toEqual([
      {
        kind: "link",
        text: "https://en.wikipedia.org/wiki/Tea_(meal)",
        href: "https://en.wikipedia.org/wiki/Tea_(meal)",
      },
    ]);
  });

  it("never makes a link of anything but http(s), and keeps markup as text", () => {
    expect(splitLinks("javascript:alert(1) <img src=x onerror=alert(1)>")).toEqual([
      { kind: "text", text: "javascript:alert(1) <img src=x onerror=alert(1)>" },
    ]);
    expect(safeHref("javascript:alert(1)")).toBeUndefined();
    expect(safeHref("data:text/html,<b>")).toBeUndefined();
    expect(safeHref("https://example.com/x")).toBe("https://example.com/x");
  });

  it("formats the file size limit in the visitor's language", () => {
    expect(formatBytes(780_288, "en")).toBe("780 kB");
    expect(formatBytes(2_500_000, "en")).toBe("2.5 MB");
    expect(formatBytes(26_214_400, "fr")).toMatch(/^26\sMo$/);
  });

  it("makes message ids the gateway accepts", () => {
    const ids = new Set(Array.from({ length: 100 }, () => newId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[\w.:@+\-=/]{1,128}$/);
  });
});

describe("the widget's languages", () => {
  it("speaks English, Arabic, French, Spanish and Urdu, right to left for Arabic and Urdu", () => {
    expect(Object.keys(languages).sort()).toEqual(["ar", "en", "es", "fr", "ur"]);
    expect(resolveLocale("ar")).toMatchObject({ language: "ar", dir: "rtl" });
    expect(resolveLocale("ur-PK")).toMatchObject({ language: "ur", dir: "rtl" });
    expect(resolveLocale("fr-CA")).toMatchObject({ language: "fr", dir: "ltr" });
    // An unknown language falls back to the next wanted one (the browser's), then English.
    expect(resolveLocale("de", "es-MX").language).toBe("es");
    expect(resolveLocale("de", undefined)).toMatchObject({ language: "en", dir: "ltr", strings: en });
  });

  it("translates every string, keeping its placeholders", () => {
    const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();
    for (const [language, strings] of Object.entries(languages)) {
      expect(Object.keys(strings).sort(), language).toEqual(Object.keys(en).sort());
      for (const [key, text] of Object.entries(strings)) {
        expect(text.trim(), `${language}.${key}`).not.toBe("");
        expect(placeholders(text), `${language}.${key}`).toEqual(placeholders(en[key as keyof typeof en]));
      }
    }
    expect(format(languages.ar?.typing ?? "", { name: "عمر" })).toBe("عمر يكتب…");
  });
});
