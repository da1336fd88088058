import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startHttpRecorder } from "../../helpers/http-recorder.js";
import type { RecordedRequest } from "../../helpers/http-recorder.js";
import { flatPng as png } from "../../helpers/png.js";
import {
  AGENT_APP_CLIENT_ID,
  DEFAULT_AGENT_ID,
  ERROR_CATALOGUE,
  LC_ERROR_TYPES,
  MAX_TEXT_BYTES,
  MAX_UPLOAD_BYTES,
  PENDING_REQUESTS_LIMIT,
  startFakeLiveChat,
} from "./index.js";
import type { CustomerToken, FakeLiveChat, FakeLiveChatOptions, WebhookRegistration } from "./index.js";

// Self-test of the fake's strictness with plain fetch and a raw WebSocket: the contract of livechat.md §2.

type Json = Record<string, unknown>;

const WAIT_MS = 5_000;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function start(options: FakeLiveChatOptions = {}): Promise<FakeLiveChat> {
  const fake = await startFakeLiveChat(options);
  cleanups.push(() => fake.close());
  return fake;
}

interface Answer {
  status: number;
  body: Json;
  headers: Headers;
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    // not JSON
  }
  return { status: response.status, body, headers: response.headers };
}

/** The agent_token grant, as the adapter will call it. */
async function grant(
  fake: FakeLiveChat,
  body: Json = {},
  authorization: string | null = `Bearer ${fake.agentToken}`,
): Promise<Answer> {
  return answer(
    await fetch(`${fake.accountsUrl}/v2/customer/token`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(authorization === null ? {} : { authorization }) },
      body: JSON.stringify({ grant_type: "agent_token", client_id: fake.clientId, response_type: "token", ...body }),
    }),
  );
}

async function customerToken(fake: FakeLiveChat, body: Json = {}): Promise<CustomerToken> {
  const res = await grant(fake, body);
  expect(res.status).toBe(200);
  return res.body as unknown as CustomerToken;
}

interface CallOptions {
  token?: string | null;
  organizationId?: string | null;
  version?: string;
  contentType?: string;
  raw?: string;
  headers?: Record<string, string>;
  path?: string;
}

async function call(fake: FakeLiveChat, token: string, action: string, payload: unknown = {}, opts: CallOptions = {}) {
  const org = opts.organizationId === undefined ? fake.organizationId : opts.organizationId;
  const path = opts.path ?? `/v${opts.version ?? "3.6"}/customer/action/${action}`;
  const auth = opts.token === undefined ? token : opts.token;
  return answer(
    await fetch(`${fake.apiUrl}${path}${org === null ? "" : `?organization_id=${org}`}`, {
      method: "POST",
      headers: {
        "content-type": opts.contentType ?? "application/json",
        ...(auth === null ? {} : { authorization: `Bearer ${auth}` }),
        ...opts.headers,
      },
      body: opts.raw ?? JSON.stringify(payload),
    }),
  );
}

