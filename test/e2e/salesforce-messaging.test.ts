import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityOf, ChatMessage, InitResponse, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, postJson, request, webCustomer as startWebCustomer } from "../helpers/socket.js";
import {
  DEFAULT_AGENT,
  DEFAULT_DEPLOYMENT,
  startFakeSalesforce,
  type FakeSalesforce,
  type FakeSalesforceOptions,
} from "../fakes/salesforce/index.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Liaison with the Salesforce desk on Messaging for In-App and Web, against a fake Salesforce. */
async function scenario(fakeOptions: FakeSalesforceOptions = {}, env: Record<string, string> = {}) {
  const sf = await startFakeSalesforce({
    ...fakeOptions,
    messaging: { pingIntervalMs: 500, ...fakeOptions.messaging },
  });
  cleanups.push(() => sf.close());
  const gateway = await startTestApp(
    {
      SALESFORCE_MESSAGING_URL: sf.messaging.url,
      SALESFORCE_ORG_ID: sf.orgId18,
      SALESFORCE_MESSAGING_DEPLOYMENT: DEFAULT_DEPLOYMENT,
      ...env,
    },
    {
      tuning: {
        retryMaxMs: 1_000,
        noAgentRetryMaxMs: 1_000,
        deskStreamScanMs: 100,
        deskStreamLeaseMs: 1_000,
        deskStreamRestartBaseMs: 100,
        deskStreamRestartMaxMs: 500,
      },
    },
  );
  cleanups.push(() => gateway.close());
  return { sf, gateway };
}

async function webCustomer(gateway: TestApp, body: Record<string, string> = {}) {
  const customer = await startWebCustomer(gateway.url, body);
  cleanups.push(() => {
    customer.socket.close();
  });
  return customer;
}

async function open(gateway: TestApp, apiKey?: string): Promise<Socket> {
  const socket = await connect(gateway.url, apiKey === undefined ? {} : { apiKey });
  cleanups.push(() => {
    socket.close();
  });
  return socket;
}

/** The Salesforce conversation id of a Liaison conversation, once its session is open. */
const sfId = async (gateway: TestApp, conversationId: string): Promise<string> => {
  let found: string | undefined;
  await expect
    .poll(async () => {
      const conversation = await gateway.app.store.get(conversationId);
      found = conversation?.desk.openedAt === undefined ? undefined : conversation.desk.ids.conversationId;
      return found;
    })
    .toBeTruthy();
  return found ?? "";
};
/** Once the gateway's stream of the conversation is open at the fake. */
const streaming = async (sf: FakeSalesforce, id: string) => {
  const subject = sf.messaging.conversation(id)?.subject;
  await expect.poll(() => sf.messaging.streams().some((s) => s.open && s.subject === subject)).toBe(true);
};
const agentTexts = (sf: FakeSalesforce, id: string) =>
  sf.messaging
    .agentView(id)
    .filter((item) => item.kind === "text")
    .map((item) => item.text);
const label = (m: Message): string => (m.type === "ChatMessage" ? m.text : `[${m.activityType}]`);
const chats = (messages: Message[]) => messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
const activities = (messages: Message[], type: string) =>
  messages.filter((m) => m.type === "ActivityMessage" && m.activityType === type);
const state = async (gateway: TestApp, conversationId: string) => (await gateway.app.store.get(conversationId))?.state;

