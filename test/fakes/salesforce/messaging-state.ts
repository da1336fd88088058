import type { ServerResponse } from "node:http";
import { recordId, signAccessToken, uuid, verifyAccessToken, randomKey, type AccessTokenClaims } from "./ids.js";
import type {
  FakeAgent,
  FakeFile,
  MiawAgentViewItem,
  MiawConversationView,
  MiawEntry,
  MiawEvent,
  MiawRole,
  MiawRouteOptions,
  MiawStreamView,
  SfViolation,
} from "./types.js";

export interface MessagingSettings {
  orgId15: string;
  orgId18: string;
  deployment: string;
  preChatFields: string[];
  tokenTtlMs: number;
  pingIntervalMs: number;
  replayWindowMs: number;
  requireLastEventId: boolean;
  maxFileBytes: number;
  allowedFileTypes: string[];
  duplicateMessageId: "accepted" | "conflict" | "badRequest";
  splitLinks: boolean;
  agent: FakeAgent;
  baseUrl: () => string;
}

export interface TokenRecord {
  token: string;
  claims: AccessTokenClaims;
  expired: boolean;
}

interface StoredEvent extends MiawEvent {
  n: number;
}

interface Stream {
  id: number;
  subject: string;
  token: string;
  res: ServerResponse;
  lastEventId: string | undefined;
  delivered: string[];
  open: boolean;
  openedAt: number;
  ping: NodeJS.Timeout;
}

interface MessageRecord {
  /** What the first request carried, to notice an id reused for different content. */
  fingerprint: string;
  entry: { id: string; clientTimestamp: number };
}

export interface StoredFile {
  id: string;
  name: string;
  mimeType: string;
  content: Buffer;
}

interface Conversation {
  id: string;
  subject: string;
  esDeveloperName: string;
  routingAttributes: Record<string, string>;
  droppedRoutingAttributes: string[];
  language: string | undefined;
  status: "Open" | "Closed";
  sessionStatus: "Waiting" | "Active" | "Ended";
  sessions: number;
  agent: FakeAgent | undefined;
  endUserTyping: boolean;
  createdAt: number;
  entries: MiawEntry[];
  messages: Map<string, MessageRecord>;
  agentView: MiawAgentViewItem[];
  workRecordId: string;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/i;
/** The entry types kept in the transcript (listed by the entries endpoint); typing and queue updates are not. */
const TRANSCRIPT_TYPES = new Set(["Message", "ParticipantChanged", "RoutingResult", "SessionStatusChanged"]);

/** Strictly increasing milliseconds, so that entries of one millisecond keep their order. */
class MonoClock {
  private last = 0;

  now(): number {
    const now = Date.now();
    this.last = now > this.last ? now : this.last + 1;
    return this.last;
  }
}

/** Everything Salesforce keeps for Messaging for In-App and Web: tokens, conversations, entries, events, streams. */
export class MessagingState {
  private readonly key = randomKey();
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly conversationsById = new Map<string, Conversation>();
  private readonly eventsBySubject = new Map<string, StoredEvent[]>();
  private readonly streamsById = new Map<number, Stream>();
  readonly files = new Map<string, StoredFile>();
  private readonly clock = new MonoClock();
  /** Event ids are one counter for the whole fake: increasing per subject, never contiguous across subjects. */
  private eventCounter = 4_829_000 + Math.floor(Math.random() * 1000);
  private streamCounter = 0;
  private recordCounter = 0;
  readonly channelAddressIdentifier: string;

  constructor(
    readonly settings: MessagingSettings,
    private readonly violation: (v: Omit<SfViolation, "api" | "at">) => void,
  ) {
    this.channelAddressIdentifier = recordId("0Mj", 1);
  }

  // ─── tokens ──────────────────────────────────────────────────────────────────────────────────────────────────

  issueToken(subject: string | undefined, exp?: number): { record: TokenRecord; lastEventId: string } {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const claims: AccessTokenClaims = {
      sub: subject ?? `v2/iamessage/ANON/${uuid()}`,
      exp: exp ?? nowSeconds + Math.ceil(this.settings.tokenTtlMs / 1000),
      iat: nowSeconds,
      orgId: this.settings.orgId15,
      esDeveloperName: this.settings.deployment,
      clientId: uuid(),
    };
    const token = signAccessToken(claims, this.key);
    const record = { token, claims, expired: false };
    this.tokens.set(token, record);
    if (!this.eventsBySubject.has(claims.sub)) this.eventsBySubject.set(claims.sub, []);
    return { record, lastEventId: String(this.eventCounter) };
  }

