import { LcError } from "./errors.js";
import type {
  AgentInit,
  AgentStatus,
  AgentTokenInit,
  GroupInit,
  GroupStatus,
  LcAgentEvent,
  LcEvent,
  LcThread,
  LcUser,
  PropertyType,
  QueueEntry,
  Routing,
  SneakPeek,
  Visibility,
} from "./types.js";
import { formatUs, MicroClock, randomLcId } from "./util.js";

/*
 * The license's state: customers, chats, threads, events, agents, groups, the queue and the router. Every change
 * is announced as a Happening, synchronously, so that the RTM server and the webhook emitter build their payloads
 * from the state as it is at that moment (a snapshot, as LiveChat's pushes are).
 */

/** Client ID the agent app acts with: webhooks see agents' actions as coming from `other_clients`. */
export const AGENT_APP_CLIENT_ID = "bb9e5b2f1ab480e4a715977b7b1b4279";
/** Client ID of the LiveChat chat widget, for chats that are not Liaison's. */
export const WIDGET_CLIENT_ID = "c5e4f61e1a6c3b1521b7a6c6a1b9e0a1";

export interface CustomerRecord {
  id: string;
  clientId: string;
  name?: string;
  email?: string;
  avatar?: string;
  sessionFields: Record<string, string>[];
  banned: boolean;
  createdUs: number;
}

export interface AgentRecord {
  id: string;
  name: string;
  avatar: string;
  jobTitle?: string;
  groups: Set<number>;
  status: AgentStatus;
  maxChats: number;
}

export interface StoredEvent {
  id: string;
  chatId: string;
  threadId: string;
  createdUs: number;
  type: string;
  authorId?: string;
  customId?: string;
  visibility: Visibility;
  properties?: Record<string, Record<string, unknown>>;
  /** The type's own fields (`text`, `url`, `system_message_type`…), in wire form. */
  body: Record<string, unknown>;
}

export interface ThreadRecord {
  id: string;
  chatId: string;
  createdUs: number;
  active: boolean;
  events: StoredEvent[];
  seq: number;
  properties: Record<string, Record<string, unknown>>;
  access: { group_ids: number[] };
  userIds: string[];
  /** Set while the thread waits in its group's queue. */
  queuedUs?: number;
  /** Agents in the thread now. */
  agentIds: string[];
}

export interface ChatUser {
  type: "customer" | "agent";
  present: boolean;
  seenUpToUs?: number;
}

export interface ChatRecord {
  id: string;
  customerId: string;
  threads: ThreadRecord[];
  access: { group_ids: number[] };
  properties: Record<string, Record<string, unknown>>;
  sourceClientId: string;
  continuous: boolean;
  users: Map<string, ChatUser>;
}

/** Who caused a change: the client whose token acted (webhook `source_type`), and the RTM request, if any. */
export interface Origin {
  clientId?: string;
  connectionId?: number;
  requestId?: string;
}

export type Happening =
  | { kind: "incoming_chat"; chat: ChatRecord; thread: ThreadRecord; requesterId: string; origin: Origin }
  | { kind: "incoming_event"; chat: ChatRecord; thread: ThreadRecord; event: StoredEvent; origin: Origin }
  | { kind: "chat_deactivated"; chat: ChatRecord; thread: ThreadRecord; userId?: string; origin: Origin }
  | {
      kind: "chat_transferred";
      chat: ChatRecord;
      thread: ThreadRecord;
      requesterId: string;
      transferredTo: { group_ids?: number[]; agent_ids?: string[] };
      origin: Origin;
    }
  | {
      kind: "user_added_to_chat";
      chat: ChatRecord;
      thread: ThreadRecord;
      userId: string;
      reason: string;
      requesterId?: string;
      origin: Origin;
    }
  | {
      kind: "user_removed_from_chat";
      chat: ChatRecord;
      thread: ThreadRecord;
      userId: string;
      reason: string;
      requesterId?: string;
      origin: Origin;
    }
  | { kind: "typing"; chat: ChatRecord; thread: ThreadRecord; authorId: string; isTyping: boolean }
  | { kind: "queue_position_updated"; chat: ChatRecord; thread: ThreadRecord; position: number; waitTime: number }
  | { kind: "customer_updated"; customer: CustomerRecord; fields: Record<string, unknown>; origin: Origin }
  | { kind: "session_fields_updated"; customer: CustomerRecord; chat: ChatRecord; thread: ThreadRecord; origin: Origin }
  | { kind: "events_marked_as_seen"; chat: ChatRecord; userId: string; seenUpToUs: number; origin: Origin }
  | { kind: "groups_status_updated"; groups: { id: number; status: GroupStatus }[] }
  | { kind: "customer_banned"; customer: CustomerRecord };

