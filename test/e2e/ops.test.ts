import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeDialogflow } from "../fakes/dialogflow/index.js";
import { startFakeLiveChat } from "../fakes/livechat/index.js";
import { startFakeSalesforce } from "../fakes/salesforce/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { connect, postJson, request, webCustomer } from "../helpers/socket.js";

describe("operations endpoints", () => {
  let gateway: TestApp;
  beforeAll(async () => {
    gateway = await startTestApp();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it("/health and /ready answer while the store is up", async () => {
    expect(await (await fetch(`${gateway.url}/health`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${gateway.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("/metrics counts sockets, conversations by state and messages by channel", async () => {
    const init = await postJson(`${gateway.url}/api/customer/init`, {
      firstName: "Omar",
      channel: "web",
      email: "o@example.org",
    });
    const { conversationId, token } = init.body as { conversationId: string; token: string };
    const customer = await connect(gateway.url);
    await request(customer, "joinConversation", { conversationId, id: "x", name: "Omar", token });
    await request(customer, "sendMessage", { conversationId, text: "hello" });
    const response = await fetch(`${gateway.url}/metrics`);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^liaison_connected_sockets 1$/m);
    expect(text).toMatch(/^liaison_conversations\{state="queued"\} [1-9]/m);
    expect(text).toMatch(/^liaison_messages_in_total\{channel="web",role="customer"\} 1$/m);
    expect(text).toMatch(/^liaison_process_resident_memory_bytes \d+/m);
    customer.close();
  });

  it("/ready fails with 503 once the store is gone, and the process still answers /health", async () => {
    const other = await startTestApp();
    await other.app.store.close();
    const ready = await fetch(`${other.url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ error: { code: "unavailable" } });
    expect((await fetch(`${other.url}/health`)).status).toBe(200);
    await other.close();
  });
});

describe("operations: failures", () => {
  it("answers a path with a malformed percent-encoding with 400 invalid_payload, logging no error", async () => {
    const { logger, lines } = capturedLogger();
    const gateway = await startTestApp({}, { logger });
    try {
      const response = await fetch(`${gateway.url}/api/customer/transcript/%ff/pdf`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: "invalid_payload" } });
      expect(lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
    } finally {
      await gateway.close();
    }
  });

  it("puts /metrics behind METRICS_TOKEN when it is set", async () => {
    const token = "metrics-token-0123456789";
    const gateway = await startTestApp({ METRICS_TOKEN: token });
    try {
      expect((await fetch(`${gateway.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${gateway.url}/metrics`, { headers: { authorization: "Bearer wrong-token" } })).status).toBe(
        401,
      );
      const allowed = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(allowed.status).toBe(200);
      expect(await allowed.text()).toContain("liaison_connected_sockets");
    } finally {
      await gateway.close();
    }
  });

  it("ends the process, logged and non-zero, on a rejection nobody handles", async () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/unhandled-rejection.ts"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    const fatal = output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .find((line) => line.level === 60);
    expect(fatal?.msg).toBe("unhandled rejection");
  });
});

describe("operations: /ready while adapters have problems", () => {
  it("names each problem without a variable's name or value, and logs the details once, as the problem appears", async () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    try {
      // Recognisable values: none may reach /ready.
      const agentToken = "dal:agent-token-of-the-ops-test";
      const clientId = "c11e47ed0fa110ff1ce0c11e47ed0f00";
      const organizationId = "0a5e1c7e-7e57-4000-8000-00000000beef";
      const livechat = await startFakeLiveChat({
        clientId,
        organizationId,
        agentTokens: [{ token: agentToken, agentId: "anna@example.org", scopes: ["customers:own"] }],
      });
      cleanups.push(() => livechat.close());
      livechat.expireAgentToken(agentToken);
      const df = await startFakeDialogflow({ projectId: "ops-test-project" });
      cleanups.push(() => df.close());
      df.esAgent();
      const sf = await startFakeSalesforce();
      cleanups.push(() => sf.close());
      const env: Record<string, string> = {
        DESK: "livechat",
        LIVECHAT_API_URL: livechat.apiUrl,
        LIVECHAT_ACCOUNTS_URL: livechat.accountsUrl,
        LIVECHAT_CLIENT_ID: clientId,
        LIVECHAT_AGENT_TOKEN: agentToken,
        LIVECHAT_ORGANIZATION_ID: organizationId,
        LIVECHAT_WEBHOOK_SECRET: "livechat-webhook-secret-of-the-ops-test",
        BOT: "dialogflow",
        // An agent the fake does not have: Dialogflow answers 404 and names it.
        DIALOGFLOW_PROJECT_ID: "no-such-project-of-the-ops-test",
        DIALOGFLOW_API_URL: df.url,
        DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(df.serviceAccount),
        // Not the desk, but enabled: it checks its deployment at start, which Salesforce does not know.
        SALESFORCE_API: "chat",
        SALESFORCE_CHAT_URL: sf.chat.url,
        SALESFORCE_ORG_ID: sf.orgId,
        SALESFORCE_DEPLOYMENT_ID: "572000000004711",
        SALESFORCE_BUTTON_ID: sf.chat.buttonId,
      };
      const { logger, lines } = capturedLogger();
      const gateway = await startTestApp(env, { logger, tuning: { retryMaxMs: 200, noAgentRetryMaxMs: 200 } });
      cleanups.push(() => gateway.close());
      const readies: string[] = [];
      const problems = async (): Promise<Record<string, string>> => {
        const text = await (await fetch(`${gateway.url}/ready`)).text();
        readies.push(text);
        return (JSON.parse(text) as { problems?: Record<string, string> }).problems ?? {};
      };

      const customer = await webCustomer(gateway.url);
      cleanups.push(() => {
        customer.socket.close();
      });
      await customer.send("hello");
      // Dialogflow fails for good: the bot hands over to LiveChat, which refuses the agent token; the outbox retries.
      await expect.poll(problems, { timeout: 10_000 }).toMatchObject({
        dialogflow: "Dialogflow has no such agent (404)",
        livechat: expect.stringMatching(/^LiveChat refuses the agent token \(401\): .*customers:own/) as unknown,
        salesforce: expect.stringMatching(/^Salesforce refuses the org id or the deployment \(400\)/) as unknown,
      });
      // Retries go on meanwhile, and /ready is asked again.
      await expect
        .poll(() => lines.filter((line) => line.includes('"desk:livechat"') && line.includes("still failing")).length)
        .toBeGreaterThanOrEqual(2);
      await problems();

      // Every value but the choices among adapters (`livechat`, `dialogflow`, `chat`), which /ready's keys name.
      const values = Object.entries(env)
        .filter(([name]) => !["DESK", "BOT", "SALESFORCE_API"].includes(name))
        .map(([, value]) => value);
      const secrets = [df.serviceAccount.private_key_id, df.serviceAccount.client_email, "127.0.0.1"];
      for (const text of readies) {
        expect(text).not.toMatch(/[A-Z][A-Z\d]*_[A-Z\d_]+/);
        for (const value of [...values, ...secrets]) expect(text).not.toContain(value);
      }

      // The details went to the log, at warn, each once however often it was met or asked for.
      const logged = lines
        .map((line) => JSON.parse(line) as { level: number; component?: string; msg: string; problem?: string })
        .filter((line) => line.msg === "problem")
        .map((line) => [line.level, line.component, line.problem]);
      expect(logged).toHaveLength(3);
      expect(logged).toEqual(
        expect.arrayContaining([
          [40, "dialogflow", expect.stringMatching(/no-such-project-of-the-ops-test.*check DIALOGFLOW_PROJECT_ID/)],
          [40, "livechat", expect.stringMatching(/^LiveChat refused LIVECHAT_AGENT_TOKEN .* for LIVECHAT_CLIENT_ID$/)],
          [40, "salesforce", expect.stringMatching(/SALESFORCE_ORG_ID, SALESFORCE_DEPLOYMENT_ID/)],
        ]),
      );
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }
  });
});
