import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { ChatMessage } from "../../protocol/index.js";
import { RocketChatDesk, mintVisitorToken } from "../../server/adapters/rocketchat/index.js";
import { rocketChatMessageId } from "../../server/adapters/rocketchat/mapper.js";
import { RocketChatError } from "../../server/adapters/rocketchat/client.js";
import type { Conversation } from "../../server/core/conversation.js";
import { DeskSessionClosedError, NoAgentAvailableError } from "../../server/core/desk.js";
import {
  DEFAULT_FAKE_USER,
  startFakeRocketChat,
  type FakeRocketChat,
  type FakeRocketChatOptions,
} from "../fakes/rocketchat/index.js";
import { conversationFixture } from "./store.contract.js";

const fakes: FakeRocketChat[] = [];
afterEach(async () => {
  for (const fake of fakes.splice(0)) await fake.close();
});

async function setup(
  options: FakeRocketChatOptions = {},
  env: {
    department?: string;
    credentials?: boolean;
    observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
  } = {},
) {
  const fake = await startFakeRocketChat(options);
  fakes.push(fake);
  const desk = new RocketChatDesk({
    config: {
      ROCKETCHAT_URL: fake.url,
      ROCKETCHAT_TIMEOUT_MS: 1_000,
      ...(env.department === undefined ? {} : { ROCKETCHAT_DEPARTMENT: env.department }),
      ...(env.credentials
        ? { ROCKETCHAT_USER_ID: DEFAULT_FAKE_USER.userId, ROCKETCHAT_AUTH_TOKEN: DEFAULT_FAKE_USER.authToken }
        : {}),
    },
    logger: pino({ level: "silent" }),
    fetchHosts: [],
    maxFileBytes: 1_000_000,
    ...(env.observe === undefined ? {} : { observe: env.observe }),
  });
  return { fake, desk };
}

const conversation = (overrides: Partial<Conversation> = {}): Conversation =>
  conversationFixture({ subject: "", desk: { desk: "rocketchat", ids: mintVisitorToken() }, ...overrides });

/** The conversation as the outbox sees it after open succeeded. */
const opened = (c: Conversation, ids: Record<string, string>): Conversation => ({
  ...c,
  desk: { ...c.desk, ids: { ...c.desk.ids, ...ids }, openedAt: new Date().toISOString() },
});

let seq = 0;
const chat = (c: Conversation, text: string, overrides: Partial<ChatMessage> = {}): ChatMessage => ({
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
});

const texts = (fake: FakeRocketChat, rid: string) =>
  fake
    .messages(rid)
    .filter((m) => m.t === undefined)
    .map((m) => m.msg);

