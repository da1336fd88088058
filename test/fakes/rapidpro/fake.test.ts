import type { ServerResponse } from "node:http";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { startFakeRapidPro } from "./index.js";
import type { FakeRapidPro, FakeRapidProOptions } from "./index.js";
import { evaluateTemplate, XObject } from "./template.js";
import { startHttpRecorder, type RecordedRequest } from "../../helpers/http-recorder.js";

// Self-test of the fake's strictness with plain fetch: the exact statuses and bodies of rapidpro.md §1, §2, §7.

type Json = Record<string, unknown>;

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function start(options: FakeRapidProOptions = {}): Promise<FakeRapidPro> {
  const fake = await startFakeRapidPro(options);
  cleanups.push(() => fake.close());
  return fake;
}

interface ApiResult {
  status: number;
  body: Json;
  text: string;
  headers: Headers;
}

async function api(
  fake: FakeRapidPro,
  method: string,
  path: string,
  opts: { json?: unknown; raw?: string; contentType?: string; token?: string | null; form?: FormData } = {},
): Promise<ApiResult> {
  const headers: Record<string, string> = {};
  if (opts.token !== null) headers.authorization = `Token ${opts.token ?? fake.token}`;
  let body: string | FormData | undefined;
  if (opts.json !== undefined) {
    headers["content-type"] = opts.contentType ?? "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.raw !== undefined) {
    if (opts.contentType !== undefined) headers["content-type"] = opts.contentType;
    body = opts.raw;
  } else if (opts.form) {
    body = opts.form;
  }
  const response = await fetch(`${fake.url}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: Json = {};
  try {
    parsed = JSON.parse(text) as Json;
  } catch {
    // HTML or empty
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}

const post = (fake: FakeRapidPro, endpoint: string, json: unknown) =>
  api(fake, "POST", `/api/v2/${endpoint}.json`, { json });
const get = (fake: FakeRapidPro, pathAndQuery: string) => api(fake, "GET", `/api/v2/${pathAndQuery}`);

async function upload(fake: FakeRapidPro, name: string, type: string, content: Buffer | string): Promise<ApiResult> {
  const form = new FormData();
  form.append("file", new Blob([content], { type }), name);
  return api(fake, "POST", "/api/v2/media.json", { form });
}

/** A local HTTP receiver for the flow player; `answer` decides each response. */
async function receiver(
  answer: (req: RecordedRequest, res: ServerResponse, n: number) => void = (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  },
): Promise<{ url: string; received: RecordedRequest[] }> {
  const recorder = await startHttpRecorder(answer);
  cleanups.push(() => recorder.close());
  return { url: `${recorder.url}/live-agents/registerClient`, received: recorder.received };
}

const MSG_KEYS = [
  "uuid",
  "contact",
  "urn",
  "channel",
  "direction",
  "type",
  "status",
  "archived",
  "visibility",
  "text",
  "labels",
  "flow",
  "attachments",
  "quick_replies",
  "created_on",
  "sent_on",
  "modified_on",
  "media",
  "id",
  "broadcast",
];
const DATE_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

describe("fake RapidPro: authentication, routing, throttling", () => {
  it("answers 403 with DRF's detail for a missing or bad token, and X-Temba-Workspace once authenticated", async () => {
    const fake = await start({ workspaceUuid: "0d8b2f7a-7c5e-4c1b-9a55-1f0e2d3c4b5a", extraTokens: ["second"] });
    const missing = await api(fake, "GET", "/api/v2/contacts.json", { token: null });
    expect(missing.status).toBe(403);
    expect(missing.body).toEqual({ detail: "Authentication credentials were not provided." });
    expect(missing.headers.get("x-temba-workspace")).toBeNull();
    const bad = await api(fake, "GET", "/api/v2/contacts.json", { token: "nope" });
    expect(bad.status).toBe(403);
    expect(bad.body).toEqual({ detail: "Invalid token" });
    const spaces = await fetch(`${fake.url}/api/v2/contacts.json`, { headers: { authorization: "Token" } });
    expect(await spaces.json()).toEqual({ detail: "Invalid token header. No credentials provided." });
    const bearer = await fetch(`${fake.url}/api/v2/contacts.json`, {
      headers: { authorization: `Bearer ${fake.token}` },
    });
    expect(bearer.status).toBe(403);

    const ok = await get(fake, "contacts.json");
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-temba-workspace")).toBe("0d8b2f7a-7c5e-4c1b-9a55-1f0e2d3c4b5a");
    expect((await api(fake, "GET", "/api/v2/contacts.json", { token: "second" })).status).toBe(200);
    const basic = Buffer.from(`admin@example.org:${fake.token}`).toString("base64");
    const viaBasic = await fetch(`${fake.url}/api/v2/contacts.json`, { headers: { authorization: `Basic ${basic}` } });
    expect(viaBasic.status).toBe(200);
    const wrongEmail = Buffer.from(`x@example.org:${fake.token}`).toString("base64");
    const refused = await fetch(`${fake.url}/api/v2/contacts.json`, {
      headers: { authorization: `Basic ${wrongEmail}` },
    });
    expect(await refused.json()).toEqual({ detail: "Invalid token or email" });
  });

  it("requires the .json suffix: without it GET shows the docs and POST gets the docs with 403", async () => {
    const fake = await start();
    const docs = await api(fake, "GET", "/api/v2/messages");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toContain("text/html");
    const postDocs = await api(fake, "POST", "/api/v2/messages", { json: { contact: "x", text: "hi" } });
    expect(postDocs.status).toBe(403);
    expect(postDocs.headers.get("content-type")).toContain("text/html");
    expect((await api(fake, "GET", "/api/v2/messages.xml")).status).toBe(404);
    expect((await api(fake, "GET", "/api/v2/nothing.json")).status).toBe(404);
    expect(fake.sent()).toEqual([]);
  });

  it("answers 405 with DRF's detail for a wrong method, and for POST messages.json on an old server", async () => {
    const fake = await start();
    expect(await api(fake, "GET", "/api/v2/media.json")).toMatchObject({
      status: 405,
      body: { detail: 'Method "GET" not allowed.' },
    });
    expect((await api(fake, "DELETE", "/api/v2/messages.json")).body).toEqual({
      detail: 'Method "DELETE" not allowed.',
    });
    const old = await start({ messagesEndpoint: false });
    const contact = old.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    const res = await post(old, "messages", { contact: contact.uuid, text: "hi" });
    expect(res.status).toBe(405);
    expect(res.body).toEqual({ detail: 'Method "POST" not allowed.' });
    expect((await get(old, "messages.json")).status).toBe(200);
  });

  it("throttles per scope and workspace (all tokens share it) with 429, Retry-After and DRF's body, then recovers", async () => {
    const fake = await start({ rateLimit: { requests: 2, windowMs: 600 }, extraTokens: ["other"] });
    // flows.json and media.json are scope `v2`; contacts.json has `v2.contacts`, messages.json `v2.messages`.
    expect((await get(fake, "flows.json")).status).toBe(200);
    expect((await api(fake, "GET", "/api/v2/workspace.json", { token: "other" })).status).toBe(200);
    const throttled = await get(fake, "flows.json");
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBe("1");
    expect(throttled.body).toEqual({ detail: "Request was throttled. Expected available in 1 second." });
    for (let i = 0; i < 2; i += 1) expect((await get(fake, "contacts.json")).status).toBe(200);
    expect((await get(fake, "contacts.json")).status).toBe(429);
    // The contacts scope used up, messages still go: each scope has its own bucket.
    const contact = fake.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    expect((await post(fake, "messages", { contact: contact.uuid, text: "hi" })).status).toBe(201);
    // A rejected token is refused before throttling.
    expect((await api(fake, "GET", "/api/v2/flows.json", { token: "bad" })).status).toBe(403);
    await expect.poll(async () => (await get(fake, "flows.json")).status, { interval: 100 }).toBe(200);
    fake.setRateLimit({ requests: 1, windowMs: 120_000 });
    expect((await get(fake, "contacts.json")).status).toBe(200);
    const long = await get(fake, "contacts.json");
    expect(long.headers.get("retry-after")).toBe("120");
    expect(long.body).toEqual({ detail: "Request was throttled. Expected available in 120 seconds." });
    fake.setRateLimit(undefined);
    expect((await get(fake, "contacts.json")).status).toBe(200);
  });

  it("gives broadcasts their own throttle scope before v10.3.85, and shares v2 with media and flow starts after", async () => {
    const old = await start({ version: "10.3.84", rateLimit: { requests: 1, windowMs: 60_000 } });
    const contact = old.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    expect((await post(old, "broadcasts", { contacts: [contact.uuid], text: "hi" })).status).toBe(201);
    expect((await get(old, "flows.json")).status).toBe(200);
    const now = await start({ rateLimit: { requests: 1, windowMs: 60_000 } });
    const other = now.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    expect((await post(now, "broadcasts", { contacts: [other.uuid], text: "hi" })).status).toBe(201);
    expect((await get(now, "flows.json")).status).toBe(429);
  });

  it("refuses a token whose user may not use the API (agent, viewer) with 403 after authenticating", async () => {
    const fake = await start({ tokenRole: "agent", workspaceUuid: "0d8b2f7a-7c5e-4c1b-9a55-1f0e2d3c4b5a" });
    const denied = await get(fake, "contacts.json");
    expect(denied).toMatchObject({
      status: 403,
      body: { detail: "You do not have permission to perform this action." },
    });
    expect(denied.headers.get("x-temba-workspace")).toBe("0d8b2f7a-7c5e-4c1b-9a55-1f0e2d3c4b5a");
    expect((await api(fake, "GET", "/api/v2/contacts.json", { token: "nope" })).body).toEqual({
      detail: "Invalid token",
    });
    fake.setTokenRole("editor");
    expect((await get(fake, "contacts.json")).status).toBe(200);
  });

  it("injects failures with failNext, 429 carrying Retry-After", async () => {
    const fake = await start();
    fake.failNext(1, 429, { retryAfterSeconds: 7 });
    const first = await get(fake, "contacts.json");
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("7");
    expect(first.body).toEqual({ detail: "Request was throttled. Expected available in 7 seconds." });
    fake.failNext(1, 503);
    expect((await get(fake, "contacts.json")).status).toBe(503);
    expect((await get(fake, "contacts.json")).status).toBe(200);
    expect(fake.requests.map((r) => r.status)).toEqual([429, 503, 200]);
  });
});

describe("fake RapidPro: POST messages.json", () => {
  it("creates a message: 201 with the full message object, literal text, contact by UUID or URN", async () => {
    const fake = await start({ channel: { uuid: "c0ffee00-0000-4000-8000-00000000c4a1", name: "WhatsApp GT" } });
    const contact = fake.addContact({ name: "Amara Diallo", urns: ["whatsapp:50255501234"] });
    const res = await post(fake, "messages", { contact: contact.uuid, text: "  Hola @contact.name  ", unknown: 1 });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(MSG_KEYS);
    expect(res.body).toMatchObject({
      contact: { uuid: contact.uuid, name: "Amara Diallo" },
      urn: "whatsapp:50255501234",
      channel: { uuid: "c0ffee00-0000-4000-8000-00000000c4a1", name: "WhatsApp GT" },
      direction: "out",
      type: "text",
      status: "queued",
      archived: false,
      visibility: "visible",
      text: "Hola @contact.name",
      labels: [],
      flow: null,
      attachments: [],
      quick_replies: [],
      sent_on: null,
      media: null,
      broadcast: null,
    });
    expect(res.body.created_on).toMatch(DATE_RE);
    const byUrn = await post(fake, "messages", { contact: "whatsapp:50255501234", text: "again" });
    expect(byUrn.status).toBe(201);
    expect(fake.sent(contact.uuid).map((m) => [m.text, m.via, m.status])).toEqual([
      ["Hola @contact.name", "messages", "queued"],
      ["again", "messages", "queued"],
    ]);
  });

  it("rejects bad bodies with DRF's field maps", async () => {
    const fake = await start();
    const contact = fake.addContact({ name: "Joe", urns: ["tel:+250788123123"] });
    expect((await post(fake, "messages", {})).body).toEqual({ contact: ["This field is required."] });
    expect((await post(fake, "messages", { contact: contact.uuid })).body).toEqual({
      non_field_errors: ["Must provide either text or attachments."],
    });
    expect((await post(fake, "messages", { contact: "9a0c1f2e-0000-4000-8000-000000000000", text: "x" })).body).toEqual(
      {
        contact: ["No such object: 9a0c1f2e-0000-4000-8000-000000000000"],
      },
    );
    expect((await post(fake, "messages", { contact: "", text: "   " })).body).toEqual({
      contact: ["This field may not be null."],
      text: ["This field may not be blank."],
    });
    expect((await post(fake, "messages", { contact: contact.uuid, text: 5 })).body).toMatchObject({ text: "5" });
    expect((await post(fake, "messages", { contact: contact.uuid, text: true })).body).toEqual({
      text: ["Not a valid string."],
    });
    expect(
      (await post(fake, "messages", { contact: contact.uuid, text: "x", attachments: "not-a-list" })).body,
    ).toEqual({
      attachments: ['Expected a list of items but got type "str".'],
    });
    expect((await post(fake, "messages", ["not", "an", "object"])).body).toEqual({
      non_field_errors: ["Request body should be a single JSON object"],
    });
    const badJson = await api(fake, "POST", "/api/v2/messages.json", { raw: "{nope", contentType: "application/json" });
    expect(badJson.status).toBe(400);
    expect(String(badJson.body.detail)).toMatch(/^JSON parse error - /);
    const form = await api(fake, "POST", "/api/v2/messages.json", { raw: "contact=x", contentType: "text/plain" });
    expect(form.status).toBe(415);
    expect(form.body).toEqual({ detail: 'Unsupported media type "text/plain" in request.' });
    expect(fake.sent()).toHaveLength(1);
  });

  it("enforces the text limit in code points: 4096 by default, 640 for an old server", async () => {
    const fake = await start({ maxTextLength: 640 });
    const contact = fake.addContact({ name: "Joe", urns: ["tel:+250788123123"] });
    const tooLong = await post(fake, "messages", { contact: contact.uuid, text: "a".repeat(641) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body).toEqual({ text: ["Ensure this field has no more than 640 characters."] });
    // 640 emoji are 1280 UTF-16 units but 640 characters for Python.
    expect((await post(fake, "messages", { contact: contact.uuid, text: "🙏".repeat(640) })).status).toBe(201);
    const modern = await start();
    const other = modern.addContact({ name: "Joe", urns: ["tel:+250788123123"] });
    expect((await post(modern, "messages", { contact: other.uuid, text: "a".repeat(4096) })).status).toBe(201);
    expect((await post(modern, "messages", { contact: other.uuid, text: "a".repeat(4097) })).body).toEqual({
      text: ["Ensure this field has no more than 4096 characters."],
    });
  });

  it("answers 201 with status failed, channel null, urn null for blocked, stopped or URN-less contacts", async () => {
    const fake = await start();
    const blocked = fake.addContact({ name: "B", urns: ["tel:+250788000001"], status: "blocked" });
    const stopped = fake.addContact({ name: "S", urns: ["tel:+250788000002"], status: "stopped" });
    const noUrn = fake.addContact({ name: "N" });
    for (const contact of [blocked, stopped, noUrn]) {
      const res = await post(fake, "messages", { contact: contact.uuid, text: "well?" });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ status: "failed", channel: null, urn: null });
    }
    fake.advanceStatuses();
    expect(fake.sent().map((m) => m.status)).toEqual(["failed", "failed", "failed"]);
  });

  it("advances statuses over time, readable with GET messages.json?uuid=", async () => {
    const fake = await start();
    const contact = fake.addContact({ name: "Joe", urns: ["tel:+250788123123"] });
    const uuid = String((await post(fake, "messages", { contact: contact.uuid, text: "hi" })).body.uuid);
    const statusOf = async () => ((await get(fake, `messages.json?uuid=${uuid}`)).body.results as Json[])[0]?.status;
    expect(await statusOf()).toBe("queued");
    const seen: unknown[] = [];
    for (let i = 0; i < 4; i += 1) {
      fake.advanceStatuses();
      seen.push(await statusOf());
    }
    expect(seen).toEqual(["wired", "sent", "delivered", "delivered"]);
    expect(((await get(fake, `messages.json?uuid=${uuid}`)).body.results as Json[])[0]?.sent_on).toMatch(DATE_RE);
    expect((await get(fake, "messages.json?uuid=nope")).body).toEqual({
      detail: "Param 'uuid': nope is not a valid UUID.",
    });
  });

  it("checks quick replies: at most 10, text ≤ 64, type rules", async () => {
    const fake = await start();
    const contact = fake.addContact({ name: "Joe", urns: ["tel:+250788123123"] });
    const ok = await post(fake, "messages", {
      contact: contact.uuid,
      text: "Color?",
      quick_replies: [{ text: "Red" }, { text: "Green", extra: "Like grass" }],
    });
    expect(ok.body.quick_replies).toEqual([{ text: "Red" }, { text: "Green", extra: "Like grass" }]);
    expect(
      (await post(fake, "messages", { contact: contact.uuid, text: "x", quick_replies: [{ type: "form", text: "F" }] }))
        .body,
    ).toEqual({
      quick_replies: { "0": ["Quick replies of type 'form' require 'text' and 'extra' values."] },
    });
    expect(
      (await post(fake, "messages", { contact: contact.uuid, text: "x", quick_replies: [{ text: "x".repeat(65) }] }))
        .body,
    ).toEqual({
      quick_replies: { "0": { text: ["Ensure this field has no more than 64 characters."] } },
    });
    const eleven = Array.from({ length: 11 }, (_, i) => ({ text: `q${i}` }));
    expect((await post(fake, "messages", { contact: contact.uuid, text: "x", quick_replies: eleven })).body).toEqual({
      quick_replies: ["Ensure this field has no more than 10 elements."],
    });
  });
});

describe("fake RapidPro: media", () => {
  it("uploads a file (201 with an absolute URL it serves) and rejects missing, unsupported and oversized files", async () => {
    const fake = await start({ maxUploadBytes: 1024 });
    const res = await upload(fake, "steve marten.jpg", "image/jpeg", Buffer.from("jpeg-bytes"));
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(["uuid", "content_type", "url", "filename", "size"]);
    expect(res.body).toMatchObject({ content_type: "image/jpeg", filename: "steve marten.jpg", size: 10 });
    expect(res.body.url).toBe(`${fake.url}/media/${String(res.body.uuid)}/steve%20marten.jpg`);
    const served = await fetch(String(res.body.url));
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/jpeg");
    expect(Buffer.from(await served.arrayBuffer()).toString()).toBe("jpeg-bytes");
    expect(fake.media()[0]).toMatchObject({ filename: "steve marten.jpg", contentType: "image/jpeg", size: 10 });

    for (const [name, type] of [
      ["sheet.xlsx", "application/vnd.ms-excel"],
      ["logo.svg", "image/svg+xml"],
      ["scan.tiff", "image/tiff"],
      ["photo.heic", "image/heic"],
      ["old.bmp", "image/bmp"],
    ]) {
      expect({ name, body: (await upload(fake, name ?? "", type ?? "", "x")).body }).toEqual({
        name,
        body: { file: ["Unsupported file type."] },
      });
    }
    for (const [name, type] of [
      ["a.apng", "image/apng"],
      ["a.avif", "image/avif"],
      ["a.gif", "image/gif"],
      ["a.webp", "image/webp"],
      ["a.m4a", "audio/mp4"],
      ["a.webm", "video/webm"],
    ]) {
      expect({ name, status: (await upload(fake, name ?? "", type ?? "", "x")).status }).toEqual({ name, status: 201 });
    }
    expect((await upload(fake, "doc.pdf", "application/pdf", "%PDF")).status).toBe(201);
    expect((await upload(fake, "big.mp4", "video/mp4", Buffer.alloc(2048))).body).toEqual({
      file: ["Limit for file uploads is 0.0009765625 MB."],
    });
    const empty = new FormData();
    empty.append("other", "x");
    expect((await api(fake, "POST", "/api/v2/media.json", { form: empty })).body).toEqual({
      file: ["No file was submitted."],
    });
    const asJson = await api(fake, "POST", "/api/v2/media.json", { json: { file: "x" } });
    expect(asJson.status).toBe(415);
    expect(asJson.body).toEqual({ detail: 'Unsupported media type "application/json" in request.' });
    expect((await fetch(`${fake.url}/media/${String(res.body.uuid)}/other.jpg`)).status).toBe(404);
  });

  it("accepts attachments only as uploaded media: a UUID or '<content-type>:<url>' holding one", async () => {
    const fake = await start();
    const contact = fake.addContact({ name: "Joe", urns: ["tel:+250788123123"] });
    const media = (await upload(fake, "a.png", "image/png", "png")).body;
    const byUuid = await post(fake, "messages", { contact: contact.uuid, attachments: [media.uuid] });
    expect(byUuid.status).toBe(201);
    expect(byUuid.body.attachments).toEqual([{ content_type: "image/png", url: media.url }]);
    expect(byUuid.body.media).toBe(`image/png:${String(media.url)}`);
    const byRef = await post(fake, "messages", {
      contact: contact.uuid,
      text: "see",
      attachments: [`image/jpeg:https://elsewhere.example/${String(media.uuid)}.png`],
    });
    expect(byRef.body.attachments).toEqual([{ content_type: "image/png", url: media.url }]);
    expect((await post(fake, "messages", { contact: contact.uuid, attachments: ["xxxx"] })).body).toEqual({
      attachments: ["No such object: xxxx"],
    });
    const foreign = "image/jpeg:https://example.com/cat.jpg";
    expect((await post(fake, "messages", { contact: contact.uuid, attachments: [foreign] })).body).toEqual({
      attachments: [`No such object: ${foreign}`],
    });
    const unknown = "67ffe746-8771-40fb-89c1-5388e7ddd439";
    expect((await post(fake, "messages", { contact: contact.uuid, attachments: [unknown] })).body).toEqual({
      attachments: [`No such object: ${unknown}`],
    });
    expect(
      (await post(fake, "messages", { contact: contact.uuid, attachments: Array(11).fill(media.uuid) })).body,
    ).toEqual({
      attachments: ["Ensure this field has no more than 10 elements."],
    });
    expect(fake.sent(contact.uuid).map((m) => m.attachments)).toEqual([
      [`image/png:${String(media.url)}`],
      [`image/png:${String(media.url)}`],
    ]);
  });
});

