import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Ack, ConversationInfo, EndAck, ErrorBody, ErrorCode, InitResponse, OkAck } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { connect, nextEvent, postJson, request } from "../helpers/socket.js";

type HttpResult = Awaited<ReturnType<typeof postJson>>;

/** One gateway for a `describe`, closed after it; sockets opened through it are closed after each test. */
function useGateway(overrides: Record<string, string> = {}) {
  let app: TestApp | undefined;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    app = await startTestApp(overrides);
  });
  afterAll(async () => {
    await app?.close();
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });
  const gateway = (): TestApp => {
    if (!app) throw new Error("gateway not started");
    return app;
  };

  const post = (body: unknown, headers: Record<string, string> = {}): Promise<HttpResult> =>
    postJson(`${gateway().url}/api/customer/init`, body, headers);

  const init = async (body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<InitResponse> => {
    const res = await post(body, headers);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as InitResponse;
  };

  const open = async (): Promise<Socket> => {
    const socket = await connect(gateway().url);
    sockets.push(socket);
    return socket;
  };

  /** A silent observer (supervisor) of the conversation: what the conversation looks like right now. */
  const inspect = async (conversationId: string): Promise<ConversationInfo> => {
    const socket = await connect(gateway().url, { apiKey: gateway().apiKey });
    sockets.push(socket);
    const info = nextEvent<ConversationInfo>(socket, "conversationInfo");
    const ack = await request(socket, "joinConversation", {
      conversationId,
      id: "sup-1",
      name: "Hina",
      role: "supervisor",
    });
    expect(ack).toEqual({ ok: true });
    return info;
  };

  /** Ends the conversation as its customer. */
  const end = async (conversation: InitResponse): Promise<void> => {
    const socket = await open();
    const joined = await request<Ack<OkAck>>(socket, "joinConversation", {
      conversationId: conversation.conversationId,
      id: conversation.participant.id,
      name: conversation.participant.name,
      token: conversation.token,
    });
    expect(joined).toEqual({ ok: true });
    const ended = await request<Ack<EndAck>>(socket, "endConversation", {
      conversationId: conversation.conversationId,
    });
    expect(ended).toEqual({ ok: true });
  };

  return { gateway, post, init, inspect, end, open };
}

/** Asserts an HTTP error: status, JSON `{ error: { code, message } }`, and a `details.fields` entry for `path`. */
function expectHttpError(res: HttpResult, status: number, code: ErrorCode, path?: string): void {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(res.body).toMatchObject({ error: { code } });
  const { error } = res.body as ErrorBody;
  expect(typeof error.message).toBe("string");
  expect(error.message.length).toBeGreaterThan(0);
  if (path !== undefined) {
    const fields = (error.details?.fields ?? []) as { path: string; message: string }[];
    expect(fields.map((field) => field.path)).toContain(path);
  }
}

let unique = 0;
const nextRef = (): string => `+9230012${String(++unique).padStart(5, "0")}`;

