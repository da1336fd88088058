import { describe, expect, it } from "vitest";
import {
  ActivityMessageSchema,
  ChatMessageSchema,
  InitRequestSchema,
  HISTORY_PAGE_DEFAULT,
  HISTORY_PAGE_MAX,
  JoinConversationSchema,
  MAX_ATTACHMENTS,
  MessageSchema,
  RegisterConnectorSchema,
  SendMessageSchema,
  type ActivityType,
  type Attachment,
  type Message,
} from "../../protocol/index.js";

/** The dotted paths of the issues a failed parse reports. */
function failingPaths(result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }): string[] {
  expect(result.success).toBe(false);
  return (result.error?.issues ?? []).map((issue) => issue.path.map(String).join("."));
}

const png: Attachment = { type: "image/png", name: "receipt.png", contentUrl: "https://cdn.example.com/receipt.png" };

describe("InitRequestSchema (POST /api/customer/init)", () => {
  it("accepts the capitalised spellings of the original document and folds them to camelCase", () => {
    const parsed = InitRequestSchema.parse({
      FirstName: "Sara",
      LastName: "Khan",
      Channel: "sms",
      RefId: "+923001234567",
      Language: "ur-PK",
      Subject: "billing",
    });
    expect(parsed).toMatchObject({
      firstName: "Sara",
      lastName: "Khan",
      channel: "sms",
      refId: "+923001234567",
      language: "ur-PK",
      subject: "billing",
    });
    expect(parsed).not.toHaveProperty("FirstName");
    expect(parsed).not.toHaveProperty("RefId");
  });

  it("accepts the camelCase spellings and defaults language to en", () => {
    const parsed = InitRequestSchema.parse({ firstName: "Sara", channel: "web", email: "sara@example.com" });
    expect(parsed).toEqual({ firstName: "Sara", channel: "web", email: "sara@example.com", language: "en" });
  });

  it("takes reqestId (the document's misspelling) as requestId", () => {
    const parsed = InitRequestSchema.parse({
      firstName: "Sara",
      channel: "web",
      phone: "+92 300 1234567",
      reqestId: "9b2d3c4e-1111-4222-8333-444455556666",
    });
    expect(parsed.requestId).toBe("9b2d3c4e-1111-4222-8333-444455556666");
    expect(parsed).not.toHaveProperty("reqestId");
  });

  it("accepts two spellings of one field when they agree", () => {
    const parsed = InitRequestSchema.parse({ firstName: "Sara", FirstName: "Sara", channel: "web", refId: "s-1" });
    expect(parsed.firstName).toBe("Sara");
  });

  it("refuses two spellings of one field that disagree, naming the field", () => {
    expect(
      failingPaths(InitRequestSchema.safeParse({ firstName: "Sara", FirstName: "Sarah", channel: "web", refId: "x" })),
    ).toContain("firstName");
    expect(
      failingPaths(
        InitRequestSchema.safeParse({
          firstName: "Sara",
          channel: "web",
          requestId: "r-1",
          reqestId: "r-2",
          refId: "x",
        }),
      ),
    ).toContain("requestId");
  });

  it("requires at least one identifier among refId, phone and email", () => {
    expect(failingPaths(InitRequestSchema.safeParse({ firstName: "Sara", channel: "web" }))).toEqual(["refId"]);
    for (const identifier of [{ refId: "acct-1" }, { phone: "+923001234567" }, { email: "sara@example.com" }]) {
      expect(InitRequestSchema.safeParse({ firstName: "Sara", channel: "web", ...identifier }).success).toBe(true);
    }
  });

  it("requires firstName and channel", () => {
    const paths = failingPaths(InitRequestSchema.safeParse({ refId: "acct-1" }));
    expect(paths).toContain("firstName");
    expect(paths).toContain("channel");
    expect(failingPaths(InitRequestSchema.safeParse({ firstName: "   ", channel: "web", refId: "a" }))).toContain(
      "firstName",
    );
  });

  it("refuses a bad email, language or url", () => {
    const base = { firstName: "Sara", channel: "web", refId: "acct-1" };
    expect(failingPaths(InitRequestSchema.safeParse({ ...base, email: "not-an-address" }))).toEqual(["email"]);
    expect(failingPaths(InitRequestSchema.safeParse({ ...base, language: "English" }))).toEqual(["language"]);
    expect(failingPaths(InitRequestSchema.safeParse({ ...base, language: "e" }))).toEqual(["language"]);
    for (const url of ["javascript:alert(1)", "file:///etc/passwd", "ftp://example.com/x", "not a url"]) {
      expect(failingPaths(InitRequestSchema.safeParse({ ...base, url }))).toEqual(["url"]);
    }
    expect(InitRequestSchema.parse({ ...base, url: "https://shop.example.com/cart?x=1" }).url).toBe(
      "https://shop.example.com/cart?x=1",
    );
  });

  it("lower-cases the channel and refuses channels with other characters", () => {
    expect(InitRequestSchema.parse({ firstName: "Sara", channel: "WhatsApp", refId: "a" }).channel).toBe("whatsapp");
    expect(InitRequestSchema.parse({ firstName: "Sara", Channel: " SMS ", refId: "a" }).channel).toBe("sms");
    expect(failingPaths(InitRequestSchema.safeParse({ firstName: "Sara", channel: "we b", refId: "a" }))).toEqual([
      "channel",
    ]);
    expect(new Set(failingPaths(InitRequestSchema.safeParse({ firstName: "Sara", channel: "", refId: "a" })))).toEqual(
      new Set(["channel"]),
    );
  });

  it("accepts an ISO 8601 timestamp with an offset and refuses free text", () => {
    const base = { firstName: "Sara", channel: "web", refId: "a" };
    expect(InitRequestSchema.safeParse({ ...base, timestamp: "2026-11-21T10:00:00.000Z" }).success).toBe(true);
    expect(InitRequestSchema.safeParse({ ...base, timestamp: "2026-11-21T15:00:00+05:00" }).success).toBe(true);
    expect(failingPaths(InitRequestSchema.safeParse({ ...base, timestamp: "yesterday" }))).toEqual(["timestamp"]);
  });

  it("refuses a body that is not an object", () => {
    for (const body of [null, "Sara", 42, ["firstName"], undefined]) {
      expect(InitRequestSchema.safeParse(body).success).toBe(false);
    }
  });
});

