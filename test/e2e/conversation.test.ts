import type { Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type {
  Ack,
  AckFailure,
  ActivityOf,
  ActivityType,
  ChatMessage,
  ConversationInfo,
  EndAck,
  ErrorCode,
  InitResponse,
  JoinConversation,
  Message,
  OkAck,
  RegisterConnectorAck,
  SendAck,
  SendMessage,
} from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, nextEvent, postJson, request } from "../helpers/socket.js";

const GREETING = "Salaam! An agent will be with you shortly.";

const isChat = (message: Message): message is ChatMessage => message.type === "ChatMessage";
const isActivity =
  <T extends ActivityType>(type: T) =>
  (message: Message): message is ActivityOf<T> =>
    message.type === "ActivityMessage" && message.activityType === type;
const isWhisper = (message: Message): boolean => isChat(message) && message.tag === "whisper";
const chatTexts = (messages: readonly Message[]): string[] => messages.filter(isChat).map((message) => message.text);

/** A socket joined to a conversation, with everything it received as `messageArrived`. */
interface Peer {
  socket: Socket;
  info: ConversationInfo;
  messages: Message[];
  /** The first message (already received or still to come) matching `predicate`. */
  until<T extends Message>(predicate: (message: Message) => message is T): Promise<T>;
  /** The chat message with this text. */
  untilText(text: string): Promise<ChatMessage>;
}

interface Staff {
  id: string;
  name: string;
  role?: JoinConversation["role"];
}

/** Unwraps a success ack, failing the test with the error otherwise. */
function ok<T extends { ok: true }>(ack: Ack<T>): T {
  if (ack.ok !== true) throw new Error(`expected a success ack, got ${JSON.stringify(ack)}`);
  return ack;
}

/** Asserts an error ack with `code` (and, when given, a `details.fields` entry for `path`). */
function expectError(ack: unknown, code: ErrorCode, path?: string): void {
  expect(ack).toMatchObject({ ok: false, error: { code } });
  const { error } = ack as AckFailure;
  expect(typeof error.message).toBe("string");
  expect(error.message.length).toBeGreaterThan(0);
  if (path !== undefined) {
    const fields = (error.details?.fields ?? []) as { path: string; message: string }[];
    expect(fields.map((field) => field.path)).toContain(path);
    for (const field of fields) expect(typeof field.message).toBe("string");
  }
}

function lastSeq(peer: Peer): number {
  const seqs = [...peer.info.messages, ...peer.messages].flatMap((m) => (m.seq === undefined ? [] : [m.seq]));
  return Math.max(0, ...seqs);
}

/**
 * One gateway for a `describe`: started before its tests, closed after them; every socket opened through it is
 * closed after each test.
 */
