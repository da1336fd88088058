import type { IncomingHttpHeaders } from "node:http";
import type { NetworkOutage } from "../../helpers/fake-server.js";

/** The visitor fields the platform maps into its channel variables. */
export interface GmsVisitorFields {
  name?: string;
  login?: string;
  phone?: string;
  email?: string;
  site?: string;
}

/** A keyboard button, as the bot sends it and as a click comes back. */
export interface GmsButton {
  id: string;
  text: string;
}

/**
 * Something the bot does, in the order a rule lists them. Each is one call to Liaison's channel webhook:
 * `text`, `keyboard` and `file` are `send_message` (`kind` `operator`, `keyboard`, `file_operator`), `redirect` is
 * `redirect_chat` (the hand-off to a human), `close` is `close_chat`. `delayMs` waits before the call.
 */
export type GmsAction =
  | { kind: "text"; text: string; delayMs?: number }
  | { kind: "keyboard"; buttons: GmsButton[][]; text?: string; delayMs?: number }
  | { kind: "file"; url: string; name: string; mediaType: string; delayMs?: number }
  | { kind: "redirect"; depKey?: string; operatorId?: string | number; delayMs?: number }
  | { kind: "close"; delayMs?: number };

/** What the bot is given for one accepted visitor message. */
export interface GmsBotInput {
  chatId: number;
  visitorId: string;
  messageId: string;
  kind: "visitor" | "file_visitor" | "keyboard_response";
  /**
   * The text the platform hands the bot: the visitor's text, the clicked button's label, or
   * `file:<content_type>|<file id>|<url>` for a file.
   */
  text: string;
  fields: GmsVisitorFields;
  /** `message.data` as received (file or button). */
  data?: Record<string, unknown>;
}

/** A rule's condition: the exact bot-facing text, a pattern, or any test on the whole input. */
export type GmsMatcher = string | RegExp | ((input: GmsBotInput) => boolean);

export type GmsChatState = "bot" | "redirected" | "closed";

/** One request that reached the platform's webhook route (or any other path), whatever the answer. */
export interface GmsWebhookRecord {
  /** 1, 2, … in arrival order. */
  seq: number;
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body as text, and parsed when it was JSON. */
  raw: string;
  body?: unknown;
  /** What the fake answered: 0 when it did not (outage). */
  status: number;
  /**
   * `accepted`: handed to the bot; `duplicate`: a `message.id` the chat already had (answered, not handed again);
   * `ignored`: answered 200 and dropped, as the platform does with an unknown event or kind or a file not `ready`;
   * `refused`: a 4xx/5xx.
   */
  outcome: "accepted" | "duplicate" | "ignored" | "refused";
  /** Why it was ignored or refused. */
  reason?: string;
  chatId?: number;
  visitorId?: string;
  messageId?: string;
  kind?: string;
  /** The bot-facing text (see `GmsBotInput.text`). */
  text?: string;
  fields?: GmsVisitorFields;
  /** The chat's state when the event arrived: `redirected` or `closed` means Liaison spoke to the bot after that. */
  chatState?: GmsChatState;
  /** For `file_visitor`: the fake's own GET of the file link (filled in asynchronously; see `whenIdle`). */
  fileCheck?: GmsFileCheck;
}

export interface GmsFileCheck {
  status: number;
  contentType?: string;
  size?: number;
  /** The body's SHA-256, hex, to compare with what the customer sent. */
  sha256?: string;
  error?: string;
}

export type GmsMethod = "send_message" | "close_chat" | "redirect_chat";

/** One HTTP attempt of the platform to Liaison's channel webhook. */
export interface GmsCallRecord {
  seq: number;
  at: number;
  chatId: number | undefined;
  /** A `GmsMethod`, or whatever `call` was given. */
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  /** 1 for the first try, 2… for retries. */
  attempt: number;
  /** Liaison's status, 0 when there was no answer. */
  status: number;
  responseText: string;
  responseContentType?: string;
  /** The answer parsed, when it was JSON. */
  responseJson?: unknown;
  /** As the platform judges it: `ok` is a 2xx whose JSON body has no `error`. */
  outcome: "ok" | "failed";
  failure?: "status" | "error-body" | "not-json" | "timeout" | "network" | "not-configured";
  error?: string;
}

