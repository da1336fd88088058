import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { ConversationView } from "../../protocol/index.js";
import { createTranscriptMailer, type TranscriptMailer } from "../../server/transcript/mailer.js";
import { startSmtpServer as startSmtp, type ReceivedMail } from "../helpers/smtp.js";

const conversation: ConversationView = {
  id: "c_42",
  channel: "web",
  subject: "Refund <request>",
  language: "en",
  state: "ended",
  customer: { id: "cust-1", name: "Zoë <script>alert(1)</script>" },
  agent: { id: "agent-17", name: "Ali" },
  participants: [
    { id: "cust-1", name: "Zoë <script>alert(1)</script>", role: "customer" },
    { id: "agent-17", name: "Ali", role: "agent" },
  ],
  createdAt: "2026-11-21T10:00:00.000Z",
  endedAt: "2026-11-21T11:30:00.000Z",
};
const FROM = "transcripts@liaison.test";
const TO = "customer@example.com";
const PDF = Buffer.concat([Buffer.from("%PDF-1.3\n"), Buffer.alloc(3000, 7), Buffer.from("\n%%EOF\n")]);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track(mailer: TranscriptMailer): TranscriptMailer {
  cleanups.push(() => mailer.close());
  return mailer;
}

async function startSmtpServer(): Promise<{ port: number; received: ReceivedMail[] }> {
  const server = await startSmtp();
  cleanups.push(() => server.close());
  return server;
}

/** A TCP server that accepts connections and never says a word, like a wedged SMTP server. */
async function startSilentServer(): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, "close");
  });
  return (server.address() as AddressInfo).port;
}

/** A port on which nothing listens: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

interface MimePart {
  headers: string;
  body: string;
}

/** The parts of a multipart message, one level deep per call, with folded header lines unfolded. */
function parts(entity: string): MimePart[] {
  const [head = "", ...rest] = entity.split("\r\n\r\n");
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(head.replace(/\r\n[ \t]+/g, " "))?.[1];
  if (boundary === undefined) return [];
  const body = rest.join("\r\n\r\n");
  return body
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const content = part.replace(/^\r\n/, "");
      const split = content.indexOf("\r\n\r\n");
      return { headers: content.slice(0, split).replace(/\r\n[ \t]+/g, " "), body: content.slice(split + 4) };
    });
}

function leaves(entity: string): MimePart[] {
  return parts(entity).flatMap((part) =>
    /content-type:\s*multipart\//i.test(part.headers) ? leaves(`${part.headers}\r\n\r\n${part.body}`) : [part],
  );
}

function decode(part: MimePart): Buffer {
  if (/content-transfer-encoding:\s*base64/i.test(part.headers)) return Buffer.from(part.body, "base64");
  if (/content-transfer-encoding:\s*quoted-printable/i.test(part.headers)) {
    const unfolded = part.body.replace(/=\r\n/g, "");
    return Buffer.from(
      unfolded.replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
      "latin1",
    );
  }
  return Buffer.from(part.body, "latin1");
}

describe("createTranscriptMailer", () => {
  it("sends the transcript PDF as an attachment to the customer", async () => {
    const { port, received } = await startSmtpServer();
    const mailer = track(createTranscriptMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: FROM }));

    await mailer.send({ to: TO, conversation, pdf: PDF });

    expect(received).toHaveLength(1);
    const [mail] = received;
    expect(mail?.mailFrom).toBe(FROM);
    expect(mail?.rcptTo).toEqual([TO]);
    const raw = mail?.raw ?? "";
    const head = raw.slice(0, raw.indexOf("\r\n\r\n")).replace(/\r\n[ \t]+/g, " ");
    expect(head).toMatch(/^Subject: Your conversation transcript$/m);
    expect(head).toMatch(/^From: transcripts@liaison\.test$/m);
    expect(head).toMatch(/^To: customer@example\.com$/m);

    const all = leaves(raw);
    const attachment = all.find((part) => /content-type:\s*application\/pdf/i.test(part.headers));
    expect(attachment?.headers).toMatch(/content-disposition:\s*attachment;\s*filename="?transcript-c_42\.pdf"?/i);
    const bytes = attachment === undefined ? Buffer.alloc(0) : decode(attachment);
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("%PDF");
    expect(bytes.equals(PDF)).toBe(true);

    const text = all.find((part) => /content-type:\s*text\/plain/i.test(part.headers));
    const html = all.find((part) => /content-type:\s*text\/html/i.test(part.headers));
    expect(text && decode(text).toString("utf8")).toContain("c_42");
    const markup = html === undefined ? "" : decode(html).toString("utf8");
    expect(markup).toContain("c_42");
    expect(markup).toContain("Zoë &#60;script&#62;");
    expect(markup).toContain("Refund &#60;request&#62;");
    expect(markup).not.toContain("<script>");
    expect(markup).not.toContain("<request>");
  });

  it("gives the conversation's start in the customer's time zone when known, else in UTC", async () => {
    const { port, received } = await startSmtpServer();
    const mailer = track(createTranscriptMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: FROM }));
    await mailer.send({ to: TO, conversation, pdf: PDF, timeZone: "Asia/Karachi" });
    await mailer.send({ to: TO, conversation, pdf: PDF });
    const texts = received.map((mail) => {
      const text = leaves(mail.raw).find((part) => /content-type:\s*text\/plain/i.test(part.headers));
      return text === undefined ? "" : decode(text).toString("utf8");
    });
    expect(texts[0]).toContain("started 2026-11-21 15:00 (Asia/Karachi)");
    expect(texts[1]).toContain("started 2026-11-21 10:00 UTC");
  });

  it("rejects, without hanging, when the SMTP server is down", async () => {
    const port = await closedPort();
    const mailer = track(createTranscriptMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: FROM }));
    const started = Date.now();
    await expect(mailer.send({ to: TO, conversation, pdf: PDF })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("gives up on a server that accepts the connection but never greets", async () => {
    const port = await startSilentServer();
    // The URL's options override the mailer's own timeouts (10 s), which would outlast the test.
    const mailer = track(
      createTranscriptMailer({ smtpUrl: `smtp://127.0.0.1:${port}?greetingTimeout=300`, from: FROM }),
    );
    const started = Date.now();
    await expect(mailer.send({ to: TO, conversation, pdf: PDF })).rejects.toMatchObject({ code: "ETIMEDOUT" });
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
