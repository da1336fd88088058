import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../../server/logger.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { connect, nextEvent, postJson, request } from "../helpers/socket.js";
import {
  DEFAULT_FAKE_USER,
  startFakeRocketChat,
  type FakeRocketChat,
  type FakeRocketChatOptions,
} from "../fakes/rocketchat/index.js";
import { startFakeRapidPro, type FakeRapidPro, type FakeRapidProOptions } from "../fakes/rapidpro/index.js";
import type { ConversationInfo } from "../../protocol/index.js";

const RC_SECRET = "rc-secret";
const FLOW_TOKEN = "flow-webhook-token";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Liaison between a fake RapidPro (API + flow player) and a fake Rocket.Chat, wired as in production. */
async function scenario(
  options: { rc?: FakeRocketChatOptions; rp?: FakeRapidProOptions; env?: Record<string, string>; logger?: Logger } = {},
) {
  const rocketChat = await startFakeRocketChat({ secretToken: RC_SECRET, retryIntervalMs: 100, ...options.rc });
  cleanups.push(() => rocketChat.close());
  const rapidPro = await startFakeRapidPro(options.rp);
  cleanups.push(() => rapidPro.close());
  const closeFlow = rapidPro.addFlow({ name: "After chat" });
  const gateway = await startTestApp(
    {
      ROCKETCHAT_URL: rocketChat.url,
      ROCKETCHAT_WEBHOOK_TOKEN: RC_SECRET,
      ROCKETCHAT_USER_ID: DEFAULT_FAKE_USER.userId,
      ROCKETCHAT_AUTH_TOKEN: DEFAULT_FAKE_USER.authToken,
      RAPIDPRO_URL: rapidPro.url,
      RAPIDPRO_TOKEN: rapidPro.token,
      RAPIDPRO_WEBHOOK_TOKEN: FLOW_TOKEN,
      RAPIDPRO_CLOSE_FLOW: closeFlow.uuid,
      RAPIDPRO_REGISTER_WAIT_MS: "3000",
      ...options.env,
    },
    {
      tuning: { retryMaxMs: 1_000, noAgentRetryMaxMs: 1_000 },
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    },
  );
  cleanups.push(() => gateway.close());
  // Existing installations point Rocket.Chat's webhook at the old mediator path.
  rocketChat.setWebhookUrl(`${gateway.url}/live-agents/sendMessageToClient`);
  const flowHeaders = { Authorization: `Token ${FLOW_TOKEN}` };
  const register = (contact: { uuid: string; name: string }, extra: Record<string, unknown> = {}) =>
    rapidPro.callWebhook(`${gateway.url}/live-agents/registerClient`, {
      shape: "custom",
      contact,
      department: "Support",
      headers: flowHeaders,
      ...extra,
    });
  const say = (contact: { uuid: string; name: string }, text: string, extra: Record<string, unknown> = {}) =>
    rapidPro.callWebhook(`${gateway.url}/live-agents/sendMessageToAgent`, {
      shape: "custom",
      contact,
      results: { clientmessage: text },
      headers: flowHeaders,
      ...extra,
    });
  return { rocketChat, rapidPro, gateway, closeFlow, register, say, flowHeaders };
}

const roomOf = async (gateway: TestApp, conversationId: string) => {
  let rid: string | undefined;
  await expect
    .poll(async () => {
      rid = (await gateway.app.store.get(conversationId))?.desk.ids.rid;
      return rid;
    })
    .toBeTruthy();
  return rid ?? "";
};
const visitorTexts = (rc: FakeRocketChat, rid: string) =>
  rc
    .messages(rid)
    .filter((m) => m.t === undefined && m.token !== undefined)
    .map((m) => m.msg);
const sentTexts = (rp: FakeRapidPro, contact: string) => rp.sent(contact).map((m) => m.text);

