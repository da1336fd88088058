import type { LcErrorType } from "./errors.js";

/** Who may see an event: everyone in the chat, or agents only (customer views never contain `agents` events). */
export type Visibility = "all" | "agents";
export type AgentStatus = "accepting_chats" | "not_accepting_chats" | "offline";
export type GroupStatus = "online" | "online_for_queue" | "offline";
export type Routing = "auto" | "manual";

export interface AgentInit {
  /** Agent ids are the agents' login e-mails in LiveChat. */
  id: string;
  name: string;
  avatar?: string;
  jobTitle?: string;
  /** Groups besides group 0, which every agent is in. */
  groups?: number[];
  status?: AgentStatus;
  /** Concurrent chats auto routing gives the agent (LiveChat's per-agent chat limit). */
  maxChats?: number;
}

export interface GroupInit {
  id: number;
  name: string;
}

/** An agent's OAuth access token (the `agent_token` grant refuses personal access tokens, which are Basic). */
export interface AgentTokenInit {
  token: string;
  agentId: string;
  /** Default: `customers:own`. */
  scopes?: string[];
}

export type PropertyType = "string" | "int" | "bool";

export type WebhookAction =
  | "incoming_chat"
  | "chat_deactivated"
  | "chat_transferred"
  | "user_added_to_chat"
  | "user_removed_from_chat"
  | "incoming_event"
  | "event_deleted"
  | "customer_session_fields_updated"
  | "events_marked_as_seen";

export type WebhookSourceType = "my_client" | "other_clients" | "system";

/** Register Webhook's `filters` (Configuration API). */
export interface WebhookFilters {
  /** Only `incoming_event` (and `event_updated`) accept it. */
  author_type?: "customer" | "agent";
  only_my_chats?: boolean;
  source_type?: WebhookSourceType[];
  chat_presence?: { user_ids?: { values?: string[]; exclude_values?: string[] } };
}

/** A `license` webhook of the fake's application (its Client ID), as Register Webhook takes it. */
export interface WebhookRegistration {
  action: WebhookAction;
  url: string;
  secret_key: string;
  filters?: WebhookFilters;
  additional_data?: ("chat_properties" | "chat_presence_user_ids")[];
  /** Default: the fake's Client ID. A webhook of another application sees our chats as `other_clients`. */
  owner_client_id?: string;
  description?: string;
}

export interface FakeLiveChatOptions {
  organizationId?: string;
  licenseId?: number;
  /** The Client ID of Liaison's LiveChat app (32 hex characters). */
  clientId?: string;
  /** The data-centre prefix of issued tokens (`dal:…`). */
  region?: "dal" | "fra";
  /** Default: group 0 "General". Group 0 always exists: it holds every agent. */
  groups?: GroupInit[];
  /** Default: one agent, `anna@example.org` "Anna Smith", accepting chats. */
  agents?: AgentInit[];
  /** Default: one OAuth token (`agentToken` on the fake) for the first agent with `customers:own`. */
  agentTokens?: AgentTokenInit[];
  /** `auto` (LiveChat's default): the router assigns queued chats to agents with room. `manual`: chats wait in the queue. */
  routing?: Routing;
  /** Lifetime of customer tokens when the grant does not ask for one; LiveChat's default is 28800 (8 h). */
  customerTokenTtlSeconds?: number;
  /** Properties the license defines, `{ namespace: { name: type } }`; others are refused like the real API does. */
  properties?: Record<string, Record<string, PropertyType>>;
  /** Wait time reported per queue position, in seconds. */
  queueWaitSecondsPerPosition?: number;
  rtm?: {
    /** LiveChat closes a socket that has not logged in within 30 s. */
    loginTimeoutMs?: number;
    /** LiveChat closes a logged-in socket after about 30 s without a ping. */
    pingTimeoutMs?: number;
  };
  webhooks?: WebhookRegistration[];
  /** LiveChat waits about 10 s for the answer. */
  webhookTimeoutMs?: number;
  /** Delays before the retries; LiveChat retries up to 3 times within about a minute. */
  webhookRetryDelaysMs?: number[];
  /** Calls allowed per customer and action within `windowMs` (LiveChat publishes no figures); default: no limit. */
  rateLimit?: RateLimit | false;
  /** Unused uploads expire after 24 h. */
  uploadTtlMs?: number;
}

export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** An event as the customer API shows it. */
export type LcEvent = Record<string, unknown> & {
  id: string;
  type: string;
  created_at: string;
  author_id?: string;
  custom_id?: string;
};

