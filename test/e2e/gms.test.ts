import { createHash } from "node:crypto";
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityOf, ChatMessage, ConversationInfo, InitResponse, Message } from "../../protocol/index.js";
import { initConversation, LiaisonClient } from "../../clients/sdk/index.js";
import type { Logger } from "../../server/logger.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { startRedis } from "../helpers/redis.js";
import { collectMessages, connect, nextEvent, postJson, request, webCustomer } from "../helpers/socket.js";
import { startFakeGms, type FakeGms, type FakeGmsOptions } from "../fakes/gms/index.js";
import { DEFAULT_FAKE_USER, startFakeRocketChat, type FakeRocketChat } from "../fakes/rocketchat/index.js";

const GMS_TOKEN = "gms-channel-token";
const RC_SECRET = "rc-webhook-secret";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Scenario {
  gateway: TestApp;
  gms: FakeGms;
  rc?: FakeRocketChat;
}

/** Liaison with BOT=gms and the socket desk or Rocket.Chat, the GMS fake calling back into Liaison's /gms. */
async function scenario(
  options: {
    desk?: "socket" | "rocketchat";
    env?: Record<string, string>;
    gms?: FakeGmsOptions;
    logger?: Logger;
  } = {},
): Promise<Scenario> {
  const gms = await startFakeGms({ channelToken: GMS_TOKEN, ...options.gms });
  cleanups.push(() => gms.close());
  let rc: FakeRocketChat | undefined;
  if (options.desk === "rocketchat") {
    rc = await startFakeRocketChat({ secretToken: RC_SECRET, retryIntervalMs: 100 });
    const fake = rc;
    cleanups.push(() => fake.close());
  }
  const gateway = await startTestApp(
    {
      BOT: "gms",
      GMS_WEBHOOK_URL: gms.webhookUrl,
      GMS_TOKEN,
      ...(rc === undefined
        ? {}
        : {
            ROCKETCHAT_URL: rc.url,
            ROCKETCHAT_WEBHOOK_TOKEN: RC_SECRET,
            ROCKETCHAT_USER_ID: DEFAULT_FAKE_USER.userId,
            ROCKETCHAT_AUTH_TOKEN: DEFAULT_FAKE_USER.authToken,
          }),
      ...options.env,
    },
    {
      tuning: { retryMaxMs: 300, noAgentRetryMaxMs: 500 },
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    },
  );
  cleanups.push(() => gateway.close());
  gms.setChannel({ webhookUrl: `${gateway.url}/gms` });
  rc?.setWebhookUrl(`${gateway.url}/webhooks/rocketchat`);
  return { gateway, gms, ...(rc === undefined ? {} : { rc }) };
}

async function customer(gateway: TestApp, body: Record<string, string> = {}) {
  const joined = await webCustomer(gateway.url, body);
  cleanups.push(() => {
    joined.socket.close();
  });
  return joined;
}

async function agentSocket(gateway: TestApp): Promise<Socket> {
  const socket = await connect(gateway.url, { apiKey: gateway.apiKey });
  cleanups.push(() => {
    socket.close();
  });
  return socket;
}

/** An agent of the socket desk joining a conversation: what the join showed, and everything after. */
async function joinAsAgent(gateway: TestApp, conversationId: string, id = "agent-7", name = "Ayesha") {
  const socket = await agentSocket(gateway);
  const inbox = collectMessages(socket);
  const info = nextEvent<ConversationInfo>(socket, "conversationInfo");
  expect(await request(socket, "joinConversation", { conversationId, id, name, role: "agent" })).toEqual({ ok: true });
  return { socket, inbox, info: await info };
}

const chatIdOf = async (gateway: TestApp, conversationId: string): Promise<number> => {
  let chatId: string | undefined;
  await expect
    .poll(async () => {
      chatId = (await gateway.app.store.get(conversationId))?.bot?.ids.chatId;
      return chatId;
    })
    .toBeDefined();
  return Number(chatId);
};
const state = async (gateway: TestApp, conversationId: string) => (await gateway.app.store.get(conversationId))?.state;
const chats = (messages: readonly Message[]) => messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
const said = (messages: readonly Message[]) =>
  chats(messages).map((m) => `${m.from.id === "bot" ? "bot" : "them"}: ${m.text}`);