  /** The live token record for a bearer, or undefined (unknown, forged or expired: 401). */
  authenticate(bearer: string): TokenRecord | undefined {
    const record = this.tokens.get(bearer);
    if (!record || verifyAccessToken(bearer, this.key) === undefined) return undefined;
    if (record.expired || record.claims.exp * 1000 <= Date.now()) return undefined;
    return record;
  }

  expireToken(tokenOrSubject: string): void {
    let found = false;
    for (const record of this.tokens.values()) {
      if (record.token === tokenOrSubject || record.claims.sub === tokenOrSubject) {
        record.expired = true;
        found = true;
      }
    }
    if (!found) throw new Error(`unknown token or subject ${tokenOrSubject}`);
    // An expired token's stream is cut: nothing more is sent on it.
    for (const stream of this.streamsById.values()) {
      const record = this.tokens.get(stream.token);
      if (stream.open && record?.expired) this.endStream(stream, "end");
    }
  }

  // ─── conversations ───────────────────────────────────────────────────────────────────────────────────────────

  conversation(id: string): Conversation | undefined {
    return this.conversationsById.get(id);
  }

  subjectConversations(subject: string): Conversation[] {
    return [...this.conversationsById.values()].filter((c) => c.subject === subject);
  }

  createConversation(
    subject: string,
    id: string,
    attributes: Record<string, string>,
    language: string | undefined,
  ): Conversation {
    const { kept, dropped } = this.filterAttributes(attributes);
    const conversation: Conversation = {
      id,
      subject,
      esDeveloperName: this.settings.deployment,
      routingAttributes: kept,
      droppedRoutingAttributes: dropped,
      language,
      status: "Open",
      sessionStatus: "Waiting",
      sessions: 1,
      agent: undefined,
      endUserTyping: false,
      createdAt: Date.now(),
      entries: [],
      messages: new Map(),
      agentView: [],
      workRecordId: recordId("0Mw", (this.recordCounter += 1)),
    };
    this.conversationsById.set(id, conversation);
    return conversation;
  }

  /** Salesforce keeps only the deployment's pre-chat fields. */
  filterAttributes(attributes: Record<string, string>): { kept: Record<string, string>; dropped: string[] } {
    const kept: Record<string, string> = {};
    const dropped: string[] = [];
    for (const [key, value] of Object.entries(attributes)) {
      if (this.settings.preChatFields.includes(key)) kept[key] = value;
      else dropped.push(key);
    }
    return { kept, dropped };
  }

  /** A new messaging session on a conversation whose last one ended (`isNewMessagingSession`). */
  startSession(conversation: Conversation, attributes: Record<string, string>, language: string | undefined): void {
    const { kept, dropped } = this.filterAttributes(attributes);
    conversation.routingAttributes = kept;
    conversation.droppedRoutingAttributes = dropped;
    conversation.language = language;
    conversation.sessions += 1;
    conversation.sessionStatus = "Waiting";
    conversation.agent = undefined;
    conversation.workRecordId = recordId("0Mw", (this.recordCounter += 1));
  }

  /** An end-user message: echoed, recorded once per id. Undefined when the id already exists (nothing new). */
  endUserMessage(
    conversation: Conversation,
    id: string,
    text: string,
  ): { entry: { id: string; clientTimestamp: number }; duplicate: boolean } {
    const fingerprint = JSON.stringify({ kind: "text", text });
    const existing = this.existingMessage(conversation, id, fingerprint);
    if (existing) return { entry: existing, duplicate: true };
    const entry = this.entry(conversation, "EndUser", "Message", id, {
      abstractMessage: {
        messageType: "StaticContentMessage",
        id,
        staticContent: { formatType: "Text", text },
      },
      messageReason: null,
    });
    conversation.messages.set(id, { fingerprint, entry: { id, clientTimestamp: entry.clientTimestamp } });
    this.record(conversation, "CONVERSATION_MESSAGE", entry);
    conversation.agentView.push({ entryId: id, kind: "text", text, at: entry.transcriptedTimestamp });
    const link = this.settings.splitLinks ? URL_RE.exec(text)?.[0] : undefined;
    if (link !== undefined) {
      // The link preview is an entry of its own, with an id Salesforce chooses, echoed like the text.
      const linkId = uuid();
      const preview = this.entry(conversation, "EndUser", "Message", linkId, {
        abstractMessage: {
          messageType: "StaticContentMessage",
          id: linkId,
          staticContent: { formatType: "RichLink", linkItem: { url: link, titleItem: { title: link } } },
        },
        messageReason: null,
      });
      this.record(conversation, "CONVERSATION_MESSAGE", preview);
      conversation.agentView.push({ entryId: linkId, kind: "link", text: link, at: preview.transcriptedTimestamp });
    }
    return { entry: { id, clientTimestamp: entry.clientTimestamp }, duplicate: false };
  }