describe("fake RapidPro: servers of other versions", () => {
  it("plays a server before v8.1.37: media.json is Surveyor's endpoint, images of any type before v9.1.92", async () => {
    const old = await start({ version: "8.1.36" });
    const asFile = await upload(old, "a.png", "image/png", "png");
    expect({ status: asFile.status, body: asFile.body }).toEqual({ status: 400, body: {} });
    const form = new FormData();
    form.append("media_file", new Blob([Buffer.from("png")], { type: "image/png" }), "a.png");
    form.append("extension", "png");
    const stored = await api(old, "POST", "/api/v2/media.json", { form });
    expect(stored.status).toBe(201);
    expect(Object.keys(stored.body)).toEqual(["location"]);
    expect(await (await fetch(String(stored.body.location))).text()).toBe("png");
    const noExtension = new FormData();
    noExtension.append("media_file", new Blob([Buffer.from("png")], { type: "image/png" }), "a.png");
    expect((await api(old, "POST", "/api/v2/media.json", { form: noExtension })).body).toEqual({});
    const before = await start({ version: "9.1.91" });
    expect((await upload(before, "old.bmp", "image/bmp", "bmp")).status).toBe(201);
  });

  it("plays the broadcast rules of older servers: text required, attachments free strings or not there at all", async () => {
    const v8136 = await start({ version: "8.1.36", messagesEndpoint: false });
    const contact = v8136.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    expect((await post(v8136, "messages", { contact: contact.uuid, text: "hi" })).status).toBe(405);
    const fileOnly = await post(v8136, "broadcasts", {
      contacts: [contact.uuid],
      attachments: ["image/png:https://elsewhere.example/a.png"],
    });
    expect({ status: fileOnly.status, body: fileOnly.body }).toEqual({
      status: 400,
      body: { text: ["This field is required."] },
    });
    const free = await post(v8136, "broadcasts", {
      contacts: [contact.uuid],
      text: "see",
      attachments: ["image/png:https://elsewhere.example/a.png"],
    });
    expect(free.status).toBe(201);
    expect(
      (await post(v8136, "broadcasts", { contacts: [contact.uuid], text: "see", attachments: ["a.png"] })).body,
    ).toEqual({ attachments: { eng: { "0": ["Invalid attachment. Must be <content-type>:<url>."] } } });
    // 640 characters before v10.1.45.
    expect((await post(v8136, "broadcasts", { contacts: [contact.uuid], text: "x".repeat(641) })).status).toBe(400);
    await v8136.whenIdle();
    expect(v8136.sent(contact.uuid).map((m) => m.attachments)).toEqual([["image/png:https://elsewhere.example/a.png"]]);

    const v8124 = await start({ version: "8.1.24" });
    const other = v8124.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    const ignored = await post(v8124, "broadcasts", {
      contacts: [other.uuid],
      text: "see the file",
      attachments: ["image/png:https://elsewhere.example/a.png"],
    });
    expect(ignored.status).toBe(201);
    await v8124.whenIdle();
    // No `attachments` field yet: DRF ignored it, and the contact gets the text alone.
    expect(v8124.sent(other.uuid).map((m) => [m.text, m.attachments])).toEqual([["see the file", []]]);
  });
});

