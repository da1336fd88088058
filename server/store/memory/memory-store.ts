import type { ConversationState, OpenConversationState, StoredMessage } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import { GatewayError } from "../../core/errors.js";
import type {
  AppendOptions,
  AppendResult,
  ConnectorEntry,
  ConversationStore,
  InitKeys,
  InitResult,
  ListedConversation,
  ListPosition,
  MessageDraft,
  OpenConversationPage,
  OpenConversationQuery,
  OutboxItem,
  OutboxLane,
  OutboxRequest,
} from "../../core/store.js";
import { activityMs, connectorOrderingKey } from "../../core/store.js";
import { byRecency, RecencyIndex, type RecencyEntry } from "./recency-index.js";

interface Row {
  conversation: Conversation;
  messages: StoredMessage[];
  /** message id → seq (for idempotent resends). */
  ids: Map<string, number>;
  /** Flags that are set (absent = false). */
  flags: Set<string>;
  outbox: Record<OutboxLane, OutboxItem[]>;
}

const channelRefKey = (channel: string, refId: string): string => `${channel}\u0000${refId}`;
const deskRefKey = (desk: string, key: string, value: string): string => `${desk}\u0000${key}\u0000${value}`;
const botRefKey = deskRefKey;

/**
 * The embedded store: one process, no persistence. Every method runs to completion without yielding, which makes
 * each one atomic. Conversation records are immutable (each change makes a new, frozen one), so they are returned
 * without copying; messages are shared the same way and must not be mutated.
 */
export class MemoryStore implements ConversationStore {
  private readonly rows = new Map<string, Row>();
  private readonly byRequestId = new Map<string, string>();
  private readonly openByChannelRef = new Map<string, string>();
  private readonly latestByChannelRef = new Map<string, string>();
  private readonly connectorQueues = new Map<string, Map<string, ConnectorEntry>>();
  private readonly byDeskRef = new Map<string, string>();
  private readonly byBotRef = new Map<string, string>();
  /** Campaign entry ids already queued, with when: a retried POST stays deduped after delivery. */
  private readonly campaignIds = new Map<string, string>();
  private readonly leases = new Map<string, { owner: string; until: number }>();
  private readonly deskCursors = new Map<string, string>();
  /**
   * Open conversations by last activity (epoch ms), one index per state: `findIdle` reads them oldest first, the
   * queue's pages newest first. Each time recorded is at least the one recorded before it (a message stamped a
   * moment before a concurrent send that was appended first counts as of that send), which keeps each touch at the
   * end of its index.
   */
  private readonly recency: Record<OpenConversationState, RecencyIndex> = {
    bot: new RecencyIndex(),
    queued: new RecencyIndex(),
    active: new RecencyIndex(),
  };
  private lastActivityMs = 0;
  private closed = false;

  init(
    conversation: Conversation,
    keys: InitKeys,
    firstMessages: readonly MessageDraft[],
    options?: { connectorChannel?: string; openDesk?: boolean; deskNote?: string },
  ): Promise<InitResult> {
    this.assertOpen();
    const byRequest = this.rows.get(this.byRequestId.get(keys.requestId) ?? "");
    if (byRequest) {
      return Promise.resolve({
        conversation: byRequest.conversation,
        created: false,
        matchedBy: "requestId",
      });
    }
    const byRef = keys.channelRef
      ? this.rows.get(this.openByChannelRef.get(channelRefKey(keys.channelRef.channel, keys.channelRef.refId)) ?? "")
      : undefined;
    if (byRef) {
      return Promise.resolve({
        conversation: byRef.conversation,
        created: false,
        matchedBy: "channelRef",
      });
    }

    const row: Row = {
      conversation: frozen(structuredClone(conversation)),
      messages: [],
      ids: new Map(),
      flags: new Set(),
      outbox: { desk: [], channel: [], bot: [] },
    };
    this.rows.set(conversation.id, row);
    this.byRequestId.set(keys.requestId, conversation.id);
    if (keys.channelRef) {
      this.openByChannelRef.set(channelRefKey(keys.channelRef.channel, keys.channelRef.refId), conversation.id);
      this.latestByChannelRef.set(channelRefKey(keys.channelRef.channel, keys.channelRef.refId), conversation.id);
    }
    for (const draft of firstMessages) this.push(row, draft, options?.connectorChannel);
    const state = row.conversation.state;
    const lastMs = activityMs(firstMessages.at(-1)?.timestamp ?? conversation.createdAt);
    if (state !== "ended") this.touch(state, conversation.id, lastMs);
    if (options?.openDesk) row.outbox.desk.push({ id: "open", kind: "open", attempts: 0, notBefore: 0 });
    if (options?.deskNote !== undefined) {
      row.outbox.desk.push({ id: "note", kind: "note", text: options.deskNote, attempts: 0, notBefore: 0 });
    }
    return Promise.resolve({ conversation: row.conversation, created: true });
  }

