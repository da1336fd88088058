import { gzipSync } from "node:zlib";
import fc from "fast-check";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  AckFailureSchema,
  ConversationInfoSchema,
  EndAckSchema,
  ErrorBodySchema,
  InitResponseSchema,
  OkAckSchema,
  RegisterConnectorAckSchema,
  SendAckSchema,
  clientEventNames,
  type ConversationInfo,
  type InitResponse,
  type Message,
} from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";

/**
 * Malformed input against the real server: every client event, on a customer socket and on an API-key socket, and
 * the init route, fed random and mutated payloads. Whatever comes in, the answer is a well-formed ack or HTTP error
 * in time, and the server still serves a normal conversation afterwards.
 */

const MAX_PAYLOAD_BYTES = 64 * 1024;
/**
 * Socket.IO's hard cap is 2 × MAX_PAYLOAD_BYTES on the wire; past it the transport drops the connection by design.
 * Huge strings stay below it (in encoded bytes) but well above the per-event limit, which must answer with an ack.
 */
const WIRE_BUDGET = MAX_PAYLOAD_BYTES * 2 - 4_096;
const ACK_TIMEOUT_MS = 3_000;
const FUZZ_TIME_LIMIT_MS = 12_000;

/** Events Socket.IO reserves: the client refuses to emit them, so they cannot come off the wire. */
const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);
const KNOWN = new Set<string>(clientEventNames);

const successSchemas: Record<(typeof clientEventNames)[number], z.ZodType> = {
  registerConnector: RegisterConnectorAckSchema,
  joinConversation: OkAckSchema,
  sendMessage: SendAckSchema,
  endConversation: EndAckSchema,
  leaveConversation: OkAckSchema,
  subscribeConversations: OkAckSchema,
  unsubscribeConversations: OkAckSchema,
};

let app: TestApp;
let customerSocket: Socket;
let apiSocket: Socket;
const seeds: InitResponse[] = [];

async function init(body: unknown): Promise<InitResponse> {
  const response = await postJson(`${app.url}/api/customer/init`, body);
  expect(response.status).toBe(200);
  return InitResponseSchema.parse(response.body);
}

beforeAll(async () => {
  app = await startTestApp({ MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES), MAX_TEXT_LENGTH: "4096" });
  for (const name of ["Sara", "Omar", "Hina"]) {
    seeds.push(await init({ firstName: name, channel: "web", email: `${name.toLowerCase()}@example.com` }));
  }
  customerSocket = await connect(app.url);
  apiSocket = await connect(app.url, { apiKey: app.apiKey });
});

afterAll(async () => {
  customerSocket?.close();
  apiSocket?.close();
  await app?.close();
});

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

const hugeString = fc.constantFrom("x", "é", "中", "\u0000", "\n", "{").chain((unit) => {
  // JSON escapes and UTF-8 make one character cost up to 6 bytes on the wire.
  const wireBytes = Buffer.byteLength(JSON.stringify(unit)) - 2;
  return fc.integer({ min: 4_000, max: Math.floor(WIRE_BUDGET / wireBytes) }).map((length) => unit.repeat(length));
});

/** `{ a: [ { a: [ ... ] } ] }` a few thousand levels deep. */
const deepNesting = fc.integer({ min: 50, max: 2_500 }).map((depth) => {
  let value: unknown = "leaf";
  for (let level = 0; level < depth; level += 1) value = level % 2 === 0 ? { conversationId: value } : [value];
  return value;
});

const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.anything({ maxDepth: 3 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<unknown>(null, 0, -1, 1.5, Number.NaN, true, "", " ", [], {}, "__proto__", "c_" + "9"),
  },
  { weight: 1, arbitrary: hugeString },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) },
);