const handOffs = (messages: readonly Message[]) =>
  messages
    .filter((m): m is ActivityOf<"handOff"> => m.type === "ActivityMessage" && m.activityType === "handOff")
    .map((m) => m.info);
const heardTexts = (gms: FakeGms, chatId: number) => gms.heard(chatId).map((record) => record.text);
const visitorTexts = (rc: FakeRocketChat, rid: string) =>
  rc
    .messages(rid)
    .filter((m) => m.t === undefined && m.token !== undefined)
    .map((m) => m.msg);
const roomOf = async (gateway: TestApp, conversationId: string, not?: string): Promise<string> => {
  let rid: string | undefined;
  await expect
    .poll(async () => {
      rid = (await gateway.app.store.get(conversationId))?.desk.ids.rid;
      return rid !== undefined && rid !== not;
    })
    .toBe(true);
  return rid ?? "";
};
const log = async (gateway: TestApp, conversationId: string) => gateway.app.store.read(conversationId, 0);
const metric = async (gateway: TestApp, pattern: RegExp): Promise<number> => {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
};
const MENU = [
  [
    { id: "track", text: "Track my parcel" },
    { id: "agent", text: "Talk to a human" },
  ],
];
const PNG = Buffer.from("89504e470d0a1a0a0000000d4948445200000001", "hex");

