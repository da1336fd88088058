import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startHttpRecorder, type HttpRecorder, type RecordedRequest } from "../../helpers/http-recorder.js";
import { startFakeGms } from "./index.js";
import type { FakeGms, FakeGmsOptions } from "./index.js";

// Self-test of the fake's strictness with plain fetch: the platform's documented answers, and its calls to Liaison.

type Json = Record<string, unknown>;

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function start(options: FakeGmsOptions = {}): Promise<FakeGms> {
  const fake = await startFakeGms(options);
  cleanups.push(() => fake.close());
  return fake;
}

/** Stands in for Liaison's channel webhook: answers `{"result":"ok"}` unless `answer` says otherwise. */
async function liaison(
  answer?: (request: RecordedRequest, res: ServerResponse, n: number) => void,
): Promise<HttpRecorder> {
  const recorder = await startHttpRecorder(
    answer ??
      ((_request, res) => {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ result: "ok" }));
      }),
  );
  cleanups.push(() => recorder.close());
  return recorder;
}

async function post(url: string, body: unknown, init: RequestInit = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json, headers: response.headers };
}

function event(overrides: Json = {}, message: Json = {}): Json {
  return {
    event: "new_message",
    chat_id: 4101,
    visitor: { id: "v-501", fields: { name: "Ola", phone: "+4790000000", email: "ola@example.no", site: "shop" } },
    message: { id: "m-1", kind: "visitor", text: "Where is my parcel?", ...message },
    ...overrides,
  };
}