/** An event as the agent app and webhooks show it (Agent Chat API data structure: `visibility`, not `recipients`). */
export type LcAgentEvent = Record<string, unknown> & {
  id: string;
  type: string;
  created_at: string;
  visibility: Visibility;
  author_id?: string;
  custom_id?: string;
};

export interface LcQueue {
  position: number;
  wait_time: number;
  queued_at: string;
}

export interface LcThread {
  id: string;
  created_at: string;
  active: boolean;
  user_ids: string[];
  events: LcEvent[];
  properties: Record<string, Record<string, unknown>>;
  access: { group_ids: number[] };
  queue?: LcQueue;
  previous_thread_id?: string;
  next_thread_id?: string;
}

export interface LcUser {
  id: string;
  type: "customer" | "agent";
  present: boolean;
  name?: string;
  [key: string]: unknown;
}

export interface LcChat {
  id: string;
  thread: LcThread;
  users: LcUser[];
  access: { group_ids: number[] };
  properties: Record<string, Record<string, unknown>>;
}

/** A customer token as the accounts server answers it. */
export interface CustomerToken {
  access_token: string;
  client_id: string;
  entity_id: string;
  expires_in: number;
  token_type: "Bearer";
  organization_id: string;
}

/** One Customer Chat API request, Web or RTM, in arrival order. */
export interface ApiCallRecord {
  seq: number;
  transport: "web" | "rtm";
  action: string;
  /** The parsed body (Web) or frame payload (RTM); for `upload_file`, the file's name, type and size. */
  payload: unknown;
  /** The customer whose token was valid, when it was. */
  entityId?: string;
  connectionId?: number;
  requestId?: string;
  /** `ok`, an error type, `lost` (done, answer never sent) or `hung` (never answered). */
  outcome: "ok" | LcErrorType | "lost" | "hung";
  /** The HTTP status sent (Web). */
  status?: number;
}

export interface RtmFrameRecord {
  seq: number;
  connectionId: number;
  direction: "in" | "out";
  /** Parsed JSON, or the raw text when it was not JSON. */
  frame: unknown;
}

export interface RtmConnectionInfo {
  id: number;
  version: string;
  entityId?: string;
  loggedIn: boolean;
  open: boolean;
}

/** What the agent app shows, in the order it showed it. */
export interface AgentFeedEntry {
  chatId: string;
  threadId: string;
  event: LcAgentEvent;
}

export interface SneakPeek {
  chatId: string;
  threadId: string;
  authorId: string;
  text: string;
}

export interface QueueEntry {
  chatId: string;
  threadId: string;
  groupId: number;
  position: number;
  waitTime: number;
}

export interface WebhookAttempt {
  /** One per webhook fired (a duplicate delivery gets its own number). */
  delivery: number;
  webhookId: string;
  action: WebhookAction;
  attempt: number;
  status: number | "network-error" | "timeout";
  body: Record<string, unknown>;
}

export interface HeldWebhook {
  delivery: number;
  action: WebhookAction;
  body: Record<string, unknown>;
}

export interface StoredFile {
  url: string;
  name: string;
  contentType: string;
  size: number;
  content: Buffer;
  /** Used in an event: it never expires. */
  permanent: boolean;
}

export interface AgentEventOptions {
  agentId?: string;
  visibility?: Visibility;
  customId?: string;
  /** Write to the last, inactive thread (agents can, like customers with `attach_to_last_thread`). */
  attachToLastThread?: boolean;
}

/** The fake and its controls: the test plays the LiveChat agent app and the platform through these. */
export interface FakeLiveChat {
  /** `http://127.0.0.1:<port>`: Web API under `/v3.6/customer/action/<action>`, RTM under `/v3.6/customer/rtm/ws`. */
  apiUrl: string;
  /** `ws://127.0.0.1:<port>/v3.6/customer/rtm/ws` (add `?organization_id=`). */
  rtmUrl: string;
  /** `http://127.0.0.1:<port>`: `POST /v2/customer/token`. */
  accountsUrl: string;
  /** Base of file URLs (LiveChat's CDN): `<cdnUrl>/api/file/lc/att/<license>/<hash>/<name>`. */
  cdnUrl: string;
  organizationId: string;
  licenseId: number;
  clientId: string;
  /** The default agent OAuth token (scope `customers:own`). */
  agentToken: string;
  close(): Promise<void>;

