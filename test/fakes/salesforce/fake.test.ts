import { afterEach, describe, expect, it } from "vitest";
import { openSse } from "../../helpers/sse-client.js";
import type { SseConnection, SseEvent } from "../../helpers/sse-client.js";
import { DEFAULT_DEPLOYMENT, startFakeSalesforce } from "./index.js";
import type { FakeSalesforce, FakeSalesforceOptions } from "./index.js";

// Self-test of the fake's strictness with plain fetch: every rule of README.md, as a client would meet it.

type Json = Record<string, unknown>;

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function start(options: FakeSalesforceOptions = {}): Promise<FakeSalesforce> {
  const fake = await startFakeSalesforce(options);
  cleanups.push(() => fake.close());
  return fake;
}

interface Result {
  status: number;
  body: Json;
  text: string;
  headers: Headers;
}

async function call(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    json?: unknown;
    body?: RequestInit["body"];
    signal?: AbortSignal;
  } = {},
): Promise<Result> {
  const response = await fetch(url, {
    method: init.method ?? "GET",
    headers: { ...(init.json === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
    ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    ...(init.body === undefined ? {} : { body: init.body }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  const text = await response.text();
  return { status: response.status, body: parseBody(text), text, headers: response.headers };
}

/** A JSON body as an object; `{}` for an empty or a plain-text body (Live Agent answers "OK"). */
function parseBody(text: string): Json {
  try {
    return text === "" ? {} : (JSON.parse(text) as Json);
  } catch {
    return {};
  }
}

// ─── Messaging for In-App and Web helpers ──────────────────────────────────────────────────────────────────────

const API = "/iamessage/api/v2";

interface Token {
  accessToken: string;
  lastEventId: string;
  subject: string;
}

async function token(fake: FakeSalesforce, body: Json = {}): Promise<Token> {
  const res = await call(`${fake.url}${API}/authorization/unauthenticated/access-token`, {
    method: "POST",
    json: {
      orgId: fake.orgId,
      esDeveloperName: DEFAULT_DEPLOYMENT,
      capabilitiesVersion: "1",
      platform: "Web",
      ...body,
    },
  });
  expect(res.status).toBe(200);
  const context = res.body.context as { endUser: { subject: string } };
  return {
    accessToken: res.body.accessToken as string,
    lastEventId: res.body.lastEventId as string,
    subject: context.endUser.subject,
  };
}

const bearer = (t: Token | string) => ({ authorization: `Bearer ${typeof t === "string" ? t : t.accessToken}` });

function rest(fake: FakeSalesforce, t: Token | string | undefined, method: string, path: string, json?: unknown) {
  return call(`${fake.url}${API}/${path}`, {
    method,
    headers: t === undefined ? {} : bearer(t),
    ...(json === undefined ? {} : { json }),
  });
}

async function conversation(fake: FakeSalesforce, t: Token, attributes: Json = {}): Promise<string> {
  const id = crypto.randomUUID();
  const res = await rest(fake, t, "POST", "conversation", {
    conversationId: id,
    esDeveloperName: DEFAULT_DEPLOYMENT,
    routingAttributes: attributes,
  });
  expect(res.status).toBe(201);
  return id;
}

function message(id: string, text: string, extra: Json = {}): Json {
  return {
    message: { id, messageType: "StaticContentMessage", staticContent: { formatType: "Text", text } },
    esDeveloperName: DEFAULT_DEPLOYMENT,
    ...extra,
  };
}

function send(fake: FakeSalesforce, t: Token, conversationId: string, id: string, text: string, extra: Json = {}) {
  return rest(fake, t, "POST", `conversation/${conversationId}/message`, message(id, text, extra));
}

async function stream(fake: FakeSalesforce, t: Token, lastEventId = t.lastEventId): Promise<SseConnection> {
  const connection = await openSse(`${fake.url}/eventrouter/v1/sse`, {
    accept: "text/event-stream",
    ...bearer(t),
    "x-org-id": fake.orgId,
    "last-event-id": lastEventId,
  });
  cleanups.push(() => connection.close());
  return connection;
}

interface EventData {
  conversationId: string;
  conversationEntry: {
    identifier: string;
    entryType: string;
    senderDisplayName: string;
    sender: { role: string };
    entryPayload: string;
  };
}

const data = (event: SseEvent) => JSON.parse(event.data) as EventData;
const payload = (event: SseEvent) => JSON.parse(data(event).conversationEntry.entryPayload) as Json;
const named = (name: string) => (event: SseEvent) => event.event === name;

async function upload(
  fake: FakeSalesforce,
  t: Token,
  conversationId: string,
  entry: Json,
  file: { name: string; type: string; content: Buffer } | undefined,
): Promise<Result> {
  const form = new FormData();
  form.append("messageEntry", new Blob([JSON.stringify(entry)], { type: "application/json" }));
  if (file) form.append("fileData", new Blob([file.content], { type: file.type }), file.name);
  return call(`${fake.url}${API}/conversation/${conversationId}/file`, {
    method: "POST",
    headers: bearer(t),
    body: form,
  });
}

// ─── Legacy Chat helpers ───────────────────────────────────────────────────────────────────────────────────────

interface ChatSessionInfo {
  id: string;
  key: string;
  affinityToken: string;
  clientPollTimeout: number;
}

class Visitor {
  sequence = 0;
  affinity: string;

  constructor(
    private readonly fake: FakeSalesforce,
    readonly session: ChatSessionInfo,
  ) {
    this.affinity = session.affinityToken;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      "x-liveagent-api-version": "60",
      "x-liveagent-affinity": this.affinity,
      "x-liveagent-session-key": this.session.key,
      ...extra,
    };
  }

  post(name: string, body: unknown, sequence = (this.sequence += 1)): Promise<Result> {
    return call(`${this.fake.chat.url}/Chasitor/${name}`, {
      method: "POST",
      headers: this.headers({ "x-liveagent-sequence": String(sequence) }),
      json: body,
    });
  }

  poll(ack: number | undefined, signal?: AbortSignal): Promise<Result> {
    const query = ack === undefined ? "" : `?ack=${ack}`;
    return call(`${this.fake.chat.url}/System/Messages${query}`, {
      headers: this.headers(),
      ...(signal === undefined ? {} : { signal }),
    });
  }

  init(extra: Json = {}): Promise<Result> {
    return this.post("ChasitorInit", {
      organizationId: this.fake.orgId,
      deploymentId: this.fake.chat.deploymentId,
      buttonId: this.fake.chat.buttonId,
      sessionId: this.session.id,
      userAgent: "liaison-test",
      language: "en-US",
      screenResolution: "1920x1080",
      visitorName: "Sara Khan",
      prechatDetails: [{ label: "Email", value: "sara@example.org", transcriptFields: [], displayToAgent: true }],
      prechatEntities: [],
      receiveQueueUpdates: true,
      isPost: true,
      ...extra,
    });
  }
}

async function visitor(fake: FakeSalesforce): Promise<Visitor> {
  const res = await call(`${fake.chat.url}/System/SessionId`, {
    headers: { "x-liveagent-api-version": "60", "x-liveagent-affinity": "null" },
  });
  expect(res.status).toBe(200);
  return new Visitor(fake, res.body as unknown as ChatSessionInfo);
}

async function chatting(fake: FakeSalesforce): Promise<{ v: Visitor; ack: number }> {
  const v = await visitor(fake);
  expect((await v.init()).status).toBe(200);
  const first = await v.poll(-1);
  expect(first.status).toBe(200);
  return { v, ack: first.body.sequence as number };
}

const types = (res: Result) => (res.body.messages as { type: string }[]).map((m) => m.type);

const chatOptions: FakeSalesforceOptions = { chat: { pollHoldMs: 300 } };

// ═══ Messaging for In-App and Web ═══════════════════════════════════════════════════════════════════════════════

describe("fake Salesforce MIAW: access tokens", () => {
  it("issues a JWT per end user for the configured org (15 or 18 characters) and deployment only", async () => {
    const fake = await start();
    const url = `${fake.url}${API}/authorization/unauthenticated/access-token`;
    const valid = { orgId: fake.orgId, esDeveloperName: DEFAULT_DEPLOYMENT, capabilitiesVersion: "1", platform: "Web" };
    const wrongOrg = await call(url, { method: "POST", json: { ...valid, orgId: "00D000000000000" } });
    expect(wrongOrg).toMatchObject({ status: 400, body: { code: "400", message: "The orgId parameter is invalid." } });
    const wrongDeployment = await call(url, { method: "POST", json: { ...valid, esDeveloperName: "Other" } });
    expect(wrongDeployment.body.message).toBe("The esDeveloperName parameter value is invalid.");
    expect((await call(url, { method: "POST", json: { ...valid, platform: undefined } })).status).toBe(400);
    expect((await call(url, { method: "POST", json: { ...valid, capabilitiesVersion: "" } })).status).toBe(400);
    const form = await call(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "orgId=x",
    });
    expect(form.status).toBe(415);
    const broken = await call(url, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(broken.status).toBe(400);

    const first = await token(fake);
    const second = await token(fake, { orgId: fake.orgId18 });
    expect(first.subject).toMatch(/^v2\/iamessage\/ANON\//);
    expect(second.subject).not.toBe(first.subject);
    expect(first.lastEventId).toMatch(/^\d+$/);
    const claims = JSON.parse(Buffer.from(first.accessToken.split(".")[1] ?? "", "base64url").toString()) as Json;
    expect(claims.sub).toBe(first.subject);
    expect(claims.exp).toBeGreaterThan(Date.now() / 1000 + 3600);
  });

  it("continues a token for the same subject and expiry; expired or forged tokens get 401", async () => {
    const fake = await start();
    const t = await token(fake);
    const res = await rest(fake, t, "GET", "authorization/continuation-access-token");
    expect(res.status).toBe(200);
    const next = res.body.accessToken as string;
    expect(next).not.toBe(t.accessToken);
    const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString()) as Json;
    expect(claims(next).sub).toBe(t.subject);
    expect(claims(next).exp).toBe(claims(t.accessToken).exp);

    expect((await rest(fake, undefined, "GET", "conversation/list")).status).toBe(401);
    const forged = `${t.accessToken.slice(0, -4)}AAAA`;
    expect((await rest(fake, forged, "GET", "conversation/list")).body).toEqual({
      code: "401",
      message: "The access token is missing, expired or invalid.",
    });

    const live = await stream(fake, t);
    fake.messaging.expireToken(t.subject);
    await live.ended;
    expect((await rest(fake, t, "GET", "conversation/list")).status).toBe(401);
    expect((await rest(fake, next, "GET", "authorization/continuation-access-token")).status).toBe(401);
  });

  it("lets a short token lifetime run out on its own", async () => {
    // `exp` is in whole seconds: two seconds leave at least one before it passes.
    const fake = await start({ messaging: { tokenTtlMs: 2000 } });
    const t = await token(fake);
    expect((await rest(fake, t, "GET", "conversation/list")).status).toBe(200);
    await expect
      .poll(async () => (await rest(fake, t, "GET", "conversation/list")).status, { timeout: 5000 })
      .toBe(401);
  });
});

describe("fake Salesforce MIAW: conversations", () => {
  it("creates a conversation only with a lower-case version 4 UUID, once, and keeps the pre-chat fields", async () => {
    const fake = await start();
    const t = await token(fake);
    const create = (conversationId: unknown, extra: Json = {}) =>
      rest(fake, t, "POST", "conversation", { conversationId, esDeveloperName: DEFAULT_DEPLOYMENT, ...extra });
    const uuidMessage = "Specify the conversationId in UUID format. The UUID must be in lowercase.";
    const id = crypto.randomUUID();
    expect((await create(id.toUpperCase())).body).toEqual({ code: "400", message: uuidMessage });
    expect((await create("not-a-uuid")).status).toBe(400);
    expect((await create("6ba7b810-9dad-11d1-80b4-00c04fd430c8")).status).toBe(400); // version 1
    expect((await create(id.replace(/^(.{19})./, "$1c"))).status).toBe(400); // variant nibble
    expect((await create(id, { esDeveloperName: "Other" })).status).toBe(400);
    expect((await create(id, { esDeveloperName: undefined })).body.message).toBe(
      "Specify the esDeveloperName parameter.",
    );
    expect((await create(id, { routingAttributes: { _email: 42 } })).status).toBe(400);
    expect((await rest(fake, undefined, "POST", "conversation", { conversationId: id })).status).toBe(401);

    const attributes = { _firstName: "Sara", _lastName: "Khan", _email: "sara@example.org", _subject: "Billing" };
    const created = await create(id, { routingAttributes: { ...attributes, Phone: "+923001234567" }, language: "en" });
    expect(created.status).toBe(201);
    expect(created.text).toBe("");
    expect((await create(id)).status).toBe(409);
    expect(fake.messaging.conversation(id)).toMatchObject({
      subject: t.subject,
      routingAttributes: attributes,
      droppedRoutingAttributes: ["Phone"],
      language: "en",
      status: "Open",
      sessionStatus: "Waiting",
    });
    const list = await rest(fake, t, "GET", "conversation/list");
    expect(list.body).toMatchObject({ openConversationsFound: 1, closedConversationsFound: 0 });
  });

  it("answers 404 for an unknown conversation and 403 for another end user's", async () => {
    const fake = await start();
    const owner = await token(fake);
    const stranger = await token(fake);
    const id = await conversation(fake, owner);
    expect((await send(fake, stranger, id, crypto.randomUUID(), "hi")).status).toBe(403);
    expect((await send(fake, owner, crypto.randomUUID(), crypto.randomUUID(), "hi")).status).toBe(404);
    expect((await rest(fake, stranger, "GET", `conversation/${id}/entries`)).status).toBe(403);
    expect((await send(fake, owner, id.toUpperCase(), crypto.randomUUID(), "hi")).status).toBe(400);
  });
});

describe("fake Salesforce MIAW: messages and entries", () => {
  it("validates a message as StaticContentMessage text with a UUID id", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    const post = (body: Json) => rest(fake, t, "POST", `conversation/${id}/message`, body);
    const good = message(crypto.randomUUID(), "hello");
    expect((await post({ ...good, message: { ...(good.message as Json), id: "42" } })).status).toBe(400);
    expect(
      (await post({ ...good, message: { ...(good.message as Json), id: crypto.randomUUID().toUpperCase() } })).status,
    ).toBe(400);
    expect(
      (await post({ ...good, message: { ...(good.message as Json), messageType: "ChoicesMessage" } })).status,
    ).toBe(400);
    expect((await post(message(crypto.randomUUID(), "  "))).status).toBe(400);
    expect((await post({ ...good, esDeveloperName: "Other" })).status).toBe(400);
    expect(fake.messaging.agentView(id)).toEqual([]);
  });

  it("accepts a message with 202, echoes it as EndUser and records a retried id only once", async () => {
    const fake = await start();
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    const messageId = crypto.randomUUID();
    const first = await send(fake, t, id, messageId, "I want a refund");
    expect(first.status).toBe(202);
    const entries = first.body.conversationEntries as { id: string; clientTimestamp: number }[];
    expect(entries).toEqual([{ id: messageId, clientTimestamp: expect.any(Number) as number }]);
    const echo = await live.waitFor(named("CONVERSATION_MESSAGE"));
    expect(data(echo).conversationEntry).toMatchObject({ identifier: messageId, sender: { role: "EndUser" } });
    expect(payload(echo)).toMatchObject({ abstractMessage: { staticContent: { text: "I want a refund" } } });

    const retry = await send(fake, t, id, messageId, "I want a refund");
    expect(retry).toMatchObject({ status: 202, body: first.body });
    const after = await send(fake, t, id, crypto.randomUUID(), "order 1042");
    expect(after.status).toBe(202);
    await live.waitFor(named("CONVERSATION_MESSAGE"));
    expect(fake.messaging.agentView(id).map((item) => item.text)).toEqual(["I want a refund", "order 1042"]);
    expect(live.events.filter(named("CONVERSATION_MESSAGE"))).toHaveLength(2);
    expect(fake.violations).toEqual([]);

    expect((await send(fake, t, id, messageId, "something else")).status).toBe(202);
    expect(fake.violations.map((v) => v.kind)).toEqual(["messageIdReused"]);
    expect(fake.messaging.agentView(id)).toHaveLength(2);
  });

  it("can answer a repeated message id with 409 or 400 instead", async () => {
    for (const [setting, status] of [
      ["conflict", 409],
      ["badRequest", 400],
    ] as const) {
      const fake = await start({ messaging: { duplicateMessageId: setting } });
      const t = await token(fake);
      const id = await conversation(fake, t);
      const messageId = crypto.randomUUID();
      expect((await send(fake, t, id, messageId, "hi")).status).toBe(202);
      expect((await send(fake, t, id, messageId, "hi")).status).toBe(status);
      expect(fake.messaging.agentView(id)).toHaveLength(1);
    }
  });

  it("splits a text with a link into the text and a link entry, both echoed", async () => {
    const fake = await start();
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    expect((await send(fake, t, id, crypto.randomUUID(), "see https://example.org/order/1042 please")).status).toBe(
      202,
    );
    const echoes = await live.waitForCount(2);
    expect(echoes.map((e) => payload(e))).toMatchObject([
      { abstractMessage: { staticContent: { formatType: "Text" } } },
      { abstractMessage: { staticContent: { formatType: "RichLink" } } },
    ]);
    expect(fake.messaging.agentView(id).map((item) => item.kind)).toEqual(["text", "link"]);
  });

  it("takes typing indicators as entries and refuses other entry types", async () => {
    const fake = await start();
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    const entry = (body: Json) => rest(fake, t, "POST", `conversation/${id}/entry`, body);
    expect((await entry({ entryType: "ReadAcknowledgement", id: crypto.randomUUID() })).status).toBe(400);
    expect((await entry({ entryType: "TypingStartedIndicator", id: "x" })).status).toBe(400);
    expect((await entry({ entryType: "TypingStartedIndicator", id: crypto.randomUUID() })).status).toBe(202);
    expect(fake.messaging.conversation(id)?.endUserTyping).toBe(true);
    const echo = await live.waitFor(named("CONVERSATION_TYPING_STARTED_INDICATOR"));
    expect(data(echo).conversationEntry.sender.role).toBe("EndUser");
    expect((await entry({ entryType: "TypingStoppedIndicator", id: crypto.randomUUID() })).status).toBe(202);
    expect(fake.messaging.conversation(id)?.endUserTyping).toBe(false);
    expect(fake.messaging.entries(id)).toEqual([]);
  });

  it("uploads a file as multipart messageEntry + fileData within the size and type limits", async () => {
    const fake = await start({ messaging: { maxFileBytes: 1024 } });
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    const entry = (messageId = crypto.randomUUID()) => ({
      message: { id: messageId, fileId: crypto.randomUUID(), text: "my receipt" },
      esDeveloperName: DEFAULT_DEPLOYMENT,
      isNewMessagingSession: false,
    });
    const png = { name: "receipt.png", type: "image/png", content: Buffer.from("89504e47", "hex") };
    expect((await upload(fake, t, id, entry(), undefined)).body.message).toBe("Specify the fileData part with a file.");
    expect((await upload(fake, t, id, entry(), { ...png, content: Buffer.alloc(2048) })).status).toBe(413);
    expect(
      (await upload(fake, t, id, entry(), { ...png, name: "x.exe", type: "application/x-msdownload" })).status,
    ).toBe(400);
    expect((await upload(fake, t, id, { ...entry(), esDeveloperName: "Other" }, png)).status).toBe(400);
    const json = await rest(fake, t, "POST", `conversation/${id}/file`, entry());
    expect(json.status).toBe(415);

    const messageId = crypto.randomUUID();
    const body = entry(messageId);
    const ok = await upload(fake, t, id, body, png);
    expect(ok.status).toBe(202);
    expect((await upload(fake, t, id, body, png)).status).toBe(202);
    const [item, ...rest_] = fake.messaging.agentView(id);
    expect(rest_).toEqual([]);
    expect(item).toMatchObject({ entryId: messageId, kind: "file", text: "my receipt" });
    expect(item?.file).toMatchObject({ name: "receipt.png", mimeType: "image/png", size: 4 });
    expect(item?.file?.content.equals(png.content)).toBe(true);
    const echo = await live.waitFor(named("CONVERSATION_MESSAGE"));
    const attachment = (payload(echo) as { abstractMessage: { staticContent: { attachments: { url: string }[] } } })
      .abstractMessage.staticContent.attachments[0];
    const download = await fetch(attachment?.url ?? "");
    expect(Buffer.from(await download.arrayBuffer()).equals(png.content)).toBe(true);
  });

  it("lists entries oldest or newest first, filtered, at most 50", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    fake.messaging.route(id);
    fake.messaging.accept(id);
    await send(fake, t, id, crypto.randomUUID(), "one");
    fake.messaging.agentSend(id, "two");
    const list = (query: string) => rest(fake, t, "GET", `conversation/${id}/entries?${query}`);
    const all = (await list("direction=FromStart")).body.conversationEntries as { entryType: string }[];
    expect(all.map((e) => e.entryType)).toEqual([
      "RoutingResult",
      "ParticipantChanged",
      "SessionStatusChanged",
      "Message",
      "Message",
    ]);
    const newest = (await list("limit=1")).body.conversationEntries as { entryPayload: Json }[];
    expect(newest[0]?.entryPayload).toMatchObject({ abstractMessage: { staticContent: { text: "two" } } });
    const messages = (await list("entryTypeFilter=Message&direction=FromStart")).body.conversationEntries as unknown[];
    expect(messages).toHaveLength(2);
    expect((await list("limit=51")).status).toBe(400);
    expect((await list("direction=Sideways")).status).toBe(400);
  });
});

describe("fake Salesforce MIAW: closing and sessions", () => {
  it("closes with DELETE: the session ends, the conversation closes, nothing more is accepted", async () => {
    const fake = await start();
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    fake.messaging.accept(id);
    const del = (query: string) => rest(fake, t, "DELETE", `conversation/${id}${query}`);
    expect((await del("")).status).toBe(400);
    expect((await del("?esDeveloperName=Other")).status).toBe(400);
    expect((await del(`?esDeveloperName=${DEFAULT_DEPLOYMENT}`)).status).toBe(204);
    await live.waitFor(named("CONVERSATION_CLOSE_CONVERSATION"));
    expect(live.events.filter((e) => e.event !== "ping").map((e) => e.event)).toEqual([
      "CONVERSATION_PARTICIPANT_CHANGED",
      "CONVERSATION_SESSION_STATUS_CHANGED",
      "CONVERSATION_PARTICIPANT_CHANGED",
      "CONVERSATION_SESSION_STATUS_CHANGED",
      "CONVERSATION_CLOSE_CONVERSATION",
    ]);
    expect(payload(live.events.filter(named("CONVERSATION_SESSION_STATUS_CHANGED"))[1] as SseEvent)).toMatchObject({
      sessionStatus: "Ended",
      sessionEndedByRole: "EndUser",
    });
    expect((await del(`?esDeveloperName=${DEFAULT_DEPLOYMENT}`)).status).toBe(400);
    expect((await send(fake, t, id, crypto.randomUUID(), "still there?")).status).toBe(400);
    expect(fake.messaging.conversation(id)?.status).toBe("Closed");
  });

  it("answers 417 after the session ended until a message starts a new one with routing attributes", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t, { _firstName: "Sara" });
    fake.messaging.accept(id);
    fake.messaging.agentEnd(id);
    expect((await send(fake, t, id, crypto.randomUUID(), "hello?")).status).toBe(417);
    const restart = { isNewMessagingSession: true };
    expect((await send(fake, t, id, crypto.randomUUID(), "hello?", restart)).status).toBe(400);
    const ok = await send(fake, t, id, crypto.randomUUID(), "hello?", {
      ...restart,
      routingAttributes: { _firstName: "Sara", _subject: "Again" },
      language: "en",
    });
    expect(ok.status).toBe(202);
    expect(fake.messaging.conversation(id)).toMatchObject({ sessions: 2, sessionStatus: "Waiting" });
    const endSession = `conversation/${id}/session?esDeveloperName=${DEFAULT_DEPLOYMENT}`;
    expect((await rest(fake, t, "DELETE", endSession)).status).toBe(204);
    expect((await rest(fake, t, "DELETE", endSession)).status).toBe(400);
  });
});

