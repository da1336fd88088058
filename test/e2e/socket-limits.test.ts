import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InitResponse } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { connect, postJson, request } from "../helpers/socket.js";

describe("a socket's events are checked as they arrive", () => {
  let gateway: TestApp;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    gateway = await startTestApp(
      { MAX_PAYLOAD_BYTES: "4096", CUSTOMER_EVENTS_PER_SECOND: "100", CUSTOMER_EVENTS_BURST: "100" },
      { tuning: { maxQueuedEvents: { customer: 64, apiKey: 20 } } },
    );
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await gateway.close();
  });

  const customer = async () => {
    const init = (
      await postJson(`${gateway.url}/api/customer/init`, { firstName: "A", channel: "web", email: "a@example.org" })
    ).body as InitResponse;
    const socket = await connect(gateway.url);
    sockets.push(socket);
    await request(socket, "joinConversation", {
      conversationId: init.conversationId,
      id: init.participant.id,
      name: "A",
      token: init.token,
    });
    return { socket, conversationId: init.conversationId };
  };

  it("answers an oversized event at once, ahead of the events that queued before it", async () => {
    const { socket, conversationId } = await customer();
    const answered: string[] = [];
    const send = (label: string, text: string) =>
      request<{ ok: boolean; error?: { code: string } }>(socket, "sendMessage", { conversationId, text }).then(
        (ack) => {
          answered.push(label);
          return ack;
        },
      );
    const normal = Array.from({ length: 30 }, (_, i) => send(`m${i}`, `message ${i}`));
    const oversized = send("big", "x".repeat(5000));
    expect(await oversized).toMatchObject({ ok: false, error: { code: "payload_too_large" } });
    expect((await Promise.all(normal)).every((ack) => ack.ok)).toBe(true);
    // Refused as it arrived: not after the thirty recorded before it.
    expect(answered.indexOf("big")).toBeLessThan(answered.indexOf("m29"));
  });

  it("disconnects a socket that piles up more events than it may have waiting, and serves everyone else", async () => {
    const { conversationId } = await customer();
    const flooder = await connect(gateway.url, { apiKey: gateway.apiKey });
    sockets.push(flooder);
    const disconnected = new Promise<string>((resolve) => flooder.once("disconnect", resolve));
    // An API-key socket has no rate limit: only the bound on its queue stops it.
    for (let i = 0; i < 3_000; i++)
      flooder.emit("sendMessage", { conversationId, text: `flood ${i}` }, () => undefined);
    expect(await disconnected).toBe("io server disconnect");
    const other = await customer();
    expect(
      await request(other.socket, "sendMessage", { conversationId: other.conversationId, text: "hi" }),
    ).toMatchObject({
      ok: true,
    });
  });
});