function useGateway(overrides: Record<string, string> = {}) {
  let app: TestApp | undefined;
  const sockets: Socket[] = [];
  let counter = 0;

  beforeAll(async () => {
    app = await startTestApp({ GREETING_TEXT: GREETING, ...overrides });
  });
  afterAll(async () => {
    await app?.close();
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  const gateway = (): TestApp => {
    if (!app) throw new Error("gateway not started");
    return app;
  };

  const open = async (options: { apiKey?: boolean } = {}): Promise<Socket> => {
    const socket = await connect(gateway().url, options.apiKey ? { apiKey: gateway().apiKey } : {});
    sockets.push(socket);
    return socket;
  };

  /** A conversation as its customer opens it (web), or as a connector does (any other channel: with the API key). */
  const init = async (body: Record<string, unknown> = {}): Promise<InitResponse> => {
    counter += 1;
    const channel = typeof body.channel === "string" ? body.channel : "web";
    const res = await postJson(
      `${gateway().url}/api/customer/init`,
      {
        firstName: "Sara",
        lastName: "Khan",
        email: `sara.${counter}@example.com`,
        channel: "web",
        subject: "billing",
        ...body,
      },
      channel === "web" ? {} : { authorization: `Bearer ${gateway().apiKey}` },
    );
    expect(res.status).toBe(200);
    return res.body as InitResponse;
  };

  /** Joins `socket` and resolves with its `conversationInfo`; the message log starts before the join. */
  const join = async (socket: Socket, payload: JoinConversation): Promise<Peer> => {
    const log = collectMessages(socket);
    const infoArrived = nextEvent<ConversationInfo>(socket, "conversationInfo");
    infoArrived.catch(() => undefined);
    const ack = await request<Ack<OkAck>>(socket, "joinConversation", payload);
    expect(ack).toEqual({ ok: true });
    const info = await infoArrived;
    const until = <T extends Message>(predicate: (message: Message) => message is T): Promise<T> => {
      const found = log.messages.find(predicate);
      return found
        ? Promise.resolve(found)
        : nextEvent<Message>(socket, "messageArrived", predicate).then((m) => m as T);
    };
    return {
      socket,
      info,
      messages: log.messages,
      until,
      untilText: (text) => until((m): m is ChatMessage => isChat(m) && m.text === text),
    };
  };

  const customer = async (conversation: InitResponse, since?: number): Promise<Peer> =>
    join(await open(), {
      conversationId: conversation.conversationId,
      id: conversation.participant.id,
      name: conversation.participant.name,
      token: conversation.token,
      ...(since === undefined ? {} : { since }),
    });

  const staff = async (conversationId: string, member: Staff, since?: number): Promise<Peer> =>
    join(await open({ apiKey: true }), {
      conversationId,
      id: member.id,
      name: member.name,
      ...(member.role === undefined ? {} : { role: member.role }),
      ...(since === undefined ? {} : { since }),
    });

  return { gateway, open, init, join, customer, staff };
}

function send(socket: Socket, payload: SendMessage | Record<string, unknown>): Promise<Ack<SendAck>> {
  return request<Ack<SendAck>>(socket, "sendMessage", payload);
}

async function say(peer: Peer, text: string, extra: Partial<SendMessage> = {}): Promise<SendAck> {
  return ok(
    await send(peer.socket, { type: "ChatMessage", conversationId: peer.info.conversation.id, text, ...extra }),
  );
}

/** `sender` says `text`; resolves once every receiver has it. Ordering per socket makes it a barrier. */
async function marker(sender: Peer, text: string, ...receivers: Peer[]): Promise<void> {
  await say(sender, text);
  await Promise.all(receivers.map((receiver) => receiver.untilText(text)));
}

const AGENT: Staff = { id: "agent-17", name: "Ali", role: "agent" };
const SUPERVISOR: Staff = { id: "sup-1", name: "Hina", role: "supervisor" };

describe("joinConversation and conversationInfo", () => {
  const { init, open, customer, staff, gateway } = useGateway();

  it("gives a customer the conversation, its history (handOff, participantJoined, greetings) and its identity", async () => {
    const conversation = await init({ subject: "refunds", language: "ur-PK" });
    const sara = await customer(conversation);

    expect(sara.info.role).toBe("customer");
    expect(sara.info.participant).toEqual(conversation.participant);
    expect(sara.info.conversation).toEqual({
      id: conversation.conversationId,
      channel: "web",
      subject: "refunds",
      language: "ur-PK",
      state: "queued",
      customer: conversation.participant,
      participants: [{ ...conversation.participant, role: "customer" }],
      createdAt: conversation.timestamp,
    });
    expect(sara.info.messages.map((m) => [m.seq, m.type === "ActivityMessage" ? m.activityType : m.type])).toEqual([
      [1, "handOff"],
      [2, "participantJoined"],
      [3, "greetings"],
    ]);
    const [handOff, joined, greetings] = sara.info.messages;
    expect(handOff).toMatchObject({ info: { desk: "socket", subject: "refunds" } });
    expect(joined).toMatchObject({ info: { participant: conversation.participant, role: "customer" } });
    expect(greetings).toMatchObject({ info: { text: GREETING }, conversationId: conversation.conversationId });

    // The history is not delivered a second time as messageArrived: the next thing the customer hears is the agent.
    const agent = await staff(conversation.conversationId, AGENT);
    const agentJoined = await sara.until(isActivity("participantJoined"));
    expect(agentJoined).toMatchObject({
      seq: 4,
      info: { participant: { id: "agent-17", name: "Ali" }, role: "agent" },
    });
    expect(sara.messages).toEqual([agentJoined]);
    expect(agent.info.messages.at(-1)).toMatchObject({ seq: 4, activityType: "participantJoined" });
  });

  it("greets a customer only once, however many sockets they join with", async () => {
    const conversation = await init();
    const tab1 = await customer(conversation);
    const tab2 = await customer(conversation);
    expect(tab2.info.messages.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(tab2.info.messages.filter(isActivity("greetings"))).toHaveLength(1);
    expect(tab2.info.messages.filter(isActivity("participantJoined"))).toHaveLength(1);

    // Tab 1 hears nothing about tab 2 joining: the agent's marker is the first thing it receives.
    const agent = await staff(conversation.conversationId, AGENT);
    await marker(agent, "hello", tab1);
    expect(tab1.messages.filter(isActivity("greetings"))).toEqual([]);
    expect(
      tab1.messages.filter(isActivity("participantJoined")).map((m) => m.info.role),
      "only the agent's join",
    ).toEqual(["agent"]);
  });

  it("makes the conversation active when an agent joins, and tells the customer", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);

    expect(agent.info.role).toBe("agent");
    expect(agent.info.participant).toEqual({ id: "agent-17", name: "Ali" });
    expect(agent.info.conversation.state).toBe("active");
    expect(agent.info.conversation.agent).toEqual({ id: "agent-17", name: "Ali" });
    const joined = await sara.until(isActivity("participantJoined"));
    expect(joined.info).toEqual({ participant: { id: "agent-17", name: "Ali" }, role: "agent" });

    // A customer joining later sees the new state.
    const later = await customer(conversation);
    expect(later.info.conversation).toMatchObject({ state: "active", agent: { id: "agent-17", name: "Ali" } });
  });

  it("lets a supervisor join silently: no activity, no state change", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const supervisor = await staff(conversation.conversationId, SUPERVISOR);
    expect(supervisor.info.role).toBe("supervisor");
    expect(supervisor.info.conversation.state).toBe("queued");
    expect(supervisor.info.conversation.agent).toBeUndefined();

    await marker(supervisor, "supervisor here", sara);
    expect(sara.messages.filter((m) => m.type === "ActivityMessage")).toEqual([]);
    const later = await customer(conversation);
    expect(later.info.conversation.state).toBe("queued");
    expect(later.info.messages.filter(isActivity("participantJoined")).map((m) => m.info.role)).toEqual(["customer"]);
  });

  it("makes an API-key socket without a role a connector", async () => {
    const conversation = await init();
    const connector = await staff(conversation.conversationId, { id: "bridge", name: "Bridge" });
    expect(connector.info.role).toBe("connector");
    expect(connector.info.participant).toEqual({ id: "bridge", name: "Bridge" });
    expect(connector.info.conversation.state).toBe("queued");
  });

  it("refuses customers without the conversation's token", async () => {
    const first = await init();
    const second = await init();
    const socket = await open();
    const base = { conversationId: first.conversationId, id: first.participant.id, name: first.participant.name };

    expectError(await request(socket, "joinConversation", base), "unauthorized");
    expectError(await request(socket, "joinConversation", { ...base, token: "not-the-token" }), "unauthorized");
    expectError(await request(socket, "joinConversation", { ...base, token: second.token }), "unauthorized");
    expectError(await request(socket, "joinConversation", { ...base, role: "agent" }), "unauthorized");
    // ...and the refused socket really is not in the conversation.
    expectError(
      await send(socket, { type: "ChatMessage", conversationId: first.conversationId, text: "hi" }),
      "unauthorized",
    );
  });

  it("keeps a customer a customer even when the join claims another role", async () => {
    const conversation = await init();
    const socket = await open();
    const infoArrived = nextEvent<ConversationInfo>(socket, "conversationInfo");
    const ack = await request(socket, "joinConversation", {
      conversationId: conversation.conversationId,
      id: "agent-17",
      name: "Ali",
      token: conversation.token,
      role: "agent",
    });
    expect(ack).toEqual({ ok: true });
    const info = await infoArrived;
    expect(info.role).toBe("customer");
    expect(info.participant).toEqual(conversation.participant);
    expect(info.conversation.state).toBe("queued");
  });

  it("answers not_found for an unknown conversation and invalid_payload with the failing fields", async () => {
    const socket = await open({ apiKey: true });
    expectError(
      await request(socket, "joinConversation", {
        conversationId: "c_nope",
        id: "agent-17",
        name: "Ali",
        role: "agent",
      }),
      "not_found",
    );
    const conversation = await init();
    const base = { conversationId: conversation.conversationId, id: "agent-17", name: "Ali" };
    expectError(await request(socket, "joinConversation", { ...base, id: undefined }), "invalid_payload", "id");
    expectError(await request(socket, "joinConversation", { ...base, role: "admin" }), "invalid_payload", "role");
    expectError(await request(socket, "joinConversation", { ...base, since: -1 }), "invalid_payload", "since");
    expectError(await request(socket, "joinConversation", "c_123"), "invalid_payload");
  });

  it("refuses a wrong API key at the handshake", async () => {
    await expect(connect(gateway().url, { apiKey: "not-a-key" })).rejects.toThrow(/unauthorized/);
  });
});

