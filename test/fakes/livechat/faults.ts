import { LcError } from "./errors.js";
import type { LcErrorType } from "./errors.js";
import type { ApiCallRecord, RateLimit } from "./types.js";

/*
 * What a test makes go wrong, shared by the Web API and the RTM socket, and the log of every request. None of this is
 * LiveChat behaviour except the rate limiter's answer (`too_many_requests`, no wait given); the limits themselves are
 * not published, so they are whatever the test sets.
 */

interface InjectedFailure {
  count: number;
  type: LcErrorType;
  action?: string;
  transport?: "web" | "rtm";
  message?: string;
  data?: Record<string, unknown>;
}

export class Faults {
  readonly calls: ApiCallRecord[] = [];
  outage: "500" | "503" | "hang" | "refuse" | undefined;
  private readonly failures: InjectedFailure[] = [];
  private readonly losses: { count: number; action?: string }[] = [];
  private rateLimit: RateLimit | false;
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(rateLimit: RateLimit | false) {
    this.rateLimit = rateLimit;
  }

  record(entry: Omit<ApiCallRecord, "seq">): ApiCallRecord {
    const record = { seq: this.calls.length + 1, ...entry };
    this.calls.push(record);
    return record;
  }

  failNext(failure: InjectedFailure): void {
    if (!Number.isInteger(failure.count) || failure.count < 1)
      throw new Error("failNext: count must be a positive integer");
    // LiveChat says where to go instead: a misdirected request carries the right region.
    const data =
      failure.type === "misdirected_request" && failure.data === undefined ? { region: "fra" } : failure.data;
    this.failures.push({ ...failure, ...(data === undefined ? {} : { data }) });
  }

  /** The injected failure for this request, if one is due (consumed). */
  takeFailure(transport: "web" | "rtm", action: string): LcError | undefined {
    const failure = this.failures.find(
      (f) => f.count > 0 && (f.action === undefined || f.action === action) && (f.transport ?? transport) === transport,
    );
    if (!failure) return undefined;
    failure.count -= 1;
    if (failure.count === 0) this.failures.splice(this.failures.indexOf(failure), 1);
    return new LcError(failure.type, failure.message, failure.data);
  }

  loseNext(count: number, action?: string): void {
    this.losses.push({ count, ...(action === undefined ? {} : { action }) });
  }

  takeLoss(action: string): boolean {
    const loss = this.losses.find((l) => l.count > 0 && (l.action === undefined || l.action === action));
    if (!loss) return false;
    loss.count -= 1;
    if (loss.count === 0) this.losses.splice(this.losses.indexOf(loss), 1);
    return true;
  }

  setRateLimit(limit: RateLimit | false): void {
    this.rateLimit = limit;
    this.windows.clear();
  }

  /** Counts a call of `action` by the customer; past the limit within the window, `too_many_requests`. */
  checkRate(entityId: string, action: string): void {
    if (this.rateLimit === false) return;
    const key = `${entityId}\u0000${action}`;
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= this.rateLimit.windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count += 1;
    if (window.count > this.rateLimit.limit) throw new LcError("too_many_requests");
  }
}
