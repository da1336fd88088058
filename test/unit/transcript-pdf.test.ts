import { beforeAll, describe, expect, it } from "vitest";
import type {
  ActivityMessage,
  Attachment,
  ChatMessage,
  ConversationView,
  Participant,
  StoredMessage,
} from "../../protocol/index.js";
import { renderTranscriptPdf } from "../../server/transcript/pdf.js";
import { compact, extractPdf as extract, type PdfPage as ExtractedPage, pdfLinks } from "../helpers/pdf.js";

const customer: Participant = { id: "cust-1", name: "José Álvarez" };
const agent: Participant = { id: "agent-17", name: "Ali" };
const supervisor: Participant = { id: "sup-1", name: "Sana" };

const conversation: ConversationView = {
  id: "c_42",
  channel: "web",
  subject: "Refund request",
  language: "ur",
  state: "ended",
  customer,
  agent,
  createdAt: "2026-11-21T10:00:00.000Z",
  endedAt: "2026-11-21T11:30:00.000Z",
};

const START = Date.parse("2026-11-21T10:03:12.120Z");
const WHISPER = "INTERNAL-NOTE customer seems upset";
const TYPIST = "Typist Zed";
const URDU = "شکریہ، آرڈر نمبر 4521 مل گیا";
const HTTPS_LINK = "https://files.example.com/receipts/receipt-881.png";
const FILLERS = 120;

let seq = 0;
function envelope(from: Participant) {
  seq += 1;
  return {
    id: `m${seq}`,
    conversationId: conversation.id,
    seq,
    timestamp: new Date(START + (seq - 1) * 1000).toISOString(),
    from,
    to: [],
  };
}

function chat(from: Participant, text: string, extra: Partial<ChatMessage> = {}): StoredMessage {
  return { type: "ChatMessage", ...envelope(from), text, attachments: [], tag: "", ...extra };
}

function activity(from: Participant, rest: Pick<ActivityMessage, "activityType" | "info">): StoredMessage {
  return { type: "ActivityMessage", ...envelope(from), ...rest } as StoredMessage;
}

const receipt: Attachment = { type: "image/png", name: "receipt-881.png", contentUrl: HTTPS_LINK };
const inline: Attachment = {
  type: "text/plain",
  name: "order-notes.txt",
  contentUrl: "data:text/plain;base64,aGVsbG8=",
};

const system: Participant = { id: "system", name: "Liaison" };
const messages: StoredMessage[] = [
  activity(system, { activityType: "greetings", info: { text: "Welcome to Example Support!" } }),
  chat(customer, "Hello, I was charged twice for my order."),
  activity(system, { activityType: "handOff", info: { subject: "Refund request", desk: "rocketchat", reason: "" } }),
  activity(system, { activityType: "participantJoined", info: { participant: agent, role: "agent" } }),
  activity(customer, { activityType: "typing", info: { participant: { id: "typist", name: TYPIST }, state: "start" } }),
  chat(agent, "Sorry about that, I can see the duplicate charge and will refund it today."),
  chat(supervisor, WHISPER, { tag: "whisper" }),
  chat(customer, "Here is the receipt.", { attachments: [receipt, inline] }),
  chat(customer, URDU),
  ...Array.from({ length: FILLERS }, (_, i) =>
    chat(i % 2 === 0 ? agent : customer, `Filler message ${i} to fill pages.`),
  ),
  activity(system, {
    activityType: "endOfConversation",
    info: { reason: "resolved", endedBy: { ...agent, role: "agent" } },
  }),
];

