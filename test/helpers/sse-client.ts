import { request } from "node:http";
import type { IncomingHttpHeaders } from "node:http";

/** One server-sent event as the stream carried it. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** A stream opened by `openSse`: the events so far, and ways to wait for more. */
export interface SseConnection {
  status: number;
  headers: IncomingHttpHeaders;
  /** The whole body when the status is not 200. */
  body: string;
  /** Every event received, pings included, in order. */
  readonly events: SseEvent[];
  /** Resolves with the first event (after those already seen by earlier waits) that matches, or rejects on timeout. */
  waitFor(match: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Resolves once `count` events other than pings have arrived (in total), with them. */
  waitForCount(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  /** Resolves when the server ends the stream or the connection drops. */
  readonly ended: Promise<void>;
  /** Closes the connection from the client side. */
  close(): void;
}

interface Waiter {
  check: () => boolean;
  fail: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Opens a server-sent events stream with plain `http` (any headers, unlike EventSource) and parses its frames: the
 * client a test uses to watch what a fake streams.
 */
export function openSse(url: string, headers: Record<string, string>): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", headers }, (res) => {
      const events: SseEvent[] = [];
      const waiters = new Set<Waiter>();
      let buffer = "";
      let body = "";
      let markEnded: () => void = () => undefined;
      const ended = new Promise<void>((done) => (markEnded = done));
      const status = res.statusCode ?? 0;
      const settle = () => {
        for (const waiter of [...waiters]) {
          if (waiter.check()) {
            clearTimeout(waiter.timer);
            waiters.delete(waiter);
          }
        }
      };
      const wait = <T>(ready: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
        new Promise<T>((done, fail) => {
          const waiter: Waiter = {
            check: () => {
              const value = ready();
              if (value === undefined) return false;
              done(value);
              return true;
            },
            fail,
            timer: setTimeout(() => {
              waiters.delete(waiter);
              fail(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events)}`));
            }, timeoutMs),
          };
          if (!waiter.check()) waiters.add(waiter);
          else clearTimeout(waiter.timer);
        });
      let consumed = 0;
      const connection: SseConnection = {
        status,
        headers: res.headers,
        get body() {
          return body;
        },
        events,
        waitFor: (match, timeoutMs = 5000) =>
          wait(
            () => {
              for (let i = consumed; i < events.length; i += 1) {
                const event = events[i] as SseEvent;
                if (match(event)) {
                  consumed = i + 1;
                  return event;
                }
              }
              return undefined;
            },
            timeoutMs,
            "a matching event",
          ),
        waitForCount: (count, timeoutMs = 5000) =>
          wait(
            () => {
              const real = events.filter((e) => e.event !== "ping");
              return real.length >= count ? real.slice(0, count) : undefined;
            },
            timeoutMs,
            `${count} events`,
          ),
        ended,
        close: () => req.destroy(),
      };
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (status !== 200) {
          body += chunk;
          return;
        }
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseFrame(frame);
          if (event) events.push(event);
          end = buffer.indexOf("\n\n");
        }
        settle();
      });
      res.on("close", () => {
        markEnded();
        for (const waiter of waiters) {
          clearTimeout(waiter.timer);
          waiter.fail(new Error(`the stream ended; got ${JSON.stringify(events)}`));
        }
        waiters.clear();
      });
      if (status === 200) resolve(connection);
      else res.on("end", () => resolve(connection));
    });
    req.on("error", reject);
    req.end();
  });
}

function parseFrame(frame: string): SseEvent | undefined {
  let id: string | undefined;
  let event = "message";
  const data: string[] = [];
  for (const line of frame.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length === 0 && id === undefined ? undefined : { id, event, data: data.join("\n") };
}