export interface NewEvent {
  type: string;
  customId?: string;
  visibility?: Visibility;
  properties?: Record<string, Record<string, unknown>>;
  body: Record<string, unknown>;
}

export interface StateSettings {
  routing: Routing;
  queueWaitSecondsPerPosition: number;
  properties: Record<string, Record<string, PropertyType>>;
}

const DEFAULT_AGENT: AgentInit = { id: "anna@example.org", name: "Anna Smith", jobTitle: "Support Agent" };

export class FakeState {
  readonly clock = new MicroClock();
  readonly customers = new Map<string, CustomerRecord>();
  readonly agents = new Map<string, AgentRecord>();
  readonly groups = new Map<number, { id: number; name: string }>();
  readonly chats = new Map<string, ChatRecord>();
  readonly agentTokens = new Map<string, { agentId: string; scopes: string[]; expired: boolean }>();
  readonly feed: { chatId: string; threadId: string; event: StoredEvent }[] = [];
  readonly sneakPeekLog: SneakPeek[] = [];
  /** Whether a customer has a logged-in RTM socket (its `present`); set by the RTM server. */
  customerOnline: (id: string) => boolean = () => false;
  private readonly listeners: ((happening: Happening) => void)[] = [];
  private readonly reportedQueue = new Map<string, { position: number; waitTime: number }>();
  private lastGroupStatus = new Map<number, GroupStatus>();

  constructor(
    readonly settings: StateSettings,
    init: { groups?: GroupInit[]; agents?: AgentInit[]; agentTokens?: AgentTokenInit[] },
  ) {
    this.groups.set(0, { id: 0, name: "General" });
    for (const group of init.groups ?? []) this.groups.set(group.id, { ...group });
    for (const agent of init.agents ?? [DEFAULT_AGENT]) {
      for (const g of agent.groups ?? []) {
        if (!this.groups.has(g)) throw new Error(`agent ${agent.id}: unknown group ${g}`);
      }
      this.agents.set(agent.id, {
        id: agent.id,
        name: agent.name,
        avatar: agent.avatar ?? `https://cdn.livechat-files.com/api/file/avatars/${encodeURIComponent(agent.id)}.png`,
        ...(agent.jobTitle === undefined ? {} : { jobTitle: agent.jobTitle }),
        groups: new Set([0, ...(agent.groups ?? [])]),
        status: agent.status ?? "accepting_chats",
        maxChats: agent.maxChats ?? 6,
      });
    }
    for (const token of init.agentTokens ?? []) {
      if (!this.agents.has(token.agentId)) throw new Error(`agent token for unknown agent ${token.agentId}`);
      this.agentTokens.set(token.token, {
        agentId: token.agentId,
        scopes: token.scopes ?? ["customers:own"],
        expired: false,
      });
    }
    this.lastGroupStatus = new Map([...this.groups.keys()].map((id) => [id, this.groupStatus(id)]));
  }

  on(listener: (happening: Happening) => void): void {
    this.listeners.push(listener);
  }

  private emit(happening: Happening): void {
    for (const listener of this.listeners) listener(happening);
  }

  // ── customers ──

  createCustomer(clientId: string, id: string): CustomerRecord {
    const customer: CustomerRecord = { id, clientId, sessionFields: [], banned: false, createdUs: this.clock.nowUs() };
    this.customers.set(id, customer);
    return customer;
  }

  chatsOf(customerId: string): ChatRecord[] {
    return [...this.chats.values()].filter((chat) => chat.customerId === customerId);
  }

  requireChatOf(customer: CustomerRecord, chatId: string): ChatRecord {
    const chat = this.chats.get(chatId);
    // A chat of another customer is as unknown to this one as a chat that does not exist.
    if (!chat || chat.customerId !== customer.id) throw new LcError("not_found", "Chat not found");
    return chat;
  }

  updateCustomer(customer: CustomerRecord, fields: Record<string, unknown>, origin: Origin): void {
    const changed: Record<string, unknown> = {};
    for (const key of ["name", "email", "avatar"] as const) {
      const value = fields[key];
      if (typeof value === "string" && customer[key] !== value) {
        customer[key] = value;
        changed[key] = value;
      }
    }
    if (Array.isArray(fields.session_fields)) {
      customer.sessionFields = fields.session_fields as Record<string, string>[];
      changed.session_fields = customer.sessionFields;
    }
    if (Object.keys(changed).length === 0) return;
    this.emit({ kind: "customer_updated", customer, fields: changed, origin });
    if (changed.session_fields !== undefined) {
      // "The webhook will be sent for each active chat the customer has."
      for (const chat of this.chatsOf(customer.id)) {
        const thread = lastThread(chat);
        if (thread.active) this.emit({ kind: "session_fields_updated", customer, chat, thread, origin });
      }
    }
  }

  // ── agents and groups ──

