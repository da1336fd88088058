import { createServer, connect as tcpConnect, type AddressInfo, type Socket as TcpSocket } from "node:net";
import { Redis } from "ioredis";
import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ConversationInfo, ConversationUpdated, Message } from "../../protocol/index.js";
import { TEST_API_KEY } from "../helpers/app.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { collectMessages, connect, nextEvent, request, webCustomer } from "../helpers/socket.js";
import { DEFAULT_FAKE_USER, startFakeRocketChat, type FakeRocketChat } from "../fakes/rocketchat/index.js";
import { startNode, type GatewayNode } from "./cluster-helpers.js";

const PREFIX = "liaison:";
const text = (m: Message) => (m.type === "ChatMessage" ? m.text : `[${m.activityType}]`);

let redis: TestRedis;
const sockets: Socket[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function open(node: GatewayNode, apiKey?: string): Promise<Socket> {
  const socket = await connect(node.url, apiKey === undefined ? {} : { apiKey });
  sockets.push(socket);
  return socket;
}

async function customer(node: GatewayNode, body: Record<string, string> = {}) {
  const started = await webCustomer(node.url, body);
  sockets.push(started.socket);
  return started;
}

describe("three nodes on one Redis behave like one", () => {
  const nodes: GatewayNode[] = [];
  beforeAll(async () => {
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: PREFIX };
    nodes.push(
      ...(await Promise.all(["n1", "n2", "n3"].map((name) => startNode(name, env, { presenceGraceMs: 1_000 })))),
    );
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.kill("SIGTERM")));
  });

  it("carries a conversation between a customer on one node and an agent on another, seen from a third", async () => {
    const [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const sara = await customer(a);
    const agent = await open(b, TEST_API_KEY);
    await request(agent, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: "agent-1",
      name: "Ali",
      role: "agent",
    });
    const agentInbox = collectMessages(agent);
    const supervisor = await open(c, TEST_API_KEY);
    const watched = collectMessages(supervisor);
    await request(supervisor, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: "sup",
      name: "Sue",
      role: "supervisor",
    });

    for (let i = 1; i <= 5; i++) {
      await request(sara.socket, "sendMessage", { conversationId: sara.init.conversationId, text: `c${i}` });
      await request(agent, "sendMessage", { conversationId: sara.init.conversationId, text: `a${i}` });
    }
    await agentInbox.waitFor(5);
    await expect
      .poll(() => sara.inbox.messages.filter((m) => m.type === "ChatMessage").map(text))
      .toEqual(["a1", "a2", "a3", "a4", "a5"]);
    expect(agentInbox.messages.map(text)).toEqual(["c1", "c2", "c3", "c4", "c5"]);
    await expect.poll(() => watched.messages.filter((m) => m.type === "ChatMessage").length).toBe(10);
    const seqs = watched.messages.map((m) => m.seq ?? 0);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });

  it("tells a queue subscriber on one node of a conversation created on another and taken on a third, and lists it there", async () => {
    const [a, b, c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const subject = `cluster-queue-${Date.now()}`;
    const watcher = await open(c, TEST_API_KEY);
    const updates: ConversationUpdated[] = [];
    watcher.on("conversationUpdated", (update: ConversationUpdated) => updates.push(update));
    expect(await request(watcher, "subscribeConversations", { subject })).toEqual({ ok: true });

    const sara = await customer(a, { subject });
    const { conversationId } = sara.init;
    await expect.poll(() => updates.map((u) => u.conversation.state)).toEqual(["queued"]);
    expect(updates[0]).toMatchObject({
      conversation: { id: conversationId, subject, customer: sara.init.participant },
    });
    expect(updates[0]).not.toHaveProperty("previousState");

    const agent = await open(b, TEST_API_KEY);
    await request(agent, "joinConversation", { conversationId, id: "agent-9", name: "Nia", role: "agent" });
    await expect.poll(() => updates.length).toBe(2);
    expect(updates[1]).toMatchObject({
      previousState: "queued",
      conversation: { id: conversationId, state: "active", agent: { id: "agent-9", name: "Nia" } },
    });

    const response = await fetch(`${c.url}/api/conversations?subject=${subject}`, {
      headers: { authorization: `Bearer ${TEST_API_KEY}` },
    });
    expect(await response.json()).toMatchObject({
      // The hand-off, the customer joining and the greeting, the agent joining.
      conversations: [{ id: conversationId, state: "active", agent: { id: "agent-9" }, lastSeq: 4 }],
    });
  });

  it("loses nothing when a node is killed mid-conversation: its customer resumes on another node with since", async () => {
    const [a, , c] = nodes as [GatewayNode, GatewayNode, GatewayNode];
    const victim = await startNode("victim", { REDIS_URL: redis.url, REDIS_PREFIX: PREFIX });
    nodes.push(victim);
    const sara = await customer(victim);
    const agent = await open(a, TEST_API_KEY);
    await request(agent, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: "agent-2",
      name: "Omar",
      role: "agent",
    });

    const sent: string[] = [];
    for (let i = 1; i <= 30; i++) {
      if (i === 12) await victim.kill("SIGKILL");
      const ack = await request<{ ok: boolean }>(agent, "sendMessage", {
        conversationId: sara.init.conversationId,
        text: `m${i}`,
      });
      expect(ack.ok).toBe(true);
      sent.push(`m${i}`);
    }
    const before = sara.inbox.messages;
    const lastSeq = Math.max(0, ...before.map((m) => m.seq ?? 0));
    // The client reconnects to another node and asks for what came after the last message it has.
    const resumed = await open(c);
    const info = nextEvent<ConversationInfo>(resumed, "conversationInfo");
    await request(resumed, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: sara.init.participant.id,
      name: "Sara",
      token: sara.init.token,
      since: lastSeq,
    });
    const after = (await info).messages;
    const all = [...before, ...after].filter((m) => m.type === "ChatMessage").map(text);
    expect(all).toEqual(sent);
    const allSeqs = [...before, ...after].map((m) => m.seq ?? 0);
    expect(new Set(allSeqs).size).toBe(allSeqs.length);
  });

  it("shuts down gracefully on SIGTERM: sockets are let go, the process exits 0, the customer resumes elsewhere", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode];
    const leaving = await startNode("leaving", { REDIS_URL: redis.url, REDIS_PREFIX: PREFIX });
    const sara = await customer(leaving);
    const disconnected = nextEvent<string>(sara.socket, "disconnect");
    const agent = await open(a, TEST_API_KEY);
    await request(agent, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: "agent-4",
      name: "Zed",
      role: "agent",
    });
    const exit = new Promise<number | null>((resolve) => leaving.process.once("exit", (code) => resolve(code)));
    leaving.process.kill("SIGTERM");
    // A transport close (not "io server disconnect"): clients reconnect on their own, to another node.
    expect(await disconnected).toBe("transport close");
    expect(await exit).toBe(0);
    await request(agent, "sendMessage", { conversationId: sara.init.conversationId, text: "while you moved" });
    const resumed = await open(b);
    const info = nextEvent<ConversationInfo>(resumed, "conversationInfo");
    const lastSeq = Math.max(0, ...sara.inbox.messages.map((m) => m.seq ?? 0));
    await request(resumed, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: sara.init.participant.id,
      name: "Sara",
      token: sara.init.token,
      since: lastSeq,
    });
    expect((await info).messages.map(text)).toEqual(["while you moved"]);
  });

  it("keeps working through a Redis restart, with everything recorded before it still there", async () => {
    const [a, b] = nodes as [GatewayNode, GatewayNode];
    const sara = await customer(a);
    await request(sara.socket, "sendMessage", { conversationId: sara.init.conversationId, text: "before the restart" });
    await redis.stop();
    // While Redis is down the nodes say so: a load balancer takes them out until it is back.
    await expect.poll(async () => (await fetch(`${b.url}/ready`)).status, { timeout: 10_000 }).toBe(503);
    await redis.start();
    await expect.poll(async () => (await fetch(`${b.url}/ready`)).status, { timeout: 10_000 }).toBe(200);
    const agent = await open(b, TEST_API_KEY);
    const info = nextEvent<ConversationInfo>(agent, "conversationInfo");
    await request(agent, "joinConversation", {
      conversationId: sara.init.conversationId,
      id: "agent-3",
      name: "Lin",
      role: "agent",
    });
    expect((await info).messages.map(text)).toContain("before the restart");
    await expect
      .poll(
        async () =>
          (
            await request<{ ok: boolean }>(sara.socket, "sendMessage", {
              conversationId: sara.init.conversationId,
              text: "after",
            })
          ).ok,
        {
          timeout: 10_000,
        },
      )
      .toBe(true);
  });
});

