import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ConversationInfo, InitResponse, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";

const label = (m: Message): string => (m.type === "ChatMessage" ? m.text : `[${m.activityType}]`);

describe("presence and resume edge cases", () => {
  let gateway: TestApp;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    gateway = await startTestApp({}, { tuning: { presenceGraceMs: 300 } });
  });
  afterAll(async () => {
    await gateway.close();
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  const open = async (apiKey?: string) => {
    const socket = await connect(gateway.url, apiKey === undefined ? {} : { apiKey });
    sockets.push(socket);
    return socket;
  };
  const start = async () =>
    (await postJson(`${gateway.url}/api/customer/init`, { firstName: "Sara", channel: "web", email: "s@example.org" }))
      .body as InitResponse;
  const joinAgent = async (conversationId: string) => {
    const agent = await open(gateway.apiKey);
    await request(agent, "joinConversation", { conversationId, id: "agent-1", name: "Ali", role: "agent" });
    return agent;
  };
  const state = async (conversationId: string) => {
    const observer = await open(gateway.apiKey);
    const info = nextEvent<ConversationInfo>(observer, "conversationInfo");
    await request(observer, "joinConversation", { conversationId, id: "sup", name: "Sup", role: "supervisor" });
    return (await info).conversation;
  };

  it("a join with `since` beyond the end still receives every later message", async () => {
    const init = await start();
    const customer = await open();
    const info = nextEvent<ConversationInfo>(customer, "conversationInfo");
    await request(customer, "joinConversation", {
      conversationId: init.conversationId,
      id: "c",
      name: "S",
      token: init.token,
      since: 50,
    });
    expect((await info).messages).toEqual([]);
    const inbox = collectMessages(customer);
    const agent = await joinAgent(init.conversationId);
    await request(agent, "sendMessage", { conversationId: init.conversationId, text: "hello" });
    await inbox.waitFor(2);
    expect(inbox.messages.map(label)).toEqual(["[participantJoined]", "hello"]);
  });

  it("an agent whose socket drops and does not come back within the grace period leaves, and the chat is queued again", async () => {
    const init = await start();
    const customer = await open();
    await request(customer, "joinConversation", {
      conversationId: init.conversationId,
      id: "c",
      name: "S",
      token: init.token,
    });
    const inbox = collectMessages(customer);
    const agent = await joinAgent(init.conversationId);
    expect((await state(init.conversationId)).state).toBe("active");
    agent.disconnect();
    await inbox.waitFor(2, 3_000);
    expect(inbox.messages.map(label)).toEqual(["[participantJoined]", "[participantLeft]"]);
    const after = await state(init.conversationId);
    expect(after.state).toBe("queued");
    expect(after.agent).toBeUndefined();
  });

  it("an agent who reconnects within the grace period never appears to leave", async () => {
    const init = await start();
    const customer = await open();
    await request(customer, "joinConversation", {
      conversationId: init.conversationId,
      id: "c",
      name: "S",
      token: init.token,
    });
    const inbox = collectMessages(customer);
    const agent = await joinAgent(init.conversationId);
    agent.disconnect();
    const back = await joinAgent(init.conversationId);
    // Past the grace period: a marker proves nothing else was delivered in between.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await request(back, "sendMessage", { conversationId: init.conversationId, text: "still here" });
    await inbox.waitFor(2);
    expect(inbox.messages.map(label)).toEqual(["[participantJoined]", "still here"]);
    expect((await state(init.conversationId)).state).toBe("active");
  });
});

describe("two agents and limits", () => {
  it("keeps the conversation active while a second agent is still in it", async () => {
    const gateway = await startTestApp();
    const sockets: Socket[] = [];
    try {
      const init = (
        await postJson(`${gateway.url}/api/customer/init`, { firstName: "A", channel: "web", email: "a@x.org" })
      ).body as InitResponse;
      const join = async (id: string) => {
        const socket = await connect(gateway.url, { apiKey: gateway.apiKey });
        sockets.push(socket);
        await request(socket, "joinConversation", { conversationId: init.conversationId, id, name: id, role: "agent" });
        return socket;
      };
      const ali = await join("ali");
      await join("bea");
      await request(ali, "leaveConversation", { conversationId: init.conversationId });
      const observer = await connect(gateway.url, { apiKey: gateway.apiKey });
      sockets.push(observer);
      const info = nextEvent<ConversationInfo>(observer, "conversationInfo");
      await request(observer, "joinConversation", {
        conversationId: init.conversationId,
        id: "s",
        name: "s",
        role: "supervisor",
      });
      expect((await info).conversation.state).toBe("active");
    } finally {
      for (const socket of sockets) socket.close();
      await gateway.close();
    }
  });

  it("rate-limits a customer socket that floods, and lets it go on afterwards", async () => {
    const gateway = await startTestApp({ CUSTOMER_EVENTS_PER_SECOND: "5", CUSTOMER_EVENTS_BURST: "5" });
    const customer = await connect(gateway.url);
    try {
      const init = (
        await postJson(`${gateway.url}/api/customer/init`, { firstName: "A", channel: "web", email: "a@x.org" })
      ).body as InitResponse;
      await request(customer, "joinConversation", {
        conversationId: init.conversationId,
        id: "c",
        name: "A",
        token: init.token,
      });
      const acks = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          request<{ ok: boolean; error?: { code: string; details?: { retryAfterMs?: number } } }>(
            customer,
            "sendMessage",
            {
              conversationId: init.conversationId,
              text: `m${i}`,
            },
          ),
        ),
      );
      const limited = acks.filter((ack) => !ack.ok);
      expect(acks.filter((ack) => ack.ok).length).toBeGreaterThanOrEqual(4);
      expect(limited.length).toBeGreaterThan(0);
      expect(
        limited.every((ack) => ack.error?.code === "rate_limited" && (ack.error.details?.retryAfterMs ?? 0) > 0),
      ).toBe(true);
      await expect
        .poll(
          async () =>
            (
              await request<{ ok: boolean }>(customer, "sendMessage", {
                conversationId: init.conversationId,
                text: "later",
              })
            ).ok,
        )
        .toBe(true);
    } finally {
      customer.close();
      await gateway.close();
    }
  });
});