  endUserFile(
    conversation: Conversation,
    id: string,
    fileId: string,
    file: { name: string; mimeType: string; content: Buffer },
    caption: string | undefined,
  ): { entry: { id: string; clientTimestamp: number }; duplicate: boolean } {
    const fingerprint = JSON.stringify({ kind: "file", fileId, name: file.name, size: file.content.length, caption });
    const existing = this.existingMessage(conversation, id, fingerprint);
    if (existing) return { entry: existing, duplicate: true };
    this.files.set(fileId, { id: fileId, ...file, content: Buffer.from(file.content) });
    const entry = this.entry(conversation, "EndUser", "Message", id, {
      abstractMessage: {
        messageType: "StaticContentMessage",
        id,
        staticContent: {
          formatType: "Attachments",
          ...(caption === undefined ? {} : { text: caption }),
          attachments: [{ id: fileId, name: file.name, mimeType: file.mimeType, url: this.fileUrl(fileId) }],
        },
      },
      messageReason: null,
    });
    conversation.messages.set(id, { fingerprint, entry: { id, clientTimestamp: entry.clientTimestamp } });
    this.record(conversation, "CONVERSATION_MESSAGE", entry);
    conversation.agentView.push({
      entryId: id,
      kind: "file",
      ...(caption === undefined ? {} : { text: caption }),
      file: { id: fileId, name: file.name, mimeType: file.mimeType, size: file.content.length, content: file.content },
      at: entry.transcriptedTimestamp,
    });
    return { entry: { id, clientTimestamp: entry.clientTimestamp }, duplicate: false };
  }

  private existingMessage(
    conversation: Conversation,
    id: string,
    fingerprint: string,
  ): { id: string; clientTimestamp: number } | undefined {
    const existing = conversation.messages.get(id);
    if (!existing) return undefined;
    if (existing.fingerprint !== fingerprint) {
      this.violation({
        kind: "messageIdReused",
        ref: conversation.subject,
        detail: `message id ${id} was sent again with different content; Salesforce keeps the first`,
      });
    }
    return existing.entry;
  }

  endUserTyping(conversation: Conversation, id: string, typing: boolean): void {
    conversation.endUserTyping = typing;
    const type = typing ? "TypingStartedIndicator" : "TypingStoppedIndicator";
    const entry = this.entry(conversation, "EndUser", type, id, {});
    this.record(
      conversation,
      typing ? "CONVERSATION_TYPING_STARTED_INDICATOR" : "CONVERSATION_TYPING_STOPPED_INDICATOR",
      entry,
    );
  }

  /** The end user closes the conversation (DELETE): the session ends, then the conversation closes. */
  close(conversation: Conversation): void {
    if (conversation.sessionStatus !== "Ended") this.endSession(conversation, "EndUser");
    conversation.status = "Closed";
    const entry = this.entry(conversation, "EndUser", "CloseConversation", uuid(), {});
    this.record(conversation, "CONVERSATION_CLOSE_CONVERSATION", entry);
  }

  endSession(conversation: Conversation, by: "Agent" | "EndUser" | "System"): void {
    if (conversation.agent) {
      this.participant(conversation, "remove", conversation.agent);
      conversation.agent = undefined;
    }
    conversation.sessionStatus = "Ended";
    this.sessionStatus(conversation, "Ended", by);
  }

  // ─── Omni-Channel and the agent ──────────────────────────────────────────────────────────────────────────────

  private open(conversationId: string): Conversation {
    const conversation = this.conversationsById.get(conversationId);
    if (!conversation) throw new Error(`unknown conversation ${conversationId}`);
    if (conversation.status === "Closed") throw new Error(`conversation ${conversationId} is closed`);
    return conversation;
  }

