import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { InitResponse } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { compact, extractPdf } from "../helpers/pdf.js";
import { flatPng } from "../helpers/png.js";
import { startSmtpServer } from "../helpers/smtp.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";

describe("GET /api/customer/transcript/:id/:type", () => {
  let gateway: TestApp;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    smtp = await startSmtpServer();
    gateway = await startTestApp({
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}?ignoreTLS=true`,
      MAIL_FROM: "support@liaison.test",
    });
  });
  afterAll(async () => {
    await gateway.close();
    await smtp.close();
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${gateway.url}${path}`, { headers });

  /** A complete conversation: customer and agent talk, the agent whispers to a supervisor, the customer ends it. */
  async function conversation(body: Record<string, string> = { email: "sara@example.org" }, end = true) {
    const init = (
      await postJson(`${gateway.url}/api/customer/init`, {
        firstName: "Sara",
        lastName: "Khan",
        channel: "web",
        ...body,
      })
    ).body as InitResponse;
    const customer = await connect(gateway.url);
    const agent = await connect(gateway.url, { apiKey: gateway.apiKey });
    sockets.push(customer, agent);
    const info = nextEvent(customer, "conversationInfo");
    await request(customer, "joinConversation", {
      conversationId: init.conversationId,
      id: init.participant.id,
      name: "Sara",
      token: init.token,
    });
    await info;
    await request(agent, "joinConversation", {
      conversationId: init.conversationId,
      id: "agent-17",
      name: "Ali Raza",
      role: "agent",
    });
    const inbox = collectMessages(agent);
    await request(customer, "sendMessage", {
      conversationId: init.conversationId,
      text: "Where is my refund for order 8812?",
    });
    await request(agent, "sendMessage", {
      conversationId: init.conversationId,
      text: "SECRET-WHISPER check ledger",
      tag: "whisper",
    });
    await request(agent, "sendMessage", {
      conversationId: init.conversationId,
      text: "It was issued today.",
      attachments: [
        { type: "application/pdf", name: "refund-8812.pdf", contentUrl: "https://files.example.org/refund-8812.pdf" },
      ],
    });
    await request(agent, "sendMessage", {
      conversationId: init.conversationId,
      type: "ActivityMessage",
      activityType: "typing",
      info: { state: "start" },
    });
    if (end) {
      await request(customer, "endConversation", { conversationId: init.conversationId, reason: "resolved" });
      await inbox.waitFor(2); // the customer's message and the end
    }
    return init;
  }

  it("serves a readable PDF of an ended conversation to its customer, without whispers or typing", async () => {
    const init = await conversation();
    const response = await get(`/api/customer/transcript/${init.conversationId}/pdf?token=${init.token}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/pdf");
    expect(response.headers.get("content-disposition")).toBe(
      `attachment; filename="transcript-${init.conversationId}.pdf"`,
    );
    const { pages } = await extractPdf(Buffer.from(await response.arrayBuffer()));
    const text = compact(pages.map((page) => page.text).join(" "));
    expect(text).toContain(init.conversationId);
    expect(text).toContain("Sara Khan");
    expect(text).toContain("Ali Raza");
    expect(text).toContain("Where is my refund for order 8812?");
    expect(text).toContain("It was issued today.");
    expect(text).toContain("refund-8812.pdf");
    expect(text).toContain("https://files.example.org/refund-8812.pdf");
    expect(text).toMatch(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} Sara Khan Where is my refund/);
    expect(text).toContain("Time zone: UTC");
    expect(text).not.toContain("SECRET-WHISPER");
    expect(text).not.toMatch(/typing/i);
    expect(text.indexOf("Where is my refund")).toBeLessThan(text.indexOf("It was issued today."));
  });

  it("accepts the token as a bearer credential, and an API key", async () => {
    const init = await conversation();
    const path = `/api/customer/transcript/${init.conversationId}/pdf`;
    expect((await get(path, { authorization: `Bearer ${init.token}` })).status).toBe(200);
    expect((await get(path, { authorization: `Bearer ${gateway.apiKey}` })).status).toBe(200);
  });

  it("refuses missing or wrong credentials, unknown and ongoing conversations, and unknown types", async () => {
    const ended = await conversation();
    const other = await conversation({ email: "other@example.org" });
    const ongoing = await conversation({ email: "open@example.org" }, false);
    const error = async (path: string, status: number, code: string) => {
      const response = await get(path);
      expect(response.status).toBe(status);
      expect(await response.json()).toMatchObject({ error: { code } });
    };
    await error(`/api/customer/transcript/${ended.conversationId}/pdf`, 401, "unauthorized");
    await error(`/api/customer/transcript/${ended.conversationId}/pdf?token=${other.token}`, 401, "unauthorized");
    await error(`/api/customer/transcript/c_unknown/pdf?token=${ended.token}`, 404, "not_found");
    await error(`/api/customer/transcript/${ongoing.conversationId}/pdf?token=${ongoing.token}`, 404, "not_found");
    await error(`/api/customer/transcript/${ended.conversationId}/docx?token=${ended.token}`, 400, "invalid_payload");
  });

  it("e-mails the transcript with the PDF attached to the customer's address", async () => {
    const init = await conversation({ email: "sara.khan@example.org" });
    const before = smtp.received.length;
    const response = await get(`/api/customer/transcript/${init.conversationId}/email?token=${init.token}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    expect(smtp.received).toHaveLength(before + 1);
    const mail = smtp.received.at(-1);
    expect(mail?.rcptTo).toEqual(["sara.khan@example.org"]);
    expect(mail?.mailFrom).toBe("support@liaison.test");
    expect(mail?.raw).toMatch(/Content-Type: application\/pdf/i);
    expect(mail?.raw).toContain(`transcript-${init.conversationId}.pdf`);
  });

  it("sends to ?to= only for API-key callers", async () => {
    const init = await conversation();
    const path = `/api/customer/transcript/${init.conversationId}/email?to=records@example.org`;
    const asCustomer = await get(`${path}&token=${init.token}`);
    expect(asCustomer.status).toBe(403);
    expect(await asCustomer.json()).toMatchObject({ error: { code: "forbidden" } });
    const asBackOffice = await get(path, { authorization: `Bearer ${gateway.apiKey}` });
    expect(asBackOffice.status).toBe(200);
    expect(smtp.received.at(-1)?.rcptTo).toEqual(["records@example.org"]);
  });

  it("limits e-mailed transcripts per conversation (the address is the customer's word, not verified)", async () => {
    const init = await conversation({ email: "target@example.org" });
    const path = `/api/customer/transcript/${init.conversationId}/email?token=${init.token}`;
    for (let i = 0; i < 3; i++) expect((await get(path)).status).toBe(200);
    const limited = await get(path);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limited" } });
    expect(smtp.received.filter((mail) => mail.rcptTo.includes("target@example.org"))).toHaveLength(3);
  });

  it("answers 422 when no e-mail address is on file", async () => {
    const init = await conversation({ phone: "+923001234567" });
    const response = await get(`/api/customer/transcript/${init.conversationId}/email?token=${init.token}`);
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ error: { code: "invalid_payload" } });
  });
});

