/**
 * Types of the fake RapidPro: its options, what the control API hands back, and the flow player's options.
 * See README.md.
 */

export type ContactStatus = "active" | "blocked" | "stopped" | "archived";

/** `MsgReadSerializer.STATUSES` values. */
export type MsgStatus = "queued" | "wired" | "sent" | "delivered" | "read" | "errored" | "failed" | "handled";

export interface RateLimit {
  /** Requests allowed in any sliding window of `windowMs` (DRF SimpleRateThrottle). */
  requests: number;
  windowMs: number;
}

export interface FakeRapidProOptions {
  /** The workspace's API token. Default "rp-api-token". Any other token → 403 `{"detail": "Invalid token"}`. */
  token?: string;
  /** More tokens of the same workspace (other users); they share its rate limit. */
  extraTokens?: string[];
  /** E-mail of the token's user, for `Authorization: Basic base64(email:token)`. Default "admin@example.org". */
  email?: string;
  /**
   * The RapidPro release to play (a tag without `v`). Default "26.3.54". Older servers answer differently: before
   * 8.1.25 broadcasts have no `attachments` (the field is ignored); before 8.1.35 there is no `POST messages.json`
   * (405); before 8.1.37 `media.json` is Surveyor's attachment endpoint (`media_file` + `extension` → 201
   * `{"location"}`, anything else 400 `{}`); before 8.1.39 a broadcast needs `text`; before 8.1.68 attachments are free
   * `"<type>:<url>"` strings; before 9.1.92 every `image/*` may be uploaded; before 10.1.45 texts hold 640
   * characters; before 10.3.85 broadcasts have their own throttle scope.
   */
  version?: string;
  /** `Msg.MAX_TEXT_LEN`. Default: 4096 (RP ≥ v10.1.45), else 640. */
  maxTextLength?: number;
  /** Default: whether `version` has it (≥ 8.1.35). False: `POST messages.json` → 405. */
  messagesEndpoint?: boolean;
  /**
   * The rate of each throttle scope (`v2.messages` for messages.json, `v2.contacts` for contacts.json, `v2` for
   * the rest), one history per scope shared by all tokens of the workspace. Default: off.
   */
  rateLimit?: RateLimit;
  /**
   * The workspace role of the tokens' user. Default "administrator". API tokens work for administrators and editors;
   * an agent's or viewer's token authenticates, then every call is 403 `You do not have permission…`.
   */
  tokenRole?: "administrator" | "editor" | "agent" | "viewer";
  /** Sent as `X-Temba-Workspace`. Default: a random UUID. */
  workspaceUuid?: string;
  workspaceName?: string;
  /** The workspace's first flow language (plain-string broadcast text is filed under it). Default "eng". */
  flowLanguage?: string;
  /** The one channel every contact is reached through. */
  channel?: { uuid?: string; name?: string; address?: string };
  /** Page size of list endpoints. Default 250 (RapidPro's PAGE_SIZE). */
  pageSize?: number;
  /** `Media.MAX_UPLOAD_SIZE`. Default 25 MiB. */
  maxUploadBytes?: number;
  /** Delay before a broadcast or a flow start is processed (they are asynchronous in RapidPro). Default 5 ms. */
  asyncDelayMs?: number;
}

export interface RpFlowRef {
  uuid: string;
  name: string;
}

export interface AddContactInput {
  uuid?: string;
  /** "" = no name (the API shows null, webhooks show ""). */
  name: string;
  /** e.g. "whatsapp:50255501234", "telegram:12345#amara" (display fragment after `#`). First = preferred. */
  urns?: string[];
  /** ISO 639-3, e.g. "spa". */
  language?: string;
  status?: ContactStatus;
  fields?: Record<string, string>;
  /** The flow the contact is in now. */
  flow?: RpFlowRef;
}

