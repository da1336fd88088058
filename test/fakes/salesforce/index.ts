import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ChatApi, CHAT_PREFIX } from "./chat-routes.js";
import { ChatState } from "./chat-state.js";
import { Dispatcher, statusText, text } from "./http-kit.js";
import type { Handler, Reply } from "./http-kit.js";
import { to18 } from "./ids.js";
import { FILES_PATH, MessagingApi, miawError, SSE_PATH } from "./messaging-routes.js";
import { MessagingState } from "./messaging-state.js";
import type {
  ChatControl,
  FakeAgent,
  FakeSalesforce,
  FakeSalesforceOptions,
  MessagingControl,
  SfApi,
  SfViolation,
} from "./types.js";

export type * from "./types.js";

export const DEFAULT_ORG_ID = "00D5g000004XyZ1";
export const DEFAULT_DEPLOYMENT = "Liaison_Custom_Client";
export const DEFAULT_AGENT: FakeAgent = { id: "0055g00000AgEnT", name: "Jane Doe" };
const DEFAULT_FILE_TYPES = ["image/jpeg", "image/png", "image/gif", "application/pdf", "text/plain"];

/**
 * Starts a fake Salesforce on 127.0.0.1 and a free port, serving Messaging for In-App and Web (REST and the event
 * stream) and the legacy Chat REST API, with controls that play Omni-Channel and the agent. Strict: it refuses what
 * Salesforce refuses and records what Salesforce would mishandle (see README.md).
 */