  requireAgent(agentId?: string): AgentRecord {
    const id = agentId ?? [...this.agents.keys()][0];
    const agent = id === undefined ? undefined : this.agents.get(id);
    if (!agent) throw new Error(`unknown agent ${String(agentId)}`);
    return agent;
  }

  agentsOfGroup(groupId: number): AgentRecord[] {
    return [...this.agents.values()].filter((agent) => agent.groups.has(groupId));
  }

  activeChatsOf(agentId: string): number {
    let count = 0;
    for (const chat of this.chats.values()) {
      const thread = lastThread(chat);
      if (thread.active && thread.agentIds.includes(agentId)) count += 1;
    }
    return count;
  }

  groupStatus(groupId: number): GroupStatus {
    const accepting = this.agentsOfGroup(groupId).filter((agent) => agent.status === "accepting_chats");
    if (accepting.length === 0) return "offline";
    if (this.settings.routing === "auto" && accepting.every((a) => this.activeChatsOf(a.id) >= a.maxChats)) {
      return "online_for_queue";
    }
    return "online";
  }

  setAgentStatus(agentId: string, status: AgentStatus): void {
    this.requireAgent(agentId).status = status;
    this.route();
    this.announceGroupStatuses();
  }

  private announceGroupStatuses(): void {
    const changed: { id: number; status: GroupStatus }[] = [];
    for (const id of this.groups.keys()) {
      const status = this.groupStatus(id);
      if (this.lastGroupStatus.get(id) !== status) changed.push({ id, status });
      this.lastGroupStatus.set(id, status);
    }
    if (changed.length > 0) this.emit({ kind: "groups_status_updated", groups: changed });
  }

  // ── properties ──

  /** Properties must be defined on the license (namespace, name, type); the `source` namespace is LiveChat's own. */
  checkProperties(value: unknown, where: string): Record<string, Record<string, unknown>> {
    if (value === undefined) return {};
    const props = value as Record<string, Record<string, unknown>>;
    for (const [namespace, entries] of Object.entries(props)) {
      const defined = this.settings.properties[namespace];
      for (const [name, propertyValue] of Object.entries(entries)) {
        const type = defined?.[name];
        if (type === undefined) throw new LcError("validation", `${where}: property ${namespace}.${name} not found`);
        const ok =
          (type === "string" && typeof propertyValue === "string") ||
          (type === "int" && Number.isInteger(propertyValue)) ||
          (type === "bool" && typeof propertyValue === "boolean");
        if (!ok) throw new LcError("validation", `${where}: property ${namespace}.${name} must be ${type}`);
      }
    }
    return structuredClone(props);
  }

  // ── chats ──

  private newThread(chat: ChatRecord): ThreadRecord {
    const thread: ThreadRecord = {
      id: this.uniqueId(),
      chatId: chat.id,
      createdUs: this.clock.nowUs(),
      active: true,
      events: [],
      seq: 0,
      properties: {},
      access: { group_ids: [...chat.access.group_ids] },
      userIds: [chat.customerId],
      agentIds: [],
    };
    chat.threads.push(thread);
    return thread;
  }

  private uniqueId(): string {
    const taken = (id: string) =>
      this.chats.has(id) || [...this.chats.values()].some((c) => c.threads.some((t) => t.id === id));
    let id = randomLcId();
    while (taken(id)) id = randomLcId();
    return id;
  }

  private checkGroups(groupIds: number[]): void {
    for (const id of groupIds) {
      if (!this.groups.has(id)) throw new LcError("group_not_found");
    }
  }

  private groupOf(chat: ChatRecord): number {
    return chat.access.group_ids[0] ?? 0;
  }

  startChat(
    customer: CustomerRecord,
    input: {
      groupIds?: number[];
      properties?: Record<string, Record<string, unknown>>;
      threadProperties?: Record<string, Record<string, unknown>>;
      events: NewEvent[];
      active: boolean;
      continuous: boolean;
      sourceClientId: string;
    },
    origin: Origin,
  ): { chat: ChatRecord; thread: ThreadRecord; eventIds: string[] } {
    // The customer SDK: "For one customer, you can only start one chat" (CHAT_LIMIT_REACHED, limit 1).
    if (this.chatsOf(customer.id).length > 0) throw new LcError("chat_limit_reached");
    const groupIds = input.groupIds ?? [0];
    this.checkGroups(groupIds);
    if (input.active && !input.continuous && groupIds.every((g) => this.groupStatus(g) === "offline")) {
      throw new LcError("groups_offline");
    }
    const chat: ChatRecord = {
      id: this.uniqueId(),
      customerId: customer.id,
      threads: [],
      access: { group_ids: groupIds },
      properties: { ...input.properties, source: { client_id: input.sourceClientId } },
      sourceClientId: input.sourceClientId,
      continuous: input.continuous,
      users: new Map([[customer.id, { type: "customer", present: true }]]),
    };
    this.chats.set(chat.id, chat);
    const thread = this.openThread(chat, input.active, input.threadProperties);
    const eventIds = this.addInitialEvents(chat, thread, customer, input.events, origin.clientId);
    this.afterThreadOpened(chat, thread, customer, origin);
    return { chat, thread, eventIds };
  }