describe("BOT=gms end to end", () => {
  it("a web customer talks to the bot, presses its buttons, sends it a file, and is handed to a socket-desk agent who reads the bot's part in the history", async () => {
    const { gateway, gms } = await scenario();
    gms.reply("Where is my parcel?", [{ kind: "text", text: "It ships tomorrow." }]);
    gms.reply("Track my parcel", [{ kind: "text", text: "Send me a photo of the label." }]);
    gms.reply(/^file:image\/png\|/, [
      { kind: "file", url: "https://cdn.example.org/route.pdf", name: "route.pdf", mediaType: "application/pdf" },
    ]);
    gms.reply("Talk to a human", [
      { kind: "text", text: "Connecting you…" },
      { kind: "redirect", depKey: "billing" },
    ]);
    gms.otherwise([{ kind: "keyboard", buttons: MENU }]);

    const sara = await customer(gateway, { phone: "+4790000000", url: "https://shop.example.no/cart" });
    const id = sara.init.conversationId;
    expect(await state(gateway, id)).toBe("bot");

    await sara.send("Where is my parcel?");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: It ships tomorrow.");
    const answer = chats(sara.inbox.messages).find((m) => m.text === "It ships tomorrow.");
    expect(answer?.from).toEqual({ id: "bot", name: "Assistant" });

    await sara.send("menu");
    await expect.poll(() => chats(sara.inbox.messages).find((m) => m.buttons !== undefined)?.buttons).toEqual(MENU);
    expect(chats(sara.inbox.messages).find((m) => m.buttons !== undefined)?.text).toBe("");

    // The press: empty text, the button; recorded with the button's text.
    const press = await sara.send("", { button: { id: "track", text: "Track my parcel" } });
    expect(press).toMatchObject({ ok: true });
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Send me a photo of the label.");

    await sara.send("", {
      attachments: [
        { type: "image/png", name: "label.png", contentUrl: `data:image/png;base64,${PNG.toString("base64")}` },
      ],
    });
    await expect.poll(() => chats(sara.inbox.messages).some((m) => m.attachments[0]?.name === "route.pdf")).toBe(true);

    await sara.send("", { button: { id: "agent", text: "Talk to a human" } });
    await expect.poll(() => state(gateway, id)).toBe("queued");
    const current = await gateway.app.store.get(id);
    expect(current?.subject).toBe("billing");
    expect(handOffs(await log(gateway, id)).at(-1)).toEqual({ subject: "billing", desk: "socket", reason: "bot" });

    await sara.send("Hello? Is anyone there?");
    const agent = await joinAsAgent(gateway, id);
    expect(await state(gateway, id)).toBe("active");
    // The agent reads the bot's part of the conversation in the history the join brings.
    expect(said(agent.info.messages)).toEqual([
      "them: Where is my parcel?",
      "bot: It ships tomorrow.",
      "them: menu",
      "bot: ",
      "them: Track my parcel",
      "bot: Send me a photo of the label.",
      "them: ",
      "bot: ",
      "them: Talk to a human",
      "bot: Connecting you…",
      "them: Hello? Is anyone there?",
    ]);
    expect(agent.info.conversation.participants).toEqual([
      { id: sara.init.participant.id, name: "Sara Khan", role: "customer" },
      { id: "bot", name: "Assistant", role: "bot" },
      { id: "agent-7", name: "Ayesha", role: "agent" },
    ]);

    await gms.whenIdle();
    const chatId = await chatIdOf(gateway, id);
    expect(chatId).toBeGreaterThan(0);
    expect(chatId).toBeLessThan(2 ** 31);
    // The platform heard each of the customer's messages once, all before the hand-off, and nothing after.
    expect(gms.heard(chatId).map((r) => [r.kind, r.chatState])).toEqual([
      ["visitor", "bot"],
      ["visitor", "bot"],
      ["keyboard_response", "bot"],
      ["file_visitor", "bot"],
      ["keyboard_response", "bot"],
    ]);
    expect(gms.chat(chatId)?.visitorIds).toEqual([sara.init.participant.id]);
    expect(gms.heard(chatId)[0]?.fields).toEqual({
      name: "Sara Khan",
      phone: "+4790000000",
      email: "sara@example.org",
      site: "https://shop.example.no/cart",
    });
    expect(gms.heard(chatId)[2]?.body).toMatchObject({
      message: { kind: "keyboard_response", data: { button: { id: "track", text: "Track my parcel" } } },
    });
    // The file went as a signed Liaison link that served the customer's bytes.
    const file = gms.heard(chatId)[3];
    expect(file?.body).toMatchObject({
      message: {
        kind: "file_visitor",
        data: { state: "ready", name: "label.png", content_type: "image/png", size: PNG.length },
      },
    });
    expect(file?.fileCheck).toMatchObject({
      status: 200,
      contentType: "image/png",
      sha256: createHash("sha256").update(PNG).digest("hex"),
    });
    expect(gms.calls().every((call) => call.outcome === "ok")).toBe(true);
    expect(gms.calls().every((call) => call.responseContentType?.startsWith("application/json") === true)).toBe(true);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="bot"\} (\d+)/)).toBe(1);
    expect(
      await metric(
        gateway,
        /liaison_adapter_request_seconds_count\{adapter="gms",operation="new_message",outcome="ok"\} (\d+)/,
      ),
    ).toBe(5);
  });

  it("a connector customer talks to the bot through the connector, presses a button, and is handed to a Rocket.Chat agent with the bot's part in a digest", async () => {
    const { gateway, gms, rc } = await scenario({ desk: "rocketchat" });
    if (!rc) throw new Error("no Rocket.Chat");
    gms.reply("hi", [{ kind: "keyboard", text: "How can I help?", buttons: MENU }]);
    gms.reply("Talk to a human", [{ kind: "redirect", depKey: "dep1" }]);

    const connector = await agentSocket(gateway);
    const delivered = collectMessages(connector);
    await request(connector, "registerConnector", { id: "sms", name: "SMS gateway", channel: "sms" });
    const init = (
      await postJson(
        `${gateway.url}/api/customer/init`,
        { firstName: "Bilal", channel: "sms", refId: "+923001112233" },
        { authorization: `Bearer ${gateway.apiKey}` },
      )
    ).body as InitResponse;
    const id = init.conversationId;
    expect(await request(connector, "sendMessage", { conversationId: id, text: "hi" })).toMatchObject({ ok: true });
    // The connector receives the bot's reply for its customer, buttons as they are.
    await expect
      .poll(() => chats(delivered.messages).find((m) => m.from.id === "bot"))
      .toMatchObject({
        text: "How can I help?",
        buttons: MENU,
        refId: "+923001112233",
        from: { id: "bot", name: "Assistant" },
      });
    await request(connector, "sendMessage", {
      conversationId: id,
      text: "",
      button: { id: "agent", text: "Talk to a human" },
    });
    await expect.poll(() => state(gateway, id)).toBe("active");
    const rid = await roomOf(gateway, id);
    await expect.poll(() => visitorTexts(rc, rid).length).toBe(1);
    const [digest] = visitorTexts(rc, rid);
    expect(digest).toMatch(/^Conversation before the hand-off:\n/);
    expect(digest).toMatch(
      /Bilal: hi\n.* Assistant: How can I help\? \[Track my parcel\] \[Talk to a human\]\n.* Bilal: Talk to a human$/,
    );
    expect(rc.room(rid)?.departmentId).toBe("dep1");

    await request(connector, "sendMessage", { conversationId: id, text: "my parcel 8812 is late" });
    await expect.poll(() => visitorTexts(rc, rid).at(-1)).toBe("my parcel 8812 is late");
    rc.agentSend(rid, "Looking into it.");
    await expect.poll(() => chats(delivered.messages).map((m) => m.text)).toContain("Looking into it.");
    await gms.whenIdle();
    const chatId = await chatIdOf(gateway, id);
    expect(heardTexts(gms, chatId)).toEqual(["hi", "Talk to a human"]);
    expect(gms.chat(chatId)?.visitorIds).toEqual([gms.heard(chatId)[0]?.visitorId]);
    expect(gms.heard(chatId)[0]?.fields).toEqual({ name: "Bilal", login: "+923001112233" });
  });

  it("messages waiting for the bot at the hand-off reach the Rocket.Chat agent once, in order, before later ones; the bot never hears them", async () => {
    const { gateway, gms, rc } = await scenario({ desk: "rocketchat", gms: { answerDelayMs: 3_000 } });
    if (!rc) throw new Error("no Rocket.Chat");
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("I want a human");
    // The platform holds its answer to that message: Liaison's bot lane waits, and what the customer writes queues.
    await expect.poll(() => gms.received().some((r) => r.text === "I want a human")).toBe(true);
    for (const text of ["second", "third", "fourth"]) await sara.send(text);
    const chatId = await chatIdOf(gateway, id);
    await gms.say(chatId, [{ kind: "redirect" }]);
    expect(await state(gateway, id)).not.toBe("bot");
    await sara.send("after the hand-off");
    const rid = await roomOf(gateway, id);
    await expect
      .poll(() => visitorTexts(rc, rid))
      .toEqual(["I want a human", "second", "third", "fourth", "after the hand-off"]);
    await gms.whenIdle();
    expect(heardTexts(gms, chatId)).toEqual(["I want a human"]);
    expect(gms.heard().filter((r) => r.chatState !== "bot")).toEqual([]);
  });

  it("a customer on the SDK sees the bot's buttons, with the bot among the participants, and presses one", async () => {
    const { gateway, gms } = await scenario();
    gms.reply("hi", [{ kind: "keyboard", text: "Pick one", buttons: MENU }]);
    gms.reply("Track my parcel", [{ kind: "text", text: "Parcel 8812 ships today." }]);
    const init = await initConversation(gateway.url, { firstName: "Sara", channel: "web", email: "sara@example.org" });
    const client = new LiaisonClient({ url: gateway.url, transports: ["websocket"], timeoutMs: 5_000 });
    cleanups.push(() => client.close());
    const seen: Message[] = [];
    client.on("message", (message) => seen.push(message));
    await client.connect();
    const info = await client.join({
      conversationId: init.conversationId,
      id: init.participant.id,
      name: "Sara",
      token: init.token,
    });
    expect(info.conversation.participants.map((member) => member.role)).toEqual(["customer", "bot"]);
    await client.send(init.conversationId, { text: "hi" });
    await expect.poll(() => chats(seen).find((m) => m.buttons !== undefined)?.buttons).toEqual(MENU);
    const ack = await client.send(init.conversationId, { button: { id: "track", text: "Track my parcel" } });
    expect(ack.seq).toBeGreaterThan(0);
    await expect.poll(() => said(seen)).toContain("bot: Parcel 8812 ships today.");
    expect(await gateway.app.store.findMessage(init.conversationId, ack.id)).toMatchObject({
      text: "Track my parcel",
      button: { id: "track", text: "Track my parcel" },
    });
  });

  it("an agent of the socket desk watches the bot, then takes the conversation over by speaking", async () => {
    const { gateway, gms } = await scenario();
    gms.otherwise([{ kind: "text", text: "Bot here." }]);
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    const agent = await joinAsAgent(gateway, id);
    expect(agent.info.conversation.state).toBe("bot");
    await sara.send("hello");
    await expect.poll(() => said(agent.inbox.messages)).toContain("bot: Bot here.");
    expect(await state(gateway, id)).toBe("bot");

    const ack = await request(agent.socket, "sendMessage", {
      conversationId: id,
      text: "Hi, I'm Ayesha, I'll take it.",
    });
    expect(ack).toMatchObject({ ok: true });
    expect(await state(gateway, id)).toBe("active");
    await expect
      .poll(() => handOffs(sara.inbox.messages).at(-1))
      .toEqual({
        subject: "",
        desk: "socket",
        reason: "takeover",
      });
    await sara.send("thanks!");
    await expect.poll(() => said(agent.inbox.messages)).toContain("them: thanks!");
    await gms.whenIdle();
    expect(heardTexts(gms, await chatIdOf(gateway, id))).toEqual(["hello"]);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="takeover"\} (\d+)/)).toBe(1);
  });

  it("BOT_AFTER_AGENT=resume: the Rocket.Chat agent's close gives the conversation back to the bot, and the next hand-off opens a new room", async () => {
    const { gateway, gms, rc } = await scenario({ desk: "rocketchat", env: { BOT_AFTER_AGENT: "resume" } });
    if (!rc) throw new Error("no Rocket.Chat");
    gms.reply(/human/, [{ kind: "redirect" }]);
    gms.otherwise([{ kind: "text", text: "Back with the bot." }]);
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("a human please");
    const first = await roomOf(gateway, id);
    await expect.poll(() => state(gateway, id)).toBe("active");
    rc.closeByAgent(first, "solved");
    await expect.poll(() => state(gateway, id)).toBe("bot");
    expect(handOffs(await log(gateway, id)).at(-1)).toEqual({ subject: "", desk: "bot", reason: "agent_closed" });
    // Rocket.Chat sending its close again (a retried webhook) changes nothing: the bot keeps the conversation.
    await rc.whenWebhooksIdle();
    const close = rc.webhookAttempts.find((attempt) => attempt.type === "LivechatSession" && attempt.roomId === first);
    expect(close).toBeDefined();
    const repeated = await postJson(`${gateway.url}/webhooks/rocketchat`, close?.body, {
      "x-rocketchat-livechat-token": RC_SECRET,
    });
    expect(repeated.status).toBe(200);
    expect(await state(gateway, id)).toBe("bot");

    await sara.send("one more question");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Back with the bot.");
    await sara.send("human again");
    const second = await roomOf(gateway, id, first);
    expect(second).not.toBe(first);
    await expect.poll(() => visitorTexts(rc, second).length).toBe(1);
    expect(visitorTexts(rc, second)[0]).toMatch(/one more question\n.*Back with the bot\.\n.*human again$/);
    await gms.whenIdle();
    expect(heardTexts(gms, await chatIdOf(gateway, id))).toEqual([
      "a human please",
      "one more question",
      "human again",
    ]);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="agent_closed"\} (\d+)/)).toBe(1);
  });

  it("BOT_AFTER_AGENT=resume with the socket desk: the agent's end gives the conversation back to the bot", async () => {
    const { gateway, gms } = await scenario({ env: { BOT_AFTER_AGENT: "resume" } });
    gms.reply("agent", [{ kind: "redirect" }]);
    gms.otherwise([{ kind: "text", text: "Bot again." }]);
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("agent");
    await expect.poll(() => state(gateway, id)).toBe("queued");
    const agent = await joinAsAgent(gateway, id);
    expect(await request(agent.socket, "endConversation", { conversationId: id })).toEqual({ ok: true });
    expect(await state(gateway, id)).toBe("bot");
    await sara.send("still there?");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Bot again.");
  });

  it("the bot's close ends the conversation, ended by the bot; a repeated close changes nothing", async () => {
    const { gateway, gms } = await scenario();
    gms.reply("bye", [{ kind: "text", text: "Goodbye!" }, { kind: "close" }]);
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("bye");
    await expect.poll(() => state(gateway, id)).toBe("ended");
    await expect
      .poll(() =>
        sara.inbox.messages.find((m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation"),
      )
      .toMatchObject({ info: { reason: "closed by the bot", endedBy: { id: "bot", name: "Assistant", role: "bot" } } });
    const chatId = await chatIdOf(gateway, id);
    const again = await gms.call("close_chat", { chat_id: chatId });
    expect(again).toMatchObject({ status: 200, outcome: "ok", responseJson: { result: "ok" } });
    const late = await gms.call("send_message", { chat_id: chatId, message: { kind: "operator", text: "late" } });
    expect(late.outcome).toBe("ok");
    const ends = (await log(gateway, id)).filter(
      (m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation",
    );
    expect(ends).toHaveLength(1);
    expect(said(await log(gateway, id))).not.toContain("bot: late");
    expect(await metric(gateway, /liaison_bot_outputs_dropped_total\{bot="gms",output="reply"\} (\d+)/)).toBe(1);
  });

  it("a final 400 from the platform hands the customer to the agent at once; /ready says so until the platform takes events again", async () => {
    const { logger, lines } = capturedLogger();
    const { gateway, gms, rc } = await scenario({ desk: "rocketchat", logger });
    if (!rc) throw new Error("no Rocket.Chat");
    gms.setChannel({ active: false });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("is this thing on?");
    await expect.poll(() => state(gateway, id)).toBe("active");
    expect(handOffs(await log(gateway, id)).at(-1)).toMatchObject({ reason: "bot_unavailable" });
    const rid = await roomOf(gateway, id);
    await expect.poll(() => visitorTexts(rc, rid)).toEqual(["is this thing on?"]);
    const ready = (await (await fetch(`${gateway.url}/ready`)).json()) as {
      status: string;
      problems?: Record<string, string>;
    };
    expect(ready.status).toBe("degraded");
    expect(ready.problems?.gms).toMatch(/^the GMS platform has no active channel for the webhook's token \(400\)/);
    expect(JSON.stringify(ready)).not.toContain(gms.token);
    expect(JSON.stringify(ready)).not.toContain("GMS_WEBHOOK_URL");
    // The log names the variable to check, once.
    expect(lines.filter((line) => line.includes('"msg":"problem"'))).toEqual([
      expect.stringContaining("no active channel for GMS_WEBHOOK_URL's token (400)"),
    ]);

    gms.setChannel({ active: true });
    gms.otherwise([{ kind: "text", text: "I'm back." }]);
    const next = await customer(gateway);
    await next.send("hello");
    await expect.poll(() => said(next.inbox.messages)).toContain("bot: I'm back.");
    const after = (await (await fetch(`${gateway.url}/ready`)).json()) as { problems?: Record<string, string> };
    expect(after.problems?.gms ?? "").not.toMatch(/no active channel/);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="bot_unavailable"\} (\d+)/)).toBe(1);
  });

  it("5xx answers, and then timeouts, for longer than BOT_FAILURE_HANDOFF_SECONDS hand the customer to the agent, with nothing lost or doubled", async () => {
    const { gateway, gms, rc } = await scenario({
      desk: "rocketchat",
      env: { BOT_FAILURE_HANDOFF_SECONDS: "1", GMS_TIMEOUT_MS: "300" },
    });
    if (!rc) throw new Error("no Rocket.Chat");
    gms.otherwise([{ kind: "text", text: "ok" }]);
    await gms.goDown({ status: 503 });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    const started = Date.now();
    await sara.send("first");
    await sara.send("second");
    await expect.poll(() => problems(gateway)).toHaveProperty(["bot:gms"]);
    await expect.poll(() => state(gateway, id), { timeout: 10_000 }).toBe("active");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(handOffs(await log(gateway, id)).at(-1)).toMatchObject({ reason: "bot_unavailable" });
    const rid = await roomOf(gateway, id);
    await sara.send("third");
    await expect.poll(() => visitorTexts(rc, rid)).toEqual(["first", "second", "third"]);

    // Hung connections instead of answers: the same, counted from the first failed attempt.
    await gms.goDown("hang");
    const bilal = await customer(gateway, { firstName: "Bilal", email: "bilal@example.org" });
    await bilal.send("anyone?");
    await expect.poll(() => state(gateway, bilal.init.conversationId), { timeout: 10_000 }).toBe("active");
    const room = await roomOf(gateway, bilal.init.conversationId);
    await expect.poll(() => visitorTexts(rc, room)).toEqual(["anyone?"]);
    await gms.comeUp();
    expect(gms.heard()).toEqual([]);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="bot_unavailable"\} (\d+)/)).toBe(2);
  });

  it("waits out the platform's 429 for its Retry-After, then delivers the message once, in order", async () => {
    const { gateway, gms } = await scenario();
    gms.otherwise([{ kind: "text", text: "got it" }]);
    gms.failNext(1, { status: 429, retryAfterSeconds: 1 });
    const sara = await customer(gateway);
    const started = Date.now();
    await sara.send("one");
    await sara.send("two");
    await expect
      .poll(() => said(sara.inbox.messages).filter((line) => line === "bot: got it"), { timeout: 10_000 })
      .toHaveLength(2);
    const chatId = await chatIdOf(gateway, sara.init.conversationId);
    const refused = gms.received().find((r) => r.status === 429);
    const accepted = gms.received().find((r) => r.outcome === "accepted");
    expect((accepted?.at ?? 0) - (refused?.at ?? 0)).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(heardTexts(gms, chatId)).toEqual(["one", "two"]);
    expect(await state(gateway, sara.init.conversationId)).toBe("bot");
    expect(
      await metric(
        gateway,
        /liaison_adapter_request_seconds_count\{adapter="gms",operation="new_message",outcome="rate_limited"\} (\d+)/,
      ),
    ).toBe(1);
  });

  it("never logs the channel's token from GMS_WEBHOOK_URL, nor GMS_TOKEN, while the platform fails", async () => {
    const { logger, lines } = capturedLogger("trace");
    const { gateway, gms } = await scenario({
      logger,
      env: { GMS_TIMEOUT_MS: "200", BOT_FAILURE_HANDOFF_SECONDS: "1" },
    });
    await gms.goDown("refuse");
    const sara = await customer(gateway);
    await sara.send("hello");
    await expect.poll(() => state(gateway, sara.init.conversationId), { timeout: 10_000 }).toBe("queued");
    await gms.comeUp();
    gms.setChannel({ active: false });
    const next = await customer(gateway);
    await next.send("hello again");
    await expect.poll(() => state(gateway, next.init.conversationId)).toBe("queued");
    await postJson(`${gateway.url}/gms/close_chat`, { chat_id: 1 }, { authorization: "Token wrong" });
    await postJson(`${gateway.url}/gms/close_chat`, { chat_id: 1 }, { authorization: `Token ${GMS_TOKEN}` });
    expect(lines.some((line) => line.includes("ECONNREFUSED"))).toBe(true);
    expect(lines.filter((line) => line.includes(gms.token) || line.includes(GMS_TOKEN))).toEqual([]);
  });

  it("answers the platform in its own shape: a missing or wrong token, a malformed body, an unknown chat, a repeated redirect", async () => {
    const { gateway, gms } = await scenario();
    gms.otherwise([{ kind: "text", text: "hi" }]);
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("hello");
    const chatId = await chatIdOf(gateway, id);
    const post = (path: string, body: unknown, token: string | null = GMS_TOKEN) =>
      postJson(`${gateway.url}/gms/${path}`, body, token === null ? {} : { authorization: `Token ${token}` });

    for (const token of [null, "wrong"]) {
      const refused = await post("send_message", { chat_id: chatId, message: { kind: "operator", text: "x" } }, token);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("content-type")).toMatch(/^application\/json/);
      expect(refused.body).toMatchObject({ error: "invalid_token" });
      expect(typeof (refused.body as { desc?: unknown }).desc).toBe("string");
    }
    const bad = [
      "{not json",
      { chat_id: String(chatId), message: { kind: "operator", text: "x" } },
      { chat_id: chatId, message: { kind: "sticker", id: 3 } },
      { chat_id: chatId, message: { kind: "operator" } },
      { chat_id: chatId, message: { kind: "keyboard", buttons: [] } },
      {
        chat_id: chatId,
        message: { kind: "file_operator", data: { url: "file:///etc/passwd", name: "x", media_type: "text/plain" } },
      },
      { message: { kind: "operator", text: "x" } },
    ];
    for (const body of bad) {
      const answer = await post("send_message", body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body).toMatchObject({ error: "bad_request" });
      expect(typeof (answer.body as { desc?: unknown }).desc).toBe("string");
    }
    const unknown = await post("send_message", {
      chat_id: chatId === 7 ? 8 : 7,
      message: { kind: "operator", text: "x" },
    });
    expect(unknown).toMatchObject({ status: 404, body: { error: "chat_not_found" } });
    expect((await post("forward_chat", { chat_id: chatId })).status).toBe(404);

    const redirect = await post("redirect_chat", { chat_id: chatId, dep_key: "billing" });
    expect(redirect).toMatchObject({ status: 200, body: { result: "ok" } });
    const again = await post("redirect_chat", { chat_id: chatId, dep_key: "sales" });
    expect(again).toMatchObject({ status: 200, body: { result: "ok" } });
    expect(handOffs(await log(gateway, id)).filter((info) => info.reason === "bot")).toEqual([
      { subject: "billing", desk: "socket", reason: "bot" },
    ]);
    expect((await gateway.app.store.get(id))?.subject).toBe("billing");
    expect(await metric(gateway, /liaison_bot_outputs_dropped_total\{bot="gms",output="handOff"\} (\d+)/)).toBe(1);
  });
});