describe("renderTranscriptPdf", () => {
  const generatedAt = new Date("2026-11-22T08:00:00.000Z");
  let pdf: Buffer;
  let pages: ExtractedPage[];
  let all: string;
  let title: unknown;

  beforeAll(async () => {
    // Out of order on purpose: the transcript is printed by seq.
    pdf = await renderTranscriptPdf({ conversation, messages: [...messages].reverse(), generatedAt });
    ({ pages, title } = await extract(pdf));
    all = compact(pages.map((page) => page.text).join(" "));
  });

  it("is a PDF titled after the conversation, long enough to span several pages", () => {
    expect(pdf.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    expect(pages.length).toBeGreaterThan(1);
    expect(title).toBe("Conversation transcript c_42");
    expect(all).toContain("Conversation transcript");
    expect(pages[0]?.text).toContain(`Page 1 of ${pages.length}`);
    expect(pages.at(-1)?.text).toContain(`Page ${pages.length} of ${pages.length}`);
  });

  it("lists the conversation details", () => {
    const first = compact(pages[0]?.text ?? "");
    for (const detail of ["c_42", "web", "Refund request", "José Álvarez", "Ali"]) expect(first).toContain(detail);
    expect(first).toContain("2026-11-21 10:00:00 UTC");
    expect(first).toContain("2026-11-21 11:30:00 UTC");
  });

  it("prints every chat message with its sender and UTC timestamp, oldest first", () => {
    expect(all).toContain("Hello, I was charged twice for my order.");
    expect(all).toContain("I can see the duplicate charge");
    expect(all).toContain("2026-11-21 10:03:13 UTC José Álvarez");
    expect(all).toContain("2026-11-21 10:03:17 UTC Ali");
    for (let i = 0; i < FILLERS; i++) expect(all).toContain(`Filler message ${i} to fill pages.`);
    const positions = [0, 1, 59, 60, 119].map((i) => all.indexOf(`Filler message ${i} `));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(all.indexOf("charged twice")).toBeLessThan(all.indexOf("duplicate charge"));
  });

  it("prints attachment names, https links as links, and data: URLs as inline files", async () => {
    expect(all).toContain(`receipt-881.png ${HTTPS_LINK}`);
    expect(all).toContain("order-notes.txt (inline file)");
    expect(all).not.toContain("data:text/plain");
    expect(await pdfLinks(pdf)).toEqual([HTTPS_LINK]);
  });

  it("prints the activities a reader needs as system lines", () => {
    expect(all).toContain("Welcome to Example Support!");
    expect(all).toContain("Handed to rocketchat");
    expect(all).toContain("Ali joined");
    expect(all).toContain("Conversation ended by Ali (resolved)");
  });

  it("never prints whispers or typing", () => {
    expect(all).not.toContain("INTERNAL-NOTE");
    expect(all).not.toContain("seems upset");
    expect(all).not.toContain("Sana");
    expect(all).not.toContain(TYPIST);
    expect(all.toLowerCase()).not.toContain("typing");
  });

  it("renders Urdu with real glyphs, right to left, digits kept in order", () => {
    // DejaVu Sans has no heh goal (ہ): the renderer draws the Arabic heh (ه) in its place rather than a blank box.
    for (const word of ["شکریه", "آرڈر", "نمبر", "4521", "گیا"]) expect(all).toContain(word);
    expect(all).not.toContain("\u0000");
    expect(all).not.toContain("\uFFFD");
    expect(all).not.toContain("1254");
    // Visual order of a right-to-left line: the first word is rightmost, the last word leftmost.
    const page = pages.find((candidate) => candidate.text.includes("4521"));
    const find = (fragment: string) => page?.items.find((item) => item.str.includes(fragment));
    const x = (fragment: string) => find(fragment)?.x ?? Number.NaN;
    expect(x("شکریه")).toBeGreaterThan(x("4521"));
    expect(x("4521")).toBeGreaterThan(x("گیا"));
    // A right-to-left paragraph is aligned on the right margin (A4 width minus 50 pt).
    const first = find("شکریه");
    expect((first?.x ?? 0) + (first?.width ?? 0)).toBeCloseTo(595.28 - 50, 0);
  });

  it("keeps each message header on the same page as the message's first line", () => {
    const header = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (José Álvarez|Ali)$/;
    for (const page of pages.slice(0, -1)) {
      const body = page.items.filter((item) => item.str.trim() !== "" && item.y > 50);
      const lowest = Math.min(...body.map((item) => item.y));
      const lastLine = compact(
        body
          .filter((item) => Math.abs(item.y - lowest) < 1)
          .sort((a, b) => a.x - b.x)
          .map((item) => item.str)
          .join(" "),
      ).trim();
      expect(lastLine).not.toMatch(header);
    }
  });

  it("is reproducible for the same input and generation time", async () => {
    const again = await renderTranscriptPdf({ conversation, messages, generatedAt });
    expect(again.equals(pdf)).toBe(true);
  });

  it("says so when there is nothing to print, and still drops whispers", async () => {
    const onlyWhisper = [chat(supervisor, WHISPER, { tag: "whisper" })];
    const { pages: emptyPages } = await extract(await renderTranscriptPdf({ conversation, messages: onlyWhisper }));
    const text = compact(emptyPages.map((page) => page.text).join(" "));
    expect(text).toContain("No messages.");
    expect(text).not.toContain("INTERNAL-NOTE");
  });
});
