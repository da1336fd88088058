import { setMaxListeners } from "node:events";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { fileLink, signFileToken } from "./files.js";
import type { FakeEvent, FakeState } from "./state.js";
import type { HeldWebhook, RcMessage, RcRoom, RcWebhookBody, WebhookAttempt, WebhookEventToggle } from "./types.js";

/*
 * The Omnichannel webhook (spec a.8): hooks/sendToCRM.ts builds the body, lib/webhooks.ts sends it.
 * Bodies are built when the event happens (a snapshot of the room, `crmData` included: what our endpoint last
 * answered for the room by then). Each is then sent on its own (`void sendRequest(...)`): nothing waits for an
 * earlier event of the same room, and a retry comes back later by its own timer, after whatever was sent meanwhile.
 */

export const DEFAULT_WEBHOOK_EVENTS: Record<WebhookEventToggle, boolean> = {
  start: false,
  close: true,
  taken: true,
  queued: true,
  forward: true,
  offline: false,
  visitorMessage: false,
  agentMessage: true,
  capture: false,
};

const SESSION_TOGGLES: Record<string, WebhookEventToggle> = {
  LivechatSessionStart: "start",
  LivechatSessionQueued: "queued",
  LivechatSessionTaken: "taken",
  LivechatSessionForwarded: "forward",
  LivechatSession: "close",
};

export interface WebhookConfig {
  url: string | undefined;
  secretToken: string | undefined;
  events: Record<WebhookEventToggle, boolean>;
  retryPolicy: "legacy" | "middle" | "modern";
  retryIntervalMs: number;
  httpTimeoutMs: number;
  /** Base of `fileUpload.publicFilePath` (Site_Url). */
  siteUrl: () => string;
  protectFiles: boolean;
  jwtFileUrls: boolean;
  jwtSecret: string;
}

interface Delivery {
  id: number;
  type: string;
  roomId: string | undefined;
  body: RcWebhookBody;
}

/** JSON round trip: dates become ISO strings and undefined keys disappear, exactly as on the wire. */
function wire<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function withCrmData(body: RcWebhookBody, crmData: string | undefined): RcWebhookBody {
  if (crmData === undefined || body._id === undefined) return body;
  // getLivechatRoomGuestInfo adds crmData right after `agent` (or `visitor` when the room has no agent).
  const anchor = body.agent === undefined ? "visitor" : "agent";
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    out[key] = value;
    if (key === anchor) out.crmData = crmData;
  }
  return out as unknown as RcWebhookBody;
}

/**
 * One webhook POST over `node:http(s)` with keep-alive sockets: the status and the answer's text, or a rejection for a
 * network error, an exchange (connect to last byte) longer than `timeoutMs`, or `abort`. Node's `fetch` did the same
 * at several times the CPU per call (its web streams and abort signals were a third of this fake's CPU in the desk
 * benchmark, where the fake shares two cores with the gateway it stands beside).
 */
function postJson(
  url: string,
  headers: Record<string, string>,
  payload: string,
  timeoutMs: number,
  agents: { http: HttpAgent; https: HttpsAgent },
  abort: AbortSignal,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === "https:";
    const req = (secure ? httpsRequest : httpRequest)(target, {
      method: "POST",
      headers: { ...headers, "content-length": String(Buffer.byteLength(payload)) },
      agent: secure ? agents.https : agents.http,
      signal: abort,
    });
    const timer = setTimeout(() => req.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    req.once("error", fail);
    req.once("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.once("error", fail);
      res.once("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text });
      });
    });
    req.end(payload);
  });
}

