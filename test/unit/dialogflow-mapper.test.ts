import { describe, expect, it } from "vitest";
import { ButtonRowsSchema, type ChatMessage } from "../../protocol/index.js";
import {
  cutText,
  cxOutputs,
  detectIntentBody,
  esOutputs,
  pressedButton,
  queryOf,
  replyKey,
  sessionIdOf,
  sessionPath,
  type MappingOptions,
} from "../../server/adapters/dialogflow/mapper.js";

const options: MappingOptions = { handoffIntents: new Set(["talk_to_agent", "handoff.request"]), keyBase: "m_1" };
const unkeyed: MappingOptions = { ...options, keyBase: undefined };

const chat = (overrides: Partial<ChatMessage> = {}): ChatMessage => ({
  type: "ChatMessage",
  id: "m_1",
  conversationId: "c_1",
  seq: 1,
  timestamp: "2026-11-21T10:00:00.000Z",
  from: { id: "p_1", name: "Sara" },
  to: [],
  text: "hello",
  attachments: [],
  tag: "",
  ...overrides,
});

describe("the session id", () => {
  it("is the conversation id when Dialogflow takes it, else a stable hash of 36 bytes", () => {
    expect(sessionIdOf("c_AAAAAAAAAAAAAAAAAAAAAA")).toBe("c_AAAAAAAAAAAAAAAAAAAAAA");
    expect(sessionIdOf("x".repeat(36))).toBe("x".repeat(36));
    const long = sessionIdOf("x".repeat(37));
    expect(long).toMatch(/^h_[\w-]{34}$/);
    expect(sessionIdOf("x".repeat(37))).toBe(long);
    expect(sessionIdOf("y".repeat(37))).not.toBe(long);
    // 36 characters but more bytes, or characters a path segment would need escaped.
    expect(Buffer.byteLength(sessionIdOf("é".repeat(20)))).toBe(36);
    expect(sessionIdOf("a/b")).toMatch(/^h_/);
  });

  it("names the session by edition, project, location and agent", () => {
    const where = { projectId: "acme-bot", location: undefined, agentId: undefined };
    expect(sessionPath("es", where, "s1")).toBe("v2/projects/acme-bot/agent/sessions/s1");
    expect(sessionPath("es", { ...where, location: "europe-west2" }, "s1")).toBe(
      "v2/projects/acme-bot/locations/europe-west2/agent/sessions/s1",
    );
    expect(sessionPath("cx", { ...where, agentId: "a-1" }, "s1")).toBe(
      "v3/projects/acme-bot/locations/global/agents/a-1/sessions/s1",
    );
    expect(sessionPath("cx", { ...where, location: "asia-south1", agentId: "a-1" }, "s1")).toBe(
      "v3/projects/acme-bot/locations/asia-south1/agents/a-1/sessions/s1",
    );
  });
});