describe("SendMessageSchema (sendMessage)", () => {
  it("makes a payload without type a ChatMessage with the documented defaults", () => {
    const parsed = SendMessageSchema.parse({ conversationId: "c_1", text: "Where is my refund?" });
    expect(parsed).toEqual({
      type: "ChatMessage",
      conversationId: "c_1",
      text: "Where is my refund?",
      to: [],
      attachments: [],
      tag: "",
    });
  });

  it("ignores seq and timestamp a client sends (they are the server's)", () => {
    const parsed = SendMessageSchema.parse({
      type: "ChatMessage",
      id: "client-msg-1",
      conversationId: "c_1",
      seq: 99,
      timestamp: "2020-01-01T00:00:00.000Z",
      text: "hi",
      from: { id: "agent-17", name: "Ali" },
      tag: "whisper",
    });
    expect(parsed).not.toHaveProperty("seq");
    expect(parsed).not.toHaveProperty("timestamp");
    expect(parsed).toMatchObject({ id: "client-msg-1", tag: "whisper", from: { id: "agent-17", name: "Ali" } });
  });

  it("accepts a typing activity and refuses any other activity or typing state", () => {
    const typing = { type: "ActivityMessage", activityType: "typing", conversationId: "c_1", info: { state: "start" } };
    expect(SendMessageSchema.parse(typing)).toEqual(typing);
    expect(SendMessageSchema.safeParse({ ...typing, info: { state: "paused" } }).success).toBe(false);
    expect(
      SendMessageSchema.safeParse({ ...typing, activityType: "endOfConversation", info: { reason: "x" } }).success,
    ).toBe(false);
    expect(SendMessageSchema.safeParse({ ...typing, type: "Unknown" }).success).toBe(false);
  });

  it(`accepts ${MAX_ATTACHMENTS} attachments and refuses ${MAX_ATTACHMENTS + 1}`, () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ ...png, name: `file-${i}.png` }));
    expect(SendMessageSchema.safeParse({ conversationId: "c_1", attachments: many(MAX_ATTACHMENTS) }).success).toBe(
      true,
    );
    expect(
      failingPaths(SendMessageSchema.safeParse({ conversationId: "c_1", attachments: many(MAX_ATTACHMENTS + 1) })),
    ).toContain("attachments");
  });

  it("refuses file: and other non-web URLs in attachments, thumbnails included", () => {
    for (const contentUrl of ["file:///etc/passwd", "FILE:///C:/Windows/win.ini", "ftp://x/y", "javascript:1", "/x"]) {
      const result = SendMessageSchema.safeParse({ conversationId: "c_1", attachments: [{ ...png, contentUrl }] });
      expect(failingPaths(result)).toContain("attachments.0.contentUrl");
    }
    const thumbnail = SendMessageSchema.safeParse({
      conversationId: "c_1",
      attachments: [{ ...png, thumbnailUrl: "file:///etc/shadow" }],
    });
    expect(failingPaths(thumbnail)).toContain("attachments.0.thumbnailUrl");
  });

  it("accepts https, http and data: attachment URLs with no text", () => {
    for (const contentUrl of [
      "https://cdn.example.com/a.png",
      "http://files.example.com/a.pdf",
      "data:image/png;base64,iVBORw0KGgo=",
      "data:text/plain;charset=utf-8,hello",
    ]) {
      const parsed = SendMessageSchema.parse({ conversationId: "c_1", attachments: [{ ...png, contentUrl }] });
      expect(parsed.type === "ChatMessage" && parsed.attachments[0]?.contentUrl).toBe(contentUrl);
    }
    expect(
      SendMessageSchema.safeParse({ conversationId: "c_1", attachments: [{ ...png, contentUrl: "data:nonsense" }] })
        .success,
    ).toBe(false);
  });

  it("refuses a message with neither text nor attachment", () => {
    expect(failingPaths(SendMessageSchema.safeParse({ conversationId: "c_1" }))).toEqual(["text"]);
    expect(failingPaths(SendMessageSchema.safeParse({ conversationId: "c_1", text: "" }))).toEqual(["text"]);
    expect(failingPaths(SendMessageSchema.safeParse({ conversationId: "c_1", text: " \n\t " }))).toEqual(["text"]);
  });

  it("refuses an unknown tag, a malformed client id and a missing conversationId", () => {
    expect(failingPaths(SendMessageSchema.safeParse({ conversationId: "c_1", text: "x", tag: "secret" }))).toEqual([
      "tag",
    ]);
    expect(failingPaths(SendMessageSchema.safeParse({ conversationId: "c_1", text: "x", id: "has space" }))).toEqual([
      "id",
    ]);
    expect(failingPaths(SendMessageSchema.safeParse({ text: "x" }))).toEqual(["conversationId"]);
  });

  it("refuses payloads that are not objects", () => {
    for (const payload of [null, undefined, "hello", 7, [], [{ conversationId: "c_1", text: "x" }]]) {
      expect(SendMessageSchema.safeParse(payload).success).toBe(false);
    }
  });
});

