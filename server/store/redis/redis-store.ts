import { Redis } from "ioredis";
import { openConversationStates, type ConversationState, type StoredMessage } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import { GatewayError } from "../../core/errors.js";
import {
  activityMs,
  connectorOrderingKey,
  type AppendOptions,
  type AppendResult,
  type ConnectorEntry,
  type ConversationStore,
  type InitKeys,
  type InitResult,
  type ListedConversation,
  type MessageDraft,
  type OpenConversationPage,
  type OpenConversationQuery,
  type OutboxItem,
  type OutboxLane,
} from "../../core/store.js";
import {
  APPEND,
  BIND_BOT,
  BIND_DESK,
  CONNECTOR_ACK,
  CONNECTOR_ENQUEUE,
  CONNECTOR_HEADS,
  INIT,
  LEASE_ACQUIRE,
  LEASE_RELEASE,
  LIST_OPEN,
  MIGRATE_OPEN_INDEX,
  OUTBOX_UPDATE,
  QUEUE_TYPING,
  SWEEP,
} from "./scripts.js";

export interface RedisStoreOptions {
  url: string;
  /** Prefix of every key (several deployments can share one Redis). */
  prefix: string;
  /** How long campaign message ids are remembered for dedupe. */
  campaignRetentionMs: number;
  /** Called with connection events, for logs. */
  onEvent?: (event: "connect" | "ready" | "error" | "reconnecting" | "end", detail?: unknown) => void;
}

type Scripts = Record<
  | "init"
  | "append"
  | "bindDesk"
  | "bindBot"
  | "outboxUpdate"
  | "queueTyping"
  | "connectorHeads"
  | "connectorAck"
  | "connectorEnqueue"
  | "sweep"
  | "leaseAcquire"
  | "leaseRelease"
  | "listOpen"
  | "migrateOpenIndex",
  string
>;

const SCRIPTS: Scripts = {
  init: INIT,
  append: APPEND,
  bindDesk: BIND_DESK,
  bindBot: BIND_BOT,
  outboxUpdate: OUTBOX_UPDATE,
  queueTyping: QUEUE_TYPING,
  connectorHeads: CONNECTOR_HEADS,
  connectorAck: CONNECTOR_ACK,
  connectorEnqueue: CONNECTOR_ENQUEUE,
  sweep: SWEEP,
  leaseAcquire: LEASE_ACQUIRE,
  leaseRelease: LEASE_RELEASE,
  listOpen: LIST_OPEN,
  migrateOpenIndex: MIGRATE_OPEN_INDEX,
};

const channelRef = (channel: string, refId: string): string => `${channel}\u0000${refId}`;

/** Appends sent to Redis in one script call at most (a call blocks Redis while it runs, so a batch is bounded). */
const MAX_APPENDS_PER_CALL = 128;

interface QueuedAppend {
  /** Conversation id, draft JSON, options JSON: the script's three arguments for this append. */
  args: [string, string, string];
  resolve: (raw: string) => void;
  reject: (error: unknown) => void;
}

/**
 * The store on Redis, for several nodes: every multi-key step is one Lua script (atomic for all nodes); the log is
 * a list per conversation (seq = position), outboxes are lists with a due-time index per lane, connector queues a
 * list per ordering key with a sorted set of heads, open conversations a sorted set per state by last message time
 * (`st:<state>`, kept by the init and append scripts). Commands issued while Redis is unreachable wait in ioredis's
 * offline queue and are retried on reconnect; a call that still fails is `unavailable` to the caller.
 */
export class RedisStore implements ConversationStore {
  readonly redis: Redis;
  private readonly prefix: string;
  /** Appends asked for in this event-loop turn, sent together when it ends (`flushAppends`). */
  private appendQueue: QueuedAppend[] = [];
  /** Set once this process has moved the index of open conversations kept before the state sets into them. */
  private migrated: Promise<void> | undefined;

  constructor(private readonly options: RedisStoreOptions) {
    this.prefix = options.prefix;
    this.redis = new Redis(options.url, {
      lazyConnect: false,
      // Commands issued in the same tick (every send of a busy node appends) go out as one pipeline.
      enableAutoPipelining: true,
      maxRetriesPerRequest: 3,
      enableReadyCheck: true,
      retryStrategy: (times) => Math.min(2_000, 50 * 2 ** Math.min(times, 6)),
      // Appends are already batched per turn (below) and go out at once: through the auto-pipeline they would wait
      // for another turn of the event loop.
      autoPipeliningIgnoredCommands: ["append"],
      reconnectOnError: (error) => error.message.startsWith("READONLY"),
    });
    for (const event of ["connect", "ready", "error", "reconnecting", "end"] as const) {
      this.redis.on(event, (detail: unknown) => options.onEvent?.(event, detail));
    }
    for (const [name, lua] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { numberOfKeys: 1, lua });
  }