export class WebhookEmitter {
  readonly attempts: WebhookAttempt[] = [];
  private deliveries = 0;
  private inFlight = 0;
  private holding = false;
  private readonly held: Delivery[] = [];
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly aborter = new AbortController();
  private readonly agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly config: WebhookConfig,
    private readonly state: () => FakeState,
  ) {
    // Every delivery in flight listens on the one signal (each request removes its listener when it ends): past ten
    // at once, Node would warn of a leak that is not one.
    setMaxListeners(0, this.aborter.signal);
  }

  handle(event: FakeEvent): void {
    if (this.closed || !this.config.url) return;
    switch (event.kind) {
      case "session": {
        const toggle = SESSION_TOGGLES[event.type];
        if (toggle === undefined || !this.config.events[toggle]) return;
        const room = { ...event.room, oldServedBy: event.oldServedBy, oldDepartmentId: event.oldDepartmentId };
        this.enqueue(
          event.type,
          event.room._id,
          this.buildRoomBody(event.type, room, this.visibleMessages(event.room)),
        );
        return;
      }
      case "message": {
        // "if the message has a token, it was sent from the visitor; if not, it was sent from the agent"
        const toggle: WebhookEventToggle = event.message.token === undefined ? "agentMessage" : "visitorMessage";
        if (!this.config.events[toggle]) return;
        if (event.message.t !== undefined && event.message.t !== "livechat-close") return;
        this.enqueue("Message", event.room._id, this.buildRoomBody("Message", event.room, [event.message]));
        return;
      }
      case "capture": {
        if (!this.config.events.capture) return;
        this.enqueue("LeadCapture", event.room._id, this.buildRoomBody("LeadCapture", event.room, []));
        return;
      }
      case "offline": {
        if (!this.config.events.offline) return;
        const body = wire<RcWebhookBody>({
          type: "LivechatOfflineMessage",
          sentAt: event.sentAt,
          visitor: { name: event.name, email: event.email },
          message: event.message,
        });
        this.dispatch({ id: this.nextDelivery(), type: body.type, roomId: undefined, body });
        return;
      }
    }
  }

  /** `Messages.findVisibleByRoomId(rid, {sort: {ts: 1}})`; system messages are filtered in buildRoomBody. */
  private visibleMessages(room: RcRoom): RcMessage[] {
    return this.state().messagesOf(room._id);
  }

  /** `publicFilePath`: absolute, with `?token=<JWT>` when JWT file protection is on (normalizeMessageFileUpload). */
  publicFilePath(message: RcMessage): { publicFilePath: string; type: string; size: number } | undefined {
    if (!message.file) return undefined;
    const file = this.state().files.get(message.file._id);
    if (!file) return undefined;
    const jwt =
      this.config.protectFiles && this.config.jwtFileUrls
        ? signFileToken(this.config.jwtSecret, { rid: message.rid, userId: message.u._id, fileId: file._id })
        : undefined;
    return {
      publicFilePath: `${this.config.siteUrl()}${fileLink(file)}${jwt === undefined ? "" : `?token=${jwt}`}`,
      type: file.type,
      size: file.size,
    };
  }

  private buildRoomBody(
    type: string,
    room: RcRoom & { oldServedBy?: unknown; oldDepartmentId?: string },
    messages: RcMessage[],
  ): RcWebhookBody | undefined {
    const state = this.state();
    const visitor = state.visitors.get(room.v._id);
    if (!visitor) return undefined; // getLivechatRoomGuestInfo throws error-invalid-visitor
    const agent = room.servedBy ? state.agentById(room.servedBy._id) : undefined;
    const visitorInfo: Record<string, unknown> = {
      _id: visitor._id,
      token: visitor.token,
      name: visitor.name,
      username: visitor.username,
      department: visitor.department,
      customFields: visitor.livechatData,
    };
    if (visitor.visitorEmails?.length) visitorInfo.email = visitor.visitorEmails;
    if (visitor.phone?.length) visitorInfo.phone = visitor.phone;
    const items = messages
      .filter((message) => message.t === undefined || message.t === "livechat-close")
      .map((message) => ({
        u: message.u,
        _id: message._id,
        username: message.u.username,
        msg: message.msg === "" ? undefined : message.msg,
        ts: message.ts,
        rid: message.rid,
        ...(message.editedAt ? { editedAt: message.editedAt } : {}),
        ...(message.u.username !== visitor.username ? { agentId: message.u._id } : {}),
        ...(message.t === "livechat-close" ? { closingMessage: true } : {}),
        ...(message.file ? { file: message.file, attachments: message.attachments } : {}),
        ...(message.file ? { fileUpload: this.publicFilePath(message) } : {}),
        _updatedAt: message._updatedAt,
      }));
    const extra: Record<string, unknown> = {};
    switch (type) {
      case "LivechatSessionStart":
      case "LivechatSessionQueued":
        Object.assign(extra, { departmentId: room.departmentId });
        break;
      case "LivechatSessionTaken":
        Object.assign(extra, { departmentId: room.departmentId, servedBy: room.servedBy });
        break;
      case "LivechatSessionForwarded":
        Object.assign(extra, {
          departmentId: room.departmentId,
          servedBy: room.servedBy,
          oldDepartmentId: room.oldDepartmentId,
          oldServedBy: room.oldServedBy,
        });
        break;
      case "LivechatSession":
        Object.assign(extra, {
          departmentId: room.departmentId,
          servedBy: room.servedBy,
          closedAt: room.closedAt,
          closedBy: room.closedBy,
          closer: room.closer,
        });
        break;
    }
    return wire<RcWebhookBody>({
      _id: room._id,
      label: room.fname,
      createdAt: room.ts,
      lastMessageAt: room.lm,
      tags: room.tags,
      customFields: room.livechatData,
      visitor: visitorInfo,
      ...(agent
        ? {
            agent: {
              _id: agent._id,
              username: agent.username,
              name: agent.name,
              ...(agent.email === undefined ? {} : { email: agent.email }),
            },
          }
        : {}),
      type,
      messages: items,
      ...extra,
    });
  }

  private enqueue(type: string, roomId: string, body: RcWebhookBody | undefined): void {
    if (body === undefined) return;
    const crmData = this.state().rooms.get(roomId)?.crmData;
    this.dispatch({ id: this.nextDelivery(), type, roomId, body: withCrmData(body, crmData) });
  }

  private nextDelivery(): number {
    this.deliveries += 1;
    return this.deliveries;
  }

  private dispatch(delivery: Delivery): void {
    if (this.holding) {
      this.held.push(delivery);
      return;
    }
    void this.start(delivery);
  }

  /** Sends one delivery with its retries, independently of every other. */
  private async start(delivery: Delivery): Promise<void> {
    this.inFlight += 1;
    try {
      await this.deliver(delivery);
    } finally {
      this.inFlight -= 1;
      this.notifyIfIdle();
    }
  }

  hold(): void {
    this.holding = true;
  }

  heldDeliveries(): HeldWebhook[] {
    return this.held.map((d) => ({
      delivery: d.id,
      type: d.type,
      ...(d.roomId === undefined ? {} : { roomId: d.roomId }),
      body: d.body,
    }));
  }

  /** Sends the chosen held deliveries, in the order given; resolves when each has settled. */
  async release(pick: (held: readonly HeldWebhook[]) => readonly HeldWebhook[]): Promise<void> {
    const chosen = pick(this.heldDeliveries()).map((h) => h.delivery);
    const sends: Promise<void>[] = [];
    for (const id of chosen) {
      const index = this.held.findIndex((d) => d.id === id);
      const [delivery] = index < 0 ? [] : this.held.splice(index, 1);
      if (delivery) sends.push(this.start(delivery));
    }
    await Promise.all(sends);
  }

  resume(): void {
    this.holding = false;
    for (const delivery of this.held.splice(0)) void this.start(delivery);
  }

  private async deliver(delivery: Delivery): Promise<void> {
    const maxAttempts = this.config.retryPolicy === "legacy" ? 10 : 5;
    const { body } = delivery;
    const payload = JSON.stringify(body);
    for (let attempt = 1; attempt <= maxAttempts && !this.closed; attempt += 1) {
      const url = this.config.url;
      if (!url) return;
      let status: number | "network-error";
      let responseText: string | undefined;
      try {
        const headers = {
          "content-type": "application/json",
          ...(this.config.secretToken ? { "X-RocketChat-Livechat-Token": this.config.secretToken } : {}),
        };
        const response = await postJson(
          url,
          headers,
          payload,
          this.config.httpTimeoutMs,
          this.agents,
          this.aborter.signal,
        );
        responseText = response.text;
        status = response.status;
      } catch {
        status = "network-error";
      }
      if (this.closed) return;
      this.attempts.push({
        delivery: delivery.id,
        type: delivery.type,
        ...(delivery.roomId === undefined ? {} : { roomId: delivery.roomId }),
        attempt,
        status,
        body,
        ...(responseText === undefined ? {} : { responseText }),
      });
      if (status === 200) {
        // Only HTTP 200 counts as delivered; its text is saved as room.crmData.
        const room = delivery.roomId === undefined ? undefined : this.state().rooms.get(delivery.roomId);
        if (room && responseText !== undefined) room.crmData = responseText;
        return;
      }
      const retryable =
        this.config.retryPolicy !== "modern" || status === "network-error" || status >= 500 || status === 429;
      if (!retryable || attempt === maxAttempts) return;
      await this.sleep(this.config.retryIntervalMs);
    }
  }

  /** A retry's wait; `close` ends it early (the attempt loop then sees `closed` and stops). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  private isIdle(): boolean {
    return this.inFlight === 0;
  }

  private notifyIfIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
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
