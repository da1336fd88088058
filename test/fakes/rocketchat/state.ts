import { randomBytes } from "node:crypto";
import { RcMeteorError, RcPlainError } from "./errors.js";
import { buildAttachment, fileRef } from "./files.js";
import type {
  RcAttachment,
  RcFileRef,
  FakeCustomFieldOptions,
  FakeDepartmentOptions,
  FakeFileInput,
  FakeRocketChatOptions,
  RcMarkdownNode,
  RcMessage,
  RcRoom,
  RcServedBy,
  RcStoredFile,
  RcVisitor,
} from "./types.js";

/*
 * The fake's in-memory Rocket.Chat: visitors, rooms, messages, uploads, agents, and the domain rules of
 * Visitors.registerGuest, QueueManager/RoutingManager, closeRoom and transfer, reduced to what the spec covers.
 * It reports what happened as FakeEvents; the webhook emitter decides what goes out.
 */

const UNMISTAKABLE_CHARS = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/** Meteor's `Random.id()`: 17 characters from the "unmistakable" alphabet. */
export function randomId(length = 17): string {
  let out = "";
  for (const byte of randomBytes(length)) out += UNMISTAKABLE_CHARS[byte % UNMISTAKABLE_CHARS.length] ?? "x";
  return out;
}

export type SessionEventType =
  | "LivechatSessionStart"
  | "LivechatSessionQueued"
  | "LivechatSessionTaken"
  | "LivechatSessionForwarded"
  | "LivechatSession";

export type FakeEvent =
  | { kind: "session"; type: SessionEventType; room: RcRoom; oldServedBy?: RcServedBy; oldDepartmentId?: string }
  | { kind: "message"; room: RcRoom; message: RcMessage }
  | { kind: "capture"; room: RcRoom }
  | { kind: "offline"; sentAt: Date; name: string; email: string; message: string };

export interface AgentState {
  _id: string;
  username: string;
  name: string;
  email?: string;
  online: boolean;
  departments?: string[];
}

export interface UserState {
  userId: string;
  authToken: string;
  permissions: Set<string>;
  username: string;
  name?: string;
}

export interface RegisterVisitorInput {
  token: string;
  id?: string;
  name?: string;
  email?: string;
  department?: string;
  phone?: string;
  username?: string;
}

export interface Closer {
  kind: "user" | "visitor";
  _id: string;
  username: string;
  name?: string;
}

// Livechat_lead_email_regex / Livechat_lead_phone_regex defaults (settings/omnichannel.ts).
const LEAD_EMAIL = /\b[A-Z0-9._%+-]+@(?:[A-Z0-9-]+\.)+[A-Z]{2,4}\b/gi;
const LEAD_PHONE =
  /((?:\([0-9]{1,3}\)|[0-9]{2})[ -]*?[0-9]{4,5}(?:[-\s_]{1,2})?[0-9]{4}(?:(?=[^0-9])|$)|[0-9]{4,5}(?:[-\s_]{1,2})?[0-9]{4}(?:(?=[^0-9])|$))/g;

function noAgentOnline(): RcMeteorError {
  return new RcMeteorError("no-agent-online", "Sorry, no online agents");
}

function markdown(text: string): RcMarkdownNode[] {
  return text === "" ? [] : [{ type: "PARAGRAPH", value: [{ type: "PLAIN_TEXT", value: text }] }];
}

export class FakeState {
  readonly visitors = new Map<string, RcVisitor>();
  readonly rooms = new Map<string, RcRoom>();
  readonly files = new Map<string, RcStoredFile>();
  readonly agents: AgentState[];
  readonly departments: FakeDepartmentOptions[];
  readonly users: UserState[];
  readonly customFields: FakeCustomFieldOptions[];
  readonly acceptChatsWithNoAgents: boolean;
  readonly routing: "auto" | "manual";
  readonly messageCharacterLimit: number | undefined;
  private readonly messagesById = new Map<string, RcMessage>();
  private readonly roomMessageIds = new Map<string, string[]>();
  private guestCounter = 0;
  private lastTs = 0;

