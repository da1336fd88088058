import { randomBytes } from "node:crypto";
import { createServer, STATUS_CODES } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { NextFunction, Request, Response } from "express";
import { loggedOutBody } from "./errors.js";
import { RateLimiter } from "./rate-limit.js";
import { apiRouter, fileDownloadHandler } from "./routes.js";
import type { RouteSettings } from "./routes.js";
import { FakeState } from "./state.js";
import type {
  FakeRocketChat,
  FakeRocketChatOptions,
  RcMessage,
  RcRoom,
  RcStoredFile,
  RcVisitor,
  RequestLogEntry,
} from "./types.js";
import { DEFAULT_WEBHOOK_EVENTS, WebhookEmitter } from "./webhooks.js";

export { DEFAULT_FAKE_USER } from "./state.js";
export type * from "./types.js";

/**
 * Starts a fake Rocket.Chat (Omnichannel / Livechat REST API + webhook emitter) on 127.0.0.1 and a free port.
 * It is strict: status codes, error strings and checks follow Rocket.Chat's own source; see README.md.
 */
export async function startFakeRocketChat(options: FakeRocketChatOptions = {}): Promise<FakeRocketChat> {
  let baseUrl = "";
  const settings: RouteSettings = {
    rateLimit: options.rateLimit ?? false,
    rateLimitCalls: options.rateLimitCalls ?? 10,
    rateLimitIntervalMs: options.rateLimitIntervalMs ?? 60_000,
    version: options.version ?? 7,
    thumbnails: options.thumbnails ?? true,
    fileUploadEnabled: options.fileUploadEnabled ?? true,
    maxFileSize: options.maxFileSize ?? 104857600,
    allowedMimeTypes: options.allowedMimeTypes ?? [],
    blockedMimeTypes: options.blockedMimeTypes ?? ["image/svg+xml"],
    protectFiles: options.protectFiles ?? true,
    jwtFileUrls: options.jwtFileUrls ?? false,
    jwtSecret: randomBytes(32).toString("hex"),
  };
  const webhookConfig = {
    url: options.webhookUrl,
    secretToken: options.secretToken,
    events: { ...DEFAULT_WEBHOOK_EVENTS, ...options.webhookEvents },
    retryPolicy: options.retryPolicy ?? "modern",
    retryIntervalMs: options.retryIntervalMs ?? 100,
    httpTimeoutMs: options.httpTimeoutMs ?? 5000,
    siteUrl: () => baseUrl,
    protectFiles: settings.protectFiles,
    jwtFileUrls: settings.jwtFileUrls,
    jwtSecret: settings.jwtSecret,
  };
  // The state reports events to the emitter; the emitter reads rooms and visitors back from the state.
  const state: FakeState = new FakeState(options, (event) => webhooks.handle(event));
  const webhooks = new WebhookEmitter(webhookConfig, () => state);
  const limiter = new RateLimiter();
  const ctx = { state, webhooks, settings, limiter };

  const requests: RequestLogEntry[] = [];
  let outage: "503" | "reset" | undefined;
  let failure: { count: number; status: number; retryAfterSeconds: number } | undefined;

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");
  app.use((req: Request, res: Response, next: NextFunction) => {
    const entry = { method: req.method, path: req.path };
    res.on("close", () => requests.push({ ...entry, status: res.writableFinished ? res.statusCode : 0 }));
    next();
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (outage === "reset") {
      req.socket.destroy();
      return;
    }
    if (outage === "503") {
      res.status(503).json({ success: false, error: "Service Unavailable" });
      return;
    }
    if (failure && failure.count > 0 && req.path.startsWith("/api/")) {
      failure.count -= 1;
      sendInjectedFailure(res, failure.status, failure.retryAfterSeconds, settings);
      return;
    }
    next();
  });
  app.use(express.json({ limit: "20mb" }));
  app.use("/api/v1", apiRouter(ctx));
  app.get("/file-upload/:id/*name", fileDownloadHandler(ctx));
  app.use((_req: Request, res: Response) => {
    res.status(404).end();
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // body-parser errors (malformed JSON, oversized body): RC answers them as handler errors.
    const status = typeof error === "object" && error !== null && "status" in error ? Number(error.status) : 400;
    const message = error instanceof Error ? error.message : String(error);
    res.status(Number.isInteger(status) && status >= 400 ? status : 400).json({ success: false, error: message });
  });

  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const requireRoom = (rid: string): RcRoom => {
    const room = state.rooms.get(rid);
    if (!room) throw new Error(`unknown room ${rid}`);
    return room;
  };

  let closed = false;
  const fake: FakeRocketChat = {
    url: baseUrl,
    async close() {
      if (closed) return;
      closed = true;
      webhooks.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    setWebhookUrl(url) {
      webhookConfig.url = url;
    },
    setAgentOnline(agentId, online) {
      const agent = state.agentById(agentId);
      if (!agent) throw new Error(`unknown agent ${agentId}`);
      agent.online = online;
    },
    takeRoom: (rid, agentId) => structuredClone(state.takeRoom(rid, agentId)),
    agentSend: (rid, text, opts) => structuredClone(state.agentSend(rid, text, opts?.agentId)),
    agentEdit: (rid, messageId, text) => structuredClone(state.agentEdit(rid, messageId, text)),
    agentSendFile: (rid, file, opts) =>
      structuredClone(state.agentSendFile(rid, file, opts?.agentId, settings.thumbnails)),
    agentSendFiles: (rid, files, opts) =>
      structuredClone(state.agentSendFiles(rid, files, opts?.agentId, settings.thumbnails)),
    closeByAgent: (rid, comment) => structuredClone(state.closeByAgent(rid, comment)),
    forward(rid, target) {
      const room = requireRoom(rid);
      if (!room.open) throw new Error("This_conversation_is_already_closed");
      const forwarded = state.transfer(room, {
        ...(target.agentId === undefined ? {} : { userId: target.agentId }),
        ...(target.departmentId === undefined ? {} : { departmentId: target.departmentId }),
      });
      if (!forwarded) throw new Error("error-forwarding-chat");
      return structuredClone(room);
    },
    goDown(mode) {
      outage = mode;
      if (mode === "reset") server.closeIdleConnections();
    },
    comeUp() {
      outage = undefined;
    },
    failNext(count, status, opts) {
      failure = { count, status, retryAfterSeconds: opts?.retryAfterSeconds ?? 1 };
    },
    setRateLimit(on) {
      settings.rateLimit = on;
      limiter.reset();
    },
    holdWebhooks: () => webhooks.hold(),
    heldWebhooks: () => webhooks.heldDeliveries(),
    releaseWebhooks: (pick) => webhooks.release(pick ?? ((held) => held)),
    resumeWebhooks: () => webhooks.resume(),
    visitors: (): RcVisitor[] => structuredClone([...state.visitors.values()]),
    rooms: (): RcRoom[] => structuredClone([...state.rooms.values()]),
    room: (rid): RcRoom | undefined => {
      const room = state.rooms.get(rid);
      return room ? structuredClone(room) : undefined;
    },
    messages: (rid): RcMessage[] => structuredClone(state.messagesOf(rid)),
    files: (): RcStoredFile[] =>
      [...state.files.values()].map((file) => ({ ...file, content: Buffer.from(file.content) })),
    get requests() {
      return requests;
    },
    get webhookAttempts() {
      return webhooks.attempts;
    },
    whenWebhooksIdle: () => webhooks.whenIdle(),
  };
  return fake;
}

/** `failNext`: what RC (or the proxy in front of it) answers for an injected status. */
function sendInjectedFailure(
  res: Response,
  status: number,
  retryAfterSeconds: number,
  settings: Pick<RouteSettings, "rateLimitCalls" | "version">,
): void {
  switch (status) {
    case 429:
      // enforceRateLimit's answer: X-RateLimit-* and the Meteor error's text, never Retry-After.
      res
        .set({
          "X-RateLimit-Limit": String(settings.rateLimitCalls),
          "X-RateLimit-Remaining": "0",
          "X-RateLimit-Reset": String(Date.now() + retryAfterSeconds * 1000),
        })
        .status(429)
        .json({
          success: false,
          error: `Error, too many requests. Please slow down. You must wait ${retryAfterSeconds} seconds before trying this endpoint again. [error-too-many-requests]`,
        });
      return;
    case 401:
      res.status(401).json(loggedOutBody(settings.version));
      return;
    case 403:
      res.status(403).json({ success: false, error: settings.version >= 8 ? "forbidden" : "unauthorized" });
      return;
    case 400:
      res.status(400).json({ success: false });
      return;
    case 500:
      res.status(500).json({ success: false, error: "Internal server error" });
      return;
    case 503:
      res.status(503).json({ success: false, error: "Service Unavailable" });
      return;
    default:
      res.status(status).json({ success: false, error: STATUS_CODES[status] ?? "error" });
  }
}
