import { afterAll, beforeAll } from "vitest";
import { RedisStore } from "../../server/store/redis/redis-store.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { storeContract } from "./store.contract.js";

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
