import { to18 } from "./ids.js";
import { isObject, json, parseJson, ReplyError, text } from "./http-kit.js";
import type { FakeRequest, Handler, Reply } from "./http-kit.js";
import type { ChatSession, ChatState } from "./chat-state.js";

export const CHAT_PREFIX = "/chat/rest/";

/** Legacy Chat error bodies are loosely specified ("usually" the code and a message): plain text here. */
function fail(status: number, message: string): never {
  throw new ReplyError(text(status, message));
}

const OK = text(200, "OK");

/** Chasitor POSTs and what their bodies must hold. */
const POSTS = [
  "ChasitorInit",
  "ChatMessage",
  "ChasitorTyping",
  "ChasitorNotTyping",
  "ChasitorSneakPeek",
  "ChatEnd",
  "CustomEvent",
  "ChasitorResyncState",
] as const;
type PostName = (typeof POSTS)[number];

function isPost(name: string): name is PostName {
  return (POSTS as readonly string[]).includes(name);
}

function requireString(body: Record<string, unknown>, key: string, where = "request"): string {
  const value = body[key];
  if (typeof value !== "string") fail(400, `${where}: ${key} must be a string`);
  return value;
}

function requireBoolean(body: Record<string, unknown>, key: string): boolean {
  const value = body[key];
  if (typeof value !== "boolean") fail(400, `ChasitorInit: ${key} must be a boolean`);
  return value;
}

function requireArray(body: Record<string, unknown>, key: string, where: string): unknown[] {
  const value = body[key];
  if (!Array.isArray(value)) fail(400, `${where}: ${key} must be an array`);
  return value;
}

/** The HTTP side of the legacy Chat REST API: the headers of §"Request Headers", the bodies, then the state. */
export class ChatApi {
  constructor(private readonly state: ChatState) {}

  private get settings() {
    return this.state.settings;
  }

  route(method: string, path: string): Handler | Reply {
    const rest = path.slice(CHAT_PREFIX.length);
    const notAllowed = text(405, "Method Not Allowed");
    if (rest === "System/SessionId") return method === "GET" ? (req) => this.sessionId(req) : notAllowed;
    if (rest.startsWith("System/SessionId/"))
      return method === "DELETE" ? (req) => this.deleteSession(req, rest.slice(17)) : notAllowed;
    if (rest === "System/Messages") return method === "GET" ? (req) => this.messages(req) : notAllowed;
    if (rest === "System/ReconnectSession") return method === "GET" ? (req) => this.reconnect(req) : notAllowed;
    if (rest === "Visitor/Availability") return method === "GET" ? (req) => this.availability(req) : notAllowed;
    if (rest.startsWith("Chasitor/")) {
      const name = rest.slice(9);
      if (!isPost(name)) return text(404, "Not Found");
      return method === "POST" ? (req) => this.post(req, name) : notAllowed;
    }
    return text(404, "Not Found");
  }

  private version(req: FakeRequest): number {
    const raw = req.header("x-liveagent-api-version");
    if (raw === undefined || raw === "") fail(400, "X-LIVEAGENT-API-VERSION header is required");
    const version = Number(raw);
    if (!/^\d+(\.0)?$/.test(raw) || version < 29) fail(400, `Unsupported API version: ${raw}`);
    return version;
  }

  /** The session of a request: 403 for a missing, unknown or ended one, 503 for an affinity token it no longer has. */
  private session(req: FakeRequest): ChatSession {
    const key = req.header("x-liveagent-session-key");
    const session = key === undefined ? undefined : this.state.find(key);
    if (!session || session.dead) fail(403, "Session is not valid");
    const affinity = req.header("x-liveagent-affinity");
    if (session.affinityStale || affinity !== session.affinity) fail(503, "Invalid affinity token");
    this.state.touch(session);
    return session;
  }

  private sameId(given: unknown, configured: string): boolean {
    return typeof given === "string" && (given === configured || given === to18(configured));
  }

