import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { RedisStore } from "../../server/store/redis/redis-store.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { chatDraft, conversationFixture, storeContract } from "./store.contract.js";

let redis: TestRedis;
let counter = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

/** A store on a fresh key prefix of the test Redis: one that starts empty. */
const freshPrefix = (): string => `t${process.pid}:${++counter}:`;
const storeAt = (prefix: string): RedisStore =>
  new RedisStore({ url: redis.url, prefix, campaignRetentionMs: 86_400_000 });

storeContract("redis", () => Promise.resolve(storeAt(freshPrefix())));

describe("RedisStore's append script", () => {
  let store: RedisStore;
  let prefix: string;
  beforeEach(() => {
    prefix = freshPrefix();
    store = storeAt(prefix);
  });
  afterEach(async () => {
    await store.close();
  });

  const scriptCalls = async (): Promise<number> => {
    const stats = await store.redis.info("commandstats");
    return (
      Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) +
      Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0)
    );
  };

  it("sends the appends of one turn together (128 to a script call), each conversation's in the order they were asked for", async () => {
    const conversations = [conversationFixture(), conversationFixture(), conversationFixture()];
    for (const c of conversations) await store.init(c, { requestId: c.requestId }, []);
    const before = await scriptCalls();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const c = conversations[i % 3]!;
        return store.append(c.id, chatDraft(c.id, `m${Math.floor(i / 3)}`), { requireOpen: true });
      }),
    );
    expect(await scriptCalls()).toBe(before + 3);
    expect(results.every((r) => r.status === "appended")).toBe(true);
    for (const c of conversations) {
      const stored = await store.read(c.id, 0);
      expect(stored.map((m) => (m.type === "ChatMessage" ? m.text : ""))).toEqual(
        Array.from({ length: 100 }, (_, i) => `m${i}`),
      );
      expect(stored.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    }
  });

  it("fails appends one by one: one Redis cannot record fails alone, the others of its call are recorded", async () => {
    const good = conversationFixture();
    const broken = conversationFixture();
    for (const c of [good, broken]) await store.init(c, { requestId: c.requestId }, []);
    // Its log key holding a string, Redis refuses the list commands on it (WRONGTYPE).
    await store.redis.set(`${prefix}log:${broken.id}`, "not a list");
    const [first, failed, second] = await Promise.allSettled([
      store.append(good.id, chatDraft(good.id, "one")),
      store.append(broken.id, chatDraft(broken.id, "lost")),
      store.append(good.id, chatDraft(good.id, "two")),
    ]);
    expect(failed).toMatchObject({ status: "rejected", reason: { code: "unavailable" } });
    expect(first).toMatchObject({ status: "fulfilled", value: { status: "appended", message: { seq: 1 } } });
    expect(second).toMatchObject({ status: "fulfilled", value: { status: "appended", message: { seq: 2 } } });
    expect(await store.redis.get(`${prefix}log:${broken.id}`)).toBe("not a list");
  });

  it("fails every append of a call as unavailable when Redis is gone", async () => {
    const c = conversationFixture();
    await store.init(c, { requestId: c.requestId }, []);
    store.redis.disconnect();
    const results = await Promise.allSettled([
      store.append(c.id, chatDraft(c.id, "a")),
      store.append(c.id, chatDraft(c.id, "b")),
    ]);
    expect(results).toMatchObject([
      { status: "rejected", reason: { code: "unavailable" } },
      { status: "rejected", reason: { code: "unavailable" } },
    ]);
  });

  it("records one end when two nodes end the same conversation at once, and drops it from the idle index", async () => {
    const other = storeAt(prefix);
    onTestFinished(() => other.close());
    const conversation = conversationFixture({ createdAt: "2026-11-21T10:00:00.000Z" });
    await store.init(conversation, { requestId: conversation.requestId }, []);
    const cutoff = new Date("2026-11-22T10:00:00.000Z");
    expect(await other.findIdle(cutoff, 10)).toEqual([conversation.id]);
    const end = (node: RedisStore) =>
      node.append(conversation.id, chatDraft(conversation.id, "inactive"), {
        idleBeforeMs: cutoff.getTime(),
        transition: {
          from: ["queued", "active"],
          to: "ended",
          patch: { endedAt: "2026-11-22T10:00:01.000Z" },
          required: true,
        },
      });
    const results = await Promise.all([end(store), end(other)]);
    expect(results.map((result) => result.status).sort()).toEqual(["appended", "ended"]);
    expect(await store.read(conversation.id, 0)).toHaveLength(1);
    expect(await other.findIdle(cutoff, 10)).toEqual([]);
  });

  it("moves the index of open conversations an earlier version kept (one set, `active`) into the state sets before reading them", async () => {
    const queued = conversationFixture({ createdAt: "2026-11-21T10:00:00.000Z" });
    const active = conversationFixture({ createdAt: "2026-11-21T10:01:00.000Z", state: "active" });
    for (const c of [queued, active]) await store.init(c, { requestId: c.requestId }, []);
    // As the earlier version left them: in `active` only.
    for (const c of [queued, active]) {
      await store.redis.zrem(`${prefix}st:${c.state}`, c.id);
      await store.redis.zadd(`${prefix}active`, Date.parse(c.createdAt), c.id);
    }
    const upgraded = storeAt(prefix);
    onTestFinished(() => upgraded.close());
    expect(await upgraded.findIdle(new Date("2026-11-22T00:00:00.000Z"), 10)).toEqual([queued.id, active.id]);
    const page = await upgraded.listOpen({ states: ["queued"], limit: 10, scan: 100 });
    expect(page.conversations).toMatchObject([
      { conversation: { id: queued.id }, lastActivityMs: Date.parse(queued.createdAt) },
    ]);
    expect(await store.redis.exists(`${prefix}active`)).toBe(0);
  });

  it("refuses a plain append to an ended conversation whatever the spacing of the stored record's JSON", async () => {
    const conversation = conversationFixture();
    await store.init(conversation, { requestId: conversation.requestId }, []);
    // The record as another writer (or a hand in redis-cli) might have left it: indented, state ended.
    await store.redis.set(
      `${prefix}c:${conversation.id}`,
      JSON.stringify({ ...conversation, state: "ended" }, null, 2),
    );
    const late = await store.append(conversation.id, chatDraft(conversation.id, "late"), { requireOpen: true });
    expect(late.status).toBe("ended");
    expect(await store.read(conversation.id, 0)).toEqual([]);
  });
});
