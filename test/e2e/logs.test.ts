import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../server/logger.js";
import { freePort, startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { postJson } from "../helpers/socket.js";

/** Every line the gateway logs, parsed. */
function parsedLogger(): { logger: Logger; readonly lines: Record<string, unknown>[] } {
  const { logger, lines } = capturedLogger();
  return {
    logger,
    get lines(): Record<string, unknown>[] {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe("logs while something stays down", () => {
  let redis: TestRedis;
  let gateway: TestApp;
  const captured = parsedLogger();
  const { logger } = captured;
  beforeAll(async () => {
    redis = await startRedis();
    gateway = await startTestApp({ REDIS_URL: redis.url, REDIS_PREFIX: "logs:" }, { logger });
  });
  afterAll(async () => {
    await gateway.close();
    await redis.close();
  });

  it("say once at warn that Redis is failing and once that it works again, with a count, and no stack trace", async () => {
    await redis.stop();
    // ioredis reconnects several times a second at first: each attempt fails while the server is gone.
    await expect
      .poll(() => captured.lines.filter((line) => line.what === "redis" && line.msg === "still failing").length, {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(3);
    await redis.start();
    await expect
      .poll(() => captured.lines.some((line) => line.what === "redis" && line.msg === "working again"), {
        timeout: 10_000,
      })
      .toBe(true);
    const warnings = captured.lines.filter((line) => (line.level as number) >= 40);
    expect(warnings.map((line) => `${String(line.what)} ${String(line.msg)}`)).toEqual([
      "redis failing",
      "redis working again",
    ]);
    expect(warnings[1]?.failures).toBeGreaterThanOrEqual(4);
    expect(captured.lines.filter((line) => JSON.stringify(line).includes("stack"))).toEqual([]);
  });
});

describe("logs while a desk stays down", () => {
  let gateway: TestApp;
  const captured = parsedLogger();
  const { logger } = captured;
  beforeAll(async () => {
    // Nothing listens there: every call to the desk is refused.
    const port = await freePort();
    gateway = await startTestApp(
      { ROCKETCHAT_URL: `http://127.0.0.1:${port}`, ROCKETCHAT_WEBHOOK_TOKEN: "secret" },
      { logger, tuning: { retryMaxMs: 200 } },
    );
  });
  afterAll(async () => {
    await gateway.close();
  });

  it("say once at warn that the desk is failing, and /ready names it", async () => {
    const init = await postJson(`${gateway.url}/api/customer/init`, {
      firstName: "Ana",
      channel: "web",
      email: "ana@example.org",
    });
    expect(init.status).toBe(200);
    await expect
      .poll(
        () => captured.lines.filter((line) => line.what === "desk:rocketchat" && line.msg === "still failing").length,
        {
          timeout: 10_000,
        },
      )
      .toBeGreaterThanOrEqual(3);
    // Besides the configuration's warnings at start (PUBLIC_URL on this machine), the outage's, once.
    const warnings = captured.lines.filter((line) => (line.level as number) >= 40 && line.what !== undefined);
    expect(warnings.map((line) => `${String(line.what)} ${String(line.msg)}`)).toEqual(["desk:rocketchat failing"]);
    expect(warnings[0]?.error).toMatch(/ECONNREFUSED/);
    const ready = await fetch(`${gateway.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: "degraded",
      problems: { "desk:rocketchat": expect.stringMatching(/^failing since \S+ \(\d+ failures\)$/) as unknown },
    });
  });
});
