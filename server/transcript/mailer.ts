import { createTransport } from "nodemailer";
import type { ConversationView } from "../../protocol/index.js";

/** Sends PDF transcripts by e-mail. */
export interface TranscriptMailer {
  /**
   * Sends `pdf` to `to` (one address) as `transcript-<conversation id>.pdf`; the body gives the conversation's start
   * in `timeZone` (the customer's, when known) or UTC.
   * Resolves once the SMTP server accepted the message; rejects with the transport's error otherwise (connection
   * refused, timeout, recipient rejected...).
   */
  send(mail: { to: string; conversation: ConversationView; pdf: Buffer; timeZone?: string }): Promise<void>;
  /** Closes the SMTP connection(s); sends after this fail. */
  close(): void;
}

// Nodemailer's defaults (2 min to connect, 10 min of socket inactivity) would hold an HTTP request open far past any
// client's patience when the SMTP server is dead or stalled.
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;

/**
 * Creates a mailer over SMTP. `smtpUrl` is an `smtp://` or `smtps://` URL (credentials and nodemailer options such
 * as `?requireTLS=true` may be given in it; its query options override the timeouts set here). On `smtp://`,
 * STARTTLS is used whenever the server offers it.
 */
export function createTranscriptMailer(options: {
  smtpUrl: string;
  from: string;
  logger?: { warn(obj: object, msg: string): void };
}): TranscriptMailer {
  const transport = createTransport({
    url: options.smtpUrl,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  });
  return {
    async send({ to, conversation, pdf, timeZone }) {
      const name = conversation.customer.name.trim();
      const started = formatTime(conversation.createdAt, timeZone);
      const subject = conversation.subject.trim();
      const about = subject === "" ? "your conversation" : `your conversation “${subject}”`;
      const info = await transport.sendMail({
        from: options.from,
        // An address object is used as is: a comma in `to` cannot turn into a second recipient.
        to: { name: "", address: to },
        subject: "Your conversation transcript",
        text: [
          name === "" ? "Hello," : `Hello ${name},`,
          "",
          `Attached is the transcript of ${about}, started ${started} (reference ${conversation.id}).`,
          "",
          "This message was sent automatically; replies are not read.",
        ].join("\n"),
        html: [
          `<p>${name === "" ? "Hello," : `Hello ${escapeHtml(name)},`}</p>`,
          `<p>Attached is the transcript of ${escapeHtml(about)}, started ${escapeHtml(started)}`,
          ` (reference <code>${escapeHtml(conversation.id)}</code>).</p>`,
          "<p>This message was sent automatically; replies are not read.</p>",
        ].join(""),
        attachments: [
          { filename: `transcript-${safeFileName(conversation.id)}.pdf`, content: pdf, contentType: "application/pdf" },
        ],
      });
      if (info.rejected.length > 0) {
        options.logger?.warn(
          { conversationId: conversation.id, rejected: info.rejected.length },
          "transcript recipient rejected",
        );
      }
    },
    close() {
      transport.close();
    },
  };
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** Ids are free-form strings: keep the file name to characters every mail client and file system accepts. */
function safeFileName(id: string): string {
  return id.replace(/[^\w.-]/g, "_");
}

/** `2026-11-21 15:00 (Asia/Karachi)`, or `2026-11-21 10:00 UTC`; anything unparsable is printed as given. */
function formatTime(iso: string, timeZone: string | undefined): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  if (timeZone !== undefined) {
    try {
      const parts = new Intl.DateTimeFormat("en-US", { ...FIELDS, timeZone }).formatToParts(date);
      const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((candidate) => candidate.type === type)?.value;
      return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")} (${timeZone})`;
    } catch {
      // A zone this runtime does not know: UTC, said so.
    }
  }
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

const FIELDS: Intl.DateTimeFormatOptions = {
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
};
