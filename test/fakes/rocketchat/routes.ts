import express from "express";
import type { Request, RequestHandler, Response, Router } from "express";
import {
  failureObject,
  forbidden,
  loggedOutBody,
  RcDirectResponse,
  RcMeteorError,
  RcPlainError,
  sendError,
  sendSuccess,
} from "./errors.js";
import { formatFileSize, isAllowedMimeType, verifyFileToken } from "./files.js";
import type { RateLimiter, RateRule } from "./rate-limit.js";
import { check, Match, validateParams } from "./schema.js";
import type { JsonSchema } from "./schema.js";
import type { FakeState, UserState } from "./state.js";
import type { RcMessage, RcRoom, RcVisitor } from "./types.js";
import type { WebhookEmitter } from "./webhooks.js";

/*
 * The REST routes under /api/v1 (spec a.1–a.7) and the /file-upload download route. Every route runs the steps of
 * ApiClass in RC's order: auth (401) → rate limit (429) → validateParams (invalid-params) → permissions (403) →
 * handler. Visitor routes ignore X-User-Id/X-Auth-Token entirely.
 */

/**
 * Routes whose `rateLimiterOptions` are written in RC's code (typed visitor endpoints, room.ts); every other route
 * gets the `API_Enable_Rate_Limiter_Limit_*_Default` settings.
 */
const EXPLICIT_RATE_RULES: Record<string, RateRule> = {
  "/api/v1/livechat/visitorpost": { calls: 5, intervalMs: 60_000 },
  "/api/v1/livechat/visitor/:tokenget": { calls: 10, intervalMs: 60_000 },
  "/api/v1/livechat/visitor/:tokendelete": { calls: 5, intervalMs: 60_000 },
  "/api/v1/livechat/roomget": { calls: 5, intervalMs: 60_000 },
};

export interface RouteSettings {
  rateLimit: boolean;
  rateLimitCalls: number;
  rateLimitIntervalMs: number;
  version: number;
  thumbnails: boolean;
  fileUploadEnabled: boolean;
  maxFileSize: number;
  allowedMimeTypes: string[];
  blockedMimeTypes: string[];
  protectFiles: boolean;
  jwtFileUrls: boolean;
  jwtSecret: string;
}

export interface RouteContext {
  state: FakeState;
  webhooks: WebhookEmitter;
  settings: RouteSettings;
  limiter: RateLimiter;
}

interface HandlerInput {
  /** The body exactly as parsed, for routes that validate with Meteor check(). */
  rawBody: unknown;
  body: Record<string, unknown>;
  query: Record<string, unknown>;
  params: Record<string, string>;
  user: UserState | undefined;
  req: Request;
}

interface RouteOptions {
  auth?: boolean;
  permissions?: string[];
  body?: JsonSchema;
  query?: JsonSchema;
}

type Handler = (input: HandlerInput) => Promise<Record<string, unknown>> | Record<string, unknown>;

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function route(ctx: RouteContext, options: RouteOptions, handler: Handler): RequestHandler {
  return async (req: Request, res: Response) => {
    try {
      let user: UserState | undefined;
      if (options.auth === true) {
        const userId = req.get("x-user-id");
        const authToken = req.get("x-auth-token");
        user = userId && authToken ? ctx.state.userByCredentials(userId, authToken) : undefined;
        if (!user) {
          res.status(401).json(loggedOutBody(ctx.settings.version));
          return;
        }
      }
      // getFullRouteName: the route's pattern and method, so that all rooms share one counter per route. A user with
      // api-bypass-rate-limit is exempt; visitor routes carry no user, so nothing exempts them.
      if (ctx.settings.rateLimit && !(user?.permissions.has("api-bypass-rate-limit") ?? false)) {
        const pattern = (req.route as { path?: unknown } | undefined)?.path;
        const name = `/api/v1${typeof pattern === "string" ? pattern : req.path}${req.method.toLowerCase()}`;
        const rule = EXPLICIT_RATE_RULES[name] ?? {
          calls: ctx.settings.rateLimitCalls,
          intervalMs: ctx.settings.rateLimitIntervalMs,
        };
        const { headers, error } = ctx.limiter.hit(req.ip ?? req.socket.remoteAddress ?? "", name, rule);
        res.set(headers);
        if (error) throw error;
      }
      // A JSON array or a non-JSON body still reaches the validator as-is, like RC's bodyParams.
      const rawBody: unknown = req.body === undefined || Buffer.isBuffer(req.body) ? {} : req.body;
      const rawQuery: Record<string, unknown> = { ...asRecord(req.query) };
      const body = options.body ? validateParams<Record<string, unknown>>(options.body, rawBody) : asRecord(rawBody);
      const query = options.query
        ? validateParams<Record<string, unknown>>(options.query, rawQuery, { query: true })
        : rawQuery;
      if (options.permissions && user && !options.permissions.every((p) => user.permissions.has(p))) {
        throw new RcMeteorError("error-unauthorized", "User does not have the permissions required for this action", {
          permissions: options.permissions,
        });
      }
      const result = await handler({ rawBody, body, query, params: req.params as Record<string, string>, user, req });
      sendSuccess(res, result);
    } catch (error) {
      sendError(res, error);
    }
  };
}