/** Valid payloads of each event, against the seed conversations, to mutate. */
function validPayloads(event: string): fc.Arbitrary<Record<string, unknown>> {
  const seed = fc.constantFrom(...seeds);
  switch (event) {
    case "registerConnector":
      return fc.constantFrom("sms", "whatsapp", "fb").map((channel) => ({ id: channel, name: "Gateway", channel }));
    case "joinConversation":
      return fc.oneof(
        seed.map((s) => ({ conversationId: s.conversationId, id: s.participant.id, name: "S", token: s.token })),
        fc
          .tuple(seed, fc.constantFrom("agent", "supervisor", "bot", "connector"), fc.nat(5))
          .map(([s, role, since]) => ({ conversationId: s.conversationId, id: "agent-1", name: "Ali", role, since })),
      );
    case "sendMessage":
      return fc.oneof(
        seed.map((s) => ({ conversationId: s.conversationId, text: "hello" })),
        seed.map((s) => ({
          type: "ChatMessage",
          id: "client-fuzz-1",
          conversationId: s.conversationId,
          text: "with a file",
          to: [{ id: "agent-1", name: "Ali" }],
          attachments: [{ type: "image/png", name: "a.png", contentUrl: "https://cdn.example.com/a.png" }],
          tag: "",
        })),
        seed.map((s) => ({
          type: "ActivityMessage",
          activityType: "typing",
          conversationId: s.conversationId,
          info: { state: "start" },
        })),
      );
    case "endConversation":
      return seed.map((s) => ({ conversationId: s.conversationId, reason: "fuzz" }));
    case "subscribeConversations":
      return fc.record({
        states: fc.subarray(["bot", "queued", "active"], { minLength: 1 }),
        channel: fc.constantFrom("web", "sms"),
        subject: fc.constantFrom("billing", "sales"),
      });
    default:
      return seed.map((s) => ({ conversationId: s.conversationId }));
  }
}

/** Valid payloads with one thing wrong: a value of the wrong type, a key missing, a stray key, nested garbage. */
function mutated(valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> {
  return valid.chain((payload) => {
    const keys = Object.keys(payload);
    return fc.oneof(
      fc.constant(payload),
      fc.tuple(fc.constantFrom(...keys), wrongValue).map(([key, value]) => ({ ...payload, [key]: value })),
      fc.constantFrom(...keys).map((key) => Object.fromEntries(Object.entries(payload).filter(([k]) => k !== key))),
      fc
        .tuple(fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "type", "seq", "toJSON")), wrongValue)
        .map(([key, value]) => ({ ...payload, [key]: value })),
      fc
        .tuple(fc.constantFrom(...keys), fc.constantFrom(...keys))
        .map(([a, b]) => ({ ...payload, [a]: payload[b], [b]: payload[a] })),
      fc.constant([payload]),
    );
  });
}

const unknownEvent = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 40 }),
    fc.constantFrom(
      "error",
      "constructor",
      "__proto__",
      "toString",
      "messageArrived",
      "conversationInfo",
      "SENDMESSAGE",
    ),
  )
  .filter((name) => !RESERVED.has(name) && !KNOWN.has(name));

const socketCall = fc
  .oneof({ weight: 6, arbitrary: fc.constantFrom(...clientEventNames) }, { weight: 1, arbitrary: unknownEvent })
  .chain((event) =>
    fc.record({
      event: fc.constant(event),
      on: fc.constantFrom("customer" as const, "apiKey" as const),
      args: fc.oneof(
        { weight: 8, arbitrary: fc.oneof(mutated(validPayloads(event)), wrongValue).map((p) => [p]) },
        { weight: 1, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.tuple(mutated(validPayloads(event)), fc.anything({ maxDepth: 1 })) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => [Buffer.from(bytes)]) },
      ),
    }),
  );

const initBodies = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  mutated(
    fc.record({
      FirstName: fc.constantFrom("Sara", "  "),
      channel: fc.constantFrom("web", "SMS", "we b"),
      refId: fc.constantFrom("+923001234567", ""),
      email: fc.constantFrom("sara@example.com", "not-an-email"),
      reqestId: fc.constantFrom("req-1", "has space"),
      url: fc.constantFrom("https://shop.example.com", "file:///etc/passwd"),
    }),
  ),
);

// ---------------------------------------------------------------------------------------------------------------
// Checks

