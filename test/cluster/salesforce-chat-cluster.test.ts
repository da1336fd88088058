import { Redis } from "ioredis";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConversationInfo, InitResponse, Message } from "../../protocol/index.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";
import { startFakeSalesforce, type FakeSalesforce } from "../fakes/salesforce/index.js";
import { startNode, type GatewayNode } from "./cluster-helpers.js";

const PREFIX = "sf-chat-cluster:";
const chats = (messages: Message[]) => messages.flatMap((m) => (m.type === "ChatMessage" ? [m.text] : []));

describe("the Salesforce desk on the legacy Chat API, on two nodes", () => {
  let redis: TestRedis;
  let sf: FakeSalesforce;
  let redisClient: Redis;
  const nodes: GatewayNode[] = [];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    redisClient = new Redis(redis.url);
    sf = await startFakeSalesforce({ chat: { pollHoldMs: 500 } });
    const env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: PREFIX,
      SALESFORCE_API: "chat",
      SALESFORCE_CHAT_URL: sf.chat.url,
      SALESFORCE_ORG_ID: sf.orgId,
      SALESFORCE_DEPLOYMENT_ID: sf.chat.deploymentId,
      SALESFORCE_BUTTON_ID: sf.chat.buttonId,
    };
    const tuning = {
      outboxLeaseMs: 1_500,
      retryMaxMs: 1_000,
      deskStreamScanMs: 200,
      deskStreamLeaseMs: 1_500,
      deskStreamRestartBaseMs: 100,
      deskStreamRestartMaxMs: 500,
    };
    nodes.push(...(await Promise.all(["c1", "c2"].map((name) => startNode(name, env, tuning)))));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(nodes.map((node) => node.kill("SIGTERM")));
    redisClient.disconnect();
    await sf.close();
    await redis.close();
  });

  const chatKeyOf = async (conversationId: string) => {
    const raw = await redisClient.get(`${PREFIX}c:${conversationId}`);
    const conversation =
      raw === null ? undefined : (JSON.parse(raw) as { desk: { ids: Record<string, string>; openedAt?: string } });
    return conversation?.desk.openedAt === undefined ? "" : (conversation.desk.ids.chatKey ?? "");
  };
  const pollHolder = (conversationId: string) => redisClient.get(`${PREFIX}lease:ds:${conversationId}`);
  /** The customer's messages as the Salesforce agent sees them, in order. */
  const visitorTexts = (key: string) =>
    sf.chat
      .agentView(key)
      .filter((item) => item.from === "visitor")
      .map((item) => item.text);
  /** A web customer's conversation, opened on the first node, once Salesforce has its chat; and its chat key. */
  const startChat = async (): Promise<{ init: InitResponse; conversationId: string; key: string }> => {
    const init = (
      await postJson(`${nodes[0]?.url ?? ""}/api/customer/init`, {
        firstName: "Sara",
        lastName: "Khan",
        channel: "web",
        email: "sara@example.org",
      })
    ).body as InitResponse;
    const { conversationId } = init;
    await expect.poll(() => chatKeyOf(conversationId), { timeout: 10_000 }).not.toBe("");
    return { init, conversationId, key: await chatKeyOf(conversationId) };
  };

  // Runs before the node death below: the customer is on both nodes.
  it("carries the customer's typing from either node in order with the messages, costing no message", async () => {
    const { init, conversationId, key } = await startChat();
    // The customer has a tab open on each node.
    const tabs = await Promise.all(
      nodes.map(async (node) => {
        const socket = await connect(node.url);
        sockets.push(socket);
        await request(socket, "joinConversation", {
          conversationId,
          id: init.participant.id,
          name: "Sara",
          token: init.token,
        });
        return socket;
      }),
    );
    const typing = (socket: Socket, state: "start" | "stop") =>
      request(socket, "sendMessage", {
        conversationId,
        type: "ActivityMessage",
        activityType: "typing",
        info: { state },
      });
    const say = (socket: Socket, text: string) => request(socket, "sendMessage", { conversationId, text });
    sf.chat.accept(key);
    await expect.poll(() => sf.chat.session(key)?.state, { timeout: 10_000 }).toBe("active");

    sf.failNext(1, 500, { path: /ChasitorTyping$/ });
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [typist, writer] = i % 2 === 0 ? [tabs[0], tabs[1]] : [tabs[1], tabs[0]];
      // Typing on one node while a message is sent on the other.
      await Promise.all([typing(typist as Socket, "start"), say(writer as Socket, `c${i}`)]);
      sent.push(`c${i}`);
      await typing(typist as Socket, "stop");
    }
    await expect.poll(() => visitorTexts(key), { timeout: 10_000 }).toEqual(sent);
    await expect.poll(() => sf.chat.session(key)?.visitorTyping, { timeout: 10_000 }).toBe(false);
    // A start followed at once by its stop may be replaced by the stop before it is tried: either reached Salesforce.
    expect(sf.requests.some((r) => /\/Chasitor\/Chasitor(Not)?Typing$/.test(r.path) && r.status === 200)).toBe(true);
    expect(sf.violations).toEqual([]);
  });

  it("moves a chat's poll loop to the other node when its node dies, losing and doubling nothing", async () => {
    const { init, conversationId, key } = await startChat();
    await expect.poll(() => pollHolder(conversationId), { timeout: 10_000 }).toBeTruthy();
    const holderName = await pollHolder(conversationId);
    const dying = nodes.find((node) => node.name === holderName) as GatewayNode;
    const surviving = nodes.find((node) => node !== dying) as GatewayNode;

    const socket = await connect(surviving.url);
    sockets.push(socket);
    const inbox = collectMessages(socket);
    const info = nextEvent<ConversationInfo>(socket, "conversationInfo");
    await request(socket, "joinConversation", {
      conversationId,
      id: init.participant.id,
      name: "Sara",
      token: init.token,
    });
    inbox.messages.unshift(...(await info).messages);

    sf.chat.accept(key);
    sf.chat.agentSend(key, "m1");
    sf.chat.agentSend(key, "m2");
    await expect.poll(() => chats(inbox.messages), { timeout: 10_000 }).toEqual(["m1", "m2"]);

    await dying.kill("SIGKILL");
    sf.chat.agentSend(key, "m3");
    sf.chat.agentSend(key, "m4");
    await request(socket, "sendMessage", { conversationId, text: "c1" });
    await expect.poll(() => pollHolder(conversationId), { timeout: 10_000 }).toBe(surviving.name);
    await expect.poll(() => chats(inbox.messages), { timeout: 10_000 }).toEqual(["m1", "m2", "m3", "m4"]);
    await expect.poll(() => visitorTexts(key), { timeout: 10_000 }).toEqual(["c1"]);
    sf.chat.agentSend(key, "m5");
    await expect.poll(() => chats(inbox.messages)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    // The session lived on: polled from one node at a time, its sequence continued across nodes.
    expect(sf.chat.session(key)?.state).toBe("active");
    expect(sf.violations).toEqual([]);
  });
});
