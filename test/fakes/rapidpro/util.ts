import { randomBytes, randomUUID } from "node:crypto";

/** RapidPro's `is_uuid` (temba/utils/uuid.py); Postgres compares UUIDs case-insensitively, so case is ignored. */
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_ANYWHERE_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

export function isUuid(value: unknown): boolean {
  return typeof value === "string" && UUID_RE.test(value);
}

/** `find_uuid`: the first UUID inside a string (a media URL), lower-cased. */
export function findUuid(value: string): string | undefined {
  return UUID_ANYWHERE_RE.exec(value)?.[0].toLowerCase();
}

export function uuid4(): string {
  return randomUUID();
}

/** Version 7 UUIDs, as mailroom gives new messages. */
export function uuid7(): string {
  const bytes = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i += 1) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Timestamps in microseconds since the epoch, strictly increasing so that ordering by time is stable. */
export class MicroClock {
  private last = 0;

  now(): number {
    const candidate = Date.now() * 1000;
    this.last = candidate > this.last ? candidate : this.last + 1;
    return this.last;
  }
}

/** `YYYY-MM-DDThh:mm:ss.ssssssZ`, the API v2 date format (serializers.py `format_datetime`). */
export function formatMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const rest = micros - ms * 1000;
  return new Date(ms)
    .toISOString()
    .replace(/\.(\d{3})Z$/, (_m, millis: string) => `.${millis}${String(rest).padStart(3, "0")}Z`);
}

export function dateToMicros(date: Date): number {
  return date.getTime() * 1000;
}

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses an ISO 8601 date (iso8601.parse_date, default zone UTC) into microseconds; undefined when invalid. */
export function parseIsoMicros(value: string): number | undefined {
  const m = ISO_RE.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== "Z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0"));
  }
  const micros = Number(frac.padEnd(6, "0").slice(0, 6));
  return (ms - offsetMinutes * 60_000) * 1000 + micros;
}

/** Python's `len()` of a str: code points, not UTF-16 units. */
export function codePointLength(text: string): number {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

export function truncateCodePoints(text: string, max: number): string {
  let out = "";
  let n = 0;
  for (const ch of text) {
    if (n >= max) break;
    out += ch;
    n += 1;
  }
  return out;
}

/** Python's `type(x).__name__` for a JSON value, as DRF puts it into "got type" messages. */
export function pyTypeName(value: unknown): string {
  if (value === null || value === undefined) return "NoneType";
  if (typeof value === "string") return "str";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (Array.isArray(value)) return "list";
  return "dict";
}

/** Python's `str(x)` for a JSON scalar. */
export function pyStr(value: unknown): string {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null || value === undefined) return "None";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : pyFloat(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** Python's repr of a float (`25.0`, `0.0009765625`). */
export function pyFloat(value: number): string {
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

/** `hasattr(x, "__len__") and len(x)` for JSON values (str, list, dict). */
export function pyLen(value: unknown): number | undefined {
  if (typeof value === "string") return codePointLength(value);
  if (Array.isArray(value)) return value.length;
  if (isPlainObject(value)) return Object.keys(value).length;
  return undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Python's `json.dumps(value)` (ensure_ascii, ", " and ": " separators): what the 10,000-char params limit counts. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : pyFloat(value);
  if (typeof value === "string") {
    return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) =>
      ch === "\u007f" ? ch : `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(value)) return `[${value.map((item) => pyJsonDumps(item)).join(", ")}]`;
  const entries = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `${pyJsonDumps(k)}: ${pyJsonDumps(v)}`,
  );
  return `{${entries.join(", ")}}`;
}

/** JSON with object keys sorted at every level, as goflow's `json()` (and Go's encoder) writes it. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value));
}

export function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => sortKeysDeep(item));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeysDeep(value[key]);
    return out;
  }
  return value;
}

/** goflow `Snakify`: trim, every run of non-word characters (letters, digits, `_`) becomes `_`, lower-case. */
export function snakify(text: string): string {
  return text
    .trim()
    .replace(/[^\p{L}0-9_]+/gu, "_")
    .toLowerCase();
}

/** Python's `quote()` of a file name (what S3 URLs of RapidPro media look like). */
export function quoteFilename(name: string): string {
  return encodeURIComponent(name).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A release tag ("8.1.36", "v26.3.54") as numbers. */
export function parseVersion(tag: string): number[] {
  const parts = tag.replace(/^v/, "").split(".").map(Number);
  if (parts.length === 0 || parts.some((part) => !Number.isInteger(part) || part < 0)) {
    throw new Error(`not a RapidPro version: ${tag}`);
  }
  return parts;
}

/** Whether `version` is `tag` or later. */
export function atLeast(version: readonly number[], tag: string): boolean {
  const other = parseVersion(tag);
  for (let i = 0; i < Math.max(version.length, other.length); i += 1) {
    const a = version[i] ?? 0;
    const b = other[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}
