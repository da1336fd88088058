import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { connect as tcpConnect, type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { InitResponse } from "../../protocol/index.js";
import { RedisStore } from "../../server/store/redis/redis-store.js";
import { defaultTuning } from "../../server/tuning.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { startRedis } from "../helpers/redis.js";
import { connect, postJson, request } from "../helpers/socket.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A customer who started a conversation and joined it. */
async function customer(gateway: TestApp) {
  const init = (
    await postJson(`${gateway.url}/api/customer/init`, { firstName: "Sara", channel: "web", email: "sara@example.org" })
  ).body as InitResponse;
  const socket = await connect(gateway.url);
  cleanups.push(() => {
    socket.close();
  });
  await request(socket, "joinConversation", {
    conversationId: init.conversationId,
    id: init.participant.id,
    name: "Sara",
    token: init.token,
  });
  return { socket, conversationId: init.conversationId };
}

type Ack = { ok: boolean; id?: string; error?: { code: string } };

describe("shutting down", () => {
  it("answers every message it received: recorded and acked, or refused unrecorded", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    const prefix = `shutdown-${Date.now()}:`;
    // Rate limits out of the way: the customer writes as fast as the node answers.
    const gateway = await startTestApp(
      {
        REDIS_URL: redis.url,
        REDIS_PREFIX: prefix,
        CUSTOMER_EVENTS_PER_SECOND: "100000",
        CUSTOMER_EVENTS_BURST: "100000",
      },
      { tuning: { shutdownLingerMs: defaultTuning.shutdownLingerMs } },
    );
    const { socket, conversationId } = await customer(gateway);
    const sent: { id: string; ack: Promise<Ack> }[] = [];
    let refused = false;
    let closing: Promise<void> | undefined;
    // The customer writes as fast as it can, each message with its own id, until the node refuses one.
    for (let i = 0; !refused && i < 5_000; i++) {
      const id = `msg-${i}`;
      const ack = request<Ack>(socket, "sendMessage", { conversationId, id, text: `message ${i}` });
      void ack.then((answer) => {
        if (!answer.ok) refused = true;
      });
      sent.push({ id, ack });
      if (i === 50) closing = gateway.app.close();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await closing;
    const answers = await Promise.all(sent.map(async ({ id, ack }) => ({ id, answer: await ack })));
    const acked = answers.filter(({ answer }) => answer.ok).map(({ id }) => id);
    const unavailable = answers.filter(({ answer }) => answer.error?.code === "unavailable").map(({ id }) => id);
    // Every message got an answer, one of those two.
    expect(acked.length + unavailable.length).toBe(sent.length);
    expect(acked.length).toBeGreaterThan(0);
    expect(unavailable.length).toBeGreaterThan(0);
    // What the node recorded, read by another node's store once it has gone.
    const store = new RedisStore({ url: redis.url, prefix, campaignRetentionMs: 60_000 });
    cleanups.push(() => store.close());
    const recorded = (await store.read(conversationId, 0)).flatMap((m) => (m.type === "ChatMessage" ? [m.id] : []));
    // Exactly the acknowledged ones were recorded, in the order they were sent.
    expect(recorded).toEqual(acked);
  });

  it("refuses new connections, answers requests on open ones with 503 and Retry-After, and finishes what is under way", async () => {
    // A desk that never answers: a delivery is under way while the node shuts down, which holds the shutdown open.
    const hanging: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => {
      hanging.closeAllConnections();
      hanging.close();
    });
    const gateway = await startTestApp({
      ROCKETCHAT_URL: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`,
      ROCKETCHAT_WEBHOOK_TOKEN: "secret",
      SHUTDOWN_GRACE_MS: "1500",
    });
    const { socket, conversationId } = await customer(gateway);

    // A client (a load balancer's kept-alive connection) is sending a request when the signal comes.
    const connection = tcpConnect(gateway.port, "127.0.0.1");
    await once(connection, "connect");
    let received = "";
    connection.on("data", (chunk: Buffer) => (received += chunk.toString()));
    const body = JSON.stringify({ firstName: "Ana", channel: "web", email: "ana@example.org" });
    const init = (part: string) =>
      `POST /api/customer/init HTTP/1.1\r\nHost: liaison\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${part}`;
    connection.write(init(body.slice(0, 10)));
    await once(gateway.app.httpServer, "request");

    const closing = gateway.app.close();
    // The request under way is answered; the next one on that connection is refused, and the connection closed.
    connection.write(body.slice(10) + init(body));
    await once(connection, "close");
    const answers = received.split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((answer) => answer.split("\r\n")[0])).toEqual([
      "HTTP/1.1 200 OK",
      "HTTP/1.1 503 Service Unavailable",
    ]);
    expect(answers[1]).toMatch(/\r\nRetry-After: 1\r\n/i);
    expect(answers[1]).toContain('"code":"unavailable"');
    // A socket event it has not started is refused (the client sends it again elsewhere), not left unanswered.
    expect(await request(socket, "sendMessage", { conversationId, text: "still there?" })).toMatchObject({
      ok: false,
      error: { code: "unavailable" },
    });
    // A new connection is refused: the load balancer moves on.
    await expect(fetch(`${gateway.url}/health`)).rejects.toThrow();
    await closing;
  });
});
