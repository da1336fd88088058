import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityOf, ChatMessage, ConversationInfo, InitResponse, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import {
  collectMessages,
  connect,
  nextEvent,
  postJson,
  request,
  webCustomer as startWebCustomer,
} from "../helpers/socket.js";
import {
  DEFAULT_FAKE_USER,
  startFakeRocketChat,
  type FakeRocketChat,
  type FakeRocketChatOptions,
} from "../fakes/rocketchat/index.js";

const SECRET = "rc-webhook-secret";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Liaison with the Rocket.Chat desk, and a fake Rocket.Chat whose webhook points back at Liaison. */
async function scenario(fakeOptions: FakeRocketChatOptions = {}, env: Record<string, string> = {}) {
  const fake = await startFakeRocketChat({ secretToken: SECRET, retryIntervalMs: 100, ...fakeOptions });
  cleanups.push(() => fake.close());
  const gateway = await startTestApp(
    {
      ROCKETCHAT_URL: fake.url,
      ROCKETCHAT_WEBHOOK_TOKEN: SECRET,
      ROCKETCHAT_USER_ID: DEFAULT_FAKE_USER.userId,
      ROCKETCHAT_AUTH_TOKEN: DEFAULT_FAKE_USER.authToken,
      ...env,
    },
    { tuning: { retryMaxMs: 1_000, noAgentRetryMaxMs: 1_000 } },
  );
  cleanups.push(() => gateway.close());
  fake.setWebhookUrl(`${gateway.url}/webhooks/rocketchat`);
  return { fake, gateway };
}

async function open(gateway: TestApp, apiKey?: string): Promise<Socket> {
  const socket = await connect(gateway.url, apiKey === undefined ? {} : { apiKey });
  cleanups.push(() => {
    socket.close();
  });
  return socket;
}

/** A web customer who started a conversation and joined it (closed after the test). */
async function webCustomer(gateway: TestApp, body: Record<string, string> = {}) {
  const customer = await startWebCustomer(gateway.url, body);
  cleanups.push(() => {
    customer.socket.close();
  });
  return customer;
}

const rid = async (gateway: TestApp, conversationId: string): Promise<string> => {
  let found: string | undefined;
  await expect
    .poll(async () => {
      found = (await gateway.app.store.get(conversationId))?.desk.ids.rid;
      return found;
    })
    .toBeTruthy();
  return found ?? "";
};
const visitorTexts = (fake: FakeRocketChat, room: string) =>
  fake
    .messages(room)
    .filter((m) => m.t === undefined && m.token !== undefined)
    .map((m) => m.msg);
const label = (m: Message): string => (m.type === "ChatMessage" ? m.text : `[${m.activityType}]`);
const activities = (messages: Message[], type: string) =>
  messages.filter((m) => m.type === "ActivityMessage" && m.activityType === type);
const state = async (gateway: TestApp, conversationId: string) => (await gateway.app.store.get(conversationId))?.state;

