import { describe, expect, it } from "vitest";
import * as z from "zod";
import { AFTER_ACK, EventGate, HandlerTable, attachHandlers, defineHandler } from "../../server/socket/registry.js";
import type { AppSocket } from "../../server/socket/types.js";

type Listener = (event: unknown, ...args: unknown[]) => void;

/** The dispatcher on a stand-in socket: only `onAny` is used, and this hands the listener back. */
function dispatcherWith(handler: ReturnType<typeof defineHandler<z.ZodType, unknown>>): Listener {
  let listener: Listener | undefined;
  const socket = {
    onAny: (registered: Listener) => {
      listener = registered;
    },
  } as unknown as AppSocket;
  attachHandlers(socket, new HandlerTable([handler]), undefined, {
    gate: new EventGate(),
    maxPayloadBytes: 10_000,
    maxQueued: 10,
    overflow: () => {
      throw new Error("no overflow expected");
    },
    logger: () => {
      throw new Error("no log line expected");
    },
  });
  if (!listener) throw new Error("attachHandlers registered no listener");
  return listener;
}

describe("the socket event dispatcher", () => {
  it("acks with the handler's result minus its post-ack step, runs the step after the ack, and changes no result", async () => {
    const order: string[] = [];
    const results: Record<string | symbol, unknown>[] = [];
    const listener = dispatcherWith(
      defineHandler({
        event: "join",
        schema: z.object({ id: z.string() }),
        handle(_context: unknown, payload) {
          const result = { ok: true as const, id: payload.id, [AFTER_ACK]: () => order.push("after") };
          results.push(result);
          return Promise.resolve(result);
        },
      }),
    );

    const ack = await new Promise<unknown>((resolve) => {
      listener("join", { id: "a" }, (response: unknown) => {
        order.push("ack");
        resolve(response);
      });
    });
    await new Promise((resolve) => setImmediate(resolve));

    expect(ack).toEqual({ ok: true, id: "a" });
    expect(Object.getOwnPropertySymbols(ack)).toEqual([]);
    expect(order).toEqual(["ack", "after"]);
    // The handler's own object keeps its key: the ack is a copy, not the result with a key deleted (see registry.ts).
    expect(results[0]?.[AFTER_ACK]).toBeTypeOf("function");
    expect(ack).not.toBe(results[0]);
  });

  it("acks with the handler's own result when it has no post-ack step", async () => {
    const results: object[] = [];
    const listener = dispatcherWith(
      defineHandler({
        event: "send",
        schema: z.object({ text: z.string() }),
        handle(_context: unknown, payload) {
          const result = { ok: true as const, text: payload.text };
          results.push(result);
          return Promise.resolve(result);
        },
      }),
    );
    const ack = await new Promise<unknown>((resolve) => listener("send", { text: "hi" }, resolve));
    expect(ack).toEqual({ ok: true, text: "hi" });
    expect(ack).toBe(results[0]);
  });
});
