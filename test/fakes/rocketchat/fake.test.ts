import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_FAKE_USER, startFakeRocketChat } from "./index.js";
import type { FakeRocketChat, FakeRocketChatOptions, RcWebhookBody } from "./index.js";
import { startHttpRecorder } from "../../helpers/http-recorder.js";

// Self-test of the fake's strictness with plain fetch: the exact statuses and strings of rocketchat.md.

type Json = Record<string, unknown>;

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function start(options: FakeRocketChatOptions = {}): Promise<FakeRocketChat> {
  const fake = await startFakeRocketChat(options);
  cleanups.push(() => fake.close());
  return fake;
}

interface ApiResult {
  status: number;
  body: Json;
  headers: Headers;
}

async function api(
  fake: FakeRocketChat,
  method: string,
  path: string,
  opts: { body?: unknown; query?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<ApiResult> {
  const url = new URL(`${fake.url}/api/v1/${path}`);
  for (const [key, value] of Object.entries(opts.query ?? {})) url.searchParams.set(key, value);
  const response = await fetch(url, {
    method,
    headers: { ...(opts.body === undefined ? {} : { "content-type": "application/json" }), ...opts.headers },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  return { status: response.status, body: (await response.json()) as Json, headers: response.headers };
}

const botAuth = { "x-user-id": DEFAULT_FAKE_USER.userId, "x-auth-token": DEFAULT_FAKE_USER.authToken };

async function visitor(fake: FakeRocketChat, token: string, extra: Json = {}): Promise<Json> {
  const res = await api(fake, "POST", "livechat/visitor", {
    body: { visitor: { token, name: "Ryan Lewis", ...extra } },
  });
  expect(res.status).toBe(200);
  return res.body.visitor as Json;
}

async function openRoom(fake: FakeRocketChat, token: string): Promise<Json> {
  const res = await api(fake, "GET", "livechat/room", { query: { token } });
  expect(res.status).toBe(200);
  return res.body.room as Json;
}

async function upload(
  fake: FakeRocketChat,
  rid: string,
  token: string | undefined,
  file: { name: string; type: string; content: Buffer },
  fields: Record<string, string> = {},
): Promise<ApiResult> {
  const form = new FormData();
  form.append("file", new Blob([file.content], { type: file.type }), file.name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const response = await fetch(`${fake.url}/api/v1/livechat/upload/${rid}`, {
    method: "POST",
    headers: token === undefined ? {} : { "x-visitor-token": token },
    body: form,
  });
  return { status: response.status, body: (await response.json()) as Json, headers: response.headers };
}

interface Received {
  headers: IncomingHttpHeaders;
  body: RcWebhookBody;
}

/** A webhook receiver on 127.0.0.1 that answers each call by `script(n)` (n = 1, 2, …). */
async function receiver(
  script: (n: number, body: RcWebhookBody) => { status: number; text?: string } = () => ({ status: 200 }),
): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const recorder = await startHttpRecorder((request, res, n) => {
    const body = JSON.parse(request.text) as RcWebhookBody;
    received.push({ headers: request.headers, body });
    const answer = script(n, body);
    res.writeHead(answer.status, { "content-type": "text/plain" }).end(answer.text ?? "ok");
  });
  cleanups.push(() => recorder.close());
  return { url: `${recorder.url}/webhooks/rocketchat`, received };
}

// A 1×1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "base64",
);

describe("fake Rocket.Chat: livechat/visitor", () => {
  it("rejects bad bodies with Meteor check() errors and coded errors", async () => {
    const fake = await start();
    expect((await api(fake, "POST", "livechat/visitor", { body: {} })).body).toEqual({
      success: false,
      error: "Match error: Missing key 'visitor'",
    });
    const missingToken = await api(fake, "POST", "livechat/visitor", { body: { visitor: { name: "x" } } });
    expect(missingToken.status).toBe(400);
    expect(missingToken.body).toEqual({ success: false, error: "Match error: Missing key 'token' in field visitor" });
    expect((await api(fake, "POST", "livechat/visitor", { body: { visitor: { token: "t" }, extra: 1 } })).body).toEqual(
      {
        success: false,
        error: "Match error: Unknown key in field extra",
      },
    );
    expect(
      (await api(fake, "POST", "livechat/visitor", { body: { visitor: { token: "t", phone: 5 } } })).body.error,
    ).toBe("Match error: Expected string, got number in field visitor.phone");
    expect((await api(fake, "POST", "livechat/visitor", { body: { visitor: { token: "  " } } })).body).toEqual({
      success: false,
      error: "Token cannot be empty [error-invalid-token]",
      errorType: "error-invalid-token",
      details: { method: "livechat/visitor" },
    });
    const badDep = await api(fake, "POST", "livechat/visitor", {
      body: { visitor: { token: "t", department: "nope" } },
    });
    expect(badDep.status).toBe(400);
    expect(badDep.body).toEqual({
      success: false,
      error: "The provided department is invalid [error-invalid-department]",
      errorType: "error-invalid-department",
    });
    expect((await api(fake, "GET", "livechat/visitor/unknown")).body).toEqual({
      success: false,
      error: "[invalid-token]",
      errorType: "invalid-token",
    });
  });

  it("creates a visitor with phone/email arrays, department by name, defined custom fields only", async () => {
    const fake = await start();
    const res = await api(fake, "POST", "livechat/visitor", {
      body: {
        visitor: {
          token: "c0ffee",
          name: "Ryan Lewis",
          email: "Foo@Bar.com",
          phone: "+12024561111",
          department: "Support",
          customFields: [
            { key: "contactUUID", value: "5d76d86b", overwrite: true },
            { key: "undefinedField", value: "dropped", overwrite: true },
          ],
        },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
    expect(res.body.visitor).toMatchObject({
      token: "c0ffee",
      username: "guest-1",
      status: "online",
      name: "Ryan Lewis",
      phone: [{ phoneNumber: "+12024561111" }],
      visitorEmails: [{ address: "foo@bar.com" }],
      department: "dep1",
      livechatData: { contactUUID: "5d76d86b" },
    });
    const fetched = await api(fake, "GET", "livechat/visitor/c0ffee");
    expect((fetched.body.visitor as Json)._id).toBe((res.body.visitor as Json)._id);
  });

  it("upserts by phone and returns the EXISTING visitor with its OLD token", async () => {
    const fake = await start();
    const first = await visitor(fake, "old-token", { phone: "+15550001" });
    const second = await visitor(fake, "new-token", { phone: "+15550001" });
    expect(second._id).toBe(first._id);
    expect(second.token).toBe("old-token");
    expect((await api(fake, "GET", "livechat/visitor/new-token")).body.error).toBe("[invalid-token]");
    expect(fake.visitors()).toHaveLength(1);
    // Matched by email, the visitor is reused but takes the token that was sent (Visitors.ts).
    const third = await visitor(fake, "email-token", { email: "a@b.org" });
    const fourth = await visitor(fake, "newer-token", { email: "A@B.org" });
    expect(fourth._id).toBe(third._id);
    expect(fourth.token).toBe("newer-token");
  });
});

describe("fake Rocket.Chat: livechat/room", () => {
  it("keeps one open room per token, validates rid and the query", async () => {
    const fake = await start();
    expect((await api(fake, "GET", "livechat/room", { query: { token: "nobody" } })).body).toEqual({
      success: false,
      error: "invalid-token",
    });
    await visitor(fake, "tok");
    const first = await api(fake, "GET", "livechat/room", { query: { token: "tok" } });
    expect(first.body.newRoom).toBe(true);
    const room = first.body.room as Json;
    expect(room).toMatchObject({ t: "l", fname: "Ryan Lewis", open: true, source: { type: "api" } });
    expect(room.servedBy).toMatchObject({ _id: "agent1", username: "jane.doe" });
    const again = await api(fake, "GET", "livechat/room", { query: { token: "tok" } });
    expect(again.body).toMatchObject({ newRoom: false, room: { _id: room._id } });
    const byRid = await api(fake, "GET", "livechat/room", { query: { token: "tok", rid: String(room._id) } });
    expect(byRid.body.newRoom).toBe(false);
    expect((await api(fake, "GET", "livechat/room", { query: { token: "tok", rid: "other" } })).body).toEqual({
      success: false,
      error: "invalid-room",
    });
    expect((await api(fake, "GET", "livechat/room", { query: { token: "tok", foo: "bar" } })).body.error).toBe(
      "Match error: Unknown key in field foo",
    );
    expect((await api(fake, "GET", "livechat/room", { query: {} })).body.error).toBe(
      "Match error: Missing key 'token'",
    );
    expect(fake.rooms()).toHaveLength(1);
  });

  it("answers no-agent-online exactly, and reports it through livechat/config", async () => {
    const fake = await start();
    fake.setAgentOnline("agent1", false);
    await visitor(fake, "tok");
    const res = await api(fake, "GET", "livechat/room", { query: { token: "tok" } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      success: false,
      error: "Sorry, no online agents [no-agent-online]",
      errorType: "no-agent-online",
    });
    expect(
      ((await api(fake, "GET", "livechat/config", { query: { department: "dep1" } })).body.config as Json).online,
    ).toBe(false);
    fake.setAgentOnline("agent1", true);
    expect(((await api(fake, "GET", "livechat/config")).body.config as Json).online).toBe(true);
    expect((await api(fake, "GET", "livechat/config", { query: { nope: "1" } })).body.error).toBe(
      "must NOT have additional properties [invalid-params]",
    );
  });

  it("queues rooms without servedBy (manual routing or no agents) until an agent takes them", async () => {
    const manual = await start({ routing: "manual" });
    await visitor(manual, "tok");
    const room = await openRoom(manual, "tok");
    expect(room.servedBy).toBeUndefined();
    const taken = manual.takeRoom(String(room._id));
    expect(taken.servedBy?.username).toBe("jane.doe");

    const noAgents = await start({ acceptChatsWithNoAgents: true });
    noAgents.setAgentOnline("agent1", false);
    await visitor(noAgents, "tok");
    expect((await openRoom(noAgents, "tok")).servedBy).toBeUndefined();
  });
});

describe("fake Rocket.Chat: livechat/message", () => {
  it("validates strictly and checks invalid-token → invalid-room → room-closed → character limit", async () => {
    const fake = await start({ messageCharacterLimit: 5 });
    await visitor(fake, "tok");
    await visitor(fake, "other");
    const rid = String((await openRoom(fake, "tok"))._id);
    const send = (body: Json): Promise<ApiResult> => api(fake, "POST", "livechat/message", { body });
    expect((await send({ token: "tok", rid, msg: "hi", attachments: [] })).body).toEqual({
      success: false,
      error: "must NOT have additional properties [invalid-params]",
      errorType: "invalid-params",
    });
    expect((await send({ token: "tok", rid })).body.error).toBe("must have required property 'msg' [invalid-params]");
    expect((await send({ token: "tok", rid, msg: 1 })).body.error).toBe("must be string [invalid-params]");
    expect((await send({ token: "tok", rid, msg: "hi", agent: { agentId: "a" } })).body.error).toBe(
      "must have required property 'username' [invalid-params]",
    );
    expect((await send({ token: "nobody", rid: "nope", msg: "hi" })).body.error).toBe("invalid-token");
    expect((await send({ token: "other", rid, msg: "hi" })).body.error).toBe("invalid-room");
    expect((await send({ token: "tok", rid, msg: "too long" })).body.error).toBe(
      "message-length-exceeds-character-limit",
    );
    await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid } });
    const closed = await send({ token: "tok", rid, msg: "much too long" });
    expect(closed.status).toBe(400);
    expect(closed.body).toEqual({ success: false, error: "room-closed" });
    expect(fake.rooms()).toHaveLength(1); // never reopened
    const next = await api(fake, "GET", "livechat/room", { query: { token: "tok" } });
    expect(next.body.newRoom).toBe(true);
  });

  it("honours a client _id, answers its reuse as sendMessage does (400, nothing stored or sent), serves history newest first", async () => {
    const hook = await receiver();
    const fake = await start({ webhookUrl: hook.url, webhookEvents: { visitorMessage: true } });
    await visitor(fake, "tok");
    const rid = String((await openRoom(fake, "tok"))._id);
    const first = await api(fake, "POST", "livechat/message", {
      body: { token: "tok", rid, msg: "Hello", _id: "m-1" },
    });
    expect(first.status).toBe(200);
    expect(first.body.message).toMatchObject({
      _id: "m-1",
      rid,
      msg: "Hello",
      token: "tok",
      alias: "Ryan Lewis",
      u: { username: "guest-1", name: "Ryan Lewis" },
    });
    await fake.whenWebhooksIdle();
    const hooksBefore = hook.received.length;
    const dup = await api(fake, "POST", "livechat/message", { body: { token: "tok", rid, msg: "Hello", _id: "m-1" } });
    expect(dup.status).toBe(400);
    expect(dup.body).toEqual({ success: false, error: "Cannot convert undefined or null to object" });
    // The check is on the _id alone: another text, or another visitor's room, gets the same answer.
    await visitor(fake, "other");
    const otherRid = String((await openRoom(fake, "other"))._id);
    const elsewhere = await api(fake, "POST", "livechat/message", {
      body: { token: "other", rid: otherRid, msg: "Not mine", _id: "m-1" },
    });
    expect(elsewhere.body).toEqual({ success: false, error: "Cannot convert undefined or null to object" });
    await fake.whenWebhooksIdle();
    expect(fake.messages(rid).filter((m) => m._id === "m-1")).toHaveLength(1);
    expect(fake.messages(otherRid).some((m) => m.msg === "Not mine")).toBe(false);
    expect(hook.received.slice(hooksBefore).filter((r) => r.body.type === "Message")).toHaveLength(0);

    const old = await start({ version: 5 });
    await visitor(old, "tok");
    const oldRid = String((await openRoom(old, "tok"))._id);
    await api(old, "POST", "livechat/message", { body: { token: "tok", rid: oldRid, msg: "Hi", _id: "x-1" } });
    const oldDup = await api(old, "POST", "livechat/message", {
      body: { token: "tok", rid: oldRid, msg: "Hi", _id: "x-1" },
    });
    expect({ status: oldDup.status, body: oldDup.body }).toEqual({ status: 400, body: { success: false } });

    await api(fake, "POST", "livechat/message", { body: { token: "tok", rid, msg: "Second" } });
    fake.agentSend(rid, "Agent reply");
    await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid } });
    const history = await api(fake, "GET", `livechat/messages.history/${rid}`, { query: { token: "tok", limit: "3" } });
    expect(history.status).toBe(200);
    expect((history.body.messages as Json[]).map((m) => m.msg)).toEqual(["Closed by visitor", "Agent reply", "Second"]);
    expect((await api(fake, "GET", `livechat/messages.history/${rid}`)).body.error).toBe(
      "must have required property 'token' [invalid-params]",
    );
    expect((await api(fake, "GET", `livechat/messages.history/${rid}`, { query: { token: "" } })).body.error).toBe(
      "error-token-param-not-provided",
    );
    const one = await api(fake, "GET", "livechat/message/m-1", { query: { token: "tok", rid } });
    expect((one.body.message as Json).msg).toBe("Hello");
  });
});

