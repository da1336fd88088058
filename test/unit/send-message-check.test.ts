import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import * as z from "zod";
import { SendChatMessageSchema, SendMessageSchema, SendTypingSchema } from "../../protocol/index.js";
import { compileSendMessageCheck, type SendMessageResult } from "../../server/socket/send-message-check.js";
import { mutants, replaceAt } from "../helpers/mutations.js";

/**
 * `sendMessage` is checked by validators compiled from the protocol's zod schemas (`send-message-check.ts`), not by
 * zod itself. They must agree with zod: the same payloads accepted, the same refused with the same issues, the same
 * value returned. The corpus is every kind of payload a client sends, and mutations of it.
 */

const check = compileSendMessageCheck();

const file = { type: "image/png", name: "receipt.png", contentUrl: "https://files.example.com/receipt.png" };
const corpus: unknown[] = [
  { conversationId: "c_1", text: "Hello" },
  { type: "ChatMessage", conversationId: "c_1", text: "Hello", id: "m-1" },
  {
    type: "ChatMessage",
    id: "web:42",
    conversationId: "c_1",
    from: { id: "cust", name: "Sara" },
    to: [{ id: "agent-1", name: "Ana" }],
    text: "Here is the receipt",
    refId: "ticket-9",
    attachments: [file, { ...file, thumbnailUrl: "https://files.example.com/receipt-small.png" }],
    tag: "",
  },
  {
    conversationId: "c_1",
    attachments: [{ type: "text/plain", name: "note.txt", contentUrl: "data:text/plain,hi%20there" }],
  },
  {
    conversationId: "c_1",
    attachments: [{ type: "image/png", name: "dot.png", contentUrl: "data:image/png;base64,iVBORw0KGgo=" }],
  },
  { conversationId: "c_1", text: "Only agents hear this", tag: "whisper" },
  { conversationId: "c_1", text: "Corrected", replaces: "m-1", id: "m-2" },
  { conversationId: "c_1", text: "", button: { id: "yes", text: "Yes" } },
  {
    conversationId: "c_1",
    text: "Pick one",
    buttons: [
      [
        { id: "yes", text: "Yes" },
        { id: "no", text: "No" },
      ],
    ],
  },
  { type: "ActivityMessage", activityType: "typing", conversationId: "c_1", info: { state: "start" } },
  { type: "ActivityMessage", activityType: "typing", id: "t-1", conversationId: "c_1", info: { state: "stop" } },
];

/** Checks one payload with zod and with the compiled check (each on its own copy); they must agree. */
function expectAgreement(payload: unknown): boolean {
  const byZod = SendMessageSchema.safeParse(structuredClone(payload));
  const compiled: SendMessageResult = check(structuredClone(payload));
  const context = JSON.stringify(payload)?.slice(0, 400);
  expect(compiled.success, context).toBe(byZod.success);
  if (byZod.success) expect(compiled.data, context).toStrictEqual(byZod.data);
  else expect(compiled.error?.issues, context).toStrictEqual(byZod.error.issues);
  return byZod.success;
}

describe("sendMessage's compiled check", () => {
  it("accepts every kind of payload a client sends, as zod does, and returns the same value", () => {
    for (const payload of corpus) expect(expectAgreement(payload), JSON.stringify(payload)).toBe(true);
  });

  it("answers a valid payload without zod, unknown keys and all; only a refused one goes to zod", () => {
    const parse = vi.spyOn(SendMessageSchema, "safeParse");
    try {
      for (const payload of corpus) check({ ...(payload as object), unknownField: "dropped" });
      expect(parse).not.toHaveBeenCalled();
      check({ conversationId: "c_1", text: "   " });
      expect(parse).toHaveBeenCalledTimes(1);
    } finally {
      parse.mockRestore();
    }
  });

  it("accepts and refuses the same mutations of those payloads as zod, with zod's issues", () => {
    let accepted = 0;
    let refused = 0;
    for (const payload of corpus) {
      for (const mutant of mutants(payload)) {
        if (expectAgreement(mutant)) accepted++;
        else refused++;
      }
    }
    // Both outcomes are well represented: the agreement is not that of two checks that accept (or refuse) all.
    expect(accepted).toBeGreaterThan(600);
    expect(refused).toBeGreaterThan(2_000);
  });

  it("agrees with zod on random values put anywhere in a payload", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...corpus),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.jsonValue(),
        (payload, steps, replacement) => {
          expectAgreement(replaceAt(payload, steps, replacement));
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it("refuses to compile schemas with a refinement or transform it does not run itself", () => {
    const refinedField = SendChatMessageSchema.safeExtend({ text: z.string().refine((text) => text !== "x") });
    const transformed = SendTypingSchema.extend({ conversationId: z.string().transform((id) => id.trim()) });
    expect(() => compileSendMessageCheck({ chat: refinedField, typing: SendTypingSchema })).toThrow(
      /chat schema has a custom check at text/,
    );
    expect(() => compileSendMessageCheck({ chat: SendChatMessageSchema, typing: transformed })).toThrow(
      /typing schema has pipe at conversationId/,
    );
    // What zod's JSON Schema says differently: a URL format (skipped by the validators), a pattern's flags, a lazy.
    const formats: [z.ZodType, RegExp][] = [
      [z.url(), /has a url format at conversationId/],
      [z.string().regex(/^c_/i), /has a pattern with flags \(\/\^c_\/i\) at conversationId/],
      [z.lazy(() => z.string()), /has lazy at conversationId/],
    ];
    for (const [conversationId, refusal] of formats) {
      const typing = SendTypingSchema.extend({ conversationId });
      expect(() => compileSendMessageCheck({ chat: SendChatMessageSchema, typing })).toThrow(refusal);
    }
  });
});