/** Asserts `ack` is the event's success shape or a failure with a catalogue code; returns its code, if any. */
function checkAck(event: string, ack: unknown): string | undefined {
  const failure = AckFailureSchema.safeParse(ack);
  if (failure.success) {
    const { code, details } = failure.data.error;
    // `internal` means a handler threw on input its schema let through: that is a bug, not an answer.
    expect(code, `internal error for ${event}`).not.toBe("internal");
    if (!KNOWN.has(event)) expect(code).toBe("not_found");
    if (code === "invalid_payload") {
      expect(
        z
          .array(z.object({ path: z.string(), message: z.string() }))
          .min(1)
          .safeParse(details?.fields).success,
      ).toBe(true);
    }
    return code;
  }
  expect(KNOWN.has(event), `unknown event ${event} was acknowledged with ${JSON.stringify(ack)}`).toBe(true);
  const success = successSchemas[event as keyof typeof successSchemas].safeParse(ack);
  expect(success.success, `${event} ack ${JSON.stringify(ack)?.slice(0, 500)}`).toBe(true);
  return undefined;
}

function checkHttpError(status: number, body: unknown): void {
  expect(status, `status ${status}: ${JSON.stringify(body)?.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  const parsed = ErrorBodySchema.safeParse(body);
  expect(parsed.success, `error body ${JSON.stringify(body)?.slice(0, 300)}`).toBe(true);
}

async function postRaw(
  body: Uint8Array | string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${app.url}/api/customer/init`, {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(ACK_TIMEOUT_MS),
  });
  expect(response.headers.get("content-type") ?? "").toMatch(/^application\/json/);
  return { status: response.status, body: await response.json() };
}

const propertyOptions = {
  interruptAfterTimeLimit: FUZZ_TIME_LIMIT_MS,
  // Running out of time means something answered slowly or not at all: a failure, not a shorter run.
  markInterruptAsFailure: true,
};

// ---------------------------------------------------------------------------------------------------------------

