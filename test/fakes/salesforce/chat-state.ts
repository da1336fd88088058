import { affinityToken, sessionKey, uuid } from "./ids.js";
import { json, text } from "./http-kit.js";
import type { Reply } from "./http-kit.js";
import type { ChatAgentViewItem, ChatDelivery, ChatSessionView, FakeAgent, SfViolation } from "./types.js";

export interface ChatSettings {
  orgId15: string;
  orgId18: string;
  deploymentId: string;
  buttonId: string;
  clientPollTimeoutSeconds: number;
  pollHoldMs: number;
  sessionIdleTimeoutMs: number;
  agentsAvailable: boolean;
  initialQueuePosition: number;
  abandonedPolls: "released" | "held";
  agent: FakeAgent;
}

interface Outbound {
  seq: number;
  offset: number;
  type: string;
  message: Record<string, unknown>;
  /** ChatEnded, ChatRequestFail: once delivered, the session is gone. */
  ends: boolean;
}

interface HeldPoll {
  timer: NodeJS.Timeout;
  /** Set when the poll carried no `ack`: only messages not yet delivered go out. */
  noAck: boolean;
  /** The client went away but the server (through its proxy) does not know yet. */
  abandoned: boolean;
  resolve: (reply: Reply) => void;
}

export interface ChatSession {
  id: string;
  key: string;
  affinity: string;
  /** The server handed the session over: the current affinity token is refused (503) until ReconnectSession. */
  affinityStale: boolean;
  state: ChatSessionView["state"];
  endReason: string | undefined;
  /** Every request answers 403. */
  dead: boolean;
  init: Record<string, unknown> | undefined;
  receiveQueueUpdates: boolean;
  agent: FakeAgent | undefined;
  visitorTyping: boolean;
  lastPostSeq: number | undefined;
  /** What each accepted POST sequence carried, to notice a sequence reused for something else. */
  postFingerprints: Map<number, string>;
  droppedDuplicates: { path: string; sequence: number }[];
  /** After ReconnectSession: the next POST must restart at 1, and ChasitorResyncState must come first. */
  sequenceResetPending: boolean;
  awaitingResync: boolean;
  outbound: Outbound[];
  lastSeq: number;
  offset: number;
  lastSentOffset: number | undefined;
  poll: HeldPoll | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  transcript: ChatAgentViewItem[];
  deliveries: ChatDelivery[];
  chatEndReason: string | undefined;
  queuePosition: number;
}

function visitorName(session: ChatSession): string {
  const name = session.init?.visitorName;
  return typeof name === "string" ? name : "";
}

/** The Live Agent server's side of every chat session: the message queue, the long poll, the agent. */
export class ChatState {
  private readonly sessionsByKey = new Map<string, ChatSession>();
  private closed = false;

  constructor(
    readonly settings: ChatSettings,
    private readonly violation: (v: Omit<SfViolation, "api" | "at">) => void,
  ) {}

  createSession(): ChatSession {
    const id = uuid();
    const session: ChatSession = {
      id,
      key: sessionKey(id),
      affinity: affinityToken(),
      affinityStale: false,
      state: "new",
      endReason: undefined,
      dead: false,
      init: undefined,
      receiveQueueUpdates: false,
      agent: undefined,
      visitorTyping: false,
      lastPostSeq: undefined,
      postFingerprints: new Map(),
      droppedDuplicates: [],
      sequenceResetPending: false,
      awaitingResync: false,
      outbound: [],
      lastSeq: 0,
      offset: 50_000_000 + Math.floor(Math.random() * 1_000_000),
      lastSentOffset: undefined,
      poll: undefined,
      idleTimer: undefined,
      transcript: [],
      deliveries: [],
      chatEndReason: undefined,
      queuePosition: 0,
    };
    this.sessionsByKey.set(session.key, session);
    this.touch(session);
    return session;
  }

  find(key: string): ChatSession | undefined {
    return this.sessionsByKey.get(key);
  }

  all(): ChatSession[] {
    return [...this.sessionsByKey.values()];
  }

  /** Any request of the session restarts its idle clock. */
  touch(session: ChatSession): void {
    if (session.idleTimer) clearTimeout(session.idleTimer);
    if (session.dead || this.closed) return;
    session.idleTimer = setTimeout(() => this.kill(session, "expired"), this.settings.sessionIdleTimeoutMs);
  }

  /** The session is gone: every request, the held poll included, answers 403. */
  kill(session: ChatSession, reason: string): void {
    if (session.dead) return;
    session.dead = true;
    session.state = "ended";
    session.endReason ??= reason;
    if (session.idleTimer) clearTimeout(session.idleTimer);
    this.answerPoll(session, text(403, "Session is not valid"));
  }

