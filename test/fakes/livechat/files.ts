import type { IncomingMessage, ServerResponse } from "node:http";
import { LcError } from "./errors.js";
import type { StoredFile } from "./types.js";
import { hex, imageSize } from "./util.js";

/** "Maximum size: 10MB." */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

/** Windows and macOS executables and scripts: "Executable files are rejected." */
const EXECUTABLE_EXTENSIONS = new Set(["exe", "bat", "cmd", "com", "msi", "scr", "pif", "vbs", "jar", "app", "dmg"]);

interface FileEntry extends StoredFile {
  createdMs: number;
}

/**
 * LiveChat's CDN (`cdn.livechat-files.com`): uploads live under `/api/file/lc/att/<license>/<hash>/<name>`. An upload
 * nobody used in an event expires after `ttlMs` (24 h in LiveChat); one used in an event never does.
 */
export class FileStore {
  private readonly entries = new Map<string, FileEntry>();
  baseUrl = "";

  constructor(
    private readonly licenseId: number,
    private readonly ttlMs: number,
  ) {}

  add(name: string, contentType: string, content: Buffer, permanent: boolean): StoredFile {
    const dir = `/api/file/lc/att/${this.licenseId}/${hex(16)}`;
    const path = `${dir}/${encodeURIComponent(name)}`;
    const entry: FileEntry = {
      url: `${this.baseUrl}${path}`,
      name,
      contentType,
      size: content.length,
      content: Buffer.from(content),
      permanent,
      createdMs: Date.now(),
    };
    this.entries.set(path, entry);
    return entry;
  }

  /** `upload_file`: refuses executables and files over 10 MB, as LiveChat does. */
  upload(name: string, contentType: string, content: Buffer): StoredFile {
    if (content.length > MAX_UPLOAD_BYTES) throw new LcError("entity_too_large");
    const extension = name.includes(".") ? name.slice(name.lastIndexOf(".") + 1).toLowerCase() : "";
    const portableExecutable = content.length >= 2 && content.toString("latin1", 0, 2) === "MZ";
    if (EXECUTABLE_EXTENSIONS.has(extension) || portableExecutable) {
      throw new LcError("validation", "file: executable files are not allowed");
    }
    return this.add(name, contentType, content, false);
  }

  /** The live upload behind a URL of this CDN; undefined for another host, an unknown path or an expired upload. */
  resolve(url: string): FileEntry | undefined {
    if (!url.startsWith(`${this.baseUrl}/`)) return undefined;
    const entry = this.entries.get(url.slice(this.baseUrl.length));
    if (!entry) return undefined;
    if (!entry.permanent && Date.now() - entry.createdMs >= this.ttlMs) return undefined;
    return entry;
  }

  /** The server-filled fields of a `file` event (`name`, `url`, `content_type`, `size`; images get more). */
  eventFields(entry: StoredFile): Record<string, unknown> {
    const fields: Record<string, unknown> = {
      name: entry.name,
      url: entry.url,
      content_type: entry.contentType,
      size: entry.size,
    };
    if (/^image\/(png|jpeg|gif)$/i.test(entry.contentType)) {
      const thumbnail = this.add(`thumbnail_${entry.name}`, entry.contentType, entry.content, true);
      const thumbnail2x = this.add(`thumbnail2x_${entry.name}`, entry.contentType, entry.content, true);
      fields.thumbnail_url = thumbnail.url;
      fields.thumbnail2x_url = thumbnail2x.url;
      const dimensions = imageSize(entry.content);
      if (dimensions) Object.assign(fields, dimensions);
    }
    return fields;
  }

  all(): StoredFile[] {
    return [...this.entries.values()].map(({ createdMs: _createdMs, ...file }) => ({
      ...file,
      content: Buffer.from(file.content),
    }));
  }

  /** GET on the CDN: the bytes with their type, or 404. */
  serve(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", "http://cdn").pathname;
    const entry = this.entries.get(path);
    const live = entry && (entry.permanent || Date.now() - entry.createdMs < this.ttlMs);
    if (req.method !== "GET" || !entry || !live) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
      return;
    }
    res.writeHead(200, { "content-type": entry.contentType, "content-length": String(entry.size) }).end(entry.content);
  }
}