  private inSession(conversationId: string): Conversation {
    const conversation = this.open(conversationId);
    if (conversation.sessionStatus === "Ended") throw new Error(`conversation ${conversationId} has no session`);
    return conversation;
  }

  private withAgent(conversationId: string): Conversation & { agent: FakeAgent } {
    const conversation = this.inSession(conversationId);
    if (!conversation.agent) throw new Error(`no agent has accepted conversation ${conversationId}`);
    return conversation as Conversation & { agent: FakeAgent };
  }

  route(conversationId: string, options: MiawRouteOptions = {}): void {
    const conversation = this.inSession(conversationId);
    this.routingResult(conversation, "Initial", "None", undefined, options.estimatedWaitSeconds);
    if (options.queuePosition !== undefined) this.queuePosition(conversationId, options.queuePosition);
  }

  queuePosition(conversationId: string, position: number): void {
    const conversation = this.inSession(conversationId);
    // Queue positions are not conversation entries: the payload sits at the top level of the data.
    this.publish(conversation.subject, "CONVERSATION_QUEUE_POSITION", conversation.id, {
      conversationId: conversation.id,
      queuePosition: { position },
    });
  }

  routingFailed(
    conversationId: string,
    failureType: "Unknown" | "SubmissionError" | "RoutingError",
    reason: string,
  ): void {
    const conversation = this.inSession(conversationId);
    this.routingResult(conversation, "Initial", failureType, reason, undefined);
  }

  accept(conversationId: string, agent: FakeAgent): void {
    const conversation = this.inSession(conversationId);
    if (conversation.agent)
      throw new Error(`conversation ${conversationId} already has agent ${conversation.agent.id}`);
    conversation.agent = agent;
    this.participant(conversation, "add", agent);
    conversation.sessionStatus = "Active";
    this.sessionStatus(conversation, "Active", undefined);
  }

  agentSend(conversationId: string, text: string): MiawEntry {
    const conversation = this.withAgent(conversationId);
    const id = uuid();
    const entry = this.entry(conversation, "Agent", "Message", id, {
      abstractMessage: { messageType: "StaticContentMessage", id, staticContent: { formatType: "Text", text } },
      messageReason: null,
    });
    this.record(conversation, "CONVERSATION_MESSAGE", entry);
    return structuredClone(entry);
  }

  agentSendFile(conversationId: string, file: FakeFile): MiawEntry {
    const conversation = this.withAgent(conversationId);
    const id = uuid();
    const fileId = uuid();
    this.files.set(fileId, {
      id: fileId,
      name: file.name,
      mimeType: file.mimeType,
      content: Buffer.from(file.content),
    });
    const entry = this.entry(conversation, "Agent", "Message", id, {
      abstractMessage: {
        messageType: "StaticContentMessage",
        id,
        staticContent: {
          formatType: "Attachments",
          ...(file.text === undefined ? {} : { text: file.text }),
          attachments: [{ id: fileId, name: file.name, mimeType: file.mimeType, url: this.fileUrl(fileId) }],
        },
      },
      messageReason: null,
    });
    this.record(conversation, "CONVERSATION_MESSAGE", entry);
    return structuredClone(entry);
  }

  agentTyping(conversationId: string, typing: boolean): void {
    const conversation = this.withAgent(conversationId);
    const type = typing ? "TypingStartedIndicator" : "TypingStoppedIndicator";
    const entry = this.entry(conversation, "Agent", type, uuid(), {});
    this.record(
      conversation,
      typing ? "CONVERSATION_TYPING_STARTED_INDICATOR" : "CONVERSATION_TYPING_STOPPED_INDICATOR",
      entry,
    );
  }

  transfer(conversationId: string, to: FakeAgent): void {
    const conversation = this.withAgent(conversationId);
    this.routingResult(conversation, "Transfer", "None", undefined, undefined);
    this.participant(conversation, "remove", conversation.agent);
    conversation.agent = to;
    this.participant(conversation, "add", to);
  }

  agentEnd(conversationId: string): void {
    const conversation = this.withAgent(conversationId);
    this.endSession(conversation, "Agent");
  }

  emit(conversationId: string, event: string, data: Record<string, unknown> | undefined): string {
    const conversation = this.conversationsById.get(conversationId);
    if (!conversation) throw new Error(`unknown conversation ${conversationId}`);
    return this.publish(conversation.subject, event, conversation.id, data ?? { conversationId: conversation.id });
  }