  get(id: string): Promise<Conversation | undefined> {
    this.assertOpen();
    const row = this.rows.get(id);
    return Promise.resolve(row?.conversation);
  }

  findLatestByChannelRef(channel: string, refId: string): Promise<Conversation | undefined> {
    const key = channelRefKey(channel, refId);
    return this.get(this.openByChannelRef.get(key) ?? this.latestByChannelRef.get(key) ?? "");
  }

  findOpenByChannelRef(channel: string, refId: string): Promise<Conversation | undefined> {
    const id = this.openByChannelRef.get(channelRefKey(channel, refId));
    return this.get(id ?? "");
  }

  append(conversationId: string, draft: MessageDraft, options: AppendOptions = {}): Promise<AppendResult> {
    this.assertOpen();
    const row = this.rows.get(conversationId);
    if (!row) return Promise.resolve({ status: "not_found" });
    const conversation = row.conversation;

    if (options.dedupe) {
      const seen = row.ids.get(options.dedupe.id);
      if (seen !== undefined) {
        return Promise.resolve({ status: "duplicate", message: row.messages[seen - 1] as StoredMessage });
      }
    }
    if (options.requireOpen && conversation.state === "ended") {
      return Promise.resolve({ status: "ended", conversation });
    }
    if (options.flag !== undefined && row.flags.has(options.flag.key) === options.flag.value) {
      return Promise.resolve({ status: "skipped", conversation });
    }
    const transition = options.transition;
    const transitionApplies = transition !== undefined && transition.from.includes(conversation.state);
    if (transition?.required && !transitionApplies) {
      const status = conversation.state === "ended" ? "ended" : "skipped";
      return Promise.resolve({ status, conversation });
    }
    if (
      options.idleBeforeMs !== undefined &&
      !((this.lastActivity(conversation.state, conversationId) ?? Infinity) < options.idleBeforeMs)
    ) {
      return Promise.resolve({ status: "skipped", conversation });
    }

    if (options.flag?.value === true) row.flags.add(options.flag.key);
    if (options.flag?.value === false) row.flags.delete(options.flag.key);
    const prefix = transition?.unlessFlagPrefix;
    const blocked = prefix !== undefined && [...row.flags].some((flag) => flag.startsWith(prefix));
    const transitioned = transition !== undefined && transitionApplies && !blocked;
    if (transition && transitioned) {
      row.conversation = frozen({ ...conversation, ...(transition.patch ?? {}), state: transition.to });
      if (transition.to === "ended" && conversation.refId !== undefined) {
        const key = channelRefKey(conversation.channel, conversation.refId);
        if (this.openByChannelRef.get(key) === conversation.id) this.openByChannelRef.delete(key);
      }
    }
    const message = this.push(row, draft, options.connectorChannel);
    const state = row.conversation.state;
    if (state !== conversation.state && conversation.state !== "ended") {
      this.recency[conversation.state].delete(conversationId);
    }
    if (state !== "ended") this.touch(state, conversationId, activityMs(message.timestamp));
    for (const request of options.outbox ?? []) queueWork(row, request, message.seq);
    // A bot's reply is recorded under a `bot → bot` "transition" that only checks the state: no change to report.
    const changed = transitioned && !(conversation.state === "bot" && state === "bot");
    return Promise.resolve({
      status: "appended",
      message,
      conversation: row.conversation,
      ...(changed ? { previousState: conversation.state } : {}),
    });
  }

  headSeq(conversationId: string): Promise<number> {
    this.assertOpen();
    return Promise.resolve(this.rows.get(conversationId)?.messages.length ?? 0);
  }

  read(conversationId: string, afterSeq: number, limit = Number.MAX_SAFE_INTEGER): Promise<StoredMessage[]> {
    this.assertOpen();
    const row = this.rows.get(conversationId);
    if (!row) return Promise.resolve([]);
    const start = Math.max(0, Math.floor(afterSeq));
    return Promise.resolve(row.messages.slice(start, start + limit));
  }

  findMessage(conversationId: string, messageId: string): Promise<StoredMessage | undefined> {
    this.assertOpen();
    const row = this.rows.get(conversationId);
    const seen = row?.ids.get(messageId);
    return Promise.resolve(seen !== undefined && row ? row.messages[seen - 1] : undefined);
  }