  constructor(
    options: FakeRocketChatOptions,
    private readonly emit: (event: FakeEvent) => void,
  ) {
    this.agents = (
      options.agents ?? [{ _id: "agent1", username: "jane.doe", name: "Jane Doe", email: "jane.doe@example.org" }]
    ).map((agent) => ({ ...agent, online: agent.online ?? true }));
    this.departments = options.departments ?? [{ _id: "dep1", name: "Support" }];
    this.users = (options.users ?? [DEFAULT_FAKE_USER]).map((user) => ({
      userId: user.userId,
      authToken: user.authToken,
      permissions: new Set(user.permissions),
      username: user.username ?? "liaison.bot",
      ...(user.name === undefined ? {} : { name: user.name }),
    }));
    this.customFields = options.customFields ?? [{ _id: "contactUUID", scope: "visitor" }];
    this.acceptChatsWithNoAgents = options.acceptChatsWithNoAgents ?? false;
    this.routing = options.routing ?? "auto";
    this.messageCharacterLimit = options.messageCharacterLimit;
  }

  /** Strictly increasing timestamps, so that "newest first" never depends on two writes in the same millisecond. */
  now(): Date {
    this.lastTs = Math.max(Date.now(), this.lastTs + 1);
    return new Date(this.lastTs);
  }

  visitorByToken(token: string): RcVisitor | undefined {
    for (const visitor of this.visitors.values()) if (visitor.token === token) return visitor;
    return undefined;
  }

  agentById(agentId: string): AgentState | undefined {
    return this.agents.find((agent) => agent._id === agentId);
  }

  userByCredentials(userId: string, authToken: string): UserState | undefined {
    return this.users.find((user) => user.userId === userId && user.authToken === authToken);
  }

  departmentByIdOrName(value: string): FakeDepartmentOptions | undefined {
    return this.departments.find((dep) => dep._id === value) ?? this.departments.find((dep) => dep.name === value);
  }

  private inDepartment(agent: AgentState, departmentId: string | undefined): boolean {
    return departmentId === undefined || agent.departments === undefined || agent.departments.includes(departmentId);
  }

  /** `checkOnlineAgents(department)`: is any agent of that department (any agent if none given) online? */
  anyOnline(departmentId?: string): boolean {
    return this.agents.some((agent) => agent.online && this.inDepartment(agent, departmentId));
  }

  /** The routing algorithm's choice: the least busy online agent of the department. */
  private pickAgent(departmentId: string | undefined): AgentState | undefined {
    const candidates = this.agents.filter((agent) => agent.online && this.inDepartment(agent, departmentId));
    const load = (agent: AgentState): number =>
      [...this.rooms.values()].filter((room) => room.open && room.servedBy?._id === agent._id).length;
    return candidates.reduce<AgentState | undefined>(
      (best, agent) => (best && load(best) <= load(agent) ? best : agent),
      undefined,
    );
  }

  /** Visitors.registerGuest: upsert by token, then phone (keeps the OLD token), then email (takes the NEW token). */
  registerVisitor(input: RegisterVisitorInput): RcVisitor {
    const update: Partial<RcVisitor> = {
      token: input.token,
      status: "online",
      ...(input.phone ? { phone: [{ phoneNumber: input.phone }] } : {}),
      ...(input.name ? { name: input.name } : {}),
    };
    if (input.email) {
      const email = input.email.trim().toLowerCase();
      if (!/^[^@]+@[^@]+$/.test(email)) {
        throw new RcMeteorError("error-invalid-email", `Invalid email ${email}`, {
          function: "Livechat.validateEmail",
          email,
        });
      }
      update.visitorEmails = [{ address: email }];
    }
    const byToken = this.visitorByToken(input.token);
    if (input.department) {
      const department = this.departmentByIdOrName(input.department);
      if (!department) throw new RcMeteorError("error-invalid-department", "The provided department is invalid");
      update.department = department._id;
    }
    const rawEmail = input.email?.toLowerCase();
    let target: RcVisitor | undefined = byToken;
    if (!target && input.phone) {
      target = [...this.visitors.values()].find((v) => v.phone?.some((p) => p.phoneNumber === input.phone));
      // "Don't change token when matching by phone number, use current visitor token"
      if (target) update.token = target.token;
    }
    if (!target && rawEmail) {
      // Matched by email: the visitor is reused but its token IS replaced by the one sent (Visitors.ts).
      target = [...this.visitors.values()].find((v) =>
        v.visitorEmails?.some((e) => e.address.toLowerCase() === rawEmail),
      );
    }
    if (!target && input.id !== undefined) target = this.visitors.get(input.id);
    const now = this.now();
    if (!target) {
      this.guestCounter += 1;
      target = {
        _id: input.id ?? randomId(),
        token: input.token,
        username: input.username ?? `guest-${this.guestCounter}`,
        status: "online",
        ts: now,
        _updatedAt: now,
      };
      this.visitors.set(target._id, target);
    }
    Object.assign(target, update, { _updatedAt: now });
    return target;
  }