  resumeChat(
    customer: CustomerRecord,
    chatId: string,
    input: {
      groupIds?: number[];
      properties?: Record<string, Record<string, unknown>>;
      threadProperties?: Record<string, Record<string, unknown>>;
      events: NewEvent[];
      active: boolean;
      continuous?: boolean;
    },
    origin: Origin,
  ): { chat: ChatRecord; thread: ThreadRecord; eventIds: string[] } {
    const chat = this.requireChatOf(customer, chatId);
    if (lastThread(chat).active) throw new LcError("chat_already_active");
    const groupIds = input.groupIds ?? chat.access.group_ids;
    this.checkGroups(groupIds);
    const continuous = input.continuous ?? chat.continuous;
    if (input.active && !continuous && groupIds.every((g) => this.groupStatus(g) === "offline")) {
      throw new LcError("groups_offline");
    }
    chat.access = { group_ids: groupIds };
    chat.continuous = continuous;
    if (input.properties) Object.assign(chat.properties, input.properties);
    const thread = this.openThread(chat, input.active, input.threadProperties);
    const eventIds = this.addInitialEvents(chat, thread, customer, input.events, origin.clientId);
    this.afterThreadOpened(chat, thread, customer, origin);
    return { chat, thread, eventIds };
  }

  private openThread(
    chat: ChatRecord,
    active: boolean,
    properties: Record<string, Record<string, unknown>> | undefined,
  ): ThreadRecord {
    const thread = this.newThread(chat);
    thread.active = active;
    if (properties) thread.properties = properties;
    for (const user of chat.users.values()) if (user.type === "agent") user.present = false;
    if (active) thread.queuedUs = this.clock.nowUs();
    return thread;
  }

  private addInitialEvents(
    chat: ChatRecord,
    thread: ThreadRecord,
    customer: CustomerRecord,
    events: NewEvent[],
    clientId: string | undefined,
  ): string[] {
    const ids = events.map((event) => this.appendEvent(chat, thread, event, customer.id, clientId).id);
    this.markSeen(chat, customer.id);
    return ids;
  }

  private afterThreadOpened(chat: ChatRecord, thread: ThreadRecord, customer: CustomerRecord, origin: Origin): void {
    if (thread.queuedUs !== undefined) {
      const entry = this.queueEntry(thread);
      if (entry) this.reportedQueue.set(thread.id, { position: entry.position, waitTime: entry.waitTime });
    }
    this.emit({ kind: "incoming_chat", chat, thread, requesterId: customer.id, origin });
    for (const event of thread.events) this.feed.push({ chatId: chat.id, threadId: thread.id, event });
    this.route();
    this.refreshQueue();
    this.announceGroupStatuses();
  }

  /**
   * Adds an event to the thread: ids are `<thread>_<n>`, numbered per thread, system messages included. An event a
   * user sent through an application carries that application's Client ID in `properties.source.client_id`.
   */
  appendEvent(
    chat: ChatRecord,
    thread: ThreadRecord,
    input: NewEvent,
    authorId: string | undefined,
    clientId?: string,
  ): StoredEvent {
    thread.seq += 1;
    const properties =
      authorId !== undefined && clientId !== undefined
        ? { ...input.properties, source: { client_id: clientId } }
        : input.properties;
    const event: StoredEvent = {
      id: `${thread.id}_${thread.seq}`,
      chatId: chat.id,
      threadId: thread.id,
      createdUs: this.clock.nowUs(),
      type: input.type,
      ...(authorId === undefined ? {} : { authorId }),
      ...(input.customId === undefined ? {} : { customId: input.customId }),
      visibility: input.visibility ?? "all",
      ...(properties === undefined ? {} : { properties }),
      body: input.body,
    };
    thread.events.push(event);
    return event;
  }

  private postEvent(
    chat: ChatRecord,
    thread: ThreadRecord,
    input: NewEvent,
    authorId: string | undefined,
    origin: Origin,
  ): StoredEvent {
    const event = this.appendEvent(chat, thread, input, authorId, origin.clientId);
    this.feed.push({ chatId: chat.id, threadId: thread.id, event });
    this.emit({ kind: "incoming_event", chat, thread, event, origin });
    return event;
  }

