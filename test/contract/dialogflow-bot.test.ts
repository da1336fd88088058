import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ChatMessage } from "../../protocol/index.js";
import {
  DialogflowBot,
  DialogflowClient,
  DialogflowError,
  dialogflow,
  parseServiceAccount,
  type ServiceAccount,
} from "../../server/adapters/dialogflow/index.js";
import { DialogflowConfigSchema } from "../../server/adapters/dialogflow/config.js";
import type { BotInput, BotOutput } from "../../server/core/bot.js";
import type { Conversation } from "../../server/core/conversation.js";
import { startFakeDialogflow, type FakeDialogflow, type ServiceAccountKey } from "../fakes/dialogflow/index.js";
import { conversationFixture } from "./store.contract.js";

// The Dialogflow bot against the fake Dialogflow: the requests Google's API takes (ES and CX), the service account's
// token, every way a call fails, and what the answers become.

let df: FakeDialogflow;
// One fake for the file: generating its RSA key is the slow part. Each test makes its own agents and conversations.
beforeAll(async () => {
  df = await startFakeDialogflow({ projectId: "acme-bot" });
});
afterAll(async () => {
  await df.close();
});
afterEach(async () => {
  df.denyPermission(false);
  df.setTokenLifetime(3599);
  df.failNext(0, { status: 500 });
  await df.comeUp();
});

type Outcome = "ok" | "error" | "rate_limited";

/** The bot as `BOT=dialogflow` creates it from these variables (the fake's key and URL unless given). */
function setup(env: Record<string, string> = {}) {
  const config = DialogflowConfigSchema.parse({
    DIALOGFLOW_PROJECT_ID: "acme-bot",
    DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(df.serviceAccount),
    DIALOGFLOW_API_URL: df.url,
    DIALOGFLOW_TIMEOUT_MS: "2000",
    ...env,
  });
  const observed: [string, Outcome][] = [];
  const instance = dialogflow.create({
    config,
    gateway: {
      publicUrl: "https://liaison.example.org",
      maxPayloadBytes: 1_000_000,
      maxFileBytes: 1_000_000,
      fetchHosts: [],
      desk: { name: "socket", external: false },
    },
    // A bot answers through what `deliver` returns: it needs neither the core nor the store.
    core: undefined as never,
    store: undefined as never,
    signer: undefined as never,
    logger: pino({ level: "silent" }),
    observe: (operation, outcome) => observed.push([operation, outcome]),
  });
  const bot = instance.bot;
  if (bot === undefined) throw new Error("the Dialogflow module made no bot");
  return { bot, problem: () => instance.problem?.(), observed };
}

const conversation = (overrides: Partial<Conversation> = {}): Conversation =>
  conversationFixture({ state: "bot", subject: "", ...overrides });

let seq = 0;
const message = (c: Conversation, text: string, overrides: Partial<ChatMessage> = {}): BotInput => ({
  kind: "message",
  message: {
    type: "ChatMessage",
    id: `m-${++seq}`,
    conversationId: c.id,
    seq,
    timestamp: new Date().toISOString(),
    from: c.customer,
    to: [],
    text,
    attachments: [],
    tag: "",
    ...overrides,
  },
});

/** A customer's press of a button: the protocol's `button` field arrives with the bot stage. */
const press = (c: Conversation, button: { id: string; text: string }): BotInput => {
  const input = message(c, button.text);
  Object.assign(input.kind === "message" ? input.message : {}, { button });
  return input;
};

const replies = (outputs: BotOutput[]) =>
  outputs.flatMap((output) => (output.type === "reply" ? [{ text: output.text, buttons: output.buttons }] : []));

const callsOf = (c: Conversation) => df.calls().filter((call) => call.sessionId === c.id);

async function failure(promise: Promise<unknown>): Promise<DialogflowError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DialogflowError);
    return error as DialogflowError;
  }
  throw new Error("expected a DialogflowError");
}