describe("BOT=gms on Redis, two nodes", () => {
  it("the customer on one node, the platform and Rocket.Chat calling the other: the bot's part, the hand-off and the waiting messages each once, in order", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    const gms = await startFakeGms({ channelToken: GMS_TOKEN, answerDelayMs: 3_000 });
    cleanups.push(() => gms.close());
    const rc = await startFakeRocketChat({ secretToken: RC_SECRET, retryIntervalMs: 100 });
    cleanups.push(() => rc.close());
    const env = {
      BOT: "gms",
      GMS_WEBHOOK_URL: gms.webhookUrl,
      GMS_TOKEN,
      ROCKETCHAT_URL: rc.url,
      ROCKETCHAT_WEBHOOK_TOKEN: RC_SECRET,
      REDIS_URL: redis.url,
      REDIS_PREFIX: `gms-${process.pid}-${Date.now()}:`,
    };
    const nodes: TestApp[] = [];
    for (const name of ["node-a", "node-b"]) {
      const node = await startTestApp({ ...env, NODE_ID: name }, { tuning: { retryMaxMs: 300 } });
      cleanups.push(() => node.close());
      nodes.push(node);
    }
    const [a, b] = nodes as [TestApp, TestApp];
    gms.setChannel({ webhookUrl: `${b.url}/gms` });
    rc.setWebhookUrl(`${b.url}/webhooks/rocketchat`);
    gms.reply("hello", [{ kind: "text", text: "Hi! How can I help?" }]);

    const sara = await customer(a);
    const id = sara.init.conversationId;
    gms.setAnswerDelay(0);
    await sara.send("hello");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Hi! How can I help?");
    gms.setAnswerDelay(3_000);
    await sara.send("I need a person");
    await expect.poll(() => gms.received().some((r) => r.text === "I need a person")).toBe(true);
    for (const text of ["second", "third"]) await sara.send(text);
    const chatId = await chatIdOf(a, id);
    await gms.say(chatId, [{ kind: "redirect", depKey: "dep1" }]);
    await sara.send("fourth");
    const rid = await roomOf(a, id);
    await expect.poll(() => visitorTexts(rc, rid).length).toBe(5);
    const [digest, ...rest] = visitorTexts(rc, rid);
    expect(digest).toMatch(/Sara Khan: hello\n.*Assistant: Hi! How can I help\?$/);
    expect(rest).toEqual(["I need a person", "second", "third", "fourth"]);
    rc.agentSend(rid, "Jane here.");
    await expect.poll(() => said(sara.inbox.messages)).toContain("them: Jane here.");
    await gms.whenIdle();
    expect(heardTexts(gms, chatId)).toEqual(["hello", "I need a person"]);
    expect(gms.calls().every((call) => call.outcome === "ok")).toBe(true);
  });
});

async function problems(gateway: TestApp): Promise<Record<string, string>> {
  const body = (await (await fetch(`${gateway.url}/ready`)).json()) as { problems?: Record<string, string> };
  return body.problems ?? {};
}