  sendEvent(
    customer: CustomerRecord,
    chatId: string,
    input: NewEvent,
    attachToLastThread: boolean,
    origin: Origin,
  ): StoredEvent {
    const chat = this.requireChatOf(customer, chatId);
    const thread = lastThread(chat);
    if (!thread.active && !attachToLastThread) throw new LcError("chat_inactive");
    const event = this.postEvent(chat, thread, input, customer.id, origin);
    this.markSeen(chat, customer.id);
    return event;
  }

  private markSeen(chat: ChatRecord, userId: string): void {
    const last = lastThread(chat).events.at(-1);
    const user = chat.users.get(userId);
    if (user && last) user.seenUpToUs = Math.max(user.seenUpToUs ?? 0, last.createdUs);
  }

  markEventsAsSeen(customer: CustomerRecord, chatId: string, seenUpToUs: number, origin: Origin): void {
    const chat = this.requireChatOf(customer, chatId);
    const user = chat.users.get(customer.id);
    if (!user) return;
    user.seenUpToUs = Math.max(user.seenUpToUs ?? 0, seenUpToUs);
    this.emit({ kind: "events_marked_as_seen", chat, userId: customer.id, seenUpToUs: user.seenUpToUs, origin });
  }

  sneakPeek(customer: CustomerRecord, chatId: string, text: string): void {
    const chat = this.requireChatOf(customer, chatId);
    const thread = lastThread(chat);
    if (!thread.active) throw new LcError("chat_inactive");
    this.sneakPeekLog.push({ chatId, threadId: thread.id, authorId: customer.id, text });
  }

  deactivateByCustomer(customer: CustomerRecord, chatId: string, origin: Origin): void {
    const chat = this.requireChatOf(customer, chatId);
    const thread = lastThread(chat);
    if (!thread.active) throw new LcError("chat_inactive");
    const name = customer.name ?? "Customer";
    this.closeThread(
      chat,
      thread,
      systemMessage("manual_archived_customer", `${name} archived the chat`, { customer: name }),
      customer.id,
      origin,
    );
  }

  private closeThread(
    chat: ChatRecord,
    thread: ThreadRecord,
    message: NewEvent,
    userId: string | undefined,
    origin: Origin,
  ): void {
    this.postEvent(chat, thread, message, undefined, origin);
    thread.active = false;
    delete thread.queuedUs;
    thread.agentIds = [];
    for (const user of chat.users.values()) if (user.type === "agent") user.present = false;
    this.reportedQueue.delete(thread.id);
    this.emit({ kind: "chat_deactivated", chat, thread, ...(userId === undefined ? {} : { userId }), origin });
    this.route();
    this.refreshQueue();
    this.announceGroupStatuses();
  }

  // ── the agent side ──

  requireChat(chatId: string): ChatRecord {
    const chat = this.chats.get(chatId);
    if (!chat) throw new Error(`unknown chat ${chatId}`);
    return chat;
  }

  private requireActiveThread(chat: ChatRecord): ThreadRecord {
    const thread = lastThread(chat);
    if (!thread.active) throw new Error(`chat ${chat.id} is inactive`);
    return thread;
  }

  private addAgent(
    chat: ChatRecord,
    thread: ThreadRecord,
    agent: AgentRecord,
    reason: string,
    requesterId: string | undefined,
    origin: Origin,
  ): void {
    delete thread.queuedUs;
    this.reportedQueue.delete(thread.id);
    if (!thread.agentIds.includes(agent.id)) thread.agentIds.push(agent.id);
    if (!thread.userIds.includes(agent.id)) thread.userIds.push(agent.id);
    const user = chat.users.get(agent.id);
    if (user) user.present = true;
    else chat.users.set(agent.id, { type: "agent", present: true });
    this.emit({
      kind: "user_added_to_chat",
      chat,
      thread,
      userId: agent.id,
      reason,
      ...(requesterId === undefined ? {} : { requesterId }),
      origin,
    });
  }

  private removeAgent(
    chat: ChatRecord,
    thread: ThreadRecord,
    agentId: string,
    reason: string,
    requesterId: string | undefined,
    origin: Origin,
  ): void {
    thread.agentIds = thread.agentIds.filter((id) => id !== agentId);
    const user = chat.users.get(agentId);
    if (user) user.present = false;
    this.emit({
      kind: "user_removed_from_chat",
      chat,
      thread,
      userId: agentId,
      reason,
      ...(requesterId === undefined ? {} : { requesterId }),
      origin,
    });
  }

