import { describe, expect, it, onTestFinished, vi } from "vitest";
import {
  emailTranscript,
  fetchTranscriptPdf,
  initConversation,
  isLiaisonError,
  listConversations,
  LiaisonClient,
  LiaisonError,
  sendConnectorMessage,
  type ChatMessage,
  type ConversationInfo,
  type ConversationUpdated,
  type LiaisonClientEvents,
  type LiaisonClientOptions,
  type Message,
} from "../../clients/sdk/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

const WAIT_MS = 5_000;

async function startApp(overrides: Record<string, string> = {}): Promise<TestApp> {
  const app = await startTestApp(overrides);
  onTestFinished(() => app.close());
  return app;
}

/** A client closed when the test ends; WebSocket only, so `engine.close()` drops the connection at once. */
function openClient(options: LiaisonClientOptions): LiaisonClient {
  const client = new LiaisonClient({ transports: ["websocket"], timeoutMs: WAIT_MS, ...options });
  onTestFinished(() => client.close());
  return client;
}

/** Resolves with the next `event` of `client` that matches `predicate`, or rejects after `timeoutMs`. */
function nextEvent<E extends keyof LiaisonClientEvents>(
  client: LiaisonClient,
  event: E,
  predicate: (...args: LiaisonClientEvents[E]) => boolean = () => true,
  timeoutMs = WAIT_MS,
): Promise<LiaisonClientEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${String(event)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(event, (...args) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

/** Records every `message` event; `until` waits for the log to satisfy a condition. */
function recordMessages(client: LiaisonClient) {
  const messages: Message[] = [];
  const checks = new Set<() => void>();
  client.on("message", (message) => {
    messages.push(message);
    for (const check of [...checks]) check();
  });
  return {
    messages,
    chats: (): ChatMessage[] => messages.filter((m): m is ChatMessage => m.type === "ChatMessage"),
    until(what: string, condition: (log: Message[]) => boolean, timeoutMs = WAIT_MS): Promise<Message[]> {
      if (condition(messages)) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!condition(messages)) return;
          checks.delete(check);
          clearTimeout(timer);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages.map(describeMessage))}`));
        }, timeoutMs);
        checks.add(check);
      });
    },
  };
}

function describeMessage(m: Message): string {
  return m.type === "ChatMessage" ? `#${m.seq} ${m.text}` : `#${m.seq ?? "-"} ${m.activityType}`;
}

const hasText = (text: string) => (log: Message[]) => log.some((m) => m.type === "ChatMessage" && m.text === text);

function expectStrictlyIncreasingSeqs(log: Message[]): void {
  const seqs = log.flatMap((m) => (m.seq === undefined ? [] : [m.seq]));
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] ?? 0);
}

