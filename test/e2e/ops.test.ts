import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { capturedLogger } from "../helpers/log-lines.js";
import { connect, postJson, request } from "../helpers/socket.js";

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