  enqueueConnector(channel: string, entry: ConnectorEntry): Promise<{ entry: ConnectorEntry; created: boolean }> {
    this.assertOpen();
    const queue = this.queue(channel);
    const existing = queue.get(entry.id);
    if (existing) return Promise.resolve({ entry: existing, created: false });
    const key = `${channel}\u0000${entry.id}`;
    if (this.campaignIds.has(key)) return Promise.resolve({ entry, created: false });
    this.campaignIds.set(key, entry.enqueuedAt);
    queue.set(entry.id, entry);
    return Promise.resolve({ entry, created: true });
  }

  pendingConnector(channel: string, limit: number): Promise<ConnectorEntry[]> {
    this.assertOpen();
    const entries: ConnectorEntry[] = [];
    const seen = new Set<string>();
    for (const entry of this.connectorQueues.get(channel)?.values() ?? []) {
      if (entries.length >= limit) break;
      const key = connectorOrderingKey(entry);
      if (seen.has(key)) continue;
      seen.add(key);
      entries.push(entry);
    }
    return Promise.resolve(entries);
  }

  ackConnector(channel: string, entryId: string): Promise<void> {
    this.assertOpen();
    this.connectorQueues.get(channel)?.delete(entryId);
    return Promise.resolve();
  }

  connectorChannelsWithPending(): Promise<string[]> {
    this.assertOpen();
    return Promise.resolve([...this.connectorQueues].filter(([, queue]) => queue.size > 0).map(([channel]) => channel));
  }

  bindDesk(conversationId: string, ids: Record<string, string>, openedAt?: string): Promise<Conversation | undefined> {
    this.assertOpen();
    const row = this.rows.get(conversationId);
    if (!row) return Promise.resolve(undefined);
    const binding = row.conversation.desk;
    row.conversation = frozen({
      ...row.conversation,
      desk: { ...binding, ids: { ...binding.ids, ...ids }, ...(openedAt === undefined ? {} : { openedAt }) },
    });
    for (const [key, value] of Object.entries(ids))
      this.byDeskRef.set(deskRefKey(binding.desk, key, value), conversationId);
    return Promise.resolve(row.conversation);
  }

  findByDeskRef(desk: string, key: string, value: string): Promise<Conversation | undefined> {
    return this.get(this.byDeskRef.get(deskRefKey(desk, key, value)) ?? "");
  }

  bindBot(
    conversationId: string,
    key: string,
    value: string,
  ): Promise<{ status: "bound"; conversation: Conversation } | { status: "taken" | "not_found" }> {
    this.assertOpen();
    const row = this.rows.get(conversationId);
    const binding = row?.conversation.bot;
    if (!row || !binding) return Promise.resolve({ status: "not_found" });
    const ref = botRefKey(binding.bot, key, value);
    const holder = this.byBotRef.get(ref);
    if (holder !== undefined && holder !== conversationId) return Promise.resolve({ status: "taken" });
    this.byBotRef.set(ref, conversationId);
    row.conversation = frozen({ ...row.conversation, bot: { ...binding, ids: { ...binding.ids, [key]: value } } });
    return Promise.resolve({ status: "bound", conversation: row.conversation });
  }

  findByBotRef(bot: string, key: string, value: string): Promise<Conversation | undefined> {
    return this.get(this.byBotRef.get(botRefKey(bot, key, value)) ?? "");
  }

  queueTyping(
    conversationId: string,
    typing: { id: string; state: "start" | "stop"; queuedAt: number },
  ): Promise<boolean> {
    this.assertOpen();
    const row = this.rows.get(conversationId);
    if (!row || row.conversation.state === "ended") return Promise.resolve(false);
    const lane = row.outbox.desk;
    const tail = lane.at(-1);
    if (lane.length > 1 && tail?.kind === "typing") {
      tail.state = typing.state;
      tail.queuedAt = typing.queuedAt;
    } else {
      lane.push({
        id: typing.id,
        kind: "typing",
        state: typing.state,
        queuedAt: typing.queuedAt,
        attempts: 0,
        notBefore: 0,
      });
    }
    return Promise.resolve(true);
  }

  outboxHead(conversationId: string, lane: OutboxLane): Promise<OutboxItem | undefined> {
    this.assertOpen();
    const head = this.rows.get(conversationId)?.outbox[lane][0];
    return Promise.resolve(head ? { ...head } : undefined);
  }

  outboxComplete(conversationId: string, lane: OutboxLane, itemId: string): Promise<void> {
    this.assertOpen();
    const outbox = this.rows.get(conversationId)?.outbox[lane];
    if (outbox?.[0]?.id === itemId) outbox.shift();
    return Promise.resolve();
  }

