import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * How a fake's server can fail below HTTP: `refuse` (nothing listens on the port: connection refused), `reset` (the
 * connection is accepted and dropped as soon as a request arrives), `hang` (the request is read and never answered).
 */
export type NetworkOutage = "refuse" | "reset" | "hang";

export interface FakeServer {
  /** `http://127.0.0.1:<port>`; the same port before and after an outage. */
  url: string;
  port: number;
  /** The outage now in force, if any. */
  readonly outage: NetworkOutage | undefined;
  goDown(mode: NetworkOutage): Promise<void>;
  /** Ends the outage; requests left hanging are dropped, as a restarted server would. */
  comeUp(): Promise<void>;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * A plain HTTP server on 127.0.0.1 (free port) for a fake, with the network outages every fake needs. `handler` sees
 * only the requests that arrive while the server is up.
 */
export async function startFakeServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<FakeServer> {
  let outage: NetworkOutage | undefined;
  let closed = false;
  const hanging = new Set<Socket>();
  const server = createServer((req, res) => {
    if (outage === "reset") {
      req.socket.destroy();
      return;
    }
    if (outage === "hang") {
      hanging.add(req.socket);
      req.socket.once("close", () => hanging.delete(req.socket));
      req.resume();
      return;
    }
    handler(req, res);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get outage() {
      return outage;
    },
    async goDown(mode) {
      if (closed) return;
      if (outage === "refuse") await listen(port);
      outage = mode;
      // Idle keep-alive connections would otherwise carry the next request past the outage.
      if (mode === "refuse") await stop();
      else server.closeIdleConnections();
    },
    async comeUp() {
      if (closed) return;
      const was = outage;
      outage = undefined;
      for (const socket of hanging) socket.destroy();
      hanging.clear();
      if (was === "refuse") await listen(port);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const socket of hanging) socket.destroy();
      if (outage !== "refuse") await stop();
    },
  };
}

/** Reads a request's body whole, up to `limit` bytes (then `undefined`: the caller answers 413). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.once("end", () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.once("error", reject);
  });
}
