import type { IncomingMessage } from "node:http";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { pacedHandshakes } from "../../server/socket/handshake-pace.js";

/** A handshake request as `allowRequest` sees it: only its connection's state is read. */
const request = (destroyed = false): IncomingMessage => ({ socket: { destroyed } }) as unknown as IncomingMessage;

describe("pacedHandshakes", () => {
  it("lets a burst of handshakes through a few per turn of the event loop, in the order they came", async () => {
    const allow = pacedHandshakes(16);
    const answered: number[] = [];
    for (let index = 0; index < 40; index++) {
      allow(request(), (error, success) => {
        expect(error).toBeNull();
        expect(success).toBe(true);
        answered.push(index);
      });
    }
    expect(answered).toEqual([]);
    await nextTurn();
    expect(answered).toHaveLength(16);
    await nextTurn();
    expect(answered).toHaveLength(32);
    await nextTurn();
    expect(answered).toEqual(Array.from({ length: 40 }, (_, index) => index));
  });

  it("refuses, without counting it, a handshake whose connection closed while it waited", async () => {
    const allow = pacedHandshakes(2);
    const outcomes: string[] = [];
    const answer = (name: string) => (error: string | null | undefined, success: boolean) =>
      outcomes.push(`${name}:${success ? "allowed" : String(error)}`);
    allow(request(), answer("a"));
    allow(request(true), answer("gone"));
    allow(request(), answer("b"));
    allow(request(), answer("c"));
    await nextTurn();
    expect(outcomes).toEqual(["a:allowed", "gone:the connection closed", "b:allowed"]);
    await nextTurn();
    expect(outcomes.at(-1)).toBe("c:allowed");
  });

  it("lets a handshake in a quiet moment through on the next turn", async () => {
    const allow = pacedHandshakes(16);
    let allowed = false;
    allow(request(), (_error, success) => {
      allowed = success;
    });
    await nextTurn();
    expect(allowed).toBe(true);
  });
});