describe("sendMessage and messageArrived", () => {
  const { init, open, customer, staff } = useGateway();

  it("delivers a customer's message to the agent with the ack's id, seq and timestamp, and does not echo it", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);

    const ack = await say(sara, "Where is my refund?", { from: { id: "agent-17", name: "Impostor" } });
    expect(ack.seq).toBe(lastSeq(sara) + 1);
    expect(new Date(ack.timestamp).toISOString()).toBe(ack.timestamp);

    const { refId: _account, ...received } = await agent.untilText("Where is my refund?");
    expect(received).toEqual({
      type: "ChatMessage",
      id: ack.id,
      conversationId: conversation.conversationId,
      seq: ack.seq,
      timestamp: ack.timestamp,
      from: conversation.participant,
      to: [],
      text: "Where is my refund?",
      attachments: [],
      tag: "",
    });

    const reply = await say(agent, "It is on its way.");
    const atCustomer = await sara.untilText("It is on its way.");
    expect(atCustomer).toMatchObject({ id: reply.id, seq: reply.seq, from: { id: "agent-17", name: "Ali" }, tag: "" });
    expect(chatTexts(sara.messages)).toEqual(["It is on its way."]);
    expect(agent.messages.filter((m) => m.id === reply.id)).toEqual([]);
  });

  it("keeps the client's own id on the stored message", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const ack = await say(sara, "with my id", { id: "client-msg-42" });
    expect(ack.id).toBe("client-msg-42");
    expect((await agent.untilText("with my id")).id).toBe("client-msg-42");
  });

  it("gives every participant the same order: seq 1, 2, 3... with no gaps or duplicates", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const supervisor = await staff(conversation.conversationId, SUPERVISOR);
    const start = lastSeq(supervisor);

    const acks = await Promise.all(
      Array.from({ length: 6 }, (_, i) => [say(sara, `c${i}`), say(agent, `a${i}`)]).flat(),
    );
    const seqs = acks.map((ack) => ack.seq ?? 0).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => start + i + 1));

    await supervisor.untilText("a5");
    await supervisor.untilText("c5");
    const seen = supervisor.messages.map((m) => m.seq);
    expect(seen).toEqual(seqs);
    // Each side sees the other's messages in the order they were sent, in seq order.
    await sara.untilText("a5");
    expect(chatTexts(sara.messages)).toEqual(["a0", "a1", "a2", "a3", "a4", "a5"]);
    await agent.untilText("c5");
    expect(chatTexts(agent.messages)).toEqual(["c0", "c1", "c2", "c3", "c4", "c5"]);
    const agentSeqs = agent.messages.map((m) => m.seq ?? 0);
    expect(agentSeqs).toEqual([...agentSeqs].sort((a, b) => a - b));
  });

  it("carries attachments with http(s) and data: URLs", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const attachments = [
      { type: "image/png", name: "receipt.png", contentUrl: "data:image/png;base64,iVBORw0KGgo=" },
      {
        type: "application/pdf",
        name: "invoice.pdf",
        contentUrl: "https://files.example.com/invoice.pdf",
        thumbnailUrl: "https://files.example.com/invoice.png",
      },
    ];
    await say(sara, "", { attachments });
    const received = await agent.until(
      (m): m is ChatMessage => isChat(m) && m.attachments.length > 0 && m.from.id === conversation.participant.id,
    );
    expect(received.attachments).toEqual(attachments);

    const ten = Array.from({ length: 10 }, (_, i) => ({
      type: "image/png",
      name: `p${i}.png`,
      contentUrl: `https://files.example.com/p${i}.png`,
    }));
    expect((await say(sara, "ten files", { attachments: ten })).seq).toBeGreaterThan(0);
  });

  it("refuses file: URLs, more than 10 attachments, empty messages and over-long text", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const base = { type: "ChatMessage", conversationId: conversation.conversationId };
    const file = { type: "text/plain", name: "passwd", contentUrl: "file:///etc/passwd" };

    expectError(
      await send(sara.socket, { ...base, text: "", attachments: [file] }),
      "invalid_payload",
      "attachments.0.contentUrl",
    );
    expectError(
      await send(sara.socket, {
        ...base,
        text: "thumb",
        attachments: [{ ...file, contentUrl: "https://example.com/a.txt", thumbnailUrl: "file:///etc/shadow" }],
      }),
      "invalid_payload",
      "attachments.0.thumbnailUrl",
    );
    const eleven = Array.from({ length: 11 }, (_, i) => ({
      type: "image/png",
      name: `p${i}.png`,
      contentUrl: `https://files.example.com/p${i}.png`,
    }));
    expectError(await send(sara.socket, { ...base, text: "x", attachments: eleven }), "invalid_payload", "attachments");
    expectError(await send(sara.socket, { ...base, text: "   " }), "invalid_payload", "text");
    expectError(await send(sara.socket, { ...base, text: "x".repeat(4097) }), "invalid_payload", "text");
    expectError(await send(sara.socket, { ...base, text: "x", tag: "secret" }), "invalid_payload", "tag");
    expectError(await send(sara.socket, { text: "no conversation" }), "invalid_payload", "conversationId");

    // None of the refused messages reached the agent; a message at the limit does.
    const atLimit = "y".repeat(4096);
    await say(sara, atLimit);
    await agent.untilText(atLimit);
    expect(chatTexts(agent.messages)).toEqual([atLimit]);
  });

  it("refuses sockets that have not joined, and unknown conversations", async () => {
    const conversation = await init();
    const stranger = await open();
    expectError(
      await send(stranger, { type: "ChatMessage", conversationId: conversation.conversationId, text: "hi" }),
      "unauthorized",
    );
    const sara = await customer(conversation);
    expectError(await send(sara.socket, { type: "ChatMessage", conversationId: "c_unknown", text: "hi" }), "not_found");
  });

  it("delivers an agent's edit as a new message that replaces the original; only the author may edit", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const original = await say(agent, "Your refund is 10 USD.");
    const edit = await say(agent, "Your refund is 12 USD.", { replaces: original.id });
    expect(edit.id).not.toBe(original.id);
    expect(edit.seq).toBe((original.seq ?? 0) + 1);
    expect(await sara.untilText("Your refund is 12 USD.")).toMatchObject({ id: edit.id, replaces: original.id });

    const base = { type: "ChatMessage", conversationId: conversation.conversationId, text: "mine now" };
    expectError(await send(sara.socket, { ...base, replaces: original.id }), "forbidden");
    expectError(await send(agent.socket, { ...base, replaces: "m_does_not_exist" }), "invalid_payload", "replaces");
  });
});

