import { randomBytes, randomInt, randomUUID } from "node:crypto";

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** Chat and thread ids look like LiveChat's: ten upper-case letters and digits (`PJ0MRSHTDG`, `K600PKZON8`). */
export function randomLcId(): string {
  let id = "";
  for (let i = 0; i < 10; i += 1) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)] ?? "A";
  return id;
}

export function uuid(): string {
  return randomUUID();
}

export function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

/**
 * Server time in microseconds since the epoch, strictly increasing within one fake: LiveChat stamps events with
 * microsecond precision, and two events of one thread never share a `created_at` here, so ordering by it is stable.
 */
export class MicroClock {
  private last = 0;

  nowUs(): number {
    const candidate = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    this.last = Math.max(candidate, this.last + 1);
    return this.last;
  }
}

/** `2026-05-04T10:11:12.345678Z`: RFC 3339 with six fractional digits, as LiveChat writes `created_at`. */
export function formatUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const micro = String(us % 1_000_000).padStart(6, "0");
  return `${iso.slice(0, 19)}.${micro}Z`;
}

/** Parses an RFC 3339 date-time into microseconds; undefined when it is not one. */
export function parseRfc3339Us(value: string): number | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  if (!match) return undefined;
  const [, base, fraction = "", zone] = match;
  const seconds = Date.parse(`${base ?? ""}${zone ?? ""}`);
  if (Number.isNaN(seconds)) return undefined;
  return seconds * 1000 + Number(fraction.padEnd(6, "0").slice(0, 6));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** JSON round trip: exactly what a client receives (undefined keys gone), and no aliasing into the fake's state. */
export function wire<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** PNG and GIF headers only: the fake does not decode images, it reads the size LiveChat would report. */
export function imageSize(content: Buffer): { width: number; height: number } | undefined {
  if (content.length >= 24 && content.readUInt32BE(0) === 0x89504e47 && content.toString("latin1", 12, 16) === "IHDR") {
    return { width: content.readUInt32BE(16), height: content.readUInt32BE(20) };
  }
  if (content.length >= 10 && content.toString("latin1", 0, 3) === "GIF") {
    return { width: content.readUInt16LE(6), height: content.readUInt16LE(8) };
  }
  return undefined;
}
