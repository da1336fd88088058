import { randomBytes, randomInt } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { accountsHandler, CustomerTokens } from "./accounts.js";
import { Faults } from "./faults.js";
import { FileStore } from "./files.js";
import { RtmServer } from "./rtm.js";
import { FakeState, WIDGET_CLIENT_ID } from "./state.js";
import type { NewEvent } from "./state.js";
import type { FakeLiveChat, FakeLiveChatOptions, LcAgentEvent } from "./types.js";
import { hex, uuid, wire } from "./util.js";
import { MAX_BODY_BYTES, WebApi } from "./web-api.js";
import { WebhookEmitter } from "./webhooks.js";

export type * from "./types.js";
export { ERROR_CATALOGUE, LC_ERROR_TYPES } from "./errors.js";
export type { LcErrorType } from "./errors.js";
export { MAX_UPLOAD_BYTES } from "./files.js";
export { MAX_TEXT_BYTES } from "./schema.js";
export { DISCONNECT_REASONS, PENDING_REQUESTS_LIMIT } from "./rtm.js";
export type { DisconnectReason } from "./rtm.js";
export { AGENT_APP_CLIENT_ID, WIDGET_CLIENT_ID } from "./state.js";

/** The agent the fake has when the test names none. */
export const DEFAULT_AGENT_ID = "anna@example.org";

/**
 * Starts a fake LiveChat on 127.0.0.1: the accounts server (customer tokens by the agent_token grant), the Customer
 * Chat API (Web and RTM, v3.5/v3.6), the CDN for files, and license webhooks to the URLs the test registers. It is
 * strict: see README.md for what is LiveChat's documented or observed behaviour and what is assumed.
 */