  outboxDefer(
    conversationId: string,
    lane: OutboxLane,
    itemId: string,
    update: { attempts: number; notBefore: number; lastError: string; lastAttemptAt: number },
  ): Promise<void> {
    this.assertOpen();
    const head = this.rows.get(conversationId)?.outbox[lane][0];
    if (head?.id === itemId) Object.assign(head, update);
    return Promise.resolve();
  }

  outboxDue(lane: OutboxLane, now: number, limit: number): Promise<string[]> {
    this.assertOpen();
    const due: { id: string; notBefore: number }[] = [];
    for (const [id, row] of this.rows) {
      const head = row.outbox[lane][0];
      if (head && head.notBefore <= now) due.push({ id, notBefore: head.notBefore });
    }
    return Promise.resolve(
      due
        .sort((a, b) => a.notBefore - b.notBefore)
        .slice(0, limit)
        .map((entry) => entry.id),
    );
  }

  acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const lease = this.leases.get(key);
    if (lease && lease.owner !== owner && lease.until > now) return Promise.resolve(false);
    this.leases.set(key, { owner, until: now + ttlMs });
    return Promise.resolve(true);
  }

  releaseLease(key: string, owner: string): Promise<void> {
    if (this.leases.get(key)?.owner === owner) this.leases.delete(key);
    return Promise.resolve();
  }

  deskCursor(conversationId: string): Promise<string | undefined> {
    this.assertOpen();
    return Promise.resolve(this.deskCursors.get(conversationId));
  }

  setDeskCursor(conversationId: string, cursor: string): Promise<void> {
    this.assertOpen();
    this.deskCursors.set(conversationId, cursor);
    return Promise.resolve();
  }

  findIdle(cutoff: Date, limit: number): Promise<string[]> {
    this.assertOpen();
    const before = cutoff.getTime();
    // The oldest `limit` of each state, merged: the oldest `limit` of all.
    const idle: RecencyEntry[] = [];
    for (const index of Object.values(this.recency)) {
      let taken = 0;
      for (const entry of index.oldest()) {
        if (entry.ms >= before || taken >= limit) break;
        idle.push(entry);
        taken += 1;
      }
    }
    idle.sort(byRecency);
    return Promise.resolve(idle.slice(0, limit).map((entry) => entry.id));
  }

  listOpen(query: OpenConversationQuery): Promise<OpenConversationPage> {
    this.assertOpen();
    // Each state's newest `scan + 1` after the start, merged: a page looks at `scan` at most, and one more tells
    // whether anything follows.
    const candidates: RecencyEntry[] = [];
    for (const state of new Set(query.states)) {
      let taken = 0;
      for (const entry of this.recency[state].newest(query.after)) {
        if (taken > query.scan) break;
        candidates.push(entry);
        taken += 1;
      }
    }
    candidates.sort((a, b) => byRecency(b, a));
    const conversations: ListedConversation[] = [];
    let examined = 0;
    let last: ListPosition | undefined;
    for (const entry of candidates) {
      if (conversations.length >= query.limit || examined >= query.scan) {
        return Promise.resolve(last === undefined ? { conversations } : { conversations, next: last });
      }
      examined += 1;
      last = { ms: entry.ms, id: entry.id };
      const row = this.rows.get(entry.id);
      if (!row) continue;
      const { conversation } = row;
      if (query.channel !== undefined && conversation.channel !== query.channel) continue;
      if (query.subject !== undefined && conversation.subject !== query.subject) continue;
      conversations.push({ conversation, lastActivityMs: entry.ms, lastSeq: row.messages.length });
    }
    return Promise.resolve({ conversations });
  }

  countByState(): Promise<Record<ConversationState, number>> {
    const counts: Record<ConversationState, number> = { bot: 0, queued: 0, active: 0, ended: 0 };
    for (const row of this.rows.values()) counts[row.conversation.state] += 1;
    return Promise.resolve(counts);
  }

  sweepEnded(cutoff: Date): Promise<number> {
    let removed = 0;
    const limit = cutoff.toISOString();
    for (const [key, at] of this.campaignIds) if (at < limit) this.campaignIds.delete(key);
    for (const [id, row] of this.rows) {
      const endedAt = row.conversation.endedAt;
      if (row.conversation.state !== "ended" || endedAt === undefined || endedAt >= limit) continue;
      this.rows.delete(id);
      this.deskCursors.delete(id);
      for (const index of Object.values(this.recency)) index.delete(id);
      for (const queue of this.connectorQueues.values()) {
        for (const [entryId, entry] of queue) if (entry.message.conversationId === id) queue.delete(entryId);
      }
      for (const [key, value] of Object.entries(row.conversation.desk.ids)) {
        const ref = deskRefKey(row.conversation.desk.desk, key, value);
        if (this.byDeskRef.get(ref) === id) this.byDeskRef.delete(ref);
      }
      const bot = row.conversation.bot;
      for (const [key, value] of Object.entries(bot?.ids ?? {})) {
        const ref = botRefKey(bot?.bot ?? "", key, value);
        if (this.byBotRef.get(ref) === id) this.byBotRef.delete(ref);
      }
      if (this.byRequestId.get(row.conversation.requestId) === id) this.byRequestId.delete(row.conversation.requestId);
      removed += 1;
    }
    return Promise.resolve(removed);
  }

  ping(): Promise<void> {
    return this.closed ? Promise.reject(new GatewayError("unavailable", "The store is closed.")) : Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /**
   * The draft itself becomes the stored message (given its `seq` in place): no copy per message, and a draft made
   * with a `seq` placeholder keeps its shape, so every message of a kind shares one hidden class.
   */
  private push(row: Row, draft: MessageDraft, connectorChannel?: string): StoredMessage {
    const message = draft as StoredMessage;
    message.seq = row.messages.length + 1;
    row.messages.push(message);
    row.ids.set(message.id, message.seq);
    if (connectorChannel !== undefined) {
      const entry = { id: `${row.conversation.id}:${message.seq}`, message, enqueuedAt: message.timestamp };
      this.queue(connectorChannel).set(entry.id, entry);
    }
    return message;
  }

  private touch(state: OpenConversationState, conversationId: string, ms: number): void {
    this.lastActivityMs = Math.max(this.lastActivityMs, ms);
    this.recency[state].set(conversationId, this.lastActivityMs);
  }

  private lastActivity(state: ConversationState, conversationId: string): number | undefined {
    return state === "ended" ? undefined : this.recency[state].get(conversationId);
  }

  private queue(channel: string): Map<string, ConnectorEntry> {
    let queue = this.connectorQueues.get(channel);
    if (!queue) {
      queue = new Map();
      this.connectorQueues.set(channel, queue);
    }
    return queue;
  }

  private assertOpen(): void {
    if (this.closed) throw new GatewayError("unavailable", "The store is closed.");
  }
}