  private sessionId(req: FakeRequest): Reply {
    this.version(req);
    // The first call of a session has no affinity yet: the literal string "null".
    if (req.header("x-liveagent-affinity") !== "null") fail(400, "X-LIVEAGENT-AFFINITY must be null for SessionId");
    const session = this.state.createSession();
    return json(200, {
      id: session.id,
      key: session.key,
      affinityToken: session.affinity,
      clientPollTimeout: this.settings.clientPollTimeoutSeconds,
    });
  }

  private deleteSession(req: FakeRequest, key: string): Reply {
    this.version(req);
    const session = this.state.find(decodeURIComponent(key));
    if (!session || session.dead) fail(403, "Session is not valid");
    this.state.kill(session, "deleted");
    return OK;
  }

  private messages(req: FakeRequest): Reply | Promise<Reply> {
    this.version(req);
    const session = this.session(req);
    const raw = req.url.searchParams.get("ack");
    let ack: number | undefined;
    if (raw !== null) {
      ack = Number(raw);
      if (!/^-?\d+$/.test(raw) || ack < -1) fail(400, `Invalid ack: ${raw}`);
    }
    return this.state.poll(session, ack, req.signal);
  }

  private reconnect(req: FakeRequest): Reply {
    // ReconnectSession exists from API version 37.
    if (this.version(req) < 37) fail(404, "Not Found");
    const key = req.header("x-liveagent-session-key");
    const session = key === undefined ? undefined : this.state.find(key);
    if (!session || session.dead) fail(403, "Session is not valid");
    if (req.header("x-liveagent-affinity") !== "null")
      fail(400, "X-LIVEAGENT-AFFINITY must be null for ReconnectSession");
    const raw = req.url.searchParams.get("ReconnectSession.offset");
    if (raw === null || !/^\d+$/.test(raw)) fail(400, "ReconnectSession.offset is required");
    this.state.touch(session);
    return this.state.reconnect(session, Number(raw));
  }

  private availability(req: FakeRequest): Reply {
    this.version(req);
    const params = req.url.searchParams;
    if (!this.sameId(params.get("org_id"), this.settings.orgId15)) fail(400, "Invalid org_id");
    if (!this.sameId(params.get("deployment_id"), this.settings.deploymentId)) fail(400, "Invalid deployment_id");
    const ids = (params.get("Availability.ids") ?? "").split(",").filter((id) => id !== "");
    if (ids.length === 0) fail(400, "Availability.ids is required");
    return json(200, {
      messages: [
        {
          type: "Availability",
          message: {
            results: ids.map((id) => ({
              id,
              isAvailable: this.sameId(id, this.settings.buttonId) && this.settings.agentsAvailable,
            })),
          },
        },
      ],
    });
  }

  private post(req: FakeRequest, name: PostName): Reply {
    this.version(req);
    const session = this.session(req);
    const raw = req.header("x-liveagent-sequence");
    if (raw === undefined || !/^\d+$/.test(raw)) fail(400, "X-LIVEAGENT-SEQUENCE header is required on every POST");
    const sequence = Number(raw);
    let body: Record<string, unknown> = {};
    if (req.body.length > 0) {
      const parsed = parseJson(req.body);
      if (!parsed.ok || !isObject(parsed.value)) fail(400, "The request body is not a JSON object");
      body = parsed.value;
    }
    if (name !== "ChasitorInit" && session.init === undefined) fail(403, "No chat was requested in this session");
    this.validate(name, body, session);
    const fingerprint = `${name} ${req.body.toString("utf8")}`;
    if (!this.state.admitPost(session, req.path, sequence, fingerprint)) return OK;
    switch (name) {
      case "ChasitorInit":
        this.state.chasitorInit(
          session,
          body,
          this.sameId(body.organizationId, this.settings.orgId15) &&
            this.sameId(body.deploymentId, this.settings.deploymentId) &&
            this.sameId(body.buttonId, this.settings.buttonId),
        );
        return OK;
      case "ChatMessage":
        this.state.visitorMessage(session, body.text as string, sequence);
        return OK;
      case "ChasitorTyping":
      case "ChasitorNotTyping":
        session.visitorTyping = name === "ChasitorTyping";
        return OK;
      case "ChatEnd":
        this.state.visitorEnd(session, body.reason as string);
        return OK;
      case "ChasitorResyncState":
        session.awaitingResync = false;
        return OK;
      case "ChasitorSneakPeek":
      case "CustomEvent":
        return OK;
    }
  }