  acceptChat(chatId: string, agentId?: string): void {
    const chat = this.requireChat(chatId);
    const thread = this.requireActiveThread(chat);
    const agent = this.requireAgent(agentId);
    if (agent.status === "offline") throw new Error(`agent ${agent.id} is offline`);
    if (!agent.groups.has(this.groupOf(chat))) throw new Error(`agent ${agent.id} has no access to chat ${chatId}`);
    if (thread.agentIds.includes(agent.id)) throw new Error(`agent ${agent.id} is already in chat ${chatId}`);
    const origin = { clientId: AGENT_APP_CLIENT_ID };
    // LiveChat writes `agent_joined` only when the agent is not the first one in the chat.
    if (thread.agentIds.length > 0) {
      this.postEvent(
        chat,
        thread,
        systemMessage("agent_joined", `${agent.name} joined the chat`, { agent: agent.name }),
        undefined,
        origin,
      );
    }
    this.addAgent(chat, thread, agent, "manual", agent.id, origin);
    this.refreshQueue();
    this.announceGroupStatuses();
  }

  agentEvent(
    chatId: string,
    input: NewEvent,
    options: { agentId?: string; attachToLastThread?: boolean },
  ): StoredEvent {
    const chat = this.requireChat(chatId);
    const thread = lastThread(chat);
    if (!thread.active && options.attachToLastThread !== true) throw new Error(`chat ${chatId} is inactive`);
    const agent = this.requireAgent(options.agentId);
    const origin = { clientId: AGENT_APP_CLIENT_ID };
    if (!chat.users.has(agent.id)) {
      // An agent may write without joining: LiveChat then announces the user with `present: false`.
      chat.users.set(agent.id, { type: "agent", present: false });
      if (!thread.userIds.includes(agent.id)) thread.userIds.push(agent.id);
      this.emit({
        kind: "user_added_to_chat",
        chat,
        thread,
        userId: agent.id,
        reason: "manual",
        requesterId: agent.id,
        origin,
      });
    }
    const event = this.postEvent(chat, thread, input, agent.id, origin);
    this.markSeen(chat, agent.id);
    return event;
  }

  agentTyping(chatId: string, isTyping: boolean, agentId?: string): void {
    const chat = this.requireChat(chatId);
    const thread = this.requireActiveThread(chat);
    const agent = this.requireAgent(agentId);
    this.emit({ kind: "typing", chat, thread, authorId: agent.id, isTyping });
  }

  transferChat(chatId: string, target: { agentId: string } | { groupId: number }, requesterId?: string): void {
    const chat = this.requireChat(chatId);
    const thread = this.requireActiveThread(chat);
    const requester = this.requireAgent(requesterId ?? thread.agentIds[0]);
    const origin = { clientId: AGENT_APP_CLIENT_ID };
    if ("agentId" in target) {
      const agent = this.requireAgent(target.agentId);
      if (thread.agentIds.includes(agent.id)) throw new Error(`agent ${agent.id} is already in chat ${chatId}`);
      this.postEvent(
        chat,
        thread,
        systemMessage("chat_transferred", `${requester.name} transferred the chat to ${agent.name}`, {
          initiator: requester.name,
          targets: agent.name,
        }),
        undefined,
        origin,
      );
      for (const id of [...thread.agentIds]) this.removeAgent(chat, thread, id, "manual", requester.id, origin);
      this.emit({
        kind: "chat_transferred",
        chat,
        thread,
        requesterId: requester.id,
        transferredTo: { agent_ids: [agent.id] },
        origin,
      });
      this.addAgent(chat, thread, agent, "manual", requester.id, origin);
    } else {
      const group = this.groups.get(target.groupId);
      if (!group) throw new Error(`unknown group ${target.groupId}`);
      this.postEvent(
        chat,
        thread,
        systemMessage("chat_transferred", `${requester.name} transferred the chat to ${group.name}`, {
          initiator: requester.name,
          targets: group.name,
        }),
        undefined,
        origin,
      );
      for (const id of [...thread.agentIds]) this.removeAgent(chat, thread, id, "manual", requester.id, origin);
      chat.access = { group_ids: [group.id] };
      thread.access = { group_ids: [group.id] };
      thread.queuedUs = this.clock.nowUs();
      const entry = this.queueEntry(thread);
      if (entry) this.reportedQueue.set(thread.id, { position: entry.position, waitTime: entry.waitTime });
      this.emit({
        kind: "chat_transferred",
        chat,
        thread,
        requesterId: requester.id,
        transferredTo: { group_ids: [group.id] },
        origin,
      });
    }
    this.route();
    this.refreshQueue();
    this.announceGroupStatuses();
  }

