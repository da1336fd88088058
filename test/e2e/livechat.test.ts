import { afterEach, describe, expect, it } from "vitest";
import type { ActivityOf, ChatMessage, InitResponse, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, postJson, request, webCustomer as startWebCustomer } from "../helpers/socket.js";
import { startFakeGms } from "../fakes/gms/index.js";
import {
  startFakeLiveChat,
  type FakeLiveChat,
  type FakeLiveChatOptions,
  type WebhookAction,
} from "../fakes/livechat/index.js";

const SECRET = "lc-webhook-secret";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The webhooks the adapter's README asks for, with the filters it names. */
const ACTIONS: WebhookAction[] = [
  "incoming_event",
  "user_added_to_chat",
  "user_removed_from_chat",
  "chat_deactivated",
  "chat_transferred",
  "incoming_chat",
];

/** Liaison with the LiveChat desk, and a fake LiveChat whose license webhooks point back at Liaison. */
async function scenario(
  fakeOptions: FakeLiveChatOptions = {},
  env: Record<string, string> = {},
  { webhooks = true }: { webhooks?: boolean } = {},
) {
  const fake = await startFakeLiveChat({
    webhookRetryDelaysMs: [100, 200, 300],
    webhookTimeoutMs: 2_000,
    ...fakeOptions,
  });
  cleanups.push(() => fake.close());
  const gateway = await startTestApp(
    {
      DESK: "livechat",
      LIVECHAT_API_URL: fake.apiUrl,
      LIVECHAT_ACCOUNTS_URL: fake.accountsUrl,
      LIVECHAT_CLIENT_ID: fake.clientId,
      LIVECHAT_AGENT_TOKEN: fake.agentToken,
      LIVECHAT_ORGANIZATION_ID: fake.organizationId,
      LIVECHAT_WEBHOOK_SECRET: SECRET,
      LIVECHAT_TIMEOUT_MS: "1000",
      ...env,
    },
    {
      tuning: {
        retryMaxMs: 500,
        noAgentRetryMaxMs: 500,
        deskStreamScanMs: 200,
        deskStreamLeaseMs: 1_500,
        deskStreamRestartBaseMs: 100,
        deskStreamRestartMaxMs: 500,
      },
    },
  );
  cleanups.push(() => gateway.close());
  if (webhooks) {
    for (const action of ACTIONS) {
      fake.registerWebhook({
        action,
        url: `${gateway.url}/webhooks/livechat`,
        secret_key: SECRET,
        filters: { only_my_chats: true, ...(action === "incoming_event" ? { author_type: "agent" as const } : {}) },
      });
    }
  }
  return { fake, gateway };
}

async function webCustomer(gateway: TestApp, body: Record<string, string> = {}) {
  const customer = await startWebCustomer(gateway.url, body);
  cleanups.push(() => {
    customer.socket.close();
  });
  return customer;
}

/** An SMS connector, registered; what it receives is in `delivered`. */
async function smsConnector(gateway: TestApp) {
  const socket = await connect(gateway.url, { apiKey: gateway.apiKey });
  cleanups.push(() => {
    socket.close();
  });
  const delivered = collectMessages(socket);
  await request(socket, "registerConnector", { id: "sms", name: "SMS gateway", channel: "sms" });
  const start = async (refId: string) =>
    (
      await postJson(
        `${gateway.url}/api/customer/init`,
        { firstName: "Bilal", channel: "sms", refId },
        { authorization: `Bearer ${gateway.apiKey}` },
      )
    ).body as InitResponse;
  const send = (conversationId: string, text: string) => request(socket, "sendMessage", { conversationId, text });
  return { socket, delivered, start, send };
}

const ids = async (gateway: TestApp, conversationId: string, key = "threadId"): Promise<Record<string, string>> => {
  let found: Record<string, string> = {};
  await expect
    .poll(async () => {
      found = (await gateway.app.store.get(conversationId))?.desk.ids ?? {};
      return found[key];
    })
    .toBeTruthy();
  return found;
};
/** What the agent app shows the customer wrote, in order (texts, and files by name). */
const customerFeed = (fake: FakeLiveChat, chatId: string, threadId?: string) =>
  fake
    .agentFeed(chatId)
    .filter((entry) => (threadId === undefined || entry.threadId === threadId) && entry.event.author_id !== undefined)
    .filter((entry) => !String(entry.event.author_id).includes("@"))
    .map((entry) => (entry.event.type === "file" ? `file:${String(entry.event.name)}` : String(entry.event.text)));