describe("a transcript a business sends", () => {
  it("carries the organisation's name and logo, and the customer's time zone from init", async () => {
    const dir = mkdtempSync(join(tmpdir(), "liaison-logo-"));
    const logo = join(dir, "logo.png");
    writeFileSync(logo, flatPng(300, 80));
    const gateway = await startTestApp({ TRANSCRIPT_TITLE: "Example Bank", TRANSCRIPT_LOGO_FILE: logo });
    try {
      const init = await postJson(`${gateway.url}/api/customer/init`, {
        firstName: "Sara",
        channel: "web",
        email: "sara@example.org",
        timeZone: "asia/karachi",
      });
      expect(init.status).toBe(200);
      const { conversationId, token, timestamp } = init.body as InitResponse;
      const customer = await connect(gateway.url);
      await request(customer, "joinConversation", { conversationId, id: "x", name: "Sara", token });
      await request(customer, "endConversation", { conversationId });
      customer.close();
      const response = await fetch(`${gateway.url}/api/customer/transcript/${conversationId}/pdf`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const { pages, title } = await extractPdf(Buffer.from(await response.arrayBuffer()), { fonts: true });
      const text = compact(pages.map((page) => page.text).join(" "));
      expect(title).toBe(`Example Bank (${conversationId})`);
      expect(pages[0]?.items.find((item) => item.str.trim() !== "")?.str).toBe("Example Bank");
      expect(pages[0]?.images).toBe(1);
      expect(text).toContain("Time zone: Asia/Karachi (UTC+05:00)");
      const karachi = new Date(Date.parse(timestamp) + 5 * 3_600_000).toISOString().slice(0, 16).replace("T", " ");
      expect(text).toContain(`Started: ${karachi}`);
    } finally {
      await gateway.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses an init whose time zone is not one", async () => {
    const gateway = await startTestApp();
    try {
      const response = await postJson(`${gateway.url}/api/customer/init`, {
        firstName: "Sara",
        channel: "web",
        email: "sara@example.org",
        timeZone: "Mars/Olympus_Mons",
      });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({
        error: { code: "invalid_payload", details: { fields: [{ path: "timeZone" }] } },
      });
    } finally {
      await gateway.close();
    }
  });
});

describe("transcript e-mail without, or with a broken, mail transport", () => {
  it("answers 501 not_configured without SMTP_URL and 503 when the mail server is down", async () => {
    const bare = await startTestApp();
    const smtp = await startSmtpServer();
    const deadPort = smtp.port;
    await smtp.close();
    const broken = await startTestApp({ SMTP_URL: `smtp://127.0.0.1:${deadPort}` });
    try {
      for (const [gateway, status, code] of [
        [bare, 501, "not_configured"],
        [broken, 503, "unavailable"],
      ] as const) {
        const init = (
          await postJson(`${gateway.url}/api/customer/init`, {
            firstName: "Ana",
            channel: "web",
            email: "ana@example.org",
          })
        ).body as InitResponse;
        const customer = await connect(gateway.url);
        await request(customer, "joinConversation", {
          conversationId: init.conversationId,
          id: "x",
          name: "Ana",
          token: init.token,
        });
        await request(customer, "endConversation", { conversationId: init.conversationId });
        customer.close();
        const response = await fetch(
          `${gateway.url}/api/customer/transcript/${init.conversationId}/email?token=${init.token}`,
        );
        expect(response.status).toBe(status);
        expect(await response.json()).toMatchObject({ error: { code } });
      }
    } finally {
      await bare.close();
      await broken.close();
    }
  });
});