describe("fake Salesforce MIAW: the event stream", () => {
  it("refuses a stream without bearer (401), X-Org-Id (400), the 15-character org id (400), Accept (406), Last-Event-Id (400)", async () => {
    const fake = await start();
    const t = await token(fake);
    const open = (headers: Record<string, string>) => openSse(`${fake.url}/eventrouter/v1/sse`, headers);
    const all = { accept: "text/event-stream", ...bearer(t), "x-org-id": fake.orgId, "last-event-id": t.lastEventId };
    const without = (name: string) => Object.fromEntries(Object.entries(all).filter(([k]) => k !== name));
    expect((await open(without("authorization"))).status).toBe(401);
    expect((await open(without("x-org-id"))).status).toBe(400);
    expect((await open({ ...all, "x-org-id": fake.orgId18 })).status).toBe(400);
    expect((await open({ ...all, accept: "application/json" })).status).toBe(406);
    expect((await open(without("accept"))).status).toBe(406);
    const wildcard = await open({ ...all, accept: "*/*" });
    cleanups.push(() => wildcard.close());
    expect(wildcard.status).toBe(200);
    expect((await open(without("last-event-id"))).status).toBe(400);
    expect((await open({ ...all, "last-event-id": "abc" })).status).toBe(400);
    const ok = await open(all);
    cleanups.push(() => ok.close());
    expect(ok.status).toBe(200);
    expect(ok.headers["content-type"]).toMatch(/^text\/event-stream/);
  });

  it("plays Omni-Channel and the agent, with increasing numeric ids and pings without id", async () => {
    const fake = await start({ messaging: { pingIntervalMs: 50 } });
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    fake.messaging.route(id, { queuePosition: 2, estimatedWaitSeconds: 60 });
    fake.messaging.queuePosition(id, 1);
    fake.messaging.accept(id, { id: "0055g00000AAAAA", name: "Ali Raza" });
    fake.messaging.agentTyping(id, true);
    const reply = fake.messaging.agentSend(id, "Hello Sara, how can I help?");
    fake.messaging.agentTyping(id, false);
    fake.messaging.agentSendFile(id, { name: "label.pdf", mimeType: "application/pdf", content: Buffer.from("%PDF") });
    fake.messaging.transfer(id, { id: "0055g00000BBBBB", name: "Omar Farooq" });
    fake.messaging.agentEnd(id);
    const events = await live.waitForCount(14);
    expect(events.map((e) => e.event)).toEqual([
      "CONVERSATION_ROUTING_RESULT",
      "CONVERSATION_QUEUE_POSITION",
      "CONVERSATION_QUEUE_POSITION",
      "CONVERSATION_PARTICIPANT_CHANGED",
      "CONVERSATION_SESSION_STATUS_CHANGED",
      "CONVERSATION_TYPING_STARTED_INDICATOR",
      "CONVERSATION_MESSAGE",
      "CONVERSATION_TYPING_STOPPED_INDICATOR",
      "CONVERSATION_MESSAGE",
      "CONVERSATION_ROUTING_RESULT",
      "CONVERSATION_PARTICIPANT_CHANGED",
      "CONVERSATION_PARTICIPANT_CHANGED",
      "CONVERSATION_PARTICIPANT_CHANGED",
      "CONVERSATION_SESSION_STATUS_CHANGED",
    ]);
    const ids = events.map((e) => Number(e.id));
    expect(ids.every((n, i) => i === 0 || n > (ids[i - 1] ?? 0))).toBe(true);
    expect(ids.every((n) => n > Number(t.lastEventId))).toBe(true);
    expect(payload(events[0] as SseEvent)).toMatchObject({
      routingType: "Initial",
      failureType: "None",
      estimatedWaitTime: { isEWTRequested: true, estimatedWaitTimeInSeconds: 60 },
    });
    expect(JSON.parse((events[1] as SseEvent).data)).toEqual({ conversationId: id, queuePosition: { position: 2 } });
    expect(payload(events[3] as SseEvent)).toMatchObject({
      entries: [{ operation: "add", displayName: "Ali Raza", participant: { role: "Agent" } }],
    });
    expect(data(events[6] as SseEvent).conversationEntry).toMatchObject({
      identifier: reply.identifier,
      senderDisplayName: "Ali Raza",
      sender: { role: "Agent" },
    });
    expect(payload(events[13] as SseEvent)).toMatchObject({ sessionStatus: "Ended", sessionEndedByRole: "Agent" });
    await live.waitFor(named("ping"));
    const ping = live.events.find(named("ping"));
    expect(ping).toEqual({ id: undefined, event: "ping", data: "0" });
  });

  it("reports a routing failure (no agent available)", async () => {
    const fake = await start();
    const t = await token(fake);
    const live = await stream(fake, t);
    const id = await conversation(fake, t);
    fake.messaging.routingFailed(id);
    expect(payload(await live.waitFor(named("CONVERSATION_ROUTING_RESULT")))).toMatchObject({
      routingType: "Initial",
      failureType: "RoutingError",
    });
  });

  it("replays what came after Last-Event-Id on a reconnect, and nothing before it", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    fake.messaging.accept(id);
    const first = await stream(fake, t);
    const texts = ["one", "two", "three", "four"];
    fake.messaging.agentSend(id, "one");
    fake.messaging.agentSend(id, "two");
    const seen = await first.waitForCount(4);
    const lastProcessed = seen[3]?.id ?? "";
    expect(fake.messaging.dropStreams({ subject: t.subject })).toBe(1);
    await first.ended;
    fake.messaging.agentSend(id, "three");
    fake.messaging.emit(id, "CONVERSATION_SOMETHING_NEW", { conversationId: id, surprise: true });
    fake.messaging.agentSend(id, "four");

    const second = await stream(fake, t, lastProcessed);
    const replayed = await second.waitForCount(3);
    expect(replayed.map((e) => e.event)).toEqual([
      "CONVERSATION_MESSAGE",
      "CONVERSATION_SOMETHING_NEW",
      "CONVERSATION_MESSAGE",
    ]);
    const received = [...seen, ...replayed]
      .filter(named("CONVERSATION_MESSAGE"))
      .map((e) => (payload(e) as { abstractMessage: { staticContent: { text: string } } }).abstractMessage);
    expect(received.map((m) => m.staticContent.text)).toEqual(texts);
    expect(fake.messaging.streams().map((s) => s.lastEventId)).toEqual([t.lastEventId, lastProcessed]);
  });

  it("lets a second node resume a stream at the stored Last-Event-Id without losing or repeating an agent message", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    fake.messaging.accept(id);
    const nodeA = await stream(fake, t);
    await nodeA.waitForCount(2);
    fake.messaging.agentSend(id, "first");
    const stored = (await nodeA.waitFor(named("CONVERSATION_MESSAGE"))).id ?? "";
    // Node A dies (connection reset) while the agent keeps writing.
    nodeA.close();
    await nodeA.ended;
    await expect.poll(() => fake.messaging.streams().filter((s) => s.open)).toHaveLength(0);
    fake.messaging.agentSend(id, "second");
    const nodeB = await stream(fake, t, stored);
    fake.messaging.agentSend(id, "third");
    const resumed = await nodeB.waitForCount(2);
    const textOf = (e: SseEvent) =>
      (payload(e) as { abstractMessage: { staticContent: { text: string } } }).abstractMessage.staticContent.text;
    expect(resumed.map(textOf)).toEqual(["second", "third"]);
    expect(fake.violations).toEqual([]);
  });

  it("records two streams of one subject open at once (each gets every event)", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    fake.messaging.accept(id);
    const a = await stream(fake, t);
    const b = await stream(fake, t);
    fake.messaging.agentSend(id, "hi");
    await a.waitFor(named("CONVERSATION_MESSAGE"));
    await b.waitFor(named("CONVERSATION_MESSAGE"));
    expect(fake.violations.map((v) => v.kind)).toEqual(["concurrentStreams"]);
  });

  it("forgets events outside the replay window: a late reconnect must back-fill from the entries", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    fake.messaging.accept(id);
    fake.messaging.agentSend(id, "while nobody listened");
    fake.messaging.forgetEvents(t.subject);
    const late = await stream(fake, t);
    fake.messaging.agentSend(id, "after");
    const [only] = await late.waitForCount(1);
    expect(payload(only as SseEvent)).toMatchObject({ abstractMessage: { staticContent: { text: "after" } } });
    const entries = await rest(
      fake,
      t,
      "GET",
      `conversation/${id}/entries?entryTypeFilter=Message&direction=FromStart`,
    );
    expect((entries.body.conversationEntries as { entryPayload: Json }[])[0]?.entryPayload).toMatchObject({
      abstractMessage: { staticContent: { text: "while nobody listened" } },
    });
  });
});