/** A TCP proxy that can hold back the server's answers: the request arrives, the client never hears back. */
async function holdingProxy(targetPort: number) {
  let holding = false;
  const held: (() => void)[] = [];
  const pairs = new Set<TcpSocket>();
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    pairs.add(client).add(upstream);
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => (holding ? held.push(() => client.write(chunk)) : client.write(chunk)));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const write of held.splice(0)) write();
    },
    close: async () => {
      for (const socket of pairs) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("three nodes with the Rocket.Chat desk", () => {
  const nodes: GatewayNode[] = [];
  let rocketChat: FakeRocketChat;
  let proxy: Awaited<ReturnType<typeof holdingProxy>>;
  beforeAll(async () => {
    rocketChat = await startFakeRocketChat({ secretToken: "rc", retryIntervalMs: 100 });
    proxy = await holdingProxy(Number(new URL(rocketChat.url).port));
    const env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: "rc-cluster:",
      ROCKETCHAT_URL: proxy.url,
      ROCKETCHAT_WEBHOOK_TOKEN: "rc",
      ROCKETCHAT_USER_ID: DEFAULT_FAKE_USER.userId,
      ROCKETCHAT_AUTH_TOKEN: DEFAULT_FAKE_USER.authToken,
      ROCKETCHAT_TIMEOUT_MS: "30000",
    };
    const tuning = { outboxLeaseMs: 1_500, retryMaxMs: 1_000 };
    nodes.push(...(await Promise.all(["r1", "r2", "r3"].map((name) => startNode(name, env, tuning)))));
    // Rocket.Chat's webhook lands on the third node.
    rocketChat.setWebhookUrl(`${nodes[2]?.url ?? ""}/webhooks/rocketchat`);
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.kill("SIGTERM")));
    await proxy.close();
    await rocketChat.close();
  });

  const ridOf = async (conversationId: string): Promise<string> => {
    const client = new Redis(redis.url);
    try {
      let rid: string | undefined;
      await expect
        .poll(async () => {
          const raw = await client.get(`rc-cluster:c:${conversationId}`);
          rid = raw === null ? undefined : (JSON.parse(raw) as { desk: { ids: { rid?: string } } }).desk.ids.rid;
          return rid;
        })
        .toBeTruthy();
      return rid ?? "";
    } finally {
      client.disconnect();
    }
  };

  it("brings an agent's reply, posted by Rocket.Chat to a third node, to the customer on the first", async () => {
    const [r1] = nodes as [GatewayNode];
    const sara = await customer(r1);
    const rid = await ridOf(sara.init.conversationId);
    await request(sara.socket, "sendMessage", { conversationId: sara.init.conversationId, text: "hello desk" });
    await expect
      .poll(() =>
        rocketChat
          .messages(rid)
          .filter((m) => m.token !== undefined)
          .map((m) => m.msg),
      )
      .toEqual(["hello desk"]);
    rocketChat.agentSend(rid, "hello customer");
    await expect
      .poll(() => sara.inbox.messages.filter((m) => m.type === "ChatMessage").map(text))
      .toEqual(["hello customer"]);
  });

  it("completes, once, a delivery that was under way on a node that died", async () => {
    const [r1] = nodes as [GatewayNode];
    const sara = await customer(r1);
    const rid = await ridOf(sara.init.conversationId);
    proxy.hold();
    await request(sara.socket, "sendMessage", { conversationId: sara.init.conversationId, text: "in flight" });
    // Rocket.Chat stored it; the node that sent it is still waiting for the answer.
    await expect.poll(() => rocketChat.messages(rid).some((m) => m.msg === "in flight")).toBe(true);
    const client = new Redis(redis.url);
    const holder = await client.get(`rc-cluster:lease:ob:desk:${sara.init.conversationId}`);
    client.disconnect();
    const dying = nodes.find((node) => node.name === holder);
    expect(dying).toBeDefined();
    await dying?.kill("SIGKILL");
    proxy.release();
    // Another node takes over when the lease runs out and retries: Rocket.Chat stores nothing for the resent _id, and
    // its 400 counts as done once the message is found in the room.
    const checker = new Redis(redis.url);
    try {
      await expect
        .poll(async () => checker.llen(`rc-cluster:ob:desk:${sara.init.conversationId}`), { timeout: 15_000 })
        .toBe(0);
    } finally {
      checker.disconnect();
    }
    expect(rocketChat.messages(rid).filter((m) => m.msg === "in flight")).toHaveLength(1);
  });
});