const str = { type: "string" } as const;
const optStr = { type: "string", nullable: true } as const;
const optNum = { type: "number", nullable: true } as const;
const optBool = { type: "boolean", nullable: true } as const;

const POST_MESSAGE: JsonSchema = {
  type: "object",
  properties: {
    token: str,
    rid: str,
    msg: str,
    _id: optStr,
    agent: {
      type: "object",
      properties: { agentId: str, username: str },
      required: ["agentId", "username"],
      additionalProperties: false,
    },
  },
  required: ["token", "rid", "msg"],
  additionalProperties: false,
};

const TOKEN_RID: JsonSchema = {
  type: "object",
  properties: { token: str, rid: str },
  required: ["token", "rid"],
  additionalProperties: false,
};

const PUT_MESSAGE: JsonSchema = {
  type: "object",
  properties: { token: str, rid: str, msg: str },
  required: ["token", "rid", "msg"],
  additionalProperties: false,
};

const DELETE_MESSAGE: JsonSchema = {
  type: "object",
  properties: { token: str, rid: str, count: optNum, offset: optNum, sort: optStr },
  required: ["token", "rid"],
  additionalProperties: false,
};

const HISTORY_QUERY: JsonSchema = {
  type: "object",
  properties: {
    searchText: optStr,
    token: str,
    count: optNum,
    offset: optNum,
    sort: optStr,
    ls: optStr,
    end: optStr,
    limit: optNum,
  },
  required: ["token"],
  additionalProperties: false,
};

const CLOSE_BY_USER: JsonSchema = {
  type: "object",
  properties: {
    rid: str,
    comment: optStr,
    tags: { type: "array", items: str, nullable: true },
    generateTranscriptPdf: optBool,
    forceClose: optBool,
    transcriptEmail: {
      type: "object",
      properties: {
        sendToVisitor: { type: "boolean" },
        requestData: {
          type: "object",
          properties: { email: str, subject: str },
          required: ["email", "subject"],
          additionalProperties: false,
        },
      },
      required: ["sendToVisitor"],
      additionalProperties: false,
    },
  },
  required: ["rid"],
  additionalProperties: false,
};

const FORWARD: JsonSchema = {
  type: "object",
  properties: { roomId: str, userId: optStr, departmentId: optStr, comment: optStr, clientAction: optBool },
  required: ["roomId"],
  additionalProperties: false,
};

const CONFIG_QUERY: JsonSchema = {
  type: "object",
  properties: { token: optStr, department: optStr, businessUnit: optStr },
  additionalProperties: false,
};

const OFFLINE_MESSAGE: JsonSchema = {
  type: "object",
  properties: { name: str, email: str, message: str, department: optStr, host: optStr },
  required: ["name", "email", "message"],
  additionalProperties: false,
};

const VISITOR_BODY = Match.exact({
  visitor: Match.objectIncluding({
    token: Match.string,
    name: Match.maybe(Match.string),
    email: Match.maybe(Match.string),
    department: Match.maybe(Match.string),
    phone: Match.maybe(Match.string),
    username: Match.maybe(Match.string),
    customFields: Match.maybe(
      Match.arrayOf(Match.objectIncluding({ key: Match.string, value: Match.string, overwrite: Match.boolean })),
    ),
  }),
});