/** Queues one outbox request of an append (see `OutboxRequest`), after its message got `seq`. */
function queueWork(row: Row, request: OutboxRequest, seq: number): void {
  const lane = row.outbox[request.lane];
  const fresh = { attempts: 0, notBefore: 0 };
  switch (request.kind) {
    case "message":
      if (request.states === undefined || request.states.includes(row.conversation.state)) {
        lane.push({ id: `m:${seq}`, kind: "message", seq, ...fresh });
      }
      return;
    case "note":
      lane.push({ id: `n:${seq}`, kind: "note", seq, text: request.text, ...fresh });
      return;
    case "close":
      if (!lane.some((item) => item.kind === "close")) {
        lane.push({ id: "close", kind: "close", reason: request.reason, ...fresh });
      }
      return;
    case "open":
      lane.push({ id: `o:${seq}`, kind: "open", ...fresh });
      return;
    case "event":
      lane.push({ id: `e:${seq}`, kind: "event", seq, name: request.name, ...fresh });
      return;
    case "digest": {
      const first = row.outbox[request.from].find((item) => item.kind === "message" && item.id !== request.except);
      lane.push({ id: `d:${seq}`, kind: "digest", seq, upTo: first?.seq ?? seq, ...fresh });
      return;
    }
    case "move": {
      if (request.from === request.lane) return;
      const from = row.outbox[request.from];
      for (const item of from) {
        if (item.id !== request.except && item.kind === "message") {
          lane.push({ id: item.id, kind: "message", seq: item.seq ?? 0, ...fresh });
        }
      }
      keepOnly(from, request.except);
      return;
    }
    case "clear":
      keepOnly(lane, request.except);
      return;
  }
}

/** Empties a lane in place but for the item `except` (the one its worker may be delivering). */
function keepOnly(lane: OutboxItem[], except: string | undefined): void {
  const kept = lane.filter((item) => item.id === except);
  lane.splice(0, lane.length, ...kept);
}

/** Freezes a conversation record and the objects inside it that a change replaces rather than edits. */
function frozen(conversation: Conversation): Conversation {
  Object.freeze(conversation.customer);
  Object.freeze(conversation.desk.ids);
  Object.freeze(conversation.desk);
  if (conversation.bot) {
    Object.freeze(conversation.bot.ids);
    Object.freeze(conversation.bot);
  }
  if (conversation.agent) Object.freeze(conversation.agent);
  return Object.freeze(conversation);
}
