import type { RateLimit } from "./types.js";

/** The throttle scopes of the endpoints the fake serves (`throttle_scope` in temba/api/v2/views.py). */
export type ThrottleScope = "v2" | "v2.messages" | "v2.contacts" | "v2.broadcasts";

/**
 * DRF's SimpleRateThrottle as RapidPro's OrgUserRateThrottle keys it: `throttle_<scope>_<workspace>`, one history per
 * scope and workspace (all tokens share it). A request is allowed while fewer than `requests` allowed requests of
 * its scope lie within the last `windowMs`; a refused request is not recorded. The wait is the time until the oldest
 * recorded request leaves the window.
 */
export class WorkspaceThrottle {
  private readonly histories = new Map<ThrottleScope, number[]>();

  constructor(private limit: RateLimit | undefined) {}

  set(limit: RateLimit | undefined): void {
    this.limit = limit;
    this.histories.clear();
  }

  /** undefined = allowed (and recorded); otherwise the wait in whole seconds (DRF rounds up). */
  hit(scope: ThrottleScope, now = Date.now()): number | undefined {
    if (!this.limit) return undefined;
    const { requests, windowMs } = this.limit;
    const history = (this.histories.get(scope) ?? []).filter((t) => t > now - windowMs);
    this.histories.set(scope, history);
    if (history.length < requests) {
      history.push(now);
      return undefined;
    }
    const oldest = history[0] ?? now;
    const remaining = windowMs - (now - oldest);
    const available = requests - history.length + 1;
    return Math.max(1, Math.ceil(remaining / 1000 / Math.max(1, available)));
  }
}

/** DRF `Throttled` detail (ngettext: "1 second", "N seconds"). */
export function throttledDetail(wait: number): string {
  return `Request was throttled. Expected available in ${wait} second${wait === 1 ? "" : "s"}.`;
}