describe("fake RapidPro: POST broadcasts.json", () => {
  it("evaluates @contact/@fields/@(…) per contact asynchronously; @@ is a literal @; unknown top levels stay", async () => {
    const fake = await start();
    const amara = fake.addContact({
      name: "Amara Diallo",
      urns: ["whatsapp:50255501234"],
      fields: { department: "GTM_HIV", age: "24" },
    });
    const noName = fake.addContact({ name: "", urns: ["tel:+50255501235"] });
    const template =
      'Hi @contact.first_name (@contact.name, @contact.uuid) @fields.department @(upper(contact.first_name) & "!") ' +
      "@(fields.age + 1) mail me@@example.org or ana@example.org, @results.x @contact.nope. 50@@ @";
    const res = await post(fake, "broadcasts", { contacts: [amara.uuid, noName.uuid], text: template });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      status: "pending",
      progress: { total: -1, started: 0 },
      urns: [],
      contacts: [
        { uuid: amara.uuid, name: "Amara Diallo" },
        { uuid: noName.uuid, name: null },
      ],
      groups: [],
      text: { eng: template },
      attachments: { eng: [] },
      quick_replies: { eng: [] },
      base_language: "eng",
    });
    expect(fake.sent()).toEqual([]);
    await fake.whenIdle();
    expect(fake.sent(amara.uuid).map((m) => [m.text, m.via, m.broadcast])).toEqual([
      [
        `Hi Amara (Amara Diallo, ${amara.uuid}) GTM_HIV AMARA! 25 mail me@example.org or ana@example.org, @results.x . 50@ @`,
        "broadcasts",
        res.body.uuid,
      ],
    ]);
    expect(fake.sent(noName.uuid)[0]?.text).toBe(
      `Hi  (, ${noName.uuid})  ! 1 mail me@example.org or ana@example.org, @results.x . 50@ @`,
    );
    expect(fake.broadcasts()[0]).toMatchObject({ status: "completed", recipients: [amara.uuid, noName.uuid] });
  });

  it("escaping @ as @@ delivers the agent's text verbatim", async () => {
    const fake = await start();
    const contact = fake.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    const agentText = "Write to help@clinic.org or @contact.name @(1+1) @@";
    await post(fake, "broadcasts", { contacts: [contact.uuid], text: agentText.replaceAll("@", "@@") });
    await fake.whenIdle();
    expect(fake.sent(contact.uuid)[0]?.text).toBe(agentText);
  });

  it("takes language maps with base_language rules, per-contact translations, and creates contacts for new URNs", async () => {
    const fake = await start();
    const spa = fake.addContact({ name: "Ana", urns: ["tel:+50255501234"], language: "spa" });
    expect((await post(fake, "broadcasts", {})).body).toEqual({
      non_field_errors: ["Must provide either text or attachments."],
    });
    expect((await post(fake, "broadcasts", { text: "Hello" })).body).toEqual({
      non_field_errors: ["Must provide either urns, contacts or groups."],
    });
    expect(
      (await post(fake, "broadcasts", { text: { kin: "Muraho" }, base_language: "eng", contacts: [spa.uuid] })).body,
    ).toEqual({ non_field_errors: ["No text translation provided in base language."] });
    expect((await post(fake, "broadcasts", { text: "x", groups: [123456] })).body).toEqual({
      groups: ["No such object: 123456"],
    });
    expect((await post(fake, "broadcasts", { text: "x", urns: ["foo:bar"] })).body).toEqual({
      urns: { "0": ["Invalid URN: foo:bar. Ensure phone numbers contain country codes."] },
    });
    const res = await post(fake, "broadcasts", {
      text: { eng: "Hello @contact.name", spa: "Hola @contact.name" },
      base_language: "eng",
      contacts: [spa.uuid],
      urns: ["tel:+50255509999"],
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ urns: ["tel:+50255509999"], base_language: "eng" });
    await fake.whenIdle();
    const created = fake.contact("tel:+50255509999");
    expect(created).toMatchObject({ name: "", status: "active" });
    expect(fake.sent().map((m) => [m.contact, m.text])).toEqual([
      [spa.uuid, "Hola Ana"],
      [created?.uuid, "Hello "],
    ]);
  });

  it("applies the text limit per language", async () => {
    const fake = await start({ maxTextLength: 640 });
    const contact = fake.addContact({ name: "Ana", urns: ["tel:+50255501234"] });
    expect((await post(fake, "broadcasts", { contacts: [contact.uuid], text: "a".repeat(641) })).body).toEqual({
      text: { eng: ["Ensure this field has no more than 640 characters."] },
    });
    expect((await post(fake, "broadcasts", { contacts: [contact.uuid], text: { xx: "a" } })).body).toEqual({
      text: { xx: ["Not an allowed ISO 639-3 language code."] },
    });
  });
});

