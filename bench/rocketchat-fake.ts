/**
 * The fake Rocket.Chat of the desk case (case 5), in its own process (`node --import tsx bench/rocketchat-fake.ts`,
 * started by `bench/lib/procs.ts`): `test/fakes/rocketchat` with `{ secretToken: "bench", retryIntervalMs: 100,
 * routing: "auto" }`, plus an agent that answers at once. Every visitor message the fake accepts
 * (`POST /api/v1/livechat/message` answered 200) makes the serving agent send `re: <text>` to that room, which the
 * fake then delivers to Liaison's webhook. The fake has no hook for this, so the `node:http` server it creates is
 * wrapped (before it is loaded) to look at each answered request's parsed body.
 *
 * IPC: it posts `{ type: "ready", url }`; the parent sends `{ type: "webhook", url }`. It exits when the parent goes
 * away or after `BENCH_LIFETIME_MS`.
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from "node:http";
import { syncBuiltinESMExports } from "node:module";

interface AgentHook {
  answer(rid: string, text: string): void;
}
const hook: AgentHook = { answer: () => undefined };
let answered = 0;
let failed = 0;

const originalCreateServer = http.createServer.bind(http);
function wrap(listener: RequestListener): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "POST" && req.url === "/api/v1/livechat/message") {
      res.once("finish", () => {
        const body = (req as IncomingMessage & { body?: { rid?: unknown; msg?: unknown } }).body;
        if (res.statusCode !== 200 || typeof body?.rid !== "string" || typeof body.msg !== "string") return;
        const { rid, msg } = body;
        setImmediate(() => {
          try {
            hook.answer(rid, `re: ${msg}`);
            answered++;
          } catch {
            failed++;
          }
        });
      });
    }
    listener(req, res);
  };
}
(http as { createServer: unknown }).createServer = (...args: unknown[]) => {
  const listener = args.find((arg): arg is RequestListener => typeof arg === "function");
  const options = args.find((arg) => typeof arg === "object" && arg !== null) as http.ServerOptions | undefined;
  return listener ? originalCreateServer(options ?? {}, wrap(listener)) : originalCreateServer(options ?? {});
};
syncBuiltinESMExports();

const { startFakeRocketChat } = await import("../test/fakes/rocketchat/index.js");
const fake = await startFakeRocketChat({ secretToken: "bench", retryIntervalMs: 100, routing: "auto" });
hook.answer = (rid, text) => {
  fake.agentSend(rid, text);
};
http.createServer = originalCreateServer;
syncBuiltinESMExports();

process.on("disconnect", () => process.exit(2));
setTimeout(() => process.exit(5), Number(process.env.BENCH_LIFETIME_MS ?? 300_000)).unref();
process.on("message", (raw: unknown) => {
  const message = raw as { type?: string; url?: string };
  if (message.type === "webhook") {
    fake.setWebhookUrl(message.url);
    process.send?.({ type: "webhook-set" });
  }
  if (message.type === "stats") {
    const failedDeliveries = fake.webhookAttempts.filter((attempt) => attempt.status !== 200).length;
    process.send?.({ type: "stats", answered, failed, failedDeliveries });
  }
});
process.send?.({ type: "ready", url: fake.url });