describe("whispers", () => {
  const { init, customer, staff } = useGateway();

  it("reach agents and supervisors only: never a customer or connector socket, never a customer's history", async () => {
    const conversation = await init();
    const id = conversation.conversationId;
    const tab1 = await customer(conversation);
    const tab2 = await customer(conversation);
    const connector = await staff(id, { id: "bridge", name: "Bridge" });
    const agent = await staff(id, AGENT);
    const supervisor = await staff(id, SUPERVISOR);

    const fromAgent = await say(agent, "VIP customer, be nice", { tag: "whisper" });
    expect(await supervisor.untilText("VIP customer, be nice")).toMatchObject({ id: fromAgent.id, tag: "whisper" });
    const fromSupervisor = await say(supervisor, "Offer the voucher", { tag: "whisper" });
    expect(await agent.untilText("Offer the voucher")).toMatchObject({ id: fromSupervisor.id, tag: "whisper" });

    await marker(agent, "How can I help?", tab1, tab2, connector, supervisor);
    for (const peer of [tab1, tab2, connector]) expect(peer.messages.filter(isWhisper)).toEqual([]);

    // History: late customer and connector joins see no whispers, a late supervisor sees both.
    const lateCustomer = await customer(conversation);
    expect(chatTexts(lateCustomer.info.messages)).toEqual(["How can I help?"]);
    const lateConnector = await staff(id, { id: "bridge-2", name: "Bridge 2" });
    expect(chatTexts(lateConnector.info.messages)).toEqual(["How can I help?"]);
    const lateSupervisor = await staff(id, { id: "sup-2", name: "Zara", role: "supervisor" });
    expect(chatTexts(lateSupervisor.info.messages)).toEqual([
      "VIP customer, be nice",
      "Offer the voucher",
      "How can I help?",
    ]);
  });

  it("answers forbidden when a customer or a connector tries to whisper", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const connector = await staff(conversation.conversationId, { id: "bridge", name: "Bridge" });
    const agent = await staff(conversation.conversationId, AGENT);
    const whisper = { type: "ChatMessage", conversationId: conversation.conversationId, text: "psst", tag: "whisper" };
    expectError(await send(sara.socket, whisper), "forbidden");
    expectError(await send(connector.socket, whisper), "forbidden");

    await marker(sara, "after the refusals", agent);
    expect(chatTexts(agent.messages)).toEqual(["after the refusals"]);
  });
});

