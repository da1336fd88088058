import { AdapterError } from "../../core/errors.js";
import type { AdapterNotice } from "../contract.js";
import { apiRequest, header, type ApiResponse } from "../http.js";
import type { GmsEvent } from "./mapper.js";

export const BOT_NAME = "gms";

/** A refusal or failure of the platform's webhook. */
export class GmsError extends AdapterError {
  constructor(
    message: string,
    retryable: boolean,
    status?: number,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(BOT_NAME, message, retryable, status, options);
    this.name = "GmsError";
  }
}

export interface GmsClientOptions {
  /** `GMS_WEBHOOK_URL`: its path carries the channel's token, so it never appears in errors or logs. */
  webhookUrl: string;
  timeoutMs: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  /** Told what is wrong whenever the platform refuses events for good (400, 404), and undefined once one passes. */
  onRefused?: (problem: AdapterNotice | undefined) => void;
}

/**
 * The only code that talks to the GMS platform: one `bot_api_webhook` POST per event. The platform documents 200
 * (taken, or an unknown event or kind it drops), 400 (no active channel for the token in the URL, or a missing
 * parameter), 404 (a wrong URL) and 500 (other malformed JSON, its own errors). 400 and 404 are for good; 5xx, 429
 * (honouring Retry-After), timeouts and network failures are retried.
 */
export class GmsClient {
  private readonly url: URL;

  constructor(private readonly options: GmsClientOptions) {
    this.url = new URL(options.webhookUrl);
  }

  async post(event: GmsEvent): Promise<void> {
    const started = performance.now();
    let response: ApiResponse;
    try {
      response = await apiRequest(this.url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(event),
        timeoutMs: this.options.timeoutMs,
        maxResponseBytes: 64 * 1024,
      });
    } catch (error) {
      this.options.observe?.("new_message", "error", (performance.now() - started) / 1000);
      // The network error's own text, never the URL (its path is the channel's secret).
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new GmsError(`new_message: ${reason.replaceAll(this.url.href, "<GMS_WEBHOOK_URL>")}`, true, undefined, {
        cause: error,
      });
    }
    const { status } = response;
    const ok = status >= 200 && status < 300;
    this.options.observe?.(
      "new_message",
      ok ? "ok" : status === 429 ? "rate_limited" : "error",
      (performance.now() - started) / 1000,
    );
    if (ok) {
      this.options.onRefused?.(undefined);
      return;
    }
    const summary = `new_message: ${status} ${response.text.slice(0, 200)}`;
    if (status === 429) throw new GmsError(summary, true, status, retryAfter(response));
    if (status >= 500) throw new GmsError(summary, true, status);
    this.options.onRefused?.(refusal(status, response.text));
    throw new GmsError(summary, false, status);
  }
}

/** What a final refusal says (never the URL, whose path is the channel's token). */
function refusal(status: number, body: string): AdapterNotice {
  if (status === 400 && body.includes("no active channel")) {
    return {
      log: "the GMS platform has no active channel for GMS_WEBHOOK_URL's token (400): is the channel switched on, and the URL current?",
      ready: "the GMS platform has no active channel for the webhook's token (400)",
    };
  }
  if (status === 404) {
    return {
      log: "the GMS platform does not know GMS_WEBHOOK_URL (404)",
      ready: "the GMS platform does not know the webhook's address (404)",
    };
  }
  const refused = `the GMS platform refuses events (${status})`;
  return { log: refused, ready: refused };
}

function retryAfter(response: ApiResponse): { retryAfterMs: number } | undefined {
  const value = header(response, "retry-after");
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return { retryAfterMs: seconds * 1000 };
  const date = Date.parse(value);
  return Number.isFinite(date) ? { retryAfterMs: Math.max(0, date - Date.now()) } : undefined;
}
