import { afterEach, describe, expect, it } from "vitest";
import {
  ConversationViewSchema,
  conversationStates,
  roles,
  type ActivityMessage,
  type ChatMessage,
  type ConversationState,
  type InitRequestParsed,
  type Message,
} from "../../protocol/index.js";
import { ConnectorDispatcher } from "../../server/core/connectors.js";
import {
  canTransition,
  isOpen,
  seesWhispers,
  statesLeadingTo,
  toView,
  type Conversation,
} from "../../server/core/conversation.js";
import { ConversationService, type Actor, type ChatInput } from "../../server/core/conversations.js";
import { GatewayError } from "../../server/core/errors.js";
import { LocalBus } from "../../server/core/local-bus.js";
import { noMetrics, type CoreLogger, type Published } from "../../server/core/ports.js";
import { MemoryStore } from "../../server/store/memory/memory-store.js";

describe("conversation state machine", () => {
  /**
   * The lifecycle the spec and the core describe: bot → queued → active → ended, back to the queue, an agent's
   * takeover (bot → active), back to the bot when the agent side closes (BOT_AFTER_AGENT=resume), ended final.
   */
  const legal: Record<ConversationState, ConversationState[]> = {
    bot: ["queued", "active", "ended"],
    queued: ["active", "bot", "ended"],
    active: ["queued", "bot", "ended"],
    ended: [],
  };

  it("allows exactly the documented transitions", () => {
    for (const from of conversationStates) {
      for (const to of conversationStates) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(legal[from].includes(to));
      }
    }
  });

  it("never stays in place and never leaves ended", () => {
    for (const state of conversationStates) expect(canTransition(state, state)).toBe(false);
    for (const to of conversationStates) expect(canTransition("ended", to)).toBe(false);
  });

  it("statesLeadingTo lists the states a transition may start from", () => {
    expect(new Set(statesLeadingTo("ended"))).toEqual(new Set(["bot", "queued", "active"]));
    expect(new Set(statesLeadingTo("active"))).toEqual(new Set(["bot", "queued"]));
    expect(statesLeadingTo("queued").sort()).toEqual(["active", "bot"]);
    expect(statesLeadingTo("bot").sort()).toEqual(["active", "queued"]);
  });

  it("isOpen is false only once ended", () => {
    expect(conversationStates.filter((state) => isOpen({ state }))).toEqual(["bot", "queued", "active"]);
  });

  it("seesWhispers: agents, supervisors and the system; never customers, connectors or bots", () => {
    expect(roles.filter(seesWhispers).sort()).toEqual(["agent", "supervisor", "system"]);
    expect(seesWhispers("customer")).toBe(false);
    expect(seesWhispers("connector")).toBe(false);
    expect(seesWhispers("bot")).toBe(false);
  });

  describe("toView", () => {
    const conversation: Conversation = {
      id: "c_1",
      token: "SECRET-customer-token",
      channel: "sms",
      refId: "+923001234567",
      customer: {
        id: "p_1",
        name: "Sara Khan",
        firstName: "Sara",
        lastName: "Khan",
        email: "sara@example.com",
        phone: "+923001234567",
      },
      subject: "billing",
      language: "ur-PK",
      url: "https://shop.example.com",
      comment: "VIP",
      state: "active",
      desk: { desk: "socket", ids: { room: "r-1" } },
      agent: { id: "agent-17", name: "Ali" },
      requestId: "r_1",
      createdAt: "2026-11-21T10:00:00.000Z",
    };

    it("shows the participants' view and hides the token and the customer's contact details", () => {
      const view = toView(conversation);
      expect(view).toStrictEqual({
        id: "c_1",
        channel: "sms",
        subject: "billing",
        language: "ur-PK",
        state: "active",
        customer: { id: "p_1", name: "Sara Khan" },
        agent: { id: "agent-17", name: "Ali" },
        participants: [
          { id: "p_1", name: "Sara Khan", role: "customer" },
          { id: "agent-17", name: "Ali", role: "agent" },
        ],
        createdAt: "2026-11-21T10:00:00.000Z",
      });
      const text = JSON.stringify(view);
      for (const hidden of ["SECRET-customer-token", "sara@example.com", "+923001234567", "r-1", "VIP"]) {
        expect(text).not.toContain(hidden);
      }
      expect(ConversationViewSchema.parse(view)).toEqual(view);
    });

    it("omits agent until there is one and adds endedAt once ended", () => {
      const { agent: _agent, ...queued } = conversation;
      expect(toView({ ...queued, state: "queued" })).not.toHaveProperty("agent");
      const ended = toView({ ...conversation, state: "ended", endedAt: "2026-11-21T11:00:00.000Z" });
      expect(ended.endedAt).toBe("2026-11-21T11:00:00.000Z");
      expect(ended.state).toBe("ended");
    });
  });
});

