import type { RequestHandler } from "express";
import { GatewayError } from "../core/errors.js";

/**
 * A per-client-IP fixed-window limiter (one process; each node of a cluster counts on its own). Over the limit:
 * `429 rate_limited` with `Retry-After` in seconds.
 */
export function rateLimit(options: { limit: number; windowMs: number; now?: () => number }): RequestHandler {
  const now = options.now ?? Date.now;
  const windows = new Map<string, { start: number; count: number }>();
  let lastSweep = now();
  return (req, res, next) => {
    const time = now();
    if (time - lastSweep > options.windowMs) {
      for (const [ip, window] of windows) if (time - window.start >= options.windowMs) windows.delete(ip);
      lastSweep = time;
    }
    const ip = req.ip ?? "unknown";
    let window = windows.get(ip);
    if (!window || time - window.start >= options.windowMs) {
      window = { start: time, count: 0 };
      windows.set(ip, window);
    }
    window.count += 1;
    if (window.count > options.limit) {
      const retryAfter = Math.max(1, Math.ceil((window.start + options.windowMs - time) / 1000));
      res.setHeader("Retry-After", String(retryAfter));
      next(
        new GatewayError("rate_limited", `Too many requests; retry in ${retryAfter} s.`, {
          retryAfterSeconds: retryAfter,
        }),
      );
      return;
    }
    next();
  };
}
