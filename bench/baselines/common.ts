import { createServer } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { Server } from "socket.io";
import type { EventLoopLag, MemorySample } from "../lib/types.js";

/**
 * The shell both baselines share: one HTTP server on `HOST`:`PORT` with `GET /ready` and `GET /memory`, and a
 * Socket.IO 4 server with the same settings Liaison uses (default path, no client bundle). `attach` adds the
 * baseline's own event handlers.
 */
export function startBaseline(name: string, attach: (io: Server) => void, setup?: (io: Server) => void): void {
  // The same sampling as Liaison's prom-client `nodejs_eventloop_lag_*` (10 ms resolution, reset when read).
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const port = Number(process.env.PORT ?? "0");
  const host = process.env.HOST ?? "127.0.0.1";
  const http = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/ready") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ready"}');
    } else if (req.method === "GET" && req.url === "/memory") {
      // The same figures as Liaison's `process_resident_memory_bytes` and `nodejs_heap_size_used_bytes`.
      const sample: MemorySample = { rss: process.memoryUsage().rss, heapUsed: getHeapStatistics().used_heap_size };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(sample));
    } else if (req.method === "GET" && req.url === "/lag") {
      const reading: EventLoopLag = { maxMs: lag.max / 1e6, p99Ms: lag.percentile(99) / 1e6 };
      lag.reset();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(reading));
    } else {
      res.writeHead(404).end();
    }
  });
  const io = new Server(http, { serveClient: false, maxHttpBufferSize: 2 * 1_048_576 });
  setup?.(io);
  attach(io);
  http.listen(port, host, () => {
    const address = http.address();
    const bound = typeof address === "object" && address !== null ? address.port : port;
    process.stdout.write(`${name} listening on ${host}:${bound}\n`);
  });
  const stop = () => {
    void io.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** The conversation a socket joined (`joinConversation { conversationId }`), or undefined. */
export function conversationOf(payload: unknown): string | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const id = (payload as { conversationId?: unknown }).conversationId;
  return typeof id === "string" && id.length > 0 ? id : undefined;
}

export type Ack = (response: unknown) => void;

/** Splits socket.io's `(payload, ack?)` arguments. */
export function splitArgs(args: unknown[]): { payload: unknown; ack: Ack | undefined } {
  const last = args.at(-1);
  const ack = typeof last === "function" ? (last as Ack) : undefined;
  return { payload: args[0], ack };
}