describe("RapidPro contacts talk to Rocket.Chat agents through /live-agents", () => {
  it("runs a whole hand-off: register, bot history for the agent, taken, both ways, close, flow start", async () => {
    const { rocketChat, rapidPro, gateway, closeFlow, register, say } = await scenario({ rc: { routing: "manual" } });
    const contact = rapidPro.addContact({ name: "Amina", urns: ["whatsapp:50255501234"], language: "eng" });
    rapidPro.addMessage(contact.uuid, { direction: "out", text: "Hi! How can I help?" });
    rapidPro.addMessage(contact.uuid, { direction: "in", text: "I need to talk to someone" });

    const registered = await register({ uuid: contact.uuid, name: "Amina" });
    expect(registered.status).toBe(200);
    const body = registered.json as { conversationId: string; roomId: string; status: string };
    expect(body.status).toBe("queued");
    expect(body.roomId).toBe(await roomOf(gateway, body.conversationId));
    // The agent sees the bot conversation first.
    await expect.poll(() => visitorTexts(rocketChat, body.roomId)[0] ?? "").toContain("I need to talk to someone");
    expect(visitorTexts(rocketChat, body.roomId)[0]).toContain("Bot: Hi! How can I help?");
    // Registering again returns the same conversation.
    expect((await register({ uuid: contact.uuid, name: "Amina" })).json).toMatchObject({
      conversationId: body.conversationId,
    });

    rocketChat.takeRoom(body.roomId, "agent1");
    await expect.poll(() => sentTexts(rapidPro, contact.uuid)).toEqual(["You are now being attended by: Jane Doe"]);

    const said = await say({ uuid: contact.uuid, name: "Amina" }, "My results came back");
    expect(said.status).toBe(200);
    expect(said.json).toMatchObject({ conversationId: body.conversationId });
    await expect.poll(() => visitorTexts(rocketChat, body.roomId).at(-1)).toBe("My results came back");

    rocketChat.agentSend(body.roomId, "Thanks :pray: let me look");
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).at(-1)).toBe("Thanks 🙏 let me look");

    rocketChat.closeByAgent(body.roomId, "Take care");
    await expect
      .poll(() => sentTexts(rapidPro, contact.uuid).at(-1))
      .toBe("The conversation with the agent has ended.");
    await expect.poll(() => rapidPro.flowStarts().length).toBe(1);
    expect(rapidPro.flowStarts()[0]).toMatchObject({
      flow: closeFlow.uuid,
      params: { closed_by: "agent", conversation_id: body.conversationId },
    });
    // The same conversation over the Customer Channel protocol.
    const observer = await connect(gateway.url, { apiKey: gateway.apiKey });
    cleanups.push(() => {
      observer.close();
    });
    const info = nextEvent<ConversationInfo>(observer, "conversationInfo");
    await request(observer, "joinConversation", {
      conversationId: body.conversationId,
      id: "sup",
      name: "Sup",
      role: "supervisor",
    });
    expect((await info).conversation).toMatchObject({ channel: "rapidpro", state: "ended" });
  });

  it("delivers a 1,500-character agent reply in word-boundary parts, an edit as a correction, files both ways", async () => {
    const { rocketChat, rapidPro, gateway, register, say } = await scenario();
    const contact = rapidPro.addContact({ name: "Bilal", urns: ["tel:+923001234567"] });
    const registered = (await register({ uuid: contact.uuid, name: "Bilal" })).json as {
      conversationId: string;
      roomId: string;
    };
    const rid = await roomOf(gateway, registered.conversationId);
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(1); // attended (auto-assigned)

    const long = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ");
    expect(long.length).toBeGreaterThan(1500);
    const reply = rocketChat.agentSend(rid, long);
    // Split on word boundaries into parts RapidPro accepts, in order: together they are the reply.
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).slice(1).join(" ")).toBe(long);
    const parts = sentTexts(rapidPro, contact.uuid).slice(1);
    expect(parts.length).toBeGreaterThanOrEqual(Math.ceil(long.length / 640));
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(640);
      expect(part).toMatch(/^word\d+.*word\d+$/);
    }

    rocketChat.agentEdit(rid, reply._id, "Short version: all fine");
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).at(-1)).toBe("Correction: Short version: all fine");

    const png = Buffer.from("89504e470d0a1a0a", "hex");
    rocketChat.agentSendFile(rid, { name: "leaflet.png", type: "image/png", content: png, description: "Read this" });
    await expect.poll(() => rapidPro.media().length).toBe(1);
    expect(rapidPro.media()[0]?.content.equals(png)).toBe(true);
    await expect.poll(() => rapidPro.sent(contact.uuid).at(-1)?.attachments.length).toBe(1);
    expect(rapidPro.sent(contact.uuid).at(-1)?.text).toBe("Read this");

    // The contact's photo, as RapidPro's richer body carries it, reaches the room as a file.
    const photo = rapidPro.addMedia({
      filename: "photo.jpg",
      contentType: "image/jpeg",
      content: Buffer.from("jpeg-bytes"),
    });
    const photoUrl = photo.url;
    const said = await say({ uuid: contact.uuid, name: "Bilal" }, "here is my photo", {
      shape: "legacy",
      input: { text: "here is my photo", attachments: [`image/jpeg:${photoUrl}`] },
    });
    expect(said.status).toBe(200);
    await expect
      .poll(() => rocketChat.files().filter((f) => f.rid === rid && f.name === "photo.jpg" && !f.thumbnailOf).length)
      .toBe(1);
  });
});

