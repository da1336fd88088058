import { Redis } from "ioredis";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConversationInfo, InitResponse, Message } from "../../protocol/index.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";
import { DEFAULT_DEPLOYMENT, startFakeSalesforce, type FakeSalesforce } from "../fakes/salesforce/index.js";
import { startNode, type GatewayNode } from "./cluster-helpers.js";

const PREFIX = "sf-cluster:";
const chats = (messages: Message[]) => messages.flatMap((m) => (m.type === "ChatMessage" ? [m.text] : []));

describe("the Salesforce desk on two nodes", () => {
  let redis: TestRedis;
  let sf: FakeSalesforce;
  let redisClient: Redis;
  const nodes: GatewayNode[] = [];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    redisClient = new Redis(redis.url);
    sf = await startFakeSalesforce({ messaging: { pingIntervalMs: 500 } });
    const env = {
      REDIS_URL: redis.url,
      REDIS_PREFIX: PREFIX,
      SALESFORCE_MESSAGING_URL: sf.messaging.url,
      SALESFORCE_ORG_ID: sf.orgId,
      SALESFORCE_MESSAGING_DEPLOYMENT: DEFAULT_DEPLOYMENT,
    };
    const tuning = {
      outboxLeaseMs: 1_500,
      retryMaxMs: 1_000,
      deskStreamScanMs: 200,
      deskStreamLeaseMs: 1_500,
      deskStreamRestartBaseMs: 100,
      deskStreamRestartMaxMs: 500,
    };
    nodes.push(...(await Promise.all(["s1", "s2"].map((name) => startNode(name, env, tuning)))));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(nodes.map((node) => node.kill("SIGTERM")));
    redisClient.disconnect();
    await sf.close();
    await redis.close();
  });

  const conversationOf = async (conversationId: string) => {
    const raw = await redisClient.get(`${PREFIX}c:${conversationId}`);
    return raw === null ? undefined : (JSON.parse(raw) as { desk: { ids: Record<string, string>; openedAt?: string } });
  };
  const streamHolder = (conversationId: string) => redisClient.get(`${PREFIX}lease:ds:${conversationId}`);

  it("moves a conversation's event stream to the other node when its node dies, losing and doubling nothing", async () => {
    const [s1, s2] = nodes as [GatewayNode, GatewayNode];
    const init = (
      await postJson(`${s1.url}/api/customer/init`, {
        firstName: "Sara",
        lastName: "Khan",
        channel: "web",
        email: "sara@example.org",
      })
    ).body as InitResponse;
    const { conversationId } = init;
    let id = "";
    await expect
      .poll(
        async () => {
          const conversation = await conversationOf(conversationId);
          id = conversation?.desk.openedAt === undefined ? "" : (conversation.desk.ids.conversationId ?? "");
          return id;
        },
        { timeout: 10_000 },
      )
      .not.toBe("");
    await expect.poll(() => streamHolder(conversationId), { timeout: 10_000 }).toBeTruthy();
    const holderName = await streamHolder(conversationId);
    const dying = nodes.find((node) => node.name === holderName) as GatewayNode;
    const surviving = dying === s1 ? s2 : s1;

    // The customer is connected to the node that survives.
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

    const subject = sf.messaging.conversation(id)?.subject;
    await expect.poll(() => sf.messaging.streams().some((s) => s.open && s.subject === subject)).toBe(true);
    sf.messaging.route(id);
    sf.messaging.accept(id);
    sf.messaging.agentSend(id, "m1");
    sf.messaging.agentSend(id, "m2");
    await expect.poll(() => chats(inbox.messages)).toEqual(["m1", "m2"]);

    await dying.kill("SIGKILL");
    // While no node reads the stream, the agent writes and the customer too.
    sf.messaging.agentSend(id, "m3");
    sf.messaging.agentSend(id, "m4");
    await request(socket, "sendMessage", { conversationId, text: "c1" });
    await expect.poll(() => streamHolder(conversationId), { timeout: 10_000 }).toBe(surviving.name);
    await expect.poll(() => chats(inbox.messages), { timeout: 10_000 }).toEqual(["m1", "m2", "m3", "m4"]);
    await expect
      .poll(
        () =>
          sf.messaging
            .agentView(id)
            .filter((item) => item.kind === "text")
            .map((item) => item.text),
        { timeout: 10_000 },
      )
      .toEqual(["c1"]);
    sf.messaging.agentSend(id, "m5");
    await expect.poll(() => chats(inbox.messages)).toEqual(["m1", "m2", "m3", "m4", "m5"]);

    // The surviving node's stream took over from the last event the dead node recorded (a stored cursor, not the
    // token's starting point), and only one stream of the end user is open.
    const streams = sf.messaging.streams().filter((s) => s.subject === subject);
    const [first, last] = [streams[0], streams.at(-1)];
    expect(streams.filter((s) => s.open)).toHaveLength(1);
    expect(first?.delivered).toContain(last?.lastEventId);
    expect(sf.violations).toEqual([]);
  });
});