const chats = (messages: Message[]) => messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
const activities = (messages: Message[], type: string) =>
  messages.filter((m) => m.type === "ActivityMessage" && m.activityType === type);
const state = async (gateway: TestApp, conversationId: string) => (await gateway.app.store.get(conversationId))?.state;

describe("LiveChat desk end to end", () => {
  it("carries a web conversation through its life: both ways, files, the customer ends", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway, { subject: "orders" });
    await customer.send("Where is my order 8812?");
    const { chatId, threadId, entityId } = await ids(gateway, customer.init.conversationId);
    // Opened at init, before the customer wrote anything: an empty start, in the default group.
    expect(fake.calls.find((call) => call.action === "start_chat")?.payload).toEqual({
      chat: { access: { group_ids: [0] }, thread: { events: [] } },
    });
    expect(fake.customer(entityId ?? "")).toMatchObject({ name: "Sara Khan", email: "sara@example.org" });
    // A web customer names their own refId: never a key to another customer's LiveChat identity.
    const before = await webCustomer(gateway, { refId: "sara-1" });
    const earlier = await ids(gateway, before.init.conversationId);
    await request(before.socket, "endConversation", { conversationId: before.init.conversationId, reason: "done" });
    const after = await webCustomer(gateway, { refId: "sara-1" });
    const later = await ids(gateway, after.init.conversationId);
    expect(later.entityId).not.toBe(earlier.entityId);
    expect(later.account).toBeUndefined();
    await expect
      .poll(() => activities(customer.inbox.messages, "participantJoined").map((m) => JSON.stringify(m)))
      .toEqual(expect.arrayContaining([expect.stringContaining("Anna Smith")]));
    expect(await state(gateway, customer.init.conversationId)).toBe("active");

    await customer.send("It is late");
    const reply = fake.agentSend(chatId ?? "", "Hi, I'm Anna. Checking now.");
    await expect
      .poll(() => chats(customer.inbox.messages).filter((m) => m.from.id.startsWith("livechat:")))
      .toHaveLength(1);
    expect(chats(customer.inbox.messages).find((m) => m.from.id.startsWith("livechat:"))).toMatchObject({
      id: `livechat:${reply.id}`,
      from: { id: "livechat:anna@example.org", name: "Anna Smith" },
      text: "Hi, I'm Anna. Checking now.",
    });

    const map = Buffer.from("fake-png-bytes");
    fake.agentSendFile(chatId ?? "", { name: "route.png", contentType: "image/png", content: map });
    await expect
      .poll(() => chats(customer.inbox.messages).flatMap((m) => m.attachments.map((a) => a.name)))
      .toEqual(["route.png"]);
    const link = chats(customer.inbox.messages).flatMap((m) => m.attachments)[0]?.contentUrl ?? "";
    expect(Buffer.from(await (await fetch(link)).arrayBuffer())).toEqual(map);

    const receipt = `data:text/plain;base64,${Buffer.from("receipt 8812").toString("base64")}`;
    await customer.send("Here is my receipt", {
      attachments: [{ type: "text/plain", name: "receipt.txt", contentUrl: receipt }],
    });
    await expect
      .poll(() => customerFeed(fake, chatId ?? "", threadId))
      .toEqual(["Where is my order 8812?", "It is late", "Here is my receipt", "file:receipt.txt"]);
    const stored = fake.files().find((file) => file.name === "receipt.txt");
    expect(stored?.content.toString()).toBe("receipt 8812");

    await request(customer.socket, "endConversation", { conversationId: customer.init.conversationId, reason: "done" });
    await expect.poll(() => fake.chat(chatId ?? "")?.threads.at(-1)?.active).toBe(false);
    expect(
      fake.calls.filter(
        (call) =>
          call.action === "deactivate_chat" && call.outcome === "ok" && (call.payload as { id?: string }).id === chatId,
      ),
    ).toHaveLength(1);
    await fake.whenWebhooksIdle();
    expect(activities(customer.inbox.messages, "endOfConversation")).toHaveLength(1);
    // The agent's messages reached the customer once each although the webhooks and the open's read both saw them.
    expect(chats(customer.inbox.messages).filter((m) => m.from.id.startsWith("livechat:"))).toHaveLength(2);
  });

  it("serves an SMS customer as one LiveChat customer: the next conversation resumes the chat; the agent closes", async () => {
    const { fake, gateway } = await scenario();
    const sms = await smsConnector(gateway);
    const first = await sms.start("+923001234567");
    await sms.send(first.conversationId, "Is my parcel out?");
    const one = await ids(gateway, first.conversationId);
    expect(fake.customer(one.entityId ?? "")?.session_fields).toEqual(expect.arrayContaining([{ channel: "sms" }]));
    await expect.poll(() => state(gateway, first.conversationId)).toBe("active");
    fake.agentSend(one.chatId ?? "", "Yes, today");
    await expect
      .poll(() => chats(sms.delivered.messages).map((m) => [m.text, m.refId]))
      .toEqual([["Yes, today", "+923001234567"]]);
    fake.agentDeactivate(one.chatId ?? "");
    await expect.poll(() => state(gateway, first.conversationId)).toBe("ended");
    const ended = activities(sms.delivered.messages, "endOfConversation") as ActivityOf<"endOfConversation">[];
    expect(ended).toHaveLength(1);

    const second = await sms.start("+923001234567");
    expect(second.conversationId).not.toBe(first.conversationId);
    await sms.send(second.conversationId, "One more question");
    const two = await ids(gateway, second.conversationId);
    expect(two.entityId).toBe(one.entityId);
    expect(two.chatId).toBe(one.chatId);
    expect(two.threadId).not.toBe(one.threadId);
    expect(fake.calls.filter((call) => call.action === "resume_chat" && call.outcome === "ok")).toHaveLength(1);
    expect(fake.calls.filter((call) => call.action === "start_chat")).toHaveLength(1);
    expect(customerFeed(fake, two.chatId ?? "", two.threadId)).toEqual(["One more question"]);
    fake.agentSend(two.chatId ?? "", "Sure, go ahead");
    await expect.poll(() => chats(sms.delivered.messages).map((m) => m.text)).toContain("Sure, go ahead");
    // A late repeat of the old thread's close does not touch the new conversation.
    await fake.whenWebhooksIdle();
    const oldClose = fake.webhookAttempts.find((a) => a.action === "chat_deactivated" && a.status === 200)?.body;
    expect(oldClose).toMatchObject({ payload: { chat_id: one.chatId, thread_id: one.threadId } });
    const replay = await postJson(`${gateway.url}/webhooks/livechat`, oldClose);
    expect(replay).toMatchObject({ status: 200, body: "ignored" });
    expect(await state(gateway, second.conversationId)).toBe("active");
  });

  it("records a doubled or repeated webhook once and refuses a wrong secret_key", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    await customer.send("hello");
    const { chatId } = await ids(gateway, customer.init.conversationId);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    fake.duplicateNextWebhooks(2);
    fake.agentSend(chatId ?? "", "once");
    await fake.whenWebhooksIdle();
    const deliveries = fake.webhookAttempts.filter((a) => a.action === "incoming_event" && a.status === 200);
    expect(deliveries.length).toBeGreaterThanOrEqual(2);
    const body = deliveries.at(-1)?.body ?? {};
    const post = (payload: unknown) => postJson(`${gateway.url}/webhooks/livechat`, payload);
    expect((await post(body)).status).toBe(200);
    expect(chats(customer.inbox.messages).filter((m) => m.text === "once")).toHaveLength(1);

    const wrong = await post({ ...body, secret_key: "nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ error: { code: "unauthorized" } });
    const missing = await post({ ...body, secret_key: undefined });
    expect(missing.status).toBe(401);
    const malformed = await post({ secret_key: SECRET, action: 3 });
    expect(malformed.status).toBe(400);
    const elsewhere = await post({ ...body, payload: { ...(body.payload as object), chat_id: "SOMEONE_ELSE" } });
    expect(elsewhere.status).toBe(200);
    expect(chats(customer.inbox.messages).filter((m) => m.text === "once")).toHaveLength(1);
  });

  it("delivers every message once, in order, through 429s, an outage, a lost answer and an expired token", async () => {
    const { fake, gateway } = await scenario({ customerTokenTtlSeconds: 3600 });
    const customer = await webCustomer(gateway);
    await customer.send("a1");
    const { chatId, threadId, entityId } = await ids(gateway, customer.init.conversationId);
    await expect.poll(() => customerFeed(fake, chatId ?? "", threadId)).toEqual(["a1"]);

    fake.failNext(3, "too_many_requests", { action: "send_event" });
    for (const text of ["b1", "b2"]) expect((await customer.send(text)).ok).toBe(true);
    await expect
      .poll(() => customerFeed(fake, chatId ?? "", threadId), { timeout: 10_000 })
      .toEqual(["a1", "b1", "b2"]);

    // The event is stored but the answer never comes: the retry reads the thread and does not send it again.
    fake.loseNextAnswer(1, "send_event");
    await customer.send("c1");
    await customer.send("c2");
    await expect
      .poll(() => customerFeed(fake, chatId ?? "", threadId), { timeout: 10_000 })
      .toEqual(["a1", "b1", "b2", "c1", "c2"]);
    expect(
      fake.calls.some(
        (call) => call.action === "get_chat" && call.seq > (fake.calls.find((c) => c.outcome === "lost")?.seq ?? 0),
      ),
    ).toBe(true);

    await fake.goDown("503");
    await customer.send("d1");
    await expect
      .poll(() => fake.calls.filter((call) => call.outcome === "service_unavailable").length)
      .toBeGreaterThan(0);
    await fake.comeUp();
    fake.expireCustomerToken(entityId ?? "");
    await customer.send("d2");
    await expect
      .poll(() => customerFeed(fake, chatId ?? "", threadId), { timeout: 10_000 })
      .toEqual(["a1", "b1", "b2", "c1", "c2", "d1", "d2"]);
    // The expired token was replaced: the conversation's RTM socket is logged in again, with a new one.
    await expect
      .poll(() => fake.rtmConnections().filter((c) => c.open && c.loggedIn && c.entityId === entityId))
      .toHaveLength(1);
    expect(activities(customer.inbox.messages, "deliveryFailed")).toHaveLength(0);
  });

  it("adopts the chat a start whose answer was lost created, and waits out a LiveChat that hangs", async () => {
    const { fake, gateway } = await scenario();
    fake.loseNextAnswer(1, "start_chat");
    const customer = await webCustomer(gateway);
    const { chatId, threadId } = await ids(gateway, customer.init.conversationId);
    expect(fake.chatIds()).toEqual([chatId]);
    expect(fake.calls.filter((call) => call.action === "start_chat").map((call) => call.outcome)).toEqual(["lost"]);

    await fake.goDown("hang");
    await customer.send("h1");
    await expect.poll(() => fake.calls.filter((call) => call.outcome === "hung").length).toBeGreaterThan(0);
    await fake.comeUp();
    await customer.send("h2");
    await expect.poll(() => customerFeed(fake, chatId ?? "", threadId), { timeout: 10_000 }).toEqual(["h1", "h2"]);
    expect(activities(customer.inbox.messages, "deliveryFailed")).toHaveLength(0);
  });

  it("tells the customer no agent is available while the group is offline, and starts the chat once one is", async () => {
    const { fake, gateway } = await scenario(
      {
        groups: [
          { id: 0, name: "General" },
          { id: 2, name: "Billing" },
        ],
        agents: [{ id: "anna@example.org", name: "Anna Smith", groups: [2] }],
      },
      {
        LIVECHAT_GROUPS: JSON.stringify({ billing: 2 }),
      },
    );
    fake.setGroupOnline(0, false);
    const customer = await webCustomer(gateway, { subject: "billing" });
    await customer.send("Refund please");
    await expect.poll(() => activities(customer.inbox.messages, "noAgentAvailable").length).toBe(1);
    expect(fake.calls.some((call) => call.action === "start_chat" && call.outcome === "groups_offline")).toBe(true);
    fake.setGroupOnline(0, true);
    const { chatId } = await ids(gateway, customer.init.conversationId, "chatId");
    expect(fake.chat(chatId ?? "")?.threads[0]?.access.group_ids).toEqual([2]);
    // The message written while nobody was there went inside the start, and was not sent again.
    expect(fake.calls.find((call) => call.action === "start_chat" && call.outcome === "ok")?.payload).toMatchObject({
      chat: { thread: { events: [{ type: "message", text: "Refund please" }] } },
    });
    await customer.send("Thanks");
    await expect.poll(() => customerFeed(fake, chatId ?? "")).toEqual(["Refund please", "Thanks"]);
    expect(activities(customer.inbox.messages, "noAgentAvailable")).toHaveLength(1);
  });

  it("says on /ready that LiveChat refuses the agent token, without naming the token or its variable", async () => {
    const { fake, gateway } = await scenario(
      { agentTokens: [{ token: "agent-oauth-a", agentId: "anna@example.org" }] },
      {
        LIVECHAT_AGENT_TOKEN: "agent-oauth-a",
      },
    );
    fake.expireAgentToken("agent-oauth-a");
    const ready = async () => (await fetch(`${gateway.url}/ready`)).json() as Promise<Record<string, unknown>>;
    const customer = await webCustomer(gateway);
    await customer.send("anyone?");
    await expect.poll(async () => JSON.stringify(await ready())).toContain("LiveChat refuses the agent token (401)");
    expect(await ready()).toMatchObject({
      status: "degraded",
      problems: { livechat: expect.stringContaining("customers:own") as unknown },
    });
    expect(JSON.stringify(await ready())).not.toContain("LIVECHAT_");
    expect(await state(gateway, customer.init.conversationId)).toBe("queued");
    expect(activities(customer.inbox.messages, "deliveryFailed")).toHaveLength(0);
    expect(JSON.stringify(await ready())).not.toContain("agent-oauth-a");
  });
});

