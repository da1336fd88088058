import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { InitResponse } from "../../protocol/index.js";
import type { Actor } from "../../server/core/conversations.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { startSmtpServer } from "../helpers/smtp.js";
import { postJson } from "../helpers/socket.js";

/**
 * An ended conversation of `messages` chat messages (customer and agent in turn), recorded through the core directly:
 * the HTTP and socket paths are not what these tests are about, and thousands of messages through them take long.
 */
async function endedConversation(
  gateway: TestApp,
  messages: number,
  body: Record<string, string> = { email: "sara@example.org" },
): Promise<InitResponse> {
  const init = (await postJson(`${gateway.url}/api/customer/init`, { firstName: "Sara", channel: "web", ...body }))
    .body as InitResponse;
  const { core } = gateway.app;
  const conversation = await core.get(init.conversationId);
  const customer: Actor = { id: init.participant.id, name: "Sara", role: "customer" };
  const agent: Actor = { id: "agent-17", name: "Ali", role: "agent" };
  for (let i = 0; i < messages; i++) {
    await core.send(conversation, i % 2 === 0 ? customer : agent, {
      text: `Message ${i}: the parcel left the warehouse this morning and should arrive by Thursday.`,
      attachments: [],
      to: [],
      tag: "",
    });
  }
  await core.end(conversation, customer, "resolved");
  return init;
}

/** How many transcripts the gateway has rendered, read from its metrics as an operator would. */
async function renders(gateway: TestApp): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return [...text.matchAll(/^liaison_transcript_render_seconds_count\{[^}]*\} (\d+)$/gm)].reduce(
    (sum, match) => sum + Number(match[1]),
    0,
  );
}

const pdfPath = (init: InitResponse) => `/api/customer/transcript/${init.conversationId}/pdf`;
const emailPath = (init: InitResponse) => `/api/customer/transcript/${init.conversationId}/email`;
const withToken = (init: InitResponse) => ({ authorization: `Bearer ${init.token}` });

async function startApp(overrides: Record<string, string> = {}): Promise<TestApp> {
  const gateway = await startTestApp(overrides);
  onTestFinished(() => gateway.close());
  return gateway;
}