const ROOM_QUERY = Match.exact({
  token: Match.string,
  rid: Match.maybe(Match.string),
  agentId: Match.maybe(Match.string),
});

const UPLOAD_FIELDS = Match.exact({
  avatar: Match.optional(Match.string),
  emoji: Match.optional(Match.string),
  alias: Match.optional(Match.string),
  groupable: Match.optional(Match.boolean),
  msg: Match.optional(Match.string),
});

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function apiRouter(ctx: RouteContext): Router {
  const { state } = ctx;
  const router = express.Router();

  const findGuest = (token: unknown): RcVisitor | undefined =>
    typeof token === "string" && token !== "" ? state.visitorByToken(token) : undefined;

  const requireGuest = (token: unknown): RcVisitor => {
    const guest = findGuest(token);
    if (!guest) throw new RcPlainError("invalid-token");
    return guest;
  };

  const requireRoomOfToken = (rid: unknown, token: string): RcRoom => {
    const room = typeof rid === "string" ? state.roomOfToken(rid, token) : undefined;
    if (!room) throw new RcPlainError("invalid-room");
    return room;
  };

  const withFileUpload = (message: RcMessage): Record<string, unknown> => {
    const fileUpload = ctx.webhooks.publicFilePath(message);
    return fileUpload ? { ...message, fileUpload } : { ...message };
  };

  router.post(
    "/livechat/visitor",
    route(ctx, {}, ({ rawBody, body }) => {
      check(rawBody, VISITOR_BODY);
      const input = body.visitor as Record<string, unknown>;
      const token = input.token as string;
      if (token.trim() === "") {
        throw new RcMeteorError("error-invalid-token", "Token cannot be empty", { method: "livechat/visitor" });
      }
      const id = input.id;
      if (id !== undefined && id !== null && typeof id !== "string") {
        throw new RcPlainError("Match error: Failed Match.OneOf, Match.Maybe or Match.Optional validation");
      }
      const visitor = state.registerVisitor({
        token,
        ...(typeof id === "string" && id !== "" ? { id } : {}),
        ...(optionalString(input.name) === undefined ? {} : { name: input.name as string }),
        ...(optionalString(input.email) === undefined ? {} : { email: input.email as string }),
        ...(optionalString(input.department) === undefined ? {} : { department: input.department as string }),
        ...(optionalString(input.phone) === undefined ? {} : { phone: input.phone as string }),
        ...(optionalString(input.username) === undefined ? {} : { username: input.username as string }),
      });
      // "If it's updating an existing visitor, it must also update the roomInfo" (the label of open rooms).
      for (const room of state.rooms.values()) {
        if (room.open && room.v.token === visitor.token && visitor.name?.trim()) room.fname = visitor.name;
      }
      const customFields = input.customFields as
        { key: string; value: string; overwrite: boolean }[] | null | undefined;
      for (const field of state.customFields) {
        if (field.scope !== "visitor") continue;
        const given = customFields?.find((f) => f.key === field._id);
        // Applied by the token that was SENT: after a phone match (old token kept) nothing is written, as in RC.
        if (given) state.setVisitorCustomField(token, given.key, given.value, given.overwrite);
      }
      return { visitor: structuredClone(visitor) };
    }),
  );

  router.get(
    "/livechat/visitor/:token",
    route(ctx, {}, ({ params }) => {
      const visitor = state.visitorByToken(params.token ?? "");
      if (!visitor) throw new RcMeteorError("invalid-token");
      return { visitor: structuredClone(visitor) };
    }),
  );

  router.delete(
    "/livechat/visitor/:token",
    route(ctx, {}, ({ params }) => {
      const visitor = state.visitorByToken(params.token ?? "");
      if (!visitor) throw new RcMeteorError("invalid-token");
      if (state.openRoomByToken(visitor.token)) {
        throw new RcMeteorError("visitor-has-open-rooms", "Cannot remove visitors with opened rooms");
      }
      state.visitors.delete(visitor._id);
      return { visitor: { _id: visitor._id, ts: new Date().toISOString() } };
    }),
  );

  router.get(
    "/livechat/room",
    route(ctx, {}, ({ query }) => {
      check(query, ROOM_QUERY);
      const guest = requireGuest(query.token);
      const rid = query.rid as string | null | undefined;
      if (!rid) {
        const open = state.openRoomByToken(guest.token);
        if (open) return { room: structuredClone(open), newRoom: false };
        const agentId = typeof query.agentId === "string" && query.agentId !== "" ? query.agentId : undefined;
        const room = state.createRoom(guest, agentId);
        return { room: structuredClone(room), newRoom: true };
      }
      const room = state.rooms.get(rid);
      if (!room || !room.open || room.v.token !== guest.token) throw new RcPlainError("invalid-room");
      return { room: structuredClone(room), newRoom: false };
    }),
  );

  router.post(
    "/livechat/message",
    route(ctx, { body: POST_MESSAGE }, ({ body }) => {
      const guest = requireGuest(body.token);
      const room = requireRoomOfToken(body.rid, guest.token);
      if (!room.open) throw new RcPlainError("room-closed");
      const msg = body.msg as string;
      if (state.messageCharacterLimit !== undefined && msg.length > state.messageCharacterLimit) {
        throw new RcPlainError("message-length-exceeds-character-limit");
      }
      const id = typeof body._id === "string" && body._id !== "" ? body._id : undefined;
      if (id !== undefined && state.messageById(id)) {
        // sendMessage() finds the _id stored (in any room) and returns nothing, so nothing is stored or sent again;
        // Livechat's sendMessage then hands that undefined to Object.assign (a TypeError since 6.0), or to _.extend
        // (5.x: undefined, then API.v1.failure() with no argument).
        if (ctx.settings.version < 6) throw new RcDirectResponse(400, { success: false });
        throw new RcPlainError("Cannot convert undefined or null to object");
      }
      const message = state.addVisitorMessage(guest, room, { msg, ...(id === undefined ? {} : { _id: id }) });
      return { message: structuredClone(message) };
    }),
  );

  router.get(
    "/livechat/message/:_id",
    route(ctx, { query: TOKEN_RID }, ({ query, params }) => {
      const guest = requireGuest(query.token);
      requireRoomOfToken(query.rid, guest.token);
      const message = state.messageById(params._id ?? "");
      if (!message) throw new RcPlainError("invalid-message");
      return { message: withFileUpload(structuredClone(message)) };
    }),
  );

  router.put(
    "/livechat/message/:_id",
    route(ctx, { body: PUT_MESSAGE }, ({ body, params }) => {
      const guest = requireGuest(body.token);
      requireRoomOfToken(body.rid, guest.token);
      const message = state.messageById(params._id ?? "");
      if (!message) throw new RcPlainError("invalid-message");
      const edited = state.editVisitorMessage(guest, message, body.msg as string);
      return { message: withFileUpload(structuredClone(edited)) };
    }),
  );

  router.delete(
    "/livechat/message/:_id",
    route(ctx, { body: DELETE_MESSAGE }, ({ body, params }) => {
      const guest = requireGuest(body.token);
      requireRoomOfToken(body.rid, guest.token);
      const message = state.messageById(params._id ?? "");
      if (!message) throw new RcPlainError("invalid-message");
      state.deleteVisitorMessage(guest, message);
      return { message: { _id: message._id, ts: new Date().toISOString() } };
    }),
  );

  router.get(
    "/livechat/messages.history/:rid",
    route(ctx, { query: HISTORY_QUERY }, ({ query, params }) => {
      if (!query.token) throw new RcPlainError("error-token-param-not-provided");
      const guest = requireGuest(query.token);
      const room = requireRoomOfToken(params.rid, guest.token);
      let ascending = false;
      if (typeof query.sort === "string") {
        let sort: unknown;
        try {
          sort = JSON.parse(query.sort);
        } catch {
          throw new RcMeteorError("error-invalid-sort", `Invalid sort parameter provided "${query.sort}"`, {
            helperMethod: "parseJsonQuery",
          });
        }
        ascending = asRecord(sort).ts === 1;
      }
      const end = typeof query.end === "string" && query.end !== "" ? new Date(query.end) : undefined;
      const limit = typeof query.limit === "number" && query.limit !== 0 ? Math.trunc(query.limit) : 20;
      const offset = typeof query.offset === "number" ? Math.max(0, Math.trunc(query.offset)) : 0;
      const text =
        typeof query.searchText === "string" && query.searchText !== "" ? query.searchText.toLowerCase() : "";
      const messages = state
        .messagesOf(room._id)
        .filter((m) => end === undefined || m.ts.getTime() < end.getTime())
        .filter((m) => text === "" || m.msg.toLowerCase().includes(text))
        .sort((a, b) => (ascending ? a.ts.getTime() - b.ts.getTime() : b.ts.getTime() - a.ts.getTime()))
        .slice(offset, offset + limit)
        .map((m) => withFileUpload(structuredClone(m)));
      return { messages };
    }),
  );

  const maxFileSize = ctx.settings.maxFileSize || 104857600;
  const rawLimit = maxFileSize < 0 ? 1024 * 1024 * 1024 : Math.max(maxFileSize * 2, 16 * 1024 * 1024);
  router.post(
    "/livechat/upload/:rid",
    express.raw({ type: () => true, limit: rawLimit }),
    route(ctx, {}, async ({ req, params }) => {
      const version = ctx.settings.version;
      const token = req.get("x-visitor-token");
      if (!token) throw forbidden(version);
      if (!ctx.settings.fileUploadEnabled) throw failureObject({ reason: "error-file-upload-disabled" });
      const visitor = state.visitorByToken(token);
      if (!visitor) throw forbidden(version);
      // findOneOpenByRoomIdAndVisitorToken: a closed room, another visitor's room and an unknown rid look alike.
      const room = state.rooms.get(params.rid ?? "");
      if (!room || !room.open || room.v.token !== token) throw forbidden(version);
      const contentType = req.get("content-type");
      if (!contentType) throw new RcPlainError("Missing Content-Type");
      if (!/^multipart\/form-data/i.test(contentType))
        throw new RcPlainError(`Unsupported content type: ${contentType}`);
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let form: FormData;
      try {
        form = await new Request("http://127.0.0.1/upload", {
          method: "POST",
          headers: { "content-type": contentType },
          body: raw,
        }).formData();
      } catch {
        throw new RcPlainError("Unexpected end of form");
      }
      let file: File | undefined;
      const fields: Record<string, string> = {};
      for (const [name, value] of form.entries()) {
        if (typeof value === "string") {
          fields[name] = value;
          continue;
        }
        if (name !== "file") throw new RcMeteorError("invalid-field");
        if (file) throw new RcPlainError("Just 1 file is allowed");
        file = value;
      }
      if (!file) throw new RcMeteorError("No file uploaded");
      const content = Buffer.from(await file.arrayBuffer());
      const tooLarge = maxFileSize > -1 && content.length > maxFileSize;
      // Since 6.x getUploadFormData gives busboy the size limit, so a too-large file fails while the form is read,
      // before its type is looked at; 5.x compared the size after the type check.
      if (tooLarge && version >= 6) throw new RcMeteorError("error-file-too-large");
      const mimetype = file.type || "application/octet-stream";
      if (!isAllowedMimeType(mimetype, ctx.settings.allowedMimeTypes, ctx.settings.blockedMimeTypes)) {
        throw failureObject({ reason: "error-type-not-allowed" });
      }
      if (tooLarge) {
        throw failureObject({ reason: "error-size-not-allowed", sizeAllowed: formatFileSize(maxFileSize) });
      }
      const { description, ...msgData } = fields;
      const stored = state.storeFile(room._id, visitor._id, {
        name: file.name,
        type: mimetype,
        content,
        ...(description === undefined ? {} : { description }),
      });
      check(msgData, UPLOAD_FIELDS);
      const message = state.addVisitorMessage(visitor, room, {
        ...state.fileMessageFields([stored], ctx.settings.thumbnails),
        ...msgData,
      });
      return { ...structuredClone(message), newRoom: false, showConnecting: false };
    }),
  );

  router.post(
    "/livechat/room.close",
    route(ctx, { body: TOKEN_RID }, ({ body }) => {
      const visitor = requireGuest(body.token);
      const room = requireRoomOfToken(body.rid, visitor.token);
      if (!room.open) throw new RcPlainError("room-closed");
      const comment = "Closed by visitor";
      state.closeRoom(
        room,
        {
          kind: "visitor",
          _id: visitor._id,
          username: visitor.username,
          ...(visitor.name === undefined ? {} : { name: visitor.name }),
        },
        comment,
      );
      return { rid: room._id, comment };
    }),
  );

  router.post(
    "/livechat/room.closeByUser",
    route(ctx, { auth: true, body: CLOSE_BY_USER, permissions: ["close-livechat-room"] }, ({ body, user }) => {
      if (!user) throw new Error("unreachable: auth route without user");
      const room = state.rooms.get(body.rid as string);
      if (!room) throw new RcPlainError("error-invalid-room");
      if (!room.open && body.forceClose !== true) throw new RcPlainError("error-room-already-closed");
      // Subscriptions.findOneByRoomIdAndUserId: only the serving agent is subscribed to the room.
      if (room.servedBy?._id !== user.userId && !user.permissions.has("close-others-livechat-room")) {
        throw new RcPlainError("error-not-authorized");
      }
      if (!room.open) return {};
      state.closeRoom(
        room,
        {
          kind: "user",
          _id: user.userId,
          username: user.username,
          ...(user.name === undefined ? {} : { name: user.name }),
        },
        typeof body.comment === "string" ? body.comment : undefined,
        Array.isArray(body.tags) ? (body.tags as string[]) : undefined,
      );
      return {};
    }),
  );

  router.post(
    "/livechat/room.forward",
    route(ctx, { auth: true, body: FORWARD, permissions: ["view-l-room", "transfer-livechat-guest"] }, ({ body }) => {
      const room = state.rooms.get(body.roomId as string);
      if (!room) throw new RcPlainError("error-invalid-room");
      if (!room.open) throw new RcPlainError("This_conversation_is_already_closed");
      if (!state.visitors.has(room.v._id)) throw new RcPlainError("error-invalid-visitor");
      const forwarded = state.transfer(room, {
        ...(typeof body.userId === "string" && body.userId !== "" ? { userId: body.userId } : {}),
        ...(typeof body.departmentId === "string" && body.departmentId !== ""
          ? { departmentId: body.departmentId }
          : {}),
      });
      if (!forwarded) throw new RcPlainError("error-forwarding-chat");
      return {};
    }),
  );

  router.get(
    "/livechat/agent.info/:rid/:token",
    route(ctx, {}, ({ params }) => {
      const visitor = requireGuest(params.token);
      const room = requireRoomOfToken(params.rid, visitor.token);
      const agent = room.servedBy ? state.agentById(room.servedBy._id) : undefined;
      if (!agent) throw new RcPlainError("invalid-agent");
      return {
        agent: {
          _id: agent._id,
          username: agent.username,
          name: agent.name,
          ...(agent.email === undefined ? {} : { emails: [{ address: agent.email }] }),
        },
      };
    }),
  );

  router.get(
    "/livechat/config",
    route(ctx, { query: CONFIG_QUERY }, ({ query }) => configBody(ctx, query)),
  );

  router.post(
    "/livechat/offline.message",
    route(ctx, { body: OFFLINE_MESSAGE }, ({ body }) => {
      state.offlineMessage(body.name as string, body.email as string, body.message as string);
      return { message: "Livechat offline message sent" };
    }),
  );

  router.use((_req: Request, res: Response) => {
    res.status(404).json({ success: false, error: "API endpoint does not exist" });
  });

  return router;
}

