/** A piece of a message's text: plain text, or a web address to make clickable. */
export type TextPart = { kind: "text"; text: string } | { kind: "link"; text: string; href: string };

const URL_PATTERN = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;
/** Punctuation that ends a sentence rather than the address it follows. */
const TRAILING = /[.,;:!?'"»”’]+$/;

/**
 * Splits a message's text into plain parts and links (http, https and `www.` addresses). Nothing in the text is
 * ever interpreted as HTML: the widget renders each part as text or as an anchor whose text is the address.
 */
export function splitLinks(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let candidate = match[0];
    candidate = candidate.replace(TRAILING, "");
    // A closing parenthesis belongs to the address only when the address opened one (Wikipedia links do).
    while (candidate.endsWith(")") && count(candidate, "(") < count(candidate, ")")) {
      candidate = candidate.slice(0, -1).replace(TRAILING, "");
    }
    const href = safeHref(candidate.toLowerCase().startsWith("www.") ? `https://${candidate}` : candidate);
    if (href === undefined) continue;
    const start = match.index;
    if (start > last) parts.push({ kind: "text", text: text.slice(last, start) });
    parts.push({ kind: "link", text: candidate, href });
    last = start + candidate.length;
  }
  if (last < text.length) parts.push({ kind: "text", text: text.slice(last) });
  return parts;
}

function count(text: string, char: string): number {
  return text.split(char).length - 1;
}

/** The address as an http(s) URL, or undefined for anything else (`javascript:` never becomes a link). */
export function safeHref(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** A file size in the visitor's language: `750 KB`, `25 MB`. */
export function formatBytes(bytes: number, language: string): string {
  const [value, unit] = bytes >= 1_000_000 ? [bytes / 1_000_000, "megabyte"] : [bytes / 1_000, "kilobyte"];
  try {
    const digits = unit === "megabyte" && value < 10 ? 1 : 0;
    return new Intl.NumberFormat(language, { style: "unit", unit, maximumFractionDigits: digits }).format(value);
  } catch {
    return `${Math.round(value)} ${unit === "megabyte" ? "MB" : "KB"}`;
  }
}

/** A message or request id the gateway accepts (letters, digits, `-`): a UUID where the browser can make one. */
export function newId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Outside a secure context (a plain-http site) randomUUID is missing; getRandomValues is always there.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