describe("JoinConversationSchema (joinConversation)", () => {
  it("accepts a customer join with a token and an agent join with role and since", () => {
    const customer = { conversationId: "c_1", id: "p_1", name: "Sara Khan", token: "tok" };
    expect(JoinConversationSchema.parse(customer)).toEqual(customer);
    const agent = { conversationId: "c_1", id: "agent-17", name: "Ali", role: "agent", since: 12 };
    expect(JoinConversationSchema.parse(agent)).toEqual(agent);
    for (const role of ["supervisor", "bot", "connector"]) {
      expect(JoinConversationSchema.safeParse({ ...agent, role }).success).toBe(true);
    }
  });

  it("refuses roles a socket may not claim and a since that is not a seq", () => {
    const agent = { conversationId: "c_1", id: "agent-17", name: "Ali" };
    for (const role of ["customer", "system", "admin"]) {
      expect(failingPaths(JoinConversationSchema.safeParse({ ...agent, role }))).toEqual(["role"]);
    }
    for (const since of [-1, 1.5, "3"]) {
      expect(failingPaths(JoinConversationSchema.safeParse({ ...agent, since }))).toEqual(["since"]);
    }
  });

  it("takes a history page limit of 1 to 1,000", () => {
    const agent = { conversationId: "c_1", id: "agent-17", name: "Ali" };
    for (const limit of [1, 200, HISTORY_PAGE_MAX]) {
      expect(JoinConversationSchema.parse({ ...agent, limit })).toEqual({ ...agent, limit });
    }
    for (const limit of [0, -1, HISTORY_PAGE_MAX + 1, 1.5, "10", null]) {
      expect(failingPaths(JoinConversationSchema.safeParse({ ...agent, limit }))).toEqual(["limit"]);
    }
    expect(HISTORY_PAGE_DEFAULT).toBe(200);
  });

  it("requires conversationId, id and name, and a non-empty token when one is given", () => {
    const paths = failingPaths(JoinConversationSchema.safeParse({}));
    expect(paths).toEqual(expect.arrayContaining(["conversationId", "id", "name"]));
    expect(
      failingPaths(JoinConversationSchema.safeParse({ conversationId: "c_1", id: "p", name: "S", token: "" })),
    ).toEqual(["token"]);
  });
});