describe("fuzzing the wire", () => {
  it("acks every malformed or mutated event in time, with a catalogue error or a valid success", async () => {
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(socketCall, async ({ event, on, args }) => {
        const socket = on === "customer" ? customerSocket : apiSocket;
        const ack: unknown = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, ...args);
        const code = checkAck(event, ack) ?? "ok";
        codes.set(code, (codes.get(code) ?? 0) + 1);
        expect(socket.connected, `${on} socket dropped after ${event}`).toBe(true);
      }),
      { ...propertyOptions, numRuns: 160 },
    );
    // The run exercised both refusals and successes, not one error path 160 times.
    expect(codes.get("invalid_payload") ?? 0).toBeGreaterThan(0);
    expect(codes.get("not_found") ?? 0).toBeGreaterThan(0);
    expect(codes.size).toBeGreaterThanOrEqual(3);
  });

  it("answers random JSON init bodies with 200 or a 4xx error body, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(initBodies, async (body) => {
        const response = await postRaw(JSON.stringify(body) ?? "null", { "content-type": "application/json" });
        if (response.status === 200) expect(InitResponseSchema.safeParse(response.body).success).toBe(true);
        else checkHttpError(response.status, response.body);
      }),
      { ...propertyOptions, numRuns: 40 },
    );
  });

  it("answers random bytes posted as JSON with a 4xx error body, never 5xx", async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2_000 }),
      fc.string({ unit: fc.constantFrom(...'{}[]":,0123456789.eE+-tfnul \\/\n\u00e9'), maxLength: 200 }),
    );
    const contentType = fc.constantFrom(
      "application/json",
      "application/json; charset=utf-8",
      "application/json; charset=latin1",
      "application/json; charset=utf-16",
      "application/vnd.api+json",
    );
    await fc.assert(
      fc.asyncProperty(bytes, contentType, async (body, type) => {
        const response = await postRaw(body, { "content-type": type });
        if (response.status === 200) expect(InitResponseSchema.safeParse(response.body).success).toBe(true);
        else checkHttpError(response.status, response.body);
      }),
      { ...propertyOptions, numRuns: 40 },
    );
  });

  it("answers a corrupt compressed body with 400 invalid_payload, not 500", async () => {
    // Control: a well-formed gzip body is accepted, so compression itself is supported.
    const good = gzipSync(JSON.stringify({ firstName: "Gzip", channel: "web", refId: "gz-1" }));
    const accepted = await postRaw(good, { "content-type": "application/json", "content-encoding": "gzip" });
    expect(accepted.status).toBe(200);

    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.constantFrom("gzip", "deflate", "br"),
        async (bytes, encoding) => {
          const response = await postRaw(bytes, { "content-type": "application/json", "content-encoding": encoding });
          checkHttpError(response.status, response.body);
          expect((response.body as { error: { code: string } }).error.code).toBe("invalid_payload");
        },
      ),
      { ...propertyOptions, numRuns: 10 },
    );
  });

  it("measures an event in bytes: multi-byte text over MAX_PAYLOAD_BYTES is payload_too_large", async () => {
    // 3 bytes per character in UTF-8: about 1.5 × the limit in bytes, under the transport's hard cap, and fewer
    // characters than the limit has bytes.
    const text = "中".repeat(Math.ceil(MAX_PAYLOAD_BYTES / 2));
    expect(Buffer.byteLength(text)).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(Buffer.byteLength(text)).toBeLessThan(WIRE_BUDGET);
    const socket = await connect(app.url, { apiKey: app.apiKey });
    try {
      const ack = await request(socket, "sendMessage", { conversationId: seeds[0]?.conversationId, text });
      expect(AckFailureSchema.parse(ack).error.code).toBe("payload_too_large");
      expect(socket.connected).toBe(true);
    } finally {
      socket.close();
    }
  });

  it("still serves a whole conversation on the same server afterwards", async () => {
    const health = await fetch(`${app.url}/health`);
    expect(health.status).toBe(200);

    const started = await init({ FirstName: "Nadia", channel: "web", email: "nadia@example.com" });
    const customer = await connect(app.url);
    const agent = await connect(app.url, { apiKey: app.apiKey });
    try {
      const customerLog = collectMessages(customer);
      const agentLog = collectMessages(agent);

      const customerInfo = nextEvent<ConversationInfo>(customer, "conversationInfo");
      expect(
        await request(customer, "joinConversation", {
          conversationId: started.conversationId,
          id: started.participant.id,
          name: started.participant.name,
          token: started.token,
        }),
      ).toEqual({ ok: true });
      const info = ConversationInfoSchema.parse(await customerInfo);
      expect(info.conversation).toMatchObject({ id: started.conversationId, state: "queued" });
      expect(info.role).toBe("customer");

      const agentInfo = nextEvent<ConversationInfo>(agent, "conversationInfo");
      expect(
        await request(agent, "joinConversation", {
          conversationId: started.conversationId,
          id: "agent-7",
          name: "Ali",
          role: "agent",
        }),
      ).toEqual({ ok: true });
      expect((await agentInfo).role).toBe("agent");
      const isAgentJoined = (m: Message) =>
        m.type === "ActivityMessage" && m.activityType === "participantJoined" && m.info.role === "agent";
      await expect.poll(() => customerLog.messages.some(isAgentJoined)).toBe(true);

      const fromAgent = SendAckSchema.parse(
        await request(agent, "sendMessage", { conversationId: started.conversationId, text: "How can I help?" }),
      );
      await expect
        .poll(() => customerLog.messages.find((m) => m.id === fromAgent.id))
        .toMatchObject({ type: "ChatMessage", text: "How can I help?", seq: fromAgent.seq, from: { id: "agent-7" } });

      const fromCustomer = SendAckSchema.parse(
        await request(customer, "sendMessage", { conversationId: started.conversationId, text: "My order is late." }),
      );
      expect(fromCustomer.seq).toBeGreaterThan(fromAgent.seq ?? 0);
      await expect
        .poll(() => agentLog.messages.find((m) => m.id === fromCustomer.id))
        .toMatchObject({ type: "ChatMessage", text: "My order is late.", from: { id: started.participant.id } });
      // Each side got the other's message, not its own echo.
      expect(customerLog.messages.some((m) => m.id === fromCustomer.id)).toBe(false);
      expect(agentLog.messages.some((m) => m.id === fromAgent.id)).toBe(false);

      expect(
        await request(agent, "endConversation", { conversationId: started.conversationId, reason: "resolved" }),
      ).toEqual({ ok: true });
      const isEnd = (m: Message) => m.type === "ActivityMessage" && m.activityType === "endOfConversation";
      await expect.poll(() => customerLog.messages.some(isEnd)).toBe(true);
      await expect.poll(() => agentLog.messages.some(isEnd)).toBe(true);
      const after = await request(customer, "sendMessage", { conversationId: started.conversationId, text: "hello?" });
      expect(AckFailureSchema.parse(after).error.code).toBe("conversation_ended");
    } finally {
      customer.close();
      agent.close();
    }
  });
});
