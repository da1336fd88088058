import { afterEach, describe, expect, it } from "vitest";
import { RocketChatClient } from "../../server/adapters/rocketchat/client.js";
import {
  WebhookPayloadSchema,
  eventsFromWebhook,
  type WebhookContext,
} from "../../server/adapters/rocketchat/mapper.js";
import type { DeskEvent } from "../../server/core/desk.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { startHttpRecorder, type HttpRecorder } from "../helpers/http-recorder.js";

const context: WebhookContext = {
  fileUrl: (file) => `https://liaison.example/files/${file.id}/${file.name}${file.jwt === undefined ? "" : "?jwt"}`,
};
const map = (payload: unknown, ctx: WebhookContext = context): DeskEvent[] =>
  eventsFromWebhook(WebhookPayloadSchema.parse(payload), ctx);

const agent = { _id: "agent1", username: "jane.doe", name: "Jane Doe" };
const item = (fields: Record<string, unknown>) => ({
  u: agent,
  username: "jane.doe",
  agentId: "agent1",
  rid: "R1",
  ts: "2026-01-10T12:03:00.000Z",
  _updatedAt: "2026-01-10T12:03:00.050Z",
  ...fields,
});

describe("Rocket.Chat webhook mapping: files", () => {
  it("forwards every file of a message: ids from fileId or title_link, never the thumbnail, captions joined", () => {
    const [event] = map({
      type: "Message",
      _id: "R1",
      messages: [
        item({
          _id: "M1",
          file: { _id: "F1", name: "photo.png", type: "image/png", size: 10 },
          attachments: [
            {
              type: "file",
              fileId: "F1",
              title: "photo.png",
              title_link: "/file-upload/F1/photo.png",
              image_url: "/file-upload/THUMB/photo.png",
              image_type: "image/jpeg",
              description: "Both pages",
            },
            // An older Rocket.Chat: no fileId, the id is in the link (the name URI-encoded).
            {
              type: "file",
              title: "scan 2.pdf",
              title_link: "/file-upload/F2/scan%202.pdf",
              description: "Both pages",
            },
            {
              type: "file",
              fileId: "F3",
              title: "voice.ogg",
              title_link: "/file-upload/F3/voice.ogg",
              audio_type: "audio/ogg",
            },
            // A quote or link preview is not a file.
            { text: "quoted", message_link: "https://chat.example/x" },
          ],
          fileUpload: { publicFilePath: "https://chat.example/file-upload/F1/photo.png?token=jwt1", type: "image/png" },
        }),
      ],
    });
    expect(event).toMatchObject({
      type: "agentMessage",
      externalId: "M1",
      text: "Both pages",
      attachments: [
        // The first file's type comes from `file`, not the thumbnail's image_type; only it has a JWT.
        { type: "image/png", name: "photo.png", contentUrl: "https://liaison.example/files/F1/photo.png?jwt" },
        { type: "application/pdf", name: "scan 2.pdf", contentUrl: "https://liaison.example/files/F2/scan 2.pdf" },
        { type: "audio/ogg", name: "voice.ogg", contentUrl: "https://liaison.example/files/F3/voice.ogg" },
      ],
    });
  });

  it("still reads a file message without attachments, and drops block-only messages", () => {
    expect(
      map({ type: "Message", messages: [item({ _id: "M2", file: { _id: "F9", name: "a.bin" } })] })[0],
    ).toMatchObject({ attachments: [{ type: "application/octet-stream", name: "a.bin" }], text: "" });
    expect(map({ type: "Message", messages: [item({ _id: "M3", msg: '[{"type":"section"}]' })] })).toEqual([]);
  });
});

describe("Rocket.Chat webhook mapping: the close transcript", () => {
  const close = (messages: unknown[]) => ({
    type: "LivechatSession",
    _id: "R1",
    agent,
    closer: "user",
    closedBy: { _id: "agent1", username: "jane.doe" },
    messages,
  });

  it("puts the room's agent messages before the end; visitor messages and the closing comment stay out", () => {
    const events = map(
      close([
        {
          u: { _id: "V1", username: "guest-1" },
          _id: "V-1",
          username: "guest-1",
          msg: "Hi",
          ts: "2026-01-10T12:00:00.000Z",
        },
        item({ _id: "M1", msg: "Hello :wave:" }),
        item({ _id: "M2", msg: "Bye", editedAt: "2026-01-10T12:04:00.000Z" }),
        item({ _id: "M3", msg: "Solved", closingMessage: true }),
      ]),
    );
    expect(events.map((e) => (e.type === "agentMessage" ? `${e.externalId}:${e.text}` : e.type))).toEqual([
      "M1:Hello 👋",
      "M2@2026-01-10T12:04:00.000Z:Bye",
      "closed",
    ]);
    expect(events.at(-1)).toEqual({
      type: "closed",
      by: "agent",
      agent: { id: "rocketchat:agent1", name: "jane.doe" },
      reason: "Solved",
    });
  });

  it("leaves out messages from before Liaison opened the room (an adopted room's earlier conversation)", () => {
    const openedAt = Date.parse("2026-01-10T12:10:00.000Z");
    const events = map(
      close([
        item({ _id: "OLD", msg: "from the old mediator days", ts: "2026-01-09T08:00:00.000Z" }),
        item({ _id: "NEW", msg: "hello again", ts: "2026-01-10T12:11:00.000Z" }),
      ]),
      { ...context, openedAt },
    );
    expect(events.flatMap((e) => (e.type === "agentMessage" ? [e.externalId] : []))).toEqual(["NEW"]);
  });
});

