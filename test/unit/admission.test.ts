import { once } from "node:events";
import { createServer, type Server as HttpServer } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionAdmission } from "../../server/http/admission.js";

interface Gate {
  admission: ConnectionAdmission;
  http: HttpServer;
  port: number;
  /** Sockets the HTTP server has been handed, in order. */
  handed: Socket[];
}

const gates: Gate[] = [];
const clients: Socket[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const gate of gates.splice(0)) {
    gate.http.closeAllConnections();
    await gate.admission.close();
  }
});

async function startGate(maxOpening: number, openingTimeoutMs = 10_000): Promise<Gate> {
  const http = createServer((req, res) => res.end(`hello ${req.url ?? ""}`));
  const handed: Socket[] = [];
  http.on("connection", (socket: Socket) => handed.push(socket));
  http.on("upgrade", (_req, socket: Socket) => {
    socket.end("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n");
  });
  const admission = new ConnectionAdmission(http, { maxOpening, openingTimeoutMs });
  admission.listener.listen(0, "127.0.0.1");
  await once(admission.listener, "listening");
  http.emit("listening");
  const gate = { admission, http, port: (admission.listener.address() as AddressInfo).port, handed };
  gates.push(gate);
  return gate;
}

async function open(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  clients.push(socket);
  await once(socket, "connect");
  return socket;
}

/** Sends one GET on the connection and resolves with the response's first line and body. */
async function get(socket: Socket, path: string): Promise<string> {
  let text = "";
  socket.setEncoding("utf8");
  const done = new Promise<string>((resolve) => {
    const onData = (chunk: string) => {
      text += chunk;
      if (text.includes(`hello ${path}`)) {
        socket.off("data", onData);
        resolve(`${text.split("\r\n")[0] ?? ""} | ${text.slice(text.indexOf("\r\n\r\n") + 4)}`);
      }
    };
    socket.on("data", onData);
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return done;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

const until = async (condition: () => boolean, timeoutMs = 2_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

/** A gate letting one connection in at a time, with one connection in (silent) and one waiting behind it. */
async function oneInOneWaiting(): Promise<{ gate: Gate; admitted: Socket; waiting: Socket }> {
  const gate = await startGate(1);
  const admitted = await open(gate.port);
  const waiting = await open(gate.port);
  await settle();
  expect([gate.handed.length, gate.admission.queued]).toEqual([1, 1]);
  return { gate, admitted, waiting };
}

describe("ConnectionAdmission (new connections let in a few at a time)", () => {
  it("hands the HTTP server at most maxOpening connections that have sent nothing yet; the rest wait, in order", async () => {
    const gate = await startGate(2);
    const sockets: Socket[] = [];
    for (let index = 0; index < 5; index++) sockets.push(await open(gate.port));
    await until(() => gate.handed.length === 2 && gate.admission.queued === 3);
    // Still two after a while: nobody has sent a request, so nobody else is let in.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gate.handed).toHaveLength(2);

    // The third connection's request waits (unread) until a place frees up...
    const third = get(sockets[2] as Socket, "/c");
    let thirdAnswered = false;
    void third.then(() => (thirdAnswered = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(thirdAnswered).toBe(false);

    // ...which the first connection's request does: it is served, and the next in line is let in.
    expect(await get(sockets[0] as Socket, "/a")).toBe("HTTP/1.1 200 OK | hello /a");
    expect(await third).toBe("HTTP/1.1 200 OK | hello /c");
    expect(await get(sockets[1] as Socket, "/b")).toBe("HTTP/1.1 200 OK | hello /b");
    expect(await get(sockets[3] as Socket, "/d")).toBe("HTTP/1.1 200 OK | hello /d");
    expect(await get(sockets[4] as Socket, "/e")).toBe("HTTP/1.1 200 OK | hello /e");
    // Let in in arrival order.
    const localPorts = sockets.map((socket) => socket.localPort);
    expect(gate.handed.map((socket) => socket.remotePort)).toEqual(localPorts);
    expect(gate.admission.queued).toBe(0);
  });

  it("counts an upgrade request as the first request", async () => {
    const { admitted: first, waiting: second } = await oneInOneWaiting();
    first.write("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n");
    const [switching] = (await once(first, "data")) as [Buffer];
    expect(switching.toString()).toContain("101 Switching Protocols");
    expect(await get(second, "/after-upgrade")).toBe("HTTP/1.1 200 OK | hello /after-upgrade");
  });

  it("gives up the place of a connection that sends nothing for openingTimeoutMs, without closing it", async () => {
    const gate = await startGate(1, 150);
    const silent = await open(gate.port);
    const next = await open(gate.port);
    await settle();
    expect(gate.handed).toHaveLength(1);
    // Nothing sent, but 150 ms passed: the place is given up.
    await until(() => gate.handed.length === 2);
    expect(await get(next, "/next")).toBe("HTTP/1.1 200 OK | hello /next");
    expect(gate.handed).toHaveLength(2);
    // The silent one is still served when it finally speaks.
    expect(await get(silent, "/late")).toBe("HTTP/1.1 200 OK | hello /late");
  });

  it("lets in a connection whose client closed while it waited, and counts it gone", async () => {
    const { gate, admitted: holder, waiting: quitter } = await oneInOneWaiting();
    quitter.destroy();
    expect(await get(holder, "/h")).toBe("HTTP/1.1 200 OK | hello /h");
    await until(() => gate.admission.queued === 0 && gate.handed.length === 2);
    const after = await open(gate.port);
    expect(await get(after, "/after")).toBe("HTTP/1.1 200 OK | hello /after");
  });

  it("maxOpening 0 lets every connection in at once", async () => {
    const gate = await startGate(0);
    const sockets: Socket[] = [];
    for (let index = 0; index < 5; index++) sockets.push(await open(gate.port));
    await until(() => gate.handed.length === 5);
    expect(gate.admission.queued).toBe(0);
    expect(await get(sockets[4] as Socket, "/last")).toBe("HTTP/1.1 200 OK | hello /last");
  });

  it("close: refuses new connections, closes those waiting, and resolves once those let in have ended", async () => {
    const { gate, admitted, waiting } = await oneInOneWaiting();
    const waitingClosed = once(waiting, "close");
    let closed = false;
    const closing = gate.admission.close().then(() => (closed = true));
    await waitingClosed;
    await expect(open(gate.port)).rejects.toThrow(/ECONNREFUSED/);
    await settle();
    expect(closed).toBe(false);
    admitted.destroy();
    await closing;
    expect(closed).toBe(true);
  });
});