  async init(
    conversation: Conversation,
    keys: InitKeys,
    firstMessages: readonly MessageDraft[],
    options: { connectorChannel?: string; openDesk?: boolean; deskNote?: string } = {},
  ): Promise<InitResult> {
    const args: string[] = [
      JSON.stringify(conversation),
      JSON.stringify({
        requestId: keys.requestId,
        ...(keys.channelRef ? { channelRef: channelRef(keys.channelRef.channel, keys.channelRef.refId) } : {}),
        activityMs: activityMs(firstMessages.at(-1)?.timestamp ?? conversation.createdAt),
        ...options,
      }),
    ];
    for (const draft of firstMessages)
      args.push(JSON.stringify(draft), JSON.stringify({ id: draft.id, timestamp: draft.timestamp }));
    const raw = await this.script<string>("init", ...args);
    const result = JSON.parse(raw) as InitResult;
    // As in the memory store, the drafts become the stored messages of a created conversation.
    if (result.created) firstMessages.forEach((draft, index) => ((draft as StoredMessage).seq = index + 1));
    return result;
  }

  async get(id: string): Promise<Conversation | undefined> {
    const raw = await this.run(() => this.redis.get(this.key(`c:${id}`)));
    return raw === null ? undefined : (JSON.parse(raw) as Conversation);
  }

  async findOpenByChannelRef(channel: string, refId: string): Promise<Conversation | undefined> {
    const id = await this.run(() => this.redis.get(this.key(`open:${channelRef(channel, refId)}`)));
    return id === null ? undefined : this.get(id);
  }

  async findLatestByChannelRef(channel: string, refId: string): Promise<Conversation | undefined> {
    return (
      (await this.findOpenByChannelRef(channel, refId)) ??
      this.getById(await this.run(() => this.redis.get(this.key(`latest:${channelRef(channel, refId)}`))))
    );
  }

  async append(conversationId: string, draft: MessageDraft, options: AppendOptions = {}): Promise<AppendResult> {
    const transition = options.transition && {
      from: options.transition.from,
      to: options.transition.to,
      required: options.transition.required ?? false,
      ...(options.transition.unlessFlagPrefix === undefined
        ? {}
        : { unlessFlagPrefix: options.transition.unlessFlagPrefix }),
      // JSON has no undefined: a patch field set to undefined means "remove it".
      set: Object.fromEntries(
        Object.entries(options.transition.patch ?? {}).filter(([, value]) => value !== undefined),
      ),
      unset: Object.entries(options.transition.patch ?? {})
        .filter(([, value]) => value === undefined)
        .map(([key]) => key),
    };
    const endedAt = options.transition?.patch?.endedAt;
    const args = {
      ...options,
      ...(options.outbox?.some((request) => request.kind === "message" && request.states !== undefined)
        ? { readsState: true }
        : {}),
      transition,
      messageId: draft.id,
      timestamp: draft.timestamp,
      activityMs: activityMs(draft.timestamp),
      ...(endedAt === undefined ? {} : { endedAtMs: Date.parse(endedAt) }),
    };
    const raw = await this.queueAppend([conversationId, JSON.stringify(draft), JSON.stringify(args)]);
    const result = JSON.parse(raw) as
      AppendResult | { status: "appended"; seq: number } | { status: "error"; message: string };
    if (result.status === "error") {
      throw new GatewayError("unavailable", "The store (Redis) could not record the message.", undefined, {
        cause: new Error(result.message),
      });
    }
    if (!("seq" in result)) return result;
    // The stored message is the draft with its seq, as in the memory store.
    const message = draft as StoredMessage;
    message.seq = result.seq;
    return { status: "appended", message };
  }

  async headSeq(conversationId: string): Promise<number> {
    return this.run(() => this.redis.llen(this.key(`log:${conversationId}`)));
  }

  async read(conversationId: string, afterSeq: number, limit?: number): Promise<StoredMessage[]> {
    const start = Math.max(0, Math.floor(afterSeq));
    const stop = limit === undefined ? -1 : start + limit - 1;
    const raw = await this.run(() => this.redis.lrange(this.key(`log:${conversationId}`), start, stop));
    return raw.map((entry) => JSON.parse(entry) as StoredMessage);
  }

  async findMessage(conversationId: string, messageId: string): Promise<StoredMessage | undefined> {
    const seen = await this.run(() => this.redis.hget(this.key(`ids:${conversationId}`), messageId));
    if (seen === null) return undefined;
    const seq = Number(seen.split("\t")[0]);
    const raw = await this.run(() => this.redis.lindex(this.key(`log:${conversationId}`), seq - 1));
    return raw === null ? undefined : (JSON.parse(raw) as StoredMessage);
  }