export interface RpContact {
  uuid: string;
  name: string;
  urns: string[];
  language: string | null;
  status: ContactStatus;
  fields: Record<string, string>;
  flow: RpFlowRef | null;
  groups: string[];
  /** False once deleted through `contact_actions`. */
  active: boolean;
}

export interface RpGroup {
  uuid: string;
  name: string;
  contacts: string[];
  /** Query-based ("smart") groups cannot be added to or removed from. */
  query: string | null;
}

export interface AddMessageInput {
  direction: "in" | "out";
  text: string;
  createdOn?: Date;
  /** `"<content-type>:<url>"` strings. */
  attachments?: string[];
  /** Default "handled" for incoming and "delivered" for outgoing messages. */
  status?: MsgStatus;
  flow?: RpFlowRef;
}

export interface RpQuickReply {
  type?: "text" | "form" | "url" | "location";
  text?: string;
  extra?: string;
}

/** A message as stored (both directions); `GET messages.json` shows these. */
export interface RpStoredMessage {
  uuid: string;
  id: number;
  contact: string;
  direction: "in" | "out";
  text: string;
  /** `"<content-type>:<url>"` strings. */
  attachments: string[];
  quickReplies: RpQuickReply[];
  status: MsgStatus;
  createdOn: Date;
  /** How it was created: the API (`messages`, `broadcasts`) or the test (`history`). */
  via: "messages" | "broadcasts" | "history";
}

/** An outgoing message created through the API, in creation order. */
export interface SentMessage {
  uuid: string;
  contact: string;
  /** The final text: literal for `messages`, evaluated for `broadcasts`. */
  text: string;
  /** `"<content-type>:<url>"` strings, as mailroom stores them. */
  attachments: string[];
  quickReplies: RpQuickReply[];
  /** Current status (see `advanceStatuses`). */
  status: MsgStatus;
  via: "messages" | "broadcasts";
  /** The broadcast's UUID for `via: "broadcasts"`. */
  broadcast: string | null;
}

export interface StoredMedia {
  uuid: string;
  filename: string;
  contentType: string;
  size: number;
  content: Buffer;
  /** The absolute URL the fake serves it at. */
  url: string;
}

export interface RpBroadcast {
  uuid: string;
  id: number;
  status: "pending" | "queued" | "started" | "completed" | "failed" | "interrupted";
  contacts: string[];
  groups: string[];
  urns: string[];
  /** Per language: raw (unevaluated) text, attachments as `"<content-type>:<url>"`, quick replies. */
  translations: Record<string, { text?: string; attachments?: string[]; quick_replies?: RpQuickReply[] }>;
  baseLanguage: string;
  /** Contacts messaged, once processed. */
  recipients: string[];
}

export interface RpFlowStart {
  uuid: string;
  id: number;
  /** The flow's UUID. */
  flow: string;
  flowName: string;
  /** Contact UUIDs as requested (URNs and UUIDs resolved). */
  contacts: string[];
  groups: string[];
  urns: string[];
  /** `params`, or the normalised deprecated `extra`; {} when neither. */
  params: Record<string, unknown>;
  restartParticipants: boolean;
  excludeActive: boolean;
  status: "pending" | "starting" | "completed" | "failed";
  /** Contacts actually started (after exclusions), once processed. */
  started: string[];
}

export interface RequestLogEntry {
  method: string;
  path: string;
  /** The raw query string without "?" ("" when none). */
  query: string;
  status: number;
}