describe("RapidPro hand-offs when things go wrong", () => {
  it("loses and doubles nothing through RapidPro throttling and Rocket.Chat being down", async () => {
    const { rocketChat, rapidPro, gateway, register, say } = await scenario();
    const contact = rapidPro.addContact({ name: "Chen", urns: ["tel:+8613800138000"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Chen" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(1);

    // RapidPro throttles the workspace while the agent writes three replies.
    rapidPro.failNext(2, 429, { retryAfterSeconds: 1 });
    // Rocket.Chat sends each webhook on its own: each reply is recorded before the agent types the next.
    for (const text of ["one", "two", "three"]) {
      rocketChat.agentSend(rid, text);
      await rocketChat.whenWebhooksIdle();
    }
    // Rocket.Chat is down while the contact writes three messages: each call is still answered at once.
    rocketChat.goDown("503");
    for (const text of ["a", "b", "c"]) {
      const said = await say({ uuid: contact.uuid, name: "Chen" }, text);
      expect(said.status).toBe(200);
    }
    await expect.poll(() => rocketChat.requests.some((r) => r.status === 503)).toBe(true);
    rocketChat.comeUp();

    await expect
      .poll(() => sentTexts(rapidPro, contact.uuid).slice(1), { timeout: 10_000 })
      .toEqual(["one", "two", "three"]);
    await expect.poll(() => visitorTexts(rocketChat, rid).slice(-3), { timeout: 10_000 }).toEqual(["a", "b", "c"]);
    expect(rapidPro.requests.filter((r) => r.status === 429).length).toBe(2);
    expect(visitorTexts(rocketChat, rid).filter((t) => ["a", "b", "c"].includes(t))).toHaveLength(3);
  });

  it("delivers a repeated reply twice when the retry follows a refusal (a 429 sent nothing)", async () => {
    const { rocketChat, rapidPro, gateway, register } = await scenario();
    const contact = rapidPro.addContact({ name: "Kofi", urns: ["tel:+233200000001"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Kofi" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(1);
    rocketChat.agentSend(rid, "Are you still there?");
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(2);
    rapidPro.failNext(1, 429, { retryAfterSeconds: 1 });
    rocketChat.agentSend(rid, "Are you still there?");
    await expect
      .poll(() => sentTexts(rapidPro, contact.uuid).slice(1), { timeout: 8_000 })
      .toEqual(["Are you still there?", "Are you still there?"]);
  });

  it("answers 503 when no agent is online so the flow takes its Failure branch, and leaves nothing behind", async () => {
    const { rapidPro, gateway, register } = await scenario({
      rc: { agents: [{ _id: "agent1", username: "jane.doe", name: "Jane Doe", online: false }] },
    });
    const contact = rapidPro.addContact({ name: "Dana", urns: ["tel:+254700000001"] });
    const registered = await register({ uuid: contact.uuid, name: "Dana" });
    expect(registered.status).toBe(503);
    expect(registered.json).toMatchObject({ error: { code: "unavailable" } });
    const latest = await gateway.app.store.findLatestByChannelRef("rapidpro", contact.uuid);
    expect(latest?.state).toBe("ended");
    await rapidPro.whenIdle();
    expect(rapidPro.sent(contact.uuid)).toEqual([]);
  });

  it("answers each kind of sendMessageToAgent request with its status and error code", async () => {
    const { rapidPro, gateway, register, flowHeaders } = await scenario({ env: { MAX_PAYLOAD_BYTES: "4096" } });
    const contact = rapidPro.addContact({ name: "Femi", urns: ["tel:+2348000000001"] });
    const registered = await register({ uuid: contact.uuid, name: "Femi" });
    expect(registered.status).toBe(200);
    const body = (text: string, uuid = contact.uuid) =>
      JSON.stringify({ contact: { uuid, name: "Femi" }, results: { clientmessage: { value: text } } });
    const json = { "content-type": "application/json" };
    const token = { authorization: flowHeaders.Authorization };
    /** A raw POST: a Uint8Array body goes without a Content-Type (fetch adds one to a string). */
    const post = async (payload: string | Uint8Array, headers: Record<string, string>) => {
      const response = await fetch(`${gateway.url}/live-agents/sendMessageToAgent`, {
        method: "POST",
        headers,
        body: payload,
      });
      const reply = (await response.json()) as { error?: { code?: string }; messageId?: unknown };
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      return { status: response.status, code: reply.error?.code ?? typeof reply.messageId };
    };
    const cases: [string, string | Uint8Array, Record<string, string>, { status: number; code: string }][] = [
      ["recorded", body("hello"), { ...json, ...token }, { status: 200, code: "string" }],
      ["recorded, no Content-Type", new TextEncoder().encode(body("no type")), token, { status: 200, code: "string" }],
      [
        "recorded, text/plain",
        body("plain"),
        { "content-type": "text/plain; charset=utf-8", ...token },
        { status: 200, code: "string" },
      ],
      ["no token", body("x"), json, { status: 401, code: "unauthorized" }],
      ["wrong token", body("x"), { ...json, authorization: "Token nope" }, { status: 401, code: "unauthorized" }],
      // A body that says JSON is parsed (by the app's parser) before the token is checked, one that does not after.
      [
        "bad JSON, wrong token, JSON type",
        "{oops",
        { ...json, authorization: "Token nope" },
        { status: 400, code: "invalid_payload" },
      ],
      [
        "bad JSON, wrong token, no JSON type",
        "{oops",
        { "content-type": "text/plain", authorization: "Token nope" },
        { status: 401, code: "unauthorized" },
      ],
      ["bad JSON", "{oops", { ...json, ...token }, { status: 400, code: "invalid_payload" }],
      [
        "not a flow body",
        JSON.stringify({ contact: { name: "no uuid" } }),
        { ...json, ...token },
        { status: 400, code: "invalid_payload" },
      ],
      ["empty message", body(" "), { ...json, ...token }, { status: 400, code: "invalid_payload" }],
      [
        "unknown contact",
        body("x", "00000000-0000-4000-8000-000000000009"),
        { ...json, ...token },
        { status: 404, code: "not_found" },
      ],
      ["too large", body("x".repeat(5000)), { ...json, ...token }, { status: 413, code: "payload_too_large" }],
    ];
    for (const [what, payload, headers, expected] of cases) {
      expect({ what, ...(await post(payload, headers)) }).toEqual({ what, ...expected });
    }
    const recorded = await gateway.app.store.findLatestByChannelRef("rapidpro", contact.uuid);
    const texts = (await gateway.app.store.read(recorded?.id ?? "", 0)).flatMap((m) =>
      m.type === "ChatMessage" ? [m.text] : [],
    );
    expect(texts).toEqual(["hello", "no type", "plain"]);
  });

  it("refuses unknown contacts, bad bodies and missing tokens; parses JSON without a Content-Type; keeps simulator calls off the API", async () => {
    const { rapidPro, gateway, say, register } = await scenario();
    const stranger = { uuid: "00000000-0000-4000-8000-000000000001", name: "Nobody" };
    expect((await say(stranger, "hello?")).status).toBe(404);
    const url = `${gateway.url}/live-agents/sendMessageToAgent`;
    expect(
      (await rapidPro.callWebhook(url, { shape: "custom", contact: stranger, results: { clientmessage: "x" } })).status,
    ).toBe(401);
    expect(
      (
        await rapidPro.callWebhook(url, {
          shape: "custom",
          contact: stranger,
          results: { clientmessage: "x" },
          headers: { Authorization: "Token nope" },
        })
      ).status,
    ).toBe(401);
    const bad = await postJson(url, { contact: { name: "no uuid" } }, { authorization: `Token ${FLOW_TOKEN}` });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: "invalid_payload" } } });
    expect((await postJson(url, "{oops", { authorization: `Token ${FLOW_TOKEN}` })).status).toBe(400);

    const contact = rapidPro.addContact({ name: "Eve", urns: ["tel:+254700000002"] });
    const registered = await register({ uuid: contact.uuid, name: "Eve" }, { contentType: "none" });
    expect(registered.status).toBe(200);

    const before = rapidPro.requests.length;
    const ghost = { uuid: "11111111-1111-4111-8111-111111111111", name: "Simulator" };
    const simulated = await register(ghost, { simulation: true });
    expect(simulated.status).toBe(200);
    const { conversationId } = simulated.json as { conversationId: string };
    await roomOf(gateway, conversationId);
    expect(rapidPro.requests.length).toBe(before);
  });

  it("opens a new conversation when the contact writes after the agent closed, or refuses with 409 when configured", async () => {
    const first = await scenario();
    const contact = first.rapidPro.addContact({ name: "Femi", urns: ["tel:+2348000000001"] });
    const { conversationId } = (await first.register({ uuid: contact.uuid, name: "Femi" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(first.gateway, conversationId);
    first.rocketChat.closeByAgent(rid);
    await expect.poll(async () => (await first.gateway.app.store.get(conversationId))?.state).toBe("ended");
    const again = await first.say({ uuid: contact.uuid, name: "Femi" }, "one more thing");
    expect([200, 202]).toContain(again.status);
    const reopened = (again.json as { conversationId: string }).conversationId;
    expect(reopened).not.toBe(conversationId);
    const newRoom = await roomOf(first.gateway, reopened);
    await expect.poll(() => visitorTexts(first.rocketChat, newRoom)).toContain("one more thing");

    const strict = await scenario({ env: { RAPIDPRO_REOPEN: "false" } });
    const other = strict.rapidPro.addContact({ name: "Gil", urns: ["tel:+2348000000002"] });
    const registered = (await strict.register({ uuid: other.uuid, name: "Gil" })).json as { conversationId: string };
    strict.rocketChat.closeByAgent(await roomOf(strict.gateway, registered.conversationId));
    await expect.poll(async () => (await strict.gateway.app.store.get(registered.conversationId))?.state).toBe("ended");
    expect((await strict.say({ uuid: other.uuid, name: "Gil" }, "hello again")).status).toBe(409);
  });

  it("tells the agent in the room when a contact cannot be reached, and reports a rejected token in /ready", async () => {
    const { rocketChat, rapidPro, gateway, register } = await scenario();
    const contact = rapidPro.addContact({ name: "Hana", urns: ["tel:+819000000001"], status: "stopped" });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Hana" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    rocketChat.agentSend(rid, "Are you there?");
    await expect
      .poll(() => visitorTexts(rocketChat, rid).some((t) => t.startsWith("⚠ Not delivered to the customer")))
      .toBe(true);
    const log = await gateway.app.store.read(conversationId, 0);
    expect(log.some((m) => m.type === "ActivityMessage" && m.activityType === "deliveryFailed")).toBe(true);

    rapidPro.failNext(1, 403);
    rocketChat.agentSend(rid, "Hello?");
    await expect
      .poll(async () => await (await fetch(`${gateway.url}/ready`)).json())
      .toMatchObject({
        status: "degraded",
        problems: { rapidpro: expect.stringMatching(/^RapidPro rejects the API token \(403\)/) as unknown },
      });
  });

  it("sends an agent file RapidPro does not take as its link, and tells the agent in the room", async () => {
    const { rocketChat, rapidPro, gateway, register } = await scenario({ rp: { maxUploadBytes: 64 } });
    const contact = rapidPro.addContact({ name: "Lina", urns: ["tel:+96170000001"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Lina" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(1);
    const docx = Buffer.from("PK-docx-bytes");
    rocketChat.agentSendFile(rid, {
      name: "form.docx",
      type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
      content: docx,
      description: "Please fill this in",
    });
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(2);
    const sent = rapidPro.sent(contact.uuid).at(-1);
    // The reply is not lost: its text goes, with the file's link (Liaison's signed link, which the contact can open).
    expect(sent?.attachments).toEqual([]);
    const [caption, line] = (sent?.text ?? "").split("\n");
    expect(caption).toBe("Please fill this in");
    const link = /^form\.docx: (https?:\/\/\S+)$/.exec(line ?? "")?.[1] ?? "";
    expect(link.startsWith(`${gateway.url}/files/rocketchat/`)).toBe(true);
    expect(Buffer.from(await (await fetch(link)).arrayBuffer()).equals(docx)).toBe(true);
    expect(rapidPro.media()).toEqual([]);
    await expect
      .poll(() => visitorTexts(rocketChat, rid).filter((t) => t.startsWith("⚠ Not attached for the customer")))
      .toEqual([
        "⚠ Not attached for the customer: form.docx (RapidPro does not take application/vnd.openxmlformats-officedocument.wordprocessingml.document files); the customer got a link to it instead",
      ]);
    // A file RapidPro takes by type but refuses on upload (too large here) goes the same way, named by RapidPro.
    rocketChat.agentSendFile(rid, { name: "clip.mp4", type: "video/mp4", content: Buffer.alloc(100) });
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(3);
    expect(rapidPro.sent(contact.uuid).at(-1)?.text).toMatch(/^clip\.mp4: http/);
    await expect
      .poll(() =>
        visitorTexts(rocketChat, rid)
          .filter((t) => t.startsWith("⚠ Not attached"))
          .at(-1),
      )
      .toContain("clip.mp4 (RapidPro refused it: Limit for file uploads is 0.00006103515625 MB.)");
    const failures = (await gateway.app.store.read(conversationId, 0)).filter(
      (m) => m.type === "ActivityMessage" && m.activityType === "deliveryFailed",
    );
    expect(
      failures.map((m) => (m.type === "ActivityMessage" && m.activityType === "deliveryFailed" ? m.info.reason : "")),
    ).toEqual([
      "form.docx was not attached (RapidPro does not take application/vnd.openxmlformats-officedocument.wordprocessingml.document files); the customer got a link to it instead",
      "clip.mp4 was not attached (RapidPro refused it: Limit for file uploads is 0.00006103515625 MB.); the customer got a link to it instead",
    ]);
  });

  it("serves a server older than v8.1.37 with broadcasts: files as links, @ escaped before the text is split", async () => {
    for (const media of ["links", "upload"] as const) {
      const { rocketChat, rapidPro, gateway, register } = await scenario({
        rp: { version: "8.1.30" },
        env: { RAPIDPRO_SEND: "broadcasts", RAPIDPRO_MEDIA: media },
      });
      const contact = rapidPro.addContact({ name: "Ivan", urns: ["tel:+79000000002"] });
      const { conversationId } = (await register({ uuid: contact.uuid, name: "Ivan" })).json as {
        conversationId: string;
      };
      const rid = await roomOf(gateway, conversationId);
      const settled = async () => {
        await rapidPro.whenIdle();
        return sentTexts(rapidPro, contact.uuid);
      };
      await expect.poll(settled).toHaveLength(1);
      // 600 characters with 100 "@": 700 once escaped, more than the old server's 640.
      const text = Array.from({ length: 100 }, (_, i) => `a@b${String(i).padStart(2, "0")}`).join(" ");
      expect(text.length).toBe(599);
      rocketChat.agentSend(rid, text);
      await expect.poll(async () => (await settled()).slice(1).join(" ")).toBe(text);
      expect(
        rapidPro.broadcasts().every((b) => Object.values(b.translations).every((t) => (t.text?.length ?? 0) <= 640)),
      ).toBe(true);
      rocketChat.agentSendFile(rid, { name: "map.png", type: "image/png", content: Buffer.from("png") });
      await expect
        .poll(async () => (await settled()).at(-1))
        .toMatch(/^map\.png: http:\/\/127\.0\.0\.1:\d+\/files\/rocketchat\//);
      expect(rapidPro.sent(contact.uuid).every((m) => m.attachments.length === 0)).toBe(true);
      // RAPIDPRO_MEDIA=upload met the old Surveyor endpoint (400 {}): the file went as its link all the same.
      expect(rapidPro.requests.filter((r) => r.path === "/api/v2/media.json").map((r) => r.status)).toEqual(
        media === "upload" ? [400] : [],
      );
    }
  });

  it("names in /ready what RapidPro's 403 says (no credentials: a proxy dropped them; a refused role; a rejected token), the log how to mend it", async () => {
    let strip = true;
    let rapidProUrl = "";
    // A proxy in front of RapidPro that may drop the Authorization header, as a misconfigured one does.
    const proxy = createServer((req, res) => {
      const headers = { ...req.headers };
      if (strip) delete headers.authorization;
      const upstream = httpRequest(`${rapidProUrl}${req.url ?? ""}`, { method: req.method, headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          proxy.closeAllConnections();
          proxy.close(() => resolve());
        }),
    );
    // Manual routing: no agent takes the chats, so the only RapidPro calls are the ones each step makes.
    const { logger, lines } = capturedLogger();
    const { rapidPro, gateway, register } = await scenario({
      rc: { routing: "manual" },
      env: { RAPIDPRO_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` },
      logger,
    });
    const logged = () =>
      lines
        .map((line) => JSON.parse(line) as { component?: string; msg: string; problem?: string })
        .filter((line) => line.component === "rapidpro" && line.msg === "problem")
        .map((line) => line.problem);
    rapidProUrl = rapidPro.url;
    // Besides this machine's PUBLIC_URL (a warning of the configuration), what RapidPro's last 403 said.
    const ready = async (app: TestApp) =>
      (
        ((await (await fetch(`${app.url}/ready`)).json()) as { problems?: Record<string, string> }).problems
          ?.rapidpro ?? ""
      ).replace(/(; )?links point at this machine$/, "");
    // Each hand-off asks RapidPro for the contact's recent messages (the agent's digest) at once.
    let phone = 20100000010;
    const handOff = async (name: string) => {
      phone += 1;
      const contact = rapidPro.addContact({ name, urns: [`tel:+${phone}`] });
      expect((await register({ uuid: contact.uuid, name })).status).toBe(200);
    };
    await handOff("Omar");
    expect(await ready(gateway)).toBe(
      "RapidPro received no credentials (403): a proxy may drop the Authorization header",
    );
    strip = false;
    rapidPro.setTokenRole("viewer");
    await handOff("Nadia");
    expect(await ready(gateway)).toBe(
      "RapidPro refuses the API token's user (403): API tokens work for administrators and editors",
    );
    rapidPro.setTokenRole("administrator");
    await handOff("Karim");
    expect(await ready(gateway)).not.toContain("403");
    // Each problem reached the log once, as it appeared, with RapidPro's words and the variable to check.
    expect(logged()).toEqual([
      "RapidPro received no credentials (403: Authentication credentials were not provided.): is RAPIDPRO_TOKEN sent, or does a proxy drop the Authorization header?",
      "RapidPro refuses RAPIDPRO_TOKEN's user (403: You do not have permission to perform this action.): API tokens work for administrators and editors",
    ]);

    const wrong = await scenario({ env: { RAPIDPRO_TOKEN: "not-the-token" } });
    const contact = wrong.rapidPro.addContact({ name: "Rana", urns: ["tel:+201000000099"] });
    expect((await wrong.register({ uuid: contact.uuid, name: "Rana" })).status).toBe(200);
    expect(await ready(wrong.gateway)).toBe("RapidPro rejects the API token (403)");
  });

  it("tells the agent plainly when the contact is gone from RapidPro", async () => {
    const { rocketChat, rapidPro, gateway, register } = await scenario();
    const contact = rapidPro.addContact({ name: "Zed", urns: ["tel:+27600000001"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Zed" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(1);
    const deleted = await fetch(`${rapidPro.url}/api/v2/contact_actions.json`, {
      method: "POST",
      headers: { authorization: `Token ${rapidPro.token}`, "content-type": "application/json" },
      body: JSON.stringify({ contacts: [contact.uuid], action: "delete" }),
    });
    expect(deleted.status).toBe(204);
    rocketChat.agentSend(rid, "Still there?");
    await expect
      .poll(() => visitorTexts(rocketChat, rid).find((t) => t.startsWith("⚠ Not delivered")))
      .toBe(
        `⚠ Not delivered to the customer: "Still there?" (the contact is not in RapidPro (deleted?): No such object: ${contact.uuid})`,
      );
  });

  it("takes the old mediator's minimal webhook body (an agent known by name, messages without ids), once", async () => {
    const { rapidPro, gateway, register } = await scenario({ rc: { routing: "manual" } });
    const contact = rapidPro.addContact({ name: "Amina", urns: ["whatsapp:50255501299"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Amina" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    const post = (type: string, messages: unknown[]) =>
      postJson(
        `${gateway.url}/live-agents/sendMessageToClient`,
        {
          _id: rid,
          visitor: { token: contact.uuid, name: "Amina", email: "", phone: "" },
          agent: { name: "Jane Doe" },
          type,
          messages,
        },
        { "x-rocketchat-livechat-token": RC_SECRET },
      );
    expect((await post("LivechatSessionTaken", [])).status).toBe(200);
    expect((await post("Message", [{ msg: "Hello, how can I help?" }])).status).toBe(200);
    // The same webhook again (a retry): recorded once.
    expect((await post("Message", [{ msg: "Hello, how can I help?" }])).status).toBe(200);
    await expect
      .poll(() => sentTexts(rapidPro, contact.uuid))
      .toEqual(["You are now being attended by: Jane Doe", "Hello, how can I help?"]);
    const log = await gateway.app.store.read(conversationId, 0);
    expect(log.filter((m) => m.type === "ChatMessage" && m.text === "Hello, how can I help?")).toHaveLength(1);
  });

  it("gets the agent's last words to the contact before the closing text when the close arrives first", async () => {
    const { rocketChat, rapidPro, gateway, register } = await scenario();
    const contact = rapidPro.addContact({ name: "Sam", urns: ["tel:+61400000001"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Sam" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    await expect.poll(() => sentTexts(rapidPro, contact.uuid).length).toBe(1);
    await rocketChat.whenWebhooksIdle();
    rocketChat.holdWebhooks();
    rocketChat.agentSend(rid, "All done, goodbye");
    rocketChat.closeByAgent(rid);
    await rocketChat.releaseWebhooks((held) => held.filter((h) => h.type === "LivechatSession"));
    rocketChat.resumeWebhooks();
    await rocketChat.whenWebhooksIdle();
    await expect
      .poll(() => sentTexts(rapidPro, contact.uuid).slice(1))
      .toEqual(["All done, goodbye", "The conversation with the agent has ended."]);
  });

  it("escapes @ for servers that only have broadcasts", async () => {
    const { rocketChat, rapidPro, gateway, register } = await scenario({
      rp: { messagesEndpoint: false },
      env: { RAPIDPRO_SEND: "broadcasts" },
    });
    const contact = rapidPro.addContact({ name: "Ivan", urns: ["tel:+79000000001"] });
    const { conversationId } = (await register({ uuid: contact.uuid, name: "Ivan" })).json as {
      conversationId: string;
    };
    const rid = await roomOf(gateway, conversationId);
    rocketChat.agentSend(rid, "Write to help@example.org, @contact.name");
    await expect
      .poll(async () => {
        await rapidPro.whenIdle();
        return sentTexts(rapidPro, contact.uuid).at(-1);
      })
      .toBe("Write to help@example.org, @contact.name");
  });
});