// ═══ Legacy Chat REST API ═══════════════════════════════════════════════════════════════════════════════════════

describe("fake Salesforce Chat: sessions and headers", () => {
  it("creates a session with affinity null and refuses requests without the headers", async () => {
    const fake = await start(chatOptions);
    const url = `${fake.chat.url}/System/SessionId`;
    expect((await call(url, { headers: { "x-liveagent-affinity": "null" } })).status).toBe(400);
    expect((await call(url, { headers: { "x-liveagent-api-version": "60" } })).status).toBe(400);
    expect(
      (await call(url, { headers: { "x-liveagent-api-version": "abc", "x-liveagent-affinity": "null" } })).status,
    ).toBe(400);
    const v = await visitor(fake);
    expect(v.session.key).toMatch(new RegExp(`^${v.session.id}!\\d{13}!.+`));
    expect(v.session.affinityToken).toMatch(/^[0-9a-f]{8}$/);
    expect(v.session.clientPollTimeout).toBe(40);

    expect((await v.init()).status).toBe(200);
    const messages = `${fake.chat.url}/System/Messages?ack=-1`;
    expect((await call(messages, { headers: v.headers({ "x-liveagent-api-version": "" }) })).status).toBe(400);
    expect((await call(messages, { headers: v.headers({ "x-liveagent-session-key": "nope" }) })).status).toBe(403);
    expect((await call(messages, { headers: v.headers({ "x-liveagent-affinity": "00000000" }) })).status).toBe(503);
    const noSequence = await call(`${fake.chat.url}/Chasitor/ChatMessage`, {
      method: "POST",
      headers: v.headers(),
      json: { text: "hi" },
    });
    expect(noSequence.status).toBe(400);
    expect((await call(`${fake.chat.url}/Chasitor/ChatMessage`, { headers: v.headers() })).status).toBe(405);
    expect((await call(`${fake.chat.url}/Chasitor/Nope`, { method: "POST", headers: v.headers() })).status).toBe(404);
  });

  it("requires ChasitorInit first, with the documented body and the session's own id", async () => {
    const fake = await start(chatOptions);
    const v = await visitor(fake);
    expect((await v.post("ChatMessage", { text: "too early" })).status).toBe(403);
    expect((await v.init({ receiveQueueUpdates: "true" })).status).toBe(400);
    expect((await v.init({ sessionId: "someone-else" })).status).toBe(400);
    expect((await v.init({ prechatDetails: [{ label: "Email" }] })).status).toBe(400);
    expect((await v.init({ visitorName: undefined })).status).toBe(400);
    const ok = await v.init({
      prechatEntities: [
        {
          entityName: "Contact",
          showOnCreate: true,
          entityFieldsMaps: [{ fieldName: "Email", label: "Email", doFind: true, isExactMatch: true, doCreate: false }],
        },
      ],
    });
    expect(ok).toMatchObject({ status: 200, text: "OK" });
    expect(fake.chat.lastSession()?.init).toMatchObject({ visitorName: "Sara Khan", receiveQueueUpdates: true });
    const first = await v.poll(-1);
    expect(first.body).toMatchObject({
      messages: [{ type: "ChatRequestSuccess", message: { queuePosition: 1 } }],
      sequence: 1,
      offset: expect.any(Number) as number,
    });
  });

  it("fails the chat request for another org, deployment or button, or with no agent, then forgets the session", async () => {
    for (const extra of [{ buttonId: "573000000000999" }, { organizationId: "00D000000000000" }, {}]) {
      const fake = await start(chatOptions);
      if (Object.keys(extra).length === 0) fake.chat.setAvailable(false);
      const v = await visitor(fake);
      expect((await v.init(extra)).status).toBe(200);
      const res = await v.poll(-1);
      expect(res.body.messages).toEqual([
        { type: "ChatRequestFail", message: { reason: "Unavailable", postChatUrl: "" } },
      ]);
      expect((await v.poll(res.body.sequence as number)).status).toBe(403);
    }
  });
});