  // ── playing the agent ──
  /** The agent takes the chat (from the queue, or joins an assigned one). */
  acceptChat(chatId: string, agentId?: string): void;
  agentSend(chatId: string, text: string, options?: AgentEventOptions): LcAgentEvent;
  agentSendFile(
    chatId: string,
    file: { name: string; contentType: string; content: Buffer },
    options?: AgentEventOptions,
  ): LcAgentEvent;
  agentSendRichMessage(chatId: string, richMessage: Record<string, unknown>, options?: AgentEventOptions): LcAgentEvent;
  agentTyping(chatId: string, isTyping: boolean, agentId?: string): void;
  /** Transfer to an agent or to a group (a group transfer queues the chat there). */
  transferChat(chatId: string, target: { agentId: string } | { groupId: number }, requesterId?: string): void;
  agentLeave(chatId: string, agentId?: string): void;
  /** The agent closes the chat (its thread). */
  agentDeactivate(chatId: string, agentId?: string): void;
  /** The router closes it: inactivity, or nobody took it from the queue. */
  routerDeactivate(chatId: string, reason?: "inactive" | "offline"): void;
  setAgentStatus(agentId: string, status: AgentStatus): void;
  /** Every agent of the group accepting chats (online) or offline. */
  setGroupOnline(groupId: number, online: boolean): void;
  banCustomer(entityId: string): void;
  /** A chat started by another client (the LiveChat widget): not "my chat" for webhook filters. */
  startWidgetChat(options?: { text?: string; groupId?: number }): {
    chatId: string;
    threadId: string;
    customerId: string;
  };

  // ── the platform misbehaving ──
  /** The next `count` Web/RTM requests (optionally of one action/transport) fail with `type`. */
  failNext(
    count: number,
    type: LcErrorType,
    options?: { action?: string; transport?: "web" | "rtm"; message?: string; data?: Record<string, unknown> },
  ): void;
  /** `500`/`503`: every Web request answers it; `hang`: nothing answers; `refuse`: the port stops listening. */
  goDown(mode: "500" | "503" | "hang" | "refuse"): Promise<void>;
  comeUp(): Promise<void>;
  /** The next `count` Web API requests (optionally of one action) are carried out, but their answer is lost. */
  loseNextAnswer(count?: number, action?: string): void;
  setRateLimit(limit: RateLimit | false): void;
  /** RTM answers wait until released; meanwhile the socket's pending-request limit applies. */
  holdRtmResponses(): void;
  releaseRtmResponses(): void;
  /** Closes the customer's sockets abruptly (no push), or every socket. */
  dropRtm(entityId?: string): void;
  /** Pushes `customer_disconnected` with a documented reason (DISCONNECT_REASONS), then closes the customer's sockets. */
  disconnectCustomer(entityId: string, reason: string, data?: Record<string, unknown>): void;
  /** The token (or every token of the entity) expires now; logged-in sockets get `access_token_expired`. */
  expireCustomerToken(tokenOrEntityId: string): void;
  revokeCustomerToken(tokenOrEntityId: string): void;
  expireAgentToken(token: string): void;

  // ── webhooks ──
  registerWebhook(registration: WebhookRegistration): string;
  unregisterWebhook(webhookId: string): void;
  /** The next `count` webhooks fired are delivered twice. */
  duplicateNextWebhooks(count?: number): void;
  /** The next `count` webhooks fired (optionally of one action) are never sent. */
  dropNextWebhooks(count?: number, action?: WebhookAction): void;
  holdWebhooks(): void;
  heldWebhooks(): HeldWebhook[];
  releaseWebhooks(pick?: (held: readonly HeldWebhook[]) => readonly HeldWebhook[]): Promise<void>;
  resumeWebhooks(): void;
  readonly webhookAttempts: readonly WebhookAttempt[];
  whenWebhooksIdle(): Promise<void>;

  // ── inspection ──
  readonly calls: readonly ApiCallRecord[];
  readonly rtmFrames: readonly RtmFrameRecord[];
  rtmConnections(): RtmConnectionInfo[];
  /** Every event the agent app shows (customers', agents', system messages), optionally of one chat. */
  agentFeed(chatId?: string): AgentFeedEntry[];
  sneakPeeks(chatId?: string): SneakPeek[];
  /** The chat as an agent sees it, every thread. */
  chat(
    chatId: string,
  ): { id: string; customerId: string; threads: (Omit<LcThread, "events"> & { events: LcAgentEvent[] })[] } | undefined;
  chatIds(): string[];
  customer(entityId: string): Record<string, unknown> | undefined;
  queue(groupId?: number): QueueEntry[];
  groupStatus(groupId: number): GroupStatus;
  files(): StoredFile[];
}
