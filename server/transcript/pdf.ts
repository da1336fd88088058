import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import PDFDocument from "pdfkit";
import type {
  ActivityMessage,
  ChatMessage,
  ConversationView,
  Participant,
  StoredMessage,
} from "../../protocol/index.js";

/** What a transcript is made of. */
export interface TranscriptInput {
  conversation: ConversationView;
  /** The conversation's recorded messages, in any order: they are printed by `seq`. */
  messages: readonly StoredMessage[];
  /** Printed in the footer and used as the PDF creation date (defaults to now). */
  generatedAt?: Date;
}

/**
 * Renders a customer-readable PDF transcript: conversation details, then every chat message (oldest first) with its
 * UTC timestamp, sender, text and attachments, and the activities a reader cares about as short system lines.
 *
 * Whispers and typing activities are never printed, whatever the caller passes. Text is set in DejaVu Sans (embedded,
 * subset) so accented, Arabic-script and Hebrew text render; right-to-left text is laid out in visual order.
 *
 * @returns the PDF file; rejects if the fonts cannot be read or pdfkit fails.
 */
export async function renderTranscriptPdf(input: TranscriptInput): Promise<Buffer> {
  const fonts = await loadFonts();
  const generatedAt = input.generatedAt ?? new Date();
  const { conversation } = input;
  return new Promise<Buffer>((resolve, reject) => {
    const doc = new PDFDocument({
      size: "A4",
      margins: { top: MARGIN, bottom: MARGIN, left: MARGIN, right: MARGIN },
      // Buffered so that the footer can say "page x of y" once the page count is known.
      bufferPages: true,
      displayTitle: true,
      ...(LANGUAGE_TAG.test(conversation.language) ? { lang: conversation.language } : {}),
      info: {
        Title: `Conversation transcript ${conversation.id}`,
        Subject: conversation.subject,
        Creator: "Liaison",
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
      for (const face of FACES) doc.registerFont(face, fonts[face].data);
      writeTranscript(new Layout(doc, fonts), input.conversation, input.messages, generatedAt);
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

// ---------------------------------------------------------------------------------------------------------------
// Content

function writeTranscript(
  layout: Layout,
  conversation: ConversationView,
  messages: readonly StoredMessage[],
  generatedAt: Date,
): void {
  layout.paragraph({ spans: [{ text: "Conversation transcript", face: "bold" }], size: TITLE_SIZE, direction: "ltr" });
  layout.gap(6);
  const fields: [string, string | undefined][] = [
    ["Conversation", conversation.id],
    ["Channel", conversation.channel],
    ["Subject", conversation.subject],
    ["Customer", displayName(conversation.customer, conversation)],
    ["Agent", conversation.agent && displayName(conversation.agent, conversation)],
    ["Started", formatUtc(conversation.createdAt)],
    ["Ended", conversation.endedAt && formatUtc(conversation.endedAt)],
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

  const visible = messages.filter(isPrintable).sort((a, b) => a.seq - b.seq);
  let printed = 0;
  for (const message of visible) {
    if (message.type === "ChatMessage") {
      writeChatMessage(layout, message, conversation);
      printed++;
      continue;
    }
    const text = systemText(message, conversation);
    if (text === undefined) continue;
    layout.gap(4);
    layout.paragraph({
      spans: [
        { text: `${formatUtc(message.timestamp)}  `, face: "regular", color: MUTED },
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

  layout.footer(
    `Conversation ${conversation.id} · generated ${formatUtc(generatedAt.toISOString())}`,
    (page, pages) => `Page ${page} of ${pages}`,
  );
}

function writeChatMessage(layout: Layout, message: ChatMessage, conversation: ConversationView): void {
  const header: Paragraph = {
    spans: [
      { text: `${formatUtc(message.timestamp)}  `, face: "regular", color: MUTED },
      { text: displayName(message.from, conversation), face: "bold" },
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
  const details = message.attachments.map((attachment): Paragraph => {
    const url = attachment.contentUrl;
    const spans: Span[] = [
      { text: "Attachment: ", face: "regular", color: MUTED },
      { text: attachment.name, face: "regular" },
    ];
    if (isHttpUrl(url)) spans.push({ text: "  " }, { text: url, face: "regular", color: LINK, link: url });
    else if (url.startsWith("data:")) spans.push({ text: " (inline file)", face: "regular", color: MUTED });
    return { spans, size: DETAIL_SIZE, indent: BODY_INDENT, direction: "ltr" };
  });

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

/** The system line printed for an activity, or undefined for the activities a reader does not need. */
function systemText(message: ActivityMessage, conversation: ConversationView): string | undefined {
  switch (message.activityType) {
    case "greetings":
      return nonEmpty(message.info.text);
    case "handOff":
      return `Handed to ${message.info.desk}`;
    case "noAgentAvailable":
      return nonEmpty(message.info.text) ?? "No agent is available";
    case "participantJoined":
      return `${displayName(message.info.participant, conversation)} joined`;
    case "participantLeft":
      return `${displayName(message.info.participant, conversation)} left`;
    case "endOfConversation": {
      const by = displayName(message.info.endedBy, conversation);
      const reason = nonEmpty(message.info.reason);
      return reason === undefined ? `Conversation ended by ${by}` : `Conversation ended by ${by} (${reason})`;
    }
    case "deliveryFailed": {
      const reason = nonEmpty(message.info.reason);
      const to = nonEmpty(message.info.destination);
      return `A message could not be delivered${to === undefined ? "" : ` to ${to}`}${reason === undefined ? "" : ` (${reason})`}`;
    }
    case "typing":
    case "queuePosition":
    case "participantAdded":
    case "participantRemoved":
      return undefined;
  }
}

function displayName(participant: Participant, conversation: ConversationView): string {
  const name = participant.name.trim();
  if (name !== "") return name;
  if (participant.id === conversation.customer.id) return "Customer";
  if (participant.id === conversation.agent?.id) return "Agent";
  return participant.id;
}

function nonEmpty(text: string): string | undefined {
  return text.trim() === "" ? undefined : text;
}

/** `2026-11-21T10:03:12.120Z` → `2026-11-21 10:03:12 UTC`; anything unparsable is printed as given. */
function formatUtc(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Fonts

type Face = "regular" | "bold" | "oblique";
const FACES: readonly Face[] = ["regular", "bold", "oblique"];
const FONT_FILES: Record<Face, string> = {
  regular: "DejaVuSans.ttf",
  bold: "DejaVuSans-Bold.ttf",
  oblique: "DejaVuSans-Oblique.ttf",
};

interface LoadedFont {
  data: Buffer;
  covers(codePoint: number): boolean;
}
type Fonts = Record<Face, LoadedFont>;

let fontsLoading: Promise<Fonts> | undefined;

function loadFonts(): Promise<Fonts> {
  if (fontsLoading === undefined) {
    fontsLoading = readFonts();
    // A failed read is not cached: the next transcript tries again.
    fontsLoading.catch(() => {
      fontsLoading = undefined;
    });
  }
  return fontsLoading;
}

async function readFonts(): Promise<Fonts> {
  const dir = join(dirname(createRequire(import.meta.url).resolve("dejavu-fonts-ttf/package.json")), "ttf");
  const entries = await Promise.all(
    FACES.map(async (face) => {
      const data = await readFile(join(dir, FONT_FILES[face]));
      return [face, { data, covers: coverage(data) }] as const;
    }),
  );
  return Object.fromEntries(entries) as Fonts;
}

/**
 * Which code points a TrueType font has glyphs for, from its `cmap` (format 12, else format 4). pdfkit draws a blank
 * box for anything else, so the renderer needs this to pick another face or a replacement character.
 */
function coverage(font: Buffer): (codePoint: number) => boolean {
  const starts: number[] = [];
  const ends: number[] = [];
  let cmap = -1;
  for (let i = 0, tables = font.readUInt16BE(4); i < tables; i++) {
    const record = 12 + i * 16;
    if (font.toString("latin1", record, record + 4) === "cmap") cmap = font.readUInt32BE(record + 8);
  }
  if (cmap < 0) throw new Error("font has no cmap table");
  let format4 = -1;
  let format12 = -1;
  for (let i = 0, subtables = font.readUInt16BE(cmap + 2); i < subtables; i++) {
    const record = cmap + 4 + i * 8;
    const platform = font.readUInt16BE(record);
    const encoding = font.readUInt16BE(record + 2);
    const offset = cmap + font.readUInt32BE(record + 4);
    if (platform !== 0 && !(platform === 3 && (encoding === 1 || encoding === 10))) continue;
    const format = font.readUInt16BE(offset);
    if (format === 12 && format12 < 0) format12 = offset;
    if (format === 4 && format4 < 0) format4 = offset;
  }
  if (format12 >= 0) {
    for (let i = 0, groups = font.readUInt32BE(format12 + 12); i < groups; i++) {
      const group = format12 + 16 + i * 12;
      starts.push(font.readUInt32BE(group));
      ends.push(font.readUInt32BE(group + 4));
    }
  } else if (format4 >= 0) {
    const segments = font.readUInt16BE(format4 + 6) / 2;
    for (let i = 0; i < segments; i++) {
      const end = font.readUInt16BE(format4 + 14 + i * 2);
      const start = font.readUInt16BE(format4 + 16 + segments * 2 + i * 2);
      if (start !== 0xffff) {
        starts.push(start);
        ends.push(end);
      }
    }
  } else {
    throw new Error("font has no Unicode cmap");
  }
  return (codePoint) => {
    let low = 0;
    let high = starts.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (codePoint < (starts[mid] ?? 0)) high = mid - 1;
      else if (codePoint > (ends[mid] ?? 0)) low = mid + 1;
      else return true;
    }
    return false;
  };
}

/**
 * Urdu letters DejaVu Sans has no glyph for, drawn as the nearest Arabic letter it has (heh goal as heh, yeh barree as
 * Farsi yeh...). A reader sees the word; without this they would see blank boxes in common words such as شکریہ.
 */
const SUBSTITUTES: Readonly<Record<string, string>> = {
  "\u06C1": "\u0647",
  "\u06C2": "\u0647\u0654",
  "\u06C3": "\u0629",
  "\u06D2": "\u06CC",
  "\u06D3": "\u0626",
};
const REPLACEMENT = "\uFFFD";

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
  face: Face;
  type: BidiType;
  level: number;
}

interface Run {
  text: string;
  face: Face;
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
const CONTROL = /\p{Cc}/u;
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
    readonly fonts: Fonts,
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

  private measure(face: Face, size: number, text: string): number {
    return text === "" ? 0 : this.doc.font(face).fontSize(size).widthOfString(text);
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
        .font(run.face)
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

  /** Splits a paragraph into characters, each with the face that can draw it. */
  private cells(paragraph: Paragraph): Cell[] {
    const cells: Cell[] = [];
    paragraph.spans.forEach((span, index) => {
      const preferred = span.face ?? "regular";
      for (const raw of span.text) {
        if (CONTROL.test(raw) && !SPACE.test(raw)) continue;
        const char = CONTROL.test(raw) ? " " : raw;
        const previous = cells[cells.length - 1];
        const sameSpan = previous !== undefined && previous.span === index;
        // Combining marks stay in their base letter's face, so that they are shaped together.
        const wanted = MARK.test(char) && sameSpan ? previous.face : preferred;
        if (IGNORABLE.test(char)) {
          // fontkit hides these itself; they must not break runs.
          cells.push({ char, span: index, face: sameSpan ? previous.face : preferred, type: "N", level: 0 });
          continue;
        }
        for (const [drawn, face] of this.resolveGlyphs(char, wanted)) {
          cells.push({ char: drawn, span: index, face, type: "N", level: 0 });
        }
      }
    });
    return cells;
  }

  private resolveGlyphs(char: string, wanted: Face): [string, Face][] {
    const codePoint = char.codePointAt(0) ?? 0;
    const face = [wanted, ...FACES].find((candidate) => this.fonts[candidate].covers(codePoint));
    if (face !== undefined) return [[char, face]];
    const substitute = SUBSTITUTES[char];
    if (substitute !== undefined) return [...substitute].flatMap((part) => this.resolveGlyphs(part, wanted));
    // Skin-tone modifiers are decoration: without the emoji they modify, dropping them reads better than a box.
    if (EMOJI_MODIFIER.test(char)) return [];
    return [[REPLACEMENT, "regular"]];
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
          const charWidth = this.measure(cell.face, size, cell.char);
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
      if (k < end && cells[k]?.face === cells[pieceStart]?.face) continue;
      const face = cells[pieceStart]?.face;
      if (face !== undefined && k > pieceStart) width += this.measure(face, size, text(cells, pieceStart, k));
      pieceStart = k;
    }
    return width;
  }

  /** Groups a line's cells into runs of one level, span and face, and orders them visually (rule L2 of UAX #9). */
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
      const face = first?.face ?? "regular";
      let runText = text(cells, start, end);
      // fontkit reverses a run itself when its script is right-to-left; a right-to-left run of neutrals only
      // (punctuation after Arabic text) is not recognised as such and is reversed here.
      if (level % 2 === 1 && !cells.slice(start, end).some((cell) => cell.type === "R")) {
        runText = [...runText].reverse().join("");
      }
      return { text: runText, face, span: first?.span ?? 0, width: this.measure(face, size, runText) };
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
  return a.level === b.level && a.span === b.span && a.face === b.face;
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