async function upload(fake: FakeLiveChat, token: string, name: string, type: string, content: Buffer) {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(content)], { type }), name);
  return answer(
    await fetch(`${fake.apiUrl}/v3.6/customer/action/upload_file?organization_id=${fake.organizationId}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: form,
    }),
  );
}

/** A customer with a token and a started chat (first message as the initial event). */
async function chatting(fake: FakeLiveChat, text = "Hello, I need help") {
  const token = await customerToken(fake);
  const started = await call(fake, token.access_token, "start_chat", {
    chat: { thread: { events: [{ type: "message", text, custom_id: "liaison-1" }] } },
  });
  expect(started.status).toBe(200);
  return {
    token: token.access_token,
    entityId: token.entity_id,
    chatId: started.body.chat_id as string,
    threadId: started.body.thread_id as string,
  };
}

function expectError(
  res: Answer,
  type: string,
  status: number = ERROR_CATALOGUE[type as keyof typeof ERROR_CATALOGUE].status,
) {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ error: { type, message: expect.any(String) as unknown } });
}

// ── RTM client ──

interface RtmClient {
  frames: Json[];
  send(frame: unknown): void;
  request(action: string, payload?: unknown, extra?: Json): Promise<Json>;
  waitFrame(predicate: (frame: Json) => boolean, from?: number): Promise<Json>;
  closed: Promise<{ code: number }>;
  ws: WebSocket;
}

let requestCounter = 0;

async function rtm(
  fake: FakeLiveChat,
  opts: { organizationId?: string | null; version?: string } = {},
): Promise<RtmClient> {
  const org = opts.organizationId === undefined ? fake.organizationId : opts.organizationId;
  const base = fake.rtmUrl.replace("/v3.6/", `/v${opts.version ?? "3.6"}/`);
  const ws = new WebSocket(org === null ? base : `${base}?organization_id=${org}`);
  const frames: Json[] = [];
  const waiters: { predicate: (frame: Json) => boolean; from: number; resolve: (frame: Json) => void }[] = [];
  ws.on("message", (data: Buffer) => {
    const frame = JSON.parse(data.toString("utf8")) as Json;
    frames.push(frame);
    for (const waiter of [...waiters]) {
      if (frames.length - 1 >= waiter.from && waiter.predicate(frame)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    }
  });
  const closed = new Promise<{ code: number }>((resolve) => ws.on("close", (code) => resolve({ code })));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  cleanups.push(() => ws.terminate());
  const waitFrame = (predicate: (frame: Json) => boolean, from = 0) =>
    new Promise<Json>((resolve, reject) => {
      const found = frames.slice(from).find(predicate);
      if (found) {
        resolve(found);
        return;
      }
      const timer = setTimeout(() => reject(new Error("no matching RTM frame in time")), WAIT_MS);
      waiters.push({
        predicate,
        from,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      });
    });
  return {
    frames,
    ws,
    closed,
    waitFrame,
    send: (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
    request(action, payload = {}, extra = {}) {
      requestCounter += 1;
      const requestId = `req-${requestCounter}`;
      const response = waitFrame((f) => f.type === "response" && f.request_id === requestId);
      ws.send(JSON.stringify({ request_id: requestId, action, payload, ...extra }));
      return response;
    },
  };
}

async function loggedIn(fake: FakeLiveChat, token: string): Promise<RtmClient> {
  const client = await rtm(fake);
  const login = await client.request("login", { token: `Bearer ${token}` });
  expect(login.success).toBe(true);
  return client;
}

const push = (action: string, chatId?: string) => (frame: Json) =>
  frame.type === "push" &&
  frame.action === action &&
  (chatId === undefined || (frame.payload as Json | undefined)?.chat_id === chatId);

// ── webhook receiver ──

async function receiver(
  respond: (req: RecordedRequest, res: ServerResponse, n: number) => void = (_q, res) => res.writeHead(200).end("ok"),
) {
  const recorder = await startHttpRecorder(respond);
  cleanups.push(() => recorder.close());
  return recorder;
}

const bodies = (received: RecordedRequest[]) => received.map((r) => JSON.parse(r.text) as Json);

describe("accounts: customer tokens by the agent_token grant", () => {
  it("creates a customer and answers the documented fields; entity_id gets a fresh token for the same customer", async () => {
    const fake = await start();
    const first = await grant(fake);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual(
      ["access_token", "client_id", "entity_id", "expires_in", "organization_id", "token_type"].sort(),
    );
    expect(first.body).toMatchObject({
      client_id: fake.clientId,
      expires_in: 28800,
      token_type: "Bearer",
      organization_id: fake.organizationId,
    });
    expect(first.body.access_token).toMatch(/^dal:/);
    expect(first.body.entity_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const again = await grant(fake, { entity_id: first.body.entity_id, expires_in: 60 });
    expect(again.body).toMatchObject({ entity_id: first.body.entity_id, expires_in: 60 });
    expect(again.body.access_token).not.toBe(first.body.access_token);
    // Both tokens act as the same customer.
    const a = await call(fake, first.body.access_token as string, "get_customer");
    const b = await call(fake, again.body.access_token as string, "get_customer");
    expect(a.body.id).toBe(first.body.entity_id);
    expect(b.body.id).toBe(first.body.entity_id);
  });

  it("refuses what the accounts server refuses, with its OAuth error body", async () => {
    const fake = await start({
      agentTokens: [
        { token: "dal:good", agentId: DEFAULT_AGENT_ID },
        { token: "dal:noscope", agentId: DEFAULT_AGENT_ID, scopes: ["chats--all:ro"] },
      ],
    });
    const cases: [Answer, string][] = [
      [await grant(fake, {}, null), "invalid_request"],
      [await grant(fake, {}, "Basic YWNjb3VudDpwYXQ="), "invalid_grant"],
      [await grant(fake, {}, "Bearer dal:unknown"), "invalid_grant"],
      [await grant(fake, {}, "Bearer dal:noscope"), "access_denied"],
      [await grant(fake, { client_id: "0123456789abcdef0123456789abcdef" }, "Bearer dal:good"), "unauthorized_client"],
      [await grant(fake, { response_type: undefined }, "Bearer dal:good"), "invalid_request"],
      [await grant(fake, { response_type: "code" }, "Bearer dal:good"), "unsupported_response_type"],
      [await grant(fake, { grant_type: "password" }, "Bearer dal:good"), "unsupported_grant_type"],
      [
        await grant(fake, { entity_id: "3aa138c1-c137-41c6-6b26-cface5857378" }, "Bearer dal:good"),
        "resource_not_found",
      ],
      [await grant(fake, { expires_in: -5 }, "Bearer dal:good"), "invalid_request"],
    ];
    for (const [res, exception] of cases) {
      expect(res.status).toBe(401);
      expect(Object.keys(res.body).sort()).toEqual(["exception_description", "oauth_exception"]);
      expect(res.body.oauth_exception).toBe(exception);
    }
    fake.expireAgentToken("dal:good");
    expect((await grant(fake, {}, "Bearer dal:good")).body.oauth_exception).toBe("invalid_grant");
  });
});

describe("Web API: transport, authentication and errors", () => {
  it("needs organization_id, a valid Bearer customer token and a supported version", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    expectError(await call(fake, token, "list_chats", {}, { organizationId: null }), "validation");
    expectError(
      await call(fake, token, "list_chats", {}, { organizationId: "00000000-0000-4000-8000-000000000000" }),
      "license_not_found",
    );
    const missing = await call(fake, token, "list_chats", {}, { token: null });
    expectError(missing, "authentication");
    expect(missing.body).toEqual({ error: { type: "authentication", message: "Invalid access token" } });
    // The agent's token is not a customer token.
    expectError(await call(fake, token, "list_chats", {}, { token: fake.agentToken }), "authentication");
    expectError(await call(fake, token, "list_chats", {}, { version: "3.2" }), "unsupported_version");
    expect((await call(fake, token, "list_chats", {}, { version: "3.5" })).status).toBe(200);
    expect(
      (
        await call(
          fake,
          token,
          "list_chats",
          {},
          { path: "/customer/action/list_chats", headers: { "x-api-version": "3.6" } },
        )
      ).status,
    ).toBe(200);
    expectError(
      await call(fake, token, "list_chats", {}, { path: "/customer/action/list_chats" }),
      "unsupported_version",
    );
    expectError(await call(fake, token, "no_such_action"), "not_found");
  });

  it("takes only a JSON object with documented keys", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    expectError(await call(fake, token, "list_chats", {}, { contentType: "text/plain" }), "validation");
    expectError(await call(fake, token, "list_chats", {}, { raw: "{not json" }), "validation");
    expectError(await call(fake, token, "list_chats", [1, 2]), "validation");
    expectError(await call(fake, token, "list_chats", { offset: 0 }), "validation");
    expectError(await call(fake, token, "list_chats", { limit: 26 }), "validation");
    expectError(await call(fake, token, "start_chat", { chat: { users: [] } }), "validation");
  });

  it("expires customer tokens; the same entity gets a new token from the grant", async () => {
    const fake = await start();
    const { token, entityId, chatId } = await chatting(fake);
    fake.expireCustomerToken(token);
    expectError(await call(fake, token, "get_chat", { chat_id: chatId }), "authentication");
    const renewed = await customerToken(fake, { entity_id: entityId });
    const chat = await call(fake, renewed.access_token, "get_chat", { chat_id: chatId });
    expect(chat.status).toBe(200);
    expect(chat.body.id).toBe(chatId);
  });

  it("short token lifetimes expire by themselves", async () => {
    const fake = await start({ customerTokenTtlSeconds: 1 });
    const { access_token: token } = await customerToken(fake);
    expect((await call(fake, token, "get_customer")).status).toBe(200);
    await expect
      .poll(async () => (await call(fake, token, "get_customer")).status, { timeout: 3_000, interval: 200 })
      .toBe(401);
  });

  it("answers every catalogued error type with its body and status on demand, misdirected_request with data.region", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    for (const type of LC_ERROR_TYPES.filter((t) => t !== "misdirected_request")) {
      fake.failNext(1, type);
      const res = await call(fake, token, "list_chats");
      expect(res.status).toBe(ERROR_CATALOGUE[type].status);
      expect((res.body.error as Json).type).toBe(type);
    }
    // Fetch repeats a request answered 421 once, on a new connection: a single injected 421 is absorbed by that
    // retry, a lasting one (the wrong region stays wrong) reaches the client.
    fake.failNext(1, "misdirected_request");
    expect((await call(fake, token, "list_chats")).status).toBe(200);
    expect(fake.calls.slice(-2).map((c) => c.outcome)).toEqual(["misdirected_request", "ok"]);
    fake.failNext(2, "misdirected_request");
    const misdirected = await call(fake, token, "list_chats");
    expect(misdirected.status).toBe(421);
    expect(misdirected.body).toEqual({
      error: { type: "misdirected_request", message: "Wrong region", data: { region: "fra" } },
    });
    // Targeted injection: only send_event fails.
    fake.failNext(2, "internal", { action: "send_event" });
    expect((await call(fake, token, "list_chats")).status).toBe(200);
  });

  it("rate limits with too_many_requests and no wait hint", async () => {
    const fake = await start({ rateLimit: { limit: 2, windowMs: 60_000 } });
    const { access_token: token } = await customerToken(fake);
    expect((await call(fake, token, "list_chats")).status).toBe(200);
    expect((await call(fake, token, "list_chats")).status).toBe(200);
    const limited = await call(fake, token, "list_chats");
    expectError(limited, "too_many_requests", 429);
    expect(limited.headers.get("retry-after")).toBeNull();
    // Counted per action: another method still goes through.
    expect((await call(fake, token, "get_customer")).status).toBe(200);
    fake.setRateLimit(false);
    expect((await call(fake, token, "list_chats")).status).toBe(200);
  });

  it("goes down on demand: 5xx, hanging, refused connections, and comes back on the same URL", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    await fake.goDown("503");
    expectError(await call(fake, token, "list_chats"), "service_unavailable", 503);
    expect((await grant(fake)).status).toBe(503);
    await fake.goDown("500");
    expectError(await call(fake, token, "list_chats"), "internal", 500);
    await fake.goDown("hang");
    await expect(
      fetch(`${fake.apiUrl}/v3.6/customer/action/list_chats?organization_id=${fake.organizationId}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: "{}",
        signal: AbortSignal.timeout(200),
      }),
    ).rejects.toThrow();
    expect(fake.calls.at(-1)?.outcome).toBe("hung");
    await fake.goDown("refuse");
    await expect(call(fake, token, "list_chats")).rejects.toThrow();
    await fake.comeUp();
    expect((await call(fake, token, "list_chats")).status).toBe(200);
  });

  it("can lose an answer after doing the work: the event is stored, found again by custom_id, and a resend duplicates it", async () => {
    const fake = await start();
    const { token, chatId } = await chatting(fake);
    fake.loseNextAnswer(1, "send_event");
    const event = { type: "message", text: "Are you there?", custom_id: "liaison-2" };
    await expect(call(fake, token, "send_event", { chat_id: chatId, event })).rejects.toThrow();
    expect(fake.calls.at(-1)).toMatchObject({ action: "send_event", outcome: "lost" });
    const chat = await call(fake, token, "get_chat", { chat_id: chatId });
    const events = (chat.body.thread as Json).events as Json[];
    expect(events.filter((e) => e.custom_id === "liaison-2")).toHaveLength(1);
    // LiveChat does not deduplicate by custom_id: a blind retry shows the message twice.
    expect((await call(fake, token, "send_event", { chat_id: chatId, event })).status).toBe(200);
    const texts = fake.agentFeed(chatId).map((entry) => entry.event.custom_id);
    expect(texts.filter((id) => id === "liaison-2")).toHaveLength(2);
  });
});