describe("LiveChat desk over the customer RTM socket", () => {
  it("brings queue positions, the agent's join, typing, messages, a transfer and the close without any webhook", async () => {
    const { fake, gateway } = await scenario(
      {
        routing: "manual",
        agents: [
          { id: "anna@example.org", name: "Anna Smith" },
          { id: "omar@example.org", name: "Omar Saleh" },
        ],
      },
      {},
      { webhooks: false },
    );
    const ahead = fake.startWidgetChat({ text: "I was here first" });
    const customer = await webCustomer(gateway);
    const { chatId, entityId } = await ids(gateway, customer.init.conversationId);
    await expect
      .poll(() => fake.rtmConnections().filter((c) => c.open && c.loggedIn && c.entityId === entityId))
      .toHaveLength(1);
    const positions = () =>
      (activities(customer.inbox.messages, "queuePosition") as ActivityOf<"queuePosition">[]).map(
        (m) => m.info.position,
      );
    await expect.poll(positions).toEqual([2]);
    fake.acceptChat(ahead.chatId);
    await expect.poll(positions).toEqual([2, 1]);

    fake.acceptChat(chatId ?? "", "anna@example.org");
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    fake.agentTyping(chatId ?? "", true, "anna@example.org");
    await expect
      .poll(() => customer.inbox.messages.some((m) => m.type === "ActivityMessage" && m.activityType === "typing"))
      .toBe(true);
    fake.agentSend(chatId ?? "", "Hello from Anna", { agentId: "anna@example.org" });
    fake.agentSend(chatId ?? "", "internal note", { agentId: "anna@example.org", visibility: "agents" });
    fake.transferChat(chatId ?? "", { agentId: "omar@example.org" }, "anna@example.org");
    fake.agentSend(chatId ?? "", "Omar here", { agentId: "omar@example.org" });
    await expect
      .poll(() => chats(customer.inbox.messages).map((m) => `${m.from.name}: ${m.text}`))
      .toEqual(["Anna Smith: Hello from Anna", "Omar Saleh: Omar here"]);
    const joined = (activities(customer.inbox.messages, "participantJoined") as ActivityOf<"participantJoined">[])
      .filter((m) => m.info.role === "agent")
      .map((m) => m.info.participant.name);
    expect(joined).toEqual(["Anna Smith", "Omar Saleh"]);
    expect(await state(gateway, customer.init.conversationId)).toBe("active");

    fake.agentDeactivate(chatId ?? "", "omar@example.org");
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("ended");
    await expect.poll(() => fake.rtmConnections().filter((c) => c.open && c.entityId === entityId)).toHaveLength(0);
    expect(activities(customer.inbox.messages, "endOfConversation")).toHaveLength(1);
  });

  it("reconnects after a drop, an eviction and an expired token, and catches up what was pushed meanwhile, once", async () => {
    const { fake, gateway } = await scenario({}, {}, { webhooks: false });
    const customer = await webCustomer(gateway);
    const { chatId, entityId = "" } = await ids(gateway, customer.init.conversationId);
    const loggedIn = () => fake.rtmConnections().filter((c) => c.open && c.loggedIn && c.entityId === entityId);
    await expect.poll(loggedIn).toHaveLength(1);
    const agentTexts = () =>
      chats(customer.inbox.messages)
        .filter((m) => m.from.id.startsWith("livechat:"))
        .map((m) => m.text);

    fake.agentSend(chatId ?? "", "r1");
    await expect.poll(agentTexts).toEqual(["r1"]);
    fake.dropRtm(entityId);
    fake.agentSend(chatId ?? "", "r2 while the socket was down");
    await expect.poll(agentTexts).toEqual(["r1", "r2 while the socket was down"]);
    await expect.poll(loggedIn).toHaveLength(1);

    fake.disconnectCustomer(entityId, "connection_evicted");
    fake.agentSend(chatId ?? "", "r3");
    await expect.poll(agentTexts).toEqual(["r1", "r2 while the socket was down", "r3"]);
    await expect.poll(loggedIn).toHaveLength(1);

    const before = fake.rtmFrames.filter(
      (f) => f.direction === "in" && (f.frame as { action?: string }).action === "login",
    );
    fake.expireCustomerToken(entityId);
    fake.agentSend(chatId ?? "", "r4");
    await expect.poll(agentTexts).toEqual(["r1", "r2 while the socket was down", "r3", "r4"]);
    await expect.poll(loggedIn).toHaveLength(1);
    const logins = fake.rtmFrames
      .filter((f) => f.direction === "in" && (f.frame as { action?: string }).action === "login")
      .map((f) => (f.frame as { payload: { token: string } }).payload.token);
    expect(logins.length).toBeGreaterThan(before.length);
    // The login after the expiry used a new token.
    expect(logins.at(-1)).not.toBe(logins.at(before.length - 1));

    await customer.send("still there?");
    await expect.poll(() => customerFeed(fake, chatId ?? "")).toEqual(["still there?"]);
    expect(agentTexts()).toEqual(["r1", "r2 while the socket was down", "r3", "r4"]);
  });

  it("delivers an agent event once when it comes by RTM and webhook, and when a webhook is missed", async () => {
    const { fake, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const { chatId, entityId } = await ids(gateway, customer.init.conversationId);
    await expect
      .poll(() => fake.rtmConnections().filter((c) => c.open && c.loggedIn && c.entityId === entityId))
      .toHaveLength(1);
    fake.dropNextWebhooks(1, "incoming_event");
    fake.agentSend(chatId ?? "", "missed by webhook");
    fake.duplicateNextWebhooks(1);
    fake.agentSend(chatId ?? "", "doubled by webhook");
    await fake.whenWebhooksIdle();
    await expect
      .poll(() => chats(customer.inbox.messages).map((m) => m.text))
      .toEqual(["missed by webhook", "doubled by webhook"]);
    expect(fake.webhookAttempts.filter((a) => a.action === "incoming_event" && a.status === 200).length).toBe(2);
  });
});

describe("LiveChat desk after a bot", () => {
  it("hands a GMS bot conversation to a LiveChat agent in the department's group, the bot's part first as a digest", async () => {
    const gms = await startFakeGms({ channelToken: "gms-token" });
    cleanups.push(() => gms.close());
    const { fake, gateway } = await scenario(
      {
        groups: [
          { id: 0, name: "General" },
          { id: 2, name: "Billing" },
        ],
        agents: [{ id: "anna@example.org", name: "Anna Smith", groups: [2] }],
      },
      {
        BOT: "gms",
        GMS_WEBHOOK_URL: gms.webhookUrl,
        GMS_TOKEN: "gms-token",
        LIVECHAT_GROUPS: JSON.stringify({ billing: 2 }),
      },
    );
    gms.setChannel({ webhookUrl: `${gateway.url}/gms` });
    gms.reply("hi", [{ kind: "text", text: "Hello! What can I do?" }]);
    gms.reply("a refund please", [{ kind: "redirect", depKey: "billing" }]);

    const customer = await webCustomer(gateway);
    await customer.send("hi");
    await expect.poll(() => chats(customer.inbox.messages).map((m) => m.text)).toContain("Hello! What can I do?");
    await customer.send("a refund please");
    const { chatId, threadId } = await ids(gateway, customer.init.conversationId);
    expect(fake.chat(chatId ?? "")?.threads[0]?.access.group_ids).toEqual([2]);
    await expect.poll(() => customerFeed(fake, chatId ?? "", threadId).length).toBe(1);
    const [digest] = customerFeed(fake, chatId ?? "", threadId);
    expect(digest).toMatch(/^Conversation before the hand-off:\n/);
    expect(digest).toContain("Hello! What can I do?");

    await customer.send("order 8812");
    await expect.poll(() => customerFeed(fake, chatId ?? "", threadId).at(-1)).toBe("order 8812");
    fake.agentSend(chatId ?? "", "Refund on its way");
    await expect.poll(() => chats(customer.inbox.messages).map((m) => m.text)).toContain("Refund on its way");
    expect(customerFeed(fake, chatId ?? "", threadId)).toHaveLength(2);
  });
});
