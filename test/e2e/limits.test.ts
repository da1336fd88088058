import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { postJson } from "../helpers/socket.js";

describe("rate limits on several nodes", () => {
  let redis: TestRedis;
  const nodes: TestApp[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: `limits-${Date.now()}:`, INIT_RATE_LIMIT: "3" };
    nodes.push(await startTestApp(env), await startTestApp(env));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await redis.close();
  });

  it("count in Redis: two nodes allow one address what one node does", async () => {
    const [a, b] = nodes as [TestApp, TestApp];
    const init = (node: TestApp) =>
      postJson(`${node.url}/api/customer/init`, { firstName: "Sara", channel: "web", email: "sara@example.org" });
    const statuses = [];
    for (const node of [a, b, a, b, a]) statuses.push((await init(node)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });
});