describe("Salesforce desk (Messaging for In-App and Web) end to end", () => {
  it("carries a web conversation through its whole life: routing, queue, agent, both ways, typing, files, agent ends", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway, { subject: "Billing" });
    const id = await sfId(gateway, customer.init.conversationId);
    await streaming(sf, id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(sf.messaging.conversation(id)).toMatchObject({
      routingAttributes: { _firstName: "Sara", _lastName: "Khan", _email: "sara@example.org", _subject: "Billing" },
      droppedRoutingAttributes: [],
      language: "en",
    });

    sf.messaging.route(id, { queuePosition: 2, estimatedWaitSeconds: 60 });
    await expect.poll(() => activities(customer.inbox.messages, "queuePosition").length).toBe(1);
    expect((activities(customer.inbox.messages, "queuePosition")[0] as ActivityOf<"queuePosition">).info).toEqual({
      position: 2,
    });
    sf.messaging.queuePosition(id, 1);
    await expect.poll(() => activities(customer.inbox.messages, "queuePosition").length).toBe(2);

    sf.messaging.accept(id);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    const joined = activities(customer.inbox.messages, "participantJoined") as ActivityOf<"participantJoined">[];
    expect(joined.map((m) => m.info)).toContainEqual({
      participant: { id: DEFAULT_AGENT.id, name: DEFAULT_AGENT.name },
      role: "agent",
    });

    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/liaison_desk_streams\{desk="salesforce"\} 1\b/);
    expect(metrics).toMatch(
      /liaison_adapter_request_seconds_count\{adapter="salesforce",operation="token",outcome="ok"\} 1\b/,
    );

    expect((await customer.send("I want a refund for order 1042")).ok).toBe(true);
    expect((await customer.send("It arrived broken")).ok).toBe(true);
    await expect.poll(() => agentTexts(sf, id)).toEqual(["I want a refund for order 1042", "It arrived broken"]);

    // The customer's typing reaches the agent; the agent's reaches the customer (not recorded).
    await request(customer.socket, "sendMessage", {
      conversationId: customer.init.conversationId,
      type: "ActivityMessage",
      activityType: "typing",
      info: { state: "start" },
    });
    await expect.poll(() => sf.messaging.conversation(id)?.endUserTyping).toBe(true);
    sf.messaging.agentTyping(id, true);
    await expect.poll(() => activities(customer.inbox.messages, "typing").length).toBe(1);
    expect((activities(customer.inbox.messages, "typing")[0] as ActivityOf<"typing">).info).toMatchObject({
      participant: { id: DEFAULT_AGENT.id, name: DEFAULT_AGENT.name },
      state: "start",
    });

    const entry = sf.messaging.agentSend(id, "Sorry to hear that, Sara. Refund on its way.");
    await expect.poll(() => chats(customer.inbox.messages).length).toBe(1);
    expect(chats(customer.inbox.messages)[0]).toMatchObject({
      id: `salesforce:${entry.identifier}`,
      from: { id: DEFAULT_AGENT.id, name: DEFAULT_AGENT.name },
      text: "Sorry to hear that, Sara. Refund on its way.",
    });

    const label2 = Buffer.from("%PDF-1.4 return label");
    sf.messaging.agentSendFile(id, {
      name: "return-label.pdf",
      mimeType: "application/pdf",
      content: label2,
      text: "Print this",
    });
    await expect.poll(() => chats(customer.inbox.messages).length).toBe(2);
    const file = chats(customer.inbox.messages)[1];
    expect(file?.text).toBe("Print this");
    expect(file?.attachments[0]).toMatchObject({ name: "return-label.pdf", type: "application/pdf" });
    const download = await fetch(file?.attachments[0]?.contentUrl ?? "");
    expect(Buffer.from(await download.arrayBuffer()).equals(label2)).toBe(true);

    const photo = Buffer.from("\u0089PNG broken parcel");
    expect(
      (
        await customer.send("Here is a photo", {
          attachments: [
            { type: "image/png", name: "parcel.png", contentUrl: `data:image/png;base64,${photo.toString("base64")}` },
          ],
        })
      ).ok,
    ).toBe(true);
    await expect.poll(() => sf.messaging.agentView(id).filter((item) => item.kind === "file").length).toBe(1);
    const uploaded = sf.messaging.agentView(id).find((item) => item.kind === "file");
    expect(uploaded?.file).toMatchObject({ name: "parcel.png", mimeType: "image/png" });
    expect(uploaded?.file?.content.equals(photo)).toBe(true);
    expect(agentTexts(sf, id)).toEqual(["I want a refund for order 1042", "It arrived broken", "Here is a photo"]);

    sf.messaging.agentEnd(id);
    await expect.poll(() => activities(customer.inbox.messages, "endOfConversation").length).toBe(1);
    const end = activities(customer.inbox.messages, "endOfConversation")[0] as ActivityOf<"endOfConversation">;
    expect(end.info.endedBy).toMatchObject({ id: DEFAULT_AGENT.id, role: "agent" });
    expect(await state(gateway, customer.init.conversationId)).toBe("ended");
    // The end user's own entries, echoed on the stream, never came back to the customer.
    expect(chats(customer.inbox.messages).map(label)).toEqual([
      "Sorry to hear that, Sara. Refund on its way.",
      "Print this",
    ]);
    await expect.poll(() => sf.messaging.streams().every((s) => !s.open)).toBe(true);
    expect(sf.violations).toEqual([]);
  });

  it("closes the Salesforce conversation when the customer ends, once", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const id = await sfId(gateway, customer.init.conversationId);
    await streaming(sf, id);
    sf.messaging.route(id);
    sf.messaging.accept(id);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    await customer.send("thanks, bye");
    await request(customer.socket, "endConversation", { conversationId: customer.init.conversationId, reason: "done" });
    await expect.poll(() => sf.messaging.conversation(id)?.status).toBe("Closed");
    expect(agentTexts(sf, id)).toEqual(["thanks, bye"]);
    await expect.poll(() => sf.messaging.streams().every((s) => !s.open)).toBe(true);
    const stored = await gateway.app.store.read(customer.init.conversationId, 0);
    expect(activities(stored, "endOfConversation")).toHaveLength(1);
    expect(sf.requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
    expect(sf.violations).toEqual([]);
  });

  it("serves a connector customer: routing attributes mapped by configuration, agent replies to the connector", async () => {
    const { sf, gateway } = await scenario(
      { messaging: { preChatFields: ["_firstName", "Phone", "Channel"] } },
      {
        SALESFORCE_ROUTING_ATTRIBUTES: JSON.stringify({ firstName: "_firstName", phone: "Phone", channel: "Channel" }),
      },
    );
    const connector = await open(gateway, gateway.apiKey);
    const delivered = collectMessages(connector);
    await request(connector, "registerConnector", { id: "sms", name: "SMS gateway", channel: "sms" });
    const init = (
      await postJson(
        `${gateway.url}/api/customer/init`,
        { firstName: "Bilal", channel: "sms", refId: "+923001234567", phone: "+923001234567" },
        { authorization: `Bearer ${gateway.apiKey}` },
      )
    ).body as InitResponse;
    await request(connector, "sendMessage", { conversationId: init.conversationId, text: "Is my parcel out?" });
    const id = await sfId(gateway, init.conversationId);
    await streaming(sf, id);
    expect(sf.messaging.conversation(id)?.routingAttributes).toEqual({
      _firstName: "Bilal",
      Phone: "+923001234567",
      Channel: "sms",
    });
    await expect.poll(() => agentTexts(sf, id)).toEqual(["Is my parcel out?"]);
    sf.messaging.route(id);
    sf.messaging.accept(id);
    sf.messaging.agentSend(id, "Yes, today");
    await expect
      .poll(() => delivered.messages.some((m) => m.type === "ChatMessage" && m.text === "Yes, today"))
      .toBe(true);
    expect(delivered.messages.find((m) => m.type === "ChatMessage")?.refId).toBe("+923001234567");
    sf.messaging.agentEnd(id);
    await expect.poll(() => activities(delivered.messages, "endOfConversation").length).toBe(1);
    expect(sf.violations).toEqual([]);
  });

  it("loses and doubles nothing through dropped streams, an outage, rate limits and a lost answer", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const id = await sfId(gateway, customer.init.conversationId);
    await streaming(sf, id);
    sf.messaging.route(id);
    sf.messaging.accept(id);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");

    sf.messaging.agentSend(id, "one");
    await expect.poll(() => chats(customer.inbox.messages).map(label)).toEqual(["one"]);
    // Dropped (reset, then cleanly closed) while the agent writes: replayed from the last event recorded.
    sf.messaging.dropStreams({ how: "destroy" });
    sf.messaging.agentSend(id, "two");
    sf.messaging.agentSend(id, "three");
    await expect.poll(() => chats(customer.inbox.messages).map(label)).toEqual(["one", "two", "three"]);
    sf.messaging.dropStreams({ how: "end" });
    sf.messaging.agentSend(id, "four");
    await expect.poll(() => chats(customer.inbox.messages).map(label)).toEqual(["one", "two", "three", "four"]);
    const reconnects = sf.messaging.streams().filter((s) => s.subject === sf.messaging.conversation(id)?.subject);
    expect(reconnects.length).toBeGreaterThanOrEqual(3);
    // Each reconnection started after the last event the one before it delivered and the gateway recorded.
    for (const [index, stream] of reconnects.entries()) {
      if (index === 0) continue;
      const before = reconnects[index - 1]?.delivered ?? [];
      if (before.length > 0) expect(Number(stream.lastEventId)).toBeGreaterThanOrEqual(Number(before.at(-1)));
    }

    // Salesforce down (503 to everything, the stream too), while both sides write.
    await sf.goDown("503");
    for (const text of ["c1", "c2"]) expect((await customer.send(text)).ok).toBe(true);
    sf.messaging.dropStreams();
    sf.messaging.agentSend(id, "five");
    await expect.poll(() => sf.requests.filter((r) => r.status === 503).length).toBeGreaterThan(1);
    await sf.comeUp();
    await expect.poll(() => agentTexts(sf, id), { timeout: 10_000 }).toEqual(["c1", "c2"]);
    await expect
      .poll(() => chats(customer.inbox.messages).map(label), { timeout: 10_000 })
      .toEqual(["one", "two", "three", "four", "five"]);

    // Rate limited: waited out for its Retry-After, then delivered once, in order.
    sf.failNext(1, 429, { path: /\/message$/, retryAfterSeconds: 1 });
    const limitedAt = Date.now();
    for (const text of ["d1", "d2"]) await customer.send(text);
    await expect.poll(() => agentTexts(sf, id), { timeout: 10_000 }).toEqual(["c1", "c2", "d1", "d2"]);
    expect(Date.now() - limitedAt).toBeGreaterThanOrEqual(900);

    // A message posted, its answer lost: the retry carries the same entry id and is shown once.
    sf.dropNext(1, { path: /\/message$/, when: "after" });
    await customer.send("e1");
    await customer.send("e2");
    await expect.poll(() => agentTexts(sf, id), { timeout: 10_000 }).toEqual(["c1", "c2", "d1", "d2", "e1", "e2"]);
    const store = await gateway.app.store.read(customer.init.conversationId, 0);
    expect(
      chats(store)
        .filter((m) => m.from.id === DEFAULT_AGENT.id)
        .map(label),
    ).toEqual(["one", "two", "three", "four", "five"]);
    expect(sf.violations).toEqual([]);
  });

  it("ignores unknown events, tells the customer when no agent is available, and renews a refused token", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const id = await sfId(gateway, customer.init.conversationId);
    await streaming(sf, id);
    sf.messaging.emit(id, "CONVERSATION_SOMETHING_NEW", { conversationId: id, whatever: true });
    sf.messaging.routingFailed(id, { failureType: "RoutingError", reason: "No agent is online." });
    await expect.poll(() => activities(customer.inbox.messages, "noAgentAvailable").length).toBe(1);
    expect(await state(gateway, customer.init.conversationId)).toBe("queued");

    // Salesforce refuses the bearer once (a 401 while the token is still good): a continuation token is used.
    sf.failNext(1, 401, { path: /\/message$/ });
    await customer.send("still there?");
    await expect.poll(() => agentTexts(sf, id)).toEqual(["still there?"]);
    expect(sf.requests.some((r) => r.path.endsWith("continuation-access-token") && r.status === 200)).toBe(true);
    expect(sf.violations).toEqual([]);
  });

  it("ends the conversation, for both sides to see, when the end user's token can no longer be renewed", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const id = await sfId(gateway, customer.init.conversationId);
    await streaming(sf, id);
    sf.messaging.route(id);
    sf.messaging.accept(id);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    const subject = sf.messaging.conversation(id)?.subject ?? "";
    sf.messaging.expireToken(subject);
    await expect.poll(() => activities(customer.inbox.messages, "endOfConversation").length).toBe(1);
    const end = activities(customer.inbox.messages, "endOfConversation")[0] as ActivityOf<"endOfConversation">;
    expect(end.info).toMatchObject({ reason: "salesforce_session_expired", endedBy: { role: "system" } });
    expect(await state(gateway, customer.init.conversationId)).toBe("ended");
  });

  it("shows /ready degraded when Salesforce refuses the org or deployment, and tells the customer", async () => {
    const { gateway } = await scenario({}, { SALESFORCE_MESSAGING_DEPLOYMENT: "Not_The_Deployment" });
    const customer = await webCustomer(gateway);
    await expect.poll(() => activities(customer.inbox.messages, "deliveryFailed").length).toBe(1);
    const ready = (await (await fetch(`${gateway.url}/ready`)).json()) as {
      status: string;
      problems?: Record<string, string>;
    };
    expect(ready.status).toBe("degraded");
    expect(ready.problems?.salesforce).toContain("Salesforce refuses the org id or the deployment (400)");
    expect(JSON.stringify(ready)).not.toMatch(/Not_The_Deployment|SALESFORCE_/);
  });

  it("reports a file Salesforce refuses for good to the customer, and goes on with the next message", async () => {
    const { sf, gateway } = await scenario({ messaging: { maxFileBytes: 8 } });
    const customer = await webCustomer(gateway);
    const id = await sfId(gateway, customer.init.conversationId);
    await streaming(sf, id);
    const big = Buffer.from("twenty bytes of file").toString("base64");
    const sent = await customer.send("", {
      attachments: [{ type: "text/plain", name: "notes.txt", contentUrl: `data:text/plain;base64,${big}` }],
    });
    await customer.send("after the file");
    await expect.poll(() => activities(customer.inbox.messages, "deliveryFailed").length).toBe(1);
    const failed = activities(customer.inbox.messages, "deliveryFailed")[0] as ActivityOf<"deliveryFailed">;
    expect(failed.info).toMatchObject({ destination: "salesforce" });
    expect(sent.ok).toBe(true);
    await expect.poll(() => agentTexts(sf, id)).toEqual(["after the file"]);
    expect(sf.requests.filter((r) => r.path.endsWith("/file")).map((r) => r.status)).toEqual([413]);
  });
});
