import { afterEach, describe, expect, it } from "vitest";
import { LiveChatClient, type LiveChatError } from "../../server/adapters/livechat/client.js";
import { startFakeLiveChat, type FakeLiveChatOptions } from "../fakes/livechat/index.js";
import { capturedLogger } from "../helpers/log-lines.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(options: FakeLiveChatOptions = {}, agentToken?: string) {
  const fake = await startFakeLiveChat(options);
  cleanups.push(() => fake.close());
  let now = Date.now();
  const { logger, lines } = capturedLogger();
  const client = new LiveChatClient({
    apiUrl: fake.apiUrl,
    accountsUrl: fake.accountsUrl,
    clientId: fake.clientId,
    agentToken: agentToken ?? fake.agentToken,
    organizationId: fake.organizationId,
    timeoutMs: 2_000,
    logger,
    now: () => now,
  });
  /** The problems logged at warn, in order: each once, when it appeared. */
  const problems = (): unknown[] =>
    lines
      .map((line) => JSON.parse(line) as { level: number; msg: string; problem?: unknown })
      .filter((line) => line.level === 40 && line.msg === "problem")
      .map((line) => line.problem);
  return { fake, client, problems, advance: (ms: number) => (now += ms) };
}

describe("LiveChat client", () => {
  it("creates a customer, reuses its token, and renews it for the same entity before it expires", async () => {
    const { client, advance } = await setUp({ customerTokenTtlSeconds: 3_600 });
    const customer = await client.createCustomer();
    expect(customer.accessToken).toMatch(/^dal:/);
    expect((await client.token(customer.entityId)).accessToken).toBe(customer.accessToken);
    advance(3_600_000 - 4 * 60_000);
    const renewed = await client.token(customer.entityId);
    expect(renewed.entityId).toBe(customer.entityId);
    expect(renewed.accessToken).not.toBe(customer.accessToken);
    const both = await Promise.all([client.token(customer.entityId, true), client.token(customer.entityId, true)]);
    expect(both[0].accessToken).toBe(both[1].accessToken);
  });

  it("replaces a token LiveChat calls invalid and repeats the call once", async () => {
    const { fake, client } = await setUp();
    const customer = await client.createCustomer();
    fake.revokeCustomerToken(customer.entityId);
    expect(await client.call(customer.entityId, "list_chats", {})).toMatchObject({ chats_summary: [] });
    expect(fake.calls.map((call) => [call.action, call.outcome])).toEqual([
      ["list_chats", "authentication"],
      ["list_chats", "ok"],
    ]);
  });

  it("classifies LiveChat's errors by type: retry, or a refusal for good", async () => {
    const { fake, client, problems } = await setUp();
    const { entityId } = await client.createCustomer();
    const failure = async (type: Parameters<typeof fake.failNext>[1]) => {
      fake.failNext(1, type, { action: "list_chats" });
      return (await client.call(entityId, "list_chats", {}).catch((error: unknown) => error)) as LiveChatError;
    };
    for (const type of ["too_many_requests", "internal", "service_unavailable", "request_timeout"] as const) {
      expect(await failure(type)).toMatchObject({ errorType: type, retryable: true });
    }
    for (const type of ["validation", "authorization", "customer_banned", "license_expired"] as const) {
      expect(await failure(type)).toMatchObject({ errorType: type, retryable: false });
    }
    expect((await failure("too_many_requests")).message).toContain("429");
    // A license served from another region: retried (nothing works until an operator fixes the URL), and said:
    // the region and the variable to the log, once however often it is met, and neither to /ready.
    fake.failNext(2, "misdirected_request", { action: "list_chats", data: { region: "fra" } });
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(await client.call(entityId, "list_chats", {}).catch((e: unknown) => e)).toMatchObject({
        errorType: "misdirected_request",
        retryable: true,
      });
    }
    expect(client.problem()).toEqual({
      log: "LiveChat serves this license from region fra: point LIVECHAT_API_URL at it",
      ready: "LiveChat serves this license from another region than the one Liaison calls",
    });
    expect(problems()).toEqual(["LiveChat serves this license from region fra: point LIVECHAT_API_URL at it"]);
    await client.call(entityId, "list_chats", {});
    expect(client.problem()).toBeUndefined();
    await fake.goDown("refuse");
    const refused = (await client.call(entityId, "list_chats", {}).catch((e: unknown) => e)) as LiveChatError;
    expect(refused.retryable).toBe(true);
  });

  it("says while the accounts server refuses the agent token, and not for a customer LiveChat no longer has", async () => {
    const { fake, client, problems } = await setUp(
      {
        agentTokens: [
          { token: "agent-oauth", agentId: "anna@example.org" },
          { token: "no-scope", agentId: "anna@example.org", scopes: ["chats--my:ro"] },
        ],
      },
      "agent-oauth",
    );
    const gone = (await client.token("00000000-0000-4000-8000-000000000000").catch((e: unknown) => e)) as LiveChatError;
    expect(gone).toMatchObject({ errorType: "resource_not_found", retryable: false });
    expect(client.problem()).toBeUndefined();
    fake.expireAgentToken("agent-oauth");
    const refused = (await client.createCustomer().catch((e: unknown) => e)) as LiveChatError;
    expect(refused).toMatchObject({ errorType: "invalid_grant", retryable: true });
    expect(refused.message).toContain("401");
    expect(client.problem()?.log).toContain("LIVECHAT_AGENT_TOKEN");
    expect(client.problem()?.ready).toBe(
      "LiveChat refuses the agent token (401): it must be an agent's OAuth access token with scope customers:own " +
        "for Liaison's LiveChat app",
    );
    expect(JSON.stringify(client.problem())).not.toContain("agent-oauth");
    expect(problems()).toEqual([client.problem()?.log]);

    const unscoped = new LiveChatClient({
      apiUrl: fake.apiUrl,
      accountsUrl: fake.accountsUrl,
      clientId: fake.clientId,
      agentToken: "no-scope",
      organizationId: fake.organizationId,
      timeoutMs: 2_000,
      logger: capturedLogger().logger,
    });
    await expect(unscoped.createCustomer()).rejects.toMatchObject({ errorType: "access_denied" });
    expect(unscoped.problem()?.ready).toContain("customers:own");
  });
});