describe("chats, threads and events", () => {
  it("starts a chat with the first message: ids, microsecond timestamps, custom_id, queue and the customer's view", async () => {
    const fake = await start({ routing: "manual" });
    const { token, entityId, chatId, threadId } = await chatting(fake);
    expect(chatId).toMatch(/^[A-Z0-9]{10}$/);
    expect(threadId).toMatch(/^[A-Z0-9]{10}$/);
    const chat = await call(fake, token, "get_chat", { chat_id: chatId });
    const thread = chat.body.thread as Json;
    expect(thread).toMatchObject({ id: threadId, active: true, queue: { position: 1, wait_time: 60 } });
    expect(thread.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    const [first] = thread.events as Json[];
    expect(first).toMatchObject({
      id: `${threadId}_1`,
      type: "message",
      text: "Hello, I need help",
      custom_id: "liaison-1",
      author_id: entityId,
      properties: { source: { client_id: fake.clientId } },
    });
    expect(first?.created_at).toMatch(/\.\d{6}Z$/);
    expect(chat.body.properties).toEqual({ source: { client_id: fake.clientId } });
    expect(fake.queue(0)).toEqual([{ chatId, threadId, groupId: 0, position: 1, waitTime: 60 }]);
  });

  it("returns event_ids only for initial events; one chat per customer", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    const bare = await call(fake, token, "start_chat", {});
    expect(Object.keys(bare.body).sort()).toEqual(["chat_id", "thread_id"]);
    expectError(await call(fake, token, "start_chat", {}), "chat_limit_reached");
    const other = await customerToken(fake);
    const withEvents = await call(fake, other.access_token, "start_chat", {
      chat: {
        thread: {
          events: [
            { type: "message", text: "a" },
            { type: "message", text: "b" },
          ],
        },
      },
    });
    const threadId = withEvents.body.thread_id as string;
    expect(withEvents.body.event_ids).toEqual([`${threadId}_1`, `${threadId}_2`]);
  });

  it("refuses start_chat when the group has nobody (groups_offline) unless continuous; unknown groups", async () => {
    const fake = await start({ groups: [{ id: 7, name: "Billing" }] });
    const { access_token: token } = await customerToken(fake);
    expectError(await call(fake, token, "start_chat", { chat: { access: { group_ids: [7] } } }), "groups_offline");
    expectError(await call(fake, token, "start_chat", { chat: { access: { group_ids: [99] } } }), "group_not_found");
    expect((await call(fake, token, "list_group_statuses", { all: true })).body).toEqual({
      groups_status: { "0": "online", "7": "offline" },
    });
    const continuous = await call(fake, token, "start_chat", {
      chat: { access: { group_ids: [7] } },
      continuous: true,
    });
    expect(continuous.status).toBe(200);
    fake.setGroupOnline(0, false);
    const other = await customerToken(fake);
    expectError(await call(fake, other.access_token, "start_chat", {}), "groups_offline");
    expectError(await call(fake, token, "list_group_statuses", {}), "validation");
  });

  it("stores custom_id and does not deduplicate it; numbers events per thread", async () => {
    const fake = await start();
    const { token, chatId, threadId } = await chatting(fake);
    const a = await call(fake, token, "send_event", {
      chat_id: chatId,
      event: { type: "message", text: "x", custom_id: "same" },
    });
    const b = await call(fake, token, "send_event", {
      chat_id: chatId,
      event: { type: "message", text: "x", custom_id: "same" },
    });
    expect(a.body).toEqual({ event_id: `${threadId}_2` });
    expect(b.body).toEqual({ event_id: `${threadId}_3` });
    const feed = fake.agentFeed(chatId).map((entry) => [entry.event.id, entry.event.custom_id, entry.event.visibility]);
    expect(feed).toEqual([
      [`${threadId}_1`, "liaison-1", "all"],
      [`${threadId}_2`, "same", "all"],
      [`${threadId}_3`, "same", "all"],
    ]);
  });

  it("validates events: text size, CDN files, event types, properties", async () => {
    const fake = await start({ properties: { liaison: { conversation_id: "string" } } });
    const { token, chatId } = await chatting(fake);
    const send = (event: unknown) => call(fake, token, "send_event", { chat_id: chatId, event });
    expectError(await send({ type: "message", text: "é".repeat(MAX_TEXT_BYTES / 2 + 1) }), "validation");
    expect((await send({ type: "message", text: "a".repeat(MAX_TEXT_BYTES) })).status).toBe(200);
    expectError(await send({ type: "message", text: "" }), "validation");
    expectError(await send({ type: "file", url: "https://example.org/cat.png" }), "validation");
    expectError(await send({ type: "form", form_id: "x", fields: [] }), "validation");
    expectError(await send({ type: "system", subtype: "x" }), "validation");
    expectError(await send({ type: "message", text: "hi", unknown: true }), "validation");
    expectError(await send({ type: "message", text: "hi", properties: { other: { x: "y" } } }), "validation");
    expectError(
      await send({ type: "message", text: "hi", properties: { liaison: { conversation_id: 5 } } }),
      "validation",
    );
    expect(
      (await send({ type: "message", text: "hi", properties: { liaison: { conversation_id: "c-1" } } })).status,
    ).toBe(200);
    expectError(
      await call(fake, token, "send_event", { chat_id: "NOSUCHCHAT", event: { type: "message", text: "x" } }),
      "not_found",
    );
    // Another customer's chat is not found either.
    const stranger = await customerToken(fake);
    expectError(await call(fake, stranger.access_token, "get_chat", { chat_id: chatId }), "not_found");
  });

  it("chat_inactive after deactivation unless attach_to_last_thread; deactivating twice; resume opens a new thread", async () => {
    const fake = await start();
    const { token, chatId, threadId } = await chatting(fake);
    expect((await call(fake, token, "deactivate_chat", { id: chatId })).body).toEqual({});
    expectError(await call(fake, token, "deactivate_chat", { id: chatId }), "chat_inactive");
    const message = { type: "message", text: "one more thing" };
    expectError(await call(fake, token, "send_event", { chat_id: chatId, event: message }), "chat_inactive");
    const attached = await call(fake, token, "send_event", {
      chat_id: chatId,
      event: message,
      attach_to_last_thread: true,
    });
    expect(attached.body.event_id).toBe(`${threadId}_3`);
    expectError(await call(fake, token, "resume_chat", { chat: { id: "NOSUCHCHAT" } }), "not_found");
    const resumed = await call(fake, token, "resume_chat", {
      chat: { id: chatId, thread: { events: [{ type: "message", text: "back again" }] } },
    });
    const newThread = resumed.body.thread_id as string;
    expect(newThread).not.toBe(threadId);
    expect(resumed.body.event_ids).toEqual([`${newThread}_1`]);
    expectError(await call(fake, token, "resume_chat", { chat: { id: chatId } }), "chat_already_active");
    const latest = await call(fake, token, "get_chat", { chat_id: chatId });
    expect(latest.body.thread).toMatchObject({ id: newThread, active: true, previous_thread_id: threadId });
    const old = await call(fake, token, "get_chat", { chat_id: chatId, thread_id: threadId });
    expect(old.body.thread).toMatchObject({ id: threadId, active: false, next_thread_id: newThread });
    // The customer's own close is a system message, then the event attached afterwards.
    expect(((old.body.thread as Json).events as Json[]).map((e) => e.system_message_type ?? e.type)).toEqual([
      "message",
      "manual_archived_customer",
      "message",
    ]);
  });

  it("pages threads (newest first) and chats; limit and min_events_count exclude each other", async () => {
    const fake = await start();
    const { token, chatId } = await chatting(fake);
    for (let i = 0; i < 3; i += 1) {
      await call(fake, token, "deactivate_chat", { id: chatId });
      await call(fake, token, "resume_chat", { chat: { id: chatId } });
    }
    const page1 = await call(fake, token, "list_threads", { chat_id: chatId, limit: 3 });
    expect(page1.body.found_threads).toBe(4);
    expect((page1.body.threads as Json[]).map((t) => t.active)).toEqual([true, false, false]);
    const page2 = await call(fake, token, "list_threads", { chat_id: chatId, page_id: page1.body.next_page_id });
    expect(page2.body.threads as Json[]).toHaveLength(1);
    expect(page2.body.next_page_id).toBeUndefined();
    expect(page2.body.previous_page_id).toEqual(expect.any(String));
    expectError(
      await call(fake, token, "list_threads", { chat_id: chatId, page_id: page1.body.next_page_id, limit: 2 }),
      "validation",
    );
    expectError(
      await call(fake, token, "list_threads", { chat_id: chatId, limit: 2, min_events_count: 2 }),
      "validation",
    );
    expectError(await call(fake, token, "list_threads", { chat_id: chatId, page_id: "garbage" }), "validation");
    const enough = await call(fake, token, "list_threads", { chat_id: chatId, min_events_count: 2 });
    expect((enough.body.threads as Json[]).length).toBeGreaterThan(1);
    const chats = await call(fake, token, "list_chats", {});
    expect(chats.body).toMatchObject({ total_chats: 1, chats_summary: [{ id: chatId, active: true }] });
    const summary = (chats.body.chats_summary as Json[])[0];
    expect(Object.keys(summary?.last_event_per_type as Json)).toEqual(
      expect.arrayContaining(["message", "system_message"]),
    );
  });

  it("updates the customer; session fields are limited to 100 keys", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    expectError(await call(fake, token, "update_customer", {}), "validation");
    expectError(await call(fake, token, "update_customer", { email: "not-an-email" }), "validation");
    expect((await call(fake, token, "update_customer", { name: "Sara Khan", email: "sara@example.org" })).status).toBe(
      200,
    );
    const fields = Array.from({ length: 101 }, (_, i) => ({ [`k${i}`]: "v" }));
    expectError(
      await call(fake, token, "set_customer_session_fields", { session_fields: fields }),
      "customer_session_fields_limit_reached",
    );
    expect(
      (await call(fake, token, "set_customer_session_fields", { session_fields: [{ channel: "sms" }] })).status,
    ).toBe(200);
    expect((await call(fake, token, "get_customer")).body).toMatchObject({
      type: "customer",
      name: "Sara Khan",
      email: "sara@example.org",
      session_fields: [{ channel: "sms" }],
    });
  });

  it("marks events as seen and records sneak peeks for the agent", async () => {
    const fake = await start();
    const { token, chatId } = await chatting(fake);
    expect((await call(fake, token, "send_sneak_peek", { chat_id: chatId, sneak_peek_text: "I am typ" })).status).toBe(
      200,
    );
    expect(fake.sneakPeeks(chatId)).toEqual([expect.objectContaining({ chatId, text: "I am typ" })]);
    expectError(
      await call(fake, token, "mark_events_as_seen", { chat_id: chatId, seen_up_to: "yesterday" }),
      "validation",
    );
    expect(
      (await call(fake, token, "mark_events_as_seen", { chat_id: chatId, seen_up_to: "2030-01-01T00:00:00.000000Z" }))
        .status,
    ).toBe(200);
  });
});

