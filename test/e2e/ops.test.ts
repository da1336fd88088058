import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
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