describe("idempotent resend", () => {
  const { init, customer, staff } = useGateway();

  it("acknowledges a resend with the same id again, with the same seq, and delivers it once", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);

    const first = await say(sara, "only once", { id: "resend-1" });
    const again = await say(sara, "only once", { id: "resend-1" });
    expect(again).toEqual(first);

    const next = await say(sara, "the next one");
    expect(next.seq).toBe((first.seq ?? 0) + 1);
    await agent.untilText("the next one");
    expect(agent.messages.filter((m) => m.id === "resend-1")).toHaveLength(1);
    expect(chatTexts(agent.messages)).toEqual(["only once", "the next one"]);
  });

  it("takes a resend whose objects list their keys in another order as the same message", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const file = { type: "image/png", name: "receipt.png", contentUrl: "https://files.example.com/receipt.png" };
    const payload = { type: "ChatMessage", conversationId: conversation.conversationId, id: "resend-3", text: "here" };
    const first = await send(sara.socket, { ...payload, attachments: [file], to: [{ id: "agent-9", name: "Ana" }] });
    const again = await send(sara.socket, {
      ...payload,
      attachments: [{ contentUrl: file.contentUrl, name: file.name, type: file.type }],
      to: [{ name: "Ana", id: "agent-9" }],
    });
    expect(first.ok).toBe(true);
    expect(again).toEqual(first);
  });

  it("answers conflict when the same id comes back with different content", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    await say(sara, "original", { id: "resend-2" });
    expectError(
      await send(sara.socket, {
        type: "ChatMessage",
        conversationId: conversation.conversationId,
        id: "resend-2",
        text: "changed",
      }),
      "conflict",
    );
    // The same text to other recipients: still a different message.
    expectError(
      await send(sara.socket, {
        type: "ChatMessage",
        conversationId: conversation.conversationId,
        id: "resend-2",
        text: "original",
        to: [{ id: "agent-9", name: "Someone" }],
      }),
      "conflict",
    );
    await marker(sara, "marker", agent);
    expect(chatTexts(agent.messages)).toEqual(["original", "marker"]);
  });
});

describe("typing", () => {
  const { init, customer, staff } = useGateway();

  const typing = (peer: Peer, state: string): Promise<Ack<SendAck>> =>
    send(peer.socket, {
      type: "ActivityMessage",
      activityType: "typing",
      conversationId: peer.info.conversation.id,
      info: { state },
    });

  it("relays typing to the others without a seq, and never records it", async () => {
    const conversation = await init();
    const tab1 = await customer(conversation);
    const tab2 = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const before = lastSeq(agent);

    const ack = ok(await typing(tab1, "start"));
    expect(ack.seq).toBeUndefined();
    expect(ack.id.length).toBeGreaterThan(0);
    expect(new Date(ack.timestamp).toISOString()).toBe(ack.timestamp);

    const atAgent = await agent.until(isActivity("typing"));
    expect(atAgent.seq).toBeUndefined();
    expect(atAgent.info).toEqual({ participant: conversation.participant, state: "start" });
    expect(atAgent.conversationId).toBe(conversation.conversationId);
    expect((await tab2.until(isActivity("typing"))).info.state).toBe("start");

    ok(await typing(agent, "stop"));
    const atCustomer = await tab1.until(isActivity("typing"));
    expect(atCustomer.info).toEqual({ participant: { id: "agent-17", name: "Ali" }, state: "stop" });

    // The sender gets no echo, the typing took no seq, and nobody's history holds it.
    const next = await say(agent, "done typing");
    expect(next.seq).toBe(before + 1);
    await tab1.untilText("done typing");
    expect(tab1.messages.filter(isActivity("typing")).map((m) => m.info.participant.id)).toEqual(["agent-17"]);
    expect(agent.messages.filter(isActivity("typing")).map((m) => m.info.participant.id)).toEqual([
      conversation.participant.id,
    ]);
    const late = await staff(conversation.conversationId, SUPERVISOR);
    expect(late.info.messages.filter(isActivity("typing"))).toEqual([]);
    expect(late.info.messages.at(-1)?.seq).toBe(next.seq);
  });

  it("refuses a typing state other than start or stop", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    expectError(await typing(sara, "thinking"), "invalid_payload", "info.state");
  });
});

describe("multi-tab delivery", () => {
  const { init, customer, staff } = useGateway();

  it("gives the sender's other tabs its messages, and every tab the agent's", async () => {
    const conversation = await init();
    const tab1 = await customer(conversation);
    const tab2 = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);

    const sent = await say(tab1, "sent from tab 1");
    expect(await tab2.untilText("sent from tab 1")).toMatchObject({ id: sent.id, seq: sent.seq });
    expect(await agent.untilText("sent from tab 1")).toMatchObject({ id: sent.id, seq: sent.seq });

    const reply = await say(agent, "seen in both tabs");
    expect(await tab1.untilText("seen in both tabs")).toMatchObject({ id: reply.id });
    expect(await tab2.untilText("seen in both tabs")).toMatchObject({ id: reply.id });
    expect(chatTexts(tab1.messages)).toEqual(["seen in both tabs"]);
    expect(chatTexts(tab2.messages)).toEqual(["sent from tab 1", "seen in both tabs"]);
  });
});

