import type { CoreLogger } from "./ports.js";
import { scrubText } from "./scrub-text.js";

/**
 * The log of something that can be down (a desk, the store, Redis): one `warn` when it starts failing and one when it
 * works again, with how many failures came in between, instead of a line (and a stack trace) per retry. While it is
 * down, `problem()` says so for `/ready`.
 */
export class OutageLog {
  private failures = 0;
  private since: number | undefined;
  private lastError = "";

  constructor(
    private readonly logger: CoreLogger,
    /** What is down, as the log says it: `desk rocketchat`, `redis`. */
    private readonly what: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether it is failing now. */
  get down(): boolean {
    return this.since !== undefined;
  }

  failed(error: unknown): void {
    this.failures += 1;
    this.lastError = describe(error);
    if (this.since !== undefined) {
      this.logger.debug({ what: this.what, failures: this.failures, error: this.lastError }, "still failing");
      return;
    }
    this.since = this.now();
    this.logger.warn({ what: this.what, error: this.lastError }, "failing");
  }

  succeeded(): void {
    if (this.since === undefined) return;
    this.logger.warn({ what: this.what, failures: this.failures, downForMs: this.now() - this.since }, "working again");
    this.since = undefined;
    this.failures = 0;
  }

  /**
   * For `/ready`: since when it fails and how often; undefined while it works. Not the error, which may name hosts
   * and addresses (the log has it).
   */
  problem(): string | undefined {
    if (this.since === undefined) return undefined;
    const plural = this.failures === 1 ? "" : "s";
    return `failing since ${new Date(this.since).toISOString()} (${this.failures} failure${plural})`;
  }
}

/**
 * An error as one line: its code and message, never its stack or attached data (which may carry secrets). The line
 * is logged as plain text, past the logger's `err` serializer, so credentials in URLs are blanked here.
 */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return scrubText(String(error)).slice(0, 300);
  const code = (error as { code?: unknown }).code;
  // A system error's code (ECONNREFUSED) when its message does not already say it.
  const prefix = typeof code === "string" && /^E[A-Z]+$/.test(code) && !error.message.includes(code) ? `${code}: ` : "";
  return scrubText(`${prefix}${error.message}`).slice(0, 300);
}
