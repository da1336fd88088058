import { describe, expect, it } from "vitest";
import { eventsFromPoll } from "../../server/adapters/salesforce/chat-mapper.js";
import { SseParser } from "../../server/adapters/salesforce/client.js";
import { eventsFromStream, routingAttributesOf, uuidFrom } from "../../server/adapters/salesforce/mapper.js";
import { ConfigError, loadConfig } from "../../server/config.js";
import { conversationFixture } from "../contract/store.contract.js";

const CONVERSATION = "3f0c6a52-8e61-4a8e-9d6b-1b7f7f3c2a90";
const agent = { id: "0055g00000AbCdE", name: "Jane Doe" };

/** The data of a stream event as salesforce-messaging.md §5.2 shows it: the payload a JSON string inside the JSON. */
function entryEvent(role: string, entryType: string, payload: Record<string, unknown>, identifier = "e5c2-1"): string {
  return JSON.stringify({
    channelPlatformKey: "v2/iamessage/ANON/9f1e",
    channelType: "embedded_messaging",
    channelAddressIdentifier: "0Mj5g000000XYZ",
    conversationId: CONVERSATION,
    conversationEntry: {
      identifier,
      entryType,
      senderDisplayName: role === "Agent" ? agent.name : "Automated Process",
      sender: { role, appType: role === "Agent" ? "agent" : "chatbot", subject: agent.id, clientIdentifier: "" },
      clientTimestamp: 1764000000456,
      transcriptedTimestamp: 1764000000512,
      relatedRecords: ["0Mw5g000000001"],
      entryPayload: JSON.stringify({ entryType, id: identifier, ...payload }),
    },
  });
}

