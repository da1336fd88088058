import type { RateLimit } from "./types.js";

/**
 * DRF's SimpleRateThrottle as RapidPro's OrgUserRateThrottle keys it: one history per workspace (all tokens share
 * it). A request is allowed while fewer than `requests` allowed requests lie within the last `windowMs`; a refused
 * request is not recorded. The wait is the time until the oldest recorded request leaves the window.
 */
export class WorkspaceThrottle {
  private history: number[] = [];

  constructor(private limit: RateLimit | undefined) {}

  set(limit: RateLimit | undefined): void {
    this.limit = limit;
    this.history = [];
  }

  /** undefined = allowed (and recorded); otherwise the wait in whole seconds (DRF rounds up). */
  hit(now = Date.now()): number | undefined {
    if (!this.limit) return undefined;
    const { requests, windowMs } = this.limit;
    this.history = this.history.filter((t) => t > now - windowMs);
    if (this.history.length < requests) {
      this.history.push(now);
      return undefined;
    }
    const oldest = this.history[0] ?? now;
    const remaining = windowMs - (now - oldest);
    const available = requests - this.history.length + 1;
    return Math.max(1, Math.ceil(remaining / 1000 / Math.max(1, available)));
  }
}

/** DRF `Throttled` detail (ngettext: "1 second", "N seconds"). */
export function throttledDetail(wait: number): string {
  return `Request was throttled. Expected available in ${wait} second${wait === 1 ? "" : "s"}.`;
}