describe("fake Rocket.Chat: uploads and files", () => {
  it("denies uploads exactly as RC does", async () => {
    const fake = await start({ maxFileSize: 1024, allowedMimeTypes: ["image/*", "audio/*"] });
    await visitor(fake, "tok");
    await visitor(fake, "other");
    const rid = String((await openRoom(fake, "tok"))._id);
    const unauthorized = { success: false, error: "unauthorized" };
    const file = { name: "globe.png", type: "image/png", content: PNG };
    const noHeader = await upload(fake, rid, undefined, file);
    expect(noHeader.status).toBe(403);
    expect(noHeader.body).toEqual(unauthorized);
    expect((await upload(fake, rid, "nobody", file)).body).toEqual(unauthorized);
    expect((await upload(fake, rid, "other", file)).status).toBe(403);
    const badType = await upload(fake, rid, "tok", { name: "a.pdf", type: "application/pdf", content: PNG });
    expect(badType.status).toBe(400);
    expect(badType.body).toEqual({ reason: "error-type-not-allowed", success: false });
    const big = await upload(fake, rid, "tok", { name: "big.png", type: "image/png", content: Buffer.alloc(2048) });
    expect(big.body).toEqual({
      success: false,
      error: "[error-file-too-large]",
      errorType: "error-file-too-large",
    });
    // The size limit is busboy's, while the form is read: a too-large file of a refused type is "too large".
    const bigPdf = await upload(fake, rid, "tok", {
      name: "a.pdf",
      type: "application/pdf",
      content: Buffer.alloc(2048),
    });
    expect(bigPdf.body.errorType).toBe("error-file-too-large");
    const two = new FormData();
    two.append("file", new Blob([PNG], { type: "image/png" }), "a.png");
    two.append("file", new Blob([PNG], { type: "image/png" }), "b.png");
    const twoFiles = await fetch(`${fake.url}/api/v1/livechat/upload/${rid}`, {
      method: "POST",
      headers: { "x-visitor-token": "tok" },
      body: two,
    });
    expect({ status: twoFiles.status, body: await twoFiles.json() }).toEqual({
      status: 400,
      body: { success: false, error: "Just 1 file is allowed" },
    });
    // A room closed meanwhile is refused like a stranger's room.
    await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid } });
    expect(await upload(fake, rid, "tok", file)).toMatchObject({ status: 403, body: unauthorized });
    const disabled = await start({ fileUploadEnabled: false });
    await visitor(disabled, "tok");
    const rid2 = String((await openRoom(disabled, "tok"))._id);
    expect((await upload(disabled, rid2, "tok", file)).body).toEqual({
      success: false,
      reason: "error-file-upload-disabled",
    });

    const eight = await start({ version: 8 });
    await visitor(eight, "tok");
    const eightRid = String((await openRoom(eight, "tok"))._id);
    expect(await upload(eight, eightRid, "nobody", file)).toMatchObject({
      status: 403,
      body: { success: false, error: "forbidden" },
    });
    const five = await start({ version: 5, maxFileSize: 1024 });
    await visitor(five, "tok");
    const fiveRid = String((await openRoom(five, "tok"))._id);
    const fiveBig = await upload(five, fiveRid, "tok", {
      name: "b.png",
      type: "image/png",
      content: Buffer.alloc(2048),
    });
    expect(fiveBig.body).toEqual({ reason: "error-size-not-allowed", sizeAllowed: "1 KB", success: false });
  });

  it("answers a successful upload with the message at the top level and serves protected files", async () => {
    const fake = await start();
    await visitor(fake, "tok");
    const rid = String((await openRoom(fake, "tok"))._id);
    const res = await upload(
      fake,
      rid,
      "tok",
      { name: "my globe.png", type: "image/png", content: PNG },
      {
        description: "caption",
      },
    );
    expect(res.status).toBe(200);
    expect(res.body.message).toBeUndefined();
    const fileId = String((res.body.file as Json)._id);
    const link = `/file-upload/${fileId}/my%20globe.png`;
    const files = res.body.files as Json[];
    const thumbId = String(files[1]?._id);
    expect(thumbId).not.toBe(fileId);
    const ref = { name: "my globe.png", type: "image/png", format: "png", typeGroup: "image" };
    expect(res.body).toMatchObject({
      rid,
      msg: "",
      token: "tok",
      file: { _id: fileId, ...ref, size: PNG.length },
      files: [
        { _id: fileId, ...ref, size: PNG.length },
        { _id: thumbId, ...ref },
      ],
      attachments: [
        {
          type: "file",
          fileId,
          title: "my globe.png",
          title_link: link,
          title_link_download: true,
          image_url: `/file-upload/${thumbId}/my%20globe.png`,
          image_type: "image/png",
          image_dimensions: { width: 1, height: 1 },
          description: "caption",
        },
      ],
      newRoom: false,
      showConnecting: false,
      success: true,
    });
    expect(files).toHaveLength(2);
    const audio = await upload(fake, rid, "tok", { name: "v.ogg", type: "audio/ogg", content: Buffer.from("ogg") });
    expect((audio.body.attachments as Json[])[0]).toMatchObject({
      audio_url: expect.stringMatching(/v\.ogg$/) as string,
    });
    expect((audio.body.attachments as Json[])[0]?.image_url).toBeUndefined();

    expect((await fetch(`${fake.url}${link}`)).status).toBe(403);
    const download = await fetch(`${fake.url}${link}`, { headers: botAuth });
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await download.arrayBuffer()).equals(PNG)).toBe(true);
    // image_url is the thumbnail: other bytes than the original.
    const thumbnail = await fetch(`${fake.url}/file-upload/${thumbId}/my%20globe.png`, { headers: botAuth });
    expect(Buffer.from(await thumbnail.arrayBuffer()).equals(PNG)).toBe(false);
  });
});

