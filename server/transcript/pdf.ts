import PDFDocument from "pdfkit";
import type {
  ActivityMessage,
  ChatMessage,
  ConversationView,
  Participant,
  StoredMessage,
} from "../../protocol/index.js";
import { imageSize } from "./logo.js";
import { FONT_NAMES, glyphRuns, type Face, type FontName, type TranscriptFonts, loadFonts } from "./fonts.js";

/** What a transcript is made of. */
export interface TranscriptInput {
  conversation: ConversationView;
  /** The conversation's recorded messages, in any order: they are printed by `seq`. */
  messages: readonly StoredMessage[];
  /** The customer's IANA time zone (from `init`): times are printed in it, else in UTC. */
  timeZone?: string;
  /** Printed in the footer and used as the PDF creation date (defaults to now). */
  generatedAt?: Date;
}

/** The business the transcript comes from: the same for every transcript of a gateway. */
export interface TranscriptBranding {
  /** The heading of the first page: the organisation's name, or what it calls the document. */
  title: string;
  /** A PNG or JPEG image printed above the heading. */
  logo?: Uint8Array;
}

export const DEFAULT_TITLE = "Conversation transcript";

/**
 * Renders a customer-readable PDF transcript: the organisation's logo and name, conversation details, then every
 * chat message (oldest first) with its time, sender, text and attachments, and the activities a customer cares about
 * as short lines written to them. Desk names, channel names and participant ids are never printed; the conversation
 * id is, once per page, as the reference a customer quotes to support.
 *
 * Times are in the customer's time zone when `timeZone` is given (the zone is named at the top), else in UTC.
 * Whispers and typing activities are never printed, whatever the caller passes. Every script a customer may write
 * is drawn with a font that has it (see `fonts.ts`); right-to-left text is laid out in visual order.
 *
 * CPU-bound (about as long as the messages are many): servers call it through a {@link TranscriptRenderer}, off the
 * event loop.
 *
 * @returns the PDF file; rejects if the fonts cannot be read or pdfkit fails.
 */