describe("fake Salesforce Chat: the long poll", () => {
  it("holds a poll, answers 204 when nothing came, and 200 as soon as the agent acts", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const empty = await v.poll(ack);
    expect(empty).toMatchObject({ status: 204, text: "" });
    const waiting = v.poll(ack);
    await expect.poll(() => fake.requests.at(-1)?.path).toBe("/chat/rest/System/Messages");
    const key = v.session.key;
    fake.chat.accept(key);
    const res = await waiting;
    expect(types(res)).toEqual(["ChatEstablished"]);
    expect(res.body.messages).toEqual([
      {
        type: "ChatEstablished",
        message: {
          name: "Jane Doe",
          userId: "0055g00000AgEnT",
          sneakPeekEnabled: false,
          chasitorIdleTimeout: { isEnabled: false, warningTime: 0, timeout: 0 },
        },
      },
    ]);
    expect(res.body.sequence).toBe(ack + 1);
  });

  it("numbers messages, re-delivers everything after an old ack and nothing at or before it", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const key = v.session.key;
    fake.chat.queueUpdate(key, 1, 30);
    fake.chat.accept(key);
    fake.chat.agentSend(key, "Hello");
    const batch = await v.poll(ack);
    expect(types(batch)).toEqual(["QueueUpdate", "ChatEstablished", "ChatMessage"]);
    expect(batch.body.sequence).toBe(ack + 3);
    // The answer was lost: the same ack again gets the same messages with the same numbers.
    const again = await v.poll(ack);
    expect(again.body).toEqual(batch.body);
    fake.chat.agentSend(key, "Are you there?");
    const next = await v.poll(batch.body.sequence as number);
    expect(next.body.messages).toEqual([
      { type: "ChatMessage", message: { name: "Jane Doe", text: "Are you there?", agentId: "0055g00000AgEnT" } },
    ]);
    expect(next.body.offset as number).toBeGreaterThan(batch.body.offset as number);
    expect(fake.chat.delivered(key).map((d) => d.sequence)).toEqual([1, 4, 4, 5]);
    expect(fake.violations).toEqual([]);
  });

  it("answers a second concurrent poll with 409 for both, ends the chat, and reports it", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const first = v.poll(ack);
    await expect.poll(() => fake.requests.filter((r) => r.status === undefined)).toHaveLength(1);
    const second = await v.poll(ack);
    expect(second.status).toBe(409);
    expect((await first).status).toBe(409);
    expect((await v.poll(ack)).status).toBe(403);
    expect(fake.chat.lastSession()).toMatchObject({ state: "ended", endReason: "duplicatePoll" });
    expect(fake.violations.map((v_) => v_.kind)).toEqual(["concurrentPoll"]);
  });

  it("lets another node resume a poll with the stored ack after the first one died mid-poll", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const key = v.session.key;
    fake.chat.accept(key);
    const nodeA = await v.poll(ack);
    const stored = nodeA.body.sequence as number;
    // Node A dies with a poll held open.
    const controller = new AbortController();
    const dying = v.poll(stored, controller.signal);
    await expect.poll(() => fake.requests.filter((r) => r.status === undefined)).toHaveLength(1);
    controller.abort();
    await expect(dying).rejects.toThrow();
    await expect.poll(() => fake.requests.at(-1)?.status).toBe(0);
    fake.chat.agentSend(key, "one");
    fake.chat.agentSend(key, "two");
    const nodeB = await v.poll(stored);
    expect((nodeB.body.messages as { message: { text: string } }[]).map((m) => m.message.text)).toEqual(["one", "two"]);
    expect(fake.violations).toEqual([]);
  });

  it("treats a poll arriving while a proxy still holds the dead node's poll as a duplicate (abandonedPolls: held)", async () => {
    const fake = await start({ chat: { pollHoldMs: 400, abandonedPolls: "held" } });
    const { v, ack } = await chatting(fake);
    const controller = new AbortController();
    const dying = v.poll(ack, controller.signal);
    await expect.poll(() => fake.requests.filter((r) => r.status === undefined)).toHaveLength(1);
    controller.abort();
    await expect(dying).rejects.toThrow();
    expect((await v.poll(ack)).status).toBe(409);
    expect(fake.violations.map((x) => x.kind)).toEqual(["concurrentPoll"]);
  });

  it("reports a poll without ack (what it delivers counts as received) and an ack ahead of what was sent", async () => {
    const fake = await start(chatOptions);
    const v = await visitor(fake);
    await v.init();
    expect(types(await v.poll(undefined))).toEqual(["ChatRequestSuccess"]);
    fake.chat.accept(v.session.key);
    expect(types(await v.poll(undefined))).toEqual(["ChatEstablished"]);
    expect((await v.poll(99)).status).toBe(204);
    expect(fake.violations.map((x) => x.kind)).toEqual(["pollWithoutAck", "pollWithoutAck", "ackAhead"]);
  });

  it("expires an idle session: 403 afterwards", async () => {
    const fake = await start({ chat: { pollHoldMs: 100, sessionIdleTimeoutMs: 300 } });
    const { v, ack } = await chatting(fake);
    await expect.poll(() => fake.chat.lastSession()?.endReason, { timeout: 3000 }).toBe("expired");
    expect((await v.poll(ack)).status).toBe(403);
    const other = await chatting(fake);
    fake.chat.expireSession(other.v.session.key);
    expect((await other.v.post("ChatMessage", { text: "hi" })).status).toBe(403);
  });
});