describe("fake Rocket.Chat: closing, auth and rate limits", () => {
  it("closes once, then answers room-closed; closeByUser needs auth and the permission", async () => {
    const fake = await start({
      users: [
        DEFAULT_FAKE_USER,
        { userId: "weak", authToken: "weak-token", permissions: ["view-l-room"] },
        { userId: "closer", authToken: "closer-token", permissions: ["close-livechat-room"] },
      ],
    });
    await visitor(fake, "tok");
    const rid = String((await openRoom(fake, "tok"))._id);
    const close = await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid } });
    expect(close.body).toEqual({ rid, comment: "Closed by visitor", success: true });
    expect((await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid } })).body).toEqual({
      success: false,
      error: "room-closed",
    });
    expect((await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid, x: 1 } })).body.error).toBe(
      "must NOT have additional properties [invalid-params]",
    );

    const rid2 = String((await openRoom(fake, "tok"))._id);
    const anonymous = await api(fake, "POST", "livechat/room.closeByUser", { body: { rid: rid2 } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({
      success: false,
      error: "You must be logged in to do this.",
      status: "error",
      message: "You must be logged in to do this.",
    });
    const weak = await api(fake, "POST", "livechat/room.closeByUser", {
      body: { rid: rid2 },
      headers: { "x-user-id": "weak", "x-auth-token": "weak-token" },
    });
    expect(weak.status).toBe(403);
    expect(weak.body).toEqual({
      success: false,
      error: "User does not have the permissions required for this action [error-unauthorized]",
    });
    const notServing = await api(fake, "POST", "livechat/room.closeByUser", {
      body: { rid: rid2 },
      headers: { "x-user-id": "closer", "x-auth-token": "closer-token" },
    });
    expect(notServing.body).toEqual({ success: false, error: "error-not-authorized" });
    const ok = await api(fake, "POST", "livechat/room.closeByUser", {
      body: { rid: rid2, comment: "bye" },
      headers: botAuth,
    });
    expect(ok.body).toEqual({ success: true });
    expect(fake.room(rid2)).toMatchObject({ open: false, closer: "user", closedBy: { username: "liaison.bot" } });
    const again = await api(fake, "POST", "livechat/room.closeByUser", { body: { rid: rid2 }, headers: botAuth });
    expect(again.body).toEqual({ success: false, error: "error-room-already-closed" });
    const forward = await api(fake, "POST", "livechat/room.forward", { body: { roomId: rid2 } });
    expect(forward.status).toBe(401);
  });

  it("limits visitor creation to 5 per minute per IP with RC's 429 body and headers, and no Retry-After", async () => {
    const fake = await start({ rateLimit: true });
    for (let i = 1; i <= 5; i += 1) {
      const res = await api(fake, "POST", "livechat/visitor", { body: { visitor: { token: `t${i}` } } });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit")).toBe("5");
      expect(res.headers.get("x-ratelimit-remaining")).toBe(String(5 - i));
    }
    const limited = await api(fake, "POST", "livechat/visitor", { body: { visitor: { token: "t6" } } });
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({
      success: false,
      error: expect.stringMatching(
        /^Error, too many requests\. Please slow down\. You must wait \d+ seconds before trying this endpoint again\. \[error-too-many-requests\]$/,
      ) as string,
    });
    expect(limited.headers.get("retry-after")).toBeNull();
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(limited.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now());
    expect((await api(fake, "GET", "livechat/room", { query: { token: "t1" } })).status).toBe(200); // separate route
    fake.setRateLimit(false);
    expect((await api(fake, "POST", "livechat/visitor", { body: { visitor: { token: "t6" } } })).status).toBe(200);
  });

  it("limits every other route by the default (10 calls per window), one counter per route for all rooms", async () => {
    const fake = await start({ rateLimit: true, rateLimitCalls: 3, rateLimitIntervalMs: 400 });
    await visitor(fake, "a");
    await visitor(fake, "b");
    const ridA = String((await openRoom(fake, "a"))._id);
    const ridB = String((await openRoom(fake, "b"))._id);
    const send = (token: string, rid: string, msg: string) =>
      api(fake, "POST", "livechat/message", { body: { token, rid, msg } });
    const first = await send("a", ridA, "1");
    expect(first.headers.get("x-ratelimit-limit")).toBe("3");
    expect(first.headers.get("x-ratelimit-remaining")).toBe("2");
    expect((await send("b", ridB, "2")).status).toBe(200);
    expect((await send("a", ridA, "3")).headers.get("x-ratelimit-remaining")).toBe("0");
    // Another room, the same route: the same counter.
    const refused = await send("b", ridB, "4");
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatch(/\[error-too-many-requests\]$/);
    expect(refused.headers.get("retry-after")).toBeNull();
    expect(fake.messages(ridB).some((m) => m.msg === "4")).toBe(false);
    // Each route has its own counter: config, history, agent.info, uploads, close are limited the same way.
    const config = await api(fake, "GET", "livechat/config");
    expect({ status: config.status, remaining: config.headers.get("x-ratelimit-remaining") }).toEqual({
      status: 200,
      remaining: "2",
    });
    for (let i = 0; i < 3; i += 1)
      await api(fake, "GET", `livechat/messages.history/${ridA}`, { query: { token: "a" } });
    expect((await api(fake, "GET", `livechat/messages.history/${ridB}`, { query: { token: "b" } })).status).toBe(429);
    for (const rid of [ridA, ridA, ridB])
      await upload(fake, rid, rid === ridA ? "a" : "b", { name: "p.png", type: "image/png", content: PNG });
    expect((await upload(fake, ridB, "b", { name: "p.png", type: "image/png", content: PNG })).status).toBe(429);
    // The window is fixed: once it is over, the next call (refused ones count too) starts a new one for everybody.
    await expect.poll(async () => (await send("b", ridB, "5")).status, { interval: 100 }).toBe(200);
    expect(fake.messages(ridB).filter((m) => m.msg === "5")).toHaveLength(1);
    // A user with api-bypass-rate-limit is exempt; visitors can never be.
    const admin = await start({
      rateLimit: true,
      rateLimitCalls: 1,
      users: [{ ...DEFAULT_FAKE_USER, permissions: [...DEFAULT_FAKE_USER.permissions, "api-bypass-rate-limit"] }],
    });
    await visitor(admin, "c");
    const ridC = String((await openRoom(admin, "c"))._id);
    for (let i = 0; i < 2; i += 1) {
      const forward = await api(admin, "POST", "livechat/room.forward", {
        body: { roomId: ridC, userId: "nobody" },
        headers: botAuth,
      });
      expect(forward.status).toBe(400);
      expect(forward.headers.get("x-ratelimit-limit")).toBeNull();
    }
  });

  it("simulates outages: 503, connection resets and injected failures", async () => {
    const fake = await start();
    fake.goDown("503");
    const down = await api(fake, "GET", "livechat/config");
    expect(down.status).toBe(503);
    expect(down.body).toEqual({ success: false, error: "Service Unavailable" });
    fake.goDown("reset");
    await expect(fetch(`${fake.url}/api/v1/livechat/config`)).rejects.toThrow();
    fake.comeUp();
    fake.failNext(1, 429, { retryAfterSeconds: 3 });
    const limited = await api(fake, "GET", "livechat/config");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBeNull();
    expect(Number(limited.headers.get("x-ratelimit-reset")) - Date.now()).toBeGreaterThan(2000);
    expect((await api(fake, "GET", "livechat/config")).status).toBe(200);
    expect(fake.requests.map((r) => r.status)).toEqual([503, 0, 429, 200]);
  });
});