  /** `LivechatVisitors.updateLivechatDataByToken`: matches by token, so nothing happens when no visitor has it. */
  setVisitorCustomField(token: string, key: string, value: string, overwrite: boolean): void {
    const visitor = this.visitorByToken(token);
    if (!visitor) return;
    if (!overwrite && visitor.livechatData?.[key] !== undefined) return;
    visitor.livechatData = { ...visitor.livechatData, [key]: value };
    visitor._updatedAt = this.now();
  }

  openRoomByToken(token: string): RcRoom | undefined {
    for (const room of this.rooms.values()) if (room.open && room.v.token === token) return room;
    return undefined;
  }

  /** `findRoom(token, rid)`: the room if it belongs to the token, open or not. */
  roomOfToken(rid: string, token: string): RcRoom | undefined {
    const room = this.rooms.get(rid);
    return room && room.v.token === token ? room : undefined;
  }

  /** createRoom + QueueManager.requestRoom (spec a.3, step 2). */
  createRoom(visitor: RcVisitor, agentId: string | undefined): RcRoom {
    const requested = agentId === undefined ? undefined : this.agentById(agentId);
    if (!this.acceptChatsWithNoAgents) {
      if (requested && !requested.online) throw noAgentOnline();
      if (!this.anyOnline(visitor.department)) throw noAgentOnline();
    }
    const now = this.now();
    const room: RcRoom = {
      _id: randomId(),
      t: "l",
      fname: visitor.name ?? visitor.username,
      msgs: 0,
      usersCount: 1,
      lm: now,
      ts: now,
      _updatedAt: now,
      ...(visitor.department === undefined ? {} : { departmentId: visitor.department }),
      v: { _id: visitor._id, username: visitor.username, token: visitor.token, status: "online" },
      cl: false,
      open: true,
      waitingResponse: true,
      source: { type: "api" },
      queuedAt: now,
    };
    this.rooms.set(room._id, room);
    this.roomMessageIds.set(room._id, []);
    this.emit({ kind: "session", type: "LivechatSessionStart", room });
    const startedAt = this.now();
    this.insertMessage({
      _id: randomId(),
      rid: room._id,
      msg: "",
      t: "livechat-started",
      groupable: false,
      ts: startedAt,
      _updatedAt: startedAt,
      u: {
        _id: visitor._id,
        username: visitor.username,
        ...(visitor.name === undefined ? {} : { name: visitor.name }),
      },
    });
    const agent =
      this.routing === "manual" ? undefined : requested?.online ? requested : this.pickAgent(room.departmentId);
    if (agent) this.assign(room, agent);
    else this.emit({ kind: "session", type: "LivechatSessionQueued", room });
    return room;
  }

  /** RoutingManager.takeInquiry: sets servedBy and fires `livechat.afterTakeInquiry` (LivechatSessionTaken). */
  assign(room: RcRoom, agent: AgentState): void {
    const now = this.now();
    room.servedBy = { _id: agent._id, username: agent.username, ts: now };
    room.usersCount = 2;
    room._updatedAt = now;
    this.emit({ kind: "session", type: "LivechatSessionTaken", room });
  }

  takeRoom(rid: string, agentId: string | undefined): RcRoom {
    const room = this.requireOpenRoom(rid);
    if (room.servedBy) throw new Error(`room ${rid} is already served by ${room.servedBy.username}`);
    const agent = agentId === undefined ? this.pickAgent(room.departmentId) : this.agentById(agentId);
    if (!agent) throw new Error(agentId === undefined ? `no online agent for room ${rid}` : `unknown agent ${agentId}`);
    this.assign(room, agent);
    return room;
  }

