import { afterEach, describe, expect, it } from "vitest";
import type { InitResponse } from "../../protocol/index.js";
import { ConfigError, loadConfig } from "../../server/config.js";
import { freePort, startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { connect, postJson, request } from "../helpers/socket.js";

/** Recognisable secrets: not one of them may appear in any log line. */
const secrets = {
  apiKey: "SECRET-api-key-1c9f2e7a",
  redisPassword: "SECRET-redis-right-5b3d",
  wrongRedisPassword: "SECRET-redis-wrong-8e1a",
  smtpPassword: "SECRET-smtp-pass-4f6c",
  signing: "SECRET-signing-key-0123456789abcdef-77aa",
  rocketChatToken: "SECRET-rc-auth-token-2d8b",
  rocketChatWebhook: "SECRET-rc-webhook-6a0e",
};

let app: TestApp | undefined;
let redis: TestRedis | undefined;
afterEach(async () => {
  await app?.close();
  await redis?.close();
  app = undefined;
  redis = undefined;
});

const leaks = (lines: readonly string[]) =>
  lines.filter((line) => Object.values(secrets).some((secret) => line.includes(secret)));

describe("secrets never reach a log line", () => {
  it("when Redis refuses the password (ioredis attaches it to its errors): the node does not start, saying why", async () => {
    redis = await startRedis({ password: secrets.redisPassword });
    const wrong = redis.url.replace(encodeURIComponent(secrets.redisPassword), secrets.wrongRedisPassword);
    const { logger, lines } = capturedLogger("trace");
    await expect(
      startTestApp({ REDIS_URL: wrong, REDIS_PREFIX: "secrets:", API_KEYS: secrets.apiKey }, { logger }),
    ).rejects.toThrow(/^Redis refused the credentials of REDIS_URL: WRONGPASS/);
    expect(lines.some((line) => line.includes("WRONGPASS"))).toBe(true);
    expect(leaks(lines)).toEqual([]);
  });

  it("while the desk, the mail server and callers fail with every other secret configured", async () => {
    const closed = await freePort();
    const { logger, lines } = capturedLogger("trace");
    app = await startTestApp(
      {
        API_KEYS: secrets.apiKey,
        SIGNING_SECRET: secrets.signing,
        SMTP_URL: `smtp://liaison:${secrets.smtpPassword}@127.0.0.1:${closed}`,
        ROCKETCHAT_URL: `http://127.0.0.1:${closed}`,
        ROCKETCHAT_USER_ID: "bot",
        ROCKETCHAT_AUTH_TOKEN: secrets.rocketChatToken,
        ROCKETCHAT_WEBHOOK_TOKEN: secrets.rocketChatWebhook,
      },
      { logger, tuning: { retryMaxMs: 100 } },
    );
    const auth = { authorization: `Bearer ${secrets.apiKey}` };
    const init = (await postJson(`${app.url}/api/customer/init`, { firstName: "A", channel: "web", email: "a@x.org" }))
      .body as InitResponse;
    const socket = await connect(app.url);
    await request(socket, "joinConversation", {
      conversationId: init.conversationId,
      id: "x",
      name: "A",
      token: init.token,
    });
    await request(socket, "sendMessage", { conversationId: init.conversationId, text: "hello" });
    await request(socket, "endConversation", { conversationId: init.conversationId });
    socket.close();
    // A webhook with the right token, one with a wrong one, an API call with the key, an e-mail the server refuses.
    const webhook = { type: "Message", _id: "room", visitor: { token: "someone" }, messages: [] };
    await postJson(`${app.url}/webhooks/rocketchat`, webhook, {
      "x-rocketchat-livechat-token": secrets.rocketChatWebhook,
    });
    await postJson(`${app.url}/webhooks/rocketchat`, webhook, { "x-rocketchat-livechat-token": "wrong" });
    await postJson(`${app.url}/api/connectors/sms/messages`, { refId: "+92300", text: "hi" }, auth);
    const email = await postJson(
      `${app.url}/api/customer/transcript/${init.conversationId}/email`,
      {},
      {
        authorization: `Bearer ${init.token}`,
      },
    );
    expect(email.status).toBe(503);
    await expect
      .poll(() => lines.some((line) => line.includes("desk:rocketchat") && line.includes("failing")), {
        timeout: 10_000,
      })
      .toBe(true);
    expect(lines.length).toBeGreaterThan(10);
    expect(leaks(lines)).toEqual([]);
  });

  it("nor an error of the configuration, which names the variable without its value", () => {
    for (const env of [
      { REDIS_URL: `redis://:${secrets.redisPassword}@host:not-a-port` },
      { REDIS_URL: `http://:${secrets.redisPassword}@host` },
      { SMTP_URL: `http://liaison:${secrets.smtpPassword}@mail` },
      { SIGNING_SECRET: "SECRET-short" },
      { API_KEYS: secrets.apiKey, API_KEYS_FILE: "/nonexistent" },
    ]) {
      let error: unknown;
      try {
        loadConfig(env);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const text = (error as ConfigError).message;
      expect(text).toMatch(/REDIS_URL|SMTP_URL|SIGNING_SECRET|API_KEYS/);
      for (const secret of [...Object.values(secrets), "SECRET-short"]) expect(text).not.toContain(secret);
    }
  });
});