export async function startFakeSalesforce(options: FakeSalesforceOptions = {}): Promise<FakeSalesforce> {
  const orgId = options.orgId ?? DEFAULT_ORG_ID;
  if (orgId.length !== 15 && orgId.length !== 18) throw new Error(`orgId must have 15 or 18 characters: ${orgId}`);
  const orgId15 = orgId.slice(0, 15);
  const orgId18 = to18(orgId15);
  let baseUrl = "";
  const violations: SfViolation[] = [];
  const report =
    (api: SfViolation["api"]) =>
    (v: Omit<SfViolation, "api" | "at">): void => {
      violations.push({ api, ...v, at: Date.now() });
    };

  const m = options.messaging ?? {};
  const messagingState = new MessagingState(
    {
      orgId15,
      orgId18,
      deployment: m.deployment ?? DEFAULT_DEPLOYMENT,
      preChatFields: m.preChatFields ?? ["_firstName", "_lastName", "_email", "_subject"],
      tokenTtlMs: m.tokenTtlMs ?? 6 * 60 * 60 * 1000,
      pingIntervalMs: m.pingIntervalMs ?? 5000,
      replayWindowMs: m.replayWindowMs ?? 5 * 60 * 1000,
      requireLastEventId: m.requireLastEventId ?? true,
      maxFileBytes: m.maxFileBytes ?? 5 * 1024 * 1024,
      allowedFileTypes: (m.allowedFileTypes ?? DEFAULT_FILE_TYPES).map((t) => t.toLowerCase()),
      duplicateMessageId: m.duplicateMessageId ?? "accepted",
      splitLinks: m.splitLinks ?? true,
      agent: m.agent ?? DEFAULT_AGENT,
      baseUrl: () => baseUrl,
    },
    report("messaging"),
  );
  const messagingApi = new MessagingApi(messagingState);

  const c = options.chat ?? {};
  const clientPollTimeoutSeconds = c.clientPollTimeoutSeconds ?? 40;
  const chatState = new ChatState(
    {
      orgId15,
      orgId18,
      deploymentId: c.deploymentId ?? "572000000000001",
      buttonId: c.buttonId ?? "573000000000001",
      clientPollTimeoutSeconds,
      pollHoldMs: c.pollHoldMs ?? 3000,
      sessionIdleTimeoutMs: c.sessionIdleTimeoutMs ?? (clientPollTimeoutSeconds + 10) * 1000,
      agentsAvailable: c.agentsAvailable ?? true,
      initialQueuePosition: c.initialQueuePosition ?? 1,
      abandonedPolls: c.abandonedPolls ?? "released",
      agent: c.agent ?? DEFAULT_AGENT,
    },
    report("chat"),
  );
  const chatApi = new ChatApi(chatState);

  const apiOf = (path: string): SfApi =>
    path.startsWith(CHAT_PREFIX)
      ? "chat"
      : path.startsWith("/iamessage/") || path === SSE_PATH || path.startsWith(FILES_PATH)
        ? "messaging"
        : "other";
  const asRoute = (api: SfApi, found: Handler | Reply) =>
    typeof found === "function" ? { api, handler: found } : { api, notFound: found };

  const dispatcher = new Dispatcher({
    route(method, path) {
      const api = apiOf(path);
      if (api === "chat") return asRoute(api, chatApi.route(method, path));
      if (api === "messaging") return asRoute(api, messagingApi.route(method, path));
      return { api, notFound: text(404, "Not Found") };
    },
    injected(api, status, retryAfterSeconds) {
      const headers: Record<string, string> =
        retryAfterSeconds === undefined ? {} : { "Retry-After": String(retryAfterSeconds) };
      return api === "chat"
        ? text(status, statusText(status), headers)
        : miawError(status, statusText(status), headers);
    },
  });

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => dispatcher.handle(req, res));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${port}`;
  let listening = true;
  let closed = false;

  const stopListening = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await done;
  };

  const conversationView = (id: string) => {
    const conversation = messagingState.conversation(id);
    return conversation ? messagingState.view(conversation) : undefined;
  };

  const messaging: MessagingControl = {
    url: baseUrl,
    deployment: messagingState.settings.deployment,
    conversations: () => messagingState.allConversations().map((conv) => messagingState.view(conv)),
    conversation: conversationView,
    route: (id, routeOptions) => messagingState.route(id, routeOptions),
    queuePosition: (id, position) => messagingState.queuePosition(id, position),
    routingFailed: (id, failure) =>
      messagingState.routingFailed(
        id,
        failure?.failureType ?? "RoutingError",
        failure?.reason ?? "No agent is available to take the conversation.",
      ),
    accept: (id, agent) => messagingState.accept(id, agent ?? messagingState.settings.agent),
    agentSend: (id, message) => messagingState.agentSend(id, message),
    agentTyping: (id, typing) => messagingState.agentTyping(id, typing),
    agentSendFile: (id, file) => messagingState.agentSendFile(id, file),
    transfer: (id, to) => messagingState.transfer(id, to),
    agentEnd: (id) => messagingState.agentEnd(id),
    emit: (id, event, data) => messagingState.emit(id, event, data),
    expireToken: (tokenOrSubject) => messagingState.expireToken(tokenOrSubject),
    dropStreams: (drop) => messagingState.dropStreams(drop?.subject, drop?.how ?? "destroy"),
    forgetEvents: (subject) => messagingState.forgetEvents(subject),
    streams: () => messagingState.streams(),
    events: (subject) => messagingState.events(subject),
    entries: (id) => {
      const conversation = messagingState.conversation(id);
      if (!conversation) throw new Error(`unknown conversation ${id}`);
      return messagingState.entriesOf(conversation);
    },
    agentView: (id) => messagingState.agentView(id),
  };

  const sessionOrThrow = (key: string) => {
    const session = chatState.find(key);
    if (!session) throw new Error(`unknown session ${key}`);
    return session;
  };

  const chat: ChatControl = {
    url: `${baseUrl}/chat/rest`,
    deploymentId: chatState.settings.deploymentId,
    buttonId: chatState.settings.buttonId,
    sessions: () => chatState.all().map((s) => chatState.view(s)),
    session: (key) => {
      const session = chatState.find(key);
      return session ? chatState.view(session) : undefined;
    },
    lastSession: () => {
      const all = chatState.all();
      const last = all[all.length - 1];
      return last ? chatState.view(last) : undefined;
    },
    setAvailable: (available) => {
      chatState.settings.agentsAvailable = available;
    },
    queueUpdate: (key, position, ewt) => chatState.queueUpdate(key, position, ewt),
    requestFail: (key, reason) => chatState.requestFail(key, reason ?? "Unavailable"),
    accept: (key, agent) => chatState.accept(key, agent ?? chatState.settings.agent),
    agentSend: (key, message) => chatState.agentSend(key, message),
    agentTyping: (key, typing) => chatState.agentTyping(key, typing),
    transfer: (key, to) => chatState.transfer(key, to),
    agentDisconnect: (key) => chatState.agentDisconnect(key),
    agentEnd: (key, reason) => chatState.agentEnd(key, reason ?? "agent"),
    emit: (key, type, message) => chatState.emit(key, type, message ?? {}),
    changeAffinity: (key) => chatState.changeAffinity(sessionOrThrow(key)),
    expireSession: (key) => chatState.kill(sessionOrThrow(key), "expired"),
    agentView: (key) => chatState.agentViewOf(key),
    delivered: (key) => chatState.deliveredTo(key),
  };

  const faults = dispatcher.faults;
  const fake: FakeSalesforce = {
    url: baseUrl,
    orgId: orgId15,
    orgId18,
    messaging,
    chat,
    get requests() {
      return dispatcher.requests;
    },
    get violations() {
      return violations;
    },
    failNext(count, status, opts) {
      faults.failures.push({ count, match: opts, extra: { status, retryAfterSeconds: opts?.retryAfterSeconds } });
    },
    failFor(ms, status, opts) {
      faults.timed.push({ until: Date.now() + ms, status, retryAfterSeconds: opts?.retryAfterSeconds, match: opts });
    },
    hangNext(count, opts) {
      faults.hangs.push({ count, match: opts, extra: undefined });
    },
    dropNext(count, opts) {
      faults.drops.push({ count, match: opts, extra: { when: opts?.when ?? "after" } });
    },
    async goDown(mode) {
      faults.outage = mode;
      if (mode === "refused") await stopListening();
      if (mode === "reset") for (const socket of sockets) socket.destroy();
    },
    async comeUp() {
      const wasRefused = faults.outage === "refused";
      faults.outage = undefined;
      if (wasRefused && !closed) {
        await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
        listening = true;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      messagingState.shutdown();
      chatState.shutdown();
      dispatcher.releaseHung();
      await stopListening();
    },
  };
  return fake;
}
