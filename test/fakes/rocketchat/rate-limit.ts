import { RcMeteorError } from "./errors.js";

/**
 * Meteor's RateLimiter as ApiClass.enforceRateLimit uses it: one counter per (client IP, route), a fixed window that
 * starts at the first call, increment-then-check, and the X-RateLimit-* headers on every answer of a limited route
 * (`X-RateLimit-Reset` is an epoch timestamp in milliseconds).
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly allowed: number,
    private readonly intervalMs: number,
  ) {}

  reset(): void {
    this.windows.clear();
  }

  /** Counts the call; returns the headers to send and, past the limit, the error RC throws. */
  hit(ip: string, route: string): { headers: Record<string, string>; error?: RcMeteorError } {
    const key = `${ip} ${route}`;
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= this.intervalMs) {
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    const timeToReset = window.start + this.intervalMs - now;
    const headers = {
      "X-RateLimit-Limit": String(this.allowed),
      "X-RateLimit-Remaining": String(Math.max(0, this.allowed - window.count)),
      "X-RateLimit-Reset": String(now + timeToReset),
    };
    if (window.count <= this.allowed) return { headers };
    const seconds = Math.ceil(timeToReset / 1000);
    return {
      headers,
      error: new RcMeteorError(
        "error-too-many-requests",
        `Error, too many requests. Please slow down. You must wait ${seconds} seconds before trying this endpoint again.`,
        { timeToReset, seconds },
      ),
    };
  }
}