describe("resume with since", () => {
  const { init, customer, staff } = useGateway();

  it("gives a re-joining socket exactly the messages it missed, in order, then carries on live", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    await sara.until(isActivity("participantJoined"));
    const seen = lastSeq(sara);

    const gone = nextEvent(sara.socket, "disconnect");
    sara.socket.close();
    await gone;
    const missed: SendAck[] = [];
    for (const text of ["missed 1", "missed 2", "missed 3"]) missed.push(await say(agent, text));

    const back = await customer(conversation, seen);
    expect(back.info.messages.map((m) => [m.id, m.seq])).toEqual(missed.map((ack) => [ack.id, ack.seq]));
    expect(chatTexts(back.info.messages)).toEqual(["missed 1", "missed 2", "missed 3"]);
    expect(back.info.conversation.state).toBe("active");

    const live = await say(agent, "welcome back");
    expect(await back.untilText("welcome back")).toMatchObject({ seq: (missed[2]?.seq ?? 0) + 1, id: live.id });
    expect(back.messages.map((m) => m.id)).toEqual([live.id]);
  });

  it("sends the full history without since, and nothing when since is the latest seq", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    await say(agent, "one");
    const latest = await say(agent, "two");
    await sara.untilText("two");

    const full = await customer(conversation);
    expect(full.info.messages.map((m) => m.seq)).toEqual(Array.from({ length: latest.seq ?? 0 }, (_, i) => i + 1));
    const upToDate = await customer(conversation, latest.seq);
    expect(upToDate.info.messages).toEqual([]);
  });
});

describe("history pages", () => {
  const { init, open, join, customer, staff } = useGateway();

  /** Joins `socket` again and again, each time with `since` set to the last page's `lastSeq`, until no more follow. */
  async function pageThrough(socket: Socket, payload: JoinConversation, between?: () => Promise<void>) {
    const pages: ConversationInfo[] = [];
    let peer = await join(socket, payload);
    pages.push(peer.info);
    while (peer.info.hasMore) {
      await between?.();
      peer = await join(socket, { ...payload, since: peer.info.lastSeq });
      pages.push(peer.info);
    }
    return { pages, last: peer, messages: pages.flatMap((page) => page.messages) };
  }

  const oneToN = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

  it("sends 200 messages and hasMore to a join of a long conversation; pages with since reach the end, each message once, in order, then the live feed", async () => {
    const conversation = await init();
    const id = conversation.conversationId;
    const agent = await staff(id, AGENT);
    for (let i = 1; i <= 230; i++) await say(agent, `backlog ${i}`);

    const socket = await open();
    const credentials = {
      conversationId: id,
      id: conversation.participant.id,
      name: "Sara",
      token: conversation.token,
    };
    const first = await join(socket, credentials);
    expect(first.info.messages).toHaveLength(200);
    expect(first.info).toMatchObject({ hasMore: true, lastSeq: 200 });
    expect(first.info.messages.map((m) => m.seq)).toEqual(oneToN(200));

    // Whatever is recorded while the customer pages comes in a page, not live (and not twice).
    let during = 0;
    const { pages, last, messages } = await pageThrough(socket, { ...credentials, since: 0, limit: 100 }, async () => {
      during += 1;
      await say(agent, `while paging ${during}`);
    });
    const head = 1 + 1 + 230 + 2 + during; // hand-off, agent joined, backlog, customer joined + greetings, meanwhile
    expect(pages.map((page) => page.hasMore)).toEqual([...pages.slice(1).map(() => true), false]);
    expect(pages.slice(0, -1).every((page) => page.messages.length === 100)).toBe(true);
    expect(messages.map((m) => m.seq)).toEqual(oneToN(head));
    expect(chatTexts(messages).filter((text) => text.startsWith("while paging"))).toHaveLength(during);
    expect(last.info.lastSeq).toBe(head);

    const live = await say(agent, "live again");
    expect(await last.untilText("live again")).toMatchObject({ id: live.id, seq: head + 1 });
    expect(last.messages.map((m) => m.seq)).toEqual([head + 1]);
  });

  it("gives a customer pages without whispers that still move on through them, never looping or skipping", async () => {
    const conversation = await init();
    const id = conversation.conversationId;
    const agent = await staff(id, AGENT);
    for (let i = 1; i <= 7; i++) await say(agent, `whisper ${i}`, { tag: "whisper" });
    await say(agent, "visible 1");
    for (let i = 8; i <= 10; i++) await say(agent, `whisper ${i}`, { tag: "whisper" });
    await say(agent, "visible 2");
    for (let i = 11; i <= 13; i++) await say(agent, `whisper ${i}`, { tag: "whisper" });

    const credentials = {
      conversationId: id,
      id: conversation.participant.id,
      name: "Sara",
      token: conversation.token,
    };
    const { pages, last, messages } = await pageThrough(await open(), { ...credentials, limit: 3 });
    const all = (await pageThrough(await open({ apiKey: true }), { conversationId: id, ...AGENT, limit: 3 })).messages;

    expect(messages.filter(isWhisper)).toEqual([]);
    expect(messages.map((m) => m.seq)).toEqual(all.filter((m) => !isWhisper(m)).map((m) => m.seq));
    expect(chatTexts(messages)).toEqual(["visible 1", "visible 2"]);
    // A page of whispers only is empty for the customer, and its lastSeq still moves the next join on.
    expect(pages.some((page) => page.messages.length === 0 && page.hasMore)).toBe(true);
    const lastSeqs = pages.map((page) => page.lastSeq);
    expect(lastSeqs).toEqual([...lastSeqs].sort((a, b) => a - b));
    expect(new Set(lastSeqs).size).toBe(lastSeqs.length);
    expect(last.info.lastSeq).toBe(all.at(-1)?.seq);

    const live = await say(agent, "live for the customer");
    await say(agent, "whisper after", { tag: "whisper" });
    await marker(agent, "and the next", last);
    expect(last.messages.map((m) => m.id)).toEqual([live.id, (await last.untilText("and the next")).id]);
  });

  it("answers a page that reaches the end with hasMore false and lastSeq the head, also when since is the head", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    expect(sara.info).toMatchObject({ hasMore: false, lastSeq: 3 });
    const exact = await customer(conversation, 0);
    expect(exact.info).toMatchObject({ hasMore: false, lastSeq: 3 });
    const upToDate = await customer(conversation, 3);
    expect(upToDate.info).toMatchObject({ messages: [], hasMore: false, lastSeq: 3 });
  });

  it("refuses a limit that is not 1 to 1,000 with invalid_payload", async () => {
    const conversation = await init();
    const socket = await open({ apiKey: true });
    const base = { conversationId: conversation.conversationId, ...AGENT };
    for (const limit of [0, -5, 1001, 2.5, "10", null]) {
      expectError(await request(socket, "joinConversation", { ...base, limit }), "invalid_payload", "limit");
    }
    const exactLimit = await join(socket, { ...base, limit: 1 });
    expect(exactLimit.info.messages).toHaveLength(1);
    expect(exactLimit.info).toMatchObject({ hasMore: true, lastSeq: 1 });
    const most = await join(socket, { ...base, limit: 1000 });
    expect(most.info.hasMore).toBe(false);
  });
});