  requireOpenRoom(rid: string): RcRoom {
    const room = this.rooms.get(rid);
    if (!room) throw new Error(`unknown room ${rid}`);
    if (!room.open) throw new Error("room-closed");
    return room;
  }

  messagesOf(rid: string): RcMessage[] {
    return (this.roomMessageIds.get(rid) ?? []).flatMap((id) => {
      const message = this.messagesById.get(id);
      return message ? [message] : [];
    });
  }

  messageById(id: string): RcMessage | undefined {
    return this.messagesById.get(id);
  }

  private insertMessage(message: RcMessage): void {
    // The routes never insert a stored _id (livechat/message answers a resent one itself, as sendMessage() does).
    if (this.messagesById.has(message._id)) throw new Error(`message ${message._id} is stored already`);
    this.messagesById.set(message._id, message);
    const ids = this.roomMessageIds.get(message.rid) ?? [];
    ids.push(message._id);
    this.roomMessageIds.set(message.rid, ids);
    const room = this.rooms.get(message.rid);
    if (room) {
      if (message.t === undefined) room.msgs += 1;
      room.lm = message.ts;
      room._updatedAt = message._updatedAt;
    }
  }

  /** Livechat.sendMessage for a visitor (text or file); fires afterSaveMessage. */
  addVisitorMessage(visitor: RcVisitor, room: RcRoom, fields: Partial<RcMessage> & { _id?: string }): RcMessage {
    const ts = this.now();
    const text = fields.msg ?? "";
    const message: RcMessage = {
      ...fields,
      _id: fields._id ?? randomId(),
      rid: room._id,
      msg: text,
      token: visitor.token,
      ...(visitor.name === undefined || fields.alias !== undefined ? {} : { alias: visitor.name }),
      ts,
      u: {
        _id: visitor._id,
        username: visitor.username,
        ...(visitor.name === undefined ? {} : { name: visitor.name }),
      },
      _updatedAt: ts,
      ...(fields.file ? {} : { urls: [], mentions: [], channels: [], md: markdown(text) }),
    };
    this.insertMessage(message);
    room.waitingResponse = true;
    this.emit({ kind: "message", room, message });
    if (message.t === undefined && (text.match(LEAD_EMAIL) ?? text.match(LEAD_PHONE))) {
      this.emit({ kind: "capture", room });
    }
    return message;
  }

  /** PUT livechat/message/:_id → Livechat.updateMessage: only the visitor's own messages. */
  editVisitorMessage(visitor: RcVisitor, message: RcMessage, text: string): RcMessage {
    if (message.u._id !== visitor._id) {
      throw new RcMeteorError("error-action-not-allowed", "Message editing not allowed", {
        method: "livechatUpdateMessage",
      });
    }
    return this.applyEdit(message, text, { _id: visitor._id, username: visitor.username });
  }

  deleteVisitorMessage(visitor: RcVisitor, message: RcMessage): void {
    if (message.u._id !== visitor._id) {
      throw new RcMeteorError("error-action-not-allowed", "Message deleting not allowed", {
        method: "livechatDeleteMessage",
      });
    }
    this.messagesById.delete(message._id);
    const ids = this.roomMessageIds.get(message.rid) ?? [];
    this.roomMessageIds.set(
      message.rid,
      ids.filter((id) => id !== message._id),
    );
  }

  private applyEdit(message: RcMessage, text: string, editor: { _id: string; username: string }): RcMessage {
    const now = this.now();
    message.msg = text;
    if (message.md) message.md = markdown(text);
    message.editedAt = now;
    message.editedBy = editor;
    message._updatedAt = now;
    const room = this.rooms.get(message.rid);
    // updateMessage runs afterSaveMessage again: the edit goes out as another `Message` webhook.
    if (room) this.emit({ kind: "message", room, message });
    return message;
  }

  private agentFor(room: RcRoom, agentId: string | undefined): AgentState {
    const id = agentId ?? room.servedBy?._id;
    if (id === undefined) throw new Error(`room ${room._id} has no serving agent; pass agentId`);
    const agent = this.agentById(id);
    if (!agent) throw new Error(`unknown agent ${id}`);
    return agent;
  }