describe("what Dialogflow is asked", () => {
  it("cuts a long text at a blank in its second half, else at 256, never inside a surrogate pair", () => {
    expect(cutText("short")).toBe("short");
    const words = `${"word ".repeat(60)}`;
    const cut = cutText(words);
    expect(cut.length).toBeLessThanOrEqual(256);
    expect(cut.endsWith("word")).toBe(true);
    expect(cutText("a".repeat(300))).toBe("a".repeat(256));
    // A blank early on is not worth losing most of the text for.
    expect(cutText(`a ${"b".repeat(300)}`)).toHaveLength(256);
    const emoji = `${"a".repeat(255)}😀tail`;
    expect(cutText(emoji)).toBe("a".repeat(255));
  });

  it("is a press's text, a message's text, an event for files alone or for the agent side closing", () => {
    const press = chat({ text: "Yes please" });
    Object.assign(press, { button: { id: "yes", text: "Yes please" } });
    expect(pressedButton(press)).toEqual({ id: "yes", text: "Yes please" });
    expect(queryOf({ kind: "message", message: press })).toEqual({ text: "Yes please" });
    // A malformed press is no press: its text is sent as any text would be.
    const odd = chat({ text: "hi" });
    Object.assign(odd, { button: { id: "", text: 3 } });
    expect(pressedButton(odd)).toBeUndefined();
    expect(queryOf({ kind: "message", message: odd })).toEqual({ text: "hi" });
    expect(queryOf({ kind: "message", message: chat({ text: "  hello  " }) })).toEqual({ text: "hello" });
    const file = { type: "image/png", name: "a.png", contentUrl: "https://files.example.org/a.png" };
    expect(queryOf({ kind: "message", message: chat({ text: " ", attachments: [file] }) })).toEqual({
      event: "liaison_file",
    });
    expect(queryOf({ kind: "message", message: chat({ text: "see", attachments: [file] }) })).toEqual({ text: "see" });
    expect(queryOf({ kind: "message", message: chat({ text: "" }) })).toBeUndefined();
    expect(queryOf({ kind: "event", name: "agent_closed" })).toEqual({ event: "liaison_agent_closed" });
  });

  it("in each edition's body", () => {
    expect(detectIntentBody("es", { text: "hi" }, "de")).toEqual({
      queryInput: { text: { text: "hi", languageCode: "de" } },
    });
    expect(detectIntentBody("es", { event: "liaison_agent_closed" }, "de")).toEqual({
      queryInput: { event: { name: "liaison_agent_closed", languageCode: "de" } },
    });
    expect(detectIntentBody("cx", { text: "hi" }, "de")).toEqual({
      queryInput: { text: { text: "hi" }, languageCode: "de" },
    });
    expect(detectIntentBody("cx", { event: "liaison_agent_closed" }, "de")).toEqual({
      queryInput: { event: { event: "liaison_agent_closed" }, languageCode: "de" },
    });
  });
});

