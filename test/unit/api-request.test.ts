import { once } from "node:events";
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ApiTimeoutError, apiRequest, header } from "../../server/adapters/http.js";
import { startHttpRecorder, type HttpRecorder, type RecordedRequest } from "../helpers/http-recorder.js";

const recorders: HttpRecorder[] = [];
afterEach(async () => {
  for (const recorder of recorders.splice(0)) await recorder.close();
});

async function start(
  answer: (req: RecordedRequest, res: ServerResponse) => void,
): Promise<{ url: string; received: RecordedRequest[] }> {
  const recorder = await startHttpRecorder(answer);
  recorders.push(recorder);
  return recorder;
}

describe("apiRequest (the adapters' HTTP client)", () => {
  it("sends the method, headers and JSON body, and reads status, headers and text of any status", async () => {
    const { url, received } = await start((_req, res) => {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "7" });
      res.end(JSON.stringify({ error: "too many" }));
    });
    const body = JSON.stringify({ msg: "héllo" });
    const response = await apiRequest(new URL(`${url}/api/v1/livechat/message?x=1`), {
      method: "POST",
      headers: { "content-type": "application/json", "x-auth-token": "t" },
      body,
      timeoutMs: 2_000,
    });
    expect(response.status).toBe(429);
    expect(header(response, "retry-after")).toBe("7");
    expect(header(response, "x-missing")).toBeUndefined();
    expect(JSON.parse(response.text)).toEqual({ error: "too many" });
    const [request] = received;
    expect(request?.method).toBe("POST");
    expect(request?.url).toBe("/api/v1/livechat/message?x=1");
    expect(request?.headers["x-auth-token"]).toBe("t");
    expect(request?.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
    expect(request?.text).toBe(body);
  });

  it("keeps connections open between calls: ten consecutive calls reuse them", async () => {
    const { url, received } = await start((_req, res) => res.end("{}"));
    for (let i = 0; i < 10; i++) {
      const response = await apiRequest(new URL(`${url}/ping`), { method: "GET", headers: {}, timeoutMs: 2_000 });
      expect(response.status).toBe(200);
    }
    expect(received).toHaveLength(10);
    // The pool may open a second connection while the first is being released, never one per call.
    expect(new Set(received.map((request) => request.socket)).size).toBeLessThanOrEqual(2);
  });

  it("sends a GET again on a fresh socket when the server closed the one it went out on (the keep-alive race)", async () => {
    let dropped: Socket | undefined;
    const { url, received } = await start((request, res) => {
      if (received.length === 2) {
        // The second request arrives on the kept-alive socket: close it without an answer, as a server whose idle
        // timeout fired just then does.
        dropped = request.socket;
        request.socket.destroy();
        return;
      }
      res.end(JSON.stringify({ n: received.length }));
    });
    const get = () => apiRequest(new URL(`${url}/room`), { method: "GET", headers: {}, timeoutMs: 2_000 });
    expect(JSON.parse((await get()).text)).toEqual({ n: 1 });
    expect(JSON.parse((await get()).text)).toEqual({ n: 3 });
    expect(received).toHaveLength(3);
    expect(received[2]!.socket).not.toBe(dropped);
  });

  it("leaves a POST that met the same race to its caller, whose retry knows whether a repeat is harmless", async () => {
    const { url, received } = await start((request, res) => {
      if (received.length === 2) request.socket.destroy();
      else res.end("{}");
    });
    const post = () =>
      apiRequest(new URL(`${url}/message`), { method: "POST", headers: {}, body: "{}", timeoutMs: 2_000 });
    await post();
    const error = await post().catch((caught: unknown) => caught);
    // undici's "other side closed": not a refusal, so the outbox treats the outcome as unknown.
    expect((error as { code?: unknown }).code).toBe("UND_ERR_SOCKET");
    expect(received).toHaveLength(2);
  });

  it("sends a form as multipart/form-data, the file's name, type and bytes intact", async () => {
    const { url, received } = await start((_req, res) => res.end("{}"));
    const form = new FormData();
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 252]);
    form.set("file", new Blob([bytes], { type: "image/png" }), "tiny.png");
    form.set("description", "a tiny picture");
    await apiRequest(new URL(`${url}/upload`), { method: "POST", headers: {}, body: form, timeoutMs: 2_000 });
    const request = received[0]!;
    const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(request.headers["content-type"] ?? "")?.[1];
    expect(boundary).toBeDefined();
    expect(request.headers["content-length"]).toBe(String(request.raw.length));
    // Parsed back the way a server does it.
    const parsed = await new Request("http://x/", {
      method: "POST",
      headers: { "content-type": request.headers["content-type"]! },
      body: request.raw,
    }).formData();
    const file = parsed.get("file") as File;
    expect(file.name).toBe("tiny.png");
    expect(file.type).toBe("image/png");
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(bytes);
    expect(parsed.get("description")).toBe("a tiny picture");
  });

  it("gives up with a TimeoutError when the answer does not come in time, and closes that connection", async () => {
    const { url, received } = await start(() => undefined); // never answers
    const started = performance.now();
    const error = await apiRequest(new URL(`${url}/slow`), { method: "GET", headers: {}, timeoutMs: 150 }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ApiTimeoutError);
    expect((error as ApiTimeoutError).code).toBe("ETIMEDOUT");
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(received).toHaveLength(1);
    if (!received[0]!.socket.destroyed) await once(received[0]!.socket, "close");
  });

  it("times out an answer whose body stalls half-way", async () => {
    const { url } = await start((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
      res.write('{"partial":');
    });
    const error = await apiRequest(new URL(`${url}/stall`), { method: "GET", headers: {}, timeoutMs: 150 }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ApiTimeoutError);
  });

  it("rejects when the connection dies mid-answer", async () => {
    const { url } = await start((req, res) => {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
      setTimeout(() => req.socket.destroy(), 20);
    });
    await expect(
      apiRequest(new URL(`${url}/reset`), { method: "GET", headers: {}, timeoutMs: 2_000 }),
    ).rejects.toThrow();
  });

  it("cuts off an answer longer than maxResponseBytes", async () => {
    const { url } = await start((_req, res) => res.end("x".repeat(10_000)));
    await expect(
      apiRequest(new URL(`${url}/big`), { method: "GET", headers: {}, timeoutMs: 2_000, maxResponseBytes: 1_000 }),
    ).rejects.toThrow(/longer than 1000 bytes/);
  });

  it("names the network error's code when nobody listens (the outbox reads it as certainly not delivered)", async () => {
    const { url } = await start((_req, res) => res.end());
    await recorders.pop()!.close();
    await expect(apiRequest(new URL(`${url}/gone`), { method: "GET", headers: {}, timeoutMs: 2_000 })).rejects.toThrow(
      /ECONNREFUSED/,
    );
  });
});
