import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ChatMessage, InitResponse, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";

const text = (message: Message): string =>
  message.type === "ChatMessage" ? message.text : `[${message.activityType}]`;

describe("connectors: at-least-once delivery to SMS-style channels", () => {
  let gateway: TestApp;
  const sockets: Socket[] = [];
  let phone = 0;

  beforeAll(async () => {
    gateway = await startTestApp({ CONNECTOR_ACK_TIMEOUT_MS: "300" });
  });
  afterAll(async () => {
    await gateway.close();
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  const open = async (apiKey?: string): Promise<Socket> => {
    const socket = await connect(gateway.url, apiKey === undefined ? {} : { apiKey });
    sockets.push(socket);
    return socket;
  };

  /** An SMS customer: the connector calls init with the customer's number. */
  const smsConversation = async (channel = "sms") => {
    const refId = `+9230000${String(++phone).padStart(5, "0")}`;
    const res = await postJson(
      `${gateway.url}/api/customer/init`,
      { firstName: "Bilal", channel, refId },
      { authorization: `Bearer ${gateway.apiKey}` },
    );
    expect(res.status).toBe(200);
    return { ...(res.body as InitResponse), refId };
  };

  const joinAsAgent = async (conversationId: string) => {
    const agent = await open(gateway.apiKey);
    const ack = await request(agent, "joinConversation", {
      conversationId,
      id: "agent-7",
      name: "Ayesha",
      role: "agent",
    });
    expect(ack).toEqual({ ok: true });
    return agent;
  };

  it("registers only API-key sockets, with id equal to channel", async () => {
    const anonymous = await open();
    expect(await request(anonymous, "registerConnector", { id: "sms", name: "SMS", channel: "sms" })).toMatchObject({
      ok: false,
      error: { code: "unauthorized" },
    });
    const keyed = await open(gateway.apiKey);
    expect(await request(keyed, "registerConnector", { id: "gw", name: "SMS", channel: "sms" })).toMatchObject({
      ok: false,
      error: { code: "invalid_payload" },
    });
    expect(await request(keyed, "registerConnector", { id: "sms", name: "SMS gateway", channel: "sms" })).toEqual({
      ok: true,
      connector: { id: "sms", name: "SMS gateway", channel: "sms" },
    });
    expect(await request(keyed, "registerConnector", { id: "fb", name: "FB", channel: "fb" })).toMatchObject({
      ok: false,
      error: { code: "conflict" },
    });
  });

  it("rejects a bad API key at the handshake", async () => {
    await expect(connect(gateway.url, { apiKey: "wrong" })).rejects.toThrow(/unauthorized/);
  });

  it("delivers agent replies and activities to one connector with the customer's refId, not the customer's own messages", async () => {
    const conversation = await smsConversation("sms-a");
    const connector = await open(gateway.apiKey);
    const other = await open(gateway.apiKey);
    const first = collectMessages(connector);
    const second = collectMessages(other);
    await request(connector, "registerConnector", { id: "sms-a", name: "gw-1", channel: "sms-a" });
    await request(other, "registerConnector", { id: "sms-a", name: "gw-2", channel: "sms-a" });
    await first.waitFor(1); // the hand-off

    // The connector relays the customer's SMS without joining.
    const inbound = await request(connector, "sendMessage", {
      conversationId: conversation.conversationId,
      text: "my parcel?",
    });
    expect(inbound).toMatchObject({ ok: true, seq: 2 });
    const agent = await joinAsAgent(conversation.conversationId);
    const agentInbox = collectMessages(agent);
    await request(agent, "sendMessage", { conversationId: conversation.conversationId, text: "It ships today." });
    await request(agent, "sendMessage", {
      conversationId: conversation.conversationId,
      text: "internal",
      tag: "whisper",
    });
    await request(agent, "sendMessage", { conversationId: conversation.conversationId, text: "Anything else?" });

    // The customer's own message is not echoed and the whisper never leaves the agents: the connector gets the
    // greeting (its customer's first message), the agent joining and the two replies, in seq order.
    await request(agent, "sendMessage", { conversationId: conversation.conversationId, text: "marker" });
    const delivered = await first.waitFor(6);
    expect(delivered.map(text)).toEqual([
      "[handOff]",
      "[greetings]",
      "[participantJoined]",
      "It ships today.",
      "Anything else?",
      "marker",
    ]);
    expect(delivered.every((m) => m.refId === conversation.refId)).toBe(true);
    expect(delivered.map((m) => m.seq)).toEqual([1, 3, 4, 5, 7, 8]);
    expect(second.messages).toEqual([]);
    // The next customer message relayed by the connector reaches the agent live.
    await request(connector, "sendMessage", { conversationId: conversation.conversationId, text: "no, thanks" });
    await agentInbox.waitFor(1);
    expect(agentInbox.messages.map(text)).toEqual(["no, thanks"]);
  });

  it("offers an unacknowledged delivery again with the same id, and stops once it is acked", async () => {
    const conversation = await smsConversation("sms-b");
    const connector = await open(gateway.apiKey);
    const offers: Message[] = [];
    let refuse = 2;
    connector.on("messageArrived", (message: Message, ack: (res: { ok: boolean }) => void) => {
      offers.push(message);
      if (message.type === "ChatMessage" && refuse > 0) {
        refuse -= 1;
        return; // no ack: the gateway must offer it again
      }
      ack({ ok: true });
    });
    await request(connector, "registerConnector", { id: "sms-b", name: "gw", channel: "sms-b" });
    const agent = await joinAsAgent(conversation.conversationId);
    const ack = await request<{ id: string }>(agent, "sendMessage", {
      conversationId: conversation.conversationId,
      text: "Your code is 4411",
    });
    await expect.poll(() => offers.filter((m) => m.id === ack.id).length, { timeout: 5_000 }).toBe(3);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/liaison_delivery_retries_total\{destination="connector:sms-b"\} [1-9]/);
    // A later message still flows, and the acked one is not offered a fourth time.
    await request(agent, "sendMessage", { conversationId: conversation.conversationId, text: "marker" });
    await expect.poll(() => offers.some((m) => text(m) === "marker"), { timeout: 5_000 }).toBe(true);
    expect(offers.filter((m) => m.id === ack.id)).toHaveLength(3);
  });

  it("moves a delivery to another connector socket when the first one disconnects without acking", async () => {
    const conversation = await smsConversation("sms-c");
    const silent = await open(gateway.apiKey);
    const silentSeen: Message[] = [];
    silent.on("messageArrived", (message: Message) => silentSeen.push(message));
    await request(silent, "registerConnector", { id: "sms-c", name: "gw-silent", channel: "sms-c" });
    await expect.poll(() => silentSeen.length).toBeGreaterThan(0); // the hand-off reached the silent one
    const healthy = await open(gateway.apiKey);
    const inbox = collectMessages(healthy);
    await request(healthy, "registerConnector", { id: "sms-c", name: "gw-ok", channel: "sms-c" });
    silent.close();
    const agent = await joinAsAgent(conversation.conversationId);
    await request(agent, "sendMessage", { conversationId: conversation.conversationId, text: "hello from agent" });
    const got = await inbox.waitFor(3);
    expect(got.map(text)).toEqual(["[handOff]", "[participantJoined]", "hello from agent"]);
  });

  it("holds messages durably while no connector is connected and sends them oldest first when one registers", async () => {
    const conversation = await smsConversation("sms-d");
    const agent = await joinAsAgent(conversation.conversationId);
    for (const line of ["one", "two", "three"]) {
      await request(agent, "sendMessage", { conversationId: conversation.conversationId, text: line });
    }
    const connector = await open(gateway.apiKey);
    const inbox = collectMessages(connector);
    await request(connector, "registerConnector", { id: "sms-d", name: "gw", channel: "sms-d" });
    const got = await inbox.waitFor(5);
    expect(got.map(text)).toEqual(["[handOff]", "[participantJoined]", "one", "two", "three"]);
    expect(got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it("POST /api/connectors/:channel/messages queues campaign messages and reports queued or sent", async () => {
    const url = (channel: string) => `${gateway.url}/api/connectors/${channel}/messages`;
    const auth = { authorization: `Bearer ${gateway.apiKey}` };
    expect((await postJson(url("sms-e"), { refId: "+92300", text: "hi" })).status).toBe(401);
    expect(await postJson(url("sms-e"), { refId: "+92300" }, auth)).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_payload" } },
    });
    expect((await postJson(url("web"), { refId: "+92300", text: "hi" }, auth)).status).toBe(400);

    const queued = await postJson(url("sms-e"), { refId: "+923001111111", text: "Sale today", id: "camp-1" }, auth);
    expect(queued).toMatchObject({ status: 202, body: { id: "camp-1", status: "queued" } });
    const again = await postJson(url("sms-e"), { refId: "+923001111111", text: "Sale today", id: "camp-1" }, auth);
    expect(again).toMatchObject({ status: 202, body: { id: "camp-1" } });

    const connector = await open(gateway.apiKey);
    const inbox = collectMessages(connector);
    await request(connector, "registerConnector", { id: "sms-e", name: "gw", channel: "sms-e" });
    const [campaign] = await inbox.waitFor(1);
    expect(campaign).toMatchObject({ type: "ChatMessage", id: "camp-1", refId: "+923001111111", text: "Sale today" });

    // With a connector online and an open conversation for that number, it is recorded there and sent.
    const conversation = await smsConversation("sms-e");
    const sent = await postJson(url("sms-e"), { refId: conversation.refId, text: "Order 7 shipped" }, auth);
    expect(sent).toMatchObject({ status: 202, body: { status: "sent", conversationId: conversation.conversationId } });
    const delivered = await inbox.waitFor(3);
    expect(delivered.map(text)).toEqual(["Sale today", "[handOff]", "Order 7 shipped"]);
    expect(delivered.filter((m) => text(m) === "Sale today")).toHaveLength(1);
    const history = await (async () => {
      const agent = await open(gateway.apiKey);
      const info = nextEvent<{ messages: ChatMessage[] }>(agent, "conversationInfo");
      await request(agent, "joinConversation", {
        conversationId: conversation.conversationId,
        id: "sup",
        name: "S",
        role: "supervisor",
      });
      return (await info).messages;
    })();
    expect(history.map(text)).toContain("Order 7 shipped");
  });
});

describe("connectors: a message a connector refuses for good", () => {
  it("is given up after CONNECTOR_MAX_REFUSALS, reported to agents, and never blocks other conversations", async () => {
    const gateway = await startTestApp({ CONNECTOR_MAX_REFUSALS: "3" }, { tuning: { connectorMaxInFlight: 2 } });
    const sockets: Socket[] = [];
    try {
      const init = async (refId: string) =>
        (
          await postJson(
            `${gateway.url}/api/customer/init`,
            { firstName: "Ana", channel: "sms", refId },
            { authorization: `Bearer ${gateway.apiKey}` },
          )
        ).body as InitResponse;
      const blocked = await init("+923000000001");
      const fine = await init("+923000000002");
      const connector = await connect(gateway.url, { apiKey: gateway.apiKey });
      sockets.push(connector);
      const offered: Message[] = [];
      connector.on("messageArrived", (message: Message, ack: (res: { ok: boolean }) => void) => {
        offered.push(message);
        // The provider rejects this one number (a blocked recipient), and accepts everything else.
        ack({ ok: message.refId !== "+923000000001" });
      });
      await request(connector, "registerConnector", { id: "sms", name: "gw", channel: "sms" });
      const agent = await connect(gateway.url, { apiKey: gateway.apiKey });
      sockets.push(agent);
      for (const conversation of [blocked, fine]) {
        await request(agent, "joinConversation", {
          conversationId: conversation.conversationId,
          id: "a1",
          name: "Ali",
          role: "agent",
        });
      }
      const inbox = collectMessages(agent);
      for (const line of ["one", "two", "three"]) {
        await request(agent, "sendMessage", { conversationId: blocked.conversationId, text: line });
      }
      await request(agent, "sendMessage", { conversationId: fine.conversationId, text: "for the other customer" });
      // The other customer's message goes through while the blocked one is retried.
      await expect
        .poll(() => offered.some((m) => m.refId === "+923000000002" && text(m) === "for the other customer"), {
          timeout: 8_000,
        })
        .toBe(true);
      // Each of the five entries queued for the blocked customer (hand-off, the agent joining, three replies) is
      // refused 3 times, given up in order, and reported to the agent; none reaches the connector a 4th time.
      const failures = () =>
        inbox.messages.filter(
          (m): m is Extract<Message, { activityType: "deliveryFailed" }> =>
            m.type === "ActivityMessage" && m.activityType === "deliveryFailed",
        );
      await expect.poll(() => failures().length, { timeout: 15_000 }).toBe(5);
      const failedIds = failures().map((m) => m.info.messageId);
      const blockedOffers = offered.filter((m) => m.refId === "+923000000001");
      const replies = blockedOffers.filter((m) => m.type === "ChatMessage");
      expect([...new Set(replies.map(text))]).toEqual(["one", "two", "three"]);
      for (const reply of new Set(replies.map((m) => m.id))) {
        expect(blockedOffers.filter((m) => m.id === reply)).toHaveLength(3);
        expect(failedIds).toContain(reply);
      }
      expect(failures().every((m) => m.info.destination === "connector:sms")).toBe(true);
      // The reports stay with the agents: the connector is not offered them.
      expect(offered.some((m) => m.type === "ActivityMessage" && m.activityType === "deliveryFailed")).toBe(false);
    } finally {
      for (const socket of sockets) socket.close();
      await gateway.close();
    }
  });
});

describe("connectors: what a registered connector may do", () => {
  it("joins its channel's conversations as a connector only, and registers before joining", async () => {
    const gateway = await startTestApp();
    const sockets: Socket[] = [];
    const open = async () => {
      const socket = await connect(gateway.url, { apiKey: gateway.apiKey });
      sockets.push(socket);
      return socket;
    };
    try {
      const sms = (
        await postJson(
          `${gateway.url}/api/customer/init`,
          { firstName: "A", channel: "sms", refId: "+9230001" },
          { authorization: `Bearer ${gateway.apiKey}` },
        )
      ).body as InitResponse;
      const connector = await open();
      await request(connector, "registerConnector", { id: "sms", name: "gw", channel: "sms" });
      for (const role of ["agent", "supervisor", "bot"]) {
        expect(
          await request(connector, "joinConversation", {
            conversationId: sms.conversationId,
            id: "x",
            name: "x",
            role,
          }),
        ).toMatchObject({ ok: false, error: { code: "forbidden" } });
      }
      expect(
        await request(connector, "joinConversation", { conversationId: sms.conversationId, id: "x", name: "x" }),
      ).toEqual({
        ok: true,
      });

      const late = await open();
      await request(late, "joinConversation", { conversationId: sms.conversationId, id: "x", name: "x" });
      expect(await request(late, "registerConnector", { id: "sms", name: "gw", channel: "sms" })).toMatchObject({
        ok: false,
        error: { code: "conflict" },
      });
    } finally {
      for (const socket of sockets) socket.close();
      await gateway.close();
    }
  });

  it("never shows a supervisor's typing to the customer, while agents see it", async () => {
    const gateway = await startTestApp();
    const sockets: Socket[] = [];
    try {
      const init = (
        await postJson(`${gateway.url}/api/customer/init`, { firstName: "A", channel: "web", email: "a@x.org" })
      ).body as InitResponse;
      const customer = await connect(gateway.url);
      const agent = await connect(gateway.url, { apiKey: gateway.apiKey });
      const supervisor = await connect(gateway.url, { apiKey: gateway.apiKey });
      sockets.push(customer, agent, supervisor);
      await request(customer, "joinConversation", {
        conversationId: init.conversationId,
        id: "c",
        name: "A",
        token: init.token,
      });
      await request(agent, "joinConversation", {
        conversationId: init.conversationId,
        id: "a1",
        name: "Ali",
        role: "agent",
      });
      await request(supervisor, "joinConversation", {
        conversationId: init.conversationId,
        id: "s1",
        name: "Sue",
        role: "supervisor",
      });
      const customerInbox = collectMessages(customer);
      const agentInbox = collectMessages(agent);
      const typing = {
        conversationId: init.conversationId,
        type: "ActivityMessage",
        activityType: "typing",
        info: { state: "start" },
      };
      await request(supervisor, "sendMessage", typing);
      await request(agent, "sendMessage", { conversationId: init.conversationId, text: "marker" });
      await customerInbox.waitFor(1);
      await agentInbox.waitFor(1);
      expect(customerInbox.messages.map(text)).toEqual(["marker"]);
      expect(agentInbox.messages.map(text)).toEqual(["[typing]"]);
    } finally {
      for (const socket of sockets) socket.close();
      await gateway.close();
    }
  });
});