describe("Dialogflow ES", () => {
  it("asks detectIntent with the conversation as the session and its language, and shows the replies", async () => {
    const agent = df.esAgent({ languages: ["en", "de"] });
    agent.intent({ displayName: "greeting", phrases: ["hello"], replies: [{ text: "Hi! How can I help?" }] });
    const { bot } = setup();
    const c = conversation();
    const outputs = await bot.deliver(c, message(c, "Hello"));
    expect(outputs).toEqual([
      {
        type: "reply",
        externalId: expect.stringMatching(/^dialogflow:m-\d+:0$/) as string,
        text: "Hi! How can I help?",
        attachments: [],
      },
    ]);
    const [call] = callsOf(c);
    expect(call).toMatchObject({
      edition: "es",
      path: `/v2/projects/acme-bot/agent/sessions/${c.id}:detectIntent`,
      sessionId: c.id,
      text: "Hello",
      languageCode: "en",
      auth: { kind: "access-token", clientEmail: df.serviceAccount.client_email },
      status: 200,
    });
    expect(call?.body).toEqual({ queryInput: { text: { text: "Hello", languageCode: "en" } } });
    const german = conversation({ language: "de" });
    await bot.deliver(german, message(german, "hello"));
    expect(callsOf(german).map((x) => x.languageCode)).toEqual(["de"]);
  });

  it("reaches a regional agent through its location", async () => {
    const agent = df.esAgent({ location: "europe-west1" });
    agent.intent({ displayName: "greeting", phrases: ["hello"], replies: [{ text: "Hallo from Belgium" }] });
    const { bot } = setup({ DIALOGFLOW_LOCATION: "europe-west1" });
    const c = conversation();
    expect(replies(await bot.deliver(c, message(c, "hello")))).toEqual([{ text: "Hallo from Belgium" }]);
    expect(callsOf(c)[0]?.path).toBe(
      `/v2/projects/acme-bot/locations/europe-west1/agent/sessions/${c.id}:detectIntent`,
    );
  });

  it("shows quick replies as one row of buttons under the text before them", async () => {
    const agent = df.esAgent();
    agent.intent({
      displayName: "menu",
      phrases: ["menu"],
      replies: [{ text: "What is it about?" }, { quickReplies: ["Billing", "Sales", "Other"] }],
    });
    const { bot } = setup();
    const c = conversation();
    expect(replies(await bot.deliver(c, message(c, "menu")))).toEqual([
      {
        text: "What is it about?",
        buttons: [
          [
            { id: "Billing", text: "Billing" },
            { id: "Sales", text: "Sales" },
            { id: "Other", text: "Other" },
          ],
        ],
      },
    ]);
  });

  it("sends a press as the button's text", async () => {
    const agent = df.esAgent();
    agent.intent({ displayName: "billing", phrases: ["Billing"], replies: [{ text: "Billing it is." }] });
    const { bot } = setup();
    const c = conversation();
    const outputs = await bot.deliver(c, press(c, { id: "Billing", text: "Billing" }));
    expect(replies(outputs)).toEqual([{ text: "Billing it is." }]);
    expect(callsOf(c).map((call) => call.text)).toEqual(["Billing"]);
  });

  it("hands off on a hand-off intent's name or action, with the department its parameters name", async () => {
    const agent = df.esAgent();
    agent.intent({
      displayName: "talk_to_agent",
      phrases: ["agent"],
      parameters: { department: "billing" },
      replies: [{ text: "Connecting you…" }],
    });
    agent.intent({ displayName: "Human please", phrases: ["human"], action: "handoff.request" });
    agent.intent({ displayName: "Sales person", phrases: ["sales"], action: "sales.handoff" });
    const { bot } = setup({ DIALOGFLOW_HANDOFF_INTENTS: "talk_to_agent, handoff.request,Sales Person" });
    const c = conversation();
    expect(await bot.deliver(c, message(c, "agent"))).toEqual([
      expect.objectContaining({ type: "reply", text: "Connecting you…" }),
      { type: "handOff", department: "billing", reason: "intent talk_to_agent" },
    ]);
    expect(await bot.deliver(c, message(c, "human"))).toEqual([{ type: "handOff", reason: "action handoff.request" }]);
    // Names are compared without regard to case.
    expect(await bot.deliver(c, message(c, "sales"))).toEqual([{ type: "handOff", reason: "intent Sales person" }]);
  });

  it("hands off on a payload that says handoff, to the department or queue it names", async () => {
    const agent = df.esAgent();
    agent.intent({
      displayName: "complaint",
      phrases: ["complaint"],
      replies: [{ text: "I'll get someone." }, { payload: { handoff: true, department: "complaints" } }],
    });
    agent.intent({ displayName: "refund", phrases: ["refund"], replies: [{ payload: { handoff: true, queue: 7 } }] });
    const { bot } = setup();
    const c = conversation();
    expect(await bot.deliver(c, message(c, "complaint"))).toEqual([
      expect.objectContaining({ type: "reply", text: "I'll get someone." }),
      { type: "handOff", department: "complaints", reason: "payload" },
    ]);
    expect(await bot.deliver(c, message(c, "refund"))).toEqual([
      { type: "handOff", department: "7", reason: "payload" },
    ]);
  });

  it("ends the conversation when the intent ends the interaction", async () => {
    const agent = df.esAgent();
    agent.intent({ displayName: "bye", phrases: ["bye"], replies: [{ text: "Goodbye!" }], endInteraction: true });
    const { bot } = setup();
    const c = conversation();
    expect(await bot.deliver(c, message(c, "bye"))).toEqual([
      expect.objectContaining({ type: "reply", text: "Goodbye!" }),
      { type: "end", reason: "endInteraction" },
    ]);
  });

  it("tells the agent that the human side closed with the event liaison_agent_closed", async () => {
    const agent = df.esAgent();
    agent.intent({
      displayName: "after_agent",
      events: ["liaison_agent_closed"],
      replies: [{ text: "Anything else?" }],
    });
    const { bot } = setup();
    const c = conversation({ language: "en-GB" });
    const outputs = await bot.deliver(c, { kind: "event", name: "agent_closed" });
    expect(outputs).toEqual([
      {
        type: "reply",
        externalId: expect.stringMatching(/^dialogflow:[0-9a-f-]+:0$/) as string,
        text: "Anything else?",
        attachments: [],
      },
    ]);
    const [call] = callsOf(c);
    expect(call?.body).toEqual({ queryInput: { event: { name: "liaison_agent_closed", languageCode: "en-GB" } } });
  });

  it("sends a message of files without text as the event liaison_file, and the text of one with text", async () => {
    const agent = df.esAgent();
    agent.intent({ displayName: "file", events: ["liaison_file"], replies: [{ text: "I can't read files." }] });
    agent.intent({ displayName: "invoice", phrases: ["my invoice"], replies: [{ text: "Thanks." }] });
    const { bot } = setup();
    const c = conversation();
    const file = { type: "application/pdf", name: "invoice.pdf", contentUrl: "https://files.example.org/i.pdf" };
    expect(replies(await bot.deliver(c, message(c, "", { attachments: [file] })))).toEqual([
      { text: "I can't read files." },
    ]);
    expect(replies(await bot.deliver(c, message(c, "my invoice", { attachments: [file] })))).toEqual([
      { text: "Thanks." },
    ]);
    expect(callsOf(c).map((call) => call.event ?? call.text)).toEqual(["liaison_file", "my invoice"]);
  });

  it("cuts a text over 256 characters at a word, which Dialogflow would refuse whole", async () => {
    const agent = df.esAgent();
    agent.intent({ displayName: "long", phrases: [/^My order/], replies: [{ text: "Let me look." }] });
    const { bot } = setup();
    const c = conversation();
    const text = `My order ${"has not arrived and ".repeat(20)}end`;
    expect(text.length).toBeGreaterThan(256);
    expect(replies(await bot.deliver(c, message(c, text)))).toEqual([{ text: "Let me look." }]);
    const sent = callsOf(c)[0]?.text ?? "";
    expect(sent.length).toBeLessThanOrEqual(256);
    expect(sent.length).toBeGreaterThan(200);
    expect(text.startsWith(sent)).toBe(true);
    expect(text[sent.length]).toBe(" ");
  });

  it("asks in DIALOGFLOW_LANGUAGE when the agent does not speak the conversation's language, and remembers it", async () => {
    const agent = df.esAgent({ projectId: "polyglot", languages: ["es"] });
    agent.intent({ displayName: "hola", phrases: ["hola"], replies: [{ text: "¡Hola!" }] });
    const { bot } = setup({ DIALOGFLOW_PROJECT_ID: "polyglot", DIALOGFLOW_LANGUAGE: "es" });
    const first = conversation({ language: "en" });
    expect(replies(await bot.deliver(first, message(first, "hola")))).toEqual([{ text: "¡Hola!" }]);
    expect(callsOf(first).map((call) => [call.languageCode, call.status])).toEqual([
      ["en", 400],
      ["es", 200],
    ]);
    const second = conversation({ language: "en" });
    await bot.deliver(second, message(second, "hola"));
    expect(callsOf(second).map((call) => [call.languageCode, call.status])).toEqual([["es", 200]]);
  });
});

