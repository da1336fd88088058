import { describe, expect, it } from "vitest";
import {
  FlowWebhookSchema,
  contactMessage,
  contactName,
  historyDigest,
  localized,
  rapidProTakes,
  resultsSummary,
  splitText,
} from "../../server/adapters/rapidpro/mapper.js";
import { credentialProblem, escapeTemplate, type RpMessage } from "../../server/adapters/rapidpro/client.js";

const uuid = "3d2e8c1a-5b7f-4e21-9a0c-1f2e3d4c5b6a";
const parse = (body: unknown) => FlowWebhookSchema.parse(body);

describe("RapidPro flow webhook bodies", () => {
  it("reads the editor's default body (results with value and category only)", () => {
    const body = parse({
      contact: { name: "Amara Diallo", urn: "whatsapp:50255501234", uuid },
      flow: { name: "Help line", uuid: "b1a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" },
      results: {
        clientmessage: { category: "Has Text", value: "I want to talk to a person" },
        department: { category: "Other", value: "GTM_HIV_GENERAL" },
      },
    });
    expect(contactMessage(body)).toEqual({ text: "I want to talk to a person", attachments: [] });
    expect(contactName(body)).toBe("Amara Diallo");
    expect(resultsSummary(body)).toBe("department: GTM_HIV_GENERAL");
  });

  it("reads the legacy/resthook body: whole input text over the 640-cut result, attachments, the input id", () => {
    const long = "x".repeat(700);
    const body = parse({
      channel: { address: "+50255500000", name: "WhatsApp GT", uuid: "c0ffee00-0000-4000-8000-00000000c4a1" },
      contact: { name: "Amara", urn: "tel:+50255501234", uuid, language: "spa" },
      input: {
        attachments: [
          { content_type: "image/jpeg", url: "https://media.example/a%20b.jpg" },
          "audio/ogg:https://media.example/v.ogg",
        ],
        text: long,
        type: "msg",
        uuid: "0198aaaa-0000-7000-8000-000000000001",
      },
      results: { clientmessage: { value: long.slice(0, 640), category: "Has Text", name: "ClientMessage" } },
      run: { uuid: "0198aaaa-0000-7000-8000-0000000000ff" },
    });
    expect(contactMessage(body)).toEqual({
      text: long,
      id: "rapidpro:0198aaaa-0000-7000-8000-000000000001",
      attachments: [
        { type: "image/jpeg", name: "a b.jpg", contentUrl: "https://media.example/a%20b.jpg" },
        { type: "audio/ogg", name: "v.ogg", contentUrl: "https://media.example/v.ogg" },
      ],
    });
  });

  it("derives an idempotency key from the run and the result's time when the body has no message id", () => {
    const body = (savedAt: string) =>
      parse({
        contact: { name: "A", uuid },
        run: { uuid: "0198aaaa-0000-7000-8000-0000000000ff" },
        results: { clientmessage: { value: "yes", created_on: savedAt } },
      });
    const first = contactMessage(body("2026-03-01T10:15:02.200000Z")).id;
    expect(first).toMatch(/^rapidpro:/);
    expect(contactMessage(body("2026-03-01T10:15:02.200000Z")).id).toBe(first);
    expect(contactMessage(body("2026-03-01T10:16:40.000000Z")).id).not.toBe(first);
    // The default body carries neither: every call is its own message.
    expect(
      contactMessage(parse({ contact: { name: "A", uuid }, results: { clientmessage: { value: "yes" } } })).id,
    ).toBeUndefined();
  });

  it("reads the old mediator's custom body with a department", () => {
    const body = parse({
      contact: { name: "Amina", uuid },
      department: "Counselling",
      results: { clientmessage: { value: "hi" } },
    });
    expect(body.department).toBe("Counselling");
    expect(contactMessage(body).text).toBe("hi");
  });

  it("names a nameless contact by its URN, and refuses a body without a contact UUID", () => {
    expect(contactName(parse({ contact: { name: "", urn: "telegram:12345#amara", uuid } }))).toBe("12345");
    expect(contactName(parse({ contact: { name: null, urn: null, uuid } }))).toBe("Contact");
    expect(FlowWebhookSchema.safeParse({ contact: { name: "x" } }).success).toBe(false);
    expect(FlowWebhookSchema.safeParse({ contact: { uuid: "not-a-uuid" } }).success).toBe(false);
  });
});

describe("splitText", () => {
  it("keeps short text whole and splits long text on word boundaries, losing nothing", () => {
    expect(splitText("short", 640)).toEqual(["short"]);
    const words = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ");
    const parts = splitText(words, 640);
    expect(parts.length).toBeGreaterThan(1);
    // RapidPro trims each message, so the space at a cut is not sent: the parts joined with it give the text.
    expect(parts.join(" ")).toBe(words);
    for (const part of parts) {
      expect(Array.from(part).length).toBeLessThanOrEqual(640);
      expect(part).toBe(part.trim());
      expect(part.startsWith("word")).toBe(true);
    }
  });

  it("counts characters, never splits an emoji in half, and cuts a word longer than the limit", () => {
    const emoji = "😀".repeat(10);
    const parts = splitText(emoji, 4);
    expect(parts).toEqual(["😀😀😀😀", "😀😀😀😀", "😀😀"]);
    expect(splitText("abcdefghij", 4)).toEqual(["abcd", "efgh", "ij"]);
  });

  it("splits a broadcast's text by its escaped length: each part fits once every @ is doubled", () => {
    const atTwice = (char: string) => (char === "@" ? 2 : 1);
    const text = Array.from({ length: 60 }, (_, i) => `@user${i}`).join(" ");
    const parts = splitText(text, 50, atTwice);
    expect(parts.join(" ")).toBe(text);
    for (const part of parts) expect(Array.from(escapeTemplate(part)).length).toBeLessThanOrEqual(50);
    // Without the weight the escaped parts would be too long.
    expect(splitText(text, 50).some((part) => escapeTemplate(part).length > 50)).toBe(true);
    // A run of @ with no space is cut between two @, never inside an escaped pair.
    expect(splitText("@".repeat(7), 4, atTwice).map(escapeTemplate)).toEqual(["@@@@", "@@@@", "@@@@", "@@"]);
  });
});

