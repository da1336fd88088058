import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { HandshakePace } from "../../server/socket/handshake-pace.js";

/** A handshake request as `allowRequest` sees it: only its connection is read (a stream stands for the socket). */
const request = (): IncomingMessage & { socket: PassThrough } =>
  ({ socket: new PassThrough() }) as unknown as IncomingMessage & { socket: PassThrough };

/** Records each handshake's outcome under its name. */
function outcomes(): {
  answer: (name: string) => (error: string | null | undefined, ok: boolean) => void;
  seen: string[];
} {
  const seen: string[] = [];
  return { seen, answer: (name) => (error, ok) => seen.push(`${name}:${ok ? "allowed" : String(error)}`) };
}

describe("HandshakePace", () => {
  it("lets a burst of handshakes through a few per turn of the event loop, in the order they came", async () => {
    const pace = new HandshakePace(16);
    const { answer, seen } = outcomes();
    for (let index = 0; index < 40; index++) pace.allow(request(), answer(String(index)));
    expect(seen).toEqual([]);
    await nextTurn();
    expect(seen).toHaveLength(16);
    await nextTurn();
    expect(seen).toHaveLength(32);
    await nextTurn();
    expect(seen).toEqual(Array.from({ length: 40 }, (_, index) => `${index}:allowed`));
  });

  it("refuses, without counting it, a handshake whose connection closed while it waited", async () => {
    const pace = new HandshakePace(2);
    const { answer, seen } = outcomes();
    const gone = request();
    pace.allow(request(), answer("a"));
    pace.allow(gone, answer("gone"));
    pace.allow(request(), answer("b"));
    pace.allow(request(), answer("c"));
    gone.socket.destroy();
    await nextTurn();
    expect(seen).toEqual(["a:allowed", "gone:the connection closed", "b:allowed"]);
    await nextTurn();
    expect(seen.at(-1)).toBe("c:allowed");
  });

  it("takes a waiting connection's error (a reset) instead of letting it be thrown, and refuses the handshake", async () => {
    const pace = new HandshakePace(16);
    const { answer, seen } = outcomes();
    const reset = request();
    pace.allow(reset, answer("reset"));
    // Without a listener, a stream's error event is thrown: here it must not be.
    expect(() => reset.socket.emit("error", new Error("read ECONNRESET"))).not.toThrow();
    await nextTurn();
    expect(seen).toEqual(["reset:the connection closed"]);
    expect(reset.socket.listenerCount("error")).toBe(0);
  });

  it("hands the connection's errors back once the handshake goes on", async () => {
    const pace = new HandshakePace(16);
    const { answer, seen } = outcomes();
    const req = request();
    pace.allow(req, answer("a"));
    expect(req.socket.listenerCount("error")).toBe(1);
    await nextTurn();
    expect(seen).toEqual(["a:allowed"]);
    expect(req.socket.listenerCount("error")).toBe(0);
  });

  it("refuses what waits and every handshake after it is closed", async () => {
    const pace = new HandshakePace(1);
    const { answer, seen } = outcomes();
    pace.allow(request(), answer("a"));
    pace.allow(request(), answer("b"));
    pace.close();
    pace.allow(request(), answer("c"));
    await nextTurn();
    expect(seen).toEqual([
      "a:the server is shutting down",
      "b:the server is shutting down",
      "c:the server is shutting down",
    ]);
  });
});