  agentSend(rid: string, text: string, agentId: string | undefined): RcMessage {
    const room = this.requireOpenRoom(rid);
    const agent = this.agentFor(room, agentId);
    const ts = this.now();
    const message: RcMessage = {
      _id: randomId(),
      rid,
      msg: text,
      ts,
      u: { _id: agent._id, username: agent.username, name: agent.name },
      _updatedAt: ts,
      urls: [],
      mentions: [],
      channels: [],
      md: markdown(text),
    };
    this.insertMessage(message);
    room.waitingResponse = false;
    this.emit({ kind: "message", room, message });
    return message;
  }

  agentEdit(rid: string, messageId: string, text: string): RcMessage {
    const message = this.messagesById.get(messageId);
    if (!message || message.rid !== rid) throw new Error(`unknown message ${messageId} in room ${rid}`);
    if (message.token !== undefined || message.t !== undefined)
      throw new Error(`message ${messageId} is not an agent message`);
    return this.applyEdit(message, text, { _id: message.u._id, username: message.u.username });
  }

  storeFile(rid: string, userId: string, input: FakeFileInput, thumbnailOf?: string): RcStoredFile {
    const file: RcStoredFile = {
      _id: randomId(),
      name: input.name,
      type: input.type,
      size: input.content.length,
      rid,
      userId,
      content: input.content,
      uploadedAt: this.now(),
      ...(input.description === undefined ? {} : { description: input.description }),
      ...(thumbnailOf === undefined ? {} : { thumbnailOf }),
    };
    this.files.set(file._id, file);
    return file;
  }

  /**
   * `parseFileIntoMessageAttachments` / `parseMultipleFilesIntoMessageAttachments`: one attachment per file (with
   * `fileId`), every original in `files` followed, for an image, by its thumbnail (which the attachment's `image_url`
   * shows), and `file` = the first original. The fake does not resize: a thumbnail is stored as its own file, with
   * the image's name and type and placeholder bytes, so that a client that downloads `image_url` gets something else.
   */
  fileMessageFields(
    stored: RcStoredFile[],
    thumbnails: boolean,
  ): Pick<RcMessage, "msg" | "file" | "files" | "groupable" | "attachments"> {
    const files: RcFileRef[] = [];
    const attachments: RcAttachment[] = [];
    for (const file of stored) {
      files.push(fileRef(file));
      let thumbnail: RcStoredFile | undefined;
      if (thumbnails && /^image\/.+/.test(file.type)) {
        thumbnail = this.storeFile(
          file.rid,
          file.userId,
          { name: file.name, type: file.type, content: Buffer.from(`thumbnail of ${file._id}`) },
          file._id,
        );
        files.push(fileRef(thumbnail));
      }
      attachments.push(buildAttachment(file, thumbnail));
    }
    const [first] = files;
    if (!first) throw new Error("a file message needs a file");
    return { msg: "", file: { ...first }, files, groupable: false, attachments };
  }

  agentSendFile(rid: string, input: FakeFileInput, agentId: string | undefined, thumbnails: boolean): RcMessage {
    return this.agentSendFiles(rid, [input], agentId, thumbnails);
  }

  agentSendFiles(rid: string, inputs: FakeFileInput[], agentId: string | undefined, thumbnails: boolean): RcMessage {
    const room = this.requireOpenRoom(rid);
    const agent = this.agentFor(room, agentId);
    const stored = inputs.map((input) => this.storeFile(rid, agent._id, input));
    const ts = this.now();
    const message: RcMessage = {
      _id: randomId(),
      rid,
      ts,
      ...this.fileMessageFields(stored, thumbnails),
      u: { _id: agent._id, username: agent.username, name: agent.name },
      _updatedAt: ts,
    };
    this.insertMessage(message);
    room.waitingResponse = false;
    this.emit({ kind: "message", room, message });
    return message;
  }