describe("an ES answer", () => {
  // The shape of Dialogflow's own example of a hand-off intent's queryResult.
  const handoff = {
    responseId: "f0f0-1",
    queryResult: {
      queryText: "I want to talk to a person",
      languageCode: "en",
      action: "handoff.request",
      parameters: {},
      allRequiredParamsPresent: true,
      fulfillmentText: "Connecting you…",
      fulfillmentMessages: [{ text: { text: ["Connecting you…"] } }],
      intent: { name: "projects/acme-bot/agent/intents/9b1e", displayName: "talk_to_agent" },
      intentDetectionConfidence: 0.93,
    },
  };

  it("hands off after its replies, keyed by the message and their position", () => {
    expect(esOutputs(handoff, options)).toEqual([
      { type: "reply", externalId: "dialogflow:m_1:0", text: "Connecting you…", attachments: [] },
      { type: "handOff", reason: "intent talk_to_agent" },
    ]);
    expect(esOutputs(handoff, unkeyed)[0]).not.toHaveProperty("externalId");
  });

  it("uses fulfillmentText when there are no messages", () => {
    const answer = { queryResult: { fulfillmentText: "Only this", intent: { displayName: "x" } } };
    expect(esOutputs(answer, unkeyed)).toEqual([{ type: "reply", text: "Only this", attachments: [] }]);
  });

  it("shows the Default platform's messages, else the first platform's, never both", () => {
    const both = {
      queryResult: {
        fulfillmentMessages: [
          { text: { text: ["Default text"] } },
          { text: { text: ["Facebook text"] }, platform: "FACEBOOK" },
          { quickReplies: { quickReplies: ["A", "B"] }, platform: "FACEBOOK" },
        ],
      },
    };
    expect(esOutputs(both, unkeyed)).toEqual([{ type: "reply", text: "Default text", attachments: [] }]);
    // A hand-off is one on any platform's tab.
    const handOffElsewhere = {
      queryResult: {
        fulfillmentMessages: [
          ...both.queryResult.fulfillmentMessages,
          { payload: { handoff: true }, platform: "SLACK" },
        ],
      },
    };
    expect(esOutputs(handOffElsewhere, unkeyed).map((output) => output.type)).toEqual(["reply", "handOff"]);
    const platformOnly = {
      queryResult: {
        fulfillmentMessages: [
          { text: { text: ["Telegram text"] }, platform: "TELEGRAM" },
          { quickReplies: { title: "Choose", quickReplies: ["A", "B"] }, platform: "TELEGRAM" },
          { text: { text: ["Slack text"] }, platform: "SLACK" },
        ],
      },
    };
    expect(esOutputs(platformOnly, unkeyed)).toEqual([
      { type: "reply", text: "Telegram text", attachments: [] },
      {
        type: "reply",
        text: "Choose",
        buttons: [
          [
            { id: "A", text: "A" },
            { id: "B", text: "B" },
          ],
        ],
        attachments: [],
      },
    ]);
  });

  it("shows images and cards, a card's link button as a line of text", () => {
    const answer = {
      queryResult: {
        fulfillmentMessages: [
          { image: { imageUri: "https://cdn.example.org/img/map.png", accessibilityText: "map" } },
          {
            card: {
              title: "Premium plan",
              subtitle: "10 € a month",
              imageUri: "https://cdn.example.org/p.jpg?size=2",
              buttons: [{ text: "Details", postback: "https://example.org/premium" }, { text: "Buy" }],
            },
          },
          { image: { imageUri: "javascript:alert(1)" } },
        ],
      },
    };
    expect(esOutputs(answer, unkeyed)).toEqual([
      {
        type: "reply",
        text: "",
        attachments: [{ type: "image/png", name: "map.png", contentUrl: "https://cdn.example.org/img/map.png" }],
      },
      {
        type: "reply",
        text: "Premium plan\n10 € a month\nDetails: https://example.org/premium",
        buttons: [[{ id: "Buy", text: "Buy" }]],
        attachments: [{ type: "image/jpeg", name: "p.jpg", contentUrl: "https://cdn.example.org/p.jpg?size=2" }],
      },
    ]);
  });

  it("ends on endInteraction or end_conversation, unless it hands off", () => {
    const ending = { queryResult: { intent: { displayName: "bye", endInteraction: true } } };
    expect(esOutputs(ending, unkeyed)).toEqual([{ type: "end", reason: "endInteraction" }]);
    const diagnostic = { queryResult: { intent: { displayName: "bye" }, diagnosticInfo: { end_conversation: true } } };
    expect(esOutputs(diagnostic, unkeyed)).toEqual([{ type: "end", reason: "endInteraction" }]);
    const both = {
      queryResult: { ...handoff.queryResult, intent: { displayName: "talk_to_agent", endInteraction: true } },
    };
    expect(esOutputs(both, unkeyed).map((output) => output.type)).toEqual(["reply", "handOff"]);
  });

  it("takes the department from the payload, else from the parameters (department, then queue)", () => {
    const payload = {
      queryResult: {
        parameters: { department: "sales" },
        fulfillmentMessages: [{ payload: { handoff: true, queue: "billing", department: "  complaints " } }],
      },
    };
    expect(esOutputs(payload, unkeyed)).toEqual([{ type: "handOff", department: "complaints", reason: "payload" }]);
    const parameters = { queryResult: { ...handoff.queryResult, parameters: { queue: "vip", department: "" } } };
    expect(esOutputs(parameters, unkeyed).at(-1)).toEqual({
      type: "handOff",
      department: "vip",
      reason: "intent talk_to_agent",
    });
    // `handoff` must be true itself: a string or another flag is the bot author's own data.
    const notQuite = { queryResult: { fulfillmentMessages: [{ payload: { handoff: "true", department: "x" } }] } };
    expect(esOutputs(notQuite, unkeyed)).toEqual([]);
  });

  it("tolerates answers without a queryResult, or with fields of other types", () => {
    expect(esOutputs({}, options)).toEqual([]);
    expect(esOutputs(null, options)).toEqual([]);
    expect(esOutputs({ queryResult: { fulfillmentMessages: "no", intent: 3, action: {} } }, options)).toEqual([]);
  });
});

