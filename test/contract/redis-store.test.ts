import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
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

// Each test gets a fresh key prefix: the same suite, on a store that starts empty.
storeContract("redis", () =>
  Promise.resolve(
    new RedisStore({ url: redis.url, prefix: `t${process.pid}:${++counter}:`, campaignRetentionMs: 86_400_000 }),
  ),
);

describe("RedisStore: appends of one event-loop turn", () => {
  let store: RedisStore;
  let prefix: string;
  beforeEach(() => {
    prefix = `t${process.pid}:${++counter}:`;
    store = new RedisStore({ url: redis.url, prefix, campaignRetentionMs: 86_400_000 });
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

  it("go to Redis together (128 to a script call), each conversation's in the order they were asked for", async () => {
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

  it("fail one by one: an append Redis cannot record fails alone, the others of its call are recorded", async () => {
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

  it("fail together when Redis is gone, as unavailable", async () => {
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
});

describe("RedisStore: a plain append to an ended conversation", () => {
  it("is refused whatever the spacing of the stored record's JSON", async () => {
    const prefix = `t${process.pid}:${++counter}:`;
    const store = new RedisStore({ url: redis.url, prefix, campaignRetentionMs: 86_400_000 });
    try {
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
    } finally {
      await store.close();
    }
  });
});