describe("what RapidPro takes and what its 403 means", () => {
  it("takes Media.ALLOWED_CONTENT_TYPES exactly (case-sensitive)", () => {
    for (const type of ["image/apng", "image/avif", "image/gif", "image/jpeg", "image/png", "image/webp"]) {
      expect({ type, takes: rapidProTakes(type) }).toEqual({ type, takes: true });
    }
    for (const type of ["audio/mp4", "audio/ogg; codecs=opus", "video/mp4", "application/pdf"]) {
      expect({ type, takes: rapidProTakes(type) }).toEqual({ type, takes: true });
    }
    for (const type of ["image/svg+xml", "image/bmp", "image/tiff", "image/heic", "IMAGE/PNG", "text/plain"]) {
      expect({ type, takes: rapidProTakes(type) }).toEqual({ type, takes: false });
    }
  });

  it("tells missing credentials, a rejected token and a refused role apart by DRF's detail", () => {
    expect(credentialProblem("Authentication credentials were not provided.")).toEqual({
      log: expect.stringMatching(
        /^RapidPro received no credentials \(403: Authentication credentials were not provided\.\): is RAPIDPRO_TOKEN sent/,
      ) as unknown,
      ready: "RapidPro received no credentials (403): a proxy may drop the Authorization header",
    });
    expect(credentialProblem("Invalid token")).toEqual({
      log: "RapidPro rejects RAPIDPRO_TOKEN (403: Invalid token)",
      ready: "RapidPro rejects the API token (403)",
    });
    expect(credentialProblem("Invalid token header. No credentials provided.")).toMatchObject({
      log: expect.stringMatching(/^RapidPro rejects RAPIDPRO_TOKEN/) as unknown,
      ready: "RapidPro rejects the API token (403)",
    });
    expect(credentialProblem("You do not have permission to perform this action.")).toEqual({
      log: expect.stringMatching(/^RapidPro refuses RAPIDPRO_TOKEN's user/) as unknown,
      ready: "RapidPro refuses the API token's user (403): API tokens work for administrators and editors",
    });
    expect(credentialProblem(undefined)).toEqual({
      log: "RapidPro answers 403: check RAPIDPRO_TOKEN and RAPIDPRO_URL",
      ready: "RapidPro refuses the credentials (403)",
    });
  });
});

describe("hand-off digest", () => {
  it("prints the bot conversation oldest first with UTC times, and the flow results", () => {
    const digest = historyDigest(
      "Amina",
      (
        [
          { direction: "out", text: "How can I help?", created_on: "2026-03-01T10:14:55.000001Z" },
          { direction: "in", text: "I need someone", created_on: "2026-03-01T10:15:02.123456Z" },
          {
            direction: "in",
            text: "",
            attachments: [{ content_type: "image/jpeg", url: "https://x" }],
            created_on: "2026-03-01T10:16:00Z",
          },
        ] satisfies RpMessage[]
      ).reverse(),
      6,
      "department: Counselling",
    );
    expect(digest).toBe(
      [
        "Conversation with the bot before the hand-off (last 6 h):",
        "2026-03-01 10:14 UTC Bot: How can I help?",
        "2026-03-01 10:15 UTC Amina: I need someone",
        "2026-03-01 10:16 UTC Amina:  [image/jpeg]",
        "Flow results: department: Counselling",
      ].join("\n"),
    );
  });

  it("keeps the latest lines when the history is long, and is absent when there is nothing to say", () => {
    const many = Array.from({ length: 500 }, (_, i) => ({
      direction: "in" as const,
      text: `message ${i}`,
      created_on: `2026-03-01T10:${String(Math.floor(i / 60)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}Z`,
    }));
    const digest = historyDigest("A", many, 6, undefined, 500) ?? "";
    expect(digest.length).toBeLessThanOrEqual(500);
    expect(digest).toContain("message 499");
    expect(digest).not.toContain("message 0\n");
    expect(digest).toContain("…");
    expect(historyDigest("A", [], 6, undefined)).toBeUndefined();
  });
});

describe("localized texts", () => {
  it("picks the contact's language, then its primary subtag, then the default", () => {
    const texts = { es: "Le atiende: {agent}", "pt-br": "Atendido por: {agent}", spa: "Le atiende (spa): {agent}" };
    expect(localized(texts, "es", "default")).toBe("Le atiende: {agent}");
    expect(localized(texts, "es-MX", "default")).toBe("Le atiende: {agent}");
    expect(localized(texts, "pt-BR", "default")).toBe("Atendido por: {agent}");
    expect(localized(texts, "spa", "default")).toBe("Le atiende (spa): {agent}");
    expect(localized(texts, "fr", "default")).toBe("default");
  });
});