describe("Salesforce Messaging stream mapping", () => {
  it("turns an agent's text and files into agent messages keyed by the entry id, and ignores the end user's echo", () => {
    const text = {
      abstractMessage: {
        messageType: "StaticContentMessage",
        id: "e5c2-1",
        staticContent: { formatType: "Text", text: "Hello Sara, how can I help?" },
      },
      messageReason: null,
    };
    expect(eventsFromStream("CONVERSATION_MESSAGE", entryEvent("Agent", "Message", text), CONVERSATION, {})).toEqual({
      events: [
        { type: "agentMessage", externalId: "e5c2-1", agent, text: "Hello Sara, how can I help?", attachments: [] },
      ],
      ended: false,
    });
    expect(eventsFromStream("CONVERSATION_MESSAGE", entryEvent("EndUser", "Message", text), CONVERSATION, {})).toEqual({
      events: [],
      ended: false,
    });
    const file = {
      abstractMessage: {
        messageType: "StaticContentMessage",
        id: "f-1",
        staticContent: {
          formatType: "Attachments",
          attachments: [{ id: "a1", name: "label.pdf", mimeType: "application/pdf", url: "https://files.example/a1" }],
        },
      },
    };
    expect(
      eventsFromStream("CONVERSATION_MESSAGE", entryEvent("Agent", "Message", file, "f-1"), CONVERSATION, {}).events,
    ).toEqual([
      {
        type: "agentMessage",
        externalId: "f-1",
        agent,
        text: "",
        attachments: [{ name: "label.pdf", type: "application/pdf", contentUrl: "https://files.example/a1" }],
      },
    ]);
  });

  it("maps routing, queue position, participants, typing and the end; ignores unknown events and other conversations", () => {
    const routed = entryEvent("Router", "RoutingResult", {
      routingType: "Initial",
      failureType: "None",
      estimatedWaitTime: { isEWTRequested: true, estimatedWaitTimeInSeconds: 90 },
    });
    expect(eventsFromStream("CONVERSATION_ROUTING_RESULT", routed, CONVERSATION, {}).events).toEqual([
      { type: "queued", estimatedWaitSeconds: 90 },
    ]);
    const failed = entryEvent("Router", "RoutingResult", {
      routingType: "Initial",
      failureType: "RoutingError",
      failureReason: "No agent is online.",
    });
    expect(eventsFromStream("CONVERSATION_ROUTING_RESULT", failed, CONVERSATION, {}).events).toEqual([
      { type: "noAgentAvailable", reason: "No agent is online." },
    ]);
    const position = JSON.stringify({ conversationId: CONVERSATION, queuePosition: { position: 2 } });
    expect(eventsFromStream("CONVERSATION_QUEUE_POSITION", position, CONVERSATION, {}).events).toEqual([
      { type: "queued", position: 2 },
    ]);
    const transfer = entryEvent("System", "ParticipantChanged", {
      entries: [
        { operation: "remove", displayName: "Jane Doe", participant: { role: "Agent", subject: agent.id } },
        { operation: "add", displayName: "Omar Ali", participant: { role: "Agent", subject: "0055g00000OmAr1" } },
        { operation: "add", displayName: "Guest", participant: { role: "EndUser", subject: "v2/iamessage/ANON/x" } },
      ],
    });
    expect(eventsFromStream("CONVERSATION_PARTICIPANT_CHANGED", transfer, CONVERSATION, {}).events).toEqual([
      { type: "agentLeft", agent },
      { type: "agentJoined", agent: { id: "0055g00000OmAr1", name: "Omar Ali" } },
    ]);
    const typing = entryEvent("Agent", "TypingStartedIndicator", {});
    expect(eventsFromStream("CONVERSATION_TYPING_STARTED_INDICATOR", typing, CONVERSATION, {}).events).toEqual([
      { type: "typing", agent, state: "start" },
    ]);
    const ended = entryEvent("System", "SessionStatusChanged", { sessionStatus: "Ended", sessionEndedByRole: "Agent" });
    expect(eventsFromStream("CONVERSATION_SESSION_STATUS_CHANGED", ended, CONVERSATION, { agent })).toEqual({
      events: [{ type: "closed", by: "agent", agent, reason: "agent_ended" }],
      ended: true,
    });
    const active = entryEvent("System", "SessionStatusChanged", { sessionStatus: "Active" });
    expect(eventsFromStream("CONVERSATION_SESSION_STATUS_CHANGED", active, CONVERSATION, {}).ended).toBe(false);
    expect(eventsFromStream("CONVERSATION_STREAMING_TOKEN", typing, CONVERSATION, {}).events).toEqual([]);
    expect(eventsFromStream("CONVERSATION_MESSAGE", "0", CONVERSATION, {}).events).toEqual([]);
    expect(eventsFromStream("CONVERSATION_TYPING_STARTED_INDICATOR", typing, "another-one", {}).events).toEqual([]);
  });

  it("reads frames split anywhere, with CRLF, comments and pings", () => {
    const parser = new SseParser();
    const wire =
      'id: 4829120\r\nevent: CONVERSATION_MESSAGE\r\ndata: {"a":1}\r\n\r\n: comment\n\nevent: ping\ndata: 0\n\n';
    const frames = [];
    for (let i = 0; i < wire.length; i += 3) frames.push(...parser.push(wire.slice(i, i + 3)));
    expect(frames).toEqual([
      { id: "4829120", event: "CONVERSATION_MESSAGE", data: '{"a":1}' },
      { id: undefined, event: "ping", data: "0" },
    ]);
  });

  it("derives the same lower-case v4 UUID from the same name, and routing attributes from the customer", () => {
    const id = uuidFrom("liaison:c1:m1:text");
    expect(id).toBe(uuidFrom("liaison:c1:m1:text"));
    expect(id).not.toBe(uuidFrom("liaison:c1:m2:text"));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const conversation = conversationFixture({
      subject: "Billing",
      customer: { id: "p1", name: "Sara Khan", firstName: "Sara", email: "sara@example.org", phone: "+923001234567" },
    });
    expect(routingAttributesOf(conversation, undefined)).toEqual({
      _firstName: "Sara",
      _email: "sara@example.org",
      _subject: "Billing",
    });
    expect(routingAttributesOf(conversation, { phone: "Phone__c", channel: "Channel__c" })).toEqual({
      Phone__c: "+923001234567",
      Channel__c: "web",
    });
  });
});

