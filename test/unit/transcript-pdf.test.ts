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
import { flatPng } from "../helpers/png.js";

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
  participants: [
    { ...customer, role: "customer" },
    { ...agent, role: "agent" },
  ],
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
const bot: Participant = { id: "bot", name: "Assistant" };
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
  activity(system, { activityType: "handOff", info: { subject: "", desk: "bot", reason: "agent_closed" } }),
  chat(bot, "", {
    buttons: [
      [
        { id: "yes", text: "Yes, thanks" },
        { id: "no", text: "Not yet" },
      ],
    ],
  }),
  chat(customer, "Yes, thanks", { button: { id: "yes", text: "Yes, thanks" } }),
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
    expect(title).toBe("Conversation transcript (c_42)");
    expect(all).toContain("Conversation transcript");
    expect(pages[0]?.text).toContain(`Page 1 of ${pages.length}`);
    expect(pages.at(-1)?.text).toContain(`Page ${pages.length} of ${pages.length}`);
  });

  it("lists the conversation details a customer reads, in UTC when their time zone is unknown, saying so", () => {
    const first = compact(pages[0]?.text ?? "");
    for (const detail of ["Subject: Refund request", "Customer: José Álvarez", "Agent: Ali"]) {
      expect(first).toContain(detail);
    }
    expect(first).toContain("Started: 2026-11-21 10:00:00");
    expect(first).toContain("Ended: 2026-11-21 11:30:00");
    expect(first).toContain("Time zone: UTC");
  });

  it("names the conversation on every page as the reference to quote to support, and nothing else internal", () => {
    for (const page of pages) expect(page.text).toContain("Reference c_42");
    // The channel, the desk, participant ids and end reasons are the operators' business.
    expect(all).not.toMatch(/\bweb\b/);
    expect(all).not.toContain("rocketchat");
    for (const id of ["cust-1", "agent-17", "sup-1"]) expect(all).not.toContain(id);
    expect(all).not.toContain("resolved");
  });

  it("prints every chat message with its sender and time, oldest first", () => {
    expect(all).toContain("Hello, I was charged twice for my order.");
    expect(all).toContain("I can see the duplicate charge");
    expect(all).toContain("2026-11-21 10:03:13 José Álvarez");
    expect(all).toContain("2026-11-21 10:03:17 Ali");
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

  it("prints a bot's buttons as it offered them, and a press as the customer's message", () => {
    expect(all).toContain("Assistant Buttons: [Yes, thanks] [Not yet]");
    expect(all).toMatch(/José Álvarez Yes, thanks/);
    // Going back to the bot is not "waiting for an agent".
    expect(all.match(/Waiting for an agent/g)).toHaveLength(1);
  });

  it("prints the activities a customer needs as lines written to them", () => {
    expect(all).toContain("Welcome to Example Support!");
    expect(all).toContain("Waiting for an agent");
    expect(all).toContain("Ali joined the conversation");
    expect(all).toContain("Ali ended the conversation");
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
    const header = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (José Álvarez|Ali)$/;
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

describe("renderTranscriptPdf for a customer anywhere", () => {
  const CHINESE = "您好，我的退款到了吗？謝謝";
  const HINDI = "नमस्ते, मेरा रिफ़ंड कब आएगा?";
  const EMOJI = "Thanks 👍🏽 ❤️ 🎉";
  const MIXED = "Order 8812: 退款 ठीक है 👍 done";
  let pages: ExtractedPage[];
  let all: string;

  beforeAll(async () => {
    seq = 0;
    const pdf = await renderTranscriptPdf({
      conversation,
      messages: [chat(customer, CHINESE), chat(customer, HINDI), chat(agent, EMOJI), chat(customer, MIXED)],
    });
    ({ pages } = await extract(pdf, { fonts: true }));
    all = compact(pages.map((page) => page.text).join(" "));
  });

  const itemsWith = (pattern: RegExp) => pages.flatMap((page) => page.items).filter((item) => pattern.test(item.str));

  it("prints Chinese, Devanagari and emoji as written, with no replacement characters", () => {
    // Devanagari words are compared where shaping keeps the letters in reading order (a vowel sign such as ि is
    // drawn, and so extracted, before its consonant).
    for (const text of ["您好", "我的退款到了吗", "謝謝", "नमस्ते", "मेरा", "आएगा", "ठीक है", "🎉", "❤", "👍", "done"]) {
      expect(all).toContain(text);
    }
    expect(all).not.toContain("\uFFFD");
  });

  it("draws each script in a font made for it, the Latin around it in DejaVu Sans", () => {
    const han = itemsWith(/\p{Script=Han}/u);
    const devanagari = itemsWith(/\p{Script=Devanagari}/u);
    const emoji = itemsWith(/\p{Emoji_Presentation}/u);
    for (const found of [han, devanagari, emoji]) expect(found.length).toBeGreaterThan(0);
    for (const item of han) expect(item.font).toBe("NotoSansHans-Regular");
    for (const item of devanagari) expect(item.font).toBe("NotoSansDevanagari-Regular");
    for (const item of emoji) expect(item.font).toBe("NotoEmoji-Regular");
    for (const item of itemsWith(/Order 8812|Thanks|done/)) expect(item.font).toBe("DejaVuSans");
  });
});

describe("renderTranscriptPdf in the customer's time zone", () => {
  it("prints times in the zone, naming it with its offset", async () => {
    seq = 0;
    const pdf = await renderTranscriptPdf({
      conversation,
      messages: [chat(customer, "Hello from Karachi")],
      timeZone: "Asia/Karachi",
      generatedAt: new Date("2026-11-22T08:00:00.000Z"),
    });
    const text = compact((await extract(pdf)).pages.map((page) => page.text).join(" "));
    expect(text).toContain("Started: 2026-11-21 15:00:00");
    expect(text).toContain("Ended: 2026-11-21 16:30:00");
    expect(text).toContain("Time zone: Asia/Karachi (UTC+05:00)");
    expect(text).toContain("2026-11-21 15:03:12 José Álvarez Hello from Karachi");
    expect(text).toContain("generated 2026-11-22 13:00:00 UTC+05:00");
    expect(text).not.toContain("10:03:12");
  });

  it("follows daylight saving time within the zone", async () => {
    const summer = { ...conversation, createdAt: "2026-07-01T12:00:00.000Z", endedAt: "2026-07-01T12:30:00.000Z" };
    const pdf = await renderTranscriptPdf({ conversation: summer, messages: [], timeZone: "Europe/London" });
    const text = compact((await extract(pdf)).pages.map((page) => page.text).join(" "));
    expect(text).toContain("Started: 2026-07-01 13:00:00");
    expect(text).toContain("Time zone: Europe/London (UTC+01:00)");
  });
});

describe("renderTranscriptPdf for an organisation", () => {
  it("prints the organisation's name at the top and its logo above it", async () => {
    const pdf = await renderTranscriptPdf(
      { conversation, messages: [] },
      { title: "Example Bank", logo: flatPng(400, 100) },
    );
    const { pages, title } = await extract(pdf, { fonts: true });
    expect(pages[0]?.items.find((item) => item.str.trim() !== "")?.str).toBe("Example Bank");
    expect(pages[0]?.images).toBe(1);
    expect(title).toBe("Example Bank (c_42)");
  });

  it("writes activities to the customer, and names nobody by id", async () => {
    const nameless: Participant = { id: "p_7f3a", name: " " };
    const bot: Participant = { id: "bot-3", name: "" };
    const view: ConversationView = { ...conversation, customer: nameless, agent: { id: "agent-9", name: "" } };
    seq = 0;
    const pdf = await renderTranscriptPdf({
      conversation: view,
      messages: [
        activity(nameless, { activityType: "participantJoined", info: { participant: nameless, role: "customer" } }),
        activity(bot, { activityType: "participantJoined", info: { participant: bot, role: "bot" } }),
        chat(nameless, "Is anyone there?"),
        chat({ id: "agent-9", name: "" }, "Yes, hello."),
        activity(system, {
          activityType: "deliveryFailed",
          info: { messageId: "m3", destination: "rocketchat", reason: "HTTP 500 from upstream" },
        }),
        activity(nameless, {
          activityType: "endOfConversation",
          info: { reason: "agent-closed", endedBy: { ...nameless, role: "customer" } },
        }),
      ],
    });
    const text = compact((await extract(pdf)).pages.map((page) => page.text).join(" "));
    expect(text).toContain("You joined the conversation");
    expect(text).toContain("Assistant joined the conversation");
    expect(text).toMatch(/\d\d:\d\d:\d\d You Is anyone there\?/);
    expect(text).toMatch(/\d\d:\d\d:\d\d Agent Yes, hello\./);
    expect(text).toContain("Your message could not be delivered to an agent");
    expect(text).toContain("You ended the conversation");
    for (const internal of ["p_7f3a", "bot-3", "agent-9", "rocketchat", "HTTP 500", "agent-closed"]) {
      expect(text).not.toContain(internal);
    }
  });
});
