import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { emailTranscript, fetchTranscriptPdf, initConversation } from "../../clients/sdk/index.js";
import { startHttpRecorder, type HttpRecorder } from "../helpers/http-recorder.js";

const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A stand-in gateway that never answers the first init (the response is lost) and answers the second. */
async function flakyGateway(): Promise<{ url: string; bodies: Record<string, unknown>[] }> {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString()));
    req.on("end", () => {
      bodies.push(JSON.parse(raw) as Record<string, unknown>);
      if (bodies.length === 1) return; // hang: the client times out
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          conversationId: "c_1",
          participant: { id: "p_1", name: "Sara" },
          token: "t".repeat(43),
          requestId: bodies[0]?.requestId,
          timestamp: "2026-11-21T10:00:00.000Z",
        }),
      );
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

describe("SDK initConversation", () => {
  it("retries a timed-out init once with the same generated requestId, so no second conversation starts", async () => {
    const gateway = await flakyGateway();
    const result = await initConversation(
      gateway.url,
      { firstName: "Sara", channel: "web", email: "s@x.org" },
      { timeoutMs: 300 },
    );
    expect(result.conversationId).toBe("c_1");
    expect(gateway.bodies).toHaveLength(2);
    expect(typeof gateway.bodies[0]?.requestId).toBe("string");
    expect(gateway.bodies[1]?.requestId).toBe(gateway.bodies[0]?.requestId);
  });

  it("keeps a requestId the caller chose", async () => {
    const gateway = await flakyGateway();
    await initConversation(
      gateway.url,
      { firstName: "Sara", channel: "web", email: "s@x.org", requestId: "mine-1" },
      { timeoutMs: 300 },
    );
    expect(gateway.bodies.map((body) => body.requestId)).toEqual(["mine-1", "mine-1"]);
  });
});

describe("SDK transcript helpers", () => {
  const recorders: HttpRecorder[] = [];
  afterEach(async () => {
    for (const recorder of recorders.splice(0)) await recorder.close();
  });
  async function gateway(): Promise<HttpRecorder> {
    const recorder = await startHttpRecorder((request, res) => {
      if (request.url.endsWith("/pdf")) res.writeHead(200, { "content-type": "application/pdf" }).end("%PDF-1.7");
      else res.writeHead(200).end();
    });
    recorders.push(recorder);
    return recorder;
  }

  it("send the credential in the Authorization header, never in the URL (which proxies log)", async () => {
    const recorder = await gateway();
    await fetchTranscriptPdf(recorder.url, "c_1", { token: "customer-token" });
    await emailTranscript(recorder.url, "c_1", { token: "customer-token" });
    for (const request of recorder.received) {
      expect(request.headers.authorization).toBe("Bearer customer-token");
      expect(request.url).not.toContain("customer-token");
    }
    expect(recorder.received.map((request) => `${request.method} ${request.url}`)).toEqual([
      "GET /api/customer/transcript/c_1/pdf",
      "POST /api/customer/transcript/c_1/email",
    ]);
  });

  it("e-mail with POST, the recipient an API key chooses in the JSON body", async () => {
    const recorder = await gateway();
    await emailTranscript(recorder.url, "c_1", { apiKey: "back-office-key" }, { to: "records@example.org" });
    await emailTranscript(recorder.url, "c_2", { apiKey: "back-office-key" });
    const [chosen, customers] = recorder.received;
    expect(chosen?.method).toBe("POST");
    expect(chosen?.url).toBe("/api/customer/transcript/c_1/email");
    expect(chosen?.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(chosen?.text ?? "")).toEqual({ to: "records@example.org" });
    expect(JSON.parse(customers?.text ?? "")).toEqual({});
  });
});