describe("Dialogflow CX", () => {
  it("asks the agent of DIALOGFLOW_AGENT_ID in its location with CX's body, and shows chips as buttons", async () => {
    const agent = df.cxAgent({ location: "europe-west1" });
    agent.intent({
      displayName: "menu",
      phrases: ["menu"],
      replies: [{ text: "Pick one" }, { chips: ["Billing", "Sales"] }],
    });
    const { bot } = setup({ DIALOGFLOW_AGENT_ID: agent.agentId ?? "", DIALOGFLOW_LOCATION: "europe-west1" });
    const c = conversation({ language: "en" });
    expect(replies(await bot.deliver(c, message(c, "menu")))).toEqual([
      {
        text: "Pick one",
        buttons: [
          [
            { id: "Billing", text: "Billing" },
            { id: "Sales", text: "Sales" },
          ],
        ],
      },
    ]);
    const [call] = callsOf(c);
    expect(call?.path).toBe(
      `/v3/projects/acme-bot/locations/europe-west1/agents/${agent.agentId ?? ""}/sessions/${c.id}:detectIntent`,
    );
    expect(call?.body).toEqual({ queryInput: { text: { text: "menu" }, languageCode: "en" } });
  });

  it("defaults to the global location", async () => {
    const agent = df.cxAgent();
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    const { bot } = setup({ DIALOGFLOW_AGENT_ID: agent.agentId ?? "" });
    const c = conversation();
    expect(replies(await bot.deliver(c, message(c, "hi")))).toEqual([{ text: "Hello" }]);
    expect(callsOf(c)[0]?.location).toBe("global");
  });

  it("hands off on liveAgentHandoff, to the queue its metadata names", async () => {
    const agent = df.cxAgent();
    agent.intent({
      displayName: "agent_please",
      phrases: ["agent"],
      replies: [{ text: "Transferring you." }, { liveAgentHandoff: { queue: "billing", reason: "user_request" } }],
    });
    const { bot } = setup({ DIALOGFLOW_AGENT_ID: agent.agentId ?? "" });
    const c = conversation();
    expect(await bot.deliver(c, message(c, "agent"))).toEqual([
      expect.objectContaining({ type: "reply", text: "Transferring you." }),
      { type: "handOff", department: "billing", reason: "liveAgentHandoff" },
    ]);
  });

  it("takes the department from the session's parameters when the hand-off names none", async () => {
    const agent = df.cxAgent();
    agent.intent({ displayName: "topic", phrases: ["sales"], parameters: { department: "sales" }, replies: [] });
    agent.intent({ displayName: "talk_to_agent", phrases: ["agent"], replies: [{ text: "One moment." }] });
    const { bot } = setup({ DIALOGFLOW_AGENT_ID: agent.agentId ?? "" });
    const c = conversation();
    expect(await bot.deliver(c, message(c, "sales"))).toEqual([]);
    expect(await bot.deliver(c, message(c, "agent"))).toEqual([
      expect.objectContaining({ type: "reply", text: "One moment." }),
      { type: "handOff", department: "sales", reason: "intent talk_to_agent" },
    ]);
  });

  it("ends on endInteraction, and sends the event liaison_agent_closed in CX's shape", async () => {
    const agent = df.cxAgent();
    agent.intent({ displayName: "bye", phrases: ["bye"], replies: [{ text: "Bye!" }], endInteraction: true });
    agent.intent({ displayName: "back", events: ["liaison_agent_closed"], replies: [{ text: "Welcome back." }] });
    const { bot } = setup({ DIALOGFLOW_AGENT_ID: agent.agentId ?? "" });
    const c = conversation();
    expect(await bot.deliver(c, message(c, "bye"))).toEqual([
      expect.objectContaining({ type: "reply", text: "Bye!" }),
      { type: "end", reason: "endInteraction" },
    ]);
    expect(replies(await bot.deliver(c, { kind: "event", name: "agent_closed" }))).toEqual([{ text: "Welcome back." }]);
    expect(callsOf(c)[1]?.body).toEqual({
      queryInput: { event: { event: "liaison_agent_closed" }, languageCode: "en" },
    });
  });

  it("hands off on a payload with handoff: true and a press of a chip is its text", async () => {
    const agent = df.cxAgent();
    agent.intent({
      displayName: "Billing",
      phrases: ["Billing"],
      replies: [{ payload: { handoff: true, queue: "billing" } }],
    });
    const { bot } = setup({ DIALOGFLOW_AGENT_ID: agent.agentId ?? "" });
    const c = conversation();
    expect(await bot.deliver(c, press(c, { id: "Billing", text: "Billing" }))).toEqual([
      { type: "handOff", department: "billing", reason: "payload" },
    ]);
    expect(callsOf(c)[0]?.body).toEqual({ queryInput: { text: { text: "Billing" }, languageCode: "en" } });
  });
});

