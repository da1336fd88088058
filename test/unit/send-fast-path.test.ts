import { describe, expect, it } from "vitest";
import { SendMessageSchema, parseCommonSendMessage } from "../../protocol/index.js";

/** A small seeded generator (mulberry32): the same payloads on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values each field may take: valid ones, edge cases on both sides of every rule, and wrong types. */
const candidates: Record<string, readonly unknown[]> = {
  type: ["ChatMessage", "ActivityMessage", "chatmessage", "", 1],
  id: ["m-1", "a".repeat(128), "a".repeat(129), "", "with space", "ok.:@+-=/_9", "é", null, 7],
  conversationId: ["c_1", "c".repeat(64), "c".repeat(65), "", 3, null],
  text: ["hello", "  ", "", " padded ", "a".repeat(5000), "مرحبا 👋", 42, null],
  tag: ["", "whisper", "Whisper", "note", 0],
  replaces: ["m-0", "", "bad id", "x".repeat(129), false],
  to: [[], [{ id: "agent-1", name: "Ali" }]],
  attachments: [[]],
  refId: ["+92300"],
  extra: ["ignored?"],
};
const keys = Object.keys(candidates);

function payload(next: () => number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const values = candidates[key] ?? [];
    // Common fields are usually there; the others now and then.
    const presence = ["conversationId", "text", "id"].includes(key)
      ? 0.85
      : ["type", "tag", "replaces"].includes(key)
        ? 0.3
        : 0.1;
    if (next() < presence) out[key] = values[Math.floor(next() * values.length)];
  }
  return out;
}

describe("parseCommonSendMessage (the sendMessage fast path)", () => {
  it("gives exactly the schema's output whenever it gives anything", () => {
    const next = random(6);
    let taken = 0;
    for (let index = 0; index < 20_000; index++) {
      const input = payload(next);
      const fast = parseCommonSendMessage(input);
      if (fast === undefined) continue;
      taken++;
      const slow = SendMessageSchema.safeParse(input);
      expect(slow.success, JSON.stringify(input)).toBe(true);
      expect(fast, JSON.stringify(input)).toStrictEqual(slow.data);
    }
    // The fast path is really used, not a fallback every time.
    expect(taken).toBeGreaterThan(200);
  });

  it("takes the shapes clients send, and leaves everything else to the schema", () => {
    const base = { type: "ChatMessage", conversationId: "c_1", id: "m-1", text: "hi" };
    expect(parseCommonSendMessage(base)).toStrictEqual({
      type: "ChatMessage",
      conversationId: "c_1",
      id: "m-1",
      to: [],
      text: "hi",
      attachments: [],
      tag: "",
    });
    expect(parseCommonSendMessage({ conversationId: "c_1", text: "no type", tag: "whisper" })).toMatchObject({
      type: "ChatMessage",
      tag: "whisper",
    });
    for (const other of [
      { ...base, to: [] },
      { ...base, attachments: [] },
      { ...base, text: "   " },
      { ...base, id: "not valid" },
      { type: "ActivityMessage", activityType: "typing", conversationId: "c_1", info: { state: "start" } },
      Object.assign(Object.create(null) as object, base),
      [base],
      "text",
      null,
    ]) {
      expect(parseCommonSendMessage(other)).toBeUndefined();
    }
  });
});