describe("fake Salesforce Chat: the visitor's POSTs", () => {
  it("drops a POST whose X-LIVEAGENT-SEQUENCE was already used, answering OK", async () => {
    const fake = await start(chatOptions);
    const { v } = await chatting(fake);
    const key = v.session.key;
    fake.chat.accept(key);
    expect(await v.post("ChatMessage", { text: "refund please" })).toMatchObject({ status: 200, text: "OK" });
    const retry = await v.post("ChatMessage", { text: "refund please" }, v.sequence);
    expect(retry).toMatchObject({ status: 200, text: "OK" });
    expect((await v.post("ChatMessage", { text: "order 1042" })).status).toBe(200);
    expect(fake.chat.agentView(key).filter((i) => i.from === "visitor")).toMatchObject([
      { text: "refund please", requestSequence: 2 },
      { text: "order 1042", requestSequence: 3 },
    ]);
    expect(fake.chat.session(key)?.droppedDuplicates).toEqual([
      { path: "/chat/rest/Chasitor/ChatMessage", sequence: 2 },
    ]);
    expect(fake.violations).toEqual([]);

    // A sequence reused for another message loses that message; a jump means the client lost count.
    expect((await v.post("ChatMessage", { text: "lost" }, 3)).status).toBe(200);
    expect((await v.post("ChatMessage", { text: "after a gap" }, 7)).status).toBe(200);
    expect(fake.violations.map((x) => x.kind)).toEqual(["sequenceReused", "sequenceGap"]);
    expect(fake.chat.agentView(key).map((i) => i.text)).not.toContain("lost");
  });

  it("validates the bodies of ChatMessage, typing, ChatEnd, SneakPeek and CustomEvent", async () => {
    const fake = await start(chatOptions);
    const { v } = await chatting(fake);
    expect((await v.post("ChatMessage", { text: "" })).status).toBe(400);
    expect((await v.post("ChatMessage", {})).status).toBe(400);
    expect((await v.post("ChasitorSneakPeek", { position: "1", text: "dra" })).status).toBe(400);
    expect((await v.post("CustomEvent", { type: "x" })).status).toBe(400);
    expect((await v.post("ChatEnd", {})).status).toBe(400);
    v.sequence = 1;
    expect((await v.post("ChasitorTyping", {})).status).toBe(200);
    expect(fake.chat.lastSession()?.visitorTyping).toBe(true);
    expect((await v.post("ChasitorNotTyping", {})).status).toBe(200);
    expect(fake.chat.lastSession()?.visitorTyping).toBe(false);
    expect(fake.violations).toEqual([]);
  });

  it("ends the chat on ChatEnd with its reason: the held poll and everything after get 403", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const held = v.poll(ack);
    await expect.poll(() => fake.requests.filter((r) => r.status === undefined)).toHaveLength(1);
    expect((await v.post("ChatEnd", { reason: "client" })).status).toBe(200);
    expect((await held).status).toBe(403);
    expect(fake.chat.lastSession()).toMatchObject({ state: "ended", endReason: "visitor", chatEndReason: "client" });
    // A retried ChatEnd finds the session gone.
    expect((await v.post("ChatEnd", { reason: "client" }, v.sequence)).status).toBe(403);
  });
});