describe("ConversationService", () => {
  const NOW = "2026-11-21T10:00:00.000Z";
  const GREETING = "Salaam! An agent will be with you shortly.";
  const MAX_TEXT = 50;
  const silent: CoreLogger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  const dispatchers: ConnectorDispatcher[] = [];
  afterEach(() => {
    for (const dispatcher of dispatchers.splice(0)) dispatcher.stop();
  });

  /** The core wired as server/app.ts wires it, over the memory store and the local bus, with a fixed clock. */
  function setup() {
    const store = new MemoryStore();
    const bus = new LocalBus();
    const published: Published[] = [];
    bus.subscribe((event) => published.push(event));
    const connectors = new ConnectorDispatcher(
      store,
      { ackTimeoutMs: 1_000, maxInFlight: 10, maxRefusals: 5 },
      silent,
      noMetrics,
    );
    dispatchers.push(connectors);
    const core = new ConversationService(
      store,
      bus,
      connectors,
      {
        greetingText: GREETING,
        maxTextLength: MAX_TEXT,
        directChannels: ["web"],
        deskName: "socket",
        externalDesk: false,
      },
      () => new Date(NOW),
      silent,
      noMetrics,
    );
    const request = (overrides: Partial<InitRequestParsed> = {}): InitRequestParsed => ({
      firstName: "Sara",
      lastName: "Khan",
      channel: "web",
      language: "en",
      email: "sara@example.com",
      subject: "billing",
      ...overrides,
    });
    /**
     * Opened as its customer opens it (web), or as a connector does (any other channel: trusted). What init publishes
     * is checked by init's own test: `published` starts empty after it.
     */
    const start = async (overrides: Partial<InitRequestParsed> = {}) => {
      const { conversation } = await core.init(request(overrides), {
        trusted: (overrides.channel ?? "web") !== "web",
      });
      published.length = 0;
      return conversation;
    };
    const log = (id: string) => store.read(id, 0);
    const activities = async (id: string, type: ActivityMessage["activityType"]) =>
      (await log(id)).filter((m) => m.type === "ActivityMessage" && m.activityType === type);
    return { store, core, published, start, log, activities, fresh: (id: string) => core.get(id) };
  }

  const agent: Actor = { id: "agent-17", name: "Ali", role: "agent", socketId: "sock-agent" };
  const otherAgent: Actor = { id: "agent-23", name: "Bilal", role: "agent", socketId: "sock-agent-2" };
  const customerOf = (conversation: Conversation): Actor => ({
    id: conversation.customer.id,
    name: conversation.customer.name,
    role: "customer",
    socketId: "sock-customer",
  });
  const text = (value: string, extra: Partial<ChatInput> = {}): ChatInput => ({
    text: value,
    attachments: [],
    to: [],
    tag: "",
    ...extra,
  });

  async function codeOf(promise: Promise<unknown>): Promise<string> {
    const error: unknown = await promise.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(GatewayError);
    return (error as GatewayError).code;
  }

  describe("init", () => {
    it("creates a queued conversation handed to the desk, with a handOff as its first message", async () => {
      const { core, log, published } = setup();
      const body: InitRequestParsed = {
        firstName: "Sara",
        lastName: "Khan",
        channel: "web",
        language: "en",
        email: "sara@example.com",
        subject: "billing",
      };
      const { conversation, created } = await core.init(body);
      expect(created).toBe(true);
      expect(conversation).toMatchObject({
        state: "queued",
        channel: "web",
        subject: "billing",
        createdAt: NOW,
        desk: { desk: "socket" },
        customer: { name: "Sara Khan", firstName: "Sara", email: "sara@example.com" },
      });
      expect(conversation.id).toMatch(/^c_/);
      // ≥128 random bits, URL-safe
      expect(conversation.token).toMatch(/^[\w-]{22,}$/);
      const messages = await log(conversation.id);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({
        type: "ActivityMessage",
        activityType: "handOff",
        seq: 1,
        timestamp: NOW,
        info: { subject: "billing", desk: "socket", reason: "init" },
      });
      // Nobody has joined it yet: the hand-off is published for the queue's subscribers, with the summary.
      expect(published).toEqual([
        {
          conversationId: conversation.id,
          message: messages[0],
          queue: {
            conversation: {
              id: conversation.id,
              channel: "web",
              subject: "billing",
              language: "en",
              state: "queued",
              customer: { id: conversation.customer.id, name: "Sara Khan" },
              desk: "socket",
              createdAt: NOW,
              lastMessageAt: NOW,
              lastSeq: 1,
            },
          },
        },
      ]);
      // A repeated init publishes nothing.
      expect((await core.init({ ...body, requestId: conversation.requestId }, { trusted: true })).created).toBe(false);
      expect(published).toHaveLength(1);
    });

    it("returns the same conversation for a repeated requestId and for the same channel + refId", async () => {
      const { core } = setup();
      const base: InitRequestParsed = { firstName: "Sara", channel: "web", language: "en", refId: "account-17" };
      const requestId = crypto.randomUUID();
      const first = await core.init({ ...base, requestId });
      const again = await core.init({ ...base, requestId });
      expect(again.created).toBe(false);
      expect(again.conversation.id).toBe(first.conversation.id);
      const sameAccount = await core.init({ ...base, requestId: "req-2" }, { trusted: true });
      expect(sameAccount.created).toBe(false);
      expect(sameAccount.conversation.id).toBe(first.conversation.id);
      // Only a trusted (API-key) caller gets an open conversation by its account.
      await expect(core.init({ ...base, requestId: crypto.randomUUID() })).rejects.toMatchObject({ code: "conflict" });
      const otherAccount = await core.init({ ...base, refId: "account-18" });
      expect(otherAccount.created).toBe(true);
    });

    it("opens a connector channel's conversation for a trusted caller only", async () => {
      const { core } = setup();
      const sms: InitRequestParsed = { firstName: "Sara", channel: "sms", language: "en", refId: "+923001234567" };
      await expect(core.init(sms)).rejects.toMatchObject({ code: "forbidden" });
      expect((await core.init(sms, { trusted: true })).created).toBe(true);
    });

    it("starts a new conversation for a refId whose conversation has ended", async () => {
      const { core, fresh } = setup();
      const base: InitRequestParsed = { firstName: "Sara", channel: "sms", language: "en", refId: "+923001234567" };
      const first = (await core.init(base, { trusted: true })).conversation;
      await core.end(await fresh(first.id), agent, "resolved");
      const next = await core.init(base, { trusted: true });
      expect(next.created).toBe(true);
      expect(next.conversation.id).not.toBe(first.id);
    });
  });

  describe("joining and leaving", () => {
    it("greets a customer once, even when they join twice or come back", async () => {
      const { core, start, activities, fresh, published } = setup();
      const conversation = await start();
      const customer = customerOf(conversation);
      await core.joined(await fresh(conversation.id), customer);
      await core.joined(await fresh(conversation.id), customer);
      await core.left(await fresh(conversation.id), customer);
      await core.joined(await fresh(conversation.id), customer);
      const greetings = await activities(conversation.id, "greetings");
      expect(greetings).toHaveLength(1);
      expect(greetings[0]).toMatchObject({ info: { text: GREETING }, from: { id: "system" } });
      // joined, left, joined again: presence changes are recorded, repeats are not
      expect(await activities(conversation.id, "participantJoined")).toHaveLength(2);
      expect(published.filter((e) => e.message.type === "ActivityMessage").map((e) => e.message.seq)).toEqual([
        2, 3, 4, 5,
      ]);
      expect((await fresh(conversation.id)).state).toBe("queued");
    });

    it("an agent's join makes the conversation active with that agent", async () => {
      const { core, start, fresh, activities, published } = setup();
      const conversation = await start();
      await core.joined(conversation, agent);
      const after = await fresh(conversation.id);
      expect(after.state).toBe("active");
      expect(after.agent).toEqual({ id: "agent-17", name: "Ali" });
      const joined = await activities(conversation.id, "participantJoined");
      expect(joined).toHaveLength(1);
      expect(joined[0]).toMatchObject({ info: { participant: { id: "agent-17", name: "Ali" }, role: "agent" } });
      expect(published.map((e) => e.message.id)).toEqual([joined[0]?.id]);
      expect(published[0]?.queue).toMatchObject({
        previousState: "queued",
        conversation: { id: conversation.id, state: "active", agent: { id: "agent-17", name: "Ali" }, lastSeq: 2 },
      });
    });

    it("a second agent's join keeps the first as the conversation's agent", async () => {
      const { core, start, fresh } = setup();
      const conversation = await start();
      await core.joined(conversation, agent);
      await core.joined(await fresh(conversation.id), otherAgent);
      expect((await fresh(conversation.id)).agent).toEqual({ id: "agent-17", name: "Ali" });
    });

    it("the conversation's agent leaving puts it back in the queue; another agent leaving does not", async () => {
      const { core, start, fresh, activities } = setup();
      const conversation = await start();
      await core.joined(conversation, agent);
      await core.joined(await fresh(conversation.id), otherAgent);
      await core.left(await fresh(conversation.id), otherAgent);
      expect((await fresh(conversation.id)).state).toBe("active");
      await core.left(await fresh(conversation.id), agent);
      const after = await fresh(conversation.id);
      expect(after.state).toBe("queued");
      expect(after.agent).toBeUndefined();
      const left = await activities(conversation.id, "participantLeft");
      expect(left.map((m) => m.type === "ActivityMessage" && m.info)).toEqual([
        { participant: { id: "agent-23", name: "Bilal" }, role: "agent" },
        { participant: { id: "agent-17", name: "Ali" }, role: "agent" },
      ]);
      // and a new agent can pick it up
      await core.joined(after, otherAgent);
      expect(await fresh(conversation.id)).toMatchObject({ state: "active", agent: { id: "agent-23" } });
    });

    it("joining or leaving an ended conversation records nothing", async () => {
      const { core, start, fresh, log } = setup();
      const conversation = await start();
      await core.end(conversation, agent, "resolved");
      const before = (await log(conversation.id)).length;
      await core.joined(await fresh(conversation.id), customerOf(conversation));
      await core.joined(await fresh(conversation.id), agent);
      await core.left(await fresh(conversation.id), agent);
      expect(await log(conversation.id)).toHaveLength(before);
      expect((await fresh(conversation.id)).state).toBe("ended");
    });
  });

  describe("end", () => {
    it("ends once: one endOfConversation, then alreadyEnded", async () => {
      const { core, start, fresh, activities } = setup();
      const conversation = await start();
      await core.joined(conversation, agent);
      expect(await core.end(await fresh(conversation.id), agent, "resolved")).toEqual({ alreadyEnded: false });
      expect(await core.end(await fresh(conversation.id), customerOf(conversation), "bye")).toEqual({
        alreadyEnded: true,
      });
      const ended = await fresh(conversation.id);
      expect(ended).toMatchObject({
        state: "ended",
        endedAt: NOW,
        endReason: "resolved",
        endedBy: { id: "agent-17", name: "Ali", role: "agent" },
      });
      const eoc = await activities(conversation.id, "endOfConversation");
      expect(eoc).toHaveLength(1);
      expect(eoc[0]).toMatchObject({
        info: { reason: "resolved", endedBy: { id: "agent-17", name: "Ali", role: "agent" } },
      });
    });

    it("a stale copy of the conversation cannot end it twice", async () => {
      const { core, start, activities } = setup();
      const stale = await start();
      const results = await Promise.all([core.end(stale, agent, "a"), core.end(stale, customerOf(stale), "b")]);
      expect(results.map((r) => r.alreadyEnded).sort()).toEqual([false, true]);
      expect(await activities(stale.id, "endOfConversation")).toHaveLength(1);
    });
  });

  describe("send", () => {
    it("records a chat message with the next seq and the server's clock, and publishes it with its origin", async () => {
      const { core, start, published } = setup();
      const conversation = await start();
      const { message, duplicate } = await core.send(conversation, customerOf(conversation), text("Hello?"));
      expect(duplicate).toBe(false);
      expect(message).toMatchObject({
        type: "ChatMessage",
        seq: 2,
        timestamp: NOW,
        text: "Hello?",
        tag: "",
        from: { id: conversation.customer.id, name: "Sara Khan" },
        refId: "sara@example.com",
      });
      expect(published).toEqual([{ conversationId: conversation.id, message, originSocketId: "sock-customer" }]);
    });

    it("refuses to send after the end", async () => {
      const { core, start, fresh, log } = setup();
      const conversation = await start();
      await core.end(conversation, agent, "resolved");
      const before = (await log(conversation.id)).length;
      // with the stale (open) copy too: the store has the last word
      expect(await codeOf(core.send(conversation, agent, text("still there?")))).toBe("conversation_ended");
      expect(await codeOf(core.send(await fresh(conversation.id), agent, text("hello?")))).toBe("conversation_ended");
      expect(() => core.typing({ ...conversation, state: "ended" }, agent, "start")).toThrow(GatewayError);
      expect(await log(conversation.id)).toHaveLength(before);
    });

    it("forbids whispers from customers and connectors, and records an agent's", async () => {
      const { core, start, log } = setup();
      const conversation = await start();
      const whisper = text("between us", { tag: "whisper" });
      expect(await codeOf(core.send(conversation, customerOf(conversation), whisper))).toBe("forbidden");
      const connector: Actor = { id: "connector:sms", name: "SMS", role: "connector" };
      expect(await codeOf(core.send(conversation, connector, whisper))).toBe("forbidden");
      expect((await log(conversation.id)).filter((m) => m.type === "ChatMessage")).toHaveLength(0);
      const { message } = await core.send(conversation, agent, whisper);
      expect(message).toMatchObject({ tag: "whisper", from: { id: "agent-17" } });
      const forCustomer = await core.history(conversation, 0, "customer", 200);
      expect(forCustomer.messages).not.toContainEqual(message);
      // The customer's live feed still starts after the whisper, so it is not refetched as a gap.
      expect(forCustomer.lastSeq).toBe(message.seq);
      const forSupervisor = await core.history(conversation, 0, "supervisor", 200);
      expect(forSupervisor.messages).toContainEqual(message);
      expect(forSupervisor.lastSeq).toBe(message.seq);
    });

    it("reads history a page at a time, measuring pages on the whole log so whispers never stall a customer", async () => {
      const { core, start } = setup();
      const conversation = await start(); // seq 1: the hand-off
      for (let i = 1; i <= 4; i++) await core.send(conversation, agent, text(`whisper ${i}`, { tag: "whisper" }));
      await core.send(conversation, agent, text("hello")); // seq 6

      const first = await core.history(conversation, 0, "customer", 3);
      expect(first).toMatchObject({ lastSeq: 3, hasMore: true });
      expect(first.messages.map((m) => m.seq)).toEqual([1]);
      // A page of whispers only: nothing to show, and still a step forward.
      const second = await core.history(conversation, first.lastSeq, "customer", 2);
      expect(second).toEqual({ messages: [], lastSeq: 5, hasMore: true });
      const last = await core.history(conversation, second.lastSeq, "customer", 2);
      expect(last).toMatchObject({ lastSeq: 6, hasMore: false, messages: [{ seq: 6, text: "hello" }] });
      // Exactly a page left: no more follows.
      expect(await core.history(conversation, 3, "agent", 3)).toMatchObject({ lastSeq: 6, hasMore: false });
      expect(await core.history(conversation, 6, "agent", 3)).toEqual({ messages: [], lastSeq: 6, hasMore: false });
    });

    it("acknowledges a resend with the same id and content again, with the same seq, without a second delivery", async () => {
      const { core, start, published, log } = setup();
      const conversation = await start();
      const first = await core.send(conversation, agent, text("Your refund is on its way.", { id: "client-1" }));
      const again = await core.send(conversation, agent, text("Your refund is on its way.", { id: "client-1" }));
      expect(first.message.id).toBe("client-1");
      expect(again.duplicate).toBe(true);
      expect(again.message).toEqual(first.message);
      expect(published.filter((e) => e.message.id === "client-1")).toHaveLength(1);
      expect((await log(conversation.id)).filter((m) => m.id === "client-1")).toHaveLength(1);
    });

    it("refuses the same id with different content as a conflict", async () => {
      const { core, start, log } = setup();
      const conversation = await start();
      await core.send(conversation, agent, text("first", { id: "client-1" }));
      expect(await codeOf(core.send(conversation, agent, text("second", { id: "client-1" })))).toBe("conflict");
      expect(await codeOf(core.send(conversation, otherAgent, text("first", { id: "client-1" })))).toBe("conflict");
      const stored = (await log(conversation.id)).filter(
        (m): m is ChatMessage & { seq: number } => m.id === "client-1",
      );
      expect(stored.map((m) => m.text)).toEqual(["first"]);
    });

    it("an edit must name one of the author's own chat messages", async () => {
      const { core, start, log } = setup();
      const conversation = await start();
      const { message: original } = await core.send(conversation, agent, text("Refund in 3 days"));
      const { message: edit } = await core.send(
        conversation,
        agent,
        text("Refund in 2 days", { replaces: original.id }),
      );
      expect(edit).toMatchObject({ replaces: original.id, text: "Refund in 2 days" });

      expect(await codeOf(core.send(conversation, otherAgent, text("hijack", { replaces: original.id })))).toBe(
        "forbidden",
      );
      expect(await codeOf(core.send(conversation, agent, text("ghost", { replaces: "m_unknown" })))).toBe(
        "invalid_payload",
      );
      const [handOff] = await log(conversation.id);
      expect(await codeOf(core.send(conversation, agent, text("not a chat", { replaces: handOff?.id ?? "" })))).toBe(
        "invalid_payload",
      );
      const other = await start({ email: "someone@example.com", requestId: crypto.randomUUID() });
      const { message: elsewhere } = await core.send(other, agent, text("elsewhere"));
      expect(await codeOf(core.send(conversation, agent, text("cross", { replaces: elsewhere.id })))).toBe(
        "invalid_payload",
      );
    });

    it(`refuses text longer than maxTextLength (${MAX_TEXT}) and accepts exactly that length`, async () => {
      const { core, start } = setup();
      const conversation = await start();
      const error: unknown = await core
        .send(conversation, agent, text("x".repeat(MAX_TEXT + 1)))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).code).toBe("invalid_payload");
      expect((error as GatewayError).details).toEqual({
        fields: [{ path: "text", message: expect.any(String) as string }],
      });
      const { message } = await core.send(conversation, agent, text("x".repeat(MAX_TEXT)));
      expect(message.type === "ChatMessage" && message.text.length).toBe(MAX_TEXT);
    });

    it("relays typing without recording it", async () => {
      const { core, start, published, log } = setup();
      const conversation = await start();
      const typing = core.typing(conversation, customerOf(conversation), "start");
      expect(typing).toMatchObject({
        activityType: "typing",
        info: { participant: { id: conversation.customer.id }, state: "start" },
      });
      expect((typing as Message).seq).toBeUndefined();
      expect(published.map((e) => e.message)).toEqual([typing]);
      expect(await log(conversation.id)).toHaveLength(1);
    });
  });

  describe("connector channels", () => {
    it("queues agent replies for the channel's connectors with the customer's refId, not the customer's own", async () => {
      const { core, start, store } = setup();
      const conversation = await start({ channel: "sms", refId: "+923001234567", email: undefined });
      await core.send(conversation, { id: "connector:sms", name: "SMS", role: "connector" }, text("hi from phone"));
      await core.send(conversation, agent, text("hello from agent"));
      await core.send(conversation, agent, text("note to self", { tag: "whisper" }));
      // The queue offers one entry per conversation at a time: drain it as a connector would.
      const queued: Message[] = [];
      for (
        let heads = await store.pendingConnector("sms", 100);
        heads.length > 0;
        heads = await store.pendingConnector("sms", 100)
      ) {
        for (const entry of heads) {
          queued.push(entry.message);
          await store.ackConnector("sms", entry.id);
        }
      }
      const chats = queued.filter((m): m is ChatMessage => m.type === "ChatMessage");
      expect(chats.map((m) => m.text)).toEqual(["hello from agent"]);
      expect(chats[0]?.refId).toBe("+923001234567");
      expect(queued.every((m) => m.refId === "+923001234567")).toBe(true);
    });
  });
});