  async enqueueConnector(channel: string, entry: ConnectorEntry): Promise<{ entry: ConnectorEntry; created: boolean }> {
    const [raw, created] = await this.script<[string, number]>(
      "connectorEnqueue",
      channel,
      entry.id,
      connectorOrderingKey(entry),
      JSON.stringify(entry),
      String(this.options.campaignRetentionMs),
    );
    return { entry: JSON.parse(raw) as ConnectorEntry, created: created === 1 };
  }

  async pendingConnector(channel: string, limit: number): Promise<ConnectorEntry[]> {
    const raw = await this.script<string[]>("connectorHeads", channel, String(Math.max(1, limit)));
    return raw.map((entry) => JSON.parse(entry) as ConnectorEntry);
  }

  async ackConnector(channel: string, entryId: string): Promise<void> {
    const raw = await this.run(() => this.redis.hget(this.key(`cq:${channel}:e`), entryId));
    if (raw === null) return;
    await this.script("connectorAck", channel, entryId, connectorOrderingKey(JSON.parse(raw) as ConnectorEntry));
  }

  async connectorChannelsWithPending(): Promise<string[]> {
    return this.run(() => this.redis.smembers(this.key("cq:channels")));
  }

  async bindDesk(
    conversationId: string,
    ids: Record<string, string>,
    openedAt?: string,
  ): Promise<Conversation | undefined> {
    const raw = await this.script<string | null>("bindDesk", conversationId, JSON.stringify(ids), openedAt ?? "");
    return raw === null ? undefined : (JSON.parse(raw) as Conversation);
  }

  async findByDeskRef(desk: string, key: string, value: string): Promise<Conversation | undefined> {
    return this.getById(await this.run(() => this.redis.get(this.key(`dref:${desk}\u0000${key}\u0000${value}`))));
  }

  async bindBot(
    conversationId: string,
    key: string,
    value: string,
  ): Promise<{ status: "bound"; conversation: Conversation } | { status: "taken" | "not_found" }> {
    const raw = await this.script<string>("bindBot", conversationId, key, value);
    return JSON.parse(raw) as { status: "bound"; conversation: Conversation } | { status: "taken" | "not_found" };
  }

  async findByBotRef(bot: string, key: string, value: string): Promise<Conversation | undefined> {
    return this.getById(await this.run(() => this.redis.get(this.key(`bref:${bot}\u0000${key}\u0000${value}`))));
  }

  async queueTyping(
    conversationId: string,
    typing: { id: string; state: "start" | "stop"; queuedAt: number },
  ): Promise<boolean> {
    const item: OutboxItem = { ...typing, kind: "typing", attempts: 0, notBefore: 0 };
    return Number(await this.script<number>("queueTyping", conversationId, JSON.stringify(item))) === 1;
  }

  async outboxHead(conversationId: string, lane: OutboxLane): Promise<OutboxItem | undefined> {
    const raw = await this.run(() => this.redis.lindex(this.key(`ob:${lane}:${conversationId}`), 0));
    return raw === null ? undefined : (JSON.parse(raw) as OutboxItem);
  }

  async outboxComplete(conversationId: string, lane: OutboxLane, itemId: string): Promise<void> {
    await this.script("outboxUpdate", lane, conversationId, itemId, "");
  }

  async outboxDefer(
    conversationId: string,
    lane: OutboxLane,
    itemId: string,
    update: { attempts: number; notBefore: number; lastError: string; lastAttemptAt: number },
  ): Promise<void> {
    await this.script("outboxUpdate", lane, conversationId, itemId, JSON.stringify(update));
  }

  async outboxDue(lane: OutboxLane, now: number, limit: number): Promise<string[]> {
    return this.run(() => this.redis.zrangebyscore(this.key(`due:${lane}`), "-inf", now, "LIMIT", 0, limit));
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return Number(await this.script<number>("leaseAcquire", owner, String(Math.max(1, Math.round(ttlMs))), key)) === 1;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.script("leaseRelease", owner, key);
  }

  async deskCursor(conversationId: string): Promise<string | undefined> {
    return (await this.run(() => this.redis.get(this.key(`dcur:${conversationId}`)))) ?? undefined;
  }

  async setDeskCursor(conversationId: string, cursor: string): Promise<void> {
    await this.run(() => this.redis.set(this.key(`dcur:${conversationId}`), cursor));
  }