describe("the platform's webhook (Liaison → platform)", () => {
  it("accepts a visitor message, answers 200 at once and hands the text to the bot", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: `${lia.url}/gms`, channelToken: "chan-secret" });
    gms.reply("Where is my parcel?", [{ kind: "text", text: "It ships tomorrow." }]);

    const res = await post(gms.webhookUrl, event());
    expect(res.status).toBe(200);
    await gms.whenIdle();

    expect(gms.heard()).toMatchObject([
      { chatId: 4101, visitorId: "v-501", messageId: "m-1", kind: "visitor", text: "Where is my parcel?" },
    ]);
    expect(gms.heard()[0]?.fields).toEqual({
      name: "Ola",
      phone: "+4790000000",
      email: "ola@example.no",
      site: "shop",
    });
    expect(lia.received).toHaveLength(1);
    const call = lia.received[0];
    expect(call?.method).toBe("POST");
    expect(call?.url).toBe("/gms/send_message");
    expect(call?.headers.authorization).toBe("Token chan-secret");
    expect(call?.headers["content-type"]).toBe("application/json");
    // chat_id comes back as the integer Liaison sent.
    expect(JSON.parse(call?.text ?? "")).toEqual({
      chat_id: 4101,
      message: { kind: "operator", text: "It ships tomorrow." },
    });
    expect(gms.calls()).toMatchObject([{ method: "send_message", status: 200, outcome: "ok", attempt: 1 }]);
  });

  it("refuses a wrong token or an inactive channel with the platform's 400", async () => {
    const gms = await start({ token: "tok-1" });
    const wrong = await post(gms.webhookUrl.replace("tok-1", "tok-2"), event());
    expect(wrong.status).toBe(400);
    expect(wrong.json).toEqual({ error: "There is no active channel for received event." });

    gms.setChannel({ active: false });
    const inactive = await post(gms.webhookUrl, event());
    expect(inactive.status).toBe(400);
    expect(inactive.json).toEqual({ error: "There is no active channel for received event." });
    expect(gms.heard()).toEqual([]);
  });

  it("answers 404 for any other URL and 405 for another method", async () => {
    const gms = await start();
    expect(
      (await post(`${gms.url}/connector/omnichannel/omnichannel_message/${gms.token}/webhook`, event())).status,
    ).toBe(404);
    expect((await post(`${gms.webhookUrl}/`, event())).status).toBe(404);
    expect((await fetch(gms.webhookUrl)).status).toBe(405);
  });

  it("refuses a chat_id that is not an integer with a 500", async () => {
    const gms = await start();
    for (const chatId of ["4101", "c-8842", 41.5, true, {}]) {
      const res = await post(gms.webhookUrl, event({ chat_id: chatId }));
      expect(res.status, JSON.stringify(chatId)).toBe(500);
    }
    expect(gms.received().map((r) => r.reason)).toEqual(Array(5).fill("chat_id is not an integer"));
    expect(gms.heard()).toEqual([]);
  });

  it("answers 400 for each missing parameter", async () => {
    const gms = await start();
    const base = event();
    const cases: [string, Json][] = [
      ["event", { ...base, event: undefined }],
      ["chat_id", { ...base, chat_id: null }],
      ["visitor", { ...base, visitor: undefined }],
      ["visitor.id", { ...base, visitor: { fields: {} } }],
      ["visitor.fields", { ...base, visitor: { id: "v-1" } }],
      ["message", { ...base, message: undefined }],
      ["message.id", event({}, { id: undefined })],
      ["message.kind", event({}, { kind: undefined })],
      ["message.text", event({}, { text: undefined })],
      ["message.data", event({}, { kind: "keyboard_response", text: undefined })],
      ["message.data.button.text", event({}, { kind: "keyboard_response", data: { button: { id: "b1" } } })],
      [
        "message.data.url",
        event({}, { kind: "file_visitor", data: { id: "f", state: "ready", name: "a", content_type: "x/y", size: 1 } }),
      ],
    ];
    for (const [path, body] of cases) {
      const res = await post(gms.webhookUrl, body);
      expect(res.status, path).toBe(400);
      expect(gms.received().at(-1)?.reason, path).toBe(`${path} is missing`);
    }
  });

  it("answers 200 and drops an unknown event or message kind", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url });
    gms.otherwise([{ kind: "text", text: "hello" }]);
    expect((await post(gms.webhookUrl, event({ event: "new_chat" }))).status).toBe(200);
    expect((await post(gms.webhookUrl, event({}, { kind: "operator" }))).status).toBe(200);
    await gms.whenIdle();
    expect(gms.received().map((r) => [r.outcome, r.reason])).toEqual([
      ["ignored", 'unknown event "new_chat"'],
      ["ignored", 'unknown message kind "operator"'],
    ]);
    expect(lia.received).toEqual([]);
  });

  it("answers 500 for malformed JSON and for wrong types", async () => {
    const gms = await start();
    expect((await post(gms.webhookUrl, "{not json")).status).toBe(500);
    expect((await post(gms.webhookUrl, "[1,2]")).status).toBe(500);
    expect((await post(gms.webhookUrl, event({ visitor: { id: 501, fields: {} } }))).status).toBe(500);
    expect((await post(gms.webhookUrl, event({ visitor: { id: "v", fields: { phone: 4790 } } }))).status).toBe(500);
    expect((await post(gms.webhookUrl, event({}, { text: 42 }))).status).toBe(500);
    expect(gms.received().map((r) => r.reason)).toEqual([
      "body is not JSON",
      "body is not a JSON object",
      "visitor.id is not a string",
      "visitor.fields.phone is not a string",
      "message.text is not a string",
    ]);
  });

  it("hands a ready file to the bot as file:<type>|<id>|<url> and checks that its link works", async () => {
    const content = Buffer.from("%PDF-1.4 invoice");
    const files = await startHttpRecorder((request, res) => {
      if (request.url === "/signed/inv.pdf?sig=ok")
        res.writeHead(200, { "content-type": "application/pdf" }).end(content);
      else res.writeHead(403).end();
    });
    cleanups.push(() => files.close());
    const gms = await start();
    const data = {
      id: "f-1",
      state: "ready",
      name: "inv.pdf",
      content_type: "application/pdf",
      size: content.length,
      url: `${files.url}/signed/inv.pdf?sig=ok`,
    };
    expect((await post(gms.webhookUrl, event({}, { kind: "file_visitor", text: undefined, data }))).status).toBe(200);
    expect(
      (
        await post(
          gms.webhookUrl,
          event({}, { id: "m-2", kind: "file_visitor", data: { ...data, id: "f-2", url: `${files.url}/expired` } }),
        )
      ).status,
    ).toBe(200);
    await gms.whenIdle();
    const [ok, expired] = gms.heard();
    expect(ok?.text).toBe(`file:application/pdf|f-1|${files.url}/signed/inv.pdf?sig=ok`);
    expect(ok?.fileCheck).toEqual({
      status: 200,
      contentType: "application/pdf",
      size: content.length,
      sha256: createHash("sha256").update(content).digest("hex"),
    });
    expect(expired?.fileCheck?.status).toBe(403);
  });

  it("drops a file that is not ready and refuses a file with a bad size or link", async () => {
    const gms = await start({ checkFiles: false });
    const data = {
      id: "f",
      state: "ready",
      name: "a.png",
      content_type: "image/png",
      size: 10,
      url: "https://x.test/a",
    };
    const notReady = await post(
      gms.webhookUrl,
      event({}, { kind: "file_visitor", data: { ...data, state: "upload" } }),
    );
    expect(notReady.status).toBe(200);
    expect(gms.received().at(-1)).toMatchObject({ outcome: "ignored", reason: 'file state "upload" is not ready' });
    expect(
      (await post(gms.webhookUrl, event({}, { kind: "file_visitor", data: { ...data, size: "10" } }))).status,
    ).toBe(500);
    expect(
      (await post(gms.webhookUrl, event({}, { kind: "file_visitor", data: { ...data, url: "/a.png" } }))).status,
    ).toBe(500);
    expect(gms.heard()).toEqual([]);
  });

  it("hands a button click to the bot as the button's label", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url });
    gms.reply(
      (input) => input.kind === "keyboard_response" && input.data?.button !== undefined,
      [{ kind: "text", text: "clicked" }],
    );
    const click = {
      kind: "keyboard_response",
      text: undefined,
      data: { button: { id: "agent", text: "Talk to a human" } },
    };
    expect((await post(gms.webhookUrl, event({}, click))).status).toBe(200);
    await gms.whenIdle();
    expect(gms.heard()[0]).toMatchObject({ kind: "keyboard_response", text: "Talk to a human" });
    expect(JSON.parse(lia.received[0]?.text ?? "")).toMatchObject({ message: { text: "clicked" } });
  });

  it("hands a repeated message.id to the bot only once", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url });
    gms.otherwise([{ kind: "text", text: "once" }]);
    expect((await post(gms.webhookUrl, event())).status).toBe(200);
    expect((await post(gms.webhookUrl, event())).status).toBe(200);
    await gms.whenIdle();
    expect(gms.received().map((r) => r.outcome)).toEqual(["accepted", "duplicate"]);
    expect(lia.received).toHaveLength(1);
  });

  it("keeps every visitor.id seen for a chat_id", async () => {
    const gms = await start();
    await post(gms.webhookUrl, event());
    await post(gms.webhookUrl, event({ visitor: { id: "v-other", fields: {} } }, { id: "m-2" }));
    expect(gms.chat(4101)?.visitorIds).toEqual(["v-501", "v-other"]);
  });
});

