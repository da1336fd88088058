import { RcMeteorError } from "./errors.js";

/** What ApiClass registers for one route: `numRequestsAllowed` per `intervalTimeInMS`. */
export interface RateRule {
  calls: number;
  intervalMs: number;
}

/**
 * Meteor's RateLimiter (packages/rate-limit) as ApiClass.enforceRateLimit uses it: one rule per route (its full name
 * and method, `/api/v1/livechat/upload/:ridpost`, so every room shares one counter), counters per client IP within a
 * rule; increment, then check. A rule's window is fixed, not sliding: once more than `intervalMs` has passed since
 * the rule last restarted, the next call restarts every counter of the rule. `X-RateLimit-*` go on every answer of a
 * limited route, refused or not (`Reset` is an epoch in ms), and never `Retry-After`.
 */
export class RateLimiter {
  private readonly rules = new Map<string, { lastReset: number; counters: Map<string, number> }>();
  /** When the rules were (re)created: RC creates them at start and again whenever a limiter setting changes. */
  private created = Date.now();

  reset(): void {
    this.rules.clear();
    this.created = Date.now();
  }

  /** Counts the call; returns the headers to send and, past the limit, the error RC throws. */
  hit(ip: string, route: string, rule: RateRule): { headers: Record<string, string>; error?: RcMeteorError } {
    let state = this.rules.get(route);
    if (!state) {
      state = { lastReset: this.created, counters: new Map() };
      this.rules.set(route, state);
    }
    const now = Date.now();
    if (now - state.lastReset > rule.intervalMs) {
      state.counters.clear();
      state.lastReset = now;
    }
    const count = (state.counters.get(ip) ?? 0) + 1;
    state.counters.set(ip, count);
    const timeToReset = rule.intervalMs - (now - state.lastReset);
    const allowed = count <= rule.calls;
    const headers = {
      "X-RateLimit-Limit": String(rule.calls),
      "X-RateLimit-Remaining": String(allowed ? rule.calls - count : 0),
      "X-RateLimit-Reset": String(now + timeToReset),
    };
    if (allowed) return { headers };
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