  async findIdle(cutoff: Date, limit: number): Promise<string[]> {
    await this.migrateOpenIndex();
    // The oldest `limit` of each state, merged: the oldest `limit` of all.
    const perState = await Promise.all(
      openConversationStates.map((state) =>
        this.run(() =>
          this.redis.zrangebyscore(
            this.key(`st:${state}`),
            "-inf",
            `(${cutoff.getTime()}`,
            "WITHSCORES",
            "LIMIT",
            0,
            limit,
          ),
        ),
      ),
    );
    const idle: { id: string; ms: number }[] = [];
    for (const flat of perState) {
      for (let i = 0; i + 1 < flat.length; i += 2) idle.push({ id: flat[i] as string, ms: Number(flat[i + 1]) });
    }
    idle.sort((a, b) => a.ms - b.ms || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return idle.slice(0, limit).map((entry) => entry.id);
  }

  async listOpen(query: OpenConversationQuery): Promise<OpenConversationPage> {
    await this.migrateOpenIndex();
    const options = {
      states: [...new Set(query.states)],
      limit: query.limit,
      scan: query.scan,
      ...(query.channel === undefined ? {} : { channel: query.channel }),
      ...(query.subject === undefined ? {} : { subject: query.subject }),
      // Strings: a Lua number prints large times in exponent notation, which Redis would not read back as a score.
      ...(query.after === undefined ? {} : { afterMs: String(query.after.ms), afterId: query.after.id }),
    };
    const reply = await this.script<(string | number)[]>("listOpen", JSON.stringify(options));
    const [nextMs, nextId] = reply;
    const conversations: ListedConversation[] = [];
    for (let i = 2; i + 2 < reply.length; i += 3) {
      conversations.push({
        conversation: JSON.parse(String(reply[i])) as Conversation,
        lastActivityMs: Number(reply[i + 1]),
        lastSeq: Number(reply[i + 2]),
      });
    }
    return nextMs === "" || nextMs === undefined
      ? { conversations }
      : { conversations, next: { ms: Number(nextMs), id: String(nextId) } };
  }

  async countByState(): Promise<Record<ConversationState, number>> {
    const raw = await this.run(() => this.redis.hgetall(this.key("states")));
    return {
      bot: Number(raw.bot ?? 0),
      queued: Number(raw.queued ?? 0),
      active: Number(raw.active ?? 0),
      ended: Number(raw.ended ?? 0),
    };
  }

  async sweepEnded(cutoff: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const removed = Number(await this.script<number>("sweep", String(cutoff.getTime()), "200"));
      total += removed;
      if (removed < 200) return total;
    }
  }

  /** Answers within `timeoutMs` whether Redis serves commands (a connection still being made may finish). */
  async ping(timeoutMs = 2_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      throw new GatewayError("unavailable", `Redis is not reachable (${this.redis.status}).`, undefined, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /**
   * Moves the index of open conversations an earlier version kept (one sorted set, `active`) into the state sets,
   * once per process before the first read of them: without it, a conversation opened before the upgrade would be
   * neither swept when idle nor listed until its state changed.
   */
  private migrateOpenIndex(): Promise<void> {
    this.migrated ??= (async () => {
      while (Number(await this.script<number>("migrateOpenIndex", "500")) > 0);
    })().catch((error: unknown) => {
      this.migrated = undefined;
      throw error;
    });
    return this.migrated;
  }

  private async getById(id: string | null): Promise<Conversation | undefined> {
    return id === null ? undefined : this.get(id);
  }

  private key(suffix: string): string {
    return `${this.prefix}${suffix}`;
  }

  /**
   * Every append of a turn (a busy node's sockets send many) goes to Redis as one `append` script call, in the order
   * they were asked for: one script run and one reply instead of one per message, for Redis and for this node. A
   * call that fails (Redis unreachable) fails each of its appends; an item that fails fails alone.
   */
  private queueAppend(args: [string, string, string]): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.appendQueue.length === 0) setImmediate(this.flushAppends);
      this.appendQueue.push({ args, resolve, reject });
    });
  }

  private readonly flushAppends = (): void => {
    const queued = this.appendQueue;
    this.appendQueue = [];
    for (let start = 0; start < queued.length; start += MAX_APPENDS_PER_CALL) {
      const batch = queued.slice(start, start + MAX_APPENDS_PER_CALL);
      this.script<string[]>("append", ...batch.flatMap((item) => item.args)).then(
        (results) => {
          batch.forEach((item, index) => {
            const raw = results[index];
            if (raw === undefined) item.reject(new GatewayError("unavailable", "The store (Redis) did not answer."));
            else item.resolve(raw);
          });
        },
        (error: unknown) => {
          for (const item of batch) item.reject(error);
        },
      );
    }
  };

  private script<T>(name: keyof Scripts, ...args: string[]): Promise<T> {
    const command = (this.redis as unknown as Record<string, (...a: string[]) => Promise<T>>)[name];
    if (command === undefined) throw new Error(`script ${name} is not defined`);
    return this.run(() => command.call(this.redis, this.prefix, ...args));
  }

  /** Redis errors become `unavailable` (503 / an `unavailable` ack), never a crash. */
  private async run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw new GatewayError("unavailable", "The store (Redis) is not reachable.", undefined, { cause: error });
    }
  }
}