describe("fake Salesforce Chat: the agent", () => {
  it("queues, establishes, writes, types, transfers, disconnects and ends; then the session is gone", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const key = v.session.key;
    fake.chat.queueUpdate(key, 2, 45);
    fake.chat.accept(key, { id: "0055g00000AAAAA", name: "Ali Raza" });
    fake.chat.agentTyping(key, true);
    fake.chat.agentSend(key, "Hello Sara");
    fake.chat.agentTyping(key, false);
    fake.chat.emit(key, "RichMessage", { type: "ChatWindowMenu" });
    fake.chat.transfer(key, { id: "0055g00000BBBBB", name: "Omar Farooq" });
    fake.chat.agentDisconnect(key);
    fake.chat.agentEnd(key);
    const res = await v.poll(ack);
    expect(types(res)).toEqual([
      "QueueUpdate",
      "ChatEstablished",
      "AgentTyping",
      "ChatMessage",
      "AgentNotTyping",
      "RichMessage",
      "ChatTransferred",
      "AgentDisconnect",
      "ChatEnded",
    ]);
    expect((res.body.messages as Json[])[0]).toEqual({
      type: "QueueUpdate",
      message: { position: 2, estimatedWaitTime: 45 },
    });
    expect((res.body.messages as Json[])[8]).toEqual({
      type: "ChatEnded",
      message: { reason: "agent", attachedRecords: [] },
    });
    expect((await v.poll(res.body.sequence as number)).status).toBe(403);
    expect(() => fake.chat.agentSend(key, "too late")).toThrow();
  });

  it("sends queue updates only to a visitor that asked for them, and fails a queued request", async () => {
    const fake = await start(chatOptions);
    const v = await visitor(fake);
    await v.init({ receiveQueueUpdates: false });
    const first = await v.poll(-1);
    fake.chat.queueUpdate(v.session.key, 1);
    fake.chat.requestFail(v.session.key, "Unavailable");
    expect(types(await v.poll(first.body.sequence as number))).toEqual(["ChatRequestFail"]);
  });
});