export async function renderTranscriptPdf(
  input: TranscriptInput,
  branding: TranscriptBranding = { title: DEFAULT_TITLE },
): Promise<Buffer> {
  const fonts = await loadFonts();
  const generatedAt = input.generatedAt ?? new Date();
  const { conversation } = input;
  const title = branding.title.trim() === "" ? DEFAULT_TITLE : branding.title.trim();
  return new Promise<Buffer>((resolve, reject) => {
    const doc = new PDFDocument({
      size: "A4",
      margins: { top: MARGIN, bottom: MARGIN, left: MARGIN, right: MARGIN },
      // Buffered so that the footer can say "page x of y" once the page count is known.
      bufferPages: true,
      displayTitle: true,
      ...(LANGUAGE_TAG.test(conversation.language) ? { lang: conversation.language } : {}),
      info: {
        Title: `${title} (${conversation.id})`,
        Author: title,
        Subject: conversation.subject,
        Creator: title,
        Producer: "Liaison",
        // pdfkit derives the file ID from the creation date: fixing it makes the output reproducible.
        CreationDate: generatedAt,
      },
    });
    const chunks: Buffer[] = [];
    doc.on("data", (chunk: Buffer) => chunks.push(chunk));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
    try {
      for (const name of FONT_NAMES) doc.registerFont(name, fonts.files[name]);
      const clock = new Clock(input.timeZone);
      writeTranscript(new Layout(doc, fonts), { ...input, generatedAt }, { ...branding, title }, clock);
      doc.end();
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

const MARGIN = 50;
const LINE_SPACING = 1.4;
const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

const INK = "#111827";
const MUTED = "#6b7280";
const LINK = "#1d4ed8";
const RULE = "#d1d5db";

const TITLE_SIZE = 18;
const FIELD_SIZE = 10;
const HEADER_SIZE = 9.5;
const BODY_SIZE = 10.5;
const DETAIL_SIZE = 9.5;
const SYSTEM_SIZE = 9;
const FOOTER_SIZE = 8;
const BODY_INDENT = 12;
const LOGO_MAX_WIDTH = 180;
const LOGO_MAX_HEIGHT = 48;

// ---------------------------------------------------------------------------------------------------------------
// Content

function writeTranscript(
  layout: Layout,
  input: TranscriptInput & { generatedAt: Date },
  branding: TranscriptBranding,
  clock: Clock,
): void {
  const { conversation } = input;
  if (branding.logo !== undefined) {
    layout.image(branding.logo, LOGO_MAX_WIDTH, LOGO_MAX_HEIGHT);
    layout.gap(10);
  }
  layout.paragraph({ spans: [{ text: branding.title, face: "bold" }], size: TITLE_SIZE });
  layout.gap(6);
  const agent = conversation.agent && nameOf(conversation.agent);
  const fields: [string, string | undefined][] = [
    ["Subject", nonEmpty(conversation.subject)],
    ["Customer", nameOf(conversation.customer)],
    ["Agent", agent],
    ["Started", clock.format(conversation.createdAt)],
    ["Ended", conversation.endedAt && clock.format(conversation.endedAt)],
    ["Time zone", clock.zone(conversation.createdAt)],
  ];
  for (const [label, value] of fields) {
    if (value === undefined || value === "") continue;
    layout.paragraph({
      spans: [
        { text: `${label}: `, face: "bold", color: MUTED },
        { text: value, face: "regular" },
      ],
      size: FIELD_SIZE,
      direction: "ltr",
    });
  }
  layout.gap(8);
  layout.rule();
  layout.gap(4);

  const visible = input.messages.filter(isPrintable).sort((a, b) => a.seq - b.seq);
  let printed = 0;
  for (const message of visible) {
    if (message.type === "ChatMessage") {
      writeChatMessage(layout, message, conversation, clock);
      printed++;
      continue;
    }
    const text = systemText(message, conversation);
    if (text === undefined) continue;
    layout.gap(4);
    layout.paragraph({
      spans: [
        { text: `${clock.format(message.timestamp)}  `, face: "regular", color: MUTED },
        { text, face: "oblique", color: MUTED },
      ],
      size: SYSTEM_SIZE,
      direction: "ltr",
    });
    printed++;
  }
  if (printed === 0) {
    layout.gap(8);
    layout.paragraph({ spans: [{ text: "No messages.", face: "oblique", color: MUTED }], size: BODY_SIZE });
  }

  const generated = input.generatedAt.toISOString();
  // The conversation id is the one thing support needs to find the conversation again when a customer writes in
  // about it (the e-mail that carries the PDF quotes it too); it grants nothing, unlike the customer's token.
  layout.footer(
    `Reference ${conversation.id} · generated ${clock.format(generated)} ${clock.offset(generated)}`,
    (page, pages) => `Page ${page} of ${pages}`,
  );
}

function writeChatMessage(layout: Layout, message: ChatMessage, conversation: ConversationView, clock: Clock): void {
  const header: Paragraph = {
    spans: [
      { text: `${clock.format(message.timestamp)}  `, face: "regular", color: MUTED },
      { text: senderName(message.from, conversation), face: "bold" },
      ...(message.replaces === undefined ? [] : [{ text: "  (edited)", face: "oblique" as const, color: MUTED }]),
    ],
    size: HEADER_SIZE,
    direction: "ltr",
  };
  const body: Paragraph[] = message.text
    .replace(/\r\n?/g, "\n")
    .split("\n")
    .map((line) => ({ spans: [{ text: line, face: "regular" }], size: BODY_SIZE, indent: BODY_INDENT }));
  while (body.length > 0 && body[body.length - 1]?.spans[0]?.text.trim() === "") body.pop();
  // A bot's buttons, as the customer saw them offered (a press is recorded with the button's text already).
  const buttons: Paragraph[] = (message.buttons ?? []).map((row) => ({
    spans: [
      { text: "Buttons: ", face: "regular", color: MUTED },
      { text: row.map((button) => `[${button.text}]`).join(" "), face: "regular" },
    ],
    size: DETAIL_SIZE,
    indent: BODY_INDENT,
  }));
  const files = message.attachments.map((attachment): Paragraph => {
    const url = attachment.contentUrl;
    const spans: Span[] = [
      { text: "Attachment: ", face: "regular", color: MUTED },
      { text: attachment.name, face: "regular" },
    ];
    if (isHttpUrl(url)) spans.push({ text: "  " }, { text: url, face: "regular", color: LINK, link: url });
    else if (url.startsWith("data:")) spans.push({ text: " (inline file)", face: "regular", color: MUTED });
    return { spans, size: DETAIL_SIZE, indent: BODY_INDENT, direction: "ltr" };
  });
  const details = [...buttons, ...files];

  layout.gap(8);
  // The header is kept on the same page as the first line of what follows it.
  const first = body[0] ?? details[0];
  layout.keepTogether(header, first);
  layout.paragraph(header);
  for (const paragraph of body) layout.paragraph(paragraph);
  for (const paragraph of details) layout.paragraph(paragraph);
}

/** Whispers are agent-only and typing is noise: neither ever reaches a transcript, whatever the caller passed. */
function isPrintable(message: StoredMessage): boolean {
  if (message.type === "ChatMessage") return message.tag !== "whisper";
  return message.activityType !== "typing";
}

/**
 * The line printed for an activity, written to the customer, or undefined for the activities a customer does not
 * need. End reasons and delivery errors are left out: they are codes and upstream messages meant for operators.
 */
function systemText(message: ActivityMessage, conversation: ConversationView): string | undefined {
  switch (message.activityType) {
    case "greetings":
      return nonEmpty(message.info.text);
    case "handOff":
      // `desk: "bot"`: the conversation starts with, or goes back to, the bot; a line for that would be noise.
      return message.info.desk === "bot" ? undefined : "Waiting for an agent";
    case "noAgentAvailable":
      return nonEmpty(message.info.text) ?? "No agent is available right now";
    case "participantJoined":
      return isCustomer(message.info.participant, conversation)
        ? "You joined the conversation"
        : `${nameOf(message.info.participant) ?? roleName(message.info.role)} joined the conversation`;
    case "participantLeft":
      return isCustomer(message.info.participant, conversation)
        ? "You left the conversation"
        : `${nameOf(message.info.participant) ?? roleName(message.info.role)} left the conversation`;
    case "endOfConversation": {
      const by = message.info.endedBy;
      if (isCustomer(by, conversation)) return "You ended the conversation";
      if (by.role === "system" || by.role === "connector") return "The conversation ended";
      return `${nameOf(by) ?? roleName(by.role)} ended the conversation`;
    }
    case "deliveryFailed":
      // The destination is the desk (the customer's message did not reach an agent) or the customer's channel.
      return message.info.destination === conversation.channel || message.info.destination.startsWith("connector:")
        ? "A message to you could not be delivered"
        : "Your message could not be delivered to an agent";
    case "typing":
    case "queuePosition":
    case "participantAdded":
    case "participantRemoved":
      return undefined;
  }
}

function isCustomer(participant: Participant, conversation: ConversationView): boolean {
  return participant.id === conversation.customer.id;
}

/** Who a message is from, by name; a nameless sender by their part in the conversation, never by id. */
function senderName(participant: Participant, conversation: ConversationView): string {
  const name = nameOf(participant);
  if (name !== undefined) return name;
  if (isCustomer(participant, conversation)) return "You";
  return "Agent";
}

function roleName(role: string): string {
  if (role === "customer") return "You";
  if (role === "bot") return "Assistant";
  return "An agent";
}

function nameOf(participant: Participant): string | undefined {
  return nonEmpty(participant.name.trim());
}

function nonEmpty(text: string): string | undefined {
  return text.trim() === "" ? undefined : text;
}

/** Prints instants as `2026-11-21 10:03:12` in one time zone; anything unparsable is printed as given. */
class Clock {
  private readonly formatter: Intl.DateTimeFormat;
  private readonly timeZone: string | undefined;

  constructor(timeZone: string | undefined) {
    let formatter: Intl.DateTimeFormat;
    try {
      formatter = new Intl.DateTimeFormat("en-US", { ...CLOCK_FIELDS, timeZone: timeZone ?? "UTC" });
    } catch {
      // A zone this runtime does not know (init validates it, but the record may be older than the runtime's
      // time zone data): UTC, and the transcript says so.
      formatter = new Intl.DateTimeFormat("en-US", { ...CLOCK_FIELDS, timeZone: "UTC" });
      timeZone = undefined;
    }
    this.formatter = formatter;
    this.timeZone = timeZone;
  }

  format(iso: string): string {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    const parts = this.formatter.formatToParts(date);
    const part = (type: Intl.DateTimeFormatPartTypes) =>
      parts.find((candidate) => candidate.type === type)?.value ?? "";
    return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}:${part("second")}`;
  }

  /** `UTC`, or the zone's name with its offset at `iso` (offsets change with daylight saving time). */
  zone(iso: string): string {
    return this.timeZone === undefined ? "UTC" : `${this.timeZone} (${this.offset(iso)})`;
  }

  /** `UTC`, or the zone's offset at `iso`: `UTC+05:00`. */
  offset(iso: string): string {
    const date = new Date(iso);
    if (this.timeZone === undefined || Number.isNaN(date.getTime())) return "UTC";
    const name = new Intl.DateTimeFormat("en-US", { timeZone: this.timeZone, timeZoneName: "longOffset" })
      .formatToParts(date)
      .find((part) => part.type === "timeZoneName")?.value;
    return (name ?? "GMT").replace("GMT", "UTC");
  }
}

const CLOCK_FIELDS: Intl.DateTimeFormatOptions = {
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
};

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Layout: wrapping, bidi reordering, page breaks. pdfkit's own text flow cannot do these for mixed-direction text
// (it shapes each line as one run, so digits inside Arabic come out reversed), so lines are measured and placed here.

interface Span {
  text: string;
  face?: Face;
  color?: string;
  link?: string;
}

interface Paragraph {
  spans: readonly Span[];
  size: number;
  /** `auto` (default): right-to-left if the first strong character is, as in the Unicode bidi algorithm. */
  direction?: "ltr" | "auto";
  indent?: number;
}

type BidiType = "L" | "R" | "EN" | "N";

interface Cell {
  char: string;
  span: number;
  /** The font that draws the character. */
  font: FontName;
  type: BidiType;
  level: number;
}

interface Run {
  text: string;
  font: FontName;
  span: number;
  width: number;
}

interface Line {
  runs: Run[];
  width: number;
  rtl: boolean;
}

const RTL_SCRIPT =
  /[\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}]/u;
const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;
const MARK = /\p{M}/u;
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
const EMOJI_MODIFIER = /\p{Emoji_Modifier}/u;
const SPACE = /\s/u;

class Layout {
  readonly left: number;
  readonly width: number;
  readonly top: number;
  readonly bottom: number;
  y: number;

  constructor(
    readonly doc: PDFKit.PDFDocument,
    readonly fonts: TranscriptFonts,
  ) {
    this.left = doc.page.margins.left;
    this.width = doc.page.width - doc.page.margins.left - doc.page.margins.right;
    this.top = doc.page.margins.top;
    this.bottom = doc.page.height - doc.page.margins.bottom;
    this.y = this.top;
  }

  paragraph(paragraph: Paragraph): void {
    const height = lineHeight(paragraph.size);
    for (const line of this.lines(paragraph)) {
      this.ensureSpace(height);
      this.drawLine(line, paragraph, this.y);
      this.y += height;
    }
  }

  /** Starts a new page unless `first` and the first line of `next` both fit on this one. */
  keepTogether(first: Paragraph, next: Paragraph | undefined): void {
    let height = this.lines(first).length * lineHeight(first.size);
    if (next !== undefined) height += lineHeight(next.size);
    this.ensureSpace(height);
  }

  gap(points: number): void {
    if (this.y === this.top) return;
    this.y = Math.min(this.y + points, this.bottom);
  }

  /** Draws a PNG or JPEG scaled down (never up) to fit `maxWidth` × `maxHeight`, on the left margin. */
  image(data: Uint8Array, maxWidth: number, maxHeight: number): void {
    const size = imageSize(data);
    if (size === undefined) return;
    const scale = Math.min(1, maxWidth / size.width, maxHeight / size.height);
    const width = size.width * scale;
    const height = size.height * scale;
    this.ensureSpace(height);
    this.doc.image(Buffer.from(data.buffer, data.byteOffset, data.byteLength), this.left, this.y, { width, height });
    this.y += height;
  }

  rule(): void {
    this.ensureSpace(1);
    this.doc
      .moveTo(this.left, this.y)
      .lineTo(this.left + this.width, this.y)
      .lineWidth(0.5)
      .strokeColor(RULE)
      .stroke();
  }

  /** Writes `left` and the page number into the bottom margin of every page; called once, after the content. */
  footer(left: string, right: (page: number, pages: number) => string): void {
    const { start, count } = this.doc.bufferedPageRange();
    const y = this.bottom + MARGIN / 2;
    const leftText: Paragraph = { spans: [{ text: left, color: MUTED }], size: FOOTER_SIZE, direction: "ltr" };
    for (let i = start; i < start + count; i++) {
      this.doc.switchToPage(i);
      const rightText: Paragraph = {
        spans: [{ text: right(i - start + 1, count), color: MUTED }],
        size: FOOTER_SIZE,
        direction: "ltr",
      };
      const [leftLine] = this.lines(leftText);
      const [rightLine] = this.lines(rightText);
      if (leftLine !== undefined) this.drawLine(leftLine, leftText, y, "left");
      if (rightLine !== undefined) this.drawLine(rightLine, rightText, y, "right");
    }
  }

  private ensureSpace(height: number): void {
    if (this.y + height <= this.bottom || this.y === this.top) return;
    this.doc.addPage();
    this.y = this.top;
  }

  private measure(font: FontName, size: number, text: string): number {
    return text === "" ? 0 : this.doc.font(font).fontSize(size).widthOfString(text);
  }

  private drawLine(
    line: Line,
    paragraph: Paragraph,
    y: number,
    align: "left" | "right" = line.rtl ? "right" : "left",
  ): void {
    let x = align === "right" ? this.left + this.width - line.width : this.left + (paragraph.indent ?? 0);
    for (const run of line.runs) {
      const span = paragraph.spans[run.span];
      const link = span?.link;
      this.doc
        .font(run.font)
        .fontSize(paragraph.size)
        .fillColor(span?.color ?? INK)
        .text(run.text, x, y, link === undefined ? { lineBreak: false } : { lineBreak: false, link, underline: true });
      x += run.width;
    }
  }

  /** Wraps a paragraph into lines and puts each line's runs in visual (left-to-right) order. */
  private lines(paragraph: Paragraph): Line[] {
    const cells = this.cells(paragraph);
    const rtl = resolveLevels(cells, paragraph.direction ?? "auto");
    const maxWidth = this.width - (paragraph.indent ?? 0);
    const ranges = this.wrap(cells, paragraph.size, maxWidth);
    return ranges.map(([start, end]) => {
      while (end > start && SPACE.test(cells[end - 1]?.char ?? "")) end--;
      const runs = this.runs(cells.slice(start, end), paragraph.size);
      return { runs, width: runs.reduce((sum, run) => sum + run.width, 0), rtl };
    });
  }

  /** Splits a paragraph into characters, each with the font that draws it. */
  private cells(paragraph: Paragraph): Cell[] {
    const cells: Cell[] = [];
    paragraph.spans.forEach((span, index) => {
      for (const run of glyphRuns(this.fonts, span.text, span.face ?? "regular")) {
        for (const char of run.text) cells.push({ char, span: index, font: run.font, type: "N", level: 0 });
      }
    });
    return cells;
  }

  /** Greedy wrapping at spaces; a word longer than the line is broken between characters. */
  private wrap(cells: readonly Cell[], size: number, maxWidth: number): [number, number][] {
    const lines: [number, number][] = [];
    let lineStart = 0;
    let lineWidth = 0;
    let i = 0;
    while (i < cells.length) {
      let wordEnd = i;
      while (wordEnd < cells.length && !SPACE.test(cells[wordEnd]?.char ?? "")) wordEnd++;
      let spaceEnd = wordEnd;
      while (spaceEnd < cells.length && SPACE.test(cells[spaceEnd]?.char ?? "")) spaceEnd++;
      const wordWidth = this.widthOf(cells, i, wordEnd, size);
      if (lineWidth > 0 && lineWidth + wordWidth > maxWidth) {
        lines.push([lineStart, i]);
        lineStart = i;
        lineWidth = 0;
      }
      if (wordWidth > maxWidth) {
        let x = 0;
        for (let k = i; k < wordEnd; k++) {
          const cell = cells[k];
          if (cell === undefined) break;
          const charWidth = this.measure(cell.font, size, cell.char);
          if (x > 0 && x + charWidth > maxWidth && canBreakBefore(cells, k)) {
            lines.push([lineStart, k]);
            lineStart = k;
            x = 0;
          }
          x += charWidth;
        }
        lineWidth = x;
      } else {
        lineWidth += wordWidth;
      }
      lineWidth += this.widthOf(cells, wordEnd, spaceEnd, size);
      i = spaceEnd;
    }
    lines.push([lineStart, cells.length]);
    return lines;
  }

  private widthOf(cells: readonly Cell[], start: number, end: number, size: number): number {
    let width = 0;
    let pieceStart = start;
    for (let k = start; k <= end; k++) {
      if (k < end && cells[k]?.font === cells[pieceStart]?.font) continue;
      const font = cells[pieceStart]?.font;
      if (font !== undefined && k > pieceStart) width += this.measure(font, size, text(cells, pieceStart, k));
      pieceStart = k;
    }
    return width;
  }

  /** Groups a line's cells into runs of one level, span and font, and orders them visually (rule L2 of UAX #9). */
  private runs(cells: readonly Cell[], size: number): Run[] {
    const groups: { start: number; end: number; level: number }[] = [];
    for (let k = 0; k < cells.length; k++) {
      const cell = cells[k];
      const last = groups[groups.length - 1];
      const lastCell = last === undefined ? undefined : cells[last.start];
      if (last !== undefined && cell !== undefined && lastCell !== undefined && sameRun(lastCell, cell))
        last.end = k + 1;
      else groups.push({ start: k, end: k + 1, level: cell?.level ?? 0 });
    }
    const levels = groups.map((group) => group.level);
    const highest = Math.max(0, ...levels);
    const lowestOdd = Math.min(...levels.filter((level) => level % 2 === 1), highest + 1);
    for (let level = highest; level >= lowestOdd && level > 0; level--) {
      for (let k = 0; k < groups.length;) {
        if ((groups[k]?.level ?? 0) < level) {
          k++;
          continue;
        }
        let end = k;
        while (end < groups.length && (groups[end]?.level ?? 0) >= level) end++;
        const reversed = groups.slice(k, end).reverse();
        groups.splice(k, end - k, ...reversed);
        k = end;
      }
    }
    return groups.map(({ start, end, level }) => {
      const first = cells[start];
      const font = first?.font ?? "regular";
      let runText = text(cells, start, end);
      // fontkit reverses a run itself when its script is right-to-left; a right-to-left run of neutrals only
      // (punctuation after Arabic text) is not recognised as such and is reversed here.
      if (level % 2 === 1 && !cells.slice(start, end).some((cell) => cell.type === "R")) {
        runText = [...runText].reverse().join("");
      }
      return { text: runText, font, span: first?.span ?? 0, width: this.measure(font, size, runText) };
    });
  }
}

function lineHeight(size: number): number {
  return size * LINE_SPACING;
}

function text(cells: readonly Cell[], start: number, end: number): string {
  let result = "";
  for (let k = start; k < end; k++) result += cells[k]?.char ?? "";
  return result;
}

function sameRun(a: Cell, b: Cell): boolean {
  return a.level === b.level && a.span === b.span && a.font === b.font;
}

/** Not inside a grapheme: before a mark, a joiner, a variation selector or a skin-tone modifier. */
function canBreakBefore(cells: readonly Cell[], index: number): boolean {
  const char = cells[index]?.char ?? "";
  const previous = cells[index - 1]?.char ?? "";
  return !MARK.test(char) && !IGNORABLE.test(char) && !EMOJI_MODIFIER.test(char) && previous !== "\u200D";
}

function bidiType(char: string): BidiType {
  if (DIGIT.test(char)) return "EN";
  if (RTL_SCRIPT.test(char) && LETTER.test(char)) return "R";
  if (LETTER.test(char)) return "L";
  return "N";
}

/**
 * A reduced Unicode bidi algorithm (UAX #9) for one paragraph without explicit embeddings: strong letters, European
 * numbers (Arabic-Indic digits included) and neutrals. Sets each cell's type and embedding level; returns whether the
 * paragraph is right-to-left.
 */
function resolveLevels(cells: Cell[], direction: "ltr" | "auto"): boolean {
  let previousType: BidiType = "N";
  for (const cell of cells) {
    // W1: a combining mark takes the type of the character it is attached to.
    cell.type = MARK.test(cell.char) ? previousType : bidiType(cell.char);
    previousType = cell.type;
  }
  const firstStrong = cells.find((cell) => cell.type === "L" || cell.type === "R")?.type;
  const rtl = direction === "auto" && firstStrong === "R";
  const base: BidiType = rtl ? "R" : "L";
  // W7: numbers after left-to-right text (or at the start of a left-to-right paragraph) are left-to-right.
  let lastStrong: BidiType = base;
  for (const cell of cells) {
    if (cell.type === "L" || cell.type === "R") lastStrong = cell.type;
    else if (cell.type === "EN" && lastStrong === "L") cell.type = "L";
  }
  // N1, N2: neutrals between two characters of one direction take it (numbers count as R); others take the base.
  const strength = (cell: Cell | undefined): BidiType => (cell === undefined ? base : cell.type === "L" ? "L" : "R");
  for (let i = 0; i < cells.length;) {
    if (cells[i]?.type !== "N") {
      i++;
      continue;
    }
    let end = i;
    while (end < cells.length && cells[end]?.type === "N") end++;
    const before = strength(cells[i - 1]);
    const after = strength(cells[end]);
    const resolved = before === after ? before : base;
    for (let k = i; k < end; k++) {
      const cell = cells[k];
      if (cell !== undefined) cell.level = levelOf(resolved, rtl);
    }
    i = end;
  }
  for (const cell of cells) if (cell.type !== "N") cell.level = levelOf(cell.type, rtl);
  return rtl;
}

/** Rules I1 and I2 from a base level of 0 (left-to-right) or 1 (right-to-left). */
function levelOf(type: BidiType, rtl: boolean): number {
  if (type === "R") return 1;
  if (type === "EN") return 2;
  return rtl ? 2 : 0;
}