describe("files", () => {
  it("uploads to the CDN and fills in the file event; images get size and thumbnails", async () => {
    const fake = await start();
    const { token, chatId } = await chatting(fake);
    const image = png(3, 2);
    const uploaded = await upload(fake, token, "photo.png", "image/png", image);
    expect(uploaded.status).toBe(200);
    const url = uploaded.body.url as string;
    expect(url.startsWith(`${fake.cdnUrl}/api/file/lc/att/${fake.licenseId}/`)).toBe(true);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(image);
    const sent = await call(fake, token, "send_event", {
      chat_id: chatId,
      event: { type: "file", url, custom_id: "f-1" },
    });
    expect(sent.status).toBe(200);
    const [entry] = fake.agentFeed(chatId).slice(-1);
    expect(entry?.event).toMatchObject({
      type: "file",
      custom_id: "f-1",
      name: "photo.png",
      url,
      content_type: "image/png",
      size: image.length,
      width: 3,
      height: 2,
      thumbnail_url: expect.stringContaining(fake.cdnUrl) as unknown,
      thumbnail2x_url: expect.stringContaining(fake.cdnUrl) as unknown,
    });
  });

  it("refuses files over 10 MB, executables, non-multipart bodies and expired uploads", async () => {
    const fake = await start({ uploadTtlMs: 0 });
    const { token, chatId } = await chatting(fake);
    expectError(
      await upload(fake, token, "big.bin", "application/octet-stream", Buffer.alloc(MAX_UPLOAD_BYTES + 1)),
      "entity_too_large",
      413,
    );
    expectError(
      await upload(fake, token, "setup.exe", "application/octet-stream", Buffer.from("MZ....")),
      "validation",
    );
    expectError(await call(fake, token, "upload_file", {}), "validation");
    const stale = await upload(fake, token, "notes.txt", "text/plain", Buffer.from("hello"));
    expect(stale.status).toBe(200);
    expectError(
      await call(fake, token, "send_event", { chat_id: chatId, event: { type: "file", url: stale.body.url } }),
      "validation",
    );
  });
});