describe("sessions and repeated deliveries", () => {
  it("derives a stable session id of 36 bytes for a conversation id Dialogflow would refuse", async () => {
    const agent = df.esAgent({ projectId: "long-ids" });
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    const { bot } = setup({ DIALOGFLOW_PROJECT_ID: "long-ids" });
    const c = conversation({ id: `c_${"x".repeat(40)}` });
    await bot.deliver(c, message(c, "hi"));
    await bot.deliver(c, message(c, "hi"));
    const sessions = df
      .calls()
      .filter((call) => call.projectId === "long-ids")
      .map((call) => [call.sessionId, call.status]);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]?.[1]).toBe(200);
    expect(sessions[0]).toEqual(sessions[1]);
    expect(Buffer.byteLength(String(sessions[0]?.[0]))).toBe(36);
  });

  it("gives a repeated delivery of the same message the same reply ids, though Dialogflow answers it anew", async () => {
    const agent = df.esAgent();
    agent.intent({ displayName: "two", phrases: ["two"], replies: [{ text: "One" }, { text: "Two" }] });
    const { bot } = setup();
    const c = conversation();
    const input = message(c, "two");
    const ids = (outputs: BotOutput[]) =>
      outputs.map((output) => (output.type === "reply" ? output.externalId : undefined));
    const first = await bot.deliver(c, input);
    const again = await bot.deliver(c, input, { since: Date.now(), outcomeUnknown: true });
    expect(ids(first)).toEqual([expect.any(String), expect.any(String)]);
    expect(ids(again)).toEqual(ids(first));
    const responses = callsOf(c).map((call) => (call.response as { responseId: string }).responseId);
    expect(new Set(responses).size).toBe(2);
  });
});