describe("the bot's calls (platform → Liaison)", () => {
  it("sends keyboards, files, a redirect and a close with the documented bodies, in order", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: `${lia.url}/gms/`, channelToken: "t" });
    gms.reply(/human/, [
      {
        kind: "keyboard",
        text: "Sure?",
        buttons: [
          [
            { id: "yes", text: "Yes" },
            { id: "no", text: "No" },
          ],
        ],
      },
      { kind: "file", url: "https://files.example.net/inv.pdf", name: "inv.pdf", mediaType: "application/pdf" },
      { kind: "redirect", depKey: "billing" },
    ]);
    await post(gms.webhookUrl, event({}, { text: "a human please" }));
    await gms.whenIdle();
    await gms.say(4101, [{ kind: "redirect", operatorId: 240001 }, { kind: "redirect" }, { kind: "close" }]);

    expect(lia.received.map((r) => [r.url, JSON.parse(r.text) as unknown])).toEqual([
      [
        "/gms/send_message",
        {
          chat_id: 4101,
          message: {
            kind: "keyboard",
            text: "Sure?",
            buttons: [
              [
                { id: "yes", text: "Yes" },
                { id: "no", text: "No" },
              ],
            ],
          },
        },
      ],
      [
        "/gms/send_message",
        {
          chat_id: 4101,
          message: {
            kind: "file_operator",
            data: { url: "https://files.example.net/inv.pdf", name: "inv.pdf", media_type: "application/pdf" },
          },
        },
      ],
      ["/gms/redirect_chat", { chat_id: 4101, dep_key: "billing" }],
      ["/gms/redirect_chat", { chat_id: 4101, operator_id: 240001 }],
      ["/gms/redirect_chat", { chat_id: 4101 }],
      ["/gms/close_chat", { chat_id: 4101 }],
    ]);
    expect(gms.chat(4101)?.state).toBe("closed");
  });

  it("shows what Liaison said to the bot after the hand-off", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url });
    gms.reply("agent", [{ kind: "redirect" }]);
    await post(gms.webhookUrl, event({}, { text: "agent" }));
    await gms.whenIdle();
    expect(gms.chat(4101)?.state).toBe("redirected");
    await post(gms.webhookUrl, event({}, { id: "m-2", text: "still there?" }));
    expect(gms.heard(4101).map((r) => r.chatState)).toEqual(["bot", "redirected"]);
  });

  it("judges Liaison's answers as the platform does, without retrying by default", async () => {
    const answers: [number, string, string][] = [
      [200, "application/json", '{"result":"ok"}'],
      [200, "text/plain", "ok"],
      [200, "application/json", '{"error":"chat_not_found","desc":"no such chat"}'],
      [401, "application/json", '{"error":"invalid_token"}'],
      [204, "application/json", ""],
    ];
    const lia = await liaison((_request, res, n) => {
      const [status, type, body] = answers[n - 1] ?? [500, "text/plain", "?"];
      res.writeHead(status, { "content-type": type }).end(body);
    });
    const gms = await start({ channelWebhookUrl: lia.url });
    await post(gms.webhookUrl, event());
    for (let i = 0; i < answers.length; i += 1) await gms.call("send_message", { chat_id: 4101, message: {} });
    expect(gms.calls().map((c) => [c.status, c.outcome, c.failure])).toEqual([
      [200, "ok", undefined],
      [200, "failed", "not-json"],
      [200, "failed", "error-body"],
      [401, "failed", "status"],
      [204, "failed", "not-json"],
    ]);
    expect(lia.received).toHaveLength(5);
  });

  it("retries a failed call when told to", async () => {
    const lia = await liaison((_request, res, n) => {
      if (n < 3) res.writeHead(503).end();
      else res.writeHead(200, { "content-type": "application/json" }).end('{"result":"ok"}');
    });
    const gms = await start({ channelWebhookUrl: lia.url, retry: { attempts: 3, delayMs: 5 } });
    gms.otherwise([{ kind: "text", text: "hi" }]);
    await post(gms.webhookUrl, event());
    await gms.whenIdle();
    expect(gms.calls().map((c) => [c.attempt, c.status, c.outcome])).toEqual([
      [1, 503, "failed"],
      [2, 503, "failed"],
      [3, 200, "ok"],
    ]);
  });

  it("gives up on a call that takes longer than its timeout, and records a refused connection", async () => {
    const lia = await liaison(() => {
      // never answers
    });
    const gms = await start({ channelWebhookUrl: lia.url, callTimeoutMs: 100 });
    const slow = await gms.call("send_message", { chat_id: 1 });
    expect(slow).toMatchObject({ status: 0, outcome: "failed", failure: "timeout" });
    gms.setChannel({ webhookUrl: "http://127.0.0.1:1" });
    const refused = await gms.call("send_message", { chat_id: 1 });
    expect(refused).toMatchObject({ status: 0, outcome: "failed", failure: "network" });
    expect(refused.error).toMatch(/ECONNREFUSED/);
  });

  it("sends no Authorization header when the channel has no token", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url, channelToken: "x" });
    gms.setChannel({ token: null });
    await gms.call("send_message", { chat_id: 1 });
    expect(lia.received[0]?.headers.authorization).toBeUndefined();
  });

  it("runs a chat's replies in order, one event after the other", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url });
    gms.reply("one", [
      { kind: "text", text: "1a", delayMs: 30 },
      { kind: "text", text: "1b" },
    ]);
    gms.reply("two", [{ kind: "text", text: "2" }]);
    await post(gms.webhookUrl, event({}, { id: "m-1", text: "one" }));
    await post(gms.webhookUrl, event({}, { id: "m-2", text: "two" }));
    await gms.whenIdle();
    expect(lia.received.map((r) => (JSON.parse(r.text) as { message: { text: string } }).message.text)).toEqual([
      "1a",
      "1b",
      "2",
    ]);
  });

  it("can reply before its webhook answer reaches Liaison", async () => {
    const lia = await liaison();
    const gms = await start({ channelWebhookUrl: lia.url, answerDelayMs: 200 });
    gms.otherwise([{ kind: "text", text: "fast" }]);
    const res = await post(gms.webhookUrl, event());
    expect(res.status).toBe(200);
    // The reply did not wait for the answer: Liaison had it before its POST returned.
    expect(lia.received).toHaveLength(1);
  });

  it("refuses to speak in a chat it never heard of", async () => {
    const gms = await start();
    await expect(gms.say(99, [{ kind: "text", text: "hi" }])).rejects.toThrow("knows no chat 99");
  });
});