describe("a CX answer", () => {
  it("maps the messages a webhook may return: text, the hand-off with its metadata's queue", () => {
    const answer = {
      responseId: "r-1",
      queryResult: {
        text: "I need a specialist",
        languageCode: "en",
        parameters: { handoff: true },
        responseMessages: [
          { text: { text: ["Transferring you to a specialist."] } },
          { liveAgentHandoff: { metadata: { queue: "billing", reason: "user_request" } } },
        ],
        match: { matchType: "INTENT", intent: { displayName: "specialist" } },
      },
    };
    expect(cxOutputs(answer, options)).toEqual([
      {
        type: "reply",
        externalId: "dialogflow:m_1:0",
        text: "Transferring you to a specialist.",
        attachments: [],
      },
      { type: "handOff", department: "billing", reason: "liveAgentHandoff" },
    ]);
  });

  it("shows rich content: chips as buttons (a link chip as a line), descriptions, info, images, buttons", () => {
    const answer = {
      queryResult: {
        responseMessages: [
          { text: { text: ["Here you go"] } },
          {
            payload: {
              richContent: [
                [
                  {
                    type: "chips",
                    options: [{ text: "Billing" }, { text: "Sales" }, { text: "Docs", link: "https://example.org/d" }],
                  },
                ],
                [
                  { type: "description", title: "Opening hours", text: ["Mon–Fri 9–17", "Sat 10–14"] },
                  { type: "info", title: "Our site", actionLink: "https://example.org" },
                  { type: "image", rawUrl: "https://cdn.example.org/logo.webp", accessibilityText: "logo" },
                  { type: "button", text: "Call us", link: "tel:+4412345" },
                  { type: "button", text: "Start over" },
                  { type: "list", title: "unsupported" },
                ],
              ],
            },
          },
        ],
      },
    };
    expect(cxOutputs(answer, unkeyed)).toEqual([
      {
        type: "reply",
        text: "Here you go",
        buttons: [
          [
            { id: "Billing", text: "Billing" },
            { id: "Sales", text: "Sales" },
          ],
        ],
        attachments: [],
      },
      { type: "reply", text: "Docs: https://example.org/d", attachments: [] },
      { type: "reply", text: "Opening hours\nMon–Fri 9–17\nSat 10–14", attachments: [] },
      { type: "reply", text: "Our site\nhttps://example.org", attachments: [] },
      {
        type: "reply",
        text: "",
        attachments: [{ type: "image/webp", name: "logo.webp", contentUrl: "https://cdn.example.org/logo.webp" }],
      },
      // A button joins the text before it.
      {
        type: "reply",
        text: "Call us: tel:+4412345",
        buttons: [[{ id: "Start over", text: "Start over" }]],
        attachments: [],
      },
    ]);
  });

  it("keeps buttons within the protocol's rows of 10 and once per id", () => {
    const options15 = Array.from({ length: 15 }, (_, i) => ({ text: `Option ${i % 12}` }));
    const answer = {
      queryResult: { responseMessages: [{ payload: { richContent: [[{ type: "chips", options: options15 }]] } }] },
    };
    const [reply] = cxOutputs(answer, unkeyed);
    const buttons = reply?.type === "reply" ? reply.buttons : undefined;
    expect(buttons?.map((row) => row.length)).toEqual([10, 2]);
    expect(ButtonRowsSchema.safeParse(buttons).success).toBe(true);
  });

  it("ends on endInteraction and hands off on a hand-off intent found in match", () => {
    const ending = { queryResult: { responseMessages: [{ text: { text: ["Bye"] } }, { endInteraction: {} }] } };
    expect(cxOutputs(ending, unkeyed).at(-1)).toEqual({ type: "end", reason: "endInteraction" });
    const matched = {
      queryResult: { match: { intent: { displayName: "Talk_To_Agent" } }, parameters: { department: "sales" } },
    };
    expect(cxOutputs(matched, unkeyed)).toEqual([
      { type: "handOff", department: "sales", reason: "intent Talk_To_Agent" },
    ]);
  });
});

describe("reply keys", () => {
  it("stay within 128 characters", () => {
    expect(replyKey("m_1", 2)).toBe("dialogflow:m_1:2");
    const long = replyKey("x".repeat(128), 0);
    expect(long.length).toBeLessThanOrEqual(128);
    expect(long).toMatch(/^dialogflow:h:[\w-]+:0$/);
    expect(replyKey("x".repeat(128), 0)).toBe(long);
  });
});