describe("the agent (control API)", () => {
  it("shows what the customer sent once and in order, and plays accept, write, file, transfer and close", async () => {
    const fake = await start({
      routing: "manual",
      agents: [
        { id: DEFAULT_AGENT_ID, name: "Anna Smith" },
        { id: "bob@example.org", name: "Bob Jones" },
      ],
    });
    const { token, chatId } = await chatting(fake, "first");
    for (const text of ["second", "third"]) {
      await call(fake, token, "send_event", { chat_id: chatId, event: { type: "message", text } });
    }
    expect(fake.agentFeed(chatId).map((e) => e.event.text)).toEqual(["first", "second", "third"]);
    fake.acceptChat(chatId);
    expect(fake.queue()).toEqual([]);
    const reply = fake.agentSend(chatId, "Hi, I'm Anna");
    expect(reply).toMatchObject({
      type: "message",
      text: "Hi, I'm Anna",
      author_id: DEFAULT_AGENT_ID,
      visibility: "all",
    });
    fake.agentSend(chatId, "internal note", { visibility: "agents" });
    const file = fake.agentSendFile(chatId, {
      name: "guide.pdf",
      contentType: "application/pdf",
      content: Buffer.from("%PDF-1.4"),
    });
    expect(file).toMatchObject({ type: "file", name: "guide.pdf", content_type: "application/pdf", size: 8 });
    fake.transferChat(chatId, { agentId: "bob@example.org" });
    fake.agentDeactivate(chatId, "bob@example.org");
    const chat = await call(fake, token, "get_chat", { chat_id: chatId });
    const events = (chat.body.thread as Json).events as Json[];
    // The customer never sees the agents-only note.
    expect(events.map((e) => e.text ?? e.name)).toEqual([
      "first",
      "second",
      "third",
      "Hi, I'm Anna",
      "guide.pdf",
      "Anna Smith transferred the chat to Bob Jones",
      "Bob Jones archived the chat",
    ]);
    expect((chat.body.thread as Json).active).toBe(false);
    expect(fake.chat(chatId)?.threads[0]?.events.some((e) => e.text === "internal note")).toBe(true);
  });

  it("auto routing assigns at once; a full agent makes the group online_for_queue and queues", async () => {
    const fake = await start({ agents: [{ id: DEFAULT_AGENT_ID, name: "Anna Smith", maxChats: 1 }] });
    const first = await chatting(fake);
    expect(fake.queue()).toEqual([]);
    expect((await call(fake, first.token, "get_chat", { chat_id: first.chatId })).body.users).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: DEFAULT_AGENT_ID, type: "agent", present: true })]),
    );
    expect(fake.groupStatus(0)).toBe("online_for_queue");
    const second = await chatting(fake);
    expect(fake.queue()).toEqual([expect.objectContaining({ chatId: second.chatId, position: 1 })]);
    fake.agentDeactivate(first.chatId);
    expect(fake.queue()).toEqual([]);
  });
});