  // ─── the long poll ───────────────────────────────────────────────────────────────────────────────────────────

  poll(session: ChatSession, ack: number | undefined, signal: AbortSignal): Reply | Promise<Reply> {
    if (session.poll) {
      // Salesforce allows one outstanding poll per session; a second one terminates the chat, both get 409.
      this.violation({
        kind: "concurrentPoll",
        ref: session.key,
        detail: session.poll.abandoned
          ? "a poll arrived while the server still held one whose client had gone away"
          : "two polls were outstanding at once",
      });
      const conflict = text(409, "Duplicate long poll: the chat has been terminated");
      this.answerPoll(session, conflict);
      this.kill(session, "duplicatePoll");
      return conflict;
    }
    if (ack === undefined) {
      this.violation({ kind: "pollWithoutAck", ref: session.key, detail: "Messages polled without ack" });
    } else {
      if (ack > session.lastSeq) {
        this.violation({
          kind: "ackAhead",
          ref: session.key,
          detail: `ack=${ack} but the last message sent was ${session.lastSeq}`,
        });
      }
      session.outbound = session.outbound.filter((m) => m.seq > ack);
    }
    if (session.outbound.length > 0) return this.deliver(session, [...session.outbound], ack === undefined);
    return new Promise<Reply>((resolve) => {
      const held: HeldPoll = {
        noAck: ack === undefined,
        abandoned: false,
        resolve,
        timer: setTimeout(() => {
          if (session.poll === held) session.poll = undefined;
          // A poll held open counts as activity: the idle clock runs from its answer.
          this.touch(session);
          resolve({ status: 204 });
        }, this.settings.pollHoldMs),
      };
      session.poll = held;
      signal.addEventListener("abort", () => {
        if (session.poll !== held) return;
        if (this.settings.abandonedPolls === "released") {
          clearTimeout(held.timer);
          session.poll = undefined;
        } else {
          held.abandoned = true;
        }
      });
    });
  }

  /**
   * A 200 answer with every message not acknowledged yet. Without an ack the server cannot know what arrived: a
   * delivered message counts as acknowledged (a lost answer loses it).
   */
  private deliver(session: ChatSession, messages: Outbound[], noAck: boolean): Reply {
    const last = messages[messages.length - 1] as Outbound;
    const delivery: ChatDelivery = {
      sequence: last.seq,
      offset: last.offset,
      messages: messages.map((m) => ({ type: m.type, message: structuredClone(m.message) })),
    };
    session.deliveries.push(delivery);
    session.lastSentOffset = last.offset;
    if (noAck) session.outbound = session.outbound.filter((m) => m.seq > last.seq);
    const reply = json(200, delivery);
    // Once ChatEnded or ChatRequestFail has gone out, the server forgets the session.
    if (messages.some((m) => m.ends)) this.kill(session, session.endReason ?? "ended");
    return reply;
  }

  private answerPoll(session: ChatSession, reply: Reply): void {
    const held = session.poll;
    if (!held) return;
    session.poll = undefined;
    clearTimeout(held.timer);
    held.resolve(reply);
  }

  /** Queues a message for the visitor; a held poll gets it at once (even one whose client is gone). */
  enqueue(session: ChatSession, type: string, message: Record<string, unknown>, ends = false): void {
    if (session.dead) throw new Error(`session ${session.key} is gone`);
    session.lastSeq += 1;
    session.offset += JSON.stringify(message).length + 17;
    session.outbound.push({ seq: session.lastSeq, offset: session.offset, type, message, ends });
    const held = session.poll;
    if (!held) return;
    session.poll = undefined;
    clearTimeout(held.timer);
    held.resolve(this.deliver(session, [...session.outbound], held.noAck));
  }

  // ─── affinity and reconnection ───────────────────────────────────────────────────────────────────────────────

  changeAffinity(session: ChatSession): void {
    if (session.dead) throw new Error(`session ${session.key} is gone`);
    session.affinityStale = true;
    this.answerPoll(session, text(503, "Invalid affinity token"));
  }

  /**
   * ReconnectSession: a new affinity token, the request sequence restarts, and the new server replays what the
   * visitor has not acknowledged after ChasitorSessionData (renumbered after it).
   */
  reconnect(session: ChatSession, offset: number): Reply {
    if (session.lastSentOffset !== undefined && offset !== session.lastSentOffset) {
      this.violation({
        kind: "reconnectOffset",
        ref: session.key,
        detail: `ReconnectSession.offset=${offset} but the last offset sent was ${session.lastSentOffset}`,
      });
    }
    this.answerPoll(session, text(503, "Invalid affinity token"));
    session.affinity = affinityToken();
    session.affinityStale = false;
    session.lastPostSeq = 0;
    session.postFingerprints.clear();
    session.sequenceResetPending = true;
    session.awaitingResync = true;
    const replay = session.outbound;
    session.outbound = [];
    this.enqueue(session, "ChasitorSessionData", this.sessionData(session));
    for (const m of replay) this.enqueue(session, m.type, m.message, m.ends);
    return json(200, {
      messages: [{ type: "ReconnectSession", message: { resetSequence: true, affinityToken: session.affinity } }],
    });
  }