describe("SDK against the real gateway", () => {
  it("carries a web conversation end to end: join, both ways, resend, reconnect, end, transcript", async () => {
    const app = await startApp();
    const init = await initConversation(app.url, {
      firstName: "Sara",
      lastName: "Khan",
      email: "sara@example.com",
      channel: "web",
    });
    const { conversationId, participant, token } = init;

    // The customer joins and gets its history once, through `message` and in the returned info.
    const customer = openClient({ url: app.url, reconnectionDelayMs: 1000 });
    const customerLog = recordMessages(customer);
    const infoEvent = nextEvent(customer, "conversationInfo");
    await customer.connect();
    const customerInfo = await customer.join({ conversationId, id: participant.id, name: participant.name, token });
    expect(customerInfo.conversation.id).toBe(conversationId);
    expect(customerInfo.role).toBe("customer");
    expect(customerInfo.participant).toEqual(participant);
    expect((await infoEvent)[0]).toEqual(customerInfo);
    expect(customerInfo.messages.some((m) => m.type === "ActivityMessage" && m.activityType === "greetings")).toBe(
      true,
    );
    expect(customerLog.messages.map((m) => m.id)).toEqual(customerInfo.messages.map((m) => m.id));

    // The agent joins; the customer hears of it.
    const agent = openClient({ url: app.url, apiKey: app.apiKey });
    const agentLog = recordMessages(agent);
    await agent.connect();
    const agentInfo = await agent.join({ conversationId, id: "agent-17", name: "Ali", role: "agent" });
    expect(agentInfo.role).toBe("agent");
    await customerLog.until("participantJoined", (log) =>
      log.some((m) => m.type === "ActivityMessage" && m.activityType === "participantJoined"),
    );

    // Both ways, no echo to the sender.
    const hi = await customer.send(conversationId, { text: "hi" });
    expect(hi.seq).toBeGreaterThan(0);
    const [fromCustomer] = (await agentLog.until("hi", hasText("hi"))).filter((m) => m.id === hi.id);
    expect(fromCustomer).toMatchObject({ type: "ChatMessage", seq: hi.seq, text: "hi", from: participant });
    const hello = await agent.send(conversationId, { text: "hello" });
    expect(hello.seq).toBeGreaterThan(hi.seq ?? 0);
    await customerLog.until("hello", hasText("hello"));

    // Typing passes through, without a seq.
    const typingArrived = nextEvent(customer, "message", (m) => m.type === "ActivityMessage");
    await agent.typing(conversationId, "start");
    const [typing] = await typingArrived;
    expect(typing).toMatchObject({ activityType: "typing", info: { state: "start" } });
    expect(typing.seq).toBeUndefined();

    // A resend with the same id: same ack, one delivery (the next message proves nothing else is on its way).
    const again = await customer.send(conversationId, { id: hi.id, text: "hi" });
    expect(again).toMatchObject({ id: hi.id, seq: hi.seq });
    await customer.send(conversationId, { text: "after the resend" });
    await agentLog.until("after the resend", hasText("after the resend"));
    expect(agentLog.messages.filter((m) => m.id === hi.id)).toHaveLength(1);

    // The customer's connection drops while the agent sends five messages; the SDK re-joins with `since`.
    const dropped = nextEvent(customer, "disconnected");
    const rejoined = nextEvent(customer, "connected");
    customer.socket.io.engine.close();
    await dropped;
    const missed: string[] = [];
    for (let i = 1; i <= 5; i++) {
      missed.push(`while you were away ${i}`);
      await agent.send(conversationId, { text: `while you were away ${i}` });
    }
    // Sent while the customer was away: a reconnect is 0.5–1.5 s off, five local acks take milliseconds.
    expect(customer.connected).toBe(false);
    expect((await rejoined)[0]).toEqual({ reconnected: true });
    await agent.send(conversationId, { text: "welcome back" });
    await customerLog.until("welcome back", hasText("welcome back"));
    const customerTexts = customerLog.chats().map((m) => m.text);
    for (const text of missed) expect(customerTexts.filter((t) => t === text)).toHaveLength(1);
    expect(customerTexts.filter((t) => missed.includes(t))).toEqual(missed);
    expectStrictlyIncreasingSeqs(customerLog.messages);
    expect(new Set(customerLog.messages.map((m) => m.id)).size).toBe(customerLog.messages.length);
    // Never an echo of the customer's own messages, not even through the re-join's history.
    expect(customerLog.chats().filter((m) => m.from.id === participant.id)).toEqual([]);
    expectStrictlyIncreasingSeqs(agentLog.messages);

    // The line drops just as the customer sends: the SDK resends with the same id after the re-join, and the agent
    // gets the message once whether or not the first attempt reached the server.
    const backAgain = nextEvent(customer, "connected");
    const inFlight = customer.send(conversationId, { text: "sent as the line dropped" });
    customer.socket.io.engine.close();
    const inFlightAck = await inFlight;
    await backAgain;
    await customer.send(conversationId, { text: "and one more" });
    await agentLog.until("and one more", hasText("and one more"));
    expect(agentLog.messages.filter((m) => m.id === inFlightAck.id)).toMatchObject([{ seq: inFlightAck.seq }]);
    expect(customerLog.messages.some((m) => m.id === inFlightAck.id)).toBe(false);

    // End: everyone hears of it; ending twice is harmless.
    const ended = await agent.end(conversationId, "resolved");
    expect(ended.ok).toBe(true);
    await customerLog.until("endOfConversation", (log) =>
      log.some((m) => m.type === "ActivityMessage" && m.activityType === "endOfConversation"),
    );
    expect(await agent.end(conversationId)).toMatchObject({ ok: true, alreadyEnded: true });

    // The transcript, with the customer's token and with an API key.
    const pdf = await fetchTranscriptPdf(app.url, conversationId, { token });
    expect(new TextDecoder().decode(pdf.subarray(0, 5))).toBe("%PDF-");
    const pdfByKey = await fetchTranscriptPdf(app.url, conversationId, { apiKey: app.apiKey });
    expect(new TextDecoder().decode(pdfByKey.subarray(0, 4))).toBe("%PDF");
    // No mail transport in the test app.
    await expect(emailTranscript(app.url, conversationId, { token })).rejects.toMatchObject({
      code: "not_configured",
      status: 501,
    });
  });

  it("reconnects and re-joins after the server disconnected the socket", async () => {
    const app = await startApp();
    const { conversationId, participant, token } = await initConversation(app.url, {
      firstName: "Lena",
      email: "lena@example.com",
      channel: "web",
    });
    const customer = openClient({ url: app.url, reconnectionDelayMs: 100 });
    const customerLog = recordMessages(customer);
    await customer.connect();
    await customer.join({ conversationId, id: participant.id, name: participant.name, token });
    const agent = openClient({ url: app.url, apiKey: app.apiKey });
    await agent.connect();
    await agent.join({ conversationId, id: "agent-5", name: "Sam", role: "agent" });
    await agent.send(conversationId, { text: "before" });
    await customerLog.until("before", hasText("before"));

    const kicked = nextEvent(customer, "disconnected");
    const back = nextEvent(customer, "connected");
    app.app.io.sockets.sockets.get(customer.socket.id ?? "")?.disconnect(true);
    expect((await kicked)[0]).toEqual({ reason: "io server disconnect" });
    await agent.send(conversationId, { text: "during" });
    await back;
    await agent.send(conversationId, { text: "after" });
    await customerLog.until("after", hasText("after"));
    const texts = customerLog.chats().map((m) => m.text);
    expect(texts).toEqual(["before", "during", "after"]);
    expectStrictlyIncreasingSeqs(customerLog.messages);
  });

  it("pages through a long history for its caller, on join and on the re-join after a reconnect: every message once, in order", async () => {
    const app = await startApp();
    const { conversationId, participant, token } = await initConversation(app.url, {
      firstName: "Sara",
      email: "sara@example.com",
      channel: "web",
    });
    const agent = openClient({ url: app.url, apiKey: app.apiKey });
    await agent.connect();
    await agent.join({ conversationId, id: "agent-17", name: "Ali", role: "agent" });
    for (let i = 1; i <= 100; i++) await agent.send(conversationId, { text: `backlog ${i}` });
    // More whispers in a row than a page holds: one of the customer's pages shows nothing and must still move on.
    for (let i = 1; i <= 100; i++) await agent.send(conversationId, { text: `whisper ${i}`, tag: "whisper" });
    for (let i = 101; i <= 110; i++) await agent.send(conversationId, { text: `backlog ${i}` });
    /** The seqs of the log a customer may see, oldest first. */
    const visibleSeqs = async () =>
      (await app.app.store.read(conversationId, 0))
        .filter((m) => !(m.type === "ChatMessage" && m.tag === "whisper"))
        .map((m) => m.seq);

    const customer = openClient({ url: app.url, reconnectionDelayMs: 100 });
    const customerLog = recordMessages(customer);
    const pages: ConversationInfo[] = [];
    customer.on("conversationInfo", (page) => pages.push(page));
    await customer.connect();
    const joined = { conversationId, id: participant.id, name: participant.name, token, limit: 50 };
    const info = await customer.join(joined);
    expect(pages.length).toBeGreaterThanOrEqual(5);
    expect(pages.map((page) => page.hasMore)).toEqual([...pages.slice(1).map(() => true), false]);
    expect(pages.some((page) => page.messages.length === 0)).toBe(true);
    expect(info.hasMore).toBe(false);
    expect(info.messages.map((m) => m.seq)).toEqual(await visibleSeqs());
    expect(customerLog.messages.map((m) => m.seq)).toEqual(await visibleSeqs());

    // The line drops and more than a page is recorded before the client is back (its handshake waits for it).
    let letIn = (): void => undefined;
    const gate = new Promise<void>((resolve) => (letIn = resolve));
    app.app.io.use((_socket, next) => void gate.then(() => next()));
    const dropped = nextEvent(customer, "disconnected");
    const back = nextEvent(customer, "connected");
    customer.socket.io.engine.close();
    await dropped;
    for (let i = 1; i <= 120; i++) await agent.send(conversationId, { text: `while away ${i}` });
    pages.length = 0;
    letIn();
    expect((await back)[0]).toEqual({ reconnected: true });
    expect(pages.map((page) => page.hasMore)).toEqual([true, true, false]);
    await agent.send(conversationId, { text: "welcome back" });
    await customerLog.until("welcome back", hasText("welcome back"));
    expect(customerLog.messages.map((m) => m.seq)).toEqual(await visibleSeqs());
    expect(customerLog.chats().filter((m) => m.tag === "whisper")).toEqual([]);

    // Another tab with the server's page size: the whole history again, in pages of 200.
    const tab = openClient({ url: app.url });
    const tabLog = recordMessages(tab);
    await tab.connect();
    const { limit: _limit, ...defaults } = joined;
    const tabInfo = await tab.join(defaults);
    expect(tabLog.messages.map((m) => m.seq)).toEqual(await visibleSeqs());
    expect(tabInfo.messages.map((m) => m.seq)).toEqual(await visibleSeqs());
  });

  it("pages a join made while already live without letting a live message of the old session skip pages", async () => {
    const app = await startApp();
    const { conversationId, participant, token } = await initConversation(app.url, {
      firstName: "Sara",
      email: "sara@example.com",
      channel: "web",
    });
    const agent = openClient({ url: app.url, apiKey: app.apiKey });
    await agent.connect();
    await agent.join({ conversationId, id: "agent-17", name: "Ali", role: "agent" });
    for (let i = 1; i <= 30; i++) await agent.send(conversationId, { text: `backlog ${i}` });
    const customer = openClient({ url: app.url });
    await customer.connect();
    const joined = { conversationId, id: participant.id, name: participant.name, token, limit: 10 };
    await customer.join(joined);
    const customerLog = recordMessages(customer);

    // The server reads the conversation late for the next join: meanwhile the live session sends the customer a
    // message newer than the first page will reach.
    let answer = (): void => undefined;
    const late = new Promise<void>((resolve) => (answer = resolve));
    const realGet = app.app.store.get.bind(app.app.store);
    vi.spyOn(app.app.store, "get").mockImplementationOnce(async (id) => {
      await late;
      return realGet(id);
    });
    const rejoin = customer.join({ ...joined, since: 0 });
    const arrived = new Promise((resolve) => customer.socket.once("messageArrived", resolve));
    await agent.send(conversationId, { text: "during the join" });
    await arrived;
    answer();
    const info = await rejoin;

    const seqs = (await app.app.store.read(conversationId, 0)).map((m) => m.seq);
    expect(info.messages.map((m) => m.seq)).toEqual(seqs);
    expect(customerLog.messages.map((m) => m.seq)).toEqual(seqs);
  });

  it("turns error answers into LiaisonErrors with the protocol's codes", async () => {
    const app = await startApp();

    const invalid = await initConversation(app.url, { firstName: "Sara", channel: "web" }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(LiaisonError);
    expect(invalid).toMatchObject({ code: "invalid_payload", status: 400 });

    const missing = await fetchTranscriptPdf(app.url, "c_unknown", { apiKey: app.apiKey }).catch((e: unknown) => e);
    expect(isLiaisonError(missing, "not_found")).toBe(true);
    expect(missing).toMatchObject({ status: 404 });

    const intruder = openClient({ url: app.url, apiKey: "not-a-key" });
    await expect(intruder.connect()).rejects.toMatchObject({ code: "unauthorized" });

    const { conversationId, participant } = await initConversation(app.url, {
      firstName: "Omar",
      phone: "+923001111111",
      channel: "web",
    });
    const customer = openClient({ url: app.url });
    await customer.connect();
    const join = customer.join({ conversationId, id: participant.id, name: participant.name, token: "wrong" });
    await expect(join).rejects.toMatchObject({ code: "unauthorized" });
    // Not joined: the server refuses the send at once, with no retry.
    await expect(customer.send(conversationId, { text: "hello?" })).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("hands agent replies of an sms conversation to the registered connector, acked after the handler", async () => {
    const app = await startApp({ CONNECTOR_ACK_TIMEOUT_MS: "300" });
    const refId = "+923001234567";

    const connector = openClient({ url: app.url, apiKey: app.apiKey, reconnectionDelayMs: 100 });
    const handled: Message[] = [];
    const handledChecks = new Set<() => void>();
    const waitHandled = (what: string, condition: (log: Message[]) => boolean) =>
      new Promise<void>((resolve, reject) => {
        if (condition(handled)) return resolve();
        const timer = setTimeout(() => reject(new Error(`no delivery of ${what}`)), WAIT_MS);
        const check = () => {
          if (!condition(handled)) return;
          handledChecks.delete(check);
          clearTimeout(timer);
          resolve();
        };
        handledChecks.add(check);
      });
    const handledText = (text: string) => (log: Message[]) =>
      log.some((m) => m.type === "ChatMessage" && m.text === text);
    // The first attempt at "fails once" throws; "slow" waits until the server has offered it a second time.
    let failOnce = true;
    let releaseSlow: () => void = () => undefined;
    const slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));
    connector.onDelivery(async (message) => {
      if (message.type === "ChatMessage" && message.text === "fails once" && failOnce) {
        failOnce = false;
        throw new Error("sms gateway down");
      }
      if (message.type === "ChatMessage" && message.text === "slow") await slowReleased;
      handled.push(message);
      for (const check of [...handledChecks]) check();
    });
    await connector.connect();
    expect(await connector.registerConnector("sms", "Test SMS")).toEqual({
      id: "sms",
      name: "Test SMS",
      channel: "sms",
    });

    // Inbound: the connector starts the conversation and sends the customer's text; the agent sees it.
    const { conversationId } = await initConversation(
      app.url,
      { firstName: "Customer", refId, channel: "sms" },
      { apiKey: app.apiKey },
    );
    const inbound = await connector.send(conversationId, { text: "my parcel is late", refId });
    const agent = openClient({ url: app.url, apiKey: app.apiKey });
    await agent.connect();
    const info = await agent.join({ conversationId, id: "agent-3", name: "Hina", role: "agent" });
    expect(info.messages.some((m) => m.id === inbound.id)).toBe(true);

    // Outbound: the agent's reply goes to the connector, with the customer's number.
    const reply = await agent.send(conversationId, { text: "on its way" });
    await waitHandled("on its way", handledText("on its way"));
    expect(handled.find((m) => m.id === reply.id)).toMatchObject({ type: "ChatMessage", refId, seq: reply.seq });
    // The customer's own text is not echoed to the connector.
    expect(handled.some((m) => m.id === inbound.id)).toBe(false);

    // A handler that throws: no ack, the server offers the message again, the SDK reports the failure.
    const failure = nextEvent(connector, "error");
    await agent.send(conversationId, { text: "fails once" });
    expect((await failure)[0]).toMatchObject({ code: "internal" });
    await waitHandled("fails once", handledText("fails once"));

    // A redelivery while the handler is still at work: acked once it finishes, handler called once.
    const offers: string[] = [];
    connector.socket.on("messageArrived", (message: Message) => {
      if (message.type !== "ChatMessage" || message.text !== "slow") return;
      offers.push(message.id);
      if (offers.length === 2) releaseSlow();
    });
    await agent.send(conversationId, { text: "slow" });
    await waitHandled("slow", handledText("slow"));
    expect(offers.length).toBeGreaterThanOrEqual(2);
    expect(new Set(offers).size).toBe(1);

    // Campaign messages through REST, then a reconnect: the SDK registers the connector again by itself.
    const campaign = await sendConnectorMessage(app.url, "sms", app.apiKey, { refId, text: "20% off today" });
    expect(campaign.status).toBe("sent");
    await waitHandled("the campaign message", handledText("20% off today"));
    const back = nextEvent(connector, "connected");
    connector.socket.io.engine.close();
    expect((await back)[0]).toEqual({ reconnected: true });
    await agent.send(conversationId, { text: "after the reconnect" });
    await waitHandled("after the reconnect", handledText("after the reconnect"));

    // Each message reached the handler once.
    const chatIds = handled.filter((m) => m.type === "ChatMessage").map((m) => m.id);
    expect(new Set(chatIds).size).toBe(chatIds.length);
  });
  it("lists the queue and follows it: subscribe, updates, renewal after a reconnect, unsubscribe", async () => {
    const app = await startApp();
    const start = (firstName: string, subject: string) =>
      initConversation(app.url, {
        firstName,
        email: `${firstName.toLowerCase()}@example.com`,
        channel: "web",
        subject,
      });
    const older = await start("Lena", "billing");
    const newer = await start("Omar", "billing");
    await start("Hina", "sales");

    // Newest first; two started in the same millisecond go by id, so only the pages' union is certain here.
    const page = await listConversations(app.url, app.apiKey, { subject: "billing", limit: 1 });
    expect(page.conversations).toHaveLength(1);
    const rest = await listConversations(app.url, app.apiKey, { subject: "billing", cursor: page.nextCursor ?? "" });
    expect(rest.nextCursor).toBeUndefined();
    const both = [...page.conversations, ...rest.conversations];
    expect(both.map((c) => c.id).sort()).toEqual([older.conversationId, newer.conversationId].sort());
    expect(both.find((c) => c.id === newer.conversationId)).toMatchObject({
      state: "queued",
      desk: "socket",
      customer: newer.participant,
    });
    expect((await listConversations(app.url, app.apiKey, { states: ["active"] })).conversations).toEqual([]);
    await expect(listConversations(app.url, "wrong-key")).rejects.toMatchObject({ code: "unauthorized", status: 401 });
    await expect(listConversations(app.url, app.apiKey, { cursor: "nope" })).rejects.toMatchObject({
      code: "invalid_payload",
    });

    const desk = openClient({ url: app.url, apiKey: app.apiKey, reconnectionDelayMs: 100 });
    const updates: ConversationUpdated[] = [];
    desk.on("conversationUpdated", (update) => updates.push(update));
    await desk.connect();
    await desk.subscribeConversations({ subject: "billing" });
    const fresh = await start("Sana", "billing");
    await start("Bilal", "sales");
    await expect.poll(() => updates.map((u) => u.conversation.id)).toEqual([fresh.conversationId]);

    // Renewed after a reconnect, with the same filter.
    const back = nextEvent(desk, "connected");
    desk.socket.io.engine.close();
    expect((await back)[0]).toEqual({ reconnected: true });
    const agent = openClient({ url: app.url, apiKey: app.apiKey });
    await agent.connect();
    await agent.join({ conversationId: fresh.conversationId, id: "agent-7", name: "Ali", role: "agent" });
    await expect.poll(() => updates.length).toBe(2);
    expect(updates[1]).toMatchObject({ previousState: "queued", conversation: { state: "active" } });

    await desk.unsubscribeConversations();
    await start("Zara", "billing");
    // A customer client may not subscribe.
    const customer = openClient({ url: app.url });
    await customer.connect();
    await expect(customer.subscribeConversations()).rejects.toMatchObject({ code: "unauthorized" });
    // The desk's subscription is gone: a join, acknowledged after anything emitted before it, brought no update.
    await desk.join({ conversationId: fresh.conversationId, id: "sup-1", name: "Sue", role: "supervisor" });
    expect(updates).toHaveLength(2);
  });
});