describe("Rocket.Chat desk against the fake Rocket.Chat", () => {
  it("opens one room per conversation, assigned at once under auto routing, with the agent's display name", async () => {
    const { fake, desk } = await setup();
    const c = conversation();
    const session = await desk.open(c);
    expect(session.ids.visitorToken).toBe(c.desk.ids.visitorToken);
    expect(fake.room(session.ids.rid ?? "")?.open).toBe(true);
    expect(session.agent).toEqual({ id: "rocketchat:agent1", name: "Jane Doe" });
    // Retried after an unknown outcome: the same room, not a second one.
    expect((await desk.open(c)).ids.rid).toBe(session.ids.rid);
    expect(fake.rooms()).toHaveLength(1);
    expect(fake.visitors()[0]).toMatchObject({ token: c.desk.ids.visitorToken, name: "Sara Khan" });
  });

  it("leaves the room queued, without an agent, under manual routing", async () => {
    const { desk } = await setup({ routing: "manual" });
    const session = await desk.open(conversation());
    expect(session.ids.rid).toBeTruthy();
    expect(session.agent).toBeUndefined();
  });

  it("reports no agent online, then checks the cheap config route until one is, without spending the room budget", async () => {
    const { fake, desk } = await setup();
    fake.setAgentOnline("agent1", false);
    const c = conversation();
    await expect(desk.open(c)).rejects.toBeInstanceOf(NoAgentAvailableError);
    const roomCalls = () => fake.requests.filter((r) => r.path.startsWith("/api/v1/livechat/room")).length;
    const before = roomCalls();
    await expect(desk.open(c)).rejects.toBeInstanceOf(NoAgentAvailableError);
    expect(roomCalls()).toBe(before);
    expect(fake.requests.some((r) => r.path.startsWith("/api/v1/livechat/config"))).toBe(true);
    fake.setAgentOnline("agent1", true);
    expect((await desk.open(c)).agent?.name).toBe("Jane Doe");
  });

  it("routes by subject as the department, and falls back to ROCKETCHAT_DEPARTMENT when Rocket.Chat refuses it", async () => {
    const { fake, desk } = await setup(
      {
        departments: [
          { _id: "dep1", name: "Support" },
          { _id: "dep2", name: "Billing" },
        ],
      },
      { department: "Support" },
    );
    const billing = await desk.open(conversation({ subject: "Billing" }));
    expect(fake.room(billing.ids.rid ?? "")?.departmentId).toBe("dep2");
    const unknown = await desk.open(conversation({ subject: "Nope" }));
    expect(unknown.ids.department).toBe("Support");
    expect(fake.room(unknown.ids.rid ?? "")?.departmentId).toBe("dep1");
  });

  it("never adopts another visitor's room when Rocket.Chat merges by phone, and sends no phone for unverified customers", async () => {
    const { fake, desk } = await setup();
    const phone = "+923001112223";
    const victim = await desk.open(
      conversation({ verified: true, customer: { id: "p1", name: "Ali", firstName: "Ali", phone } }),
    );
    // A second verified conversation with the same number: Rocket.Chat answers with the first visitor's token.
    const again = conversation({ verified: true, customer: { id: "p2", name: "Ali", firstName: "Ali", phone } });
    const second = await desk.open(again);
    expect(second.ids.visitorToken).not.toBe(victim.ids.visitorToken);
    expect(second.ids.rid).not.toBe(victim.ids.rid);
    // An anonymous customer typing the same number never gets it sent to Rocket.Chat at all.
    const stranger = conversation({ customer: { id: "p3", name: "Mallory", firstName: "Mallory", phone } });
    const third = await desk.open(stranger);
    expect(third.ids.visitorToken).toBe(stranger.desk.ids.visitorToken);
    expect(third.ids.rid).not.toBe(victim.ids.rid);
    expect(fake.visitors().find((v) => v.token === stranger.desk.ids.visitorToken)?.phone).toBeUndefined();
  });

  it("sends text once even when the send is repeated (deterministic _id)", async () => {
    const { fake, desk } = await setup();
    const c = conversation();
    const session = await desk.open(c);
    const bound = opened(c, session.ids);
    const message = chat(c, "Where is my order?");
    await desk.send(bound, message);
    await desk.send(bound, message);
    await desk.send(bound, chat(c, "It was 8812"));
    expect(texts(fake, session.ids.rid ?? "")).toEqual(["Where is my order?", "It was 8812"]);
  });

  it("uploads a customer's data: file once, and sends links it may not fetch as text", async () => {
    const { fake, desk } = await setup();
    const c = conversation();
    const session = await desk.open(c);
    const bound = opened(c, session.ids);
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
    const message = chat(c, "", {
      attachments: [
        { type: "image/png", name: "receipt.png", contentUrl: `data:image/png;base64,${png.toString("base64")}` },
      ],
    });
    const firstAttempt = Date.now();
    await desk.send(bound, message);
    // The outbox retries it (the first answer was lost): the file is in the room already and is not posted again.
    await desk.send(bound, message, { since: firstAttempt, outcomeUnknown: true });
    const files = fake.files().filter((f) => f.rid === session.ids.rid && f.thumbnailOf === undefined);
    expect(files).toHaveLength(1);
    expect(files[0]?.content.equals(png)).toBe(true);
    // Another message with a file of the same name (phones call every photo image.jpg) is a new file.
    await desk.send(bound, chat(c, "", { attachments: message.attachments }));
    expect(fake.files().filter((f) => f.rid === session.ids.rid && f.thumbnailOf === undefined)).toHaveLength(2);
    await desk.send(
      bound,
      chat(c, "see this", {
        attachments: [{ type: "application/pdf", name: "a.pdf", contentUrl: "https://evil.example/a.pdf" }],
      }),
    );
    expect(texts(fake, session.ids.rid ?? "").at(-1)).toBe("see this\na.pdf: https://evil.example/a.pdf");
  });

  it("closes idempotently", async () => {
    const { fake, desk } = await setup();
    const c = conversation();
    const session = await desk.open(c);
    const bound = opened(c, session.ids);
    await desk.close(bound, "resolved");
    expect(fake.room(session.ids.rid ?? "")?.open).toBe(false);
    await expect(desk.close(bound, "resolved")).resolves.toBeUndefined();
  });

  it("reports the session closed when a message meets a room the agent closed", async () => {
    const { fake, desk } = await setup();
    const c = conversation();
    const session = await desk.open(c);
    fake.closeByAgent(session.ids.rid ?? "");
    const error = await desk.send(opened(c, session.ids), chat(c, "hello?")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeskSessionClosedError);
    expect((error as Error).message).toContain("room-closed");
  });

  it("asks for a retry on 5xx, on a dropped connection, and on 429 until X-RateLimit-Reset, then gates that route only", async () => {
    const observed: string[] = [];
    const { fake, desk } = await setup(
      {},
      { observe: (operation, outcome) => observed.push(`${operation} ${outcome}`) },
    );
    const c = conversation();
    const session = await desk.open(c);
    fake.failNext(1, 503);
    await expect(desk.open(conversation())).rejects.toMatchObject({ retryable: true, upstreamStatus: 503 });
    fake.goDown("reset");
    await expect(desk.open(conversation())).rejects.toMatchObject({ retryable: true });
    fake.comeUp();
    fake.failNext(1, 429, { retryAfterSeconds: 7 });
    const limited = await desk.open(conversation()).catch((e: unknown) => e);
    expect(limited).toMatchObject({ retryable: true, upstreamStatus: 429 });
    // Rocket.Chat sends no Retry-After: the wait is read from X-RateLimit-Reset.
    const wait = (limited as RocketChatError).retryAfterMs ?? 0;
    expect(wait).toBeGreaterThan(6_000);
    expect(wait).toBeLessThanOrEqual(7_000);
    expect(observed).toContain("livechat/visitor rate_limited");
    // Every conversation now waits for that route: no request reaches Rocket.Chat until the gate opens...
    const before = fake.requests.length;
    await expect(desk.open(conversation())).rejects.toMatchObject({ retryable: true, upstreamStatus: 429 });
    expect(fake.requests.length).toBe(before);
    // ...while other routes, each with its own counter in Rocket.Chat, go on.
    await desk.send(opened(c, session.ids), chat(c, "still here"));
    expect(texts(fake, session.ids.rid ?? "")).toEqual(["still here"]);
  });

  it("meets Rocket.Chat's own 5-per-minute visitor limiter: the fifth answer says none is left, so nothing is refused", async () => {
    const { fake, desk } = await setup({ rateLimit: true });
    const outcomes: string[] = [];
    for (let i = 0; i < 7; i++) {
      outcomes.push(
        await desk.open(conversation()).then(
          () => "open",
          (error: unknown) =>
            error instanceof RocketChatError && error.retryable ? `retry:${error.upstreamStatus}` : "other",
        ),
      );
    }
    expect(outcomes).toEqual(["open", "open", "open", "open", "open", "retry:429", "retry:429"]);
    // X-RateLimit-Remaining: 0 on the fifth call closed the gate: the two later opens waited without asking.
    expect(fake.requests.filter((r) => r.status === 429)).toHaveLength(0);
    expect(fake.requests.filter((r) => r.path === "/api/v1/livechat/visitor")).toHaveLength(5);
  });

  it("paces every rate-limited route: customer messages of all conversations share one window, and /ready hears of it", async () => {
    const { fake, desk } = await setup({ rateLimit: true, rateLimitCalls: 2, rateLimitIntervalMs: 300 });
    const a = conversation();
    const b = conversation();
    const [sa, sb] = [await desk.open(a), await desk.open(b)];
    const [ba, bb] = [opened(a, sa.ids), opened(b, sb.ids)];
    await desk.send(ba, chat(a, "a1"));
    await desk.send(bb, chat(b, "b1"));
    // Two calls per window on livechat/message, whichever room: the third waits for the window, without a request.
    const before = fake.requests.length;
    const held = await desk.send(ba, chat(a, "a2")).catch((e: unknown) => e);
    expect(held).toMatchObject({ retryable: true, upstreamStatus: 429 });
    expect((held as RocketChatError).retryAfterMs).toBeLessThanOrEqual(300);
    expect(fake.requests.length).toBe(before);
    expect(desk.client.rateLimitProblem()).toBeUndefined();
    // After the window, the outbox's retry goes through; windows that keep filling up make a /ready problem.
    const sendWhenAllowed = async (c: Conversation, text: string) =>
      expect
        .poll(
          () =>
            desk.send(c === a ? ba : bb, chat(c, text)).then(
              () => true,
              () => false,
            ),
          { interval: 50 },
        )
        .toBe(true);
    for (const text of ["a2", "a3", "a4", "a5"]) await sendWhenAllowed(a, text);
    expect(texts(fake, sa.ids.rid ?? "")).toEqual(["a1", "a2", "a3", "a4", "a5"]);
    expect(fake.requests.filter((r) => r.status === 429)).toHaveLength(0);
    const problem = desk.client.rateLimitProblem();
    expect(problem?.log).toContain("livechat/message (2 per window)");
    expect(problem?.log).toMatch(
      /^Rocket\.Chat keeps rate-limiting .* \(3 times or more within 5 minutes\): raise API_Enable_Rate_Limiter_Limit_Calls_Default or turn API_Enable_Rate_Limiter off$/,
    );
    expect(problem?.ready).toBe("Rocket.Chat keeps rate-limiting Liaison (its REST API rate limiter)");
  });

  it("counts a resent _id that Rocket.Chat already stored as delivered, after finding it in the room", async () => {
    for (const version of [7, 5] as const) {
      const { fake, desk } = await setup({ version });
      const c = conversation();
      const session = await desk.open(c);
      const bound = opened(c, session.ids);
      const message = chat(c, "Did it arrive?");
      await desk.send(bound, message);
      // The first answer was lost (a timeout): the retry finds it stored, and it is not an error.
      await expect(desk.send(bound, message, { since: Date.now(), outcomeUnknown: true })).resolves.toBeUndefined();
      expect(texts(fake, session.ids.rid ?? "")).toEqual(["Did it arrive?"]);
      expect(fake.requests.filter((r) => r.path === "/api/v1/livechat/message" && r.status === 400)).toHaveLength(1);
    }
    // The same 400 for an _id stored in ANOTHER room is not a delivery: it stays a refusal.
    const { desk } = await setup();
    const first = conversation();
    const other = conversation();
    const s1 = await desk.open(first);
    const s2 = await desk.open(other);
    const taken = chat(first, "mine");
    await desk.send(opened(first, s1.ids), taken);
    const stolen = await desk.client
      .sendMessage({
        token: s2.ids.visitorToken ?? "",
        rid: s2.ids.rid ?? "",
        msg: "not mine",
        _id: rocketChatMessageId(opened(first, s1.ids), taken),
      })
      .catch((e: unknown) => e);
    expect(stolen).toMatchObject({ retryable: false, upstreamStatus: 400 });
  });

  it("reports the session closed when an upload meets a room that is closed (403, by version)", async () => {
    for (const version of [7, 8] as const) {
      const { fake, desk } = await setup({ version });
      const c = conversation();
      const session = await desk.open(c);
      fake.closeByAgent(session.ids.rid ?? "");
      const png = Buffer.from("89504e470d0a1a0a", "hex");
      const error = await desk
        .send(
          opened(c, session.ids),
          chat(c, "", {
            attachments: [
              { type: "image/png", name: "p.png", contentUrl: `data:image/png;base64,${png.toString("base64")}` },
            ],
          }),
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeskSessionClosedError);
      expect(fake.requests.at(-1)).toMatchObject({ path: `/api/v1/livechat/upload/${session.ids.rid}`, status: 403 });
    }
  });
});