describe("fake RapidPro: flow starts, contacts, contact actions, history", () => {
  it("starts a flow (201 pending) that interrupts the contact's current flow, with defaults and exclusions", async () => {
    const fake = await start();
    const helpLine = fake.addFlow({ name: "Help line" });
    const nps = fake.addFlow({ uuid: "b1a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", name: "NPS" });
    const amara = fake.addContact({ name: "Amara", urns: ["tel:+50255501234"], flow: helpLine });
    const blocked = fake.addContact({ name: "B", urns: ["tel:+50255501235"], status: "blocked" });

    expect((await post(fake, "flow_starts", {})).body).toEqual({ flow: ["This field is required."] });
    expect((await post(fake, "flow_starts", { flow: "abcde", contacts: [amara.uuid] })).body).toEqual({
      flow: ["No such object: abcde"],
    });
    expect((await post(fake, "flow_starts", { flow: nps.uuid })).body).toEqual({
      non_field_errors: ["Must specify at least one group, contact or URN"],
    });
    expect(
      (await post(fake, "flow_starts", { flow: nps.uuid, contacts: [amara.uuid], params: { foo: "a".repeat(10_000) } }))
        .body,
    ).toEqual({ params: ["Cannot exceed 10,000 characters encoded."] });
    expect((await post(fake, "flow_starts", { flow: nps.uuid, contacts: [amara.uuid], extra: [1] })).body).toEqual({
      extra: ["Must be a valid JSON object"],
    });

    const res = await post(fake, "flow_starts", {
      flow: nps.uuid,
      contacts: [amara.uuid, blocked.uuid],
      params: { closed_by: "agent", conversation_id: "c-1" },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      flow: { uuid: nps.uuid, name: "NPS" },
      status: "pending",
      progress: { total: -1, started: 0 },
      groups: [],
      contacts: [
        { uuid: amara.uuid, name: "Amara" },
        { uuid: blocked.uuid, name: "B" },
      ],
      params: { closed_by: "agent", conversation_id: "c-1" },
      extra: { closed_by: "agent", conversation_id: "c-1" },
      restart_participants: true,
      exclude_active: false,
    });
    await fake.whenIdle();
    expect(fake.contact(amara.uuid)?.flow).toEqual({ uuid: nps.uuid, name: "NPS" });
    expect(fake.flowStarts()[0]).toMatchObject({
      flow: nps.uuid,
      contacts: [amara.uuid, blocked.uuid],
      params: { closed_by: "agent", conversation_id: "c-1" },
      status: "completed",
      started: [amara.uuid],
    });

    // restart_participants false skips contacts that were in the flow; exclude_active skips those in any flow.
    await post(fake, "flow_starts", { flow: nps.uuid, contacts: [amara.uuid], restart_participants: false });
    await post(fake, "flow_starts", { flow: helpLine.uuid, contacts: [amara.uuid], exclude_active: true });
    // The deprecated extra is normalised and used when params is absent.
    await post(fake, "flow_starts", {
      flow: helpLine.uuid,
      urns: ["tel:+50255507777"],
      extra: { "first name": "x".repeat(700) },
    });
    await fake.whenIdle();
    expect(fake.flowStarts().map((s) => s.started.length)).toEqual([1, 0, 0, 1]);
    expect(fake.flowStarts()[3]?.params).toEqual({ first_name: "x".repeat(640) });
    expect(fake.contact("tel:+50255507777")?.flow).toEqual({ uuid: helpLine.uuid, name: "Help line" });
  });

  it("looks contacts up by uuid or urn in the paginated envelope; a bad UUID is a 400 detail", async () => {
    const fake = await start({ pageSize: 1 });
    const flow = fake.addFlow({ name: "Help line" });
    const amara = fake.addContact({
      name: "Amara Diallo",
      urns: ["telegram:12345#amara"],
      language: "spa",
      fields: { department: "GTM" },
      flow,
    });
    fake.addContact({ name: "Other", urns: ["tel:+50255501111"], status: "stopped" });
    const byUuid = await get(fake, `contacts.json?uuid=${amara.uuid}`);
    expect(byUuid.body).toEqual({
      next: null,
      previous: null,
      results: [
        expect.objectContaining({
          uuid: amara.uuid,
          name: "Amara Diallo",
          status: "active",
          language: "spa",
          urns: ["telegram:12345"],
          groups: [],
          fields: { department: "GTM" },
          flow: { uuid: flow.uuid, name: "Help line" },
          blocked: false,
          stopped: false,
        }),
      ],
    });
    const byUrn = await get(fake, `contacts.json?urn=${encodeURIComponent("telegram:12345")}`);
    expect((byUrn.body.results as Json[]).map((c) => c.uuid)).toEqual([amara.uuid]);
    expect((await get(fake, "contacts.json?uuid=x")).body).toEqual({ detail: "Param 'uuid': x is not a valid UUID." });
    expect((await get(fake, "contacts.json?uuid=x")).status).toBe(400);
    const page1 = await get(fake, "contacts.json");
    expect((page1.body.results as Json[]).map((c) => c.name)).toEqual(["Other"]);
    expect(page1.body.next).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v2\/contacts\.json\?cursor=/);
    const page2 = await fetch(String(page1.body.next), { headers: { authorization: `Token ${fake.token}` } });
    expect(((await page2.json()) as { results: Json[] }).results.map((c) => c.name)).toEqual(["Amara Diallo"]);
  });

  it("runs contact actions: 204, interrupt clears the flow, DRF errors for bad actions and group rules", async () => {
    const fake = await start();
    const flow = fake.addFlow({ name: "Help line" });
    const contact = fake.addContact({ name: "Amara", urns: ["tel:+50255501234"], flow });
    const res = await post(fake, "contact_actions", { contacts: [contact.uuid], action: "interrupt" });
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expect(fake.contact(contact.uuid)?.flow).toBeNull();
    expect((await post(fake, "contact_actions", { contacts: [contact.uuid], action: "like" })).body).toEqual({
      action: ['"like" is not a valid choice.'],
    });
    expect((await post(fake, "contact_actions", { contacts: [], action: "block" })).body).toEqual({
      contacts: ["Contacts can't be empty."],
    });
    expect((await post(fake, "contact_actions", { contacts: [contact.uuid], action: "add" })).body).toEqual({
      non_field_errors: ['For action "add" you should also specify a group'],
    });
    const group = fake.addGroup({ name: "Testers" });
    expect(
      (await post(fake, "contact_actions", { contacts: [contact.uuid], action: "block", group: "Testers" })).body,
    ).toEqual({
      non_field_errors: ['For action "block" you should not specify a group'],
    });
    expect(
      (await post(fake, "contact_actions", { contacts: ["tel:+50255501234"], action: "add", group: "testers" })).status,
    ).toBe(204);
    expect(fake.contact(contact.uuid)?.groups).toEqual([group.uuid]);
    expect((await post(fake, "contact_actions", { contacts: [contact.uuid], action: "block" })).status).toBe(204);
    expect(fake.contact(contact.uuid)).toMatchObject({ status: "blocked", groups: [] });
  });

  it("lists a contact's messages both ways, newest first, filtered by after/before (inclusive)", async () => {
    const fake = await start();
    const contact = fake.addContact({ name: "Amara", urns: ["tel:+50255501234"] });
    const other = fake.addContact({ name: "Other", urns: ["tel:+50255501235"] });
    const t0 = new Date("2026-03-01T10:00:00.000Z");
    fake.addMessage(contact.uuid, { direction: "out", text: "Hi! How can I help?", createdOn: t0 });
    fake.addMessage(contact.uuid, {
      direction: "in",
      text: "Photo",
      createdOn: new Date(t0.getTime() + 1000),
      attachments: ["image/jpeg:https://media.example/a.jpg"],
    });
    fake.addMessage(other.uuid, { direction: "in", text: "not mine", createdOn: new Date(t0.getTime() + 1500) });
    fake.addMessage(contact.uuid, {
      direction: "in",
      text: "I need a person",
      createdOn: new Date(t0.getTime() + 2000),
    });
    const all = (await get(fake, `messages.json?contact=${contact.uuid}`)).body.results as Json[];
    expect(all.map((m) => [m.direction, m.text])).toEqual([
      ["in", "I need a person"],
      ["in", "Photo"],
      ["out", "Hi! How can I help?"],
    ]);
    expect(all[1]).toMatchObject({
      attachments: [{ content_type: "image/jpeg", url: "https://media.example/a.jpg" }],
      status: "handled",
      created_on: "2026-03-01T10:00:01.000000Z",
    });
    const after = (await get(fake, `messages.json?contact=${contact.uuid}&after=2026-03-01T10:00:01.000Z`)).body
      .results as Json[];
    expect(after.map((m) => m.text)).toEqual(["I need a person", "Photo"]);
    const before = (await get(fake, `messages.json?contact=${contact.uuid}&before=2026-03-01T10:00:01.000000Z`)).body
      .results as Json[];
    expect(before.map((m) => m.text)).toEqual(["Photo", "Hi! How can I help?"]);
    expect((await get(fake, "messages.json?contact=invalid")).body.results).toEqual([]);
  });
});

