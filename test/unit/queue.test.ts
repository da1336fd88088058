import { describe, expect, it } from "vitest";
import type { ConversationSummary } from "../../protocol/index.js";
import { decodeCursor, encodeCursor } from "../../server/core/conversation-list.js";
import { matches } from "../../server/socket/queue.js";

describe("the queue's cursors", () => {
  it("hold a position, and nothing else is read as one", () => {
    const position = { ms: Date.UTC(2026, 10, 21, 10), id: "c_5CvAlTCnZDUOM5dSAnQn-Q" };
    expect(decodeCursor(encodeCursor(position))).toEqual(position);
    const spelt = (text: string) => Buffer.from(text).toString("base64url");
    for (const cursor of [
      "",
      "not a cursor",
      spelt("1763719200000"),
      spelt(":c_1"),
      spelt("-5:c_1"),
      spelt("1.5:c_1"),
      spelt("99999999999999999:c_1"),
      spelt(`1:${"c".repeat(65)}`),
      spelt("1:c 1"),
      `${encodeCursor(position)}=`,
      `${encodeCursor(position)}!`,
    ]) {
      expect(decodeCursor(cursor), cursor).toBeUndefined();
    }
  });
});

describe("a queue subscriber's filter", () => {
  const summary = (overrides: Partial<ConversationSummary> = {}): ConversationSummary => ({
    id: "c_1",
    channel: "web",
    subject: "billing",
    language: "en",
    state: "queued",
    customer: { id: "p_1", name: "Sara" },
    desk: "socket",
    createdAt: "2026-11-21T10:00:00.000Z",
    lastMessageAt: "2026-11-21T10:00:00.000Z",
    lastSeq: 1,
    ...overrides,
  });

  it("matches a change that enters, stays in or leaves a watched state, of its channel and subject", () => {
    const taken = { conversation: summary({ state: "active" }), previousState: "queued" as const };
    expect(matches({}, taken)).toBe(true);
    expect(matches({ states: ["queued"] }, taken)).toBe(true);
    expect(matches({ states: ["active"] }, taken)).toBe(true);
    expect(matches({ states: ["bot"] }, taken)).toBe(false);
    expect(matches({ states: ["queued"] }, { conversation: summary() })).toBe(true);
    expect(matches({ states: ["active"] }, { conversation: summary() })).toBe(false);
    const ended = { conversation: summary({ state: "ended" }), previousState: "active" as const };
    expect(matches({ states: ["active"] }, ended)).toBe(true);
    expect(matches({ states: ["queued", "bot"] }, ended)).toBe(false);
    expect(matches({ channel: "web", subject: "billing" }, taken)).toBe(true);
    expect(matches({ channel: "sms" }, taken)).toBe(false);
    expect(matches({ subject: "sales" }, taken)).toBe(false);
  });
});
