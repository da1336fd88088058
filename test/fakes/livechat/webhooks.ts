import { setMaxListeners } from "node:events";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { ChatRecord, FakeState, Happening, Origin } from "./state.js";
import type { HeldWebhook, WebhookAction, WebhookAttempt, WebhookRegistration, WebhookSourceType } from "./types.js";
import { formatUs, hex, wire } from "./util.js";

/*
 * License webhooks of the fake's application (Configuration API `register_webhook`, type `license`). The body is
 * `{webhook_id, secret_key, action, organization_id, payload, additional_data}`: the secret travels in the body, there
 * is no signature header. Payloads use the Agent Chat API data structures (events carry `visibility`). LiveChat waits
 * about 10 s for an HTTP 200 and otherwise retries up to 3 times within about a minute; anything but 200 is a
 * failure. Each webhook is sent on its own: nothing orders one after another.
 */

export const WEBHOOK_ACTIONS: readonly WebhookAction[] = [
  "incoming_chat",
  "chat_deactivated",
  "chat_transferred",
  "user_added_to_chat",
  "user_removed_from_chat",
  "incoming_event",
  "customer_session_fields_updated",
  "events_marked_as_seen",
];

/** "One Client ID can register up to three webhooks for every action." */
const MAX_PER_ACTION = 3;

interface Registered extends Required<Pick<WebhookRegistration, "action" | "url" | "secret_key" | "owner_client_id">> {
  id: string;
  filters: NonNullable<WebhookRegistration["filters"]>;
  additionalData: NonNullable<WebhookRegistration["additional_data"]>;
}

interface Fired {
  action: WebhookAction;
  payload: Record<string, unknown>;
  chat?: ChatRecord;
  /** For `author_type`: who wrote the event (undefined for a system message). */
  authorType?: "customer" | "agent";
  origin: Origin;
}

interface Delivery {
  id: number;
  webhook: Registered;
  body: Record<string, unknown>;
}

export interface WebhookSettings {
  organizationId: string;
  clientId: string;
  timeoutMs: number;
  retryDelaysMs: number[];
}