export interface WebhookCallOptions {
  /** "default": the editor's POST template (§1.2). "legacy": the legacy/resthook payload (§1.3). "custom": §1.7. */
  shape: "default" | "legacy" | "custom";
  /** `name` "" when the contact has none. `urn`: undefined = the fake's contact's preferred URN (null if unknown). */
  contact: { uuid: string; name: string; urn?: string | null; language?: string };
  /** Result name → value (or value + category). Keys are snakified, values cut to 640 characters. */
  results?: Record<string, string | { value: string; category?: string }>;
  /** The message that resumed the flow; attachments as `"<content-type>:<url>"`. */
  input?: { text: string; attachments?: string[] };
  /** Only the custom shape carries it. */
  department?: string;
  /** Default: the first flow added, else a built-in "Live Agents" flow. */
  flow?: RpFlowRef;
  /** The author's headers, merged over the editor's defaults (Accept and Content-Type: application/json). */
  headers?: Record<string, string>;
  /** "none": the author deleted the Content-Type header. Default "json". */
  contentType?: "json" | "none";
  /** Sends `X-Mailroom-Mode: simulation` (the flow simulator). */
  simulation?: boolean;
  /** Default 15000 (mailroom's WebhooksTimeout). */
  timeoutMs?: number;
  /** Default "POST". */
  method?: string;
}

export interface WebhookCallResult {
  /** 0 for a connection error, a timeout, an oversized request or an oversized response. */
  status: number;
  /** The body parsed as JSON whatever its Content-Type (invalid UTF-8 and NULs stripped first); null if not JSON. */
  json: unknown;
  elapsedMs: number;
  text: string;
  headers: Record<string, string>;
  /** Whether `@webhook` would survive a later wait: goflow keeps it only when the body is ≤ 10,000 bytes. */
  keptAcrossWait: boolean;
  /** The exact body that was sent ("" when the call was skipped). */
  requestBody: string;
  requestHeaders: Record<string, string>;
}

/** A running fake RapidPro. Everything except the HTTP API and `callWebhook` is a test control. */
export interface FakeRapidPro {
  /** e.g. "http://127.0.0.1:41234" (no trailing slash). The API lives under `${url}/api/v2/`. */
  readonly url: string;
  readonly token: string;
  readonly workspaceUuid: string;
  readonly channel: { uuid: string; name: string; address: string };
  close(): Promise<void>;
  addContact(input: AddContactInput): RpContact;
  /** By UUID or URN. */
  contact(ref: string): RpContact | undefined;
  contacts(): RpContact[];
  addFlow(input: { uuid?: string; name: string }): RpFlowRef;
  addGroup(input: { uuid?: string; name: string; contacts?: string[]; query?: string }): RpGroup;
  /** Adds a message to a contact's history. */
  addMessage(contactUuid: string, input: AddMessageInput): RpStoredMessage;
  /** Stored messages (both directions), oldest first. */
  messages(contactUuid?: string): RpStoredMessage[];
  /** Outgoing messages created through the API (messages.json and processed broadcasts), in order. */
  sent(contactUuid?: string): SentMessage[];
  /** Uploads (and files added with `addMedia`). */
  media(): StoredMedia[];
  /** Hosts a file as RapidPro's storage would (e.g. a photo the contact sent); served at its `url`. */
  addMedia(input: { filename: string; contentType: string; content: Buffer }): StoredMedia;
  broadcasts(): RpBroadcast[];
  flowStarts(): RpFlowStart[];
  readonly requests: readonly RequestLogEntry[];
  /** The next `count` API requests answer `status` (429 with Retry-After and DRF's throttle body). */
  failNext(count: number, status: number, opts?: { retryAfterSeconds?: number }): void;
  setRateLimit(limit: RateLimit | undefined): void;
  /** Changes the role of the tokens' user (a workspace admin demoting it makes every call 403). */
  setTokenRole(role: "administrator" | "editor" | "agent" | "viewer"): void;
  /** Moves every outgoing message one step: queued → wired → sent → delivered. */
  advanceStatuses(): void;
  setMessageStatus(uuid: string, status: MsgStatus): void;
  /** Resolves when queued broadcasts and flow starts have been processed. */
  whenIdle(): Promise<void>;
  /** Plays mailroom's `call_webhook` (one call at a time per contact, no retries). */
  callWebhook(url: string, options: WebhookCallOptions): Promise<WebhookCallResult>;
}