describe("fake RapidPro: the flow player (mailroom call_webhook)", () => {
  it("sends the editor's default body: sorted keys, snakified results, values cut to 640, mailroom headers", async () => {
    const fake = await start();
    const flow = fake.addFlow({ uuid: "b1a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", name: "Help line" });
    const contact = fake.addContact({ name: "Amara Diallo", urns: ["telegram:12345#amara"] });
    const target = await receiver();
    const long = "x".repeat(700);
    const result = await fake.callWebhook(target.url, {
      shape: "default",
      contact: { uuid: contact.uuid, name: "Amara Diallo" },
      flow,
      results: { "Client Message": long, department: { value: "GTM_HIV_GENERAL", category: "Other" } },
    });
    expect(result.status).toBe(200);
    expect(result.json).toEqual({ ok: true });
    const sent = target.received[0];
    expect(sent?.method).toBe("POST");
    expect(sent?.text).toBe(
      JSON.stringify({
        contact: { name: "Amara Diallo", urn: "telegram:12345#amara", uuid: contact.uuid },
        flow: { name: "Help line", uuid: flow.uuid },
        results: {
          client_message: { category: "All Responses", value: "x".repeat(640) },
          department: { category: "Other", value: "GTM_HIV_GENERAL" },
        },
      }),
    );
    expect(sent?.headers).toMatchObject({
      "user-agent": "Mailroom/26.1",
      "x-mailroom-mode": "normal",
      accept: "application/json",
      "content-type": "application/json",
      "accept-encoding": "gzip",
    });

    // Unknown contact: urn null, name "" as given; no Content-Type when the author removed it; simulator mode.
    await fake.callWebhook(target.url, {
      shape: "default",
      contact: { uuid: "3d2e8c1a-5b7f-4e21-9a0c-1f2e3d4c5b6a", name: "" },
      flow,
      contentType: "none",
      simulation: true,
      headers: { Authorization: "Token secret" },
    });
    const second = target.received[1];
    expect(JSON.parse(second?.text ?? "")).toEqual({
      contact: { name: "", urn: null, uuid: "3d2e8c1a-5b7f-4e21-9a0c-1f2e3d4c5b6a" },
      flow: { name: "Help line", uuid: flow.uuid },
      results: {},
    });
    expect(second?.headers["content-type"]).toBeUndefined();
    expect(second?.headers).toMatchObject({ "x-mailroom-mode": "simulation", authorization: "Token secret" });
  });

  it("sends the legacy/resthook body with input, channel, path, run and the richer results", async () => {
    const fake = await start({
      channel: { uuid: "c0ffee00-0000-4000-8000-00000000c4a1", name: "WhatsApp GT", address: "+50255500000" },
    });
    const flow = fake.addFlow({ name: "Help line" });
    const contact = fake.addContact({ name: "Amara", urns: ["tel:+50255501234"], language: "spa" });
    const target = await receiver();
    await fake.callWebhook(target.url, {
      shape: "legacy",
      contact: { uuid: contact.uuid, name: "Amara" },
      results: { ClientMessage: "I want to talk to a person" },
      input: { text: "I want to talk to a person", attachments: ["image/jpeg:https://media.example/a.jpg"] },
    });
    const body = JSON.parse(target.received[0]?.text ?? "") as Json;
    expect(Object.keys(body)).toEqual(["channel", "contact", "flow", "input", "path", "results", "run"]);
    const channel = { address: "+50255500000", name: "WhatsApp GT", uuid: "c0ffee00-0000-4000-8000-00000000c4a1" };
    expect(body).toMatchObject({
      channel,
      contact: { language: "spa", name: "Amara", urn: "tel:+50255501234", uuid: contact.uuid },
      flow: { name: "Help line", revision: 1, uuid: flow.uuid },
      input: {
        attachments: [{ content_type: "image/jpeg", url: "https://media.example/a.jpg" }],
        channel,
        text: "I want to talk to a person",
        type: "msg",
        urn: { display: "", path: "+50255501234", scheme: "tel" },
      },
      results: {
        clientmessage: {
          category: "All Responses",
          category_localized: "All Responses",
          input: "I want to talk to a person",
          name: "ClientMessage",
          value: "I want to talk to a person",
        },
      },
    });
    expect(Object.keys((body.results as Record<string, Json>).clientmessage ?? {})).toEqual([
      "category",
      "category_localized",
      "created_on",
      "input",
      "name",
      "node_uuid",
      "value",
    ]);
    expect((body.run as Json).created_on).toMatch(DATE_RE);
    expect((body.path as Json[]).length).toBe(2);
    // No input (e.g. after a flow start): input and channel are null.
    await fake.callWebhook(target.url, { shape: "legacy", contact: { uuid: contact.uuid, name: "Amara" } });
    expect(JSON.parse(target.received[1]?.text ?? "")).toMatchObject({ input: null, channel: null });
  });

  it("sends the custom mediator body, parses JSON whatever the Content-Type, null for non-JSON", async () => {
    const fake = await start();
    const target = await receiver((_req, res, n) => {
      if (n === 1) res.writeHead(200, { "content-type": "text/plain" }).end('{"conversationId":"c1"}');
      else if (n === 2) res.writeHead(503, { "content-type": "text/html" }).end("<h1>down</h1>");
      else res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync('{"zipped":true}'));
    });
    const contact = { uuid: "5d76d86b-3bb9-4d5a-b822-c1f2b1c8a6f0", name: "Amina" };
    const first = await fake.callWebhook(target.url, {
      shape: "custom",
      contact,
      department: "Counselling",
      results: { clientmessage: "I need to talk to someone" },
      input: { text: "I need to talk to someone", attachments: ["image/jpeg:https://media.example/a.jpg"] },
    });
    expect(target.received[0]?.text).toBe(
      JSON.stringify({
        contact: { name: "Amina", uuid: contact.uuid },
        department: "Counselling",
        input: { attachments: ["image/jpeg:https://media.example/a.jpg"], text: "I need to talk to someone" },
        results: { clientmessage: { value: "I need to talk to someone" } },
      }),
    );
    expect(first).toMatchObject({ status: 200, json: { conversationId: "c1" }, keptAcrossWait: true });
    const second = await fake.callWebhook(target.url, { shape: "custom", contact });
    expect(second).toMatchObject({ status: 503, json: null, text: "<h1>down</h1>" });
    expect(target.received[1]?.text).toBe(
      JSON.stringify({ contact: { name: "Amina", uuid: contact.uuid }, results: {} }),
    );
    expect((await fake.callWebhook(target.url, { shape: "custom", contact })).json).toEqual({ zipped: true });
    expect(target.received[2]?.headers.connection).toBe("close");
    expect(target.received[2]?.headers["content-length"]).toBe(
      String(Buffer.byteLength(target.received[2]?.text ?? "")),
    );
  });

  it("times out to status 0 without retrying, drops oversized responses, reports refused connections as 0", async () => {
    const fake = await start();
    const slow = await receiver((_req, res) => {
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200).end("{}");
      }, 1000);
    });
    const contact = { uuid: "5d76d86b-3bb9-4d5a-b822-c1f2b1c8a6f0", name: "Amina" };
    const timedOut = await fake.callWebhook(slow.url, { shape: "custom", contact, timeoutMs: 200 });
    expect(timedOut.status).toBe(0);
    expect(timedOut.json).toBeNull();
    expect(timedOut.elapsedMs).toBeLessThan(900);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(slow.received).toHaveLength(1);

    const huge = await receiver((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ x: "y".repeat(300 * 1024) }));
    });
    expect((await fake.callWebhook(huge.url, { shape: "custom", contact })).status).toBe(0);

    const tooBig = await fake.callWebhook(huge.url, {
      shape: "custom",
      contact,
      input: { text: "z".repeat(300 * 1024) },
    });
    expect(tooBig.status).toBe(0);
    expect(tooBig.requestBody.length).toBeGreaterThan(256 * 1024);
    expect(huge.received).toHaveLength(1);

    const closed = await receiver();
    const port = new URL(closed.url).port;
    await cleanups.pop()?.();
    expect((await fake.callWebhook(`http://127.0.0.1:${port}/x`, { shape: "custom", contact })).status).toBe(0);
  });

  it("makes one call at a time per contact (a second call waits for the first), other contacts run in parallel", async () => {
    const fake = await start();
    const log: string[] = [];
    const server = await receiver((_req, res, n) => {
      log.push(`start ${n}`);
      setTimeout(() => {
        log.push(`end ${n}`);
        res.writeHead(200).end("{}");
      }, 80);
    });
    const a = { uuid: "5d76d86b-3bb9-4d5a-b822-c1f2b1c8a6f0", name: "A" };
    const b = { uuid: "6e87e97c-4cca-4e6b-9933-d2f3c2d9b701", name: "B" };
    await Promise.all([
      fake.callWebhook(server.url, { shape: "custom", contact: a }),
      fake.callWebhook(server.url, { shape: "custom", contact: a }),
      fake.callWebhook(server.url, { shape: "custom", contact: b }),
    ]);
    expect(log.slice(0, 2)).toEqual(["start 1", "start 2"]);
    expect(log.indexOf("end 1")).toBeLessThan(log.indexOf("start 3"));
  });
});

describe("fake RapidPro: the template evaluator", () => {
  it("follows goflow's scanner for edge cases", () => {
    const ctx = new XObject(
      {
        contact: new XObject({ name: "Ana", first_name: "Ana" }, "Ana"),
        fields: new XObject({}, ""),
        urns: new XObject({}, ""),
      },
      "",
    );
    expect(evaluateTemplate("@contact", ctx).text).toBe("Ana");
    expect(evaluateTemplate("@contact.name.", ctx).text).toBe("Ana.");
    expect(evaluateTemplate("@contact.name's", ctx).text).toBe("Ana's");
    expect(evaluateTemplate("@(contact.name", ctx).text).toBe("@(contact.name");
    expect(evaluateTemplate("@(1 + ) x", ctx)).toEqual({ text: " x", errors: [expect.stringContaining("@(1 + )")] });
    expect(evaluateTemplate("@CONTACT.NAME @ @@@", ctx).text).toBe("Ana @ @@");
    expect(
      evaluateTemplate('@(if(contact.name = "Ana", "yes", "no")) @(word("a b c", 1)) @(default(contact.x, "d"))', ctx)
        .text,
    ).toBe("yes b d");
  });
});
