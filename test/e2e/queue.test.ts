import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ConversationListSchema,
  ConversationUpdatedSchema,
  ErrorBodySchema,
  InitResponseSchema,
  type ConversationList,
  type ConversationSummary,
  type ConversationUpdated,
  type ErrorCode,
  type InitResponse,
} from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { connect, postJson, request, EVENT_TIMEOUT_MS } from "../helpers/socket.js";

/**
 * The socket desk's queue: `GET /api/conversations` and the `conversationUpdated` feed of `subscribeConversations`,
 * against the real gateway. The gateway's clock is the test's, one second on per step, so that "newest first" never
 * depends on two steps falling in one millisecond.
 */

let app: TestApp;
let now = Date.UTC(2026, 10, 21, 10, 0, 0);
const sockets: Socket[] = [];
let counter = 0;

beforeAll(async () => {
  app = await startTestApp({}, { clock: () => new Date(now) });
});
afterAll(async () => {
  await app.close();
});
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

/** A subject of this test's own: the gateway is shared, so each test filters on what it made. */
const freshSubject = (): string => `queue-${++counter}`;
const tick = (): void => {
  now += 1_000;
};

async function open(apiKey?: string): Promise<Socket> {
  const socket = await connect(app.url, apiKey === undefined ? {} : { apiKey });
  sockets.push(socket);
  return socket;
}

/** Starts a conversation: a web customer's own, or on any other channel through the API key. */
async function init(subject: string, body: Record<string, string> = {}): Promise<InitResponse> {
  tick();
  counter += 1;
  const channel = body.channel ?? "web";
  const res = await postJson(
    `${app.url}/api/customer/init`,
    { firstName: "Sara", lastName: `Khan ${counter}`, email: `sara.${counter}@example.com`, channel, subject, ...body },
    channel === "web" ? {} : { authorization: `Bearer ${app.apiKey}` },
  );
  expect(res.status).toBe(200);
  return InitResponseSchema.parse(res.body);
}

/** An agent application's socket, joined to a conversation as its agent (which takes it). */
async function agentTakes(conversationId: string, agent = { id: "agent-1", name: "Ali" }): Promise<Socket> {
  tick();
  const socket = await open(app.apiKey);
  expect(await request(socket, "joinConversation", { conversationId, ...agent, role: "agent" })).toEqual({ ok: true });
  return socket;
}