export class WebhookEmitter {
  readonly attempts: WebhookAttempt[] = [];
  private readonly registered: Registered[] = [];
  private deliveries = 0;
  private inFlight = 0;
  private duplicates = 0;
  private readonly drops: { count: number; action?: WebhookAction }[] = [];
  private holding = false;
  private readonly held: Delivery[] = [];
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly aborter = new AbortController();
  private readonly agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly state: FakeState,
    private readonly settings: WebhookSettings,
  ) {
    // Every delivery in flight listens on the one signal: past ten Node would warn of a leak that is not one.
    setMaxListeners(0, this.aborter.signal);
    state.on((happening) => this.onHappening(happening));
  }

  register(registration: WebhookRegistration): string {
    if (!WEBHOOK_ACTIONS.includes(registration.action))
      throw new Error(`webhook action ${registration.action} is not supported`);
    if (registration.url.length > 500) throw new Error("webhook url: at most 500 characters");
    if (registration.secret_key === "") throw new Error("webhook secret_key: required");
    const filters = registration.filters ?? {};
    if (filters.author_type !== undefined && registration.action !== "incoming_event") {
      throw new Error("filters.author_type is allowed only for incoming_event");
    }
    const presence = filters.chat_presence?.user_ids;
    if (presence?.values !== undefined && presence.exclude_values !== undefined) {
      throw new Error("filters.chat_presence.user_ids: only one of values and exclude_values");
    }
    const owner = registration.owner_client_id ?? this.settings.clientId;
    if (
      this.registered.filter((w) => w.action === registration.action && w.owner_client_id === owner).length >=
      MAX_PER_ACTION
    ) {
      throw new Error(`limit_reached: ${MAX_PER_ACTION} webhooks per action per Client ID`);
    }
    const id = hex(16);
    this.registered.push({
      id,
      action: registration.action,
      url: registration.url,
      secret_key: registration.secret_key,
      owner_client_id: owner,
      filters,
      additionalData: registration.additional_data ?? [],
    });
    return id;
  }

  unregister(id: string): void {
    const index = this.registered.findIndex((w) => w.id === id);
    if (index < 0) throw new Error(`unknown webhook ${id}`);
    this.registered.splice(index, 1);
  }

  duplicateNext(count: number): void {
    this.duplicates += count;
  }

  dropNext(count: number, action?: WebhookAction): void {
    this.drops.push({ count, ...(action === undefined ? {} : { action }) });
  }

  private onHappening(h: Happening): void {
    if (this.closed) return;
    const fired = this.toWebhook(h);
    if (!fired) return;
    for (const webhook of this.registered) {
      if (webhook.action !== fired.action || !this.passes(webhook, fired)) continue;
      const body = wire<Record<string, unknown>>({
        webhook_id: webhook.id,
        secret_key: webhook.secret_key,
        action: fired.action,
        organization_id: this.settings.organizationId,
        payload: fired.payload,
        // The documented chat_transferred webhook has no additional_data; every other chat webhook has it.
        ...(fired.action === "chat_transferred" ? {} : { additional_data: this.additionalData(webhook, fired.chat) }),
      });
      const drop = this.drops.find((d) => d.count > 0 && (d.action === undefined || d.action === fired.action));
      if (drop) {
        drop.count -= 1;
        continue;
      }
      this.dispatch({ id: ++this.deliveries, webhook, body });
      if (this.duplicates > 0) {
        this.duplicates -= 1;
        this.dispatch({ id: ++this.deliveries, webhook, body });
      }
    }
  }

  private passes(webhook: Registered, fired: Fired): boolean {
    const { filters } = webhook;
    if (filters.author_type !== undefined && fired.authorType !== filters.author_type) return false;
    if (filters.only_my_chats === true && fired.chat?.sourceClientId !== webhook.owner_client_id) return false;
    if (
      filters.source_type !== undefined &&
      !filters.source_type.includes(sourceType(fired.origin, webhook.owner_client_id))
    ) {
      return false;
    }
    const presence = filters.chat_presence?.user_ids;
    if (presence && fired.chat) {
      const inChat = presentUserIds(fired.chat);
      if (presence.values !== undefined && !presence.values.some((id) => inChat.includes(id))) return false;
      if (presence.exclude_values?.some((id) => inChat.includes(id))) return false;
    }
    return true;
  }

  private additionalData(webhook: Registered, chat: ChatRecord | undefined): Record<string, unknown> {
    const data: Record<string, unknown> = {};
    if (!chat) return data;
    if (webhook.additionalData.includes("chat_properties")) data.chat_properties = structuredClone(chat.properties);
    if (webhook.additionalData.includes("chat_presence_user_ids")) data.chat_presence_user_ids = presentUserIds(chat);
    return data;
  }

  private toWebhook(h: Happening): Fired | undefined {
    const s = this.state;
    switch (h.kind) {
      case "incoming_chat":
        return {
          action: "incoming_chat",
          chat: h.chat,
          origin: h.origin,
          payload: {
            chat: {
              id: h.chat.id,
              users: s.usersView(h.chat),
              properties: structuredClone(h.chat.properties),
              access: { group_ids: [...h.chat.access.group_ids] },
              thread: s.threadView(h.chat, h.thread, "agent"),
            },
          },
        };
      case "incoming_event": {
        const author = h.event.authorId === undefined ? undefined : h.chat.users.get(h.event.authorId)?.type;
        return {
          action: "incoming_event",
          chat: h.chat,
          origin: h.origin,
          ...(author === undefined ? {} : { authorType: author }),
          payload: { chat_id: h.chat.id, thread_id: h.thread.id, event: s.agentEventView(h.event) },
        };
      }
      case "chat_deactivated":
        return {
          action: "chat_deactivated",
          chat: h.chat,
          origin: h.origin,
          payload: {
            chat_id: h.chat.id,
            thread_id: h.thread.id,
            ...(h.userId === undefined ? {} : { user_id: h.userId }),
          },
        };
      case "chat_transferred": {
        const entry = s.queueEntry(h.thread);
        return {
          action: "chat_transferred",
          chat: h.chat,
          origin: h.origin,
          payload: {
            chat_id: h.chat.id,
            thread_id: h.thread.id,
            requester_id: h.requesterId,
            reason: "manual",
            transferred_to: h.transferredTo,
            ...(entry && h.thread.queuedUs !== undefined
              ? {
                  queue: {
                    position: entry.position,
                    wait_time: entry.waitTime,
                    queued_at: formatUs(h.thread.queuedUs),
                  },
                }
              : {}),
          },
        };
      }
      case "user_added_to_chat": {
        const user = s.userView(h.chat, h.userId);
        return {
          action: "user_added_to_chat",
          chat: h.chat,
          origin: h.origin,
          payload: {
            chat_id: h.chat.id,
            thread_id: h.thread.id,
            user,
            user_type: user.type,
            reason: h.reason,
            ...(h.requesterId === undefined ? {} : { requester_id: h.requesterId }),
          },
        };
      }
      case "user_removed_from_chat":
        return {
          action: "user_removed_from_chat",
          chat: h.chat,
          origin: h.origin,
          payload: {
            chat_id: h.chat.id,
            thread_id: h.thread.id,
            user_id: h.userId,
            user_type: h.chat.users.get(h.userId)?.type ?? "agent",
            reason: h.reason,
            ...(h.requesterId === undefined ? {} : { requester_id: h.requesterId }),
          },
        };
      case "session_fields_updated":
        return {
          action: "customer_session_fields_updated",
          chat: h.chat,
          origin: h.origin,
          payload: {
            id: h.customer.id,
            active_chat: { chat_id: h.chat.id, thread_id: h.thread.id },
            session_fields: structuredClone(h.customer.sessionFields),
          },
        };
      case "events_marked_as_seen":
        return {
          action: "events_marked_as_seen",
          chat: h.chat,
          origin: h.origin,
          payload: { user_id: h.userId, chat_id: h.chat.id, seen_up_to: formatUs(h.seenUpToUs) },
        };
      default:
        // Typing, queue positions and the rest have no webhook: they are RTM pushes only.
        return undefined;
    }
  }

  private dispatch(delivery: Delivery): void {
    if (this.holding) {
      this.held.push(delivery);
      return;
    }
    void this.start(delivery);
  }

  private async start(delivery: Delivery): Promise<void> {
    this.inFlight += 1;
    try {
      await this.deliver(delivery);
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }

  private async deliver(delivery: Delivery): Promise<void> {
    const payload = JSON.stringify(delivery.body);
    const attempts = 1 + this.settings.retryDelaysMs.length;
    for (let attempt = 1; attempt <= attempts && !this.closed; attempt += 1) {
      let status: WebhookAttempt["status"];
      try {
        status = await postJson(
          delivery.webhook.url,
          payload,
          this.settings.timeoutMs,
          this.agents,
          this.aborter.signal,
        );
      } catch (error) {
        status = error instanceof TimeoutError ? "timeout" : "network-error";
      }
      if (this.closed) return;
      this.attempts.push({
        delivery: delivery.id,
        webhookId: delivery.webhook.id,
        action: delivery.webhook.action,
        attempt,
        status,
        body: delivery.body,
      });
      if (status === 200) return;
      const delay = this.settings.retryDelaysMs[attempt - 1];
      if (delay === undefined) return;
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  hold(): void {
    this.holding = true;
  }

  heldDeliveries(): HeldWebhook[] {
    return this.held.map((d) => ({ delivery: d.id, action: d.webhook.action, body: d.body }));
  }

  /** Sends the chosen held deliveries in the order given and waits for each to settle. */
  async release(pick: (held: readonly HeldWebhook[]) => readonly HeldWebhook[]): Promise<void> {
    const sends: Promise<void>[] = [];
    for (const chosen of pick(this.heldDeliveries())) {
      const index = this.held.findIndex((d) => d.id === chosen.delivery);
      const [delivery] = index < 0 ? [] : this.held.splice(index, 1);
      if (delivery) sends.push(this.start(delivery));
    }
    await Promise.all(sends);
  }

  resume(): void {
    this.holding = false;
    for (const delivery of this.held.splice(0)) void this.start(delivery);
  }

  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.aborter.abort();
    this.agents.http.destroy();
    this.agents.https.destroy();
    for (const [timer, resolve] of this.timers) {
      clearTimeout(timer);
      resolve();
    }
    this.timers.clear();
    this.held.length = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function sourceType(origin: Origin, owner: string): WebhookSourceType {
  if (origin.clientId === undefined) return "system";
  return origin.clientId === owner ? "my_client" : "other_clients";
}

function presentUserIds(chat: ChatRecord): string[] {
  return [...chat.users.entries()].filter(([, user]) => user.type === "customer" || user.present).map(([id]) => id);
}

class TimeoutError extends Error {}

/** One POST: the status once the whole answer is in, or a rejection (network error, timeout, abort). */
function postJson(
  url: string,
  payload: string,
  timeoutMs: number,
  agents: { http: HttpAgent; https: HttpsAgent },
  abort: AbortSignal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === "https:";
    const req = (secure ? httpsRequest : httpRequest)(target, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) },
      agent: secure ? agents.https : agents.http,
      signal: abort,
    });
    const timer = setTimeout(() => req.destroy(new TimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    req.once("error", fail);
    req.once("response", (res) => {
      res.resume();
      res.once("error", fail);
      res.once("end", () => {
        clearTimeout(timer);
        resolve(res.statusCode ?? 0);
      });
    });
    req.end(payload);
  });
}