  agentLeave(chatId: string, agentId?: string): void {
    const chat = this.requireChat(chatId);
    const thread = this.requireActiveThread(chat);
    const agent = this.requireAgent(agentId ?? thread.agentIds[0]);
    if (!thread.agentIds.includes(agent.id)) throw new Error(`agent ${agent.id} is not in chat ${chatId}`);
    const origin = { clientId: AGENT_APP_CLIENT_ID };
    this.postEvent(
      chat,
      thread,
      systemMessage("agent_left", `${agent.name} left the chat`, { agent: agent.name }),
      undefined,
      origin,
    );
    this.removeAgent(chat, thread, agent.id, "manual", agent.id, origin);
    if (thread.agentIds.length === 0) {
      thread.queuedUs = this.clock.nowUs();
      const entry = this.queueEntry(thread);
      if (entry) this.reportedQueue.set(thread.id, { position: entry.position, waitTime: entry.waitTime });
    }
    this.route();
    this.refreshQueue();
    this.announceGroupStatuses();
  }

  agentDeactivate(chatId: string, agentId?: string): void {
    const chat = this.requireChat(chatId);
    const thread = this.requireActiveThread(chat);
    const agent = this.requireAgent(agentId ?? thread.agentIds[0]);
    this.closeThread(
      chat,
      thread,
      systemMessage("manual_archived_agent", `${agent.name} archived the chat`, { agent: agent.name }),
      agent.id,
      { clientId: AGENT_APP_CLIENT_ID },
    );
  }

  routerDeactivate(chatId: string, reason: "inactive" | "offline"): void {
    const chat = this.requireChat(chatId);
    const thread = this.requireActiveThread(chat);
    const message =
      reason === "inactive"
        ? systemMessage("routing.archived_inactive", "Chat archived due to 30 minutes of inactivity", {
            duration: "30",
          })
        : systemMessage("routing.archived_offline", "Chat archived due to no available agents", {});
    // No user_id: the router closed it.
    this.closeThread(chat, thread, message, undefined, {});
  }

  banCustomer(entityId: string): void {
    const customer = this.customers.get(entityId);
    if (!customer) throw new Error(`unknown customer ${entityId}`);
    customer.banned = true;
    const agent = this.requireAgent();
    for (const chat of this.chatsOf(entityId)) {
      const thread = lastThread(chat);
      if (!thread.active) continue;
      this.closeThread(
        chat,
        thread,
        systemMessage("customer_banned", `Chat archived because customer was banned by ${agent.name} for 1 day(s)`, {
          agent: agent.name,
          duration: "1",
        }),
        agent.id,
        { clientId: AGENT_APP_CLIENT_ID },
      );
    }
    this.emit({ kind: "customer_banned", customer });
  }

  // ── queue and routing ──

  private queuedThreads(groupId: number): ThreadRecord[] {
    const threads: ThreadRecord[] = [];
    for (const chat of this.chats.values()) {
      const thread = lastThread(chat);
      if (thread.active && thread.queuedUs !== undefined && this.groupOf(chat) === groupId) threads.push(thread);
    }
    return threads.sort((a, b) => (a.queuedUs ?? 0) - (b.queuedUs ?? 0));
  }

  queueEntry(thread: ThreadRecord): QueueEntry | undefined {
    const chat = this.chats.get(thread.chatId);
    if (!chat || thread.queuedUs === undefined) return undefined;
    const groupId = this.groupOf(chat);
    const index = this.queuedThreads(groupId).findIndex((t) => t.id === thread.id);
    if (index < 0) return undefined;
    const position = index + 1;
    return {
      chatId: chat.id,
      threadId: thread.id,
      groupId,
      position,
      waitTime: position * this.settings.queueWaitSecondsPerPosition,
    };
  }

  queue(groupId?: number): QueueEntry[] {
    const groups = groupId === undefined ? [...this.groups.keys()] : [groupId];
    return groups.flatMap((g) =>
      this.queuedThreads(g)
        .map((thread) => this.queueEntry(thread))
        .filter((entry): entry is QueueEntry => entry !== undefined),
    );
  }

  /** Tells every queued chat whose position or wait changed (`queue_position_updated` is RTM only). */
  private refreshQueue(): void {
    for (const entry of this.queue()) {
      const reported = this.reportedQueue.get(entry.threadId);
      if (reported && reported.position === entry.position && reported.waitTime === entry.waitTime) continue;
      this.reportedQueue.set(entry.threadId, { position: entry.position, waitTime: entry.waitTime });
      const chat = this.chats.get(entry.chatId);
      const thread = chat ? lastThread(chat) : undefined;
      if (chat && thread) {
        this.emit({ kind: "queue_position_updated", chat, thread, position: entry.position, waitTime: entry.waitTime });
      }
    }
  }

  /** Auto routing: the head of each group's queue goes to the accepting agent of the group with the fewest chats. */
  private route(): void {
    if (this.settings.routing !== "auto") return;
    for (const groupId of this.groups.keys()) {
      for (const thread of this.queuedThreads(groupId)) {
        const candidates = this.agentsOfGroup(groupId)
          .filter((agent) => agent.status === "accepting_chats" && this.activeChatsOf(agent.id) < agent.maxChats)
          .sort((a, b) => this.activeChatsOf(a.id) - this.activeChatsOf(b.id));
        const agent = candidates[0];
        if (!agent) break;
        const chat = this.chats.get(thread.chatId);
        if (chat) this.addAgent(chat, thread, agent, "assigned", undefined, {});
      }
    }
  }

