/** Which API a request belongs to: Messaging for In-App and Web, the legacy Chat REST API, or neither. */
export type SfApi = "messaging" | "chat" | "other";

/** Selects the requests a fault applies to: a path prefix or pattern (matched on the path, no query) and a method. */
export interface FaultMatch {
  path?: string | RegExp;
  method?: string;
}

/** One request as the fake received it, in arrival order. */
export interface SfRequestRecord {
  /** 1-based arrival number. */
  n: number;
  api: SfApi;
  method: string;
  path: string;
  /** The raw query string, without "?". */
  query: string;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body as UTF-8 text (multipart bodies included), cut at 64 KiB. */
  body: string;
  /** The status sent; undefined while pending (a held poll, an open stream); 0 when the connection ended without one. */
  status: number | undefined;
}

/**
 * Something the client did that the real service would mishandle or silently drop: a test of a correct adapter
 * expects none. Each kind is described in README.md.
 */
export interface SfViolation {
  api: "messaging" | "chat";
  kind:
    | "concurrentStreams"
    | "messageIdReused"
    | "concurrentPoll"
    | "pollWithoutAck"
    | "ackAhead"
    | "sequenceReused"
    | "sequenceGap"
    | "sequenceNotReset"
    | "postBeforeResync"
    | "reconnectOffset"
    | "secondChasitorInit";
  /** The MIAW subject or the Live Agent session key. */
  ref: string;
  detail: string;
  at: number;
}

/** An agent as the Service Console shows it. */
export interface FakeAgent {
  /** A User id ("005…"). */
  id: string;
  name: string;
}

export interface FakeMessagingOptions {
  /** The Embedded Service deployment's API name (`esDeveloperName`). Default "Liaison_Custom_Client". */
  deployment?: string;
  /**
   * The deployment's hidden pre-chat fields: the routing attributes Salesforce keeps (others are dropped, as
   * Salesforce drops unknown keys). Default `_firstName`, `_lastName`, `_email`, `_subject`.
   */
  preChatFields?: string[];
  /** Lifetime of an access token (its `exp` claim). Default 6 hours. */
  tokenTtlMs?: number;
  /** A `ping` event on every open stream this often. Default 5 000 ms. */
  pingIntervalMs?: number;
  /** Events older than this are no longer replayed after `Last-Event-Id`. Default 5 minutes. */
  replayWindowMs?: number;
  /** A stream without `Last-Event-Id` is refused with 400, as clients report. Default true. */
  requireLastEventId?: boolean;
  /** Largest file the file endpoint accepts (413 above). Default 5 MiB. */
  maxFileBytes?: number;
  /** MIME types the deployment allows for end-user files. Default: common images, PDF, plain text. */
  allowedFileTypes?: string[];
  /**
   * The answer to a message or file whose `message.id` is already an entry of the conversation: 202 with the
   * existing entry and nothing new ("accepted", the default), 409 ("conflict") or 400 ("badRequest"). Salesforce does
   * not document it; see README.md.
   */
  duplicateMessageId?: "accepted" | "conflict" | "badRequest";
  /** An end-user text with a URL is split: the text and a separate link entry, each echoed. Default true. */
  splitLinks?: boolean;
  /** The agent that accepts by default. Default "0055g00000AgEnT" / "Jane Doe". */
  agent?: FakeAgent;
}

export interface FakeChatOptions {
  /** The Chat deployment id ("572…"). Default "572000000000001". */
  deploymentId?: string;
  /** The chat button id ("573…"). Default "573000000000001". */
  buttonId?: string;
  /** `clientPollTimeout` in the SessionId answer, seconds. Default 40. */
  clientPollTimeoutSeconds?: number;
  /** How long a Messages poll is held open before 204. Default 3 000 ms (Salesforce holds about 30 s). */
  pollHoldMs?: number;
  /** A session without any request for this long expires (403 afterwards). Default clientPollTimeout + 10 s. */
  sessionIdleTimeoutMs?: number;
  /** Whether the button has an available agent when a chat is requested. Default true. */
  agentsAvailable?: boolean;
  /** `queuePosition` of ChatRequestSuccess. Default 1. */
  initialQueuePosition?: number;
  /**
   * What happens to a held poll whose client went away: "released" (the server notices at once, the default) or
   * "held" (a proxy keeps it open until its hold time ends, so a new poll in that window is a duplicate: 409).
   */
  abandonedPolls?: "released" | "held";
  /** The agent that accepts by default. Default "0055g00000AgEnT" / "Jane Doe". */
  agent?: FakeAgent;
}

export interface FakeSalesforceOptions {
  /** The org id, 15 or 18 characters. Default "00D5g000004XyZ1". */
  orgId?: string;
  messaging?: FakeMessagingOptions;
  chat?: FakeChatOptions;
}

// ─── Messaging for In-App and Web ────────────────────────────────────────────────────────────────────────────