describe("endConversation", () => {
  const { init, open, customer, staff } = useGateway();

  it("ends once: every joined socket (the ender too) gets endOfConversation, a second end is alreadyEnded", async () => {
    const conversation = await init();
    const tab1 = await customer(conversation);
    const tab2 = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const supervisor = await staff(conversation.conversationId, SUPERVISOR);

    const ack = await request<Ack<EndAck>>(tab1.socket, "endConversation", {
      conversationId: conversation.conversationId,
      reason: "resolved",
    });
    expect(ack).toEqual({ ok: true });
    const endedBy = { ...conversation.participant, role: "customer" };
    for (const peer of [tab1, tab2, agent, supervisor]) {
      const end = await peer.until(isActivity("endOfConversation"));
      expect(end.info).toEqual({ reason: "resolved", endedBy });
      expect(end.seq).toBeGreaterThan(0);
    }

    expect(await request(agent.socket, "endConversation", { conversationId: conversation.conversationId })).toEqual({
      ok: true,
      alreadyEnded: true,
    });

    const late = await staff(conversation.conversationId, { id: "sup-2", name: "Zara", role: "supervisor" });
    expect(late.info.conversation.state).toBe("ended");
    expect(late.info.conversation.endedAt).toEqual(expect.any(String));
    expect(late.info.messages.filter(isActivity("endOfConversation"))).toHaveLength(1);
    expect(late.info.messages.at(-1)).toMatchObject({ activityType: "endOfConversation" });
  });

  it("refuses messages and typing after the end with conversation_ended", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    ok(await request<Ack<EndAck>>(agent.socket, "endConversation", { conversationId: conversation.conversationId }));
    const end = await sara.until(isActivity("endOfConversation"));
    expect(end.info.endedBy).toEqual({ id: "agent-17", name: "Ali", role: "agent" });
    expect(end.info.reason.length).toBeGreaterThan(0);

    const base = { conversationId: conversation.conversationId };
    expectError(await send(sara.socket, { ...base, type: "ChatMessage", text: "hello?" }), "conversation_ended");
    expectError(await send(agent.socket, { ...base, type: "ChatMessage", text: "bye" }), "conversation_ended");
    expectError(
      await send(sara.socket, { ...base, type: "ActivityMessage", activityType: "typing", info: { state: "start" } }),
      "conversation_ended",
    );

    // Re-joining an ended conversation shows it ended, with no new greeting or join recorded.
    const again = await customer(conversation);
    expect(again.info.conversation.state).toBe("ended");
    expect(again.info.messages.at(-1)).toMatchObject({ activityType: "endOfConversation" });
    expect(again.info.messages.filter(isActivity("greetings"))).toHaveLength(1);
  });

  it("refuses sockets that have not joined, unknown conversations and invalid payloads", async () => {
    const conversation = await init();
    const stranger = await open();
    expectError(
      await request(stranger, "endConversation", { conversationId: conversation.conversationId }),
      "unauthorized",
    );
    const agent = await staff(conversation.conversationId, AGENT);
    expectError(await request(agent.socket, "endConversation", { conversationId: "c_unknown" }), "not_found");
    expectError(await request(agent.socket, "endConversation", {}), "invalid_payload", "conversationId");
    // Still open after all that.
    const sara = await customer(conversation);
    expect(sara.info.conversation.state).toBe("active");
  });
});