  // ─── entries and events ──────────────────────────────────────────────────────────────────────────────────────

  private entry(
    conversation: Conversation,
    role: MiawRole,
    entryType: string,
    identifier: string,
    payload: Record<string, unknown>,
  ): MiawEntry {
    const now = this.clock.now();
    const agent = role === "Agent" ? conversation.agent : undefined;
    return {
      identifier,
      entryType,
      senderDisplayName: agent?.name ?? (role === "EndUser" ? "Guest" : "Automated Process"),
      sender: {
        role,
        appType: role === "EndUser" ? "iamessage" : role === "Agent" ? "agent" : "chatbot",
        subject: agent?.id ?? (role === "EndUser" ? conversation.subject : recordId("005", 0)),
        clientIdentifier: "",
      },
      clientTimestamp: now,
      transcriptedTimestamp: now,
      relatedRecords: [conversation.workRecordId],
      entryPayload: { entryType, id: identifier, ...payload },
    };
  }

  private routingResult(
    conversation: Conversation,
    routingType: "Initial" | "Transfer",
    failureType: string,
    failureReason: string | undefined,
    estimatedWaitSeconds: number | undefined,
  ): void {
    const entry = this.entry(conversation, "Router", "RoutingResult", uuid(), {
      routingType,
      failureType,
      ...(failureReason === undefined ? {} : { failureReason }),
      estimatedWaitTime: {
        isEWTRequested: estimatedWaitSeconds !== undefined,
        estimatedWaitTimeInSeconds: estimatedWaitSeconds ?? -1,
      },
      recordId: conversation.workRecordId,
    });
    this.record(conversation, "CONVERSATION_ROUTING_RESULT", entry);
  }

  private participant(conversation: Conversation, operation: "add" | "remove", agent: FakeAgent): void {
    const entry = this.entry(conversation, "System", "ParticipantChanged", uuid(), {
      entries: [
        {
          operation,
          displayName: agent.name,
          participant: { role: "Agent", appType: "agent", subject: agent.id, clientIdentifier: "" },
        },
      ],
    });
    this.record(conversation, "CONVERSATION_PARTICIPANT_CHANGED", entry);
  }

  private sessionStatus(
    conversation: Conversation,
    status: "Waiting" | "Active" | "Ended",
    endedBy: string | undefined,
  ): void {
    const entry = this.entry(conversation, "System", "SessionStatusChanged", uuid(), {
      sessionStatus: status,
      ...(endedBy === undefined ? {} : { sessionEndedByRole: endedBy }),
    });
    this.record(conversation, "CONVERSATION_SESSION_STATUS_CHANGED", entry);
  }

  /** Keeps a transcript entry (when it is one) and sends it on the subject's streams. */
  private record(conversation: Conversation, event: string, entry: MiawEntry): void {
    if (TRANSCRIPT_TYPES.has(entry.entryType)) conversation.entries.push(entry);
    this.publish(conversation.subject, event, conversation.id, {
      channelPlatformKey: conversation.subject,
      channelType: "embedded_messaging",
      channelAddressIdentifier: this.channelAddressIdentifier,
      conversationId: conversation.id,
      // The payload travels as a JSON string inside the JSON, as on the real stream.
      conversationEntry: { ...entry, entryPayload: JSON.stringify(entry.entryPayload) },
    });
  }

  private publish(subject: string, event: string, conversationId: string | undefined, data: unknown): string {
    const n = (this.eventCounter += 1 + Math.floor(Math.random() * 3));
    const stored: StoredEvent = { n, id: String(n), event, data: JSON.stringify(data), conversationId, at: Date.now() };
    let list = this.eventsBySubject.get(subject);
    if (!list) {
      list = [];
      this.eventsBySubject.set(subject, list);
    }
    list.push(stored);
    for (const stream of this.streamsById.values()) {
      if (stream.open && stream.subject === subject) this.writeEvent(stream, stored);
    }
    return stored.id;
  }

  private fileUrl(fileId: string): string {
    return `${this.settings.baseUrl()}/fake-files/${fileId}`;
  }

  entriesOf(conversation: Conversation): MiawEntry[] {
    return structuredClone(conversation.entries);
  }

  // ─── streams ─────────────────────────────────────────────────────────────────────────────────────────────────