export type MiawRole = "EndUser" | "Agent" | "Chatbot" | "System" | "Router" | "Supervisor";

/** A conversation entry as the entries endpoint lists it (`entryPayload` as an object). */
export interface MiawEntry {
  identifier: string;
  entryType: string;
  senderDisplayName: string;
  sender: { role: MiawRole; appType: string; subject: string; clientIdentifier: string };
  clientTimestamp: number;
  transcriptedTimestamp: number;
  relatedRecords: string[];
  entryPayload: Record<string, unknown>;
}

/** One event as written on the stream (and kept for replay). */
export interface MiawEvent {
  /** Numeric string, increasing per subject, not contiguous. */
  id: string;
  event: string;
  /** The `data` line: one JSON object. */
  data: string;
  conversationId: string | undefined;
  at: number;
}

/** What the agent saw in the Service Console for one conversation: end-user messages and files, once each. */
export interface MiawAgentViewItem {
  entryId: string;
  kind: "text" | "link" | "file";
  text?: string;
  file?: { id: string; name: string; mimeType: string; size: number; content: Buffer };
  at: number;
}

export interface MiawConversationView {
  conversationId: string;
  subject: string;
  esDeveloperName: string;
  /** The routing attributes Salesforce kept (the deployment's pre-chat fields). */
  routingAttributes: Record<string, string>;
  /** Keys the client sent that are not pre-chat fields of the deployment (Salesforce drops them). */
  droppedRoutingAttributes: string[];
  language: string | undefined;
  status: "Open" | "Closed";
  sessionStatus: "Waiting" | "Active" | "Ended";
  /** How many messaging sessions the conversation has had. */
  sessions: number;
  agent: FakeAgent | undefined;
  endUserTyping: boolean;
  createdAt: number;
}

export interface MiawStreamView {
  id: number;
  subject: string;
  /** The `Last-Event-Id` the stream was opened with. */
  lastEventId: string | undefined;
  /** Ids of the events written on it, replayed ones first. */
  delivered: string[];
  open: boolean;
  openedAt: number;
}

export interface MiawRouteOptions {
  /** Adds a CONVERSATION_QUEUE_POSITION event with this position. */
  queuePosition?: number;
  /** `estimatedWaitTime.estimatedWaitTimeInSeconds` (omitted: EWT not requested). */
  estimatedWaitSeconds?: number;
}

export interface FakeFile {
  name: string;
  mimeType: string;
  content: Buffer;
  /** Caption sent with the file. */
  text?: string;
}

/** Omni-Channel, the agent and the inspection hooks for Messaging for In-App and Web. */
export interface MessagingControl {
  /** The SCRT base URL: REST under `/iamessage/api/v2`, the stream at `/eventrouter/v1/sse`. */
  readonly url: string;
  readonly deployment: string;
  conversations(): MiawConversationView[];
  conversation(conversationId: string): MiawConversationView | undefined;
  /** Omni-Channel found a queue: ROUTING_RESULT (Initial, failureType None), and a queue position if given. */
  route(conversationId: string, options?: MiawRouteOptions): void;
  queuePosition(conversationId: string, position: number): void;
  /** Routing failed (no agent available): ROUTING_RESULT with a failure type (default "RoutingError"). */
  routingFailed(
    conversationId: string,
    options?: { failureType?: "Unknown" | "SubmissionError" | "RoutingError"; reason?: string },
  ): void;
  /** An agent accepts: PARTICIPANT_CHANGED add, then SESSION_STATUS_CHANGED Active. */
  accept(conversationId: string, agent?: FakeAgent): void;
  agentSend(conversationId: string, text: string): MiawEntry;
  agentTyping(conversationId: string, typing: boolean): void;
  agentSendFile(conversationId: string, file: FakeFile): MiawEntry;
  /** Transfer to another agent: ROUTING_RESULT (Transfer), PARTICIPANT_CHANGED remove, then add. */
  transfer(conversationId: string, to: FakeAgent): void;
  /** The agent ends the session: PARTICIPANT_CHANGED remove, SESSION_STATUS_CHANGED Ended (by Agent). */
  agentEnd(conversationId: string): void;
  /** Any event, e.g. of a type the adapter does not know; kept for replay like the others. Returns its id. */
  emit(conversationId: string, event: string, data?: Record<string, unknown>): string;
  /** Expires one token, or every token of a subject: 401 from then on, and their open streams end. */
  expireToken(tokenOrSubject: string): void;
  /** Ends the open streams (of one subject): "end" closes them cleanly, "destroy" resets the connection. */
  dropStreams(options?: { subject?: string; how?: "end" | "destroy" }): number;
  /** Forgets the events kept for replay (of one subject), as if the replay window had passed. */
  forgetEvents(subject?: string): void;
  streams(): MiawStreamView[];
  /** Every event of a subject still kept for replay, oldest first. */
  events(subject: string): MiawEvent[];
  /** Entries of a conversation, as the entries endpoint would list them, oldest first. */
  entries(conversationId: string): MiawEntry[];
  agentView(conversationId: string): MiawAgentViewItem[];
}

