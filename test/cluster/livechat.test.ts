import { Redis } from "ioredis";
import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ChatMessage } from "../../protocol/index.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { webCustomer } from "../helpers/socket.js";
import { startFakeLiveChat, type FakeLiveChat } from "../fakes/livechat/index.js";
import { startNode, type GatewayNode } from "./cluster-helpers.js";

const PREFIX = "lc-cluster:";
let redis: TestRedis;
let fake: FakeLiveChat;
const nodes: GatewayNode[] = [];
const sockets: Socket[] = [];
beforeAll(async () => {
  redis = await startRedis();
  fake = await startFakeLiveChat();
});
afterAll(async () => {
  await Promise.all(nodes.map((node) => node.kill("SIGTERM")));
  await fake.close();
  await redis.close();
});
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

const start = (name: string) =>
  startNode(
    name,
    {
      REDIS_URL: redis.url,
      REDIS_PREFIX: PREFIX,
      DESK: "livechat",
      LIVECHAT_API_URL: fake.apiUrl,
      LIVECHAT_ACCOUNTS_URL: fake.accountsUrl,
      LIVECHAT_CLIENT_ID: fake.clientId,
      LIVECHAT_AGENT_TOKEN: fake.agentToken,
      LIVECHAT_ORGANIZATION_ID: fake.organizationId,
    },
    { outboxLeaseMs: 1_500, retryMaxMs: 1_000, deskStreamScanMs: 200, deskStreamLeaseMs: 1_500 },
  );

const idsOf = async (conversationId: string): Promise<Record<string, string>> => {
  const client = new Redis(redis.url);
  try {
    let ids: Record<string, string> = {};
    await expect
      .poll(async () => {
        const raw = await client.get(`${PREFIX}c:${conversationId}`);
        ids = raw === null ? {} : (JSON.parse(raw) as { desk: { ids: Record<string, string> } }).desk.ids;
        return ids.threadId;
      })
      .toBeTruthy();
    return ids;
  } finally {
    client.disconnect();
  }
};

describe("the LiveChat desk on several nodes", () => {
  it("holds each conversation's RTM socket on one node, and moves it, catching up, when that node dies", async () => {
    const first = await start("l1");
    nodes.push(first);
    const sara = await webCustomer(first.url);
    sockets.push(sara.socket);
    const { chatId = "", entityId } = await idsOf(sara.init.conversationId);
    const loggedIn = () => fake.rtmConnections().filter((c) => c.open && c.loggedIn && c.entityId === entityId);
    await expect.poll(loggedIn).toHaveLength(1);

    const second = await start("l2");
    nodes.push(second);
    const bilal = await webCustomer(second.url, { firstName: "Bilal", email: "bilal@example.org" });
    sockets.push(bilal.socket);
    const bilalIds = await idsOf(bilal.init.conversationId);
    await expect
      .poll(() => fake.rtmConnections().filter((c) => c.open && c.loggedIn && c.entityId === bilalIds.entityId))
      .toHaveLength(1);
    // The second node's scans find Sara's stream held by the first: still one socket for her.
    expect(loggedIn()).toHaveLength(1);

    // Sara's socket lives on the first node; it dies, and the agent writes while nobody listens.
    await first.kill("SIGKILL");
    await expect.poll(loggedIn, { timeout: 5_000 }).toHaveLength(0);
    const reply = fake.agentSend(chatId, "Written while the node was down");
    await expect.poll(loggedIn, { timeout: 10_000 }).toHaveLength(1);

    const redisClient = new Redis(redis.url);
    try {
      await expect
        .poll(
          async () => {
            const log = await redisClient.lrange(`${PREFIX}log:${sara.init.conversationId}`, 0, -1);
            return log.map((raw) => JSON.parse(raw) as ChatMessage).filter((m) => m.id === `livechat:${reply.id}`)
              .length;
          },
          { timeout: 10_000 },
        )
        .toBe(1);
    } finally {
      redisClient.disconnect();
    }
  });
});