describe("transcript rendering", () => {
  let gateway: TestApp;
  beforeAll(async () => {
    gateway = await startTestApp();
  });
  afterAll(() => gateway.close());

  it("happens off the event loop: the gateway keeps answering while a long transcript renders", async () => {
    const init = await endedConversation(gateway, 4_000);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let rendered = false;
    const download = fetch(`${gateway.url}${pdfPath(init)}`, { headers: withToken(init) }).then(async (response) => {
      const body = Buffer.from(await response.arrayBuffer());
      rendered = true;
      return { response, body };
    });
    let answered = 0;
    while (!rendered) {
      const health = await fetch(`${gateway.url}/health`);
      expect(health.status).toBe(200);
      answered++;
    }
    const { response, body } = await download;
    delay.disable();
    expect(response.status).toBe(200);
    expect(body.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    // Rendered on the event loop, 4,000 messages stall it for seconds and /health waits with everything else; in
    // the worker, /health keeps answering and the loop is never held for long.
    expect(answered).toBeGreaterThan(5);
    expect(delay.max / 1e6).toBeLessThan(1_000);
  }, 60_000);

  it("refuses e-mails cheaply: no transcript is rendered for a refusal", async () => {
    const smtp = await startSmtpServer();
    onTestFinished(() => smtp.close());
    const mailing = await startApp({ SMTP_URL: `smtp://127.0.0.1:${smtp.port}?ignoreTLS=true` });
    const withEmail = await endedConversation(mailing, 200);
    const withoutEmail = await endedConversation(mailing, 200, { phone: "+923001234567" });
    const ongoing = (
      await postJson(`${mailing.url}/api/customer/init`, { firstName: "Ana", channel: "web", email: "a@example.org" })
    ).body as InitResponse;
    const ask = async (
      path: string,
      headers: Record<string, string>,
      status: number,
      method = "POST",
      to = mailing,
    ) => {
      const response = await fetch(`${to.url}${path}`, { method, headers });
      expect(response.status).toBe(status);
    };

    const before = await renders(mailing);
    await ask(emailPath(withEmail), {}, 401);
    await ask(emailPath(withEmail), { authorization: `Bearer ${ongoing.token}` }, 401);
    await ask(emailPath(ongoing), withToken(ongoing), 404);
    await ask(emailPath(withoutEmail), withToken(withoutEmail), 422);
    await ask(`${emailPath(withEmail)}?to=someone@example.org`, withToken(withEmail), 403);
    expect(await renders(mailing)).toBe(before);

    for (let i = 0; i < 3; i++) await ask(emailPath(withEmail), withToken(withEmail), 200);
    expect(await renders(mailing)).toBe(before + 3);
    await ask(emailPath(withEmail), withToken(withEmail), 429);
    await ask(emailPath(withEmail), withToken(withEmail), 429, "GET");
    expect(await renders(mailing)).toBe(before + 3);

    // Without a mail transport: 501 before any rendering, however long the conversation.
    const bare = await startApp();
    const long = await endedConversation(bare, 2_000);
    await ask(emailPath(long), withToken(long), 501, "POST", bare);
    expect(await renders(bare)).toBe(0);
  });
});

describe("transcript rate limits", () => {
  it("limit PDFs per conversation, counting only callers the conversation admits", async () => {
    const gateway = await startApp({ TRANSCRIPT_PDFS_PER_HOUR: "2" });
    const init = await endedConversation(gateway, 3);
    const other = await endedConversation(gateway, 3);
    // Someone without the token cannot use up the customer's allowance.
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${gateway.url}${pdfPath(init)}`, { headers: withToken(other) });
      expect(response.status).toBe(401);
    }
    for (let i = 0; i < 2; i++) {
      expect((await fetch(`${gateway.url}${pdfPath(init)}`, { headers: withToken(init) })).status).toBe(200);
    }
    const limited = await fetch(`${gateway.url}${pdfPath(init)}`, { headers: withToken(init) });
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limited" } });
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // An API key counts against the conversation too; another conversation has its own allowance.
    const byKey = await fetch(`${gateway.url}${pdfPath(init)}`, {
      headers: { authorization: `Bearer ${gateway.apiKey}` },
    });
    expect(byKey.status).toBe(429);
    expect((await fetch(`${gateway.url}${pdfPath(other)}`, { headers: withToken(other) })).status).toBe(200);
  });

  it("limit transcript requests per client address, wrong credentials included, API keys excepted", async () => {
    const gateway = await startApp({ TRANSCRIPTS_PER_MINUTE: "3" });
    const first = await endedConversation(gateway, 3);
    const second = await endedConversation(gateway, 3);
    expect((await fetch(`${gateway.url}${pdfPath(first)}`, { headers: withToken(first) })).status).toBe(200);
    expect((await fetch(`${gateway.url}${pdfPath(first)}?token=guess`)).status).toBe(401);
    expect((await fetch(`${gateway.url}${emailPath(second)}`, { method: "POST" })).status).toBe(401);
    const limited = await fetch(`${gateway.url}${pdfPath(second)}`, { headers: withToken(second) });
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limited" } });
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const byKey = await fetch(`${gateway.url}${pdfPath(second)}`, {
      headers: { authorization: `Bearer ${gateway.apiKey}` },
    });
    expect(byKey.status).toBe(200);
  });
});

describe("POST /api/customer/transcript/:id/email", () => {
  let gateway: TestApp;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  beforeAll(async () => {
    smtp = await startSmtpServer();
    gateway = await startTestApp({ SMTP_URL: `smtp://127.0.0.1:${smtp.port}?ignoreTLS=true` });
  });
  afterAll(async () => {
    await gateway.close();
    await smtp.close();
  });

  const post = (init: InitResponse, headers: Record<string, string>, body?: unknown) =>
    fetch(`${gateway.url}${emailPath(init)}`, {
      method: "POST",
      headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it("e-mails the customer with the token in the Authorization header and no body", async () => {
    const init = await endedConversation(gateway, 3, { email: "post.customer@example.org" });
    const response = await post(init, withToken(init));
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    expect(smtp.received.at(-1)?.rcptTo).toEqual(["post.customer@example.org"]);
  });

  it("takes the recipient from the body, for API-key callers only", async () => {
    const init = await endedConversation(gateway, 3);
    const asCustomer = await post(init, withToken(init), { to: "records@example.org" });
    expect(asCustomer.status).toBe(403);
    expect(await asCustomer.json()).toMatchObject({ error: { code: "forbidden" } });
    const asBackOffice = await post(init, { authorization: `Bearer ${gateway.apiKey}` }, { to: "records@example.org" });
    expect(asBackOffice.status).toBe(200);
    expect(smtp.received.at(-1)?.rcptTo).toEqual(["records@example.org"]);
  });

  it("refuses a body it does not understand", async () => {
    const init = await endedConversation(gateway, 3);
    const key = { authorization: `Bearer ${gateway.apiKey}` };
    for (const body of [{ To: "records@example.org" }, { to: "not an address" }, ["records@example.org"]]) {
      const response = await post(init, key, body);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: "invalid_payload" } });
    }
  });
});