describe("fake Rocket.Chat: webhooks", () => {
  it("sends the envelope, one message per Message event, edits, files and the close transcript", async () => {
    const hook = await receiver((n) => ({ status: 200, text: `crm-${n}` }));
    const fake = await start({
      webhookUrl: hook.url,
      secretToken: "s3cret",
      jwtFileUrls: true,
      webhookEvents: { visitorMessage: true },
    });
    await visitor(fake, "tok", { email: "ryan@example.org", phone: "+15550001" });
    const rid = String((await openRoom(fake, "tok"))._id);
    // Each step waits for its webhooks: RC sends every event at once and on its own, so back-to-back events may
    // arrive in any order (see the next test).
    await fake.whenWebhooksIdle();
    await api(fake, "POST", "livechat/message", { body: { token: "tok", rid, msg: "Hello", _id: "v-1" } });
    await fake.whenWebhooksIdle();
    const reply = fake.agentSend(rid, "Hi, how can I help?");
    await fake.whenWebhooksIdle();
    fake.agentEdit(rid, reply._id, "Hi! How can I help?");
    await fake.whenWebhooksIdle();
    fake.agentSendFile(rid, { name: "map.png", type: "image/png", content: PNG, description: "Here you go" });
    await fake.whenWebhooksIdle();
    fake.closeByAgent(rid, "Thanks, bye");
    await fake.whenWebhooksIdle();

    const bodies = hook.received.map((r) => r.body);
    expect(bodies.map((b) => b.type).sort()).toEqual([
      "LivechatSession",
      "LivechatSessionTaken",
      "Message",
      "Message",
      "Message",
      "Message",
      "Message",
    ]);
    expect(hook.received.every((r) => r.headers["x-rocketchat-livechat-token"] === "s3cret")).toBe(true);
    // The closing comment's Message and the close itself are sent together; which arrives first varies.
    const [taken, visitorMsg, agentMsg, edit, fileMsg] = bodies;
    const closingMsg = bodies.find((b) => b.type === "Message" && b.messages?.[0]?.closingMessage === true);
    const close = bodies.find((b) => b.type === "LivechatSession");
    expect(taken).toMatchObject({
      _id: rid,
      label: "Ryan Lewis",
      visitor: {
        token: "tok",
        username: "guest-1",
        email: [{ address: "ryan@example.org" }],
        phone: [{ phoneNumber: "+15550001" }],
      },
      agent: { _id: "agent1", username: "jane.doe", name: "Jane Doe" },
      servedBy: { _id: "agent1", username: "jane.doe" },
      messages: [],
    });
    expect(typeof taken?.createdAt).toBe("string");
    expect(visitorMsg?.crmData).toBe("crm-1");
    expect(visitorMsg?.messages).toHaveLength(1);
    expect(visitorMsg?.messages?.[0]).toMatchObject({ _id: "v-1", msg: "Hello", username: "guest-1" });
    expect(visitorMsg?.messages?.[0]?.agentId).toBeUndefined();
    expect(agentMsg?.messages).toHaveLength(1);
    expect(agentMsg?.messages?.[0]).toMatchObject({ _id: reply._id, msg: "Hi, how can I help?", agentId: "agent1" });
    expect(agentMsg?.messages?.[0]).not.toHaveProperty("token");
    expect(edit?.messages?.[0]).toMatchObject({ _id: reply._id, msg: "Hi! How can I help?" });
    expect(typeof edit?.messages?.[0]?.editedAt).toBe("string");
    const file = fileMsg?.messages?.[0];
    expect(file?.file).toMatchObject({ name: "map.png", type: "image/png" });
    expect(file?.attachments?.[0]).toMatchObject({
      description: "Here you go",
      image_url: expect.stringMatching(/^\/file-upload\//) as string,
    });
    expect(file?.fileUpload?.publicFilePath).toMatch(new RegExp(`^${fake.url}/file-upload/[^/]+/map\\.png\\?token=`));
    expect(closingMsg?.messages?.[0]).toMatchObject({ msg: "Thanks, bye", closingMessage: true, agentId: "agent1" });
    expect(close).toMatchObject({ closer: "user", closedBy: { _id: "agent1", username: "jane.doe" } });
    expect(typeof close?.closedAt).toBe("string");
    const transcript = close?.messages ?? [];
    expect(transcript.map((m) => m.msg)).toEqual(["Hello", "Hi! How can I help?", undefined, "Thanks, bye"]);
    expect(transcript.at(-1)?.closingMessage).toBe(true);

    // The JWT in publicFilePath opens the protected file without RC credentials.
    const publicPath = String(file?.fileUpload?.publicFilePath);
    expect((await fetch(publicPath)).status).toBe(200);
    expect((await fetch(publicPath.replace(/token=.*/, "token=forged"))).status).toBe(403);
  });

  it("sends every event on its own: held webhooks go in any order, a retry does not hold back later events, crmData is the event's", async () => {
    const hook = await receiver((n, body) => ({
      // The first "late" message fails once (RC retries it later); everything else is accepted.
      status:
        body.messages?.[0]?.msg === "late" &&
        !hook.received.slice(0, n - 1).some((r) => r.body.messages?.[0]?.msg === "late")
          ? 500
          : 200,
      text: `crm-${n}`,
    }));
    const fake = await start({ webhookUrl: hook.url, retryIntervalMs: 300 });
    await visitor(fake, "tok");
    const rid = String((await openRoom(fake, "tok"))._id);
    await fake.whenWebhooksIdle();

    fake.holdWebhooks();
    fake.agentSend(rid, "bye for now");
    fake.closeByAgent(rid, "Solved");
    expect(fake.heldWebhooks().map((h) => h.type)).toEqual(["Message", "Message", "LivechatSession"]);
    expect(hook.received).toHaveLength(1);
    // Both were built at event time with the same (then current) crmData.
    expect(new Set(fake.heldWebhooks().map((h) => h.body.crmData))).toEqual(new Set(["crm-1"]));
    // The close overtakes the agent's last message; its transcript carries that message.
    await fake.releaseWebhooks((held) => held.filter((h) => h.type === "LivechatSession"));
    expect(hook.received.at(-1)?.body.type).toBe("LivechatSession");
    expect(hook.received.at(-1)?.body.messages?.map((m) => m.msg)).toEqual(["bye for now", "Solved"]);
    fake.resumeWebhooks();
    await fake.whenWebhooksIdle();
    expect(hook.received.slice(1).map((r) => r.body.type)).toEqual(["LivechatSession", "Message", "Message"]);

    // A delivery being retried does not hold back the next event of the same room.
    await visitor(fake, "tok");
    const rid2 = String((await openRoom(fake, "tok"))._id);
    await fake.whenWebhooksIdle();
    fake.agentSend(rid2, "late");
    await expect.poll(() => hook.received.some((r) => r.body.messages?.[0]?.msg === "late")).toBe(true);
    fake.agentSend(rid2, "overtakes");
    await fake.whenWebhooksIdle();
    const texts = hook.received
      .filter((r) => r.body._id === rid2 && r.body.type === "Message")
      .map((r) => r.body.messages?.[0]?.msg);
    expect(texts).toEqual(["late", "overtakes", "late"]);
    const late = fake.webhookAttempts.filter((a) => a.body.messages?.[0]?.msg === "late");
    expect(late.map((a) => [a.attempt, a.status])).toEqual([
      [1, 500],
      [2, 200],
    ]);
    expect(new Set(late.map((a) => a.delivery)).size).toBe(1);
  });

  it("carries a message with several files: file is the first, attachments list them all with fileId", async () => {
    const hook = await receiver();
    const fake = await start({ webhookUrl: hook.url });
    await visitor(fake, "tok");
    const rid = String((await openRoom(fake, "tok"))._id);
    await fake.whenWebhooksIdle();
    const sent = fake.agentSendFiles(rid, [
      { name: "a.png", type: "image/png", content: PNG, description: "first" },
      { name: "b.pdf", type: "application/pdf", content: Buffer.from("%PDF-1.4"), description: "second" },
    ]);
    await fake.whenWebhooksIdle();
    const item = hook.received.at(-1)?.body.messages?.[0];
    const [a, thumb, b] = sent.files ?? [];
    expect(sent.files).toHaveLength(3);
    expect(item?.file).toEqual(a);
    expect(item).not.toHaveProperty("files");
    expect(item?.msg).toBeUndefined();
    expect(item?.attachments).toMatchObject([
      {
        fileId: a?._id,
        title: "a.png",
        title_link: `/file-upload/${a?._id}/a.png`,
        image_url: `/file-upload/${thumb?._id}/a.png`,
        description: "first",
      },
      { fileId: b?._id, title: "b.pdf", title_link: `/file-upload/${b?._id}/b.pdf`, description: "second" },
    ]);
    expect(item?.fileUpload).toMatchObject({ type: "image/png", size: PNG.length });
  });

  it("retries: legacy retries any failure up to 10 times, modern drops 4xx and retries 5xx", async () => {
    const legacyHook = await receiver((n) => ({ status: n === 1 ? 404 : n === 2 ? 500 : 200 }));
    const legacy = await start({ webhookUrl: legacyHook.url, retryPolicy: "legacy", retryIntervalMs: 10 });
    await visitor(legacy, "tok");
    await openRoom(legacy, "tok");
    await legacy.whenWebhooksIdle();
    expect(legacy.webhookAttempts.map((a) => [a.type, a.attempt, a.status])).toEqual([
      ["LivechatSessionTaken", 1, 404],
      ["LivechatSessionTaken", 2, 500],
      ["LivechatSessionTaken", 3, 200],
    ]);

    const modernDrop = await receiver(() => ({ status: 404 }));
    const modern = await start({ webhookUrl: modernDrop.url, retryIntervalMs: 10 });
    await visitor(modern, "tok");
    await openRoom(modern, "tok");
    await modern.whenWebhooksIdle();
    expect(modern.webhookAttempts.map((a) => a.status)).toEqual([404]);

    const modernRetry = await receiver((n) => ({ status: n === 1 ? 500 : n === 2 ? 429 : 201 }));
    const modern2 = await start({ webhookUrl: modernRetry.url, retryIntervalMs: 10 });
    await visitor(modern2, "tok");
    await openRoom(modern2, "tok");
    await modern2.whenWebhooksIdle();
    // 201 is not 200: a failure, and not retryable under the modern policy.
    expect(modern2.webhookAttempts.map((a) => a.status)).toEqual([500, 429, 201]);

    const middleHook = await receiver((n) => ({ status: n < 3 ? 404 : 200 }));
    const middle = await start({ webhookUrl: middleHook.url, retryPolicy: "middle", retryIntervalMs: 10 });
    await visitor(middle, "tok");
    await openRoom(middle, "tok");
    await middle.whenWebhooksIdle();
    // RocketChat/Rocket.Chat#30687 onwards: 5 attempts, any non-200 retried.
    expect(middle.webhookAttempts.map((a) => a.status)).toEqual([404, 404, 200]);

    const dead = await start({ webhookUrl: "http://127.0.0.1:1/nowhere", retryIntervalMs: 5 });
    await visitor(dead, "tok");
    await openRoom(dead, "tok");
    await dead.whenWebhooksIdle();
    expect(dead.webhookAttempts.map((a) => a.status)).toEqual(Array<string>(5).fill("network-error"));

    // A receiver slower than Livechat_http_timeout counts as a network error, and is retried (duplicates!).
    let calls = 0;
    const slow = createServer(() => {
      calls += 1;
    });
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    });
    const timeouts = await start({
      webhookUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`,
      httpTimeoutMs: 50,
      retryIntervalMs: 5,
    });
    await visitor(timeouts, "tok");
    await openRoom(timeouts, "tok");
    await timeouts.whenWebhooksIdle();
    expect(timeouts.webhookAttempts.map((a) => a.status)).toEqual(Array<string>(5).fill("network-error"));
    expect(calls).toBe(5);
  });

  it("sends start, the visitor's close and offline messages in their own shapes", async () => {
    const hook = await receiver();
    const fake = await start({ webhookUrl: hook.url, webhookEvents: { start: true, offline: true } });
    await visitor(fake, "tok");
    const rid = String((await openRoom(fake, "tok"))._id);
    await api(fake, "POST", "livechat/room.close", { body: { token: "tok", rid } });
    const offline = await api(fake, "POST", "livechat/offline.message", {
      body: { name: "Ann", email: "ann@example.org", message: "Call me" },
    });
    expect(offline.body).toEqual({ message: "Livechat offline message sent", success: true });
    await fake.whenWebhooksIdle();
    const offlineBody = hook.received.find((r) => r.body.type === "LivechatOfflineMessage")?.body;
    // Events sent together (start and taken; the closing comment and the close) arrive in either order.
    const byType = (type: string) => hook.received.map((r) => r.body).filter((b) => b._id === rid && b.type === type);
    expect(
      hook.received
        .filter((r) => r.body._id === rid)
        .map((r) => r.body.type)
        .sort(),
    ).toEqual(["LivechatSession", "LivechatSessionStart", "LivechatSessionTaken", "Message"]);
    const [started] = byType("LivechatSessionStart");
    expect(started).toMatchObject({ _id: rid, messages: [] });
    expect(started?.servedBy).toBeUndefined();
    // The visitor's closing comment has no token, so it travels as an "agent" message, without agentId.
    const [closing] = byType("Message");
    expect(closing?.messages).toEqual([expect.objectContaining({ msg: "Closed by visitor", closingMessage: true })]);
    expect(closing?.messages?.[0]?.agentId).toBeUndefined();
    expect(byType("LivechatSession")[0]).toMatchObject({ closer: "visitor", closedBy: { username: "guest-1" } });
    expect(offlineBody).toEqual({
      type: "LivechatOfflineMessage",
      sentAt: expect.any(String) as string,
      visitor: { name: "Ann", email: "ann@example.org" },
      message: "Call me",
    });
  });

  it("sends queued and forwarded events, and visitor messages only when that toggle is on", async () => {
    const hook = await receiver();
    const fake = await start({
      webhookUrl: hook.url,
      routing: "manual",
      agents: [
        { _id: "a1", username: "ann", name: "Ann" },
        { _id: "a2", username: "bob", name: "Bob", departments: ["dep2"] },
      ],
      departments: [
        { _id: "dep1", name: "Support" },
        { _id: "dep2", name: "Sales" },
      ],
    });
    await visitor(fake, "tok", { department: "dep1" });
    const rid = String((await openRoom(fake, "tok"))._id);
    await api(fake, "POST", "livechat/message", {
      body: { token: "tok", rid, msg: "not sent: visitorMessage is off" },
    });
    await fake.whenWebhooksIdle();
    fake.takeRoom(rid, "a1");
    await fake.whenWebhooksIdle();
    fake.forward(rid, { agentId: "a2" });
    await fake.whenWebhooksIdle();
    const bodies = hook.received.map((r) => r.body);
    expect(bodies.map((b) => b.type).slice(0, 2)).toEqual(["LivechatSessionQueued", "LivechatSessionTaken"]);
    // A forward fires Taken (new agent) and Forwarded together.
    expect(
      bodies
        .map((b) => b.type)
        .slice(2)
        .sort(),
    ).toEqual(["LivechatSessionForwarded", "LivechatSessionTaken"]);
    expect(bodies[0]).toMatchObject({ departmentId: "dep1" });
    expect(bodies[0]?.servedBy).toBeUndefined();
    const forwarded = bodies.find((b) => b.type === "LivechatSessionForwarded");
    expect(forwarded).toMatchObject({ servedBy: { _id: "a2" }, oldServedBy: { _id: "a1", username: "ann" } });
    expect(forwarded?.messages?.map((m) => m.msg)).toEqual(["not sent: visitorMessage is off"]);
  });
});
