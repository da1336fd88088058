/**
 * Types of the fake Rocket.Chat: its options, the documents it stores (shaped like Rocket.Chat's Mongo documents,
 * dates as `Date`), the webhook bodies it sends (dates as ISO strings, as they arrive on the wire) and the control
 * API that tests drive. See README.md.
 */

/** The `Livechat_webhook_on_*` toggles, by short name. */
export type WebhookEventToggle =
  "start" | "close" | "taken" | "queued" | "forward" | "offline" | "visitorMessage" | "agentMessage" | "capture";

export interface FakeAgentOptions {
  _id: string;
  username: string;
  name: string;
  email?: string;
  /** Default true. */
  online?: boolean;
  /** Department ids. Absent = member of every department. */
  departments?: string[];
}

export interface FakeDepartmentOptions {
  _id: string;
  name: string;
}

/** An RC user that can call the authenticated routes (`X-User-Id` + `X-Auth-Token`). */
export interface FakeUserOptions {
  userId: string;
  authToken: string;
  permissions: string[];
  /** Default "liaison.bot". Used as `closedBy.username` when this user closes a room. */
  username?: string;
  name?: string;
}

/** A custom field defined in RC (Omnichannel → Custom Fields). Only defined keys are applied by `livechat/visitor`. */
export interface FakeCustomFieldOptions {
  _id: string;
  scope: "visitor" | "room";
}

export interface FakeRocketChatOptions {
  /** `Livechat_webhookUrl`. Empty = no webhooks at all (events are not queued for later). */
  webhookUrl?: string;
  /** `Livechat_secret_token`, sent as `X-RocketChat-Livechat-Token`. */
  secretToken?: string;
  /** Defaults: close, taken, queued, forward, agentMessage on; start, visitorMessage, offline, capture off. */
  webhookEvents?: Partial<Record<WebhookEventToggle, boolean>>;
  /**
   * Which generation of `lib/webhooks.ts` retries: "legacy" (10 attempts on any failure), "middle" (5 attempts on any
   * failure, after RocketChat/Rocket.Chat#30687), "modern" (default: 5 attempts, only network error/timeout/5xx/429).
   */
  retryPolicy?: "legacy" | "middle" | "modern";
  /** Pause between webhook attempts. Default 100 ms (RC: `Livechat_http_timeout` × 4 = 20 s). */
  retryIntervalMs?: number;
  /** `Livechat_http_timeout`. Default 5000 ms. */
  httpTimeoutMs?: number;
  /** `Livechat_accept_chats_with_no_agents`. Default false. */
  acceptChatsWithNoAgents?: boolean;
  /** "auto" (default): a new room is assigned at once. "manual": rooms are queued until `takeRoom`. */
  routing?: "auto" | "manual";
  /**
   * `API_Enable_Rate_Limiter`: every `/api/v1` route limited per (client IP, route + method), as ApiClass does: 5 per
   * 60 s on `POST livechat/visitor`, `DELETE livechat/visitor/:token` and `GET livechat/room`, 10 per 60 s on
   * `GET livechat/visitor/:token` (fixed in RC's code), `rateLimitCalls` per `rateLimitIntervalMs` on every other
   * route. Default false (tests turn it on; RC's own default is on).
   */
  rateLimit?: boolean;
  /** `API_Enable_Rate_Limiter_Limit_Calls_Default`. Default 10. */
  rateLimitCalls?: number;
  /** `API_Enable_Rate_Limiter_Limit_Time_Default`. Default 60 000 ms; shorten it to test recovery without waiting. */
  rateLimitIntervalMs?: number;
  /**
   * The Rocket.Chat major version, where answers differ: 5 (a resent message `_id` answers `{"success":false}`, a
   * too-large upload `error-size-not-allowed`), 6 and 7 (the default), 8 (`API.v1.forbidden()` says `"forbidden"`, a
   * 401 has no `status`/`message`).
   */
  version?: 5 | 6 | 7 | 8;
  /** `Message_Attachments_Thumbnails_Enabled`: an image upload also stores a thumbnail. Default true. */
  thumbnails?: boolean;
  /** `FileUpload_ProtectFiles`. Default true. */
  protectFiles?: boolean;
  /** `FileUpload_Enable_json_web_token_for_files`: `fileUpload.publicFilePath` carries `?token=`. Default false. */
  jwtFileUrls?: boolean;
  /** `Livechat_fileupload_enabled` && `FileUpload_Enabled`. Default true. */
  fileUploadEnabled?: boolean;
  /** `FileUpload_MaxFileSize` in bytes. Default 104857600; -1 = no limit. */
  maxFileSize?: number;
  /** `FileUpload_MediaTypeWhiteList` ("image/*" wildcards allowed). Default: everything. */
  allowedMimeTypes?: string[];
  /** `FileUpload_MediaTypeBlackList`. Default ["image/svg+xml"] (RC's default). */
  blockedMimeTypes?: string[];
  /** `Livechat_message_character_limit` (the limit is enabled when this is set). Default: off. */
  messageCharacterLimit?: number;
  /** Default: one online agent "agent1" / "jane.doe" / "Jane Doe" in every department. */
  agents?: FakeAgentOptions[];
  /** Default: one department "dep1" / "Support". */
  departments?: FakeDepartmentOptions[];
  /** Default: one bot user, see DEFAULT_FAKE_USER. */
  users?: FakeUserOptions[];
  /** Default: one visitor-scoped custom field "contactUUID". */
  customFields?: FakeCustomFieldOptions[];
}

