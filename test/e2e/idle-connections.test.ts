import { once } from "node:events";
import { connect as tcpConnect, type Socket as TcpSocket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { connect } from "../helpers/socket.js";

describe("connections that send nothing", () => {
  let gateway: TestApp;
  const silent: TcpSocket[] = [];
  beforeAll(async () => {
    gateway = await startTestApp({}, { tuning: { headersTimeoutMs: 1_500 } });
  });
  afterAll(async () => {
    for (const socket of silent) socket.destroy();
    await gateway.close();
  });

  it("delay nobody: with 500 of them open, /health and a new Socket.IO client are served at once", async () => {
    for (let i = 0; i < 500; i++) {
      const socket = tcpConnect(gateway.port, "127.0.0.1");
      socket.on("error", () => undefined);
      silent.push(socket);
    }
    await Promise.all(silent.map((socket) => once(socket, "connect")));
    const started = performance.now();
    const health = await fetch(`${gateway.url}/health`, { signal: AbortSignal.timeout(2_000) });
    expect(health.status).toBe(200);
    const client = await connect(gateway.url);
    expect(client.connected).toBe(true);
    client.close();
    // Generous: the point is "at once", not "after the silent ones gave their places up" (seconds, before).
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it("are closed by the server (408) once the time for a request's headers has passed", async () => {
    const closed = await Promise.all(
      silent.slice(0, 20).map(async (socket) => {
        let answer = "";
        socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
        if (!socket.closed) await once(socket, "close");
        return answer.split("\r\n")[0];
      }),
    );
    expect(new Set(closed)).toEqual(new Set(["HTTP/1.1 408 Request Timeout"]));
  });
});