  private validate(name: PostName, body: Record<string, unknown>, session: ChatSession): void {
    switch (name) {
      case "ChasitorInit":
        this.validateInit(body, session);
        return;
      case "ChatMessage":
        if (requireString(body, "text", name).trim() === "") fail(400, "ChatMessage: text must not be empty");
        return;
      case "ChasitorSneakPeek":
        if (typeof body.position !== "number") fail(400, "ChasitorSneakPeek: position must be a number");
        requireString(body, "text", name);
        return;
      case "ChatEnd":
        // The reason is required ({reason: "client"}).
        if (requireString(body, "reason", name) === "") fail(400, "ChatEnd: reason is required");
        return;
      case "CustomEvent":
        requireString(body, "type", name);
        requireString(body, "data", name);
        return;
      case "ChasitorResyncState":
        if (!this.sameId(body.organizationId, this.settings.orgId15))
          fail(400, "ChasitorResyncState: organizationId is invalid");
        return;
      case "ChasitorTyping":
      case "ChasitorNotTyping":
        return;
    }
  }

  private validateInit(body: Record<string, unknown>, session: ChatSession): void {
    const where = "ChasitorInit";
    for (const key of [
      "organizationId",
      "deploymentId",
      "buttonId",
      "sessionId",
      "userAgent",
      "language",
      "screenResolution",
      "visitorName",
    ]) {
      requireString(body, key, where);
    }
    if (body.sessionId !== session.id) fail(400, "ChasitorInit: sessionId does not match the session");
    requireBoolean(body, "receiveQueueUpdates");
    requireBoolean(body, "isPost");
    for (const detail of requireArray(body, "prechatDetails", where)) {
      if (!isObject(detail)) fail(400, "ChasitorInit: prechatDetails items must be objects");
      requireString(detail, "label", "ChasitorInit prechatDetails");
      requireString(detail, "value", "ChasitorInit prechatDetails");
      if (detail.transcriptFields !== undefined)
        requireArray(detail, "transcriptFields", "ChasitorInit prechatDetails");
      if (detail.displayToAgent !== undefined && typeof detail.displayToAgent !== "boolean")
        fail(400, "ChasitorInit prechatDetails: displayToAgent must be a boolean");
    }
    for (const entity of requireArray(body, "prechatEntities", where)) {
      if (!isObject(entity)) fail(400, "ChasitorInit: prechatEntities items must be objects");
      requireString(entity, "entityName", "ChasitorInit prechatEntities");
      for (const field of requireArray(entity, "entityFieldsMaps", "ChasitorInit prechatEntities")) {
        if (!isObject(field)) fail(400, "ChasitorInit: entityFieldsMaps items must be objects");
        requireString(field, "fieldName", "ChasitorInit entityFieldsMaps");
        requireString(field, "label", "ChasitorInit entityFieldsMaps");
      }
    }
    if (body.buttonOverrides !== undefined) requireArray(body, "buttonOverrides", where);
    if (body.agentId !== undefined && body.agentId !== null && typeof body.agentId !== "string")
      fail(400, "ChasitorInit: agentId must be a string");
    if (body.doFallback !== undefined && typeof body.doFallback !== "boolean")
      fail(400, "ChasitorInit: doFallback must be a boolean");
  }
}