function configBody(ctx: RouteContext, query: Record<string, unknown>): Record<string, unknown> {
  const { state } = ctx;
  const department = typeof query.department === "string" && query.department !== "" ? query.department : undefined;
  let online: boolean;
  if (state.acceptChatsWithNoAgents) online = true;
  else if (department === undefined) online = state.anyOnline();
  else {
    const dep = state.departmentByIdOrName(department);
    online = dep !== undefined && state.anyOnline(dep._id);
  }
  const guest = typeof query.token === "string" && query.token !== "" ? state.visitorByToken(query.token) : undefined;
  const room = guest ? state.openRoomByToken(guest.token) : undefined;
  const agent = room?.servedBy ? state.agentById(room.servedBy._id) : undefined;
  return {
    config: {
      enabled: true,
      settings: {
        registrationForm: true,
        allowSwitchingDepartments: true,
        nameFieldRegistrationForm: true,
        emailFieldRegistrationForm: true,
        displayOfflineForm: true,
        videoCall: false,
        fileUpload: ctx.settings.fileUploadEnabled,
        language: "en",
        transcript: false,
        historyMonitorType: "url",
        forceAcceptDataProcessingConsent: false,
        showConnecting: false,
        agentHiddenInfo: false,
        clearLocalStorageWhenChatEnded: false,
        limitTextLength: state.messageCharacterLimit ?? false,
        hiddenSystemMessages: [],
      },
      theme: { title: "Rocket.Chat", color: "#C1272D", offlineTitle: "Leave a message", offlineColor: "#666666" },
      messages: {
        offlineMessage: "",
        offlineSuccessMessage: "",
        offlineUnavailableMessage: "",
        conversationFinishedMessage: "",
        conversationFinishedText: "",
        transcriptMessage: "",
        registrationFormMessage: "",
        dataProcessingConsentText: "",
      },
      survey: {
        items: ["satisfaction", "agentKnowledge", "agentResposiveness", "agentFriendliness"],
        values: ["1", "2", "3", "4", "5"],
      },
      triggers: [],
      departments: state.departments.map((dep) => ({
        _id: dep._id,
        name: dep.name,
        showOnRegistration: true,
        showOnOfflineForm: true,
      })),
      resources: { sound: "chime" },
      online,
      ...(guest ? { guest: structuredClone(guest) } : {}),
      ...(room ? { room: structuredClone(room) } : {}),
      ...(agent
        ? {
            agent: {
              _id: agent._id,
              username: agent.username,
              name: agent.name,
              ...(agent.email === undefined ? {} : { emails: [{ address: agent.email }] }),
            },
          }
        : {}),
    },
  };
}