export interface RcEmail {
  address: string;
}

export interface RcPhone {
  phoneNumber: string;
}

export interface RcVisitor {
  _id: string;
  token: string;
  username: string;
  status: "online";
  ts: Date;
  _updatedAt: Date;
  name?: string;
  phone?: RcPhone[];
  visitorEmails?: RcEmail[];
  department?: string;
  livechatData?: Record<string, string>;
}

export interface RcServedBy {
  _id: string;
  username: string;
  ts: Date;
}

export interface RcRoom {
  _id: string;
  t: "l";
  fname: string;
  msgs: number;
  usersCount: number;
  lm: Date;
  ts: Date;
  _updatedAt: Date;
  departmentId?: string;
  v: { _id: string; username: string; token: string; status: "online" };
  cl: false;
  open: boolean;
  waitingResponse: boolean;
  source: { type: "api" };
  queuedAt: Date;
  servedBy?: RcServedBy;
  closedAt?: Date;
  closedBy?: { _id: string; username: string };
  closer?: "user" | "visitor";
  chatDuration?: number;
  tags?: string[];
  livechatData?: Record<string, string>;
  /** The text our webhook endpoint last answered with HTTP 200 for this room. */
  crmData?: string;
}

/** An entry of a message's `files` (`file` is the first): the originals, and for images their thumbnails. */
export interface RcFileRef {
  _id: string;
  name: string;
  type: string;
  size?: number;
  /** The name's extension ("png"). */
  format?: string;
  /** The type's first part ("image"). */
  typeGroup?: string;
}

export interface RcAttachment {
  type: "file";
  /** The original file's id (current RC; `title_link` names it too). */
  fileId?: string;
  title: string;
  title_link: string;
  title_link_download: true;
  description?: string;
  /** For images: the THUMBNAIL's link when thumbnails are on, not the original's. */
  image_url?: string;
  image_type?: string;
  image_size?: number;
  image_dimensions?: { width: number; height: number };
  audio_url?: string;
  audio_type?: string;
  audio_size?: number;
  video_url?: string;
  video_type?: string;
  video_size?: number;
}

export interface RcMarkdownNode {
  type: string;
  value: string | RcMarkdownNode[];
}