  // ── views ──

  customerEventView(event: StoredEvent): LcEvent {
    return {
      id: event.id,
      ...(event.customId === undefined ? {} : { custom_id: event.customId }),
      created_at: formatUs(event.createdUs),
      type: event.type,
      ...(event.authorId === undefined ? {} : { author_id: event.authorId }),
      ...event.body,
      recipients: event.visibility,
      ...(event.properties === undefined ? {} : { properties: event.properties }),
    };
  }

  agentEventView(event: StoredEvent): LcAgentEvent {
    return {
      id: event.id,
      ...(event.customId === undefined ? {} : { custom_id: event.customId }),
      created_at: formatUs(event.createdUs),
      visibility: event.visibility,
      type: event.type,
      ...(event.authorId === undefined ? {} : { author_id: event.authorId }),
      ...event.body,
      ...(event.properties === undefined ? {} : { properties: event.properties }),
    };
  }

  threadView(chat: ChatRecord, thread: ThreadRecord, audience: "customer"): LcThread;
  threadView(
    chat: ChatRecord,
    thread: ThreadRecord,
    audience: "agent",
  ): Omit<LcThread, "events"> & { events: LcAgentEvent[] };
  threadView(chat: ChatRecord, thread: ThreadRecord, audience: "customer" | "agent"): unknown {
    const index = chat.threads.indexOf(thread);
    const previous = chat.threads[index - 1];
    const next = chat.threads[index + 1];
    const entry = this.queueEntry(thread);
    const events =
      audience === "customer"
        ? thread.events.filter((e) => e.visibility === "all").map((e) => this.customerEventView(e))
        : thread.events.map((e) => this.agentEventView(e));
    return {
      id: thread.id,
      created_at: formatUs(thread.createdUs),
      active: thread.active,
      user_ids: [...thread.userIds],
      events,
      properties: structuredClone(thread.properties),
      access: { group_ids: [...thread.access.group_ids] },
      ...(entry && thread.queuedUs !== undefined
        ? { queue: { position: entry.position, wait_time: entry.waitTime, queued_at: formatUs(thread.queuedUs) } }
        : {}),
      ...(previous ? { previous_thread_id: previous.id } : {}),
      ...(next ? { next_thread_id: next.id } : {}),
    };
  }

  userView(chat: ChatRecord, userId: string): LcUser {
    const user = chat.users.get(userId);
    const seen = user?.seenUpToUs === undefined ? {} : { events_seen_up_to: formatUs(user.seenUpToUs) };
    const agent = this.agents.get(userId);
    if (user?.type === "agent" && agent) {
      return {
        id: agent.id,
        type: "agent",
        name: agent.name,
        avatar: agent.avatar,
        ...(agent.jobTitle === undefined ? {} : { job_title: agent.jobTitle }),
        present: user.present,
        ...seen,
      };
    }
    const customer = this.customers.get(userId);
    return {
      id: userId,
      type: "customer",
      ...(customer ? this.customerFields(customer) : {}),
      present: this.customerOnline(userId),
      ...seen,
    };
  }

  customerFields(customer: CustomerRecord): Record<string, unknown> {
    return {
      ...(customer.name === undefined ? {} : { name: customer.name }),
      ...(customer.email === undefined ? {} : { email: customer.email, email_verified: false }),
      ...(customer.avatar === undefined ? {} : { avatar: customer.avatar }),
      ...(customer.sessionFields.length === 0 ? {} : { session_fields: structuredClone(customer.sessionFields) }),
    };
  }

  usersView(chat: ChatRecord): LcUser[] {
    return [...chat.users.keys()].map((id) => this.userView(chat, id));
  }

  chatView(
    chat: ChatRecord,
    thread: ThreadRecord,
  ): {
    id: string;
    thread: LcThread;
    users: LcUser[];
    access: { group_ids: number[] };
    properties: Record<string, Record<string, unknown>>;
  } {
    return {
      id: chat.id,
      thread: this.threadView(chat, thread, "customer"),
      users: this.usersView(chat),
      access: { group_ids: [...chat.access.group_ids] },
      properties: structuredClone(chat.properties),
    };
  }
}

export function lastThread(chat: ChatRecord): ThreadRecord {
  const thread = chat.threads.at(-1);
  if (!thread) throw new Error(`chat ${chat.id} has no thread`);
  return thread;
}

export function systemMessage(type: string, text: string, textVars: Record<string, string>): NewEvent {
  return { type: "system_message", body: { text, system_message_type: type, text_vars: textVars } };
}
