import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityOf, ChatMessage, ConversationInfo, InitResponse, Message } from "../../protocol/index.js";
import type { Logger } from "../../server/logger.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { startRedis } from "../helpers/redis.js";
import { collectMessages, connect, nextEvent, postJson, request, webCustomer } from "../helpers/socket.js";
import {
  startFakeDialogflow,
  type DetectIntentCall,
  type DialogflowAgent,
  type DialogflowReply,
  type FakeDialogflow,
} from "../fakes/dialogflow/index.js";
import { DEFAULT_FAKE_USER, startFakeRocketChat, type FakeRocketChat } from "../fakes/rocketchat/index.js";

const RC_SECRET = "rc-webhook-secret";
const PROJECT = "acme-bot";

type Edition = "es" | "cx";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Scenario {
  gateway: TestApp;
  df: FakeDialogflow;
  agent: DialogflowAgent;
  rc?: FakeRocketChat;
}

/**
 * Liaison with BOT=dialogflow, the fake Dialogflow (API and token endpoint) and the socket desk or Rocket.Chat. ES
 * reads the service account's key from DIALOGFLOW_CREDENTIALS_JSON, CX (a regional agent) from a key file.
 */
async function scenario(
  edition: Edition,
  options: { desk?: "socket" | "rocketchat"; env?: Record<string, string>; logger?: Logger } = {},
): Promise<Scenario> {
  const df = await startFakeDialogflow({ projectId: PROJECT });
  cleanups.push(() => df.close());
  const agent = edition === "es" ? df.esAgent() : df.cxAgent({ location: "europe-west1" });
  let credentials: Record<string, string>;
  if (edition === "es") {
    credentials = { DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(df.serviceAccount) };
  } else {
    const dir = await mkdtemp(join(tmpdir(), "liaison-dialogflow-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "service-account.json");
    await writeFile(file, JSON.stringify(df.serviceAccount, null, 2), { mode: 0o600 });
    credentials = {
      DIALOGFLOW_CREDENTIALS: file,
      DIALOGFLOW_AGENT_ID: agent.agentId ?? "",
      DIALOGFLOW_LOCATION: agent.location,
    };
  }
  let rc: FakeRocketChat | undefined;
  if (options.desk === "rocketchat") {
    rc = await startFakeRocketChat({ secretToken: RC_SECRET, retryIntervalMs: 100 });
    const fake = rc;
    cleanups.push(() => fake.close());
  }
  const gateway = await startTestApp(
    {
      BOT: "dialogflow",
      DIALOGFLOW_PROJECT_ID: PROJECT,
      DIALOGFLOW_API_URL: df.url,
      ...credentials,
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
  rc?.setWebhookUrl(`${gateway.url}/webhooks/rocketchat`);
  return { gateway, df, agent, ...(rc === undefined ? {} : { rc }) };
}

/** A text with buttons under it: ES quick replies with a title; CX a text and a rich-content payload of chips. */
function withButtons(edition: Edition, text: string, buttons: string[]): DialogflowReply[] {
  return edition === "es" ? [{ quickReplies: buttons, title: text }] : [{ text }, { chips: buttons }];
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

/** A connector customer (an SMS gateway on an API-key socket) and what the connector receives. */
async function connectorCustomer(gateway: TestApp) {
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
  const send = (text: string, extra: Record<string, unknown> = {}) =>
    request<{ ok: boolean }>(connector, "sendMessage", { conversationId: init.conversationId, text, ...extra });
  return { id: init.conversationId, delivered, send };
}

const state = async (gateway: TestApp, conversationId: string) => (await gateway.app.store.get(conversationId))?.state;
const chats = (messages: readonly Message[]) => messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
const said = (messages: readonly Message[]) =>
  chats(messages).map((m) => `${m.from.id === "bot" ? "bot" : "them"}: ${m.text}`);
/** The conversation's changes of hands after it started with the bot. */
const handOffs = (messages: readonly Message[]) =>
  messages
    .filter((m): m is ActivityOf<"handOff"> => m.type === "ActivityMessage" && m.activityType === "handOff")
    .map((m) => m.info)
    .filter((info) => info.reason !== "init");
const log = async (gateway: TestApp, conversationId: string) => gateway.app.store.read(conversationId, 0);
/** A call's text, or its event as `event:<name>`, read from the body as sent (also of a call refused before reading). */
function queryOf(call: DetectIntentCall): string {
  const input = (call.body as { queryInput?: { text?: { text?: string }; event?: { name?: string; event?: string } } })
    .queryInput;
  const event = input?.event?.name ?? input?.event?.event;
  return input?.text?.text ?? (event === undefined ? "?" : `event:${event}`);
}
/** What Dialogflow was asked in a session: each call's text or event, and Dialogflow's answer status. */
const asked = (df: FakeDialogflow, sessionId: string) =>
  df
    .calls()
    .filter((call) => call.sessionId === sessionId)
    .map((call) => ({ query: queryOf(call), status: call.status }));
/** What Dialogflow answered in a session (the turns it took). */
const heard = (df: FakeDialogflow, sessionId: string) =>
  asked(df, sessionId)
    .filter((call) => call.status === 200)
    .map((call) => call.query);
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
const metric = async (gateway: TestApp, pattern: RegExp): Promise<number> => {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
};
async function problems(gateway: TestApp): Promise<Record<string, string>> {
  const body = (await (await fetch(`${gateway.url}/ready`)).json()) as { problems?: Record<string, string> };
  return body.problems ?? {};
}
const PNG = Buffer.from("89504e470d0a1a0a0000000d4948445200000001", "hex");
const MENU = ["Track my parcel", "Talk to a human"];
const MENU_BUTTONS = [MENU.map((text) => ({ id: text, text }))];

describe.each(["es", "cx"] as const)("BOT=dialogflow (%s) end to end", (edition) => {
  it("a web customer talks to the bot, presses its buttons, sends it a file, and is handed to a socket-desk agent who reads the bot's part in the history", async () => {
    const { gateway, df, agent } = await scenario(edition);
    agent.intent({
      displayName: "parcel",
      phrases: ["Where is my parcel?"],
      replies: [{ text: "It ships tomorrow." }],
    });
    agent.intent({ displayName: "menu", phrases: ["menu"], replies: withButtons(edition, "How can I help?", MENU) });
    agent.intent({
      displayName: "track",
      phrases: ["Track my parcel"],
      replies: [{ text: "Send me a photo of the label." }],
    });
    agent.intent({
      displayName: "file received",
      events: ["liaison_file"],
      replies: [{ text: "Thanks, an agent will look at it." }],
    });
    // ES: a hand-off intent whose parameter names the department; CX: a Live agent handoff naming the queue.
    if (edition === "es") {
      agent.intent({
        displayName: "talk_to_agent",
        phrases: ["Talk to a human"],
        parameters: { department: "billing" },
        replies: [{ text: "Connecting you…" }],
      });
    } else {
      agent.intent({
        displayName: "human",
        phrases: ["Talk to a human"],
        replies: [{ text: "Connecting you…" }, { liveAgentHandoff: { queue: "billing", reason: "user_request" } }],
      });
    }

    const sara = await customer(gateway, { phone: "+4790000000" });
    const id = sara.init.conversationId;
    expect(await state(gateway, id)).toBe("bot");

    await sara.send("Where is my parcel?");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: It ships tomorrow.");
    const answer = chats(sara.inbox.messages).find((m) => m.text === "It ships tomorrow.");
    expect(answer?.from).toEqual({ id: "bot", name: "Assistant" });

    await sara.send("menu");
    await expect
      .poll(() => chats(sara.inbox.messages).find((m) => m.buttons !== undefined))
      .toMatchObject({ text: "How can I help?", buttons: MENU_BUTTONS });

    // The press: the button's id is its text (Dialogflow gives none); Dialogflow is asked that text.
    expect(await sara.send("", { button: { id: "Track my parcel", text: "Track my parcel" } })).toMatchObject({
      ok: true,
    });
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Send me a photo of the label.");

    await sara.send("", {
      attachments: [
        { type: "image/png", name: "label.png", contentUrl: `data:image/png;base64,${PNG.toString("base64")}` },
      ],
    });
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Thanks, an agent will look at it.");

    await sara.send("", { button: { id: "Talk to a human", text: "Talk to a human" } });
    await expect.poll(() => state(gateway, id)).toBe("queued");
    expect((await gateway.app.store.get(id))?.subject).toBe("billing");
    expect(handOffs(await log(gateway, id)).at(-1)).toEqual({ subject: "billing", desk: "socket", reason: "bot" });
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Connecting you…");

    await sara.send("Hello? Is anyone there?");
    const ayesha = await joinAsAgent(gateway, id);
    expect(await state(gateway, id)).toBe("active");
    // The agent reads the bot's part of the conversation in the history the join brings: each message once.
    expect(said(ayesha.info.messages)).toEqual([
      "them: Where is my parcel?",
      "bot: It ships tomorrow.",
      "them: menu",
      "bot: How can I help?",
      "them: Track my parcel",
      "bot: Send me a photo of the label.",
      "them: ",
      "bot: Thanks, an agent will look at it.",
      "them: Talk to a human",
      "bot: Connecting you…",
      "them: Hello? Is anyone there?",
    ]);
    expect(chats(ayesha.info.messages)[6]?.attachments[0]).toMatchObject({ name: "label.png", type: "image/png" });
    expect(ayesha.info.conversation.participants).toEqual([
      { id: sara.init.participant.id, name: "Sara Khan", role: "customer" },
      { id: "bot", name: "Assistant", role: "bot" },
      { id: "agent-7", name: "Ayesha", role: "agent" },
    ]);

    expect(await request(ayesha.socket, "sendMessage", { conversationId: id, text: "Hi, Ayesha here." })).toMatchObject(
      { ok: true },
    );
    await expect.poll(() => said(sara.inbox.messages)).toContain("them: Hi, Ayesha here.");
    await sara.send("My parcel is 8812.");
    await expect.poll(() => said(ayesha.inbox.messages)).toContain("them: My parcel is 8812.");
    // The customer saw each of the bot's replies once.
    expect(said(sara.inbox.messages).filter((line) => line.startsWith("bot: "))).toEqual([
      "bot: It ships tomorrow.",
      "bot: How can I help?",
      "bot: Send me a photo of the label.",
      "bot: Thanks, an agent will look at it.",
      "bot: Connecting you…",
    ]);

    // Dialogflow was asked each message once, in order, in the conversation's session, and nothing after the hand-off.
    expect(asked(df, id)).toEqual([
      { query: "Where is my parcel?", status: 200 },
      { query: "menu", status: 200 },
      { query: "Track my parcel", status: 200 },
      { query: "event:liaison_file", status: 200 },
      { query: "Talk to a human", status: 200 },
    ]);
    const calls = df.calls();
    expect(calls.every((call) => call.languageCode === "en" && call.auth.kind === "access-token")).toBe(true);
    expect(calls.every((call) => call.edition === edition && call.projectId === PROJECT)).toBe(true);
    if (edition === "cx") {
      expect(calls.every((call) => call.agentId === agent.agentId && call.location === "europe-west1")).toBe(true);
    }
    expect(df.tokenRequests().map((r) => r.status)).toEqual([200]);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="bot"\} (\d+)/)).toBe(1);
    expect(
      await metric(
        gateway,
        /liaison_adapter_request_seconds_count\{adapter="dialogflow",operation="detectIntent",outcome="ok"\} (\d+)/,
      ),
    ).toBe(5);
  });

  it("a connector customer talks to the bot, presses a button, and is handed to a Rocket.Chat agent's department with the bot's part in a digest", async () => {
    const { gateway, df, agent, rc } = await scenario(edition, { desk: "rocketchat" });
    if (!rc) throw new Error("no Rocket.Chat");
    agent.intent({ displayName: "greeting", phrases: ["hi"], replies: withButtons(edition, "How can I help?", MENU) });
    // ES: a payload that says hand-off and names the department; CX: the hand-off intent, the department a session
    // parameter it sets.
    if (edition === "es") {
      agent.intent({
        displayName: "escalate",
        phrases: ["Talk to a human"],
        replies: [{ text: "One moment." }, { payload: { handoff: true, department: "dep1" } }],
      });
    } else {
      agent.intent({
        displayName: "talk_to_agent",
        phrases: ["Talk to a human"],
        parameters: { queue: "dep1" },
        replies: [{ text: "One moment." }],
      });
    }
    agent.intent({
      displayName: "file received",
      events: ["liaison_file"],
      replies: [{ text: "Thanks, an agent will look at it." }],
    });
    const bilal = await connectorCustomer(gateway);
    const id = bilal.id;
    expect(await bilal.send("hi")).toMatchObject({ ok: true });
    // The connector receives the bot's reply for its customer, buttons as they are.
    await expect
      .poll(() => chats(bilal.delivered.messages).find((m) => m.from.id === "bot"))
      .toMatchObject({
        text: "How can I help?",
        buttons: MENU_BUTTONS,
        refId: "+923001112233",
        from: { id: "bot", name: "Assistant" },
      });
    await bilal.send("", {
      attachments: [
        { type: "image/png", name: "label.png", contentUrl: `data:image/png;base64,${PNG.toString("base64")}` },
      ],
    });
    await expect
      .poll(() => chats(bilal.delivered.messages).map((m) => m.text))
      .toContain("Thanks, an agent will look at it.");
    await bilal.send("", { button: { id: "Talk to a human", text: "Talk to a human" } });
    await expect.poll(() => state(gateway, id)).toBe("active");
    const rid = await roomOf(gateway, id);
    expect(rc.room(rid)?.departmentId).toBe("dep1");
    expect((await gateway.app.store.get(id))?.subject).toBe("dep1");
    await expect.poll(() => visitorTexts(rc, rid).length).toBe(1);
    const [digest] = visitorTexts(rc, rid);
    expect(digest).toMatch(/^Conversation before the hand-off:\n/);
    expect(digest).toMatch(
      /Bilal: hi\n.* Assistant: How can I help\? \[Track my parcel\] \[Talk to a human\]\n.* Bilal: .*label\.png.*\n.* Assistant: Thanks, an agent will look at it\.\n.* Bilal: Talk to a human\n.* Assistant: One moment\.$/,
    );

    await bilal.send("my parcel 8812 is late");
    await expect.poll(() => visitorTexts(rc, rid).at(-1)).toBe("my parcel 8812 is late");
    rc.agentSend(rid, "Looking into it.");
    await expect.poll(() => chats(bilal.delivered.messages).map((m) => m.text)).toContain("Looking into it.");
    expect(visitorTexts(rc, rid)).toHaveLength(2);
    expect(heard(df, id)).toEqual(["hi", "event:liaison_file", "Talk to a human"]);
    expect(asked(df, id)).toHaveLength(3);
  });

  it("customer messages waiting for the bot at the hand-off reach the Rocket.Chat agent once, in order; Dialogflow never hears them", async () => {
    const { gateway, df, agent, rc } = await scenario(edition, { desk: "rocketchat" });
    if (!rc) throw new Error("no Rocket.Chat");
    agent.intent({ displayName: "hello", phrases: ["hello"], replies: [{ text: "Hi! How can I help?" }] });
    agent.intent({
      displayName: "talk_to_agent",
      phrases: [/human/],
      replies: [{ text: "Connecting you…" }],
    });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("hello");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Hi! How can I help?");
    // Dialogflow fails for a while: the next message is retried, and what the customer writes meanwhile waits
    // behind it, in order.
    await df.goDown({ status: 503 });
    await sara.send("I want a human");
    for (const text of ["second", "third"]) await sara.send(text);
    await expect.poll(() => asked(df, id).filter((call) => call.status === 503).length).toBeGreaterThanOrEqual(2);
    expect(new Set(asked(df, id).map((call) => call.query))).toEqual(new Set(["hello", "I want a human"]));
    await df.comeUp();
    await expect.poll(() => state(gateway, id)).toBe("active");
    await sara.send("fourth");
    const rid = await roomOf(gateway, id);
    await expect.poll(() => visitorTexts(rc, rid).length).toBe(4);
    const [digest, ...rest] = visitorTexts(rc, rid);
    expect(digest).toMatch(
      /Sara Khan: hello\n.* Assistant: Hi! How can I help\?\n.* Sara Khan: I want a human\n.* Assistant: Connecting you…$/,
    );
    expect(rest).toEqual(["second", "third", "fourth"]);
    expect(heard(df, id)).toEqual(["hello", "I want a human"]);
    expect(handOffs(await log(gateway, id))).toEqual([{ subject: "", desk: "rocketchat", reason: "bot" }]);
    expect(said(sara.inbox.messages).filter((line) => line === "bot: Connecting you…")).toHaveLength(1);
  });

  it("the bot's endInteraction ends the conversation, ended by the bot", async () => {
    const { gateway, df, agent } = await scenario(edition);
    agent.intent({ displayName: "goodbye", phrases: ["bye"], replies: [{ text: "Goodbye!" }], endInteraction: true });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("bye");
    await expect.poll(() => state(gateway, id)).toBe("ended");
    await expect
      .poll(() =>
        sara.inbox.messages.find((m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation"),
      )
      .toMatchObject({ info: { endedBy: { id: "bot", name: "Assistant", role: "bot" } } });
    expect(said(await log(gateway, id))).toEqual(["them: bye", "bot: Goodbye!"]);
    expect(heard(df, id)).toEqual(["bye"]);
    const ends = (await log(gateway, id)).filter(
      (m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation",
    );
    expect(ends).toHaveLength(1);
  });

  it("BOT_AFTER_AGENT=resume: the agent's end gives the conversation back to the bot, which hears the event liaison_agent_closed", async () => {
    const { gateway, df, agent } = await scenario(edition, { env: { BOT_AFTER_AGENT: "resume" } });
    agent.intent({ displayName: "talk_to_agent", phrases: ["agent"], replies: [{ text: "Connecting you…" }] });
    agent.intent({
      displayName: "after the agent",
      events: ["liaison_agent_closed"],
      replies: [{ text: "Anything else I can do?" }],
    });
    agent.intent({ displayName: "thanks", phrases: ["no thanks"], replies: [{ text: "Have a nice day." }] });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("agent");
    await expect.poll(() => state(gateway, id)).toBe("queued");
    const ayesha = await joinAsAgent(gateway, id);
    await sara.send("my order is 8812");
    await expect.poll(() => said(ayesha.inbox.messages)).toContain("them: my order is 8812");
    expect(await request(ayesha.socket, "endConversation", { conversationId: id })).toEqual({ ok: true });
    expect(await state(gateway, id)).toBe("bot");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Anything else I can do?");
    await sara.send("no thanks");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Have a nice day.");
    expect(heard(df, id)).toEqual(["agent", "event:liaison_agent_closed", "no thanks"]);
    const event = df.calls().find((call) => call.event === "liaison_agent_closed");
    expect(event?.body).toEqual(
      edition === "es"
        ? { queryInput: { event: { name: "liaison_agent_closed", languageCode: "en" } } }
        : { queryInput: { event: { event: "liaison_agent_closed" }, languageCode: "en" } },
    );
    expect(await metric(gateway, /liaison_handoffs_total\{reason="agent_closed"\} (\d+)/)).toBe(1);
  });

  it("a 401 for an expired access token gets one new token and the call once more; the message is answered once", async () => {
    const { logger, lines } = capturedLogger("trace");
    const { gateway, df, agent } = await scenario(edition, { logger });
    agent.intent({ displayName: "hello", phrases: ["hello"], replies: [{ text: "Hi there." }] });
    agent.intent({ displayName: "again", phrases: ["again"], replies: [{ text: "Still here." }] });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("hello");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Hi there.");
    df.expireTokens();
    await sara.send("again");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Still here.");
    expect(asked(df, id)).toEqual([
      { query: "hello", status: 200 },
      { query: "again", status: 401 },
      { query: "again", status: 200 },
    ]);
    const [first, second] = df.tokenRequests();
    expect(df.tokenRequests()).toHaveLength(2);
    expect(first?.status).toBe(200);
    expect(second?.status).toBe(200);
    const [, refused, retried] = df.calls();
    expect(refused?.auth.token).toBe(first?.accessToken);
    expect(retried?.auth.token).toBe(second?.accessToken);
    expect(said(await log(gateway, id))).toEqual(["them: hello", "bot: Hi there.", "them: again", "bot: Still here."]);
    expect(await state(gateway, id)).toBe("bot");
    expect((await problems(gateway)).dialogflow).toBeUndefined();
    // Neither the key nor a token shows in the logs.
    const secrets = [df.serviceAccount.private_key.split("\n")[1] ?? "", first?.accessToken, second?.accessToken];
    for (const secret of secrets) {
      expect(secret).toBeTruthy();
      expect(lines.filter((line) => line.includes(secret ?? ""))).toEqual([]);
    }
  });

  it("Dialogflow refusing the service account (403) hands the customer to an agent at once; /ready says what to fix until a call succeeds", async () => {
    const { logger, lines } = capturedLogger();
    const { gateway, df, agent, rc } = await scenario(edition, { desk: "rocketchat", logger });
    if (!rc) throw new Error("no Rocket.Chat");
    agent.intent({ displayName: "hello", phrases: ["hello"], replies: [{ text: "Hi there." }] });
    df.denyPermission(true);
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("is anyone there?");
    await expect.poll(() => state(gateway, id)).toBe("active");
    expect(handOffs(await log(gateway, id))).toEqual([{ subject: "", desk: "rocketchat", reason: "bot_unavailable" }]);
    const rid = await roomOf(gateway, id);
    await expect.poll(() => visitorTexts(rc, rid)).toEqual(["is anyone there?"]);
    expect(asked(df, id)).toEqual([{ query: "is anyone there?", status: 403 }]);
    expect((await problems(gateway)).dialogflow).toBe(
      "Dialogflow denies the service account (403): it needs the Dialogflow API Client role",
    );
    const ready = JSON.stringify(await problems(gateway));
    for (const secret of [df.serviceAccount.private_key_id, ...df.tokens().map((t) => t.accessToken)]) {
      expect(ready).not.toContain(secret);
    }
    // The log has Google's words, once, however often /ready is asked.
    const logged = lines
      .map((line) => JSON.parse(line) as { level: number; component?: string; msg: string; problem?: string })
      .filter((line) => line.component === "dialogflow" && line.msg === "problem");
    expect(logged).toEqual([
      expect.objectContaining({
        level: 40,
        problem: expect.stringMatching(/^Dialogflow denies the service account \(403: .+\): grant it/) as unknown,
      }),
    ]);

    df.denyPermission(false);
    const next = await customer(gateway);
    await next.send("hello");
    await expect.poll(() => said(next.inbox.messages)).toContain("bot: Hi there.");
    expect((await problems(gateway)).dialogflow).toBeUndefined();
    expect(await metric(gateway, /liaison_handoffs_total\{reason="bot_unavailable"\} (\d+)/)).toBe(1);
  });

  it("an agent Dialogflow does not have (404) hands the customer to an agent at once; /ready says so and the log names the settings to check", async () => {
    const missing: Record<string, string> =
      edition === "es" ? { DIALOGFLOW_PROJECT_ID: "acme-other" } : { DIALOGFLOW_AGENT_ID: "0b6c1f4e-no-such-agent" };
    const { logger, lines } = capturedLogger();
    const { gateway, df } = await scenario(edition, { env: missing, logger });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("hello");
    await expect.poll(() => state(gateway, id)).toBe("queued");
    expect(handOffs(await log(gateway, id))).toEqual([{ subject: "", desk: "socket", reason: "bot_unavailable" }]);
    expect(df.calls().map((call) => call.status)).toEqual([404]);
    expect((await problems(gateway)).dialogflow).toBe("Dialogflow has no such agent (404)");
    expect(lines.filter((line) => line.includes('"msg":"problem"'))).toEqual([
      expect.stringMatching(/"problem":"Dialogflow has no such agent .*DIALOGFLOW_PROJECT_ID.*DIALOGFLOW_AGENT_ID/),
    ]);
    const ayesha = await joinAsAgent(gateway, id);
    expect(said(ayesha.info.messages)).toEqual(["them: hello"]);
  });

  it("5xx answers, and then hung connections, for longer than BOT_FAILURE_HANDOFF_SECONDS hand the customer to an agent, with nothing lost or doubled", async () => {
    const { gateway, df, agent, rc } = await scenario(edition, {
      desk: "rocketchat",
      env: { BOT_FAILURE_HANDOFF_SECONDS: "1", DIALOGFLOW_TIMEOUT_MS: "300" },
    });
    if (!rc) throw new Error("no Rocket.Chat");
    agent.intent({ displayName: "hello", phrases: ["hello"], replies: [{ text: "Hi! How can I help?" }] });
    const sara = await customer(gateway);
    const id = sara.init.conversationId;
    await sara.send("hello");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Hi! How can I help?");
    await df.goDown({ status: 500 });
    const started = Date.now();
    await sara.send("first");
    await sara.send("second");
    await expect.poll(() => problems(gateway)).toHaveProperty(["bot:dialogflow"]);
    await expect.poll(() => state(gateway, id), { timeout: 10_000 }).toBe("active");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(handOffs(await log(gateway, id))).toEqual([{ subject: "", desk: "rocketchat", reason: "bot_unavailable" }]);
    const rid = await roomOf(gateway, id);
    await sara.send("third");
    await expect.poll(() => visitorTexts(rc, rid).length).toBe(4);
    const [digest, ...rest] = visitorTexts(rc, rid);
    expect(digest).toMatch(/Sara Khan: hello\n.* Assistant: Hi! How can I help\?$/);
    expect(rest).toEqual(["first", "second", "third"]);
    // Retried in order: only the oldest waiting message was asked, again and again, and never answered.
    const failed = asked(df, id).slice(1);
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed.every((call) => call.query === "first" && call.status === 500)).toBe(true);

    // Hung connections instead of answers: the same, counted from the first failed attempt.
    await df.goDown("hang");
    const bilal = await customer(gateway, { firstName: "Bilal", email: "bilal@example.org" });
    await bilal.send("anyone?");
    await expect.poll(() => state(gateway, bilal.init.conversationId), { timeout: 10_000 }).toBe("active");
    const room = await roomOf(gateway, bilal.init.conversationId);
    await expect.poll(() => visitorTexts(rc, room)).toEqual(["anyone?"]);
    await df.comeUp();
    expect(heard(df, id)).toEqual(["hello"]);
    expect(asked(df, bilal.init.conversationId)).toEqual([]);
    expect(said(sara.inbox.messages).filter((line) => line.startsWith("bot: "))).toEqual(["bot: Hi! How can I help?"]);
    expect(await metric(gateway, /liaison_handoffs_total\{reason="bot_unavailable"\} (\d+)/)).toBe(2);
  });
});

describe("BOT=dialogflow on Redis, two nodes", () => {
  it("the customer on one node, Rocket.Chat calling the other: the bot's part, the hand-off and the messages waiting behind a Dialogflow outage each once, in order", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    const df = await startFakeDialogflow({ projectId: PROJECT });
    cleanups.push(() => df.close());
    const rc = await startFakeRocketChat({ secretToken: RC_SECRET, retryIntervalMs: 100 });
    cleanups.push(() => rc.close());
    const agent = df.cxAgent();
    agent.intent({ displayName: "hello", phrases: ["hello"], replies: [{ text: "Hi! How can I help?" }] });
    agent.intent({
      displayName: "human",
      phrases: ["I need a person"],
      replies: [{ text: "Connecting you…" }, { liveAgentHandoff: { department: "dep1" } }],
    });
    const env = {
      BOT: "dialogflow",
      DIALOGFLOW_PROJECT_ID: PROJECT,
      DIALOGFLOW_AGENT_ID: agent.agentId ?? "",
      DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(df.serviceAccount),
      DIALOGFLOW_API_URL: df.url,
      ROCKETCHAT_URL: rc.url,
      ROCKETCHAT_WEBHOOK_TOKEN: RC_SECRET,
      REDIS_URL: redis.url,
      REDIS_PREFIX: `dialogflow-${process.pid}-${Date.now()}:`,
    };
    const nodes: TestApp[] = [];
    for (const name of ["node-a", "node-b"]) {
      const node = await startTestApp({ ...env, NODE_ID: name }, { tuning: { retryMaxMs: 300 } });
      cleanups.push(() => node.close());
      nodes.push(node);
    }
    const [a, b] = nodes as [TestApp, TestApp];
    rc.setWebhookUrl(`${b.url}/webhooks/rocketchat`);

    const sara = await customer(a);
    const id = sara.init.conversationId;
    await sara.send("hello");
    await expect.poll(() => said(sara.inbox.messages)).toContain("bot: Hi! How can I help?");
    await df.goDown({ status: 503 });
    await sara.send("I need a person");
    for (const text of ["second", "third"]) await sara.send(text);
    await expect.poll(() => asked(df, id).filter((call) => call.status === 503).length).toBeGreaterThanOrEqual(2);
    await df.comeUp();
    await expect.poll(() => state(b, id)).toBe("active");
    await sara.send("fourth");
    const rid = await roomOf(b, id);
    expect(rc.room(rid)?.departmentId).toBe("dep1");
    await expect.poll(() => visitorTexts(rc, rid).length).toBe(4);
    const [digest, ...rest] = visitorTexts(rc, rid);
    expect(digest).toMatch(
      /Sara Khan: hello\n.* Assistant: Hi! How can I help\?\n.* Sara Khan: I need a person\n.* Assistant: Connecting you…$/,
    );
    expect(rest).toEqual(["second", "third", "fourth"]);
    rc.agentSend(rid, "Jane here.");
    await expect.poll(() => said(sara.inbox.messages)).toContain("them: Jane here.");
    expect(heard(df, id)).toEqual(["hello", "I need a person"]);
    expect(said(sara.inbox.messages).filter((line) => line.startsWith("bot: "))).toEqual([
      "bot: Hi! How can I help?",
      "bot: Connecting you…",
    ]);
    // Each node keeps the token it got: at most one request per node.
    expect(df.tokenRequests().length).toBeLessThanOrEqual(2);
  });
});