export interface RcMessage {
  _id: string;
  rid: string;
  msg: string;
  ts: Date;
  _updatedAt: Date;
  u: { _id: string; username: string; name?: string };
  /** System message type ("livechat-started", "livechat-close"). */
  t?: string;
  /** Present on messages the visitor sent; how RC tells visitor from agent messages. */
  token?: string;
  alias?: string;
  groupable?: boolean;
  file?: RcFileRef;
  files?: RcFileRef[];
  attachments?: RcAttachment[];
  editedAt?: Date;
  editedBy?: { _id: string; username: string };
  urls?: string[];
  mentions?: string[];
  channels?: string[];
  md?: RcMarkdownNode[];
  transcriptRequested?: boolean;
  emoji?: string;
  avatar?: string;
}

/** An uploaded file as the fake stores it (RC: the Uploads collection + the file store). */
export interface RcStoredFile {
  _id: string;
  name: string;
  type: string;
  size: number;
  rid: string;
  userId: string;
  content: Buffer;
  uploadedAt: Date;
  description?: string;
  /** Set on a thumbnail RC made of an image upload: the image's id. */
  thumbnailOf?: string;
}

/** One message as it appears in a webhook's `messages` array (sendToCRM.ts). */
export interface RcWebhookMessage {
  u: { _id: string; username: string; name?: string };
  _id: string;
  username: string;
  /** Absent when the message has no text (a file without caption): `msg || JSON.stringify(blocks)`. */
  msg?: string;
  ts: string;
  rid: string;
  editedAt?: string;
  agentId?: string;
  closingMessage?: true;
  file?: RcFileRef;
  attachments?: RcAttachment[];
  fileUpload?: { publicFilePath: string; type: string; size: number };
  _updatedAt: string;
}

export interface RcWebhookVisitor {
  _id?: string;
  token?: string;
  name?: string;
  username?: string;
  department?: string;
  customFields?: Record<string, string>;
  /** An array of `{address}` on every event except LivechatOfflineMessage, where it is a plain string. */
  email?: RcEmail[] | string;
  phone?: RcPhone[];
}

/** A webhook body. Every event but LivechatOfflineMessage carries the room envelope. */
export interface RcWebhookBody {
  type: string;
  _id?: string;
  label?: string;
  topic?: string;
  createdAt?: string;
  lastMessageAt?: string;
  tags?: string[];
  customFields?: Record<string, string>;
  visitor?: RcWebhookVisitor;
  agent?: { _id: string; username: string; name: string; email?: string };
  crmData?: string;
  messages?: RcWebhookMessage[];
  departmentId?: string;
  servedBy?: { _id: string; username: string; ts: string };
  oldDepartmentId?: string;
  oldServedBy?: { _id: string; username: string; ts: string };
  closedAt?: string;
  closedBy?: { _id: string; username: string };
  closer?: "user" | "visitor";
  /** LivechatOfflineMessage only. */
  sentAt?: string;
  /** LivechatOfflineMessage only. */
  message?: string;
}

export interface WebhookAttempt {
  /** The delivery (one event) this attempt belongs to: retries share it. */
  delivery: number;
  type: string;
  /** Room id; absent for LivechatOfflineMessage. */
  roomId?: string;
  /** 1-based attempt number for this delivery. */
  attempt: number;
  status: number | "network-error";
  body: RcWebhookBody;
  /** What our endpoint answered (absent on network errors). */
  responseText?: string;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  /** 0 when the socket was destroyed without an answer (`goDown("reset")`). */
  status: number;
}

/** A webhook built and waiting for `releaseWebhooks` (see `holdWebhooks`). */
export interface HeldWebhook {
  delivery: number;
  type: string;
  roomId?: string;
  body: RcWebhookBody;
}

export interface FakeFileInput {
  name: string;
  type: string;
  content: Buffer;
  description?: string;
}