describe("fake Salesforce Chat: affinity change (503)", () => {
  it("answers 503 until ReconnectSession, then replays ChasitorSessionData first and wants the sequence reset", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    const key = v.session.key;
    fake.chat.accept(key);
    fake.chat.agentSend(key, "Hello");
    const batch = await v.poll(ack);
    const stored = batch.body.sequence as number;
    const offset = batch.body.offset as number;
    expect((await v.post("ChatMessage", { text: "hi" })).status).toBe(200);

    const held = v.poll(stored);
    await expect.poll(() => fake.requests.filter((r) => r.status === undefined)).toHaveLength(1);
    fake.chat.changeAffinity(key);
    expect((await held).status).toBe(503);
    fake.chat.agentSend(key, "Still there?");
    expect((await v.post("ChatMessage", { text: "lost in the handover" })).status).toBe(503);
    expect((await v.poll(stored)).status).toBe(503);

    const reconnectUrl = (query: string) => `${fake.chat.url}/System/ReconnectSession${query}`;
    const reconnectHeaders = v.headers({ "x-liveagent-affinity": "null" });
    expect((await call(reconnectUrl(""), { headers: reconnectHeaders })).status).toBe(400);
    expect((await call(reconnectUrl(`?ReconnectSession.offset=${offset}`), { headers: v.headers() })).status).toBe(400);
    const old = v.headers({ "x-liveagent-affinity": "null", "x-liveagent-api-version": "36" });
    expect((await call(reconnectUrl(`?ReconnectSession.offset=${offset}`), { headers: old })).status).toBe(404);
    const reconnect = await call(reconnectUrl(`?ReconnectSession.offset=${offset}`), { headers: reconnectHeaders });
    expect(reconnect.status).toBe(200);
    const [resync] = reconnect.body.messages as {
      type: string;
      message: { resetSequence: boolean; affinityToken: string };
    }[];
    expect(resync).toMatchObject({ type: "ReconnectSession", message: { resetSequence: true } });
    const staleAffinity = v.affinity;
    v.affinity = resync?.message.affinityToken ?? "";
    expect(v.affinity).not.toBe(staleAffinity);

    const after = await v.poll(stored);
    expect(types(after)).toEqual(["ChasitorSessionData", "ChatMessage"]);
    expect((after.body.messages as Json[])[0]).toMatchObject({
      message: {
        chatMessages: [
          { type: "Agent", content: "Hello", sequence: 1 },
          { type: "Chasitor", content: "hi", sequence: 2 },
          { type: "Agent", content: "Still there?", sequence: 3 },
        ],
      },
    });
    expect((after.body.sequence as number) > stored).toBe(true);
    v.sequence = 0;
    expect((await v.post("ChasitorResyncState", { organizationId: fake.orgId })).status).toBe(200);
    expect((await v.post("ChatMessage", { text: "resent after the handover" })).status).toBe(200);
    expect(fake.violations).toEqual([]);
    expect(
      fake.chat
        .agentView(key)
        .filter((i) => i.from === "visitor")
        .map((i) => i.text),
    ).toEqual(["hi", "resent after the handover"]);
  });

  it("reports a POST before ChasitorResyncState, a sequence not restarted and a stale offset", async () => {
    const fake = await start(chatOptions);
    const { v, ack } = await chatting(fake);
    fake.chat.accept(v.session.key);
    await v.poll(ack);
    fake.chat.changeAffinity(v.session.key);
    const res = await call(`${fake.chat.url}/System/ReconnectSession?ReconnectSession.offset=1`, {
      headers: v.headers({ "x-liveagent-affinity": "null" }),
    });
    v.affinity = (res.body.messages as { message: { affinityToken: string } }[])[0]?.message.affinityToken ?? "";
    expect((await v.post("ChatMessage", { text: "too soon" })).status).toBe(200);
    expect(fake.violations.map((x) => x.kind)).toEqual(["reconnectOffset", "sequenceNotReset", "postBeforeResync"]);
  });
});

