import { readFileSync } from "node:fs";

/** The pixel size of a PNG or JPEG image, or undefined for anything else (or a file cut short). */
export function imageSize(data: Uint8Array): { width: number; height: number } | undefined {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length >= 24 && bytes.subarray(0, 8).equals(PNG_SIGNATURE) && bytes.toString("latin1", 12, 16) === "IHDR") {
    const size = { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
    return size.width > 0 && size.height > 0 ? size : undefined;
  }
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  // A JPEG is a chain of segments (marker, length); the frame header (SOFn) holds the size.
  let at = 2;
  while (at + 9 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] ?? 0;
    if (marker === 0xff) {
      at += 1;
      continue;
    }
    const length = bytes.readUInt16BE(at + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const size = { height: bytes.readUInt16BE(at + 5), width: bytes.readUInt16BE(at + 7) };
      return size.width > 0 && size.height > 0 ? size : undefined;
    }
    at += 2 + length;
  }
  return undefined;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Largest logo accepted: it is read into memory and copied to the renderer once, and printed a few cm wide. */
export const MAX_LOGO_BYTES = 2 * 1024 * 1024;

/**
 * Reads a logo for transcripts, at start-up.
 * @throws {Error} with a message fit to follow the variable's name: unreadable, too large, or not PNG/JPEG
 */
export function readLogo(path: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`, { cause: error });
  }
  if (data.length > MAX_LOGO_BYTES) throw new Error(`${path} is larger than ${MAX_LOGO_BYTES / 1024 / 1024} MB`);
  if (imageSize(data) === undefined) throw new Error(`${path} is not a PNG or JPEG image`);
  return data;
}