// ─── Legacy Chat REST API ────────────────────────────────────────────────────────────────────────────────────

/** One message of a Messages poll: `{type, message}`. */
export interface ChatPollMessage {
  type: string;
  message: Record<string, unknown>;
}

export interface ChatDelivery {
  /** The `sequence` of the 200 answer: the number of its last message. */
  sequence: number;
  offset: number;
  messages: ChatPollMessage[];
}

export interface ChatAgentViewItem {
  from: "visitor" | "agent" | "system";
  text: string;
  /** The X-LIVEAGENT-SEQUENCE of the visitor's POST. */
  requestSequence?: number;
  at: number;
}

export interface ChatSessionView {
  id: string;
  key: string;
  affinityToken: string;
  state: "new" | "waiting" | "queued" | "active" | "ended";
  /** Why the session ended: "visitor", "agent", "requestFail", "duplicatePoll", "expired", "deleted". */
  endReason: string | undefined;
  /** The ChasitorInit body as received. */
  init: Record<string, unknown> | undefined;
  agent: FakeAgent | undefined;
  visitorTyping: boolean;
  /** The last X-LIVEAGENT-SEQUENCE accepted. */
  lastRequestSequence: number | undefined;
  /** POSTs dropped as duplicates (same or lower sequence), with their path and sequence. */
  droppedDuplicates: { path: string; sequence: number }[];
  /** The ChatEnd reason, when the visitor ended. */
  chatEndReason: string | undefined;
}

/** The agent, Omni-Channel and the inspection hooks for the legacy Chat REST API. */
export interface ChatControl {
  /** The Chat API endpoint: `${url}/chat/rest`. */
  readonly url: string;
  readonly deploymentId: string;
  readonly buttonId: string;
  sessions(): ChatSessionView[];
  session(key: string): ChatSessionView | undefined;
  /** The most recent session, the usual target in a test. */
  lastSession(): ChatSessionView | undefined;
  /** Whether a new chat request finds an agent (ChatRequestSuccess) or not (ChatRequestFail "Unavailable"). */
  setAvailable(available: boolean): void;
  queueUpdate(key: string, position: number, estimatedWaitTime?: number): void;
  /** The chat request fails after it was queued (ChatRequestFail). */
  requestFail(key: string, reason?: string): void;
  accept(key: string, agent?: FakeAgent): void;
  agentSend(key: string, text: string): void;
  agentTyping(key: string, typing: boolean): void;
  transfer(key: string, to: FakeAgent): void;
  agentDisconnect(key: string): void;
  /** The agent ends the chat: ChatEnded; once delivered, the session is gone (403). */
  agentEnd(key: string, reason?: string): void;
  /** Any message type, e.g. one the adapter does not know. */
  emit(key: string, type: string, message?: Record<string, unknown>): void;
  /** The server hands the session over: the held poll and every request with the old affinity answer 503. */
  changeAffinity(key: string): void;
  /** The session times out on the server: 403 from then on. */
  expireSession(key: string): void;
  agentView(key: string): ChatAgentViewItem[];
  /** Every 200 answer of Messages, in order. */
  delivered(key: string): ChatDelivery[];
}

/** A running fake Salesforce serving both APIs on one port. */
export interface FakeSalesforce {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  /** The 15-character org id (what `X-Org-Id` and ChasitorInit expect). */
  readonly orgId: string;
  /** The 18-character form (also accepted by the token request). */
  readonly orgId18: string;
  readonly messaging: MessagingControl;
  readonly chat: ChatControl;
  /** Every request received, in arrival order, with headers and body. */
  readonly requests: readonly SfRequestRecord[];
  /** What clients did that the real service mishandles; a correct adapter causes none. */
  readonly violations: readonly SfViolation[];
  /** The next `count` matching requests answer `status` (429 and 503 with `Retry-After` when given). */
  failNext(count: number, status: number, options?: FaultMatch & { retryAfterSeconds?: number }): void;
  /** Every matching request answers `status` for `ms` milliseconds. */
  failFor(ms: number, status: number, options?: FaultMatch & { retryAfterSeconds?: number }): void;
  /** The next `count` matching requests are never answered (until the client gives up or the fake closes). */
  hangNext(count: number, options?: FaultMatch): void;
  /**
   * The next `count` matching requests lose their connection: "before" the fake processes them, or "after" (the
   * request took effect but the client never hears so; what provokes a retry of something already done).
   */
  dropNext(count: number, options?: FaultMatch & { when?: "before" | "after" }): void;
  /** "503" answers everything 503, "reset" destroys every connection, "refused" stops listening (ECONNREFUSED). */
  goDown(mode: "503" | "reset" | "refused"): Promise<void>;
  comeUp(): Promise<void>;
  /** Stops the server, every timer, held poll and stream. */
  close(): Promise<void>;
}