describe("POST /api/customer/init", () => {
  const { post, init, inspect, gateway } = useGateway({ MAX_TEXT_LENGTH: "300" });

  it("starts a conversation, hands it to the built-in desk and answers with a token for it", async () => {
    const before = Date.now();
    const res = await post({
      firstName: "Sara",
      lastName: "Khan",
      email: "sara@example.com",
      phone: "+92 300 1234567",
      channel: "web",
      subject: "billing",
      url: "https://shop.example.com/checkout",
      comment: "Card declined twice",
      requestId: "9b2f3c1e-4d5a-4b6c-8d7e-0f1a2b3c4d5e",
      timestamp: "2026-11-21T10:00:00.000Z",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = res.body as InitResponse;
    expect(Object.keys(body).sort()).toEqual(["conversationId", "participant", "requestId", "timestamp", "token"]);
    expect(body.conversationId).toMatch(/^c_/);
    expect(body.participant.name).toBe("Sara Khan");
    expect(body.participant.id.length).toBeGreaterThan(0);
    expect(body.requestId).toBe("9b2f3c1e-4d5a-4b6c-8d7e-0f1a2b3c4d5e");
    // At least 128 random bits: 22 base64url characters or more.
    expect(body.token).toMatch(/^[\w-]{22,}$/);
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    expect(Date.parse(body.timestamp)).toBeGreaterThanOrEqual(before - 1000);

    const info = await inspect(body.conversationId);
    expect(info.conversation).toMatchObject({
      id: body.conversationId,
      channel: "web",
      subject: "billing",
      language: "en",
      state: "queued",
      customer: body.participant,
    });
    expect(info.messages).toHaveLength(1);
    expect(info.messages[0]).toMatchObject({
      type: "ActivityMessage",
      activityType: "handOff",
      seq: 1,
      conversationId: body.conversationId,
      info: { desk: "socket", subject: "billing" },
    });
  });

  it("accepts the capitalised spellings and the reqestId alias", async () => {
    const body = await init(
      {
        FirstName: "Bilal",
        LastName: "Ahmed",
        Channel: "WhatsApp",
        RefId: nextRef(),
        Language: "ur-PK",
        Subject: "sales",
        reqestId: "req-capitalised-1",
      },
      { authorization: `Bearer ${gateway().apiKey}` },
    );
    expect(body.participant.name).toBe("Bilal Ahmed");
    expect(body.requestId).toBe("req-capitalised-1");
    const info = await inspect(body.conversationId);
    expect(info.conversation).toMatchObject({ channel: "whatsapp", language: "ur-PK", subject: "sales" });

    const again = await init(
      { firstName: "Bilal", channel: "web", email: "b@example.com", RequestId: "req-capitalised-1" },
      { authorization: `Bearer ${gateway().apiKey}` },
    );
    expect(again.conversationId).toBe(body.conversationId);
  });

  it("refuses two spellings of one field that disagree", async () => {
    expectHttpError(
      await post({ firstName: "Sara", FirstName: "Zara", channel: "web", email: "s@example.com" }),
      400,
      "invalid_payload",
      "firstName",
    );
  });

  it("needs one of refId, phone or email", async () => {
    expectHttpError(await post({ firstName: "Sara", channel: "web" }), 400, "invalid_payload", "refId");
    expect((await post({ firstName: "Sara", channel: "web", refId: nextRef() })).status).toBe(200);
    expect((await post({ firstName: "Sara", channel: "web", phone: "+923001234567" })).status).toBe(200);
    expect((await post({ firstName: "Sara", channel: "web", email: "sara@example.com" })).status).toBe(200);
  });

  it("refuses missing required fields and malformed values, naming each field", async () => {
    const valid = { firstName: "Sara", channel: "web", email: "sara@example.com" };
    expectHttpError(await post({ ...valid, firstName: undefined }), 400, "invalid_payload", "firstName");
    expectHttpError(await post({ ...valid, firstName: "   " }), 400, "invalid_payload", "firstName");
    expectHttpError(await post({ ...valid, channel: undefined }), 400, "invalid_payload", "channel");
    expectHttpError(await post({ ...valid, email: "not-an-email" }), 400, "invalid_payload", "email");
    expectHttpError(await post({ ...valid, language: "english please" }), 400, "invalid_payload", "language");
    expectHttpError(await post({ ...valid, url: "javascript:alert(1)" }), 400, "invalid_payload", "url");
    expectHttpError(await post({ ...valid, timestamp: "yesterday" }), 400, "invalid_payload", "timestamp");
  });

  it("refuses text longer than MAX_TEXT_LENGTH", async () => {
    const valid = { firstName: "Sara", channel: "web", email: "sara@example.com" };
    expectHttpError(await post({ ...valid, comment: "x".repeat(301) }), 400, "invalid_payload", "comment");
    expect((await post({ ...valid, comment: "x".repeat(300) })).status).toBe(200);
  });

  it("returns the same conversation and token for a repeated request (same requestId, same request)", async () => {
    const body = { firstName: "Sara", channel: "web", email: "sara@example.com", requestId: crypto.randomUUID() };
    const first = await init(body);
    const second = await init(body);
    expect(second.conversationId).toBe(first.conversationId);
    expect(second.token).toBe(first.token);
    expect(second.participant).toEqual(first.participant);

    // A server-chosen requestId works the same way.
    const generated = await init({ firstName: "Sara", channel: "web", email: "sara@example.com" });
    expect(generated.requestId.length).toBeGreaterThan(0);
    expect(generated.conversationId).not.toBe(first.conversationId);
    const repeated = await init({
      firstName: "Sara",
      channel: "web",
      email: "sara@example.com",
      requestId: generated.requestId,
    });
    expect(repeated.conversationId).toBe(generated.conversationId);

    // Nothing was recorded twice: the conversation still holds its one hand-off.
    const info = await inspect(first.conversationId);
    expect(info.messages.map((m) => (m.type === "ActivityMessage" ? m.activityType : m.type))).toEqual(["handOff"]);
  });

  it("never hands a conversation to an anonymous caller who reuses its requestId for another request", async () => {
    const requestId = crypto.randomUUID();
    const victim = await init({ firstName: "Sara", channel: "web", email: "sara@example.com", requestId });
    for (const other of [
      { firstName: "Mallory", channel: "web", email: "sara@example.com" },
      { firstName: "Sara", channel: "web", email: "mallory@example.com" },
      { firstName: "Sara", lastName: "Khan", channel: "web", email: "sara@example.com" },
      { firstName: "Sara", channel: "web", email: "sara@example.com", phone: "+923001234567" },
      { firstName: "Sara", channel: "web", email: "sara@example.com", refId: "account-1" },
    ]) {
      const attempt = await post({ ...other, requestId });
      expectHttpError(attempt, 409, "conflict");
      expect(JSON.stringify(attempt.body)).not.toContain(victim.token);
    }
    // An API-key caller (a back office retrying its own call) gets the conversation of its requestId.
    const backOffice = await init(
      { firstName: "Someone", channel: "web", email: "else@example.com", requestId },
      { authorization: `Bearer ${gateway().apiKey}` },
    );
    expect(backOffice.conversationId).toBe(victim.conversationId);
  });

  it("takes only unguessable requestIds from anonymous callers; any from API-key callers", async () => {
    const body = { firstName: "Sara", channel: "web", email: "sara@example.com" };
    const notRandom = ["1", "req-repeat-1", "x".repeat(40), "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "r_short"];
    for (const requestId of notRandom) {
      expectHttpError(await post({ ...body, requestId }), 400, "invalid_payload", "requestId");
    }
    for (const requestId of [crypto.randomUUID(), "r_0123456789abcdefABCD-_"]) {
      expect((await post({ ...body, requestId })).status).toBe(200);
    }
    const keyed = await post({ ...body, requestId: "order-8812" }, { authorization: `Bearer ${gateway().apiKey}` });
    expect(keyed.status).toBe(200);
  });

  it("opens conversations on connector channels for API-key callers only (no texts to unverified numbers)", async () => {
    const sms = { firstName: "Bilal", channel: "sms", refId: "+923001234567" };
    expectHttpError(await post(sms), 403, "forbidden");
    expectHttpError(await post(sms, { authorization: "Bearer wrong-key" }), 403, "forbidden");
    expect((await post(sms, { authorization: `Bearer ${gateway().apiKey}` })).status).toBe(200);
    // The web widget's customers (a direct channel) open their own.
    expect((await post({ firstName: "Sara", channel: "web", email: "sara@example.com" })).status).toBe(200);
  });

  it("gives each new requestId its own conversation and token", async () => {
    const a = await init({ firstName: "Sara", channel: "web", email: "sara@example.com" });
    const b = await init({ firstName: "Sara", channel: "web", email: "sara@example.com" });
    expect(b.conversationId).not.toBe(a.conversationId);
    expect(b.token).not.toBe(a.token);
  });
});

describe("POST /api/customer/init: channel + refId", () => {
  const { gateway, post, init, end, open } = useGateway();

  it("returns the open conversation of a channel+refId to an API-key caller, and a new one once it has ended", async () => {
    const refId = nextRef();
    const connector = { authorization: `Bearer ${gateway().apiKey}` };
    const first = await init({ firstName: "Bilal", channel: "web", refId });
    const same = await init({ firstName: "Bilal", channel: "web", refId }, connector);
    expect(same.conversationId).toBe(first.conversationId);
    expect(same.token).toBe(first.token);

    const otherChannel = await init({ firstName: "Bilal", channel: "sms", refId }, connector);
    expect(otherChannel.conversationId).not.toBe(first.conversationId);

    await end(first);
    const fresh = await init({ firstName: "Bilal", channel: "web", refId });
    expect(fresh.conversationId).not.toBe(first.conversationId);
    expect(fresh.token).not.toBe(first.token);
    const freshAgain = await init({ firstName: "Bilal", channel: "web", refId }, connector);
    expect(freshAgain.conversationId).toBe(fresh.conversationId);
  });

  it("never hands an open conversation's token to an anonymous caller who only knows the refId", async () => {
    const refId = nextRef();
    const victim = await init({ firstName: "Sara", channel: "web", refId });
    const attempt = await post({ firstName: "Mallory", channel: "web", refId });
    expectHttpError(attempt, 409, "conflict");
    expect(JSON.stringify(attempt.body)).not.toContain(victim.token);
    // A wrong or missing API key is anonymous too.
    expectHttpError(
      await post({ firstName: "Mallory", channel: "web", refId }, { authorization: "Bearer nope" }),
      409,
      "conflict",
    );
  });

  it("makes the token grant its own conversation only", async () => {
    const mine = await init({ firstName: "Sara", channel: "web", refId: nextRef() });
    const theirs = await init({ firstName: "Zara", channel: "web", refId: nextRef() });
    const socket = await open();
    const join = (token: string) =>
      request<Ack<OkAck>>(socket, "joinConversation", {
        conversationId: mine.conversationId,
        id: mine.participant.id,
        name: mine.participant.name,
        token,
      });
    expect(await join(theirs.token)).toMatchObject({ ok: false, error: { code: "unauthorized" } });
    expect(await join(mine.token)).toEqual({ ok: true });
  });
});

describe("HTTP errors", () => {
  const { gateway, post } = useGateway({ MAX_PAYLOAD_BYTES: "20000" });

  it("answers malformed JSON with 400 invalid_payload", async () => {
    expectHttpError(await post('{"firstName": "Sara", '), 400, "invalid_payload");
    expectHttpError(await post("[1, 2, 3]"), 400, "invalid_payload");
  });

  it("answers a body above MAX_PAYLOAD_BYTES with 413 payload_too_large", async () => {
    const res = await post({ firstName: "Sara", channel: "web", email: "s@example.com", comment: "x".repeat(30_000) });
    expectHttpError(res, 413, "payload_too_large");
  });

  it("answers an unknown route with a JSON 404", async () => {
    const res = await fetch(`${gateway().url}/api/customer/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({ error: { code: "not_found", message: expect.any(String) as string } });
    expectHttpError(await postJson(`${gateway().url}/api/nothing/here`, {}), 404, "not_found");
  });
});

describe("POST /api/customer/init: rate limit", () => {
  const { post, gateway } = useGateway({ INIT_RATE_LIMIT: "2", INIT_API_KEY_RATE_LIMIT: "4" });

  it("answers the third call of a minute from one IP with 429 rate_limited and Retry-After", async () => {
    const body = { firstName: "Sara", channel: "web", email: "sara@example.com" };
    expect((await post(body)).status).toBe(200);
    expect((await post(body)).status).toBe(200);
    const limited = await post(body);
    expectHttpError(limited, 429, "rate_limited");
    const retryAfter = limited.headers.get("retry-after");
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);

    // Per client IP: another client (behind the trusted local proxy) is not limited.
    expect((await post(body, { "x-forwarded-for": "203.0.113.7" })).status).toBe(200);
  });

  it("counts API-key callers by key, with their own higher limit, not by address", async () => {
    const key = { authorization: `Bearer ${gateway().apiKey}`, "x-forwarded-for": "198.51.100.9" };
    const body = { firstName: "Bilal", channel: "sms" };
    // The address has used up its anonymous allowance; the key has its own.
    for (let i = 0; i < 3; i++)
      expect(
        (await post({ firstName: "A", channel: "web", email: "a@example.com" }, { "x-forwarded-for": "198.51.100.9" }))
          .status,
      ).toBe(i < 2 ? 200 : 429);
    for (let i = 0; i < 4; i++) expect((await post({ ...body, refId: `+9230000000${i}` }, key)).status).toBe(200);
    const limited = await post({ ...body, refId: "+92300000009" }, key);
    expectHttpError(limited, 429, "rate_limited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});

describe("POST /api/customer/init: ALLOWED_CHANNELS", () => {
  const { post, gateway } = useGateway({ ALLOWED_CHANNELS: "web,sms" });

  it("accepts the listed channels and refuses invented ones, naming the field", async () => {
    const apiKey = { authorization: `Bearer ${gateway().apiKey}` };
    expect((await post({ firstName: "A", channel: "sms", refId: "+92300" }, apiKey)).status).toBe(200);
    expectHttpError(
      await post({ firstName: "A", channel: "made-up", refId: "+92300" }),
      400,
      "invalid_payload",
      "channel",
    );
  });
});
