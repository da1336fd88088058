import { afterEach, describe, expect, it } from "vitest";
import { LiveChatClient, LiveChatError } from "../../server/adapters/livechat/client.js";
import { RtmClosedError, RtmConnection, type RtmPush } from "../../server/adapters/livechat/rtm.js";
import { startFakeLiveChat, type FakeLiveChat, type FakeLiveChatOptions } from "../fakes/livechat/index.js";
import { capturedLogger } from "../helpers/log-lines.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(options: FakeLiveChatOptions = {}) {
  const fake = await startFakeLiveChat(options);
  cleanups.push(() => fake.close());
  const client = new LiveChatClient({
    apiUrl: fake.apiUrl,
    accountsUrl: fake.accountsUrl,
    clientId: fake.clientId,
    agentToken: fake.agentToken,
    organizationId: fake.organizationId,
    timeoutMs: 2_000,
    logger: capturedLogger().logger,
  });
  return { fake, client };
}

async function connect(fake: FakeLiveChat, client: LiveChatClient, pingIntervalMs?: number) {
  const pushes: RtmPush[] = [];
  const rtm = await RtmConnection.open({
    url: client.rtmUrl(),
    requestTimeoutMs: 2_000,
    onPush: (push) => pushes.push(push),
    ...(pingIntervalMs === undefined ? {} : { pingIntervalMs }),
  });
  cleanups.push(() => rtm.close());
  return { rtm, pushes };
}

const inbound = (fake: FakeLiveChat, action: string) =>
  fake.rtmFrames.filter((f) => f.direction === "in" && (f.frame as { action?: string }).action === action);

describe("LiveChat customer RTM connection", () => {
  it("logs in with the Bearer token, answers requests by request_id and hands pushes over in order", async () => {
    const { fake, client } = await setUp();
    const customer = await client.createCustomer();
    expect(client.rtmUrl()).toBe(`${fake.rtmUrl}?organization_id=${fake.organizationId}`);
    const { rtm, pushes } = await connect(fake, client);
    const login = await rtm.login(customer.accessToken);
    expect(login).toMatchObject({ customer: { id: customer.entityId }, chats: [] });
    expect((inbound(fake, "login")[0]?.frame as { payload: { token: string } }).payload.token).toBe(
      `Bearer ${customer.accessToken}`,
    );
    const started = await rtm.request("start_chat", { chat: { thread: { events: [] } } });
    expect(typeof started.chat_id).toBe("string");
    fake.agentSend(String(started.chat_id), "first");
    fake.agentSend(String(started.chat_id), "second");
    await expect
      .poll(() =>
        pushes.filter((p) => p.action === "incoming_event").map((p) => (p.payload.event as { text?: string }).text),
      )
      .toEqual(["first", "second"]);
  });

  it("rejects a failed response with LiveChat's error type, and a login with a bad token as authentication", async () => {
    const { fake, client } = await setUp();
    const { rtm } = await connect(fake, client);
    const refused = await rtm.login("dal:not-a-token").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LiveChatError);
    expect(refused).toMatchObject({ errorType: "authentication", retryable: true });
    expect((refused as Error).message).toContain("401");
    const customer = await client.createCustomer();
    await rtm.login(customer.accessToken);
    const missing = await rtm.request("get_chat", { chat_id: "NOPE" }).catch((error: unknown) => error);
    expect(missing).toMatchObject({ errorType: "not_found", retryable: false });
    fake.failNext(1, "too_many_requests", { transport: "rtm" });
    const limited = await rtm.request("list_chats", {}).catch((error: unknown) => error);
    expect(limited).toMatchObject({ errorType: "too_many_requests", retryable: true });
    expect((limited as Error).message).toContain("429");
  });

  it("pings while logged in, so the socket outlives LiveChat's ping deadline", async () => {
    const { fake, client } = await setUp({ rtm: { pingTimeoutMs: 300 } });
    const customer = await client.createCustomer();
    const { rtm } = await connect(fake, client, 100);
    await rtm.login(customer.accessToken);
    // Each ping comes within the deadline: well past three deadlines the socket is still the one logged in.
    await expect.poll(() => inbound(fake, "ping").length, { timeout: 3_000 }).toBeGreaterThanOrEqual(10);
    expect(fake.rtmConnections().filter((c) => c.open && c.loggedIn)).toHaveLength(1);
    expect(await rtm.request("list_chats", {})).toMatchObject({ chats_summary: [] });
  });

  it("ends with LiveChat's disconnect reason: reconnect (a new token first on expiry), or not", async () => {
    const { fake, client } = await setUp({ rtm: { loginTimeoutMs: 200 } });
    const late = await connect(fake, client);
    const timedOut = await late.rtm.closed.catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(RtmClosedError);
    expect(timedOut).toMatchObject({ reason: "connection_timeout", retryable: true, tokenEnded: false });

    const customer = await client.createCustomer();
    const first = await connect(fake, client);
    await first.rtm.login(customer.accessToken);
    fake.expireCustomerToken(customer.entityId);
    expect(await first.rtm.closed.catch((error: unknown) => error)).toMatchObject({
      reason: "access_token_expired",
      tokenEnded: true,
    });

    const renewed = await client.token(customer.entityId, true);
    expect(renewed.accessToken).not.toBe(customer.accessToken);
    const second = await connect(fake, client);
    await second.rtm.login(renewed.accessToken);
    fake.holdRtmResponses();
    const pending = second.rtm.request("list_chats", {}).catch((error: unknown) => error);
    await expect.poll(() => inbound(fake, "list_chats").length).toBe(1);
    fake.disconnectCustomer(customer.entityId, "logged_out_remotely");
    expect(await second.rtm.closed.catch((error: unknown) => error)).toMatchObject({
      reason: "logged_out_remotely",
      retryable: false,
    });
    // Whatever was waiting for an answer learns it will not come.
    expect(await pending).toBeInstanceOf(RtmClosedError);
    fake.releaseRtmResponses();

    const third = await connect(fake, client);
    fake.dropRtm();
    expect(await third.rtm.closed.catch((error: unknown) => error)).toMatchObject({
      reason: undefined,
      retryable: true,
    });
    const closedByUs = await connect(fake, client);
    closedByUs.rtm.close();
    await expect(closedByUs.rtm.closed).resolves.toBeUndefined();
  });

  it("reports a refused connection as a retryable close", async () => {
    const { fake, client } = await setUp();
    await fake.goDown("refuse");
    const error = await RtmConnection.open({
      url: client.rtmUrl(),
      requestTimeoutMs: 1_000,
      onPush: () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmClosedError);
    expect(error).toMatchObject({ retryable: true });
  });
});
