import type { Socket } from "socket.io-client";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityOf, ChatMessage, InitResponse, Message } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { collectMessages, connect, postJson, request, webCustomer as startWebCustomer } from "../helpers/socket.js";
import {
  DEFAULT_AGENT,
  startFakeSalesforce,
  type FakeSalesforce,
  type FakeSalesforceOptions,
} from "../fakes/salesforce/index.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Liaison with the Salesforce desk on the legacy Chat REST API, against a fake Salesforce. */
async function scenario(fakeOptions: FakeSalesforceOptions = {}, env: Record<string, string> = {}) {
  const sf = await startFakeSalesforce({ ...fakeOptions, chat: { pollHoldMs: 300, ...fakeOptions.chat } });
  cleanups.push(() => sf.close());
  const gateway = await startTestApp(
    {
      SALESFORCE_API: "chat",
      SALESFORCE_CHAT_URL: sf.chat.url,
      SALESFORCE_ORG_ID: sf.orgId,
      SALESFORCE_DEPLOYMENT_ID: sf.chat.deploymentId,
      SALESFORCE_BUTTON_ID: sf.chat.buttonId,
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

/** The chat session key of a Liaison conversation, once the chat was requested. */
const chatKey = async (gateway: TestApp, conversationId: string): Promise<string> => {
  let found: string | undefined;
  await expect
    .poll(async () => {
      const conversation = await gateway.app.store.get(conversationId);
      found = conversation?.desk.openedAt === undefined ? undefined : conversation.desk.ids.chatKey;
      return found;
    })
    .toBeTruthy();
  return found ?? "";
};
const visitorTexts = (sf: FakeSalesforce, key: string) =>
  sf.chat
    .agentView(key)
    .filter((item) => item.from === "visitor")
    .map((item) => item.text);
const chats = (messages: Message[]) => messages.filter((m): m is ChatMessage => m.type === "ChatMessage");
const texts = (messages: Message[]) => chats(messages).map((m) => m.text);
const activities = (messages: Message[], type: string) =>
  messages.filter((m) => m.type === "ActivityMessage" && m.activityType === type);
const state = async (gateway: TestApp, conversationId: string) => (await gateway.app.store.get(conversationId))?.state;

describe("Salesforce desk (legacy Chat REST API) end to end", () => {
  it("carries a web conversation through its whole life: queued, agent joins, both ways, typing, files, agent ends", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway, { subject: "Billing" });
    const key = await chatKey(gateway, customer.init.conversationId);
    const init = sf.chat.session(key)?.init;
    expect(init).toMatchObject({
      organizationId: sf.orgId,
      deploymentId: sf.chat.deploymentId,
      buttonId: sf.chat.buttonId,
      visitorName: "Sara Khan",
      receiveQueueUpdates: true,
      isPost: true,
    });
    expect(init?.prechatDetails).toContainEqual(expect.objectContaining({ label: "Email", value: "sara@example.org" }));
    expect(init?.prechatEntities).toEqual([expect.objectContaining({ entityName: "Contact" })]);

    // ChatRequestSuccess (position 1), then a queue update.
    await expect.poll(() => activities(customer.inbox.messages, "queuePosition").length).toBe(1);
    sf.chat.queueUpdate(key, 3, 120);
    await expect.poll(() => activities(customer.inbox.messages, "queuePosition").length).toBe(2);
    expect((activities(customer.inbox.messages, "queuePosition")[1] as ActivityOf<"queuePosition">).info).toEqual({
      position: 3,
      estimatedWaitSeconds: 120,
    });

    sf.chat.accept(key);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    const joined = activities(customer.inbox.messages, "participantJoined") as ActivityOf<"participantJoined">[];
    expect(joined.map((m) => m.info)).toContainEqual({
      participant: { id: DEFAULT_AGENT.id, name: DEFAULT_AGENT.name },
      role: "agent",
    });

    await customer.send("Where is my refund?");
    await customer.send("Order 1042");
    await expect.poll(() => visitorTexts(sf, key)).toEqual(["Where is my refund?", "Order 1042"]);

    sf.chat.agentTyping(key, true);
    await expect.poll(() => activities(customer.inbox.messages, "typing").length).toBe(1);
    sf.chat.agentSend(key, "Let me check.");
    sf.chat.agentSend(key, "It went out today.");
    await expect.poll(() => texts(customer.inbox.messages)).toEqual(["Let me check.", "It went out today."]);
    expect(chats(customer.inbox.messages)[0]?.from).toEqual({ id: DEFAULT_AGENT.id, name: DEFAULT_AGENT.name });

    // A file: the agent gets a signed, expiring Liaison link in the text.
    const photo = Buffer.from("\u0089PNG parcel");
    await customer.send("photo", {
      attachments: [
        { type: "image/png", name: "parcel.png", contentUrl: `data:image/png;base64,${photo.toString("base64")}` },
      ],
    });
    await expect.poll(() => visitorTexts(sf, key).length).toBe(3);
    const line = visitorTexts(sf, key)[2] ?? "";
    expect(line.startsWith(`photo\nparcel.png: ${gateway.url}/files/salesforce/`)).toBe(true);
    const link = line.slice(line.indexOf("http"));
    const download = await fetch(link);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(photo)).toBe(true);
    expect((await fetch(link.replace(/sig=[^&]+/, "sig=forged"))).status).toBe(403);

    sf.chat.agentEnd(key, "agent");
    await expect.poll(() => activities(customer.inbox.messages, "endOfConversation").length).toBe(1);
    const end = activities(customer.inbox.messages, "endOfConversation")[0] as ActivityOf<"endOfConversation">;
    expect(end.info.endedBy).toMatchObject({ id: DEFAULT_AGENT.id, role: "agent" });
    // Every POST carried the next sequence: 1 (ChasitorInit), then one per message.
    expect(sf.chat.session(key)?.lastRequestSequence).toBe(4);
    expect(sf.violations).toEqual([]);
  });

  it("ends the chat with ChatEnd when the customer ends, and tells the customer when no agent is available", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const key = await chatKey(gateway, customer.init.conversationId);
    sf.chat.accept(key);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    await customer.send("bye");
    await request(customer.socket, "endConversation", { conversationId: customer.init.conversationId, reason: "done" });
    await expect.poll(() => sf.chat.session(key)?.chatEndReason).toBe("client");
    expect(visitorTexts(sf, key)).toEqual(["bye"]);

    sf.chat.setAvailable(false);
    const second = await webCustomer(gateway);
    await expect.poll(() => activities(second.inbox.messages, "noAgentAvailable").length).toBe(1);
    await expect.poll(() => state(gateway, second.init.conversationId)).toBe("ended");
    expect(sf.violations).toEqual([]);
  });

  it("serves a connector customer, agent replies delivered to the connector", async () => {
    const { sf, gateway } = await scenario();
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
    const key = await chatKey(gateway, init.conversationId);
    sf.chat.accept(key);
    await expect.poll(() => visitorTexts(sf, key)).toEqual(["Is my parcel out?"]);
    sf.chat.agentSend(key, "Yes, today");
    await expect.poll(() => texts(delivered.messages)).toEqual(["Yes, today"]);
    sf.chat.agentEnd(key);
    await expect.poll(() => activities(delivered.messages, "endOfConversation").length).toBe(1);
    expect(sf.violations).toEqual([]);
  });

  it("loses and doubles nothing through affinity changes (503), outages, 5xx and a lost answer", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const key = await chatKey(gateway, customer.init.conversationId);
    sf.chat.accept(key);
    await expect.poll(() => state(gateway, customer.init.conversationId)).toBe("active");
    sf.chat.agentSend(key, "one");
    await expect.poll(() => texts(customer.inbox.messages)).toEqual(["one"]);

    // The server hands the session over: 503, ReconnectSession, ChasitorSessionData, ChasitorResyncState.
    sf.chat.changeAffinity(key);
    sf.chat.agentSend(key, "two");
    await customer.send("c1");
    await expect.poll(() => texts(customer.inbox.messages)).toEqual(["one", "two"]);
    await expect.poll(() => visitorTexts(sf, key)).toEqual(["c1"]);
    sf.chat.changeAffinity(key);
    await customer.send("c2");
    sf.chat.agentSend(key, "three");
    await expect.poll(() => texts(customer.inbox.messages)).toEqual(["one", "two", "three"]);
    await expect.poll(() => visitorTexts(sf, key)).toEqual(["c1", "c2"]);
    const reconnects = sf.requests.filter((r) => r.path.endsWith("/System/ReconnectSession"));
    expect(reconnects.map((r) => r.status)).toEqual([200, 200]);
    expect(
      sf.requests.filter((r) => r.path.endsWith("/Chasitor/ChasitorResyncState") && r.status === 200),
    ).toHaveLength(2);

    // An outage (every connection reset) and 5xx answers: retried, in order.
    await sf.goDown("reset");
    await customer.send("c3");
    await expect.poll(() => sf.requests.some((r) => r.status === 0)).toBe(true);
    await sf.comeUp();
    sf.failNext(2, 500, { path: /ChatMessage$/ });
    await customer.send("c4");
    sf.chat.agentSend(key, "four");
    await expect.poll(() => visitorTexts(sf, key), { timeout: 10_000 }).toEqual(["c1", "c2", "c3", "c4"]);
    await expect
      .poll(() => texts(customer.inbox.messages), { timeout: 10_000 })
      .toEqual(["one", "two", "three", "four"]);

    // A POST that landed but whose answer was lost: the retry keeps its sequence and Salesforce drops it.
    sf.dropNext(1, { path: /ChatMessage$/, when: "after" });
    await customer.send("c5");
    await customer.send("c6");
    await expect.poll(() => visitorTexts(sf, key), { timeout: 10_000 }).toEqual(["c1", "c2", "c3", "c4", "c5", "c6"]);
    expect(sf.chat.session(key)?.droppedDuplicates.length).toBeGreaterThanOrEqual(1);
    const stored = await gateway.app.store.read(customer.init.conversationId, 0);
    expect(texts(stored).filter((t) => !t.startsWith("c"))).toEqual(["one", "two", "three", "four"]);
    expect(sf.violations).toEqual([]);
  });

  it("carries the customer's typing in order with the messages, through 5xx and lost answers, costing no message", async () => {
    const { sf, gateway } = await scenario();
    const customer = await webCustomer(gateway);
    const conversationId = customer.init.conversationId;
    const typing = (state: "start" | "stop") =>
      request(customer.socket, "sendMessage", {
        conversationId,
        type: "ActivityMessage",
        activityType: "typing",
        info: { state },
      });
    const visitorTyping = () => sf.chat.session(key)?.visitorTyping;
    const key = await chatKey(gateway, conversationId);

    // The chat was requested, no agent yet: ChasitorTyping needs only the chat request.
    await typing("start");
    await expect.poll(visitorTyping, { timeout: 10_000 }).toBe(true);
    sf.chat.accept(key);
    await expect.poll(() => state(gateway, conversationId), { timeout: 10_000 }).toBe("active");

    await customer.send("m1");
    await typing("stop");
    await expect.poll(visitorTyping, { timeout: 10_000 }).toBe(false);
    await expect.poll(() => visitorTexts(sf, key), { timeout: 10_000 }).toEqual(["m1"]);

    // Salesforce answers 500 to a typing POST: retried with its number, and the message behind it waits its turn.
    sf.failNext(2, 500, { path: /ChasitorTyping$/ });
    await typing("start");
    await customer.send("m2");
    await expect.poll(() => visitorTexts(sf, key), { timeout: 10_000 }).toEqual(["m1", "m2"]);
    expect(visitorTyping()).toBe(true);

    // A typing POST that landed but whose answer was lost: its retry keeps the number and Salesforce drops it.
    sf.dropNext(1, { path: /ChasitorNotTyping$/, when: "after" });
    await typing("stop");
    await customer.send("m3");
    await expect.poll(() => visitorTexts(sf, key), { timeout: 10_000 }).toEqual(["m1", "m2", "m3"]);
    expect(visitorTyping()).toBe(false);
    expect(sf.chat.session(key)?.droppedDuplicates).toContainEqual(
      expect.objectContaining({ path: expect.stringMatching(/ChasitorNotTyping$/) as unknown }),
    );

    // A message answered 500 with typing queued behind it, typing sent between messages, an affinity change.
    sf.failNext(1, 500, { path: /ChatMessage$/ });
    await customer.send("m4");
    await typing("start");
    await customer.send("m5");
    await typing("stop");
    sf.chat.changeAffinity(key);
    await typing("start");
    await customer.send("m6");
    await expect.poll(() => visitorTexts(sf, key), { timeout: 10_000 }).toEqual(["m1", "m2", "m3", "m4", "m5", "m6"]);
    await expect.poll(visitorTyping, { timeout: 10_000 }).toBe(true);
    await typing("stop");
    await expect.poll(visitorTyping, { timeout: 10_000 }).toBe(false);

    // Every typing POST that went out took its own number: nothing was dropped but repeats of the same request.
    const typingPosts = sf.requests.filter((r) => /Chasitor(Not)?Typing$/.test(r.path) && r.status === 200);
    expect(typingPosts.length).toBeGreaterThanOrEqual(5);
    expect(sf.violations).toEqual([]);
  });

  it("shows /ready degraded when Salesforce does not know the deployment, and tells the customer", async () => {
    const { gateway } = await scenario({}, { SALESFORCE_DEPLOYMENT_ID: "572000000000999" });
    const customer = await webCustomer(gateway);
    await expect.poll(() => activities(customer.inbox.messages, "noAgentAvailable").length).toBe(1);
    await expect
      .poll(async () => {
        const ready = (await (await fetch(`${gateway.url}/ready`)).json()) as { problems?: Record<string, string> };
        return ready.problems?.salesforce ?? "";
      })
      .toContain("Salesforce refuses the org id or the deployment (400)");
    const ready = JSON.stringify(await (await fetch(`${gateway.url}/ready`)).json());
    expect(ready).not.toMatch(/572000000000999|SALESFORCE_/);
  });
});