  private sessionData(session: ChatSession): Record<string, unknown> {
    return {
      queuePosition: session.queuePosition,
      geoLocation: { countryCode: "DE", countryName: "Germany", organization: "Fake ISP" },
      url: "",
      oref: "",
      postChatUrl: "",
      sneakPeekEnabled: false,
      chatMessages: session.transcript
        .filter((t) => t.from !== "system")
        .map((t, i) => ({
          type: t.from === "agent" ? "Agent" : "Chasitor",
          name: t.from === "agent" ? (session.agent?.name ?? "") : visitorName(session),
          content: t.text,
          timestamp: t.at,
          sequence: i + 1,
        })),
    };
  }

  // ─── the visitor's POSTs ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * X-LIVEAGENT-SEQUENCE: a POST whose sequence is not above the last one accepted is a duplicate, answered OK and
   * not processed. Returns false for a dropped duplicate.
   */
  admitPost(session: ChatSession, path: string, sequence: number, fingerprint: string): boolean {
    const last = session.lastPostSeq;
    if (last !== undefined && sequence <= last) {
      session.droppedDuplicates.push({ path, sequence });
      const before = session.postFingerprints.get(sequence);
      if (before !== undefined && before !== fingerprint) {
        this.violation({
          kind: "sequenceReused",
          ref: session.key,
          detail: `X-LIVEAGENT-SEQUENCE ${sequence} was reused for a different request (${path}); it was dropped`,
        });
      } else if (before === undefined) {
        this.violation({
          kind: "sequenceReused",
          ref: session.key,
          detail: `X-LIVEAGENT-SEQUENCE ${sequence} is not above ${last}; ${path} was dropped`,
        });
      }
      return false;
    }
    if (session.sequenceResetPending && sequence !== 1) {
      this.violation({
        kind: "sequenceNotReset",
        ref: session.key,
        detail: `the first POST after ReconnectSession carried ${sequence}, not 1`,
      });
    } else if (last !== undefined && sequence > last + 1) {
      this.violation({ kind: "sequenceGap", ref: session.key, detail: `sequence jumped from ${last} to ${sequence}` });
    }
    if (session.awaitingResync && !path.endsWith("/ChasitorResyncState")) {
      this.violation({
        kind: "postBeforeResync",
        ref: session.key,
        detail: `${path} was sent after ReconnectSession but before ChasitorResyncState`,
      });
    }
    session.sequenceResetPending = false;
    session.lastPostSeq = sequence;
    session.postFingerprints.set(sequence, fingerprint);
    return true;
  }

  chasitorInit(session: ChatSession, body: Record<string, unknown>, idsMatch: boolean): void {
    if (session.init !== undefined) {
      this.violation({ kind: "secondChasitorInit", ref: session.key, detail: "ChasitorInit sent twice; ignored" });
      return;
    }
    session.init = structuredClone(body);
    session.receiveQueueUpdates = body.receiveQueueUpdates === true;
    session.state = "waiting";
    if (!idsMatch || !this.settings.agentsAvailable) {
      session.state = "ended";
      session.endReason = "requestFail";
      this.enqueue(session, "ChatRequestFail", { reason: "Unavailable", postChatUrl: "" }, true);
      return;
    }
    session.state = "queued";
    session.queuePosition = this.settings.initialQueuePosition;
    this.enqueue(session, "ChatRequestSuccess", {
      queuePosition: session.queuePosition,
      estimatedWaitTime: 60,
      connectionTimeout: 150_000,
      visitorId: uuid(),
      customDetails: [],
      geoLocation: { countryCode: "DE", countryName: "Germany", organization: "Fake ISP" },
      url: "",
      oref: "",
      postChatUrl: "",
      sensitiveDataRules: [],
      transcriptSaveEnabled: false,
    });
  }

  visitorMessage(session: ChatSession, textValue: string, sequence: number): void {
    session.transcript.push({ from: "visitor", text: textValue, requestSequence: sequence, at: Date.now() });
  }

  visitorEnd(session: ChatSession, reason: string): void {
    session.chatEndReason = reason;
    session.transcript.push({ from: "system", text: `visitor ended the chat (${reason})`, at: Date.now() });
    session.endReason = "visitor";
    this.kill(session, "visitor");
  }

