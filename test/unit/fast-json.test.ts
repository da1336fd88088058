import { once } from "node:events";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../../server/core/errors.js";
import { fastJsonRoutes, type FastJsonHandler, type FastJsonRoute } from "../../server/http/fast-json.js";

interface Received {
  headers: IncomingHttpHeaders;
  body: unknown;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  }
});

/**
 * A real HTTP server whose listener is the fast routes in front of a fallback standing for the express app: each
 * test sees what the handler received, what fell through, and the answer on the wire.
 */
async function start(
  handler: FastJsonHandler = (_headers, body) =>
    Promise.resolve({ status: 200, contentType: "text/plain; charset=utf-8", body: JSON.stringify(body) }),
  options: {
    maxBytes?: number;
    corsOrigins?: string[];
    shuttingDown?: () => boolean;
    route?: Omit<FastJsonRoute, "handler">;
  } = {},
) {
  const received: Received[] = [];
  const fellThrough: string[] = [];
  const logged: unknown[] = [];
  const logger = pino(
    { level: "error" },
    {
      write: (line: string) => {
        logged.push(JSON.parse(line));
      },
    },
  );
  const fast = fastJsonRoutes(
    new Map([
      [
        "/hook",
        {
          ...options.route,
          handler: async (headers, body) => {
            received.push({ headers, body });
            return handler(headers, body);
          },
        },
      ],
    ]),
    {
      maxBytes: options.maxBytes ?? 1_000,
      corsOrigins: options.corsOrigins ?? [],
      isShuttingDown: options.shuttingDown ?? (() => false),
      logger,
    },
  );
  const server = createServer((req, res) => {
    if (fast(req, res)) return;
    fellThrough.push(`${req.method ?? ""} ${req.url ?? ""}`);
    req.resume();
    req.once("end", () => res.end("express"));
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const send = (
    path: string,
    body: string | Buffer | undefined,
    headers: Record<string, string> = { "content-type": "application/json" },
    method = "POST",
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.once("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.once("error", reject);
      req.end(body);
    });
  return { send, received, fellThrough, logged };
}

const errorOf = (reply: Reply): unknown => (JSON.parse(reply.text) as { error: unknown }).error;

describe("fastJsonRoutes (the webhook's path around express)", () => {
  it("takes a JSON POST to its exact path: the handler gets the headers and parsed body, its answer goes out whole", async () => {
    const { send, received, fellThrough } = await start();
    const reply = await send("/hook", JSON.stringify({ a: [1, "é"] }), {
      "content-type": "application/json; charset=UTF-8",
      "x-token": "t",
    });
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('{"a":[1,"é"]}');
    expect(reply.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength('{"a":[1,"é"]}')));
    expect(reply.headers["x-content-type-options"]).toBe("nosniff");
    expect(received).toHaveLength(1);
    expect(received[0]?.body).toEqual({ a: [1, "é"] });
    expect(received[0]?.headers["x-token"]).toBe("t");
    expect(fellThrough).toEqual([]);
  });

  it("leaves everything but the plain case to express: a query, another method or path, type, charset or coding", async () => {
    const { send, received, fellThrough } = await start();
    const json = JSON.stringify({ a: 1 });
    const replies = [
      await send("/hook?x=1", json),
      await send("/hook/", json),
      await send("/other", json),
      await send("/hook", undefined, {}, "GET"),
      await send("/hook", json, { "content-type": "text/plain" }),
      await send("/hook", json, { "content-type": "application/json; charset=latin1" }),
      await send("/hook", gzipSync(json), { "content-type": "application/json", "content-encoding": "gzip" }),
      await send("/hook", json, {}),
    ];
    expect(replies.map((reply) => reply.text)).toEqual(Array<string>(8).fill("express"));
    expect(received).toEqual([]);
    expect(fellThrough).toEqual([
      "POST /hook?x=1",
      "POST /hook/",
      "POST /other",
      "GET /hook",
      "POST /hook",
      "POST /hook",
      "POST /hook",
      "POST /hook",
    ]);
  });

  it("reads bodies as express's strict JSON parser: {} when empty, 400 for bad JSON or a bare value, 413 past the limit", async () => {
    const { send, received } = await start(undefined, { maxBytes: 64 });
    const empty = await send("/hook", "", { "content-type": "application/json", "content-length": "0" });
    expect(empty.status).toBe(200);
    expect(received[0]?.body).toEqual({});

    const withBom = await send("/hook", `\uFEFF ["x"]`);
    expect(withBom.status).toBe(200);
    expect(received[1]?.body).toEqual(["x"]);

    for (const bad of ["{nope", "123", '"text"', "null"]) {
      const reply = await send("/hook", bad);
      expect(reply.status).toBe(400);
      expect(reply.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(errorOf(reply)).toEqual({ code: "invalid_payload", message: "The body is not valid JSON." });
    }

    const big = JSON.stringify({ text: "x".repeat(100) });
    const declared = await send("/hook", big);
    expect(declared.status).toBe(413);
    expect(errorOf(declared)).toMatchObject({ code: "payload_too_large" });
    const chunked = await send("/hook", big, { "content-type": "application/json", "transfer-encoding": "chunked" });
    expect(chunked.status).toBe(413);
    expect(errorOf(chunked)).toMatchObject({ code: "payload_too_large" });
    expect(received).toHaveLength(2);
  });

  it("answers a GatewayError with its status and body, and anything else as a logged 500", async () => {
    let failure: Error = new GatewayError("unauthorized", "Wrong token.");
    const { send, logged } = await start(() => Promise.reject(failure));
    const refused = await send("/hook", "{}");
    expect(refused.status).toBe(401);
    expect(errorOf(refused)).toEqual({ code: "unauthorized", message: "Wrong token." });
    expect(logged).toEqual([]);

    failure = new Error("bug");
    const crashed = await send("/hook", "{}");
    expect(crashed.status).toBe(500);
    expect(errorOf(crashed)).toMatchObject({ code: "internal" });
    expect(logged).toEqual([expect.objectContaining({ msg: "request failed", method: "POST", path: "/hook" })]);
  });

  it("reads any Content-Type as JSON for a route that asks, checking its token first unless the body says JSON", async () => {
    const { send, received, fellThrough } = await start(undefined, {
      route: {
        anyContentType: true,
        authorize: (headers) => {
          if (headers["x-key"] !== "k") throw new GatewayError("unauthorized", "Wrong key.");
        },
      },
    });
    const json = JSON.stringify({ a: 1 });
    expect((await send("/hook", json, { "x-key": "k" })).status).toBe(200);
    expect((await send("/hook", json, { "x-key": "k", "content-type": "text/plain; charset=utf-8" })).status).toBe(200);
    expect(received.map((r) => r.body)).toEqual([{ a: 1 }, { a: 1 }]);
    // A charset or coding the fast path does not read: express's parser answers.
    await send("/hook", json, { "x-key": "k", "content-type": "text/plain; charset=latin1" });
    await send("/hook", gzipSync(json), { "x-key": "k", "content-encoding": "gzip" });
    expect(fellThrough).toEqual(["POST /hook", "POST /hook"]);

    // Without a JSON Content-Type the token is checked before the body is read; with one, the body comes first.
    const untyped = await send("/hook", "{oops", { "x-key": "no", "content-type": "text/plain" });
    expect([untyped.status, errorOf(untyped)]).toEqual([401, { code: "unauthorized", message: "Wrong key." }]);
    const typedBad = await send("/hook", "{oops", { "x-key": "no", "content-type": "application/json" });
    expect(typedBad.status).toBe(400);
    const typedGood = await send("/hook", json, { "x-key": "no", "content-type": "application/json" });
    expect(typedGood.status).toBe(401);
    expect(received).toHaveLength(2);
  });

  it("sets CORS headers for an allowed origin only, and answers 503 with Retry-After while shutting down", async () => {
    let shuttingDown = false;
    const { send, received } = await start(undefined, {
      corsOrigins: ["https://widget.example"],
      shuttingDown: () => shuttingDown,
    });
    const allowed = await send("/hook", "{}", { "content-type": "application/json", origin: "https://widget.example" });
    expect(allowed.headers["access-control-allow-origin"]).toBe("https://widget.example");
    expect(allowed.headers.vary).toBe("Origin");
    const other = await send("/hook", "{}", { "content-type": "application/json", origin: "https://evil.example" });
    expect(other.headers["access-control-allow-origin"]).toBeUndefined();

    shuttingDown = true;
    const refused = await send("/hook", "{}");
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(errorOf(refused)).toMatchObject({ code: "unavailable" });
    expect(received).toHaveLength(2);
  });
});