describe("RTM: login, keepalive, pushes", () => {
  it("closes a socket that does not log in in time, after customer_disconnected connection_timeout", async () => {
    const fake = await start({ rtm: { loginTimeoutMs: 100 } });
    const client = await rtm(fake);
    const frame = await client.waitFrame(push("customer_disconnected"));
    expect(frame).toEqual({
      version: "3.6",
      action: "customer_disconnected",
      type: "push",
      payload: { reason: "connection_timeout" },
    });
    expect((await client.closed).code).toBe(1000);
  });

  it("logs in with the Bearer token (prefix kept) and answers with the customer and chats; bad tokens fail", async () => {
    const fake = await start();
    const { token, entityId, chatId } = await chatting(fake);
    const client = await rtm(fake);
    const early = await client.request("get_chat", { chat_id: chatId });
    expect(early).toMatchObject({ success: false, payload: { error: { type: "authentication" } } });
    const noPrefix = await client.request("login", { token });
    expect(noPrefix).toMatchObject({
      action: "login",
      type: "response",
      success: false,
      payload: { error: { type: "authentication", message: "Invalid access token" } },
    });
    const login = await client.request("login", { token: `Bearer ${token}`, customer: { name: "Sara" } });
    expect(login).toMatchObject({
      action: "login",
      type: "response",
      success: true,
      payload: { customer: { id: entityId, name: "Sara" }, has_active_thread: true, chats: [{ chat_id: chatId }] },
    });
    const chat = await client.request("get_chat", { chat_id: chatId });
    expect(chat).toMatchObject({ success: true, payload: { id: chatId } });
    // "Versions lower than the version of the RTM connection are prohibited."
    expect((await client.request("get_customer", {}, { version: "3.5" })).payload).toMatchObject({
      error: { type: "unsupported_version" },
    });
    expect((await client.request("login", { token: `Bearer ${token}` })).success).toBe(false);
    expect((await client.request("upload_file", {})).payload).toMatchObject({ error: { type: "not_found" } });
    expect(fake.rtmConnections()).toEqual([expect.objectContaining({ entityId, loggedIn: true, open: true })]);
  });

  it("disconnects a silent client after the ping deadline; pings (protocol or WebSocket) keep it", async () => {
    const fake = await start({ rtm: { pingTimeoutMs: 300 } });
    const { access_token: token } = await customerToken(fake);
    const silent = await loggedIn(fake, token);
    // Requests are not pings: a client that only asks questions is still closed.
    const asker = setInterval(() => silent.send({ action: "list_chats", payload: {} }), 50);
    cleanups.push(() => clearInterval(asker));
    expect((await silent.waitFrame(push("customer_disconnected"))).payload).toEqual({ reason: "connection_timeout" });
    clearInterval(asker);

    const pinging = await loggedIn(fake, token);
    const pong = await pinging.request("ping");
    expect(pong).toMatchObject({ action: "ping", type: "response", success: true });
    const pinger = setInterval(() => pinging.send({ action: "ping", payload: {} }), 50);
    cleanups.push(() => clearInterval(pinger));
    const controlPinging = await loggedIn(fake, token);
    const controlPinger = setInterval(() => controlPinging.ws.ping(), 50);
    cleanups.push(() => clearInterval(controlPinger));
    const pingsFrom = (id: number) =>
      fake.rtmFrames.filter((f) => f.connectionId === id && f.direction === "in" && (f.frame as Json).action === "ping")
        .length;
    const connection = fake.rtmConnections().at(-2)?.id ?? 0;
    // Well past the deadline, measured in the client's own pings.
    await expect.poll(() => pingsFrom(connection), { timeout: WAIT_MS }).toBeGreaterThan(15);
    expect(pinging.frames.some(push("customer_disconnected"))).toBe(false);
    expect(controlPinging.frames.some(push("customer_disconnected"))).toBe(false);
    expect(fake.rtmConnections().filter((c) => c.open)).toHaveLength(2);
  });

  it("pushes agent activity: join, messages, files, typing, queue positions, transfer, close", async () => {
    const fake = await start({
      routing: "manual",
      groups: [{ id: 2, name: "Sales" }],
      agents: [
        { id: DEFAULT_AGENT_ID, name: "Anna Smith" },
        { id: "bob@example.org", name: "Bob Jones", groups: [2] },
      ],
    });
    const ahead = await chatting(fake, "I was first");
    const { token, chatId, threadId } = await chatting(fake);
    const client = await loggedIn(fake, token);
    fake.acceptChat(ahead.chatId);
    expect((await client.waitFrame(push("queue_position_updated", chatId))).payload).toEqual({
      chat_id: chatId,
      thread_id: threadId,
      queue: { position: 1, wait_time: 60 },
    });
    fake.acceptChat(chatId);
    const added = await client.waitFrame(push("user_added_to_chat", chatId));
    expect(added.payload).toMatchObject({
      chat_id: chatId,
      thread_id: threadId,
      reason: "manual",
      requester_id: DEFAULT_AGENT_ID,
      user: { id: DEFAULT_AGENT_ID, type: "agent", name: "Anna Smith", present: true },
    });
    fake.agentTyping(chatId, true);
    expect((await client.waitFrame(push("incoming_typing_indicator", chatId))).payload).toMatchObject({
      typing_indicator: {
        author_id: DEFAULT_AGENT_ID,
        is_typing: true,
        recipients: "all",
        timestamp: expect.any(Number) as unknown,
      },
    });
    const reply = fake.agentSend(chatId, "How can I help?");
    const incoming = await client.waitFrame(push("incoming_event", chatId));
    expect(incoming).toMatchObject({
      version: "3.6",
      type: "push",
      payload: {
        chat_id: chatId,
        thread_id: threadId,
        event: { id: reply.id, text: "How can I help?", author_id: DEFAULT_AGENT_ID, recipients: "all" },
      },
    });
    expect(incoming.request_id).toBeUndefined();
    fake.agentSend(chatId, "agents only", { visibility: "agents" });
    fake.agentSendFile(chatId, { name: "map.png", contentType: "image/png", content: png(1, 1) });
    const file = await client.waitFrame(
      (f) => push("incoming_event", chatId)(f) && ((f.payload as Json).event as Json).type === "file",
    );
    expect((file.payload as Json).event).toMatchObject({ name: "map.png", width: 1, height: 1 });
    expect(
      client.frames.some(
        (f) => push("incoming_event")(f) && ((f.payload as Json).event as Json).text === "agents only",
      ),
    ).toBe(false);
    const mark = client.frames.length;
    fake.transferChat(chatId, { groupId: 2 });
    expect((await client.waitFrame(push("user_removed_from_chat", chatId), mark)).payload).toMatchObject({
      user_id: DEFAULT_AGENT_ID,
      reason: "manual",
    });
    expect((await client.waitFrame(push("chat_transferred", chatId), mark)).payload).toMatchObject({
      chat_id: chatId,
      requester_id: DEFAULT_AGENT_ID,
      reason: "manual",
      transferred_to: { group_ids: [2] },
      queue: { position: 1, wait_time: 60, queued_at: expect.stringMatching(/\.\d{6}Z$/) as unknown },
    });
    // Anna is not in Sales: she cannot take it back.
    expect(() => fake.acceptChat(chatId)).toThrow(/no access/);
    fake.acceptChat(chatId, "bob@example.org");
    fake.agentDeactivate(chatId, "bob@example.org");
    const closing = await client.waitFrame(
      (f) =>
        push("incoming_event", chatId)(f) &&
        ((f.payload as Json).event as Json).system_message_type === "manual_archived_agent",
      mark,
    );
    expect((closing.payload as Json).event).toMatchObject({
      type: "system_message",
      text_vars: { agent: "Bob Jones" },
    });
    expect(closing.payload).toMatchObject({ thread_id: threadId });
    expect((await client.waitFrame(push("chat_deactivated", chatId), mark)).payload).toEqual({
      chat_id: chatId,
      thread_id: threadId,
      user_id: "bob@example.org",
    });
  });

  it("answers an RTM request before the pushes it causes, which carry its request_id", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    const client = await loggedIn(fake, token);
    const mark = client.frames.length;
    const started = await client.request("start_chat", {
      chat: { thread: { events: [{ type: "message", text: "via RTM" }] } },
    });
    expect(started).toMatchObject({ success: true, payload: { chat_id: expect.any(String) as unknown } });
    const incoming = await client.waitFrame(push("incoming_chat"), mark);
    const startedAt = client.frames.indexOf(started);
    expect(client.frames.indexOf(incoming)).toBeGreaterThan(startedAt);
    expect(incoming.request_id).toBe(started.request_id);
    expect(incoming.payload).toMatchObject({
      requester_id: expect.any(String) as unknown,
      chat: { id: (started.payload as Json).chat_id },
    });
  });

  it("ends sessions with customer_disconnected: token expiry, revocation, a chosen reason, a ban; drops are silent", async () => {
    const fake = await start();
    const { token, entityId, chatId } = await chatting(fake);
    const expiring = await loggedIn(fake, token);
    fake.expireCustomerToken(entityId);
    expect((await expiring.waitFrame(push("customer_disconnected"))).payload).toEqual({
      reason: "access_token_expired",
    });
    expect((await expiring.closed).code).toBe(1000);

    const renewed = await customerToken(fake, { entity_id: entityId });
    const revoked = await loggedIn(fake, renewed.access_token);
    fake.revokeCustomerToken(renewed.access_token);
    expect((await revoked.waitFrame(push("customer_disconnected"))).payload).toEqual({
      reason: "access_token_revoked",
    });

    const third = await customerToken(fake, { entity_id: entityId });
    const chosen = await loggedIn(fake, third.access_token);
    expect(() => fake.disconnectCustomer(entityId, "bored")).toThrow(/unknown reason/);
    fake.disconnectCustomer(entityId, "misdirected_connection", { region: "fra" });
    expect((await chosen.waitFrame(push("customer_disconnected"))).payload).toEqual({
      reason: "misdirected_connection",
      data: { region: "fra" },
    });

    const dropped = await loggedIn(fake, third.access_token);
    fake.dropRtm(entityId);
    expect((await dropped.closed).code).toBe(1006);
    expect(dropped.frames.some(push("customer_disconnected"))).toBe(false);

    const banned = await loggedIn(fake, third.access_token);
    fake.banCustomer(entityId);
    expect((await banned.waitFrame(push("chat_deactivated", chatId))).payload).toMatchObject({ chat_id: chatId });
    expect((await banned.waitFrame(push("customer_disconnected"))).payload).toEqual({ reason: "customer_banned" });
    expectError(await call(fake, third.access_token, "get_chat", { chat_id: chatId }), "customer_banned");
  });

  it("does not repeat pushes missed while away: the client catches up with get_chat", async () => {
    const fake = await start();
    const { token, chatId } = await chatting(fake);
    const before = await loggedIn(fake, token);
    fake.dropRtm();
    await before.closed;
    fake.agentSend(chatId, "are you still there?");
    fake.agentSend(chatId, "I'll wait");
    const after = await loggedIn(fake, token);
    const login = after.frames.find((f) => f.action === "login");
    expect(login?.payload).toMatchObject({ chats: [{ chat_id: chatId, has_unread_events: true }] });
    expect(after.frames.some(push("incoming_event"))).toBe(false);
    const chat = await after.request("get_chat", { chat_id: chatId });
    const texts = (((chat.payload as Json).thread as Json).events as Json[]).map((e) => e.text);
    expect(texts.slice(-2)).toEqual(["are you still there?", "I'll wait"]);
  });

  it("refuses more than 10 pending requests per socket", async () => {
    const fake = await start();
    const { access_token: token } = await customerToken(fake);
    const client = await loggedIn(fake, token);
    fake.holdRtmResponses();
    const pending = Array.from({ length: PENDING_REQUESTS_LIMIT }, () => client.request("get_customer"));
    const refused = await client.request("get_customer");
    expect(refused).toMatchObject({ success: false, payload: { error: { type: "pending_requests_limit_reached" } } });
    fake.releaseRtmResponses();
    const answered = await Promise.all(pending);
    expect(answered.every((frame) => frame.success === true)).toBe(true);
  });

  it("sends only subscribed pushes; unsupported versions and unknown licenses are disconnected", async () => {
    const fake = await start();
    const { token, chatId } = await chatting(fake);
    const client = await rtm(fake);
    await client.request("login", { token: `Bearer ${token}`, pushes: { "3.6": ["chat_deactivated"] } });
    fake.agentSend(chatId, "not subscribed");
    fake.agentDeactivate(chatId);
    await client.waitFrame(push("chat_deactivated", chatId));
    expect(client.frames.some(push("incoming_event"))).toBe(false);

    const watcher = await loggedIn(fake, (await customerToken(fake)).access_token);
    fake.setGroupOnline(0, false);
    expect((await watcher.waitFrame(push("groups_status_updated"))).payload).toEqual({
      groups: [{ id: 0, status: "offline" }],
    });

    const old = await rtm(fake, { version: "3.1" });
    expect((await old.waitFrame(push("customer_disconnected"))).payload).toEqual({ reason: "unsupported_version" });
    const stranger = await rtm(fake, { organizationId: "00000000-0000-4000-8000-000000000000" });
    expect((await stranger.waitFrame(push("customer_disconnected"))).payload).toEqual({ reason: "license_not_found" });
    const garbage = await rtm(fake);
    garbage.send("not json");
    expect(await garbage.waitFrame((f) => f.type === "response")).toMatchObject({
      success: false,
      payload: { error: { type: "validation" } },
    });
    // Every frame is on record, in order.
    expect(
      fake.rtmFrames.filter((f) => f.direction === "in").map((f) => (f.frame as Json).action ?? f.frame),
    ).toContain("not json");
  });
});