describe("leaveConversation", () => {
  const { init, open, customer, staff } = useGateway();

  it("announces the agent's departure, puts the conversation back in the queue and stops delivery", async () => {
    const first = await init();
    const second = await init();
    const sara = await customer(first);
    const bilal = await customer(second);
    const agent = await staff(first.conversationId, AGENT);
    await sara.until(isActivity("participantJoined"));

    expect(await request(agent.socket, "leaveConversation", { conversationId: first.conversationId })).toEqual({
      ok: true,
    });
    const left = await sara.until(isActivity("participantLeft"));
    expect(left.info).toEqual({ participant: { id: "agent-17", name: "Ali" }, role: "agent" });
    const later = await customer(first);
    expect(later.info.conversation.state).toBe("queued");
    expect(later.info.conversation.agent).toBeUndefined();

    // The same socket, now in another conversation only, no longer hears the first one.
    const inSecond = await request(agent.socket, "joinConversation", {
      conversationId: second.conversationId,
      id: "agent-17",
      name: "Ali",
      role: "agent",
    });
    expect(inSecond).toEqual({ ok: true });
    await say(sara, "anyone there?");
    await say(bilal, "second conversation");
    await agent.untilText("second conversation");
    expect(chatTexts(agent.messages)).not.toContain("anyone there?");

    // Another agent can take the conversation.
    const other = await staff(first.conversationId, { id: "agent-9", name: "Usman", role: "agent" });
    expect(other.info.conversation).toMatchObject({ state: "active", agent: { id: "agent-9", name: "Usman" } });
    const joined = await sara.until(
      (m): m is ActivityOf<"participantJoined"> =>
        isActivity("participantJoined")(m) && m.info.participant.id === "agent-9",
    );
    expect(joined.info.role).toBe("agent");
  });

  it("answers not_found for a conversation the socket has not joined", async () => {
    const conversation = await init();
    const socket = await open({ apiKey: true });
    expectError(
      await request(socket, "leaveConversation", { conversationId: conversation.conversationId }),
      "not_found",
    );
  });
});

describe("protocol errors", () => {
  const { init, open, customer, staff } = useGateway();

  it("answers not_found to an unknown event that asks for an ack", async () => {
    const socket = await open();
    expectError(await request(socket, "deleteEverything", { all: true }), "not_found");
  });

  it("keeps the socket usable after refused events", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    expectError(await send(sara.socket, { type: "Nonsense" }), "invalid_payload");
    expectError(await request(sara.socket, "whoAmI"), "not_found");
    await marker(sara, "still here", agent);
  });
});

describe("payload limits", () => {
  const { init, customer, staff } = useGateway({ MAX_PAYLOAD_BYTES: "20000" });

  it("answers payload_too_large to an event above MAX_PAYLOAD_BYTES and carries on", async () => {
    const conversation = await init();
    const sara = await customer(conversation);
    const agent = await staff(conversation.conversationId, AGENT);
    const base = { type: "ChatMessage", conversationId: conversation.conversationId };
    expectError(await send(sara.socket, { ...base, text: "z".repeat(25_000) }), "payload_too_large");
    expectError(
      await send(sara.socket, {
        ...base,
        text: "",
        attachments: [
          { type: "image/png", name: "big.png", contentUrl: `data:image/png;base64,${"A".repeat(25_000)}` },
        ],
      }),
      "payload_too_large",
    );
    await marker(sara, "small enough", agent);
    expect(chatTexts(agent.messages)).toEqual(["small enough"]);
  });
});

describe("registerConnector and connector acks of messageArrived", () => {
  const { init, open, staff } = useGateway({ CONNECTOR_ACK_TIMEOUT_MS: "300" });

  it("registers an API-key socket for its channel; id must equal channel", async () => {
    const customerSocket = await open();
    expectError(
      await request(customerSocket, "registerConnector", { id: "sms", name: "SMS", channel: "sms" }),
      "unauthorized",
    );
    const socket = await open({ apiKey: true });
    expectError(
      await request(socket, "registerConnector", { id: "x", name: "SMS", channel: "sms" }),
      "invalid_payload",
      "id",
    );
    const ack = await request<Ack<RegisterConnectorAck>>(socket, "registerConnector", {
      id: "sms",
      name: "SMS gateway",
      channel: "sms",
    });
    expect(ack).toEqual({ ok: true, connector: { id: "sms", name: "SMS gateway", channel: "sms" } });
  });

  it("delivers agent replies to the connector with the customer's refId, again with the same id until acked", async () => {
    const refId = "+923001112233";
    const conversation = await init({ channel: "sms-e2e", refId, email: undefined });
    const socket = await open({ apiKey: true });
    const offers: ChatMessage[] = [];
    socket.on("messageArrived", (message: Message, ack: (res: OkAck) => void) => {
      if (isChat(message)) {
        offers.push(message);
        if (offers.length === 1) return; // the first offer goes unacknowledged
      }
      ack({ ok: true });
    });
    let replies = 0;
    const secondOffer = nextEvent<Message>(socket, "messageArrived", (m) => isChat(m) && ++replies === 2);
    ok(
      await request<Ack<RegisterConnectorAck>>(socket, "registerConnector", {
        id: "sms-e2e",
        name: "SMS",
        channel: "sms-e2e",
      }),
    );

    const agent = await staff(conversation.conversationId, AGENT);
    const reply = await say(agent, "Hello from the desk");
    await secondOffer;
    expect(offers.map((m) => [m.id, m.text, m.refId])).toEqual([
      [reply.id, "Hello from the desk", refId],
      [reply.id, "Hello from the desk", refId],
    ]);

    // The customer's inbound text, sent by the connector: recorded as the customer's, not echoed back.
    const inbound = ok(
      await send(socket, { type: "ChatMessage", conversationId: conversation.conversationId, text: "Thanks!" }),
    );
    expect(await agent.untilText("Thanks!")).toMatchObject({ id: inbound.id, from: conversation.participant });
    const welcomed = nextEvent<Message>(socket, "messageArrived", (m) => isChat(m) && m.text === "You're welcome");
    await say(agent, "You're welcome");
    await welcomed;
    expect(offers.map((m) => m.text)).not.toContain("Thanks!");
  });
});