describe("Salesforce configuration", () => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
    return [];
  };
  const messaging = { SALESFORCE_MESSAGING_URL: "https://acme.my.salesforce-scrt.com" };

  it("needs the org id and the deployment, and a routing map that maps known fields", () => {
    expect(problems(messaging)).toEqual([
      "SALESFORCE_ORG_ID: the Salesforce desk needs the org id (00D…)",
      "SALESFORCE_MESSAGING_DEPLOYMENT: the Salesforce desk needs the API name of the Embedded Service deployment",
    ]);
    const complete = { ...messaging, SALESFORCE_ORG_ID: "00D5g000004XyZ1", SALESFORCE_MESSAGING_DEPLOYMENT: "Web" };
    expect(loadConfig(complete).DESK).toBe("salesforce");
    expect(problems({ ...complete, SALESFORCE_ROUTING_ATTRIBUTES: "{not json" })[0]).toMatch(
      /^SALESFORCE_ROUTING_ATTRIBUTES: must be a JSON object/,
    );
    expect(problems({ ...complete, SALESFORCE_ROUTING_ATTRIBUTES: '{"shoeSize":"Shoe__c"}' })[0]).toMatch(
      /^SALESFORCE_ROUTING_ATTRIBUTES: must map customer fields/,
    );
    expect(problems({ ...complete, SALESFORCE_ORG_ID: "12345" })[0]).toMatch(/^SALESFORCE_ORG_ID: must be/);
  });

  it("needs the legacy Chat API's endpoint, org, deployment and button", () => {
    const chat = { SALESFORCE_API: "chat", SALESFORCE_CHAT_URL: "https://d.la1-c1.salesforceliveagent.com/chat/rest" };
    expect(problems(chat)).toEqual([
      "SALESFORCE_ORG_ID: the Salesforce desk on the legacy Chat API needs the org id (00D…)",
      "SALESFORCE_DEPLOYMENT_ID: the Salesforce desk on the legacy Chat API needs the chat deployment's id",
      "SALESFORCE_BUTTON_ID: the Salesforce desk on the legacy Chat API needs the chat button's id",
    ]);
    const complete = {
      ...chat,
      SALESFORCE_ORG_ID: "00D5g000004XyZ1",
      SALESFORCE_DEPLOYMENT_ID: "572000000000001",
      SALESFORCE_BUTTON_ID: "573000000000001",
    };
    expect(loadConfig(complete)).toMatchObject({ DESK: "salesforce", SALESFORCE_API_VERSION: 60 });
    expect(
      problems({ SALESFORCE_API: "chat", SALESFORCE_MESSAGING_URL: "https://acme.my.salesforce-scrt.com" }),
    ).toEqual(["SALESFORCE_CHAT_URL: SALESFORCE_API=chat needs the org's Chat API endpoint"]);
  });
});

describe("Salesforce legacy Chat poll mapping", () => {
  const agentMessage = (text: string) => ({
    type: "ChatMessage",
    message: { name: "Jane Doe", text, agentId: "005A" },
  });

  it("numbers agent messages across answers, and again from the transcript after a reconnection", () => {
    const first = eventsFromPoll(
      {
        messages: [
          { type: "ChatRequestSuccess", message: { queuePosition: 2, estimatedWaitTime: 60 } },
          { type: "ChatEstablished", message: { name: "Jane Doe", userId: "005A" } },
          agentMessage("hello"),
          { type: "SomethingNew", message: {} },
        ],
        sequence: 4,
        offset: 100,
      },
      "s1",
      { agentMessages: 0, agent: undefined },
    );
    expect(first.events).toEqual([
      { type: "queued", position: 2, estimatedWaitSeconds: 60 },
      { type: "agentJoined", agent: { id: "005A", name: "Jane Doe" } },
      {
        type: "agentMessage",
        externalId: "s1:1",
        agent: { id: "005A", name: "Jane Doe" },
        text: "hello",
        attachments: [],
      },
    ]);
    // After ReconnectSession: the transcript holds three agent lines, the last two of them replayed (renumbered).
    const replay = eventsFromPoll(
      {
        messages: [
          {
            type: "ChasitorSessionData",
            message: {
              chatMessages: [
                { type: "Agent", content: "hello" },
                { type: "Chasitor", content: "hi" },
                { type: "Agent", content: "two" },
                { type: "Agent", content: "three" },
              ],
            },
          },
          agentMessage("two"),
          agentMessage("three"),
        ],
        sequence: 3,
        offset: 180,
      },
      "s1",
      { agentMessages: first.agentMessages + 1, agent: first.agent },
    );
    expect(replay.resync).toBe(true);
    expect(replay.events.map((e) => (e.type === "agentMessage" ? e.externalId : e.type))).toEqual(["s1:2", "s1:3"]);
    const ended = eventsFromPoll(
      { messages: [{ type: "ChatEnded", message: { reason: "agent" } }], sequence: 4 },
      "s1",
      { agentMessages: 3, agent: replay.agent },
    );
    expect(ended).toMatchObject({
      ended: true,
      events: [{ type: "closed", by: "agent", agent: { id: "005A", name: "Jane Doe" }, reason: "agent" }],
    });
  });
});