  // ─── Omni-Channel and the agent ──────────────────────────────────────────────────────────────────────────────

  require(key: string): ChatSession {
    const session = this.sessionsByKey.get(key);
    if (!session) throw new Error(`unknown session ${key}`);
    if (session.dead || session.state === "ended") throw new Error(`session ${key} has ended`);
    return session;
  }

  queueUpdate(key: string, position: number, estimatedWaitTime: number | undefined): void {
    const session = this.require(key);
    if (session.state !== "queued") throw new Error(`session ${key} is not queued`);
    session.queuePosition = position;
    // Queue updates reach only a visitor that asked for them in ChasitorInit.
    if (!session.receiveQueueUpdates) return;
    this.enqueue(session, "QueueUpdate", {
      position,
      ...(estimatedWaitTime === undefined ? {} : { estimatedWaitTime }),
    });
  }

  requestFail(key: string, reason: string): void {
    const session = this.require(key);
    if (session.state !== "queued") throw new Error(`session ${key} is not queued`);
    session.state = "ended";
    session.endReason = "requestFail";
    this.enqueue(session, "ChatRequestFail", { reason, postChatUrl: "" }, true);
  }

  accept(key: string, agent: FakeAgent): void {
    const session = this.require(key);
    if (session.state !== "queued") throw new Error(`session ${key} is not queued`);
    session.state = "active";
    session.agent = agent;
    session.transcript.push({ from: "system", text: `${agent.name} accepted`, at: Date.now() });
    this.enqueue(session, "ChatEstablished", this.agentInfo(agent));
  }

  private agentInfo(agent: FakeAgent): Record<string, unknown> {
    return {
      name: agent.name,
      userId: agent.id,
      sneakPeekEnabled: false,
      chasitorIdleTimeout: { isEnabled: false, warningTime: 0, timeout: 0 },
    };
  }

  private active(key: string): ChatSession & { agent: FakeAgent } {
    const session = this.require(key);
    if (session.state !== "active" || !session.agent) throw new Error(`session ${key} has no agent`);
    return session as ChatSession & { agent: FakeAgent };
  }

  agentSend(key: string, message: string): void {
    const session = this.active(key);
    session.transcript.push({ from: "agent", text: message, at: Date.now() });
    this.enqueue(session, "ChatMessage", { name: session.agent.name, text: message, agentId: session.agent.id });
  }

  agentTyping(key: string, typing: boolean): void {
    const session = this.active(key);
    this.enqueue(session, typing ? "AgentTyping" : "AgentNotTyping", {});
  }

  transfer(key: string, to: FakeAgent): void {
    const session = this.active(key);
    session.agent = to;
    session.transcript.push({ from: "system", text: `transferred to ${to.name}`, at: Date.now() });
    this.enqueue(session, "ChatTransferred", this.agentInfo(to));
  }

  agentDisconnect(key: string): void {
    const session = this.active(key);
    this.enqueue(session, "AgentDisconnect", {});
  }

  agentEnd(key: string, reason: string): void {
    const session = this.active(key);
    session.state = "ended";
    session.endReason = "agent";
    session.transcript.push({ from: "system", text: `${session.agent.name} ended the chat`, at: Date.now() });
    this.enqueue(session, "ChatEnded", { reason, attachedRecords: [] }, true);
  }

  emit(key: string, type: string, message: Record<string, unknown>): void {
    this.enqueue(this.require(key), type, message);
  }

  view(session: ChatSession): ChatSessionView {
    return {
      id: session.id,
      key: session.key,
      affinityToken: session.affinity,
      state: session.state,
      endReason: session.endReason,
      init: session.init === undefined ? undefined : structuredClone(session.init),
      agent: session.agent ? { ...session.agent } : undefined,
      visitorTyping: session.visitorTyping,
      lastRequestSequence: session.lastPostSeq,
      droppedDuplicates: session.droppedDuplicates.map((d) => ({ ...d })),
      chatEndReason: session.chatEndReason,
    };
  }

  deliveredTo(key: string): ChatDelivery[] {
    const session = this.sessionsByKey.get(key);
    if (!session) throw new Error(`unknown session ${key}`);
    return structuredClone(session.deliveries);
  }

  agentViewOf(key: string): ChatAgentViewItem[] {
    const session = this.sessionsByKey.get(key);
    if (!session) throw new Error(`unknown session ${key}`);
    return session.transcript.map((t) => ({ ...t }));
  }

  shutdown(): void {
    this.closed = true;
    for (const session of this.sessionsByKey.values()) {
      if (session.idleTimer) clearTimeout(session.idleTimer);
      this.answerPoll(session, text(503, "Service Unavailable"));
    }
  }
}
