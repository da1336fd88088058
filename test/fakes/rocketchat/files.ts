import { createHmac, timingSafeEqual } from "node:crypto";
import type { RcAttachment, RcFileRef, RcStoredFile } from "./types.js";

/** `FileUpload.getPath(`${id}/${encodeURI(name)}`)`: the relative link RC puts in attachments. */
export function fileLink(file: Pick<RcStoredFile, "_id" | "name">): string {
  return `/file-upload/${file._id}/${encodeURI(file.name)}`;
}

/** A message's `files` entry for a stored file. */
export function fileRef(file: RcStoredFile): RcFileRef {
  const dot = file.name.lastIndexOf(".");
  return {
    _id: file._id,
    name: file.name,
    type: file.type,
    size: file.size,
    format: dot > 0 ? file.name.slice(dot + 1).toLowerCase() : "",
    typeGroup: file.type.split("/")[0] ?? "",
  };
}

/**
 * The attachment `parseFileIntoMessageAttachments` builds for one file: `title_link` (and `audio_url`/`video_url`) is
 * the original; an image's `image_url`, `image_type` and `image_size` are its thumbnail's when there is one.
 */
export function buildAttachment(file: RcStoredFile, thumbnail?: RcStoredFile): RcAttachment {
  const url = fileLink(file);
  const attachment: RcAttachment = {
    type: "file",
    fileId: file._id,
    title: file.name,
    ...(file.description === undefined ? {} : { description: file.description }),
    title_link: url,
    title_link_download: true,
  };
  if (/^image\/.+/.test(file.type)) {
    const shown = thumbnail ?? file;
    attachment.image_url = fileLink(shown);
    attachment.image_type = shown.type;
    attachment.image_size = shown.size;
    const dimensions = imageDimensions(file.content);
    if (dimensions) attachment.image_dimensions = dimensions;
  } else if (/^audio\/.+/.test(file.type)) {
    attachment.audio_url = url;
    attachment.audio_type = file.type;
    attachment.audio_size = file.size;
  } else if (/^video\/.+/.test(file.type)) {
    attachment.video_url = url;
    attachment.video_type = file.type;
    attachment.video_size = file.size;
  }
  return attachment;
}

/** PNG and GIF headers only (RC runs sharp's `identify`; the fake does not decode images). */
function imageDimensions(content: Buffer): { width: number; height: number } | undefined {
  if (content.length >= 24 && content.readUInt32BE(0) === 0x89504e47 && content.toString("latin1", 12, 16) === "IHDR") {
    return { width: content.readUInt32BE(16), height: content.readUInt32BE(20) };
  }
  if (content.length >= 10 && content.toString("latin1", 0, 3) === "GIF") {
    return { width: content.readUInt16LE(6), height: content.readUInt16LE(8) };
  }
  return undefined;
}

/** `filesize(bytes)` as RC's upload route prints it (base 2, "KB"/"MB" symbols, 2 decimals). */
export function formatFileSize(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${Number(value.toFixed(2))} ${units[unit] ?? "B"}`;
}

function mimeMatches(type: string, pattern: string): boolean {
  const p = pattern.trim().toLowerCase();
  const t = type.toLowerCase();
  if (p === "*" || p === "*/*") return true;
  if (p.endsWith("/*")) return t.startsWith(p.slice(0, -1));
  return p === t;
}

/** `fileUploadIsValidContentType`: blacklist first, then the whitelist (empty = all). */
export function isAllowedMimeType(type: string, allowed: readonly string[], blocked: readonly string[]): boolean {
  if (blocked.some((pattern) => mimeMatches(type, pattern))) return false;
  if (allowed.length === 0) return true;
  return allowed.some((pattern) => mimeMatches(type, pattern));
}

function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString("base64url");
}

/** HS256 tokens like `FileUpload.generateJWTToFileUrls` issues: `{rid, userId, fileId}`, one hour. */
export function signFileToken(secret: string, claims: { rid: string; userId: string; fileId: string }): string {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const now = Math.floor(Date.now() / 1000);
  const payload = base64url(JSON.stringify({ ...claims, iat: now, exp: now + 3600 }));
  const signature = base64url(createHmac("sha256", secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${signature}`;
}

export function verifyFileToken(secret: string, token: string, fileId: string): boolean {
  const [header, payload, signature] = token.split(".");
  if (header === undefined || payload === undefined || signature === undefined) return false;
  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      fileId?: unknown;
      exp?: unknown;
    };
    return claims.fileId === fileId && typeof claims.exp === "number" && claims.exp * 1000 > Date.now();
  } catch {
    return false;
  }
}