/** The platform's view of one chat. */
export interface GmsChat {
  chatId: number;
  /** Every distinct `visitor.id` seen with this `chat_id`, in order (one, when Liaison is consistent). */
  visitorIds: string[];
  state: GmsChatState;
  /** The accepted events, in order. */
  heard: GmsWebhookRecord[];
  calls: GmsCallRecord[];
}

/** An injected answer of the platform's webhook. */
export interface GmsInjectedFailure {
  status: number;
  /** Sent as `Retry-After` (seconds) when given. */
  retryAfterSeconds?: number;
}

export interface FakeGmsOptions {
  /** The `{token}` of the platform's webhook URL (default: 32 random hex digits). */
  token?: string;
  /** "Channel webhook: URL": Liaison's base URL for this channel; the method name is appended (`…/send_message`). */
  channelWebhookUrl?: string;
  /** "Channel webhook: Token": sent as `Authorization: Token <value>`; without it no header is sent. */
  channelToken?: string;
  /** The channel's toggle (default on). Off: every event is refused like a wrong token. */
  active?: boolean;
  /** Wait before the bot's first call for an event (default 0: as soon as the event is accepted). */
  replyDelayMs?: number;
  /** Delay the webhook's answer (default 0). With `replyDelayMs: 0` the bot's reply can reach Liaison first. */
  answerDelayMs?: number;
  /** How the platform retries a failed call to Liaison (default: it does not). */
  retry?: { attempts: number; delayMs: number };
  /** How long a call to Liaison may take (default 10 s). */
  callTimeoutMs?: number;
  /** Fetch each ready `file_visitor` link to check it works (default true). */
  checkFiles?: boolean;
}

export interface FakeGms {
  /** The platform's base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** The full webhook URL to give Liaison as `GMS_WEBHOOK_URL`. */
  webhookUrl: string;
  token: string;
  close(): Promise<void>;

  /** Changes the channel settings (`token: null` stops sending the Authorization header). */
  setChannel(settings: { webhookUrl?: string; token?: string | null; active?: boolean }): void;
  setReplyDelay(ms: number): void;
  setAnswerDelay(ms: number): void;
  setRetry(retry: { attempts: number; delayMs: number } | undefined): void;

  /** When an accepted message matches, the bot performs `actions`. Rules are tried in the order they were added. */
  reply(match: GmsMatcher, actions: GmsAction[]): void;
  /** What the bot does when no rule matches (default: nothing). */
  otherwise(actions: GmsAction[]): void;
  /** The bot speaks unprompted in a chat it knows; resolves with the calls made. */
  say(chatId: number, actions: GmsAction[]): Promise<GmsCallRecord[]>;
  /** One raw call to Liaison's channel webhook (any method, any body), with the platform's headers. */
  call(method: string, body: unknown): Promise<GmsCallRecord>;

  /** Every request to the fake, in arrival order. */
  received(): GmsWebhookRecord[];
  /** The events handed to the bot (accepted), optionally for one chat. */
  heard(chatId?: number): GmsWebhookRecord[];
  /** Every call to Liaison, retries included. */
  calls(): GmsCallRecord[];
  chat(chatId: number): GmsChat | undefined;
  chats(): GmsChat[];
  /** Resolves when every reply, call and file check under way has finished. */
  whenIdle(): Promise<void>;

  /** The next `count` webhook requests get this answer instead of being processed. */
  failNext(count: number, failure: GmsInjectedFailure): void;
  /** Every webhook request gets an HTTP error, or the network fails (see `NetworkOutage`). */
  goDown(mode: NetworkOutage | GmsInjectedFailure): Promise<void>;
  comeUp(): Promise<void>;
}