describe("the service account's token", () => {
  it("is fetched once with an RS256 assertion for the key's token_uri, and shared by every call", async () => {
    const agent = df.esAgent({ projectId: "token-share" });
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    const { bot, observed } = setup({ DIALOGFLOW_PROJECT_ID: "token-share" });
    const before = df.tokenRequests().length;
    const c = conversation();
    const other = conversation();
    await Promise.all([bot.deliver(c, message(c, "hi")), bot.deliver(other, message(other, "hi"))]);
    await bot.deliver(c, message(c, "hi"));
    const requests = df.tokenRequests().slice(before);
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.status).toBe(200);
    expect(request?.grantType).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
    expect(request?.header).toEqual({ alg: "RS256", typ: "JWT", kid: df.serviceAccount.private_key_id });
    const claims = request?.claims ?? {};
    expect(claims).toEqual({
      iss: df.serviceAccount.client_email,
      scope: "https://www.googleapis.com/auth/cloud-platform",
      aud: df.tokenUri,
      iat: expect.any(Number) as number,
      exp: (claims.iat as number) + 3600,
    });
    expect(observed.filter(([operation]) => operation === "token")).toEqual([["token", "ok"]]);
    expect(observed.filter(([operation]) => operation === "detectIntent")).toHaveLength(3);
  });

  it("is fetched again shortly before it expires", async () => {
    const agent = df.esAgent({ projectId: "token-expiry" });
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    let now = Date.now();
    const client = new DialogflowClient({
      apiUrl: df.url,
      account: account(df.serviceAccount),
      timeoutMs: 2_000,
      logger: pino({ level: "silent" }),
      now: () => now,
    });
    const bot = new DialogflowBot({
      client,
      projectId: "token-expiry",
      location: undefined,
      agentId: undefined,
      language: "en",
      handoffIntents: [],
      logger: pino({ level: "silent" }),
    });
    const c = conversation();
    const before = df.tokenRequests().length;
    // 200 s of life: still good 170 s on, replaced within its last tenth (the fake's clock is real, the client's
    // runs ahead: a new assertion's iat stays within the 5 minutes Google tolerates).
    df.setTokenLifetime(200);
    await bot.deliver(c, message(c, "hi"));
    now += 170_000;
    await bot.deliver(c, message(c, "hi"));
    expect(df.tokenRequests().length - before).toBe(1);
    now += 15_000;
    await bot.deliver(c, message(c, "hi"));
    expect(df.tokenRequests().length - before).toBe(2);
    expect(callsOf(c).map((call) => call.status)).toEqual([200, 200, 200]);
  });

  it("is replaced once when the API answers 401, and the call made again", async () => {
    const agent = df.esAgent({ projectId: "token-401" });
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    const { bot, problem } = setup({ DIALOGFLOW_PROJECT_ID: "token-401" });
    const c = conversation();
    await bot.deliver(c, message(c, "hi"));
    df.expireTokens();
    expect(replies(await bot.deliver(c, message(c, "hi")))).toEqual([{ text: "Hello" }]);
    const calls = callsOf(c);
    expect(calls.map((call) => call.status)).toEqual([200, 401, 200]);
    expect(calls[1]?.auth.token).toBe(calls[0]?.auth.token);
    expect(calls[2]?.auth.token).not.toBe(calls[1]?.auth.token);
    expect(problem()).toBeUndefined();
  });

  it("gives up for good on a second 401, and /ready says the credentials are refused until a call succeeds", async () => {
    const agent = df.esAgent({ projectId: "token-401-twice" });
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    const { bot, problem } = setup({ DIALOGFLOW_PROJECT_ID: "token-401-twice" });
    const c = conversation();
    df.failNext(2, { status: 401 });
    const error = await failure(bot.deliver(c, message(c, "hi")));
    expect(error).toMatchObject({ retryable: false, upstreamStatus: 401 });
    expect(problem()).toEqual({
      log: "Dialogflow refuses the access tokens of the service account (401 after a new token)",
      ready: "Dialogflow refuses the service account's access tokens (401)",
    });
    await bot.deliver(c, message(c, "hi"));
    expect(problem()).toBeUndefined();
  });

  it("refused at the token endpoint (a key Google does not know) fails for good and shows on /ready", async () => {
    const untrusted = await df.untrustedServiceAccount();
    const { bot, problem } = setup({ DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(untrusted) });
    const c = conversation();
    const error = await failure(bot.deliver(c, message(c, "hi")));
    expect(error).toMatchObject({ retryable: false, upstreamStatus: 400, googleStatus: "invalid_grant" });
    expect(error.message).toBe("token: 400 invalid_grant: Invalid JWT Signature.");
    expect(problem()).toEqual({
      log: "Google refuses the Dialogflow service account's key (invalid_grant: Invalid JWT Signature.)",
      ready: "Google refuses the service account's key (400)",
    });
    expect(callsOf(c)).toEqual([]);
  });

  it("is retried when the token endpoint fails for the moment", async () => {
    const { bot, observed } = setup({ DIALOGFLOW_PROJECT_ID: "token-503" });
    df.failNext(1, { status: 503, target: "token" });
    const c = conversation();
    const error = await failure(bot.deliver(c, message(c, "hi")));
    expect(error).toMatchObject({ retryable: true, upstreamStatus: 503 });
    expect(observed).toEqual([["token", "error"]]);
  });
});