describe("outages of the platform", () => {
  it("answers the next requests with an injected status, with or without Retry-After", async () => {
    const gms = await start();
    gms.failNext(2, { status: 429, retryAfterSeconds: 7 });
    const first = await post(gms.webhookUrl, event());
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("7");
    gms.failNext(1, { status: 429 });
    const second = await post(gms.webhookUrl, event());
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBeNull();
    expect((await post(gms.webhookUrl, event())).status).toBe(200);
  });

  it("plays a 5xx outage until it comes up", async () => {
    const gms = await start();
    await gms.goDown({ status: 503 });
    expect((await post(gms.webhookUrl, event())).status).toBe(503);
    expect((await post(gms.webhookUrl, event())).status).toBe(503);
    await gms.comeUp();
    expect((await post(gms.webhookUrl, event())).status).toBe(200);
  });

  it("refuses connections, drops them, or hangs, then comes back on the same URL", async () => {
    const gms = await start();
    await gms.goDown("refuse");
    // A pooled connection may first fail as closed; a new one is refused.
    await expect(post(gms.webhookUrl, event())).rejects.toThrow();
    await expect(post(gms.webhookUrl, event())).rejects.toMatchObject({ cause: { code: "ECONNREFUSED" } });
    await gms.goDown("reset");
    await expect(post(gms.webhookUrl, event())).rejects.toThrow();
    await gms.goDown("hang");
    await expect(post(gms.webhookUrl, event(), { signal: AbortSignal.timeout(150) })).rejects.toThrow();
    await gms.comeUp();
    expect((await post(gms.webhookUrl, event())).status).toBe(200);
  });
});
