/** Small pieces every adapter client needs the same way. */

/** The body of an API request, JSON or multipart; sets the JSON content type on `headers` when needed. */
export function requestBody(
  request: { json?: unknown; form?: FormData },
  headers: Record<string, string>,
): string | FormData | undefined {
  if (request.json !== undefined) {
    headers["content-type"] = "application/json";
    return JSON.stringify(request.json);
  }
  return request.form;
}

/** The bytes of a `data:` URL (base64 or percent-encoded); undefined when it is not one or is malformed. */
export function decodeDataUrl(url: string): Uint8Array | undefined {
  if (!url.startsWith("data:")) return undefined;
  const comma = url.indexOf(",");
  if (comma < 0) return undefined;
  const meta = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  if (meta.endsWith(";base64")) return Buffer.from(payload, "base64");
  try {
    return Buffer.from(decodeURIComponent(payload));
  } catch {
    return undefined;
  }
}