describe("license webhooks", () => {
  async function withWebhook(
    registration: Partial<WebhookRegistration>,
    respond?: (req: RecordedRequest, res: ServerResponse, n: number) => void,
    options: FakeLiveChatOptions = {},
  ) {
    const recorder = await receiver(respond);
    const fake = await start({ webhookRetryDelaysMs: [20, 20, 20], webhookTimeoutMs: 200, ...options });
    fake.registerWebhook({
      action: "incoming_event",
      url: `${recorder.url}/webhooks/livechat`,
      secret_key: "s3cret",
      ...registration,
    });
    return { fake, recorder };
  }

  it("posts agent messages with the secret in the body; author_type agent leaves the customer's messages out", async () => {
    const { fake, recorder } = await withWebhook({
      filters: { author_type: "agent" },
      additional_data: ["chat_presence_user_ids"],
    });
    const { chatId, threadId, entityId, token } = await chatting(fake);
    await call(fake, token, "send_event", { chat_id: chatId, event: { type: "message", text: "customer text" } });
    const reply = fake.agentSend(chatId, "Anything else?");
    await fake.whenWebhooksIdle();
    const [body] = bodies(recorder.received);
    expect(recorder.received).toHaveLength(1);
    expect(recorder.received[0]?.headers["content-type"]).toBe("application/json");
    expect(body).toEqual({
      webhook_id: expect.any(String) as unknown,
      secret_key: "s3cret",
      action: "incoming_event",
      organization_id: fake.organizationId,
      payload: {
        chat_id: chatId,
        thread_id: threadId,
        event: {
          id: reply.id,
          created_at: reply.created_at,
          visibility: "all",
          type: "message",
          author_id: DEFAULT_AGENT_ID,
          text: "Anything else?",
          // Sent from the agent app: its Client ID, not ours (webhook filters tell the two apart by it).
          properties: { source: { client_id: AGENT_APP_CLIENT_ID } },
        },
      },
      additional_data: { chat_presence_user_ids: [entityId, DEFAULT_AGENT_ID] },
    });
  });

  it("retries until HTTP 200 (201 is a failure), on timeouts too, at most 3 retries", async () => {
    const { fake, recorder } = await withWebhook({}, (_req, res, n) => {
      if (n === 1) res.writeHead(500).end();
      else if (n === 2) res.writeHead(201).end();
      else if (n === 3)
        return; // never answered: the fake times out
      else res.writeHead(200).end();
    });
    const { chatId } = await chatting(fake);
    fake.agentSend(chatId, "retry me");
    await fake.whenWebhooksIdle();
    const attempts = fake.webhookAttempts.filter(
      (a) =>
        (a.body.payload as Json).event !== undefined && ((a.body.payload as Json).event as Json).text === "retry me",
    );
    expect(attempts.map((a) => a.status)).toEqual([500, 201, "timeout", 200]);
    expect(new Set(attempts.map((a) => a.delivery)).size).toBe(1);
    expect(recorder.received.length).toBeGreaterThanOrEqual(4);
  });

  it("gives up after four attempts", async () => {
    const { fake } = await withWebhook({ filters: { author_type: "agent" } }, (_req, res) => res.writeHead(503).end());
    const { chatId } = await chatting(fake);
    fake.agentSend(chatId, "nobody listens");
    await fake.whenWebhooksIdle();
    expect(fake.webhookAttempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
  });

  it("duplicates or drops deliveries on demand", async () => {
    const { fake, recorder } = await withWebhook({ filters: { author_type: "agent" } });
    const { chatId } = await chatting(fake);
    fake.duplicateNextWebhooks(1);
    const twice = fake.agentSend(chatId, "twice");
    fake.dropNextWebhooks(1);
    fake.agentSend(chatId, "never");
    const once = fake.agentSend(chatId, "once");
    await fake.whenWebhooksIdle();
    const ids = bodies(recorder.received).map((b) => ((b.payload as Json).event as Json).id);
    expect(ids.sort()).toEqual([twice.id, twice.id, once.id].sort());
  });

  it("only_my_chats leaves out chats of other clients; source_type tells the agent app from the router", async () => {
    const recorder = await receiver();
    const fake = await start();
    const url = `${recorder.url}/hook`;
    fake.registerWebhook({ action: "incoming_chat", url, secret_key: "k", filters: { only_my_chats: true } });
    fake.registerWebhook({ action: "chat_deactivated", url, secret_key: "k", filters: { source_type: ["system"] } });
    const widget = fake.startWidgetChat({ text: "from the website" });
    const mine = await chatting(fake);
    fake.agentDeactivate(mine.chatId);
    fake.routerDeactivate(widget.chatId, "inactive");
    await fake.whenWebhooksIdle();
    const received = bodies(recorder.received);
    expect(
      received.filter((b) => b.action === "incoming_chat").map((b) => ((b.payload as Json).chat as Json).id),
    ).toEqual([mine.chatId]);
    const incoming = received.find((b) => b.action === "incoming_chat");
    expect(((incoming?.payload as Json).chat as Json).properties).toEqual({ source: { client_id: fake.clientId } });
    // The router's close has no user_id; the agent's close (other_clients) is filtered out.
    expect(received.filter((b) => b.action === "chat_deactivated").map((b) => b.payload)).toEqual([
      { chat_id: widget.chatId, thread_id: widget.threadId },
    ]);
  });

  it("sends chat_transferred and user_added_to_chat with user_type; no webhook for typing or queue positions", async () => {
    const recorder = await receiver();
    const fake = await start({
      routing: "manual",
      agents: [
        { id: DEFAULT_AGENT_ID, name: "Anna Smith" },
        { id: "bob@example.org", name: "Bob Jones" },
      ],
    });
    const url = `${recorder.url}/hook`;
    for (const action of ["chat_transferred", "user_added_to_chat", "user_removed_from_chat"] as const) {
      fake.registerWebhook({ action, url, secret_key: "k" });
    }
    const { chatId, threadId } = await chatting(fake);
    fake.acceptChat(chatId);
    fake.agentTyping(chatId, true);
    fake.transferChat(chatId, { agentId: "bob@example.org" });
    await fake.whenWebhooksIdle();
    const received = bodies(recorder.received);
    expect(received.map((b) => b.action).sort()).toEqual([
      "chat_transferred",
      "user_added_to_chat",
      "user_added_to_chat",
      "user_removed_from_chat",
    ]);
    expect(received.find((b) => b.action === "chat_transferred")).toEqual({
      webhook_id: expect.any(String) as unknown,
      secret_key: "k",
      action: "chat_transferred",
      organization_id: fake.organizationId,
      payload: {
        chat_id: chatId,
        thread_id: threadId,
        requester_id: DEFAULT_AGENT_ID,
        reason: "manual",
        transferred_to: { agent_ids: ["bob@example.org"] },
      },
    });
    expect(received.filter((b) => b.action === "user_added_to_chat").map((b) => (b.payload as Json).user_type)).toEqual(
      ["agent", "agent"],
    );
  });

  it("sends customer_session_fields_updated per active chat and events_marked_as_seen", async () => {
    const recorder = await receiver();
    const fake = await start();
    const url = `${recorder.url}/hook`;
    fake.registerWebhook({ action: "customer_session_fields_updated", url, secret_key: "k" });
    fake.registerWebhook({ action: "events_marked_as_seen", url, secret_key: "k" });
    const { token, entityId, chatId, threadId } = await chatting(fake);
    await call(fake, token, "set_customer_session_fields", { session_fields: [{ channel: "sms" }] });
    await call(fake, token, "mark_events_as_seen", { chat_id: chatId, seen_up_to: "2030-01-01T00:00:00.000000Z" });
    await call(fake, token, "deactivate_chat", { id: chatId });
    // No active chat any more: no webhook.
    await call(fake, token, "set_customer_session_fields", { session_fields: [{ channel: "web" }] });
    await fake.whenWebhooksIdle();
    expect(bodies(recorder.received).map((b) => [b.action, b.payload])).toEqual([
      [
        "customer_session_fields_updated",
        { id: entityId, active_chat: { chat_id: chatId, thread_id: threadId }, session_fields: [{ channel: "sms" }] },
      ],
      ["events_marked_as_seen", { user_id: entityId, chat_id: chatId, seen_up_to: "2030-01-01T00:00:00.000000Z" }],
    ]);
  });

  it("enforces Register Webhook's rules", async () => {
    const fake = await start();
    const base = { url: "http://127.0.0.1:9/hook", secret_key: "k" };
    expect(() =>
      fake.registerWebhook({ ...base, action: "chat_deactivated", filters: { author_type: "agent" } }),
    ).toThrow(/author_type/);
    expect(() =>
      fake.registerWebhook({ ...base, action: "incoming_event", url: `http://x/${"a".repeat(500)}` }),
    ).toThrow(/500/);
    for (let i = 0; i < 3; i += 1) fake.registerWebhook({ ...base, action: "incoming_event" });
    expect(() => fake.registerWebhook({ ...base, action: "incoming_event" })).toThrow(/limit_reached/);
  });
});
