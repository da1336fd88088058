import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Signed, expiring links to resources Liaison serves on someone's behalf (a desk's protected files): anyone with
 * the link may fetch it until it expires, nobody can forge or extend one. HMAC-SHA256 over the path, the
 * parameters and the expiry.
 */
export class UrlSigner {
  constructor(
    private readonly secret: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** `path` (absolute, starting with /) plus `params`, `exp` and `sig` as a query string. */
  sign(path: string, params: Record<string, string> = {}): string {
    const exp = String(Math.floor(this.now() / 1000) + this.ttlSeconds);
    const query = new URLSearchParams({ ...params, exp });
    query.set("sig", this.signature(path, query));
    return `${path}?${query.toString()}`;
  }

  /** True when `query` carries a valid, unexpired signature for `path`. */
  verify(path: string, query: Record<string, unknown>): boolean {
    const entries = Object.entries(query).filter((entry): entry is [string, string] => typeof entry[1] === "string");
    const params = new URLSearchParams(entries);
    const sig = params.get("sig");
    const exp = Number(params.get("exp"));
    if (sig === null || !Number.isFinite(exp) || exp * 1000 < this.now()) return false;
    params.delete("sig");
    const expected = Buffer.from(this.signature(path, params));
    const given = Buffer.from(sig);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private signature(path: string, params: URLSearchParams): string {
    const canonical = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return createHmac("sha256", this.secret)
      .update(path)
      .update("\n")
      .update(new URLSearchParams(canonical).toString())
      .digest("base64url");
  }
}