describe("failures", () => {
  it("retries 429 after its Retry-After, or after the outbox's own backoff without one", async () => {
    df.esAgent({ projectId: "busy" });
    const { bot, observed } = setup({ DIALOGFLOW_PROJECT_ID: "busy" });
    const c = conversation();
    df.failNext(1, { status: 429, retryAfterSeconds: 7 });
    const limited = await failure(bot.deliver(c, message(c, "hi")));
    expect(limited).toMatchObject({ retryable: true, upstreamStatus: 429, retryAfterMs: 7_000 });
    expect(limited.message).toMatch(/^detectIntent: 429 RESOURCE_EXHAUSTED Quota exceeded/);
    df.failNext(1, { status: 429 });
    expect(await failure(bot.deliver(c, message(c, "hi")))).toMatchObject({ retryable: true, retryAfterMs: undefined });
    expect(observed.filter(([operation]) => operation === "detectIntent")).toEqual([
      ["detectIntent", "rate_limited"],
      ["detectIntent", "rate_limited"],
    ]);
  });

  it("retries 5xx, timeouts and refused connections", async () => {
    const agent = df.esAgent({ projectId: "flaky" });
    agent.intent({ displayName: "hi", phrases: ["hi"], replies: [{ text: "Hello" }] });
    const { bot } = setup({ DIALOGFLOW_PROJECT_ID: "flaky", DIALOGFLOW_TIMEOUT_MS: "300" });
    const c = conversation();
    await bot.deliver(c, message(c, "hi"));
    for (const status of [500, 503, 504]) {
      df.failNext(1, { status });
      expect(await failure(bot.deliver(c, message(c, "hi")))).toMatchObject({
        retryable: true,
        upstreamStatus: status,
      });
    }
    await df.goDown("hang");
    // Going down drops the pooled connection: the first call may meet its close, the next one the silence.
    expect((await failure(bot.deliver(c, message(c, "hi")))).retryable).toBe(true);
    const timeout = await failure(bot.deliver(c, message(c, "hi")));
    expect(timeout).toMatchObject({ retryable: true, upstreamStatus: undefined });
    expect(timeout.message).toMatch(/ETIMEDOUT/);
    await df.goDown("refuse");
    const refused = await failure(bot.deliver(c, message(c, "hi")));
    expect(refused.retryable).toBe(true);
    expect(refused.message).toMatch(/ECONNREFUSED/);
    await df.comeUp();
    expect(replies(await bot.deliver(c, message(c, "hi")))).toEqual([{ text: "Hello" }]);
  });

  it("fails for good on 403 (no permission) and 404 (no such agent), naming the fix on /ready", async () => {
    const agent = df.cxAgent({ projectId: "denied" });
    const { bot, problem } = setup({ DIALOGFLOW_PROJECT_ID: "denied", DIALOGFLOW_AGENT_ID: agent.agentId ?? "" });
    const c = conversation();
    df.denyPermission(true);
    const denied = await failure(bot.deliver(c, message(c, "hi")));
    expect(denied).toMatchObject({ retryable: false, upstreamStatus: 403, googleStatus: "PERMISSION_DENIED" });
    expect(problem()).toEqual({
      log: expect.stringMatching(
        /^Dialogflow denies the service account \(403: .*\): grant it the Dialogflow API Client role$/,
      ) as unknown,
      ready: "Dialogflow denies the service account (403): it needs the Dialogflow API Client role",
    });
    df.denyPermission(false);

    const missing = setup({ DIALOGFLOW_PROJECT_ID: "denied", DIALOGFLOW_AGENT_ID: "no-such-agent" });
    const lost = await failure(missing.bot.deliver(c, message(c, "hi")));
    expect(lost).toMatchObject({ retryable: false, upstreamStatus: 404, googleStatus: "NOT_FOUND" });
    expect(missing.problem()).toEqual({
      log: expect.stringMatching(
        /^Dialogflow has no such agent \(.*no-such-agent.*\): check DIALOGFLOW_PROJECT_ID/,
      ) as unknown,
      ready: "Dialogflow has no such agent (404)",
    });
  });

  it("fails for good on a 400, such as a language neither the conversation's nor the default one the agent speaks", async () => {
    df.esAgent({ projectId: "monolingual", languages: ["de"] });
    const { bot, problem } = setup({ DIALOGFLOW_PROJECT_ID: "monolingual" });
    const c = conversation({ language: "fr" });
    const error = await failure(bot.deliver(c, message(c, "bonjour")));
    expect(error).toMatchObject({ retryable: false, upstreamStatus: 400, googleStatus: "INVALID_ARGUMENT" });
    expect(callsOf(c).map((call) => [call.languageCode, call.status])).toEqual([
      ["fr", 400],
      ["en", 400],
    ]);
    // A request Dialogflow refuses is that request's problem, not the bot's.
    expect(problem()).toBeUndefined();
  });

  it("fails for good on a path Google does not serve (DIALOGFLOW_API_URL pointing elsewhere)", async () => {
    const { bot, problem } = setup({ DIALOGFLOW_API_URL: `${df.url}/wrong` });
    const c = conversation();
    const error = await failure(bot.deliver(c, message(c, "hi")));
    expect(error).toMatchObject({ retryable: false, upstreamStatus: 404 });
    expect(problem()).toEqual({
      log: expect.stringMatching(/^Dialogflow answers 404: check DIALOGFLOW_API_URL/) as unknown,
      ready: "Dialogflow answers 404 without naming an agent: the API address or the agent is wrong",
    });
  });
});

function account(key: ServiceAccountKey): ServiceAccount {
  const parsed = parseServiceAccount(JSON.stringify(key));
  if ("problem" in parsed) throw new Error(parsed.problem);
  return parsed;
}