  openStream(res: ServerResponse, token: TokenRecord, lastEventId: string | undefined): void {
    const subject = token.claims.sub;
    const others = [...this.streamsById.values()].filter((s) => s.open && s.subject === subject);
    if (others.length > 0) {
      this.violation({
        kind: "concurrentStreams",
        ref: subject,
        detail: `a stream opened while ${others.length} other stream(s) of the subject were open; each gets every event`,
      });
    }
    res.writeHead(200, {
      "Content-Type": "text/event-stream;charset=UTF-8",
      "Cache-Control": "no-cache",
      Connection: "keep-alive",
    });
    res.flushHeaders();
    const id = (this.streamCounter += 1);
    const stream: Stream = {
      id,
      subject,
      token: token.token,
      res,
      lastEventId,
      delivered: [],
      open: true,
      openedAt: Date.now(),
      ping: setInterval(() => {
        if (stream.open) res.write("event: ping\ndata: 0\n\n");
      }, this.settings.pingIntervalMs),
    };
    this.streamsById.set(id, stream);
    // The stream ends when its token expires: nothing is sent on an expired token.
    const untilExpiry = token.claims.exp * 1000 - Date.now();
    const expiry = untilExpiry < 2 ** 31 - 1 ? setTimeout(() => this.endStream(stream, "end"), untilExpiry) : undefined;
    res.on("close", () => {
      stream.open = false;
      clearInterval(stream.ping);
      clearTimeout(expiry);
    });
    if (lastEventId !== undefined) {
      const after = Number(lastEventId);
      const horizon = Date.now() - this.settings.replayWindowMs;
      for (const event of this.eventsBySubject.get(subject) ?? []) {
        if (event.n > after && event.at >= horizon) this.writeEvent(stream, event);
      }
    }
  }

  private writeEvent(stream: Stream, event: StoredEvent): void {
    stream.delivered.push(event.id);
    stream.res.write(`id: ${event.id}\nevent: ${event.event}\ndata: ${event.data}\n\n`);
  }

  private endStream(stream: Stream, how: "end" | "destroy"): void {
    if (!stream.open) return;
    stream.open = false;
    clearInterval(stream.ping);
    if (how === "end") stream.res.end();
    else stream.res.destroy();
  }

  dropStreams(subject: string | undefined, how: "end" | "destroy"): number {
    let count = 0;
    for (const stream of this.streamsById.values()) {
      if (stream.open && (subject === undefined || stream.subject === subject)) {
        this.endStream(stream, how);
        count += 1;
      }
    }
    return count;
  }

  forgetEvents(subject: string | undefined): void {
    for (const [key, list] of this.eventsBySubject) {
      if (subject === undefined || key === subject) list.length = 0;
    }
  }

  events(subject: string): MiawEvent[] {
    return (this.eventsBySubject.get(subject) ?? []).map(({ n: _n, ...event }) => ({ ...event }));
  }

  streams(): MiawStreamView[] {
    return [...this.streamsById.values()].map((s) => ({
      id: s.id,
      subject: s.subject,
      lastEventId: s.lastEventId,
      delivered: [...s.delivered],
      open: s.open,
      openedAt: s.openedAt,
    }));
  }

  view(conversation: Conversation): MiawConversationView {
    return {
      conversationId: conversation.id,
      subject: conversation.subject,
      esDeveloperName: conversation.esDeveloperName,
      routingAttributes: { ...conversation.routingAttributes },
      droppedRoutingAttributes: [...conversation.droppedRoutingAttributes],
      language: conversation.language,
      status: conversation.status,
      sessionStatus: conversation.sessionStatus,
      sessions: conversation.sessions,
      agent: conversation.agent ? { ...conversation.agent } : undefined,
      endUserTyping: conversation.endUserTyping,
      createdAt: conversation.createdAt,
    };
  }

  allConversations(): Conversation[] {
    return [...this.conversationsById.values()];
  }

  agentView(conversationId: string): MiawAgentViewItem[] {
    const conversation = this.conversationsById.get(conversationId);
    if (!conversation) throw new Error(`unknown conversation ${conversationId}`);
    return conversation.agentView.map((item) => ({
      ...item,
      ...(item.file ? { file: { ...item.file, content: Buffer.from(item.file.content) } } : {}),
    }));
  }

  shutdown(): void {
    for (const stream of this.streamsById.values()) {
      if (stream.open) this.endStream(stream, "destroy");
    }
  }
}

export type { Conversation };