export async function startFakeLiveChat(options: FakeLiveChatOptions = {}): Promise<FakeLiveChat> {
  const organizationId = options.organizationId ?? uuid();
  const licenseId = options.licenseId ?? randomInt(10_000_000, 20_000_000);
  const clientId = options.clientId ?? hex(16);
  const region = options.region ?? "dal";
  const agents = options.agents ?? [{ id: DEFAULT_AGENT_ID, name: "Anna Smith", jobTitle: "Support Agent" }];
  const firstAgent = agents[0];
  if (!firstAgent) throw new Error("at least one agent is needed");
  const agentToken = `${region}:${randomBytes(18).toString("base64url")}`;
  const agentTokens = options.agentTokens ?? [{ token: agentToken, agentId: firstAgent.id, scopes: ["customers:own"] }];

  const state = new FakeState(
    {
      routing: options.routing ?? "auto",
      queueWaitSecondsPerPosition: options.queueWaitSecondsPerPosition ?? 60,
      properties: options.properties ?? {},
    },
    { agents, agentTokens, ...(options.groups ? { groups: options.groups } : {}) },
  );
  const files = new FileStore(licenseId, options.uploadTtlMs ?? 24 * 60 * 60 * 1000);
  const tokens = new CustomerTokens(region);
  const faults = new Faults(options.rateLimit ?? false);
  const web = new WebApi(state, files, tokens, faults, { organizationId });
  const rtm = new RtmServer(state, files, tokens, faults, {
    organizationId,
    loginTimeoutMs: options.rtm?.loginTimeoutMs ?? 30_000,
    pingTimeoutMs: options.rtm?.pingTimeoutMs ?? 30_000,
  });
  const webhooks = new WebhookEmitter(state, {
    organizationId,
    clientId,
    timeoutMs: options.webhookTimeoutMs ?? 10_000,
    retryDelaysMs: options.webhookRetryDelaysMs ?? [10_000, 20_000, 30_000],
  });
  for (const registration of options.webhooks ?? []) webhooks.register(registration);
  const accounts = accountsHandler(state, tokens, {
    clientId,
    organizationId,
    customerTokenTtlSeconds: options.customerTokenTtlSeconds ?? 28_800,
  });

  /** Requests held by a `hang` outage of the accounts server or the CDN. */
  const hanging = new Set<ServerResponse>();
  const outageGate = (res: ServerResponse, kind: "accounts" | "cdn"): boolean => {
    switch (faults.outage) {
      case "hang":
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return true;
      case "500":
      case "503": {
        const status = Number(faults.outage);
        const body =
          kind === "accounts"
            ? {
                oauth_exception: status === 500 ? "server_error" : "temporarily_unavailable",
                exception_description: "Service unavailable",
              }
            : { error: "Service unavailable" };
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        return true;
      }
      default:
        return false;
    }
  };

  const apiServer = createServer((req, res) => {
    void readBody(req).then(({ raw, tooLarge }) => web.handle(req, res, raw, tooLarge));
  });
  apiServer.on("upgrade", (req: IncomingMessage, socket, head: Buffer) => rtm.upgrade(req, socket, head));
  const accountsServer = createServer((req, res) => {
    void readBody(req).then(({ raw }) => {
      if (!outageGate(res, "accounts")) accounts(req, res, raw);
    });
  });
  const cdnServer = createServer((req, res) => {
    if (!outageGate(res, "cdn")) files.serve(req, res);
  });
  const servers: Server[] = [apiServer, accountsServer, cdnServer];
  const ports = await Promise.all(servers.map((server) => listen(server, 0)));
  const [apiPort, accountsPort, cdnPort] = ports;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  files.baseUrl = `http://127.0.0.1:${cdnPort}`;

  let closed = false;
  const fake: FakeLiveChat = {
    apiUrl,
    rtmUrl: `ws://127.0.0.1:${apiPort}/v3.6/customer/rtm/ws`,
    accountsUrl: `http://127.0.0.1:${accountsPort}`,
    cdnUrl: files.baseUrl,
    organizationId,
    licenseId,
    clientId,
    agentToken: agentTokens[0]?.token ?? agentToken,

    async close() {
      if (closed) return;
      closed = true;
      webhooks.close();
      rtm.close();
      web.close();
      for (const res of hanging) res.socket?.destroy();
      await Promise.all(servers.map((server) => stop(server)));
    },

    acceptChat: (chatId, agentId) => state.acceptChat(chatId, agentId),
    agentSend: (chatId, text, opts = {}) => agentEvent(chatId, { type: "message", body: { text } }, opts),
    agentSendFile(chatId, file, opts = {}) {
      const stored = files.add(file.name, file.contentType, file.content, true);
      return agentEvent(chatId, { type: "file", body: files.eventFields(stored) }, opts);
    },
    agentSendRichMessage(chatId, richMessage, opts = {}) {
      const { type: _type, ...body } = richMessage;
      return agentEvent(chatId, { type: "rich_message", body }, opts);
    },
    agentTyping: (chatId, isTyping, agentId) => state.agentTyping(chatId, isTyping, agentId),
    transferChat: (chatId, target, requesterId) => state.transferChat(chatId, target, requesterId),
    agentLeave: (chatId, agentId) => state.agentLeave(chatId, agentId),
    agentDeactivate: (chatId, agentId) => state.agentDeactivate(chatId, agentId),
    routerDeactivate: (chatId, reason = "inactive") => state.routerDeactivate(chatId, reason),
    setAgentStatus: (agentId, status) => state.setAgentStatus(agentId, status),
    setGroupOnline(groupId, online) {
      if (!state.groups.has(groupId)) throw new Error(`unknown group ${groupId}`);
      for (const agent of state.agentsOfGroup(groupId)) {
        state.setAgentStatus(agent.id, online ? "accepting_chats" : "offline");
      }
    },
    banCustomer: (entityId) => state.banCustomer(entityId),
    startWidgetChat(opts = {}) {
      const customer = state.createCustomer(WIDGET_CLIENT_ID, uuid());
      const { chat, thread } = state.startChat(
        customer,
        {
          groupIds: [opts.groupId ?? 0],
          events: opts.text === undefined ? [] : [{ type: "message", body: { text: opts.text } }],
          active: true,
          continuous: false,
          sourceClientId: WIDGET_CLIENT_ID,
        },
        { clientId: WIDGET_CLIENT_ID },
      );
      return { chatId: chat.id, threadId: thread.id, customerId: customer.id };
    },

    failNext(count, type, opts = {}) {
      faults.failNext({ count, type, ...opts });
    },
    async goDown(mode) {
      faults.outage = mode;
      if (mode === "refuse") {
        rtm.drop();
        await Promise.all(servers.map((server) => stop(server)));
      }
    },
    async comeUp() {
      const wasRefusing = faults.outage === "refuse";
      faults.outage = undefined;
      if (wasRefusing) await Promise.all(servers.map((server, i) => listen(server, ports[i] ?? 0)));
    },
    loseNextAnswer(count = 1, action) {
      faults.loseNext(count, action);
    },
    setRateLimit: (limit) => faults.setRateLimit(limit),
    holdRtmResponses: () => rtm.hold(),
    releaseRtmResponses: () => rtm.release(),
    dropRtm: (entityId) => rtm.drop(entityId),
    disconnectCustomer: (entityId, reason, data) => rtm.disconnectCustomer(entityId, reason, data),
    expireCustomerToken(tokenOrEntityId) {
      tokens.end(tokenOrEntityId, "expired");
    },
    revokeCustomerToken(tokenOrEntityId) {
      tokens.end(tokenOrEntityId, "revoked");
    },
    expireAgentToken(token) {
      const record = state.agentTokens.get(token);
      if (!record) throw new Error("unknown agent token");
      record.expired = true;
    },

    registerWebhook: (registration) => webhooks.register(registration),
    unregisterWebhook: (id) => webhooks.unregister(id),
    duplicateNextWebhooks: (count = 1) => webhooks.duplicateNext(count),
    dropNextWebhooks: (count = 1, action) => webhooks.dropNext(count, action),
    holdWebhooks: () => webhooks.hold(),
    heldWebhooks: () => webhooks.heldDeliveries(),
    releaseWebhooks: (pick) => webhooks.release(pick ?? ((held) => held)),
    resumeWebhooks: () => webhooks.resume(),
    get webhookAttempts() {
      return webhooks.attempts;
    },
    whenWebhooksIdle: () => webhooks.whenIdle(),

    get calls() {
      return faults.calls;
    },
    get rtmFrames() {
      return rtm.frames;
    },
    rtmConnections: () => rtm.info(),
    agentFeed: (chatId) =>
      state.feed
        .filter((entry) => chatId === undefined || entry.chatId === chatId)
        .map((entry) => ({
          chatId: entry.chatId,
          threadId: entry.threadId,
          event: wire<LcAgentEvent>(state.agentEventView(entry.event)),
        })),
    sneakPeeks: (chatId) =>
      state.sneakPeekLog.filter((peek) => chatId === undefined || peek.chatId === chatId).map((p) => ({ ...p })),
    chat(chatId) {
      const chat = state.chats.get(chatId);
      if (!chat) return undefined;
      return wire({
        id: chat.id,
        customerId: chat.customerId,
        threads: chat.threads.map((thread) => state.threadView(chat, thread, "agent")),
      });
    },
    chatIds: () => [...state.chats.keys()],
    customer(entityId) {
      const customer = state.customers.get(entityId);
      if (!customer) return undefined;
      return wire({
        id: customer.id,
        client_id: customer.clientId,
        banned: customer.banned,
        ...state.customerFields(customer),
      });
    },
    queue: (groupId) => state.queue(groupId),
    groupStatus: (groupId) => state.groupStatus(groupId),
    files: () => files.all(),
  };

  function agentEvent(
    chatId: string,
    input: NewEvent,
    opts: { agentId?: string; visibility?: "all" | "agents"; customId?: string; attachToLastThread?: boolean },
  ): LcAgentEvent {
    const event = state.agentEvent(
      chatId,
      {
        ...input,
        ...(opts.visibility === undefined ? {} : { visibility: opts.visibility }),
        ...(opts.customId === undefined ? {} : { customId: opts.customId }),
      },
      {
        ...(opts.agentId === undefined ? {} : { agentId: opts.agentId }),
        ...(opts.attachToLastThread === undefined ? {} : { attachToLastThread: opts.attachToLastThread }),
      },
    );
    return wire<LcAgentEvent>(state.agentEventView(event));
  }

  return fake;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function stop(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Reads the whole body; past MAX_BODY_BYTES it stops keeping bytes and reports the request too large. */
function readBody(req: IncomingMessage): Promise<{ raw: Buffer; tooLarge: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve({ raw: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), tooLarge }));
    req.on("error", () => resolve({ raw: Buffer.alloc(0), tooLarge }));
  });
}
