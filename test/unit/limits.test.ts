import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { GatewayError } from "../../server/core/errors.js";
import { createLimiter, type Limiter, type LimiterOptions } from "../../server/http/limits.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";

/** The refusal a limiter throws, or undefined when it let the use through. */
async function refusal(limiter: Limiter, key: string): Promise<GatewayError | undefined> {
  try {
    await limiter.consume(key);
    return undefined;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}

/** The same behaviour whichever store counts. */
function limiterContract(backend: string, redis: () => LimiterOptions["redis"]) {
  let run = 0;
  const limiter = (options: Omit<LimiterOptions, "name" | "redis"> & { name?: string }) =>
    createLimiter({ name: `test-${process.pid}-${++run}`, ...options, ...(redis() ? { redis: redis() } : {}) });

  describe(`createLimiter (${backend})`, () => {
    it("lets `points` uses through per key and window, then refuses with rate_limited and when to retry", async () => {
      const limit = limiter({ points: 3, durationSeconds: 60 });
      for (let i = 0; i < 3; i++) expect(await refusal(limit, "203.0.113.7")).toBeUndefined();
      const refused = await refusal(limit, "203.0.113.7");
      expect(refused?.code).toBe("rate_limited");
      expect(refused?.status).toBe(429);
      const retry = refused?.details?.retryAfterSeconds;
      expect(typeof retry).toBe("number");
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(60);
    });

    it("counts each key apart, and each limit apart", async () => {
      const first = limiter({ points: 1, durationSeconds: 60 });
      const second = limiter({ points: 1, durationSeconds: 60 });
      expect(await refusal(first, "a")).toBeUndefined();
      expect(await refusal(first, "b")).toBeUndefined();
      expect(await refusal(second, "a")).toBeUndefined();
      expect((await refusal(first, "a"))?.code).toBe("rate_limited");
    });

    it("uses the message it was given", async () => {
      const limit = limiter({ points: 1, durationSeconds: 60, message: (seconds) => `wait ${seconds} s` });
      await limit.consume("k");
      expect((await refusal(limit, "k"))?.message).toMatch(/^wait \d+ s$/);
    });
  });
}

limiterContract("memory", () => undefined);

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  // Until the client is ready the limiter counts in memory (see below): these tests are about Redis.
  await client.ping();
});
afterAll(async () => {
  client.disconnect();
  await redis.close();
});

limiterContract("redis", () => ({ client, prefix: `limits-test-${process.pid}:` }));

describe("createLimiter on Redis", () => {
  it("shares the count between limiters of the same name (the nodes of a cluster), in Redis", async () => {
    const other = new Redis(redis.url);
    onTestFinished(() => other.disconnect());
    await other.ping();
    const options = { name: `shared-${process.pid}`, points: 2, durationSeconds: 60 };
    const nodeA = createLimiter({ ...options, redis: { client, prefix: "limits-test:" } });
    const nodeB = createLimiter({ ...options, redis: { client: other, prefix: "limits-test:" } });
    expect(await refusal(nodeA, "k")).toBeUndefined();
    expect(await refusal(nodeB, "k")).toBeUndefined();
    expect((await refusal(nodeA, "k"))?.code).toBe("rate_limited");
    expect((await refusal(nodeB, "k"))?.code).toBe("rate_limited");
    expect(await client.keys(`limits-test:limit:shared-${process.pid}:*`)).toHaveLength(1);
  });

  it("counts in memory while Redis is down, rather than failing or letting everyone through", async () => {
    const down = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    onTestFinished(() => down.disconnect());
    const limit = createLimiter({
      name: `down-${process.pid}`,
      points: 2,
      durationSeconds: 60,
      redis: { client: down, prefix: "limits-test:" },
    });
    expect(down.status).not.toBe("ready");
    expect(await refusal(limit, "k")).toBeUndefined();
    expect(await refusal(limit, "k")).toBeUndefined();
    expect((await refusal(limit, "k"))?.code).toBe("rate_limited");
  });
});