describe("Rocket.Chat desk end to end", () => {
  it("carries a web conversation through its whole life: hand-off, both ways, emoji, edit, files, agent closes", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    await expect.poll(() => activities(customer.inbox.messages, "participantJoined").length).toBe(2);
    const joins = activities(customer.inbox.messages, "participantJoined") as ActivityOf<"participantJoined">[];
    expect(joins.map((m) => m.info).find((info) => info.role === "agent")).toEqual({
      participant: { id: "rocketchat:agent1", name: "Jane Doe" },
      role: "agent",
    });
    expect(await state(gateway, customer.init.conversationId)).toBe("active");
    const room = await rid(gateway, customer.init.conversationId);

    await customer.send("Where is my order 8812?");
    await customer.send("It is late :(");
    await expect.poll(() => visitorTexts(fake, room)).toEqual(["Where is my order 8812?", "It is late :("]);

    const reply = fake.agentSend(room, "Hello :wave: checking now :thumbsup:");
    const agentMessages = () => customer.inbox.messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
    await expect.poll(() => agentMessages().length).toBe(1);
    expect(agentMessages()[0]).toMatchObject({
      id: `rocketchat:${reply._id}`,
      from: { id: "rocketchat:agent1", name: "Jane Doe" },
      text: "Hello 👋 checking now 👍️",
    });

    fake.agentEdit(room, reply._id, "Hello :wave: checking order 8812 now");
    await expect.poll(() => agentMessages().length).toBe(2);
    expect(agentMessages()[1]).toMatchObject({
      text: "Hello 👋 checking order 8812 now",
      replaces: `rocketchat:${reply._id}`,
    });

    const map = Buffer.from("fake-png-bytes-\u0001\u0002");
    fake.agentSendFile(room, {
      name: "route map.png",
      type: "image/png",
      content: map,
      description: "Your parcel's route",
    });
    await expect.poll(() => agentMessages().length).toBe(3);
    const file = agentMessages()[2];
    expect(file?.text).toBe("Your parcel's route");
    expect(file?.attachments[0]).toMatchObject({ type: "image/png", name: "route map.png" });
    const link = file?.attachments[0]?.contentUrl ?? "";
    expect(link.startsWith(`${gateway.url}/files/rocketchat/`)).toBe(true);
    const download = await fetch(link);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await download.arrayBuffer()).equals(map)).toBe(true);
    expect((await fetch(link.replace(/sig=[^&]+/, "sig=forged"))).status).toBe(403);

    const receipt = Buffer.from("%PDF-1.4 receipt");
    await customer.send("", {
      attachments: [
        {
          type: "application/pdf",
          name: "receipt.pdf",
          contentUrl: `data:application/pdf;base64,${receipt.toString("base64")}`,
        },
      ],
    });
    await expect.poll(() => fake.files().filter((f) => f.rid === room && f.name === "receipt.pdf").length).toBe(1);
    expect(
      fake
        .files()
        .find((f) => f.name === "receipt.pdf")
        ?.content.equals(receipt),
    ).toBe(true);

    fake.closeByAgent(room, "Thanks, bye");
    await expect.poll(() => activities(customer.inbox.messages, "endOfConversation").length).toBe(1);
    const end = activities(customer.inbox.messages, "endOfConversation")[0] as ActivityOf<"endOfConversation">;
    expect(end.info.endedBy).toMatchObject({ id: "rocketchat:agent1", role: "agent" });
    expect(await state(gateway, customer.init.conversationId)).toBe("ended");
    await fake.whenWebhooksIdle();
    // Rocket.Chat closed it: Liaison does not try to close it again.
    expect(fake.requests.some((r) => r.path.includes("room.close"))).toBe(false);
    expect(activities(customer.inbox.messages, "endOfConversation")).toHaveLength(1);
  });

  it("closes the Rocket.Chat room when the customer ends, and records the end once", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    await customer.send("bye then");
    await request(customer.socket, "endConversation", { conversationId: customer.init.conversationId, reason: "done" });
    await expect.poll(() => fake.room(room)?.open).toBe(false);
    expect(visitorTexts(fake, room)).toEqual(["bye then"]);
    await fake.whenWebhooksIdle();
    const stored = await gateway.app.store.read(customer.init.conversationId, 0);
    expect(stored.filter((m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation")).toHaveLength(
      1,
    );
  });

  it("serves an SMS customer through a connector, with agent replies delivered to the connector", async () => {
    const { fake, gateway } = await scenario();
    const connector = await open(gateway, gateway.apiKey);
    const delivered = collectMessages(connector);
    await request(connector, "registerConnector", { id: "sms", name: "SMS gateway", channel: "sms" });
    const init = (
      await postJson(
        `${gateway.url}/api/customer/init`,
        { firstName: "Bilal", channel: "sms", refId: "+923001234567" },
        { authorization: `Bearer ${gateway.apiKey}` },
      )
    ).body as InitResponse;
    await request(connector, "sendMessage", { conversationId: init.conversationId, text: "Is my parcel out?" });
    const room = await rid(gateway, init.conversationId);
    await expect.poll(() => visitorTexts(fake, room)).toEqual(["Is my parcel out?"]);
    expect(fake.visitors().find((v) => v.token === fake.room(room)?.v.token)?.phone).toEqual([
      { phoneNumber: "+923001234567" },
    ]);
    fake.agentSend(room, "Yes, today :truck:");
    await expect
      .poll(() => delivered.messages.some((m) => m.type === "ChatMessage" && m.text === "Yes, today 🚚"))
      .toBe(true);
    const sms = delivered.messages.find((m) => m.type === "ChatMessage");
    expect(sms?.refId).toBe("+923001234567");
    fake.closeByAgent(room);
    await expect.poll(() => activities(delivered.messages, "endOfConversation").length).toBe(1);
  });

  it("delivers every message once, in order, through Rocket.Chat being down and rate limiting, and before the room exists", async () => {
    const { fake, gateway } = await scenario();
    fake.goDown("503");
    const customer = await webCustomer(gateway);
    for (const text of ["a1", "a2", "a3"]) expect((await customer.send(text)).ok).toBe(true);
    await expect.poll(() => fake.requests.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    fake.comeUp();
    const room = await rid(gateway, customer.init.conversationId);
    await expect.poll(() => visitorTexts(fake, room), { timeout: 10_000 }).toEqual(["a1", "a2", "a3"]);

    fake.goDown("reset");
    for (const text of ["b1", "b2"]) await customer.send(text);
    await expect.poll(() => fake.requests.filter((r) => r.status === 0).length).toBeGreaterThan(0);
    fake.comeUp();
    fake.failNext(2, 429, { retryAfterSeconds: 1 });
    for (const text of ["c1", "c2", "c3"]) await customer.send(text);
    await expect
      .poll(() => visitorTexts(fake, room), { timeout: 15_000 })
      .toEqual(["a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3"]);
    expect(fake.requests.some((r) => r.status === 429)).toBe(true);
  });

  it("answers wrong-token webhooks 401, ignores rooms it does not handle, and records a repeated webhook once", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    fake.agentSend(room, "first reply");
    await fake.whenWebhooksIdle();
    const delivery = [...fake.webhookAttempts].reverse().find((a) => a.type === "Message" && a.status === 200);
    expect(delivery).toBeDefined();
    const post = (body: unknown, token?: string) =>
      postJson(
        `${gateway.url}/webhooks/rocketchat`,
        body,
        token === undefined ? {} : { "x-rocketchat-livechat-token": token },
      );

    expect((await post(delivery?.body)).status).toBe(401);
    expect((await post(delivery?.body, "wrong")).status).toBe(401);
    // Rocket.Chat retrying a delivery it thought failed: recorded once. The legacy path works the same.
    expect((await post(delivery?.body, SECRET)).status).toBe(200);
    expect(
      (
        await postJson(`${gateway.url}/live-agents/sendMessageToClient`, delivery?.body, {
          "x-rocketchat-livechat-token": SECRET,
        })
      ).status,
    ).toBe(200);
    fake.agentSend(room, "second reply");
    await expect
      .poll(() => customer.inbox.messages.filter((m) => m.type === "ChatMessage").map(label))
      .toEqual(["first reply", "second reply"]);

    // The sample Rocket.Chat's "Send Test" button posts (no message _id, email and phone as strings): accepted.
    const sample = {
      type: "LivechatSession",
      _id: "fasd6f5a4sd6f8a4sdf",
      label: "title",
      visitor: { _id: "", token: "123456789", name: "", email: "test@example.com", phone: "123456789" },
      messages: [{ username: "test", msg: "test message", ts: "2026-11-21T10:00:00.000Z" }],
    };
    expect(await post(sample, SECRET)).toMatchObject({ status: 200 });
    const stranger = { type: "Message", _id: "someone-elses-room", visitor: { token: "widget-token" }, messages: [] };
    expect(await post(stranger, SECRET)).toMatchObject({ status: 200 });
    expect(await post({ nonsense: true }, SECRET)).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_payload" } },
    });
  });

  it("answers each kind of webhook request with its status and error code", async () => {
    const { fake, gateway } = await scenario({}, { MAX_PAYLOAD_BYTES: "2048" });
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    fake.agentSend(room, "first reply");
    await fake.whenWebhooksIdle();
    const delivery = [...fake.webhookAttempts].reverse().find((a) => a.type === "Message" && a.status === 200);
    if (delivery === undefined) throw new Error("no Message webhook delivered");
    // The delivered body again, as a new agent message: another id and text.
    const message = (id: string) => {
      const body = structuredClone(delivery.body) as { messages?: { _id?: string; msg?: string }[] };
      for (const m of body.messages ?? []) Object.assign(m, { _id: id, msg: `reply ${id}` });
      return body;
    };
    const token = { "x-rocketchat-livechat-token": SECRET };
    const requests: [string, unknown, Record<string, string>, { status: number; body: unknown }][] = [
      ["no token", message("m1"), {}, { status: 401, body: { error: { code: "unauthorized" } } }],
      [
        "wrong token",
        message("m1"),
        { "x-rocketchat-livechat-token": "wrong" },
        { status: 401, body: { error: { code: "unauthorized" } } },
      ],
      ["bad JSON", "{not json", token, { status: 400, body: { error: { code: "invalid_payload" } } }],
      ["bare value", "42", token, { status: 400, body: { error: { code: "invalid_payload" } } }],
      ["not a webhook", { nonsense: true }, token, { status: 400, body: { error: { code: "invalid_payload" } } }],
      [
        "too large",
        { ...message("m1"), padding: "x".repeat(4096) },
        token,
        { status: 413, body: { error: { code: "payload_too_large" } } },
      ],
      [
        "someone else's room",
        { ...message("m1"), _id: "elsewhere", visitor: { token: "widget-token" } },
        token,
        { status: 200, body: "ignored" },
      ],
      ["recorded", message("m2"), token, { status: 200, body: "ok" }],
    ];
    for (const [what, body, headers, expected] of requests) {
      const reply = await postJson(`${gateway.url}/webhooks/rocketchat`, body, headers);
      expect({ what, status: reply.status, body: reply.body }).toMatchObject({ what, ...expected });
      expect(reply.headers.get("x-content-type-options")).toBe("nosniff");
    }
    await expect
      .poll(() => customer.inbox.messages.filter((m) => m.type === "ChatMessage").map(label))
      .toEqual(["first reply", "reply m2"]);
  });

  it("tells the customer once when no agent is online, keeps the chat queued, and connects when one comes online", async () => {
    const { fake, gateway } = await scenario({
      agents: [{ _id: "agent1", username: "jane.doe", name: "Jane Doe", online: false }],
    });
    const customer = await webCustomer(gateway);
    await expect.poll(() => activities(customer.inbox.messages, "noAgentAvailable").length).toBe(1);
    expect(await state(gateway, customer.init.conversationId)).toBe("queued");
    await customer.send("anyone there?");
    // Several retries later, still one notice.
    await expect
      .poll(() => fake.requests.filter((r) => r.path.startsWith("/api/v1/livechat/config")).length, { timeout: 8_000 })
      .toBeGreaterThan(1);
    expect(activities(customer.inbox.messages, "noAgentAvailable")).toHaveLength(1);

    fake.setAgentOnline("agent1", true);
    await expect
      .poll(() => activities(customer.inbox.messages, "participantJoined").length, { timeout: 10_000 })
      .toBe(2);
    const room = await rid(gateway, customer.init.conversationId);
    await expect.poll(() => visitorTexts(fake, room)).toEqual(["anyone there?"]);
    expect(await state(gateway, customer.init.conversationId)).toBe("active");
  });

  it("ends the conversation when a message finds the room closed and the close webhook never came", async () => {
    const { fake, gateway } = await scenario({ webhookEvents: { close: false } });
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    fake.closeByAgent(room, "closed while Liaison was not listening");
    await fake.whenWebhooksIdle();
    expect(await state(gateway, customer.init.conversationId)).toBe("active");
    await customer.send("hello?");
    await expect.poll(() => activities(customer.inbox.messages, "endOfConversation").length).toBe(1);
    await expect.poll(() => activities(customer.inbox.messages, "deliveryFailed").length).toBe(1);
    expect(await state(gateway, customer.init.conversationId)).toBe("ended");
  });

  it("delivers the agent's last message once, live and in the transcript, whichever of it and the close arrives first, and through retries", async () => {
    const { fake, gateway } = await scenario();
    const token = { "x-rocketchat-livechat-token": SECRET };
    const chatTexts = (messages: Message[]) => messages.filter((m) => m.type === "ChatMessage").map(label);
    const transcript = async (conversationId: string) =>
      (await gateway.app.store.read(conversationId, 0)).filter((m) => m.type === "ChatMessage").map(label);
    const redeliver = async (type: string, rid: string) => {
      const attempt = [...fake.webhookAttempts].reverse().find((a) => a.type === type && a.roomId === rid);
      const last = attempt?.body.messages?.at(-1);
      if (type === "Message" && last?.closingMessage === true) throw new Error("picked the closing comment");
      expect((await postJson(`${gateway.url}/webhooks/rocketchat`, attempt?.body, token)).status).toBe(200);
    };

    // The close overtakes the agent's last Message webhook: its transcript brings the message first, then the end.
    const early = await webCustomer(gateway);
    const room1 = await rid(gateway, early.init.conversationId);
    await fake.whenWebhooksIdle();
    fake.holdWebhooks();
    fake.agentSend(room1, "Bye, take care :wave:");
    fake.closeByAgent(room1, "Solved");
    await fake.releaseWebhooks((held) => held.filter((h) => h.type === "LivechatSession"));
    await expect.poll(() => activities(early.inbox.messages, "endOfConversation").length).toBe(1);
    expect(early.inbox.messages.map(label).slice(-2)).toEqual(["Bye, take care 👋", "[endOfConversation]"]);
    // The Message webhook comes after all, then Rocket.Chat's retries of both: nothing doubles.
    fake.resumeWebhooks();
    await fake.whenWebhooksIdle();
    const bye = fake.webhookAttempts.find((a) => a.type === "Message" && a.body.messages?.[0]?.msg?.startsWith("Bye"));
    expect((await postJson(`${gateway.url}/webhooks/rocketchat`, bye?.body, token)).status).toBe(200);
    await redeliver("LivechatSession", room1);
    expect(chatTexts(early.inbox.messages)).toEqual(["Bye, take care 👋"]);
    expect(await transcript(early.init.conversationId)).toEqual(["Bye, take care 👋"]);

    // The usual order: the Message first, then the close (whose transcript repeats it).
    const usual = await webCustomer(gateway);
    const room2 = await rid(gateway, usual.init.conversationId);
    await fake.whenWebhooksIdle();
    fake.holdWebhooks();
    fake.agentSend(room2, "Goodbye");
    fake.closeByAgent(room2);
    await fake.releaseWebhooks((held) => held.filter((h) => h.type === "Message"));
    await fake.releaseWebhooks();
    await expect.poll(() => activities(usual.inbox.messages, "endOfConversation").length).toBe(1);
    await redeliver("LivechatSession", room2);
    expect(chatTexts(usual.inbox.messages)).toEqual(["Goodbye"]);
    expect(await transcript(usual.init.conversationId)).toEqual(["Goodbye"]);
    fake.resumeWebhooks();
  });

  it("forwards every file of an agent message with several, each link serving its original", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    const photo = Buffer.from("89504e470d0a1a0a-photo", "latin1");
    const form = Buffer.from("%PDF-1.4 form");
    fake.agentSendFiles(room, [
      { name: "photo.png", type: "image/png", content: photo, description: "Both attached" },
      { name: "form.pdf", type: "application/pdf", content: form },
    ]);
    await expect.poll(() => customer.inbox.messages.filter((m) => m.type === "ChatMessage").length).toBe(1);
    const message = customer.inbox.messages.find((m): m is ChatMessage => m.type === "ChatMessage");
    expect(message?.text).toBe("Both attached");
    expect(message?.attachments.map((a) => [a.name, a.type])).toEqual([
      ["photo.png", "image/png"],
      ["form.pdf", "application/pdf"],
    ]);
    const bytes = await Promise.all(
      (message?.attachments ?? []).map(async (a) => Buffer.from(await (await fetch(a.contentUrl)).arrayBuffer())),
    );
    expect(bytes[0]?.equals(photo)).toBe(true);
    expect(bytes[1]?.equals(form)).toBe(true);
  });

  it("paces customer messages under Rocket.Chat's rate limiter, counts its 429s, and /ready says it keeps limiting", async () => {
    const { fake, gateway } = await scenario({ rateLimit: true, rateLimitCalls: 2, rateLimitIntervalMs: 400 });
    const ready = async () => (await fetch(`${gateway.url}/ready`)).json() as Promise<Record<string, unknown>>;
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    // PUBLIC_URL is this machine here: /ready shows that warning, and nothing about rate limits yet.
    expect(JSON.stringify(await ready())).not.toContain("rate-limiting");
    fake.failNext(1, 429, { retryAfterSeconds: 1 });
    const texts = ["m1", "m2", "m3", "m4", "m5", "m6", "m7"];
    for (const text of texts) await customer.send(text);
    await expect.poll(() => visitorTexts(fake, room), { timeout: 10_000 }).toEqual(texts);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(
      /liaison_adapter_rate_limited_total\{adapter="rocketchat",operation="livechat\/message"\} 1/,
    );
    await expect.poll(ready).toMatchObject({
      status: "degraded",
      problems: {
        rocketchat: expect.stringContaining(
          "Rocket.Chat keeps rate-limiting Liaison (its REST API rate limiter)",
        ) as unknown,
      },
    });
    // The routes and the settings to raise are for the log, not for /ready.
    expect(JSON.stringify(await ready())).not.toMatch(/livechat\/message|API_Enable_Rate_Limiter/);
  });

  it("shows a queued chat being taken by an agent, and a forward to another agent", async () => {
    const { fake, gateway } = await scenario({
      routing: "manual",
      agents: [
        { _id: "agent1", username: "jane.doe", name: "Jane Doe" },
        { _id: "agent2", username: "omar.ali", name: "Omar Ali" },
      ],
    });
    const customer = await webCustomer(gateway);
    const room = await rid(gateway, customer.init.conversationId);
    expect(await state(gateway, customer.init.conversationId)).toBe("queued");
    fake.takeRoom(room, "agent1");
    await expect.poll(() => activities(customer.inbox.messages, "participantJoined").length).toBe(2);
    fake.forward(room, { agentId: "agent2" });
    await expect.poll(() => activities(customer.inbox.messages, "participantJoined").length).toBe(3);
    const last = activities(customer.inbox.messages, "participantJoined").at(-1) as ActivityOf<"participantJoined">;
    expect(last.info.participant).toEqual({ id: "rocketchat:agent2", name: "Omar Ali" });
    expect(activities(customer.inbox.messages, "participantLeft")).toHaveLength(1);
    const observer = await open(gateway, gateway.apiKey);
    const info = nextEvent<ConversationInfo>(observer, "conversationInfo");
    await request(observer, "joinConversation", {
      conversationId: customer.init.conversationId,
      id: "s",
      name: "s",
      role: "supervisor",
    });
    expect((await info).conversation.agent).toEqual({ id: "rocketchat:agent2", name: "Omar Ali" });
  });
});