// ═══ Faults and inspection ══════════════════════════════════════════════════════════════════════════════════════

describe("fake Salesforce: faults and the request log", () => {
  it("injects statuses with Retry-After, for a number of requests or a duration, per path", async () => {
    const fake = await start(chatOptions);
    const t = await token(fake);
    const id = await conversation(fake, t);
    fake.failNext(2, 429, { path: /\/message$/, retryAfterSeconds: 3 });
    const limited = await send(fake, t, id, crypto.randomUUID(), "hi");
    expect(limited).toMatchObject({ status: 429, body: { code: "429", message: "Too Many Requests" } });
    expect(limited.headers.get("retry-after")).toBe("3");
    expect((await rest(fake, t, "GET", "conversation/list")).status).toBe(200);
    expect((await send(fake, t, id, crypto.randomUUID(), "hi")).status).toBe(429);
    expect((await send(fake, t, id, crypto.randomUUID(), "hi")).status).toBe(202);

    fake.failFor(60_000, 503, { path: "/chat/rest/" });
    const chat = await call(`${fake.chat.url}/System/SessionId`, {
      headers: { "x-liveagent-api-version": "60", "x-liveagent-affinity": "null" },
    });
    expect(chat).toMatchObject({ status: 503, text: "Service Unavailable" });
    expect((await rest(fake, t, "GET", "conversation/list")).status).toBe(200);
  });

  it("drops a connection after processing: a retry with the same message id shows once", async () => {
    const fake = await start();
    const t = await token(fake);
    const id = await conversation(fake, t);
    const messageId = crypto.randomUUID();
    fake.dropNext(1, { path: `${API}/conversation/${id}/message` });
    await expect(send(fake, t, id, messageId, "did it arrive?")).rejects.toThrow();
    expect(fake.messaging.agentView(id)).toHaveLength(1);
    expect((await send(fake, t, id, messageId, "did it arrive?")).status).toBe(202);
    expect(fake.messaging.agentView(id)).toHaveLength(1);
    fake.dropNext(1, { when: "before", method: "POST" });
    await expect(send(fake, t, id, crypto.randomUUID(), "never processed")).rejects.toThrow();
    expect(fake.messaging.agentView(id)).toHaveLength(1);
  });

  it("hangs a request until the client gives up, and can refuse or reset connections", async () => {
    const fake = await start();
    fake.hangNext(1, { path: `${API}/authorization/` });
    const url = `${fake.url}${API}/authorization/unauthenticated/access-token`;
    const body = { orgId: fake.orgId, esDeveloperName: DEFAULT_DEPLOYMENT, capabilitiesVersion: "1", platform: "Web" };
    await expect(call(url, { method: "POST", json: body, signal: AbortSignal.timeout(200) })).rejects.toThrow();
    await fake.goDown("refused");
    await expect(fetch(url, { method: "POST" })).rejects.toThrow();
    await fake.comeUp();
    expect((await call(url, { method: "POST", json: body })).status).toBe(200);
    await fake.goDown("reset");
    await expect(fetch(url, { method: "POST" })).rejects.toThrow();
    await fake.goDown("503");
    expect((await call(url, { method: "POST", json: body })).status).toBe(503);
    await fake.comeUp();
    expect((await call(url, { method: "POST", json: body })).status).toBe(200);
  });

  it("logs every request in arrival order with its headers and body", async () => {
    const fake = await start(chatOptions);
    const { v } = await chatting(fake);
    await v.post("ChatMessage", { text: "logged" });
    const posts = fake.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => [r.n, r.api, r.path, r.status])).toEqual([
      [2, "chat", "/chat/rest/Chasitor/ChasitorInit", 200],
      [4, "chat", "/chat/rest/Chasitor/ChatMessage", 200],
    ]);
    expect(posts[1]?.headers).toMatchObject({
      "x-liveagent-api-version": "60",
      "x-liveagent-session-key": v.session.key,
      "x-liveagent-affinity": v.session.affinityToken,
      "x-liveagent-sequence": "2",
    });
    expect(posts[1]?.body).toBe(JSON.stringify({ text: "logged" }));
    expect(fake.requests[2]).toMatchObject({ method: "GET", query: "ack=-1", status: 200 });
  });
});