/** A running fake Rocket.Chat. Everything but the HTTP API is a test-only control (d.1 item 9). */
export interface FakeRocketChat {
  /** Base URL, e.g. "http://127.0.0.1:41234" (no trailing slash). REST lives under `${url}/api/v1/`. */
  readonly url: string;
  /** Stops the server, aborts webhook deliveries and retries. */
  close(): Promise<void>;
  /** Sets `Livechat_webhookUrl` (undefined or "" turns webhooks off). */
  setWebhookUrl(url: string | undefined): void;
  setAgentOnline(agentId: string, online: boolean): void;
  /** An agent takes a queued room (LivechatSessionTaken). Default agent: an online agent of the room's department. */
  takeRoom(rid: string, agentId?: string): RcRoom;
  /** The serving agent (or `agentId`) sends text (a `Message` webhook when agentMessage is on). */
  agentSend(rid: string, text: string, opts?: { agentId?: string }): RcMessage;
  /** The agent edits one of its messages: the edit is re-sent as a `Message` webhook with the same `_id` + `editedAt`. */
  agentEdit(rid: string, messageId: string, text: string): RcMessage;
  /** The agent uploads a file (`msg` empty, caption in `attachments[0].description`). */
  agentSendFile(rid: string, file: FakeFileInput, opts?: { agentId?: string }): RcMessage;
  /**
   * The agent sends several files in one message (`FileUpload_EnableMultipleFilesPerMessage`): one attachment per
   * file, `files` with every original (and thumbnail), `file` the first only, as the webhook then carries it.
   */
  agentSendFiles(rid: string, files: FakeFileInput[], opts?: { agentId?: string }): RcMessage;
  /** The serving agent closes the room (closer "user"). */
  closeByAgent(rid: string, comment?: string): RcRoom;
  /** Forward to an agent or a department (LivechatSessionForwarded). */
  forward(rid: string, target: { agentId?: string; departmentId?: string }): RcRoom;
  /** "503": every request answers 503. "reset": every connection is destroyed without an answer. */
  goDown(mode: "503" | "reset"): void;
  comeUp(): void;
  /**
   * The next `count` /api requests answer `status`; a 429 is RC's (its body and `X-RateLimit-*`, the reset
   * `retryAfterSeconds` ahead, no `Retry-After`).
   */
  failNext(count: number, status: number, opts?: { retryAfterSeconds?: number }): void;
  /** Turns the REST rate limiter on or off; every counter restarts (RC recreates its limiters on a change). */
  setRateLimit(on: boolean): void;
  /**
   * From now on, webhooks are built when their event happens (as RC does) but not sent until `releaseWebhooks`:
   * RC sends each one on its own, without waiting for the others, so they may arrive in any order.
   */
  holdWebhooks(): void;
  /** The webhooks held so far and not yet released, oldest first. */
  heldWebhooks(): readonly HeldWebhook[];
  /**
   * Sends the held webhooks `pick` returns (default: all), each at once in the order returned; resolves when each has
   * been delivered, dropped or run out of attempts. Webhooks keep being held until `resumeWebhooks`.
   */
  releaseWebhooks(pick?: (held: readonly HeldWebhook[]) => readonly HeldWebhook[]): Promise<void>;
  /** Stops holding, and sends whatever is still held. */
  resumeWebhooks(): void;
  visitors(): RcVisitor[];
  rooms(): RcRoom[];
  room(rid: string): RcRoom | undefined;
  /** Stored messages of a room, oldest first, system messages included. */
  messages(rid: string): RcMessage[];
  /** Stored uploads (visitor and agent files), and the thumbnails made of images (`thumbnailOf`). */
  files(): RcStoredFile[];
  readonly requests: readonly RequestLogEntry[];
  readonly webhookAttempts: readonly WebhookAttempt[];
  /** Resolves once no webhook delivery is in flight or waiting for a retry (held ones do not count). */
  whenWebhooksIdle(): Promise<void>;
}