  /** LivechatTyped.closeRoom: close data, the `livechat-close` message (sent like any message), then the hook. */
  closeRoom(room: RcRoom, closer: Closer, comment: string | undefined, tags?: string[]): void {
    const now = this.now();
    room.open = false;
    room.closedAt = now;
    room.chatDuration = (now.getTime() - room.ts.getTime()) / 1000;
    room.closer = closer.kind;
    room.closedBy = { _id: closer._id, username: closer.username };
    if (tags !== undefined) room.tags = tags;
    room._updatedAt = now;
    const closedAt = this.now();
    const message: RcMessage = {
      _id: randomId(),
      rid: room._id,
      msg: comment ?? "",
      t: "livechat-close",
      groupable: false,
      transcriptRequested: false,
      ts: closedAt,
      u: { _id: closer._id, username: closer.username, ...(closer.name === undefined ? {} : { name: closer.name }) },
      _updatedAt: closedAt,
    };
    this.insertMessage(message);
    this.emit({ kind: "message", room, message });
    this.emit({ kind: "session", type: "LivechatSession", room });
  }

  closeByAgent(rid: string, comment: string | undefined): RcRoom {
    const room = this.rooms.get(rid);
    if (!room) throw new Error(`unknown room ${rid}`);
    if (!room.open) throw new Error("error-room-already-closed");
    const agent = this.agentFor(room, room.servedBy?._id ?? this.agents[0]?._id);
    this.closeRoom(room, { kind: "user", _id: agent._id, username: agent.username, name: agent.name }, comment);
    return room;
  }

  /** Livechat.transfer → RoutingManager.transferRoom: department first, then agent; false = not forwarded. */
  transfer(room: RcRoom, target: { userId?: string; departmentId?: string }): boolean {
    if (target.departmentId) {
      if (!this.departments.some((dep) => dep._id === target.departmentId))
        throw new RcPlainError("error-invalid-department");
      return this.forwardToDepartment(room, target.departmentId, target.userId);
    }
    if (target.userId) return this.forwardToAgent(room, target.userId);
    return false;
  }

  private forwardToAgent(room: RcRoom, agentId: string): boolean {
    if (!room.open) return false;
    const agent = this.agentById(agentId);
    if (!agent?.online) throw new RcPlainError("error-user-is-offline");
    const oldServedBy = room.servedBy;
    if (oldServedBy && oldServedBy._id === agentId) throw new RcPlainError("error-selected-agent-room-agent-are-same");
    this.assign(room, agent);
    this.emit({ kind: "session", type: "LivechatSessionForwarded", room, ...(oldServedBy ? { oldServedBy } : {}) });
    return true;
  }

  private forwardToDepartment(room: RcRoom, departmentId: string, agentId: string | undefined): boolean {
    if (!room.open) return false;
    const oldDepartmentId = room.departmentId;
    if (oldDepartmentId === departmentId) throw new RcPlainError("error-forwarding-chat-same-department");
    let agent: AgentState | undefined;
    if (agentId) {
      agent = this.agentById(agentId);
      if (!agent?.online) throw new RcPlainError("error-user-is-offline");
      if (!this.inDepartment(agent, departmentId)) throw new RcPlainError("error-user-not-belong-to-department");
    }
    const forwarded = (): void =>
      this.emit({
        kind: "session",
        type: "LivechatSessionForwarded",
        room,
        ...(oldDepartmentId === undefined ? {} : { oldDepartmentId }),
      });
    if (this.routing === "manual") {
      // RoutingManager.unassignAgent: back to the (new) department's queue.
      delete room.servedBy;
      room.departmentId = departmentId;
      forwarded();
      return true;
    }
    agent ??= this.pickAgent(departmentId);
    if (!agent) {
      if (room.servedBy) return false;
      room.departmentId = departmentId;
      this.emit({ kind: "session", type: "LivechatSessionQueued", room });
      forwarded();
      return true;
    }
    if (room.servedBy && room.servedBy._id === agent._id) return false;
    room.departmentId = departmentId;
    this.assign(room, agent);
    forwarded();
    return true;
  }

  offlineMessage(name: string, email: string, message: string): void {
    this.emit({ kind: "offline", sentAt: this.now(), name, email, message });
  }
}

/** The default authenticated user (an agent-side bot). */
export const DEFAULT_FAKE_USER = {
  userId: "bot-user-id",
  authToken: "bot-auth-token",
  username: "liaison.bot",
  name: "Liaison Bot",
  permissions: ["close-livechat-room", "view-l-room", "transfer-livechat-guest", "close-others-livechat-room"],
};