/** `GET /api/conversations` with the API key, another credential, or none (`null`). */
async function list(query: string, credential: string | null = app.apiKey): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${app.url}/api/conversations${query}`, {
    headers: credential === null ? {} : { authorization: `Bearer ${credential}` },
  });
  return { status: response.status, body: await response.json() };
}

async function listed(query: string): Promise<ConversationList> {
  const { status, body } = await list(query);
  expect(status).toBe(200);
  return ConversationListSchema.strict().parse(body);
}

function expectRefused(answer: { status: number; body: unknown }, status: number, code: ErrorCode): void {
  expect(answer.status).toBe(status);
  expect(ErrorBodySchema.parse(answer.body).error.code).toBe(code);
}

/** An API-key socket subscribed to the queue, with every update it heard. */
async function subscriber(filter: Record<string, unknown> = {}) {
  const socket = await open(app.apiKey);
  const updates: ConversationUpdated[] = [];
  socket.on("conversationUpdated", (update: unknown) => updates.push(ConversationUpdatedSchema.strict().parse(update)));
  expect(await request(socket, "subscribeConversations", filter)).toEqual({ ok: true });
  return {
    socket,
    updates,
    /** The updates of one conversation, once there are `count` of them. */
    async of(conversationId: string, count: number): Promise<ConversationUpdated[]> {
      const mine = () => updates.filter((update) => update.conversation.id === conversationId);
      await expect.poll(() => mine().length, { timeout: EVENT_TIMEOUT_MS }).toBeGreaterThanOrEqual(count);
      return mine();
    },
    /**
     * A round trip on this socket: whatever the server emitted to it before arrives before the answer. After another
     * subscriber heard of a change, this tells that this one was not sent it.
     */
    async settled(): Promise<ConversationUpdated[]> {
      expect(await request(socket, "noSuchEvent")).toMatchObject({ ok: false, error: { code: "not_found" } });
      return updates;
    },
  };
}

/** The (state before → state after) steps of updates. */
const steps = (updates: readonly ConversationUpdated[]): string[] =>
  updates.map((update) => `${update.previousState ?? "new"}→${update.conversation.state}`);

describe("GET /api/conversations", () => {
  it("needs an API key: 401 without one, with a wrong one, or with a customer's token", async () => {
    const { token } = await init(freshSubject());
    expectRefused(await list("", null), 401, "unauthorized");
    expectRefused(await list("", "not-a-key"), 401, "unauthorized");
    expectRefused(await list("", token), 401, "unauthorized");
  });

  it("refuses a bad filter, limit or cursor, and an unknown parameter, with invalid_payload", async () => {
    for (const query of [
      "?state=ended",
      "?state=queued,waiting",
      "?limit=0",
      "?limit=201",
      "?limit=ten",
      "?limit=1&limit=2",
      "?channel=We%20b",
      "?cursor=not-a-cursor",
      "?states=queued",
    ]) {
      expectRefused(await list(query), 400, "invalid_payload");
    }
    // A cursor of the right form whose content was changed is refused too, not read as some other position.
    const subject = freshSubject();
    await init(subject);
    await init(subject);
    const { nextCursor } = await listed(`?subject=${subject}&limit=1`);
    expect(nextCursor).toBeDefined();
    const tampered = Buffer.from(`x${Buffer.from(nextCursor ?? "", "base64url").toString()}`).toString("base64url");
    expectRefused(await list(`?subject=${subject}&cursor=${tampered}`), 400, "invalid_payload");
  });

  it("lists open conversations newest first with their customer, state, desk, agent and last message time", async () => {
    const subject = freshSubject();
    const first = await init(subject);
    const second = await init(subject);
    const third = await init(subject);
    await agentTakes(second.conversationId);

    const all = await listed(`?subject=${subject}`);
    expect(all.nextCursor).toBeUndefined();
    expect(all.conversations.map((c) => c.id)).toEqual([
      second.conversationId,
      third.conversationId,
      first.conversationId,
    ]);
    const [taken, waiting, oldest] = all.conversations as [
      ConversationSummary,
      ConversationSummary,
      ConversationSummary,
    ];
    expect(taken).toEqual({
      id: second.conversationId,
      channel: "web",
      subject,
      language: "en",
      state: "active",
      customer: second.participant,
      desk: "socket",
      agent: { id: "agent-1", name: "Ali" },
      createdAt: new Date(now - 2_000).toISOString(),
      lastMessageAt: new Date(now).toISOString(),
      // The hand-off, then the agent joining.
      lastSeq: 2,
    });
    expect(waiting).toMatchObject({ state: "queued", lastSeq: 1, lastMessageAt: new Date(now - 1_000).toISOString() });
    expect(waiting).not.toHaveProperty("agent");
    expect(oldest.customer).toEqual(first.participant);

    expect((await listed(`?subject=${subject}&state=queued`)).conversations.map((c) => c.id)).toEqual([
      third.conversationId,
      first.conversationId,
    ]);
    expect((await listed(`?subject=${subject}&state=active&state=bot`)).conversations.map((c) => c.id)).toEqual([
      second.conversationId,
    ]);

    // A message moves its conversation to the top; an ended one leaves the list.
    tick();
    const customer = await open();
    await request(customer, "joinConversation", {
      conversationId: first.conversationId,
      id: first.participant.id,
      name: "Sara",
      token: first.token,
    });
    expect((await listed(`?subject=${subject}`)).conversations[0]?.id).toBe(first.conversationId);
    tick();
    expect(await request(customer, "endConversation", { conversationId: first.conversationId })).toEqual({ ok: true });
    expect((await listed(`?subject=${subject}&state=`)).conversations.map((c) => c.id)).toEqual([
      second.conversationId,
      third.conversationId,
    ]);
  });

  it("filters by channel", async () => {
    const subject = freshSubject();
    const web = await init(subject);
    const sms = await init(subject, { channel: "sms", refId: `+9230000${counter}` });
    expect((await listed(`?subject=${subject}&channel=sms`)).conversations.map((c) => c.id)).toEqual([
      sms.conversationId,
    ]);
    expect((await listed(`?subject=${subject}&channel=WEB`)).conversations.map((c) => c.id)).toEqual([
      web.conversationId,
    ]);
    expect((await listed(`?subject=${subject}&channel=whatsapp`)).conversations).toEqual([]);
  });

  it("pages newest first: each next page from the previous page's cursor, every conversation once", async () => {
    const subject = freshSubject();
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.unshift((await init(subject)).conversationId);
    const seen: string[] = [];
    let page = await listed(`?subject=${subject}&limit=3`);
    const sizes = [page.conversations.length];
    seen.push(...page.conversations.map((c) => c.id));
    while (page.nextCursor !== undefined) {
      page = await listed(`?subject=${subject}&limit=3&cursor=${page.nextCursor}`);
      sizes.push(page.conversations.length);
      seen.push(...page.conversations.map((c) => c.id));
    }
    expect(seen).toEqual(made);
    expect(sizes).toEqual([3, 3, 1]);
  });
});

describe("subscribeConversations and conversationUpdated", () => {
  it("tells a subscriber when a conversation is created, taken, queued again, and ended, with its summary", async () => {
    const subject = freshSubject();
    const queue = await subscriber({ subject });
    const { conversationId, participant } = await init(subject);
    const created = (await queue.of(conversationId, 1))[0];
    expect(created).toEqual({
      conversation: {
        id: conversationId,
        channel: "web",
        subject,
        language: "en",
        state: "queued",
        customer: participant,
        desk: "socket",
        createdAt: new Date(now).toISOString(),
        lastMessageAt: new Date(now).toISOString(),
        lastSeq: 1,
      },
    });

    const agent = await agentTakes(conversationId);
    const [, taken] = await queue.of(conversationId, 2);
    expect(taken).toMatchObject({
      previousState: "queued",
      conversation: { state: "active", agent: { id: "agent-1", name: "Ali" }, lastSeq: 2 },
    });

    tick();
    expect(await request(agent, "leaveConversation", { conversationId })).toEqual({ ok: true });
    const [, , queued] = await queue.of(conversationId, 3);
    expect(queued).toMatchObject({ previousState: "active", conversation: { state: "queued" } });
    expect(queued?.conversation).not.toHaveProperty("agent");

    const other = await agentTakes(conversationId, { id: "agent-2", name: "Bea" });
    tick();
    expect(await request(other, "endConversation", { conversationId, reason: "resolved" })).toEqual({ ok: true });
    const updates = await queue.of(conversationId, 5);
    expect(steps(updates)).toEqual(["new→queued", "queued→active", "active→queued", "queued→active", "active→ended"]);
    expect(updates[4]?.conversation).toMatchObject({ state: "ended", lastMessageAt: new Date(now).toISOString() });
    // Each later than the one before.
    expect(updates.map((update) => update.conversation.lastSeq)).toEqual(
      [...updates.map((u) => u.conversation.lastSeq)].sort((a, b) => a - b),
    );
  });

  it("sends each subscriber what its filter matches: states (entering or leaving them), channel and subject", async () => {
    const subject = freshSubject();
    const everything = await subscriber({ subject });
    const waiting = await subscriber({ subject, states: ["queued"] });
    const sms = await subscriber({ channel: "sms", subject });
    const elsewhere = await subscriber({ subject: freshSubject() });

    const web = await init(subject);
    await everything.of(web.conversationId, 1);
    await agentTakes(web.conversationId);
    await everything.of(web.conversationId, 2);
    tick();
    const customer = await open();
    await request(customer, "joinConversation", {
      conversationId: web.conversationId,
      id: web.participant.id,
      name: "Sara",
      token: web.token,
    });
    expect(await request(customer, "endConversation", { conversationId: web.conversationId })).toEqual({ ok: true });
    await everything.of(web.conversationId, 3);

    const text = await init(subject, { channel: "sms", refId: `+9231111${counter}` });
    await everything.of(text.conversationId, 1);

    // Queued: the creation, and the take that moved it out of the queue; not the end of the active conversation.
    expect(steps(await waiting.settled())).toEqual(["new→queued", "queued→active", "new→queued"]);
    expect((await sms.settled()).map((update) => update.conversation.id)).toEqual([text.conversationId]);
    expect(await elsewhere.settled()).toEqual([]);
  });

  it("replaces the filter when a socket subscribes again, and stops with unsubscribeConversations", async () => {
    const [first, second] = [freshSubject(), freshSubject()];
    const witness = await subscriber({});
    const switching = await subscriber({ subject: first });
    expect(await request(switching.socket, "subscribeConversations", { subject: second })).toEqual({ ok: true });
    const leaving = await subscriber({});
    expect(await request(leaving.socket, "unsubscribeConversations", {})).toEqual({ ok: true });
    // Without a payload too, and when not subscribed.
    expect(await request(leaving.socket, "unsubscribeConversations")).toEqual({ ok: true });
    const bystander = await open(app.apiKey);
    const heard: unknown[] = [];
    bystander.on("conversationUpdated", (update: unknown) => heard.push(update));

    const one = await init(first);
    const two = await init(second);
    await witness.of(two.conversationId, 1);
    expect((await switching.settled()).map((update) => update.conversation.id)).toEqual([two.conversationId]);
    expect(await leaving.settled()).toEqual([]);
    expect(await request(bystander, "noSuchEvent")).toMatchObject({ ok: false });
    expect(heard).toEqual([]);
    expect((await witness.of(one.conversationId, 1))[0]?.conversation.subject).toBe(first);
  });

  it("is for API-key sockets: a customer's socket may not subscribe; a bad filter is refused", async () => {
    const customer = await open();
    expect(await request(customer, "subscribeConversations", {})).toMatchObject({
      ok: false,
      error: { code: "unauthorized" },
    });
    const agent = await open(app.apiKey);
    for (const filter of [{ states: ["ended"] }, { states: [] }, { state: "queued" }, { subject: "" }, "queued"]) {
      expect(await request(agent, "subscribeConversations", filter)).toMatchObject({
        ok: false,
        error: { code: "invalid_payload" },
      });
    }
  });

  it("keeps a registered connector to its own channel", async () => {
    const subject = freshSubject();
    const connector = await open(app.apiKey);
    const updates: ConversationUpdated[] = [];
    connector.on("conversationUpdated", (update: ConversationUpdated) => updates.push(update));
    await request(connector, "registerConnector", { id: "sms", name: "SMS bridge", channel: "sms" });
    expect(await request(connector, "subscribeConversations", { channel: "web" })).toMatchObject({
      ok: false,
      error: { code: "forbidden" },
    });
    expect(await request(connector, "subscribeConversations", { subject })).toEqual({ ok: true });
    const witness = await subscriber({ subject });
    await init(subject);
    const text = await init(subject, { channel: "sms", refId: `+9232222${counter}` });
    await witness.of(text.conversationId, 1);
    expect(await request(connector, "noSuchEvent")).toMatchObject({ ok: false });
    expect(updates.map((update) => update.conversation.id)).toEqual([text.conversationId]);
  });
});