describe("Rocket.Chat webhook mapping: the old mediator's minimal body", () => {
  const minimal = (type: string, messages: unknown[], extra: Record<string, unknown> = {}) => ({
    _id: "2q4FnH8mnrizF2iBT",
    visitor: { token: "5d76d86b-3bb9-4d5a-b822-c1f2b1c8a6f0", name: "Amina", email: "", phone: "" },
    agent: { name: "Jane Doe" },
    type,
    messages,
    ...extra,
  });

  it("takes an agent known by name only, and its messages without _id or agentId", () => {
    expect(map(minimal("LivechatSessionTaken", []))).toEqual([
      { type: "agentJoined", agent: { id: "rocketchat:name:Jane Doe", name: "Jane Doe" } },
    ]);
    const [event] = map(minimal("Message", [{ msg: "Hello, how can I help? :smile:" }]));
    expect(event).toMatchObject({
      type: "agentMessage",
      agent: { id: "rocketchat:name:Jane Doe", name: "Jane Doe" },
      text: "Hello, how can I help? 😄",
      attachments: [],
    });
  });

  it("gives a retried webhook the same key, and other text, position or ts another", () => {
    const key = (payload: unknown) => {
      const [event] = map(payload);
      return event?.type === "agentMessage" ? event.externalId : undefined;
    };
    const once = key(minimal("Message", [{ msg: "ok?" }]));
    expect(once).toMatch(/^mediator:[\w-]{24}$/);
    expect(key(minimal("Message", [{ msg: "ok?" }]))).toBe(once);
    expect(key(minimal("Message", [{ msg: "ok!" }]))).not.toBe(once);
    expect(key(minimal("Message", [{ msg: "ok?", ts: "2026-01-10T12:00:00.000Z" }]))).not.toBe(once);
    expect(key(minimal("Message", [{ msg: "ok?" }], { _id: "another-room" }))).not.toBe(once);
    const two = map(minimal("Message", [{ msg: "same" }, { msg: "same" }]));
    expect(new Set(two.map((e) => (e.type === "agentMessage" ? e.externalId : ""))).size).toBe(2);
  });

  it("never takes Rocket.Chat's own items (with username) or the Send Test sample for agent messages", () => {
    expect(map(minimal("Message", [{ msg: "echo", username: "guest-1" }]))).toEqual([]);
    const sample = {
      type: "LivechatSession",
      _id: "fasd6f5a4sd6f8a4sdf",
      visitor: { _id: "", token: "123456789", email: "test@example.com", phone: "123456789" },
      agent: { _id: "asdf89as6df8", username: "agent.username", name: "Agent Name", email: "agent@email.com" },
      messages: [{ username: "test", msg: "test message", ts: "2016-06-01T18:41:16.856Z" }],
    };
    expect(map(sample).map((e) => e.type)).toEqual(["closed"]);
  });
});

describe("Rocket.Chat client: /ready while rate-limited", () => {
  let recorder: HttpRecorder | undefined;
  afterEach(async () => {
    await recorder?.close();
    recorder = undefined;
  });

  it("reports a route that ran into the limit three times within five minutes, logs it once, and forgets it after", async () => {
    let now = Date.parse("2026-01-10T12:00:00.000Z");
    recorder = await startHttpRecorder((_request, res) => {
      res
        .writeHead(429, {
          "content-type": "application/json",
          "x-ratelimit-limit": "10",
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": String(now + 1_000),
        })
        .end(
          JSON.stringify({
            success: false,
            error:
              "Error, too many requests. Please slow down. You must wait 1 seconds before trying this endpoint again. [error-too-many-requests]",
          }),
        );
    });
    const { logger, lines } = capturedLogger();
    const warnings = () =>
      lines
        .map((line) => JSON.parse(line) as { level: number; msg: string; problem?: string })
        .filter((line) => line.level === 40)
        .map((line) => `${line.msg}: ${line.problem ?? ""}`);
    const client = new RocketChatClient({ baseUrl: recorder.url, timeoutMs: 1_000, logger, now: () => now });
    const send = () => client.sendMessage({ token: "t", rid: "r", msg: "hi", _id: "x" }).catch((e: unknown) => e);
    for (let i = 0; i < 2; i += 1) {
      expect(await send()).toMatchObject({ retryable: true, upstreamStatus: 429, retryAfterMs: 1_000 });
      now += 60_000;
    }
    expect(client.rateLimitProblem()).toBeUndefined();
    expect(warnings()).toEqual([]);
    await send();
    const detail =
      "Rocket.Chat keeps rate-limiting livechat/message (10 per window) (3 times or more within 5 minutes): raise " +
      "API_Enable_Rate_Limiter_Limit_Calls_Default or turn API_Enable_Rate_Limiter off";
    expect(client.rateLimitProblem()).toEqual({
      log: detail,
      ready: "Rocket.Chat keeps rate-limiting Liaison (its REST API rate limiter)",
    });
    // While the gate is closed, nothing is sent (and nothing more is counted).
    expect(await send()).toMatchObject({ upstreamStatus: 429, message: "livechat/message: rate limited" });
    expect(recorder.received).toHaveLength(3);
    now += 2_000;
    await send();
    expect(recorder.received).toHaveLength(4);
    expect(client.rateLimitProblem()?.log).toBe(detail);
    // Logged as it started, not again at the next hit or when /ready asks.
    expect(warnings()).toEqual([`problem: ${detail}`]);
    now += 5 * 60_000;
    expect(client.rateLimitProblem()).toBeUndefined();
    expect(warnings()).toEqual([`problem: ${detail}`, `problem over: ${detail}`]);
  });
});