function cookies(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.get("cookie") ?? "").split(";")) {
    const index = part.indexOf("=");
    if (index > 0) out[part.slice(0, index).trim()] = decodeURIComponent(part.slice(index + 1).trim());
  }
  return out;
}

/** GET /file-upload/:id/:name (FileUpload route): 404 unknown id, 403 (empty body) when protection denies. */
export function fileDownloadHandler(ctx: RouteContext): RequestHandler {
  return (req: Request, res: Response) => {
    const file = ctx.state.files.get(String(req.params.id));
    if (!file) {
      res.status(404).end();
      return;
    }
    if (ctx.settings.protectFiles) {
      const jar = cookies(req);
      const userId = req.get("x-user-id") ?? jar.rc_uid;
      const authToken = req.get("x-auth-token") ?? jar.rc_token;
      const query = asRecord(req.query);
      const byUser = userId !== undefined && authToken !== undefined && ctx.state.userByCredentials(userId, authToken);
      const byJwt =
        ctx.settings.jwtFileUrls &&
        typeof query.token === "string" &&
        verifyFileToken(ctx.settings.jwtSecret, query.token, file._id);
      // The widget's way: rc_room_type=l&rc_rid=<rid>&rc_token=<visitor token> for files of the visitor's room.
      const visitorRoom = typeof query.rc_rid === "string" ? ctx.state.rooms.get(query.rc_rid) : undefined;
      const byVisitor =
        query.rc_room_type === "l" &&
        visitorRoom !== undefined &&
        visitorRoom._id === file.rid &&
        typeof query.rc_token === "string" &&
        visitorRoom.v.token === query.rc_token;
      if (!byUser && !byJwt && !byVisitor) {
        res.status(403).end();
        return;
      }
    }
    res.set({
      "Content-Type": file.type,
      "Content-Length": String(file.size),
      "Content-Disposition": `inline; filename="${encodeURIComponent(file.name)}"`,
      "Last-Modified": file.uploadedAt.toUTCString(),
      "Cache-Control": "max-age=31536000",
    });
    res.status(200).end(file.content);
  };
}