describe("RegisterConnectorSchema (registerConnector)", () => {
  it("accepts a connector whose id equals its channel", () => {
    const payload = { id: "sms", name: "Twilio SMS", channel: "sms" };
    expect(RegisterConnectorSchema.parse(payload)).toEqual(payload);
  });

  it("refuses an id that differs from the channel, naming id", () => {
    expect(failingPaths(RegisterConnectorSchema.safeParse({ id: "sms-1", name: "SMS", channel: "sms" }))).toEqual([
      "id",
    ]);
  });

  it("refuses a channel that is not lower-case letters, digits, _ . -", () => {
    expect(failingPaths(RegisterConnectorSchema.safeParse({ id: "SMS", name: "SMS", channel: "SMS" }))).toContain(
      "channel",
    );
    expect(failingPaths(RegisterConnectorSchema.safeParse({ id: "", name: "x", channel: "" }))).toContain("channel");
  });
});

describe("MessageSchema (messageArrived and history)", () => {
  const envelope = {
    conversationId: "c_7Hq2",
    timestamp: "2026-11-21T10:03:12.120Z",
    from: { id: "system", name: "Liaison" },
    to: [],
  };

  it("round-trips the spec's ChatMessage example unchanged", () => {
    const example = {
      type: "ChatMessage",
      id: "m_server-assigned",
      conversationId: "c_7Hq2",
      seq: 12,
      timestamp: "2026-11-21T10:03:12.120Z",
      from: { id: "agent-17", name: "Ali" },
      to: [],
      text: "Your refund is on its way.",
      refId: "+923001234567",
      attachments: [],
      tag: "",
    };
    const parsed = MessageSchema.parse(JSON.parse(JSON.stringify(example)));
    expect(parsed).toEqual(example);
    expect(ChatMessageSchema.parse(parsed)).toEqual(example);
  });

  it("keeps replaces and attachments of an agent's edit", () => {
    const edit = {
      type: "ChatMessage",
      id: "m_2",
      ...envelope,
      seq: 13,
      from: { id: "agent-17", name: "Ali" },
      text: "Your refund is on its way (corrected).",
      attachments: [{ ...png, thumbnailUrl: "https://cdn.example.com/t.png" }],
      tag: "",
      replaces: "m_server-assigned",
    };
    expect(MessageSchema.parse(edit)).toEqual(edit);
  });

  const activities: { [T in ActivityType]: Record<string, unknown> } = {
    greetings: { text: "Welcome! An agent will be with you shortly." },
    typing: { participant: { id: "agent-17", name: "Ali" }, state: "start" },
    handOff: { subject: "billing", desk: "socket", reason: "init" },
    queuePosition: { position: 3, estimatedWaitSeconds: 90 },
    noAgentAvailable: { subject: "billing", reason: "outside hours", text: "We are closed." },
    participantAdded: { participant: { id: "agent-17", name: "Ali" }, role: "agent" },
    participantRemoved: { participant: { id: "agent-17", name: "Ali" }, role: "agent" },
    participantJoined: { participant: { id: "p_1", name: "Sara Khan" }, role: "customer" },
    participantLeft: { participant: { id: "agent-17", name: "Ali" }, role: "agent" },
    endOfConversation: { reason: "resolved", endedBy: { id: "agent-17", name: "Ali", role: "agent" } },
    deliveryFailed: { messageId: "m_9", destination: "sms", reason: "rejected by carrier" },
  };

  for (const [activityType, info] of Object.entries(activities)) {
    it(`round-trips a ${activityType} activity`, () => {
      const message = {
        type: "ActivityMessage",
        id: `m_${activityType}`,
        ...envelope,
        // typing is relayed, never stored, and so carries no seq
        ...(activityType === "typing" ? {} : { seq: 4 }),
        activityType,
        info,
      };
      const wire = JSON.parse(JSON.stringify(message)) as unknown;
      const parsed: Message = MessageSchema.parse(wire);
      expect(parsed).toEqual(message);
      expect(ActivityMessageSchema.parse(parsed)).toEqual(message);
    });
  }

  it("refuses an activity whose info does not match its activityType", () => {
    const bad = {
      type: "ActivityMessage",
      id: "m_1",
      ...envelope,
      seq: 2,
      activityType: "participantJoined",
      info: { text: "hello" },
    };
    expect(MessageSchema.safeParse(bad).success).toBe(false);
    expect(MessageSchema.safeParse({ ...bad, activityType: "dance", info: {} }).success).toBe(false);
    expect(MessageSchema.safeParse({ ...bad, activityType: "queuePosition", info: { position: -1 } }).success).toBe(
      false,
    );
  });

  it("refuses a ChatMessage without seq, or with a non-ISO timestamp", () => {
    const chat = { type: "ChatMessage", id: "m_1", ...envelope, seq: 1, text: "x", attachments: [], tag: "" };
    expect(MessageSchema.safeParse(chat).success).toBe(true);
    const { seq: _seq, ...withoutSeq } = chat;
    expect(MessageSchema.safeParse(withoutSeq).success).toBe(false);
    expect(MessageSchema.safeParse({ ...chat, timestamp: "21/11/2026" }).success).toBe(false);
  });
});

describe("data: URLs", () => {
  it("accepts readable data: URLs and refuses ones whose payload cannot be decoded", async () => {
    const { AttachmentSchema } = await import("../../protocol/index.js");
    const file = (contentUrl: string) =>
      AttachmentSchema.safeParse({ type: "text/plain", name: "a.txt", contentUrl }).success;
    expect(file("data:text/plain,hello%20world")).toBe(true);
    expect(file("data:text/plain;base64,aGVsbG8=")).toBe(true);
    expect(file("data:text/plain,%E0%A4%A")).toBe(false);
    expect(file("data:text/plain;base64,not base64!")).toBe(false);
  });
});
