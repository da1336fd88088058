import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** One request as a recorder received it, its body read whole. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  /** `raw` as UTF-8. */
  text: string;
  socket: Socket;
}

export interface HttpRecorder {
  /** `http://127.0.0.1:<port>` */
  url: string;
  received: RecordedRequest[];
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * A plain HTTP server on 127.0.0.1 (free port) that records every request and lets `answer` reply to it; `n` counts
 * the requests from 1. The stand-in for whatever a fake or an adapter calls out to.
 */
export async function startHttpRecorder(
  answer: (request: RecordedRequest, res: ServerResponse, n: number) => void,
): Promise<HttpRecorder> {
  const received: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const request = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        raw,
        text: raw.toString("utf8"),
        socket: req.socket,
      };
      received.push(request);
      answer(request, res, received.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
