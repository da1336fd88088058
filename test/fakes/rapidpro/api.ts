import type { IncomingMessage, ServerResponse } from "node:http";
import { STATUS_CODES } from "node:http";
import {
  ApiError,
  booleanField,
  charField,
  choiceField,
  dictField,
  fail,
  FieldError,
  listField,
  manyRelatedField,
  MSG,
  nonFieldError,
  requireStringOrInteger,
  runFields,
  runNestedFields,
} from "./drf.js";
import type { ErrorDetail } from "./drf.js";
import type {
  BroadcastRecord,
  ContactRecord,
  FakeState,
  FlowRecord,
  FlowStartRecord,
  GroupRecord,
  MediaRecord,
  MsgRecord,
} from "./state.js";
import { quickReplyJson } from "./state.js";
import { evaluateTemplate, XObject } from "./template.js";
import type { XValue } from "./template.js";
import { throttledDetail } from "./throttle.js";
import type { ThrottleScope, WorkspaceThrottle } from "./throttle.js";
import type { RequestLogEntry, RpQuickReply } from "./types.js";
import { normalizeUrn, parseUrn, storedIdentity, URN_SCHEMES } from "./urns.js";
import {
  atLeast,
  codePointLength,
  findUuid,
  formatMicros,
  isPlainObject,
  isUuid,
  parseIsoMicros,
  pyFloat,
  pyJsonDumps,
  pyStr,
  pyTypeName,
  quoteFilename,
  truncateCodePoints,
  uuid4,
} from "./util.js";

export interface ApiSettings {
  tokens: string[];
  email: string;
  /** The release played (see FakeRapidProOptions.version). */
  version: number[];
  tokenRole: "administrator" | "editor" | "agent" | "viewer";
  maxTextLength: number;
  messagesEndpoint: boolean;
  workspace: { uuid: string; name: string };
  flowLanguage: string;
  pageSize: number;
  maxUploadBytes: number;
  asyncDelayMs: number;
  baseUrl: () => string;
}

type Method = "GET" | "POST";

/** The v2 endpoints the fake implements, with the methods each allows. */
const ENDPOINTS: Record<string, Method[]> = {
  broadcasts: ["GET", "POST"],
  contact_actions: ["POST"],
  contacts: ["GET"],
  flow_starts: ["GET", "POST"],
  flows: ["GET"],
  media: ["POST"],
  messages: ["GET", "POST"],
  workspace: ["GET"],
};

/** `Media.ALLOWED_CONTENT_TYPES` (temba/msgs/models.py), matched with fnmatch: case-sensitive, `*` any run. */
const ALLOWED_MEDIA_TYPES = [
  "image/apng",
  "image/avif",
  "image/gif",
  "image/jpeg",
  "image/png",
  "image/webp",
  "audio/*",
  "video/*",
  "application/pdf",
];
/** The list before v9.1.92 ("Fix content type mismatching"). */
const LEGACY_MEDIA_TYPES = ["image/*", "audio/*", "video/*", "application/pdf"];

function fnmatch(value: string, pattern: string): boolean {
  const literal = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${literal.join(".*")}$`, "s").test(value);
}

/** `Attachment.CONTENT_TYPE_REGEX`: the type part of a free `"<type>:<url>"` attachment (before v8.1.68). */
const ATTACHMENT_TYPE = /^(image|audio|video|application|geo|unavailable|(\w+\/[-+.\w]+))$/;

/** Django's default DATA_UPLOAD_MAX_MEMORY_SIZE: larger non-file bodies are refused. */
const MAX_JSON_BODY = 2_621_440;
const MAX_QUICK_REPLY_TEXT = 64;
const MAX_QUICK_REPLY_EXTRA = 1000;
const FLOW_START_EXTRA_SIZE = 256;
const CONTACT_ACTIONS = [
  "add",
  "remove",
  "block",
  "unblock",
  "interrupt",
  "archive_messages",
  "delete",
  "archive",
] as const;

interface Failure {
  count: number;
  status: number;
  retryAfterSeconds: number;
}

/** The HTTP side of the fake: API v2 under /api/v2/ and the media files under /media/. */
export class RapidProApi {
  failure: Failure | undefined;
  readonly requests: RequestLogEntry[] = [];
  private readonly pending = new Set<Promise<void>>();
  /** Scheduled work and the resolver of its pending promise (resolved without running on close). */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private closed = false;

  constructor(
    private readonly state: FakeState,
    private readonly settings: ApiSettings,
    private readonly throttle: WorkspaceThrottle,
  ) {}

  close(): void {
    this.closed = true;
    for (const [timer, resolve] of this.timers) {
      clearTimeout(timer);
      resolve();
    }
    this.timers.clear();
  }

  async whenIdle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake.invalid");
    const method = (req.method ?? "GET").toUpperCase();
    res.on("close", () => {
      this.requests.push({
        method,
        path: url.pathname,
        query: url.search.replace(/^\?/, ""),
        status: res.writableFinished ? res.statusCode : 0,
      });
    });
    try {
      if (url.pathname.startsWith("/media/")) {
        this.serveMedia(url, method, res);
        return;
      }
      await this.handleApi(req, res, url, method);
    } catch (error) {
      if (error instanceof ApiError) {
        sendJson(res, error.status, error.body, this.workspaceHeader());
        return;
      }
      if (!res.headersSent) sendHtml(res, 500, "<h1>Server Error (500)</h1>");
      else res.destroy();
    }
  }

  private workspaceHeader(): Record<string, string> {
    return { "X-Temba-Workspace": this.settings.workspace.uuid };
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    const match = /^\/api\/v2\/([a-z_]+)(\.[A-Za-z0-9]+)?\/?$/.exec(url.pathname);
    const name = match?.[1];
    const endpoint = name === undefined ? undefined : ENDPOINTS[name];
    if (!match || !endpoint || name === undefined) {
      await drain(req);
      sendHtml(res, 404, "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>");
      return;
    }
    if (this.failure && this.failure.count > 0) {
      this.failure.count -= 1;
      await drain(req);
      this.sendInjectedFailure(res, this.failure);
      return;
    }
    const suffix = match[2];
    if (suffix === undefined) {
      // format_suffix_patterns: without ".json" the HTML renderer answers with the endpoint's docs.
      await drain(req);
      const docs = `<html><body><h1>API v2: ${name}</h1><p>To use the endpoint append .json to the URL.</p></body></html>`;
      sendHtml(res, method === "GET" || method === "HEAD" ? 200 : 403, docs);
      return;
    }
    if (suffix !== ".json" || url.pathname.endsWith("/")) {
      await drain(req);
      sendHtml(res, 404, "<h1>Not Found</h1>");
      return;
    }

    const authError = this.authenticate(req.headers.authorization);
    if (authError !== undefined) {
      await drain(req);
      sendJson(res, 403, { detail: authError });
      return;
    }
    const headers = this.workspaceHeader();
    // APIPermission: an authenticated user whose workspace role may not use API tokens is refused (DRF checks
    // permissions before throttles).
    if (this.settings.tokenRole !== "administrator" && this.settings.tokenRole !== "editor") {
      await drain(req);
      sendJson(res, 403, { detail: "You do not have permission to perform this action." }, headers);
      return;
    }
    const wait = this.throttle.hit(this.scopeOf(name));
    if (wait !== undefined) {
      await drain(req);
      sendJson(res, 429, { detail: throttledDetail(wait) }, { ...headers, "Retry-After": String(wait) });
      return;
    }
    if (method === "OPTIONS") {
      await drain(req);
      sendJson(
        res,
        200,
        {
          name,
          description: "",
          renders: ["application/json", "text/html"],
          parses: ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"],
        },
        headers,
      );
      return;
    }
    const effective = method === "HEAD" ? "GET" : method;
    const allowed = endpoint.filter((m) => m !== "POST" || name !== "messages" || this.settings.messagesEndpoint);
    if (!allowed.includes(effective as Method)) {
      await drain(req);
      sendJson(res, 405, { detail: `Method "${method}" not allowed.` }, headers);
      return;
    }

    if (effective === "GET") {
      await drain(req);
      const query = url.searchParams;
      const body = this.handleGet(name, query, url);
      sendJson(res, 200, body, headers);
      return;
    }

    if (name === "media") {
      const raw = await readBody(req, this.settings.maxUploadBytes + 1_048_576);
      if (raw === undefined) {
        sendHtml(res, 413, "<html><head><title>413 Request Entity Too Large</title></head></html>");
        return;
      }
      if (!this.since("8.1.37")) {
        const { status, body } = await this.surveyorAttachment(req.headers["content-type"], raw);
        sendJson(res, status, body, headers);
        return;
      }
      const media = await this.uploadMedia(req.headers["content-type"], raw);
      sendJson(res, 201, mediaJson(media), headers);
      return;
    }

    const raw = await readBody(req, MAX_JSON_BODY);
    if (raw === undefined) {
      sendHtml(res, 400, "<h1>Bad Request (400)</h1>");
      return;
    }
    const data = parseJsonBody(req.headers["content-type"], raw);
    if (!isPlainObject(data)) return nonFieldError("Request body should be a single JSON object");
    const body = data;
    switch (name) {
      case "messages":
        sendJson(res, 201, this.postMessage(body), headers);
        return;
      case "broadcasts":
        sendJson(res, 201, this.postBroadcast(body), headers);
        return;
      case "flow_starts":
        sendJson(res, 201, this.postFlowStart(body), headers);
        return;
      case "contact_actions":
        this.postContactActions(body);
        res.writeHead(204, headers).end();
        return;
      default:
        sendJson(res, 405, { detail: `Method "${method}" not allowed.` }, headers);
    }
  }

  private since(tag: string): boolean {
    return atLeast(this.settings.version, tag);
  }

  /** The view's `throttle_scope`. */
  private scopeOf(endpoint: string): ThrottleScope {
    if (endpoint === "messages") return "v2.messages";
    if (endpoint === "contacts") return "v2.contacts";
    if (endpoint === "broadcasts" && !this.since("10.3.85")) return "v2.broadcasts";
    return "v2";
  }

  /** DRF's authenticators in RapidPro's order (session, token, basic); undefined when a token was accepted. */
  private authenticate(header: string | undefined): string | undefined {
    const parts = (header ?? "").split(/\s+/).filter((p) => p !== "");
    const scheme = parts[0]?.toLowerCase();
    if (scheme === "token") {
      if (parts.length === 1) return "Invalid token header. No credentials provided.";
      if (parts.length > 2) return "Invalid token header. Token string should not contain spaces.";
      return this.settings.tokens.includes(parts[1] ?? "") ? undefined : "Invalid token";
    }
    if (scheme === "basic") {
      if (parts.length === 1) return "Invalid basic header. No credentials provided.";
      if (parts.length > 2) return "Invalid basic header. Credentials string should not contain spaces.";
      const encoded = parts[1] ?? "";
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
        return "Invalid basic header. Credentials not correctly base64 encoded.";
      }
      const decoded = Buffer.from(encoded, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      const userid = colon < 0 ? decoded : decoded.slice(0, colon);
      const password = colon < 0 ? "" : decoded.slice(colon + 1);
      return this.settings.tokens.includes(password) && userid === this.settings.email
        ? undefined
        : "Invalid token or email";
    }
    return "Authentication credentials were not provided.";
  }

  private sendInjectedFailure(res: ServerResponse, failure: Failure): void {
    const headers = this.workspaceHeader();
    switch (failure.status) {
      case 429:
        sendJson(
          res,
          429,
          { detail: throttledDetail(failure.retryAfterSeconds) },
          { ...headers, "Retry-After": String(failure.retryAfterSeconds) },
        );
        return;
      case 403:
        sendJson(res, 403, { detail: "Invalid token" });
        return;
      case 500:
        sendHtml(res, 500, "Server Error. Site administrators have been notified.");
        return;
      case 502:
      case 503:
      case 504:
        sendHtml(
          res,
          failure.status,
          `<html><head><title>${failure.status} ${STATUS_CODES[failure.status] ?? ""}</title></head></html>`,
        );
        return;
      default:
        sendJson(res, failure.status, { detail: STATUS_CODES[failure.status] ?? "Error" }, headers);
    }
  }

  // --- lookups (TembaModelField subclasses) ---------------------------------------------------------------------

  private lookupContact = (value: unknown): ContactRecord => {
    const ref = requireStringOrInteger(value);
    return this.state.findContact(ref) ?? fail(MSG.noSuchObject(value));
  };

  private lookupGroup = (value: unknown): GroupRecord => {
    const ref = requireStringOrInteger(value);
    return this.state.findGroup(ref) ?? fail(MSG.noSuchObject(value));
  };

  private lookupFlow = (value: unknown): FlowRecord => {
    const ref = requireStringOrInteger(value);
    return this.state.findFlow(ref) ?? fail(MSG.noSuchObject(value));
  };

  /** `MediaField`: a media UUID, or `"<content-type>:<url>"` whose URL contains the UUID of an uploaded media. */
  private lookupMedia = (value: unknown): MediaRecord => {
    const ref = requireStringOrInteger(value);
    let uuid: string | undefined;
    if (isUuid(ref)) uuid = ref;
    else {
      const colon = ref.indexOf(":");
      if (colon > 0) uuid = findUuid(ref.slice(colon + 1));
    }
    const media = uuid === undefined ? undefined : this.state.findMedia(uuid);
    return media ?? fail(MSG.noSuchObject(value));
  };

  /** `AttachmentField` before v8.1.68: any `"<type>:<url>"` string (nothing is looked up). */
  private freeAttachment = (item: unknown): string => {
    const text = charField(item, 2048);
    const colon = text.indexOf(":");
    if (colon < 0 || !ATTACHMENT_TYPE.test(text.slice(0, colon)) || text.slice(colon + 1) === "") {
      fail("Invalid attachment. Must be <content-type>:<url>.");
    }
    return text;
  };

  /** A message's attachments as stored: uploaded media (`MediaField`, v8.1.68 on), else free strings. */
  private attachmentList = (value: unknown): string[] =>
    this.since("8.1.68")
      ? manyRelatedField(value, this.lookupMedia, 10).map((m) => `${m.contentType}:${m.url}`)
      : listField(value, this.freeAttachment, 10);

  private urnChild = (item: unknown): string => {
    if (typeof item === "string" && item.trim() === "") fail(MSG.blank);
    const normalized = normalizeUrn(pyStr(item));
    if (normalized === undefined) fail(`Invalid URN: ${pyStr(item)}. Ensure phone numbers contain country codes.`);
    if (codePointLength(normalized ?? "") > 255) fail(MSG.maxChars(255));
    return normalized ?? "";
  };

  private quickReply = (item: unknown): RpQuickReply => {
    if (!isPlainObject(item)) {
      throw new FieldError({ non_field_errors: [`Invalid data. Expected a dictionary, but got ${pyTypeName(item)}.`] });
    }
    const v = runNestedFields(item, [
      { name: "type", parse: (x) => choiceField(x, ["text", "form", "url", "location"] as const) },
      { name: "text", parse: (x) => charField(x, MAX_QUICK_REPLY_TEXT) },
      { name: "extra", parse: (x) => charField(x, MAX_QUICK_REPLY_EXTRA) },
    ]);
    const type = (v.type as RpQuickReply["type"]) ?? "text";
    const text = v.text as string | undefined;
    const extra = v.extra as string | undefined;
    if ((type === "form" || type === "url") && (text === undefined || extra === undefined)) {
      fail(`Quick replies of type '${type}' require 'text' and 'extra' values.`);
    }
    if (type === "text" && text === undefined) fail("Quick replies of type 'text' require a 'text' value.");
    const out: RpQuickReply = {};
    if (v.type !== undefined) out.type = type;
    if (text !== undefined) out.text = text;
    if (extra !== undefined) out.extra = extra;
    return out;
  };

  // --- POST messages.json ---------------------------------------------------------------------------------------

  private postMessage(data: Record<string, unknown>): Record<string, unknown> {
    const v = runFields(data, [
      { name: "contact", required: true, emptyIsNull: true, parse: this.lookupContact },
      { name: "text", parse: (x) => charField(x, this.settings.maxTextLength) },
      { name: "attachments", parse: this.attachmentList },
      { name: "quick_replies", parse: (x) => listField(x, this.quickReply, 10) },
      {
        name: "ticket",
        emptyIsNull: true,
        parse: (x) => fail(MSG.noSuchObject(requireStringOrInteger(x))),
      },
    ]);
    const text = (v.text as string | undefined) ?? "";
    const attachments = (v.attachments as string[] | undefined) ?? [];
    if (text === "" && attachments.length === 0) nonFieldError("Must provide either text or attachments.");
    const msg = this.state.createOutgoing(
      v.contact as ContactRecord,
      {
        text,
        attachments,
        quickReplies: (v.quick_replies as RpQuickReply[] | undefined) ?? [],
      },
      "messages",
      null,
    );
    return this.state.msgJson(msg);
  }

  // --- POST broadcasts.json -------------------------------------------------------------------------------------

  /** `LanguageDictField`: at most 50 keys, each an ISO 639-3 code. */
  private languageDict<T>(
    value: unknown,
    child: (item: unknown) => T,
    listToDict: "string" | "list",
  ): Record<string, T> {
    let data = value;
    if ((listToDict === "string" && typeof value === "string") || (listToDict === "list" && Array.isArray(value))) {
      data = { [this.settings.flowLanguage]: value };
    }
    const dict = dictField(data, child, false);
    if (Object.keys(dict).length > 50) fail(MSG.maxItems(50));
    const errors: Record<string, ErrorDetail> = {};
    for (const key of Object.keys(dict)) {
      if (!isLanguage(key)) errors[key] = ["Not an allowed ISO 639-3 language code."];
    }
    if (Object.keys(errors).length > 0) throw new FieldError(errors);
    return dict;
  }

  private postBroadcast(data: Record<string, unknown>): Record<string, unknown> {
    const v = runFields(data, [
      { name: "urns", parse: (x) => listField(x, this.urnChild, 100) },
      { name: "contacts", parse: (x) => manyRelatedField(x, this.lookupContact, 100) },
      { name: "groups", parse: (x) => manyRelatedField(x, this.lookupGroup, 100) },
      {
        name: "text",
        // Optional since v8.1.39; before, a broadcast of attachments alone was refused.
        required: !this.since("8.1.39"),
        parse: (x) => this.languageDict(x, (item) => charField(item, this.settings.maxTextLength), "string"),
      },
      // Before v8.1.25 the serializer had no `attachments` field: DRF ignores what it does not declare.
      ...(this.since("8.1.25")
        ? [{ name: "attachments", parse: (x: unknown) => this.languageDict(x, this.attachmentList, "list") }]
        : []),
      {
        name: "quick_replies",
        parse: (x) => this.languageDict(x, (item) => listField(item, this.quickReply, 10), "list"),
      },
      { name: "base_language", parse: languageField },
    ]);
    const text = v.text as Record<string, string> | undefined;
    const attachments = v.attachments as Record<string, string[]> | undefined;
    const quickReplies = v.quick_replies as Record<string, RpQuickReply[]> | undefined;
    const urns = (v.urns as string[] | undefined) ?? [];
    const contacts = (v.contacts as ContactRecord[] | undefined) ?? [];
    const groups = (v.groups as GroupRecord[] | undefined) ?? [];
    const baseLanguage = v.base_language as string | undefined;

    if (!text && !attachments) nonFieldError("Must provide either text or attachments.");
    if (urns.length === 0 && contacts.length === 0 && groups.length === 0) {
      nonFieldError("Must provide either urns, contacts or groups.");
    }
    if (baseLanguage) {
      if (!text || !(baseLanguage in text)) nonFieldError("No text translation provided in base language.");
      if (attachments && !(baseLanguage in attachments)) {
        nonFieldError("No attachment translations provided in base language.");
      }
      if (quickReplies && !(baseLanguage in quickReplies)) {
        nonFieldError("No quick_replies translations provided in base language.");
      }
    }

    const translations: BroadcastRecord["translations"] = {};
    for (const [lang, t] of Object.entries(text ?? {})) translations[lang] = { text: t };
    for (const [lang, atts] of Object.entries(attachments ?? {})) {
      translations[lang] = { ...translations[lang], attachments: atts };
    }
    for (const [lang, qrs] of Object.entries(quickReplies ?? {})) {
      translations[lang] = { ...translations[lang], quick_replies: qrs };
    }
    const broadcast: BroadcastRecord = {
      uuid: uuid4(),
      id: this.state.nextBroadcastId(),
      status: "pending",
      contacts: contacts.map((c) => c.uuid),
      groups: groups.map((g) => g.uuid),
      urns,
      translations,
      baseLanguage: baseLanguage ?? Object.keys(translations)[0] ?? this.settings.flowLanguage,
      recipients: [],
      createdOn: this.state.clock.now(),
    };
    this.state.broadcasts.push(broadcast);
    this.schedule(() => this.processBroadcast(broadcast));
    return this.broadcastJson(broadcast);
  }

  private broadcastJson(b: BroadcastRecord): Record<string, unknown> {
    const langs = Object.entries(b.translations);
    return {
      uuid: b.uuid,
      status: b.status,
      progress: { total: b.status === "pending" ? -1 : b.recipients.length || -1, started: b.recipients.length },
      urns: [...b.urns],
      contacts: b.contacts.map((uuid) => this.contactRef(uuid)),
      groups: b.groups.map((uuid) => this.groupRef(uuid)),
      text: Object.fromEntries(langs.map(([lang, t]) => [lang, t.text ?? null])),
      attachments: Object.fromEntries(langs.map(([lang, t]) => [lang, t.attachments ?? []])),
      quick_replies: Object.fromEntries(langs.map(([lang, t]) => [lang, (t.quick_replies ?? []).map(quickReplyJson)])),
      base_language: b.baseLanguage,
      created_on: formatMicros(b.createdOn),
      id: b.id,
    };
  }

  /** Mailroom: resolve recipients (new contacts for unknown URNs), pick each one's translation, evaluate, send. */
  private processBroadcast(b: BroadcastRecord): void {
    b.status = "queued";
    const recipients = this.resolveRecipients(b.contacts, b.groups, b.urns);
    b.status = "started";
    for (const contact of recipients) {
      const lang =
        contact.language !== null && b.translations[contact.language]?.text !== undefined
          ? contact.language
          : b.baseLanguage;
      const translation = b.translations[lang] ?? {};
      const base = b.translations[b.baseLanguage] ?? {};
      const template = translation.text ?? base.text ?? "";
      const text = evaluateTemplate(template, this.templateContext(contact)).text;
      this.state.createOutgoing(
        contact,
        {
          text,
          attachments: translation.attachments ?? base.attachments ?? [],
          quickReplies: translation.quick_replies ?? base.quick_replies ?? [],
        },
        "broadcasts",
        { id: b.id, uuid: b.uuid },
      );
      b.recipients.push(contact.uuid);
    }
    b.status = "completed";
  }

  private resolveRecipients(contactUuids: string[], groupUuids: string[], urns: string[]): ContactRecord[] {
    const out = new Map<string, ContactRecord>();
    const add = (contact: ContactRecord | undefined): void => {
      if (contact?.active && !out.has(contact.uuid)) out.set(contact.uuid, contact);
    };
    for (const uuid of contactUuids) add(this.state.contacts.get(uuid));
    for (const uuid of groupUuids) {
      for (const member of this.state.groups.get(uuid)?.contacts ?? []) add(this.state.contacts.get(member));
    }
    for (const urn of urns) add(this.state.contactForUrn(urn));
    return [...out.values()];
  }

  /** What mailroom puts in scope for broadcast templates: contact, fields, globals, urns. */
  private templateContext(contact: ContactRecord): XObject {
    const fieldValues: Record<string, XValue> = {};
    for (const key of this.state.fieldKeys) fieldValues[key] = contact.fields[key] ?? null;
    const fieldLines = Object.entries(contact.fields)
      .filter(([, value]) => value !== "")
      .map(([key, value]) => `${key}: ${value}`);
    const fields = new XObject(fieldValues, fieldLines.join("\n"));
    const identities = contact.urns.map((urn) => storedIdentity(urn));
    const urnsByScheme: Record<string, XValue> = {};
    for (const scheme of URN_SCHEMES) {
      urnsByScheme[scheme] = identities.find((identity) => identity.startsWith(`${scheme}:`)) ?? null;
    }
    const preferred = identities[0] ?? null;
    const name = contact.name;
    const contactObj = new XObject(
      {
        uuid: contact.uuid,
        id: String(contact.id),
        name,
        first_name: name === null ? null : (name.trim().split(/\s+/)[0] ?? null),
        language: contact.language,
        status: contact.status,
        urn: preferred,
        urns: identities,
        fields,
        groups: this.state.groupsOf(contact).map((g) => new XObject({ uuid: g.uuid, name: g.name }, g.name)),
        created_on: formatMicros(contact.createdOn),
        last_seen_on: contact.lastSeenOn === null ? null : formatMicros(contact.lastSeenOn),
        channel:
          preferred === null
            ? null
            : new XObject({ uuid: this.state.channel.uuid, name: this.state.channel.name }, this.state.channel.name),
      },
      name ?? (preferred === null ? "" : (parseUrn(preferred)?.path ?? "")),
    );
    return new XObject(
      { contact: contactObj, fields, globals: new XObject({}, ""), urns: new XObject(urnsByScheme, "") },
      "",
    );
  }

  // --- POST flow_starts.json ------------------------------------------------------------------------------------

  private postFlowStart(data: Record<string, unknown>): Record<string, unknown> {
    const v = runFields(data, [
      { name: "flow", required: true, emptyIsNull: true, parse: this.lookupFlow },
      { name: "contacts", parse: (x) => manyRelatedField(x, this.lookupContact, 100) },
      { name: "groups", parse: (x) => manyRelatedField(x, this.lookupGroup, 100) },
      { name: "urns", parse: (x) => listField(x, this.urnChild, 100) },
      { name: "restart_participants", parse: booleanField },
      { name: "exclude_active", parse: booleanField },
      {
        name: "extra",
        parse: (x) => (isPlainObject(x) ? normalizeExtra(x) : fail("Must be a valid JSON object")),
      },
      {
        name: "params",
        parse: (x) => {
          if (!isPlainObject(x)) fail("Must be a valid JSON object");
          if (pyJsonDumps(x).length > 10_000) fail("Cannot exceed 10,000 characters encoded.");
          return x;
        },
      },
    ]);
    const contacts = (v.contacts as ContactRecord[] | undefined) ?? [];
    const groups = (v.groups as GroupRecord[] | undefined) ?? [];
    const urns = (v.urns as string[] | undefined) ?? [];
    if (contacts.length + groups.length + urns.length === 0) {
      nonFieldError("Must specify at least one group, contact or URN");
    }
    const flow = v.flow as FlowRecord;
    const params = v.params as Record<string, unknown> | undefined;
    const extra = v.extra as Record<string, unknown> | undefined;
    const chosen = params && Object.keys(params).length > 0 ? params : (extra ?? params ?? {});
    const now = this.state.clock.now();
    const start: FlowStartRecord = {
      uuid: uuid4(),
      id: this.state.nextStartId(),
      flow: flow.uuid,
      flowName: flow.name,
      contacts: contacts.map((c) => c.uuid),
      groups: groups.map((g) => g.uuid),
      urns,
      params: chosen,
      extra: chosen,
      restartParticipants: (v.restart_participants as boolean | undefined) ?? true,
      excludeActive: (v.exclude_active as boolean | undefined) ?? false,
      status: "pending",
      started: [],
      createdOn: now,
      modifiedOn: now,
    };
    this.state.flowStarts.push(start);
    this.schedule(() => this.processFlowStart(start));
    return this.flowStartJson(start);
  }

  private flowStartJson(s: FlowStartRecord): Record<string, unknown> {
    return {
      uuid: s.uuid,
      flow: { uuid: s.flow, name: s.flowName },
      status: s.status,
      progress: { total: s.status === "pending" ? -1 : s.started.length || -1, started: s.started.length },
      groups: s.groups.map((uuid) => this.groupRef(uuid)),
      contacts: s.contacts.map((uuid) => this.contactRef(uuid)),
      params: s.params,
      created_on: formatMicros(s.createdOn),
      modified_on: formatMicros(s.modifiedOn),
      id: s.id,
      extra: s.extra,
      restart_participants: s.restartParticipants,
      exclude_active: s.excludeActive,
    };
  }

  /** Mailroom's start batch: active contacts only, exclusions applied; starting interrupts the current flow. */
  private processFlowStart(s: FlowStartRecord): void {
    s.status = "starting";
    const flowRef = { uuid: s.flow, name: s.flowName };
    for (const contact of this.resolveRecipients(s.contacts, s.groups, s.urns)) {
      if (contact.status !== "active") continue;
      if (s.excludeActive && contact.flow !== null) continue;
      if (!s.restartParticipants && contact.flowHistory.has(s.flow)) continue;
      contact.flow = { ...flowRef };
      contact.flowHistory.add(s.flow);
      this.state.touch(contact);
      s.started.push(contact.uuid);
    }
    s.status = "completed";
    s.modifiedOn = this.state.clock.now();
  }

  // --- POST contact_actions.json --------------------------------------------------------------------------------

  private postContactActions(data: Record<string, unknown>): void {
    const v = runFields(data, [
      {
        name: "contacts",
        required: true,
        parse: (x) => {
          const contacts = manyRelatedField(x, this.lookupContact, 100);
          if (contacts.length === 0) fail("Contacts can't be empty.");
          return contacts;
        },
      },
      { name: "action", required: true, parse: (x) => choiceField(x, CONTACT_ACTIONS) },
      {
        name: "group",
        emptyIsNull: true,
        parse: (x) => {
          const group = this.lookupGroup(x);
          if (group.query !== null) fail(`Contact group must not be query based: ${pyStr(x)}`);
          return group;
        },
      },
    ]);
    const contacts = v.contacts as ContactRecord[];
    const action = v.action as (typeof CONTACT_ACTIONS)[number];
    const group = v.group as GroupRecord | undefined;
    const withGroup = action === "add" || action === "remove";
    if (withGroup && !group) nonFieldError(`For action "${action}" you should also specify a group`);
    if (!withGroup && group) nonFieldError(`For action "${action}" you should not specify a group`);
    if (action === "add") {
      const inactive = contacts.filter((c) => c.status !== "active").map((c) => c.uuid);
      if (inactive.length > 0) nonFieldError(`Non-active contacts cannot be added to groups: ${inactive.join(", ")}`);
    }
    for (const contact of contacts) {
      switch (action) {
        case "add":
          group?.contacts.add(contact.uuid);
          break;
        case "remove":
          group?.contacts.delete(contact.uuid);
          break;
        case "block":
          contact.status = "blocked";
          contact.flow = null;
          for (const g of this.state.groups.values()) g.contacts.delete(contact.uuid);
          break;
        case "unblock":
          contact.status = "active";
          break;
        case "interrupt":
          contact.flow = null;
          break;
        case "archive_messages":
        case "archive":
          for (const msg of this.state.messages) {
            if (msg.contact === contact.uuid && msg.direction === "in") msg.visibility = "archived";
          }
          break;
        case "delete":
          contact.active = false;
          contact.flow = null;
          for (const g of this.state.groups.values()) g.contacts.delete(contact.uuid);
          break;
      }
      this.state.touch(contact);
    }
  }

  // --- POST media.json ------------------------------------------------------------------------------------------

  /**
   * `media.json` before v8.1.37: Surveyor's attachment endpoint (SurveyorAttachmentsEndpoint). A multipart `media_file`
   * and `extension` are stored and answered 201 `{"location": <public url>}`; anything else (a `file` field, say) is
   * 400 `{}`. Only multipart and form bodies are parsed.
   */
  private async surveyorAttachment(
    contentType: string | undefined,
    raw: Buffer,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const type = contentType ?? "";
    const mime = type.split(";")[0]?.trim().toLowerCase() ?? "";
    if (raw.length > 0 && mime !== "multipart/form-data" && mime !== "application/x-www-form-urlencoded") {
      throw new ApiError({ detail: `Unsupported media type "${type}" in request.` }, 415);
    }
    let form: FormData | undefined;
    if (raw.length > 0) {
      try {
        form = await new Request("http://fake.invalid/", {
          method: "POST",
          headers: { "content-type": type },
          body: raw,
        }).formData();
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new ApiError({ detail: `Multipart form parse error - ${reason}` });
      }
    }
    const file = form?.get("media_file");
    const extension = form?.get("extension");
    if (!file || typeof file === "string" || typeof extension !== "string" || extension === "") {
      return { status: 400, body: {} };
    }
    const uuid = uuid4();
    const filename = `${uuid}.${extension}`;
    const media: MediaRecord = {
      uuid,
      filename,
      contentType: file.type.split(";")[0]?.trim() || "application/octet-stream",
      size: file.size,
      content: Buffer.from(await file.arrayBuffer()),
      url: `${this.settings.baseUrl()}/media/${uuid}/${quoteFilename(filename)}`,
      createdOn: this.state.clock.now(),
    };
    this.state.media.set(uuid, media);
    return { status: 201, body: { location: media.url } };
  }

  private async uploadMedia(contentType: string | undefined, raw: Buffer): Promise<MediaRecord> {
    const type = contentType ?? "";
    const mime = type.split(";")[0]?.trim().toLowerCase() ?? "";
    if (raw.length > 0 && mime !== "multipart/form-data" && mime !== "application/x-www-form-urlencoded") {
      throw new ApiError({ detail: `Unsupported media type "${type}" in request.` }, 415);
    }
    let file: ReturnType<FormData["get"]> = null;
    if (raw.length > 0) {
      try {
        const form = await new Request("http://fake.invalid/", {
          method: "POST",
          headers: { "content-type": type },
          body: raw,
        }).formData();
        file = form.get("file");
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new ApiError({ detail: `Multipart form parse error - ${reason}` });
      }
    }
    if (file === null) throw new ApiError({ file: ["No file was submitted."] });
    if (typeof file === "string") {
      throw new ApiError({ file: ["The submitted data was not a file. Check the encoding type on the form."] });
    }
    const filename = file.name.replace(/\\/g, "/").split("/").pop() ?? "";
    if (filename === "") throw new ApiError({ file: ["No filename could be determined."] });
    if (file.size === 0) throw new ApiError({ file: ["The submitted file is empty."] });
    const fileType = file.type.split(";")[0]?.trim() ?? "";
    const allowed = this.since("9.1.92") ? ALLOWED_MEDIA_TYPES : LEGACY_MEDIA_TYPES;
    if (!allowed.some((pattern) => fnmatch(fileType, pattern))) {
      throw new ApiError({ file: ["Unsupported file type."] });
    }
    if (file.size > this.settings.maxUploadBytes) {
      throw new ApiError({
        file: [`Limit for file uploads is ${pyFloat(this.settings.maxUploadBytes / 1_048_576)} MB.`],
      });
    }
    const uuid = uuid4();
    const media: MediaRecord = {
      uuid,
      filename,
      contentType: fileType,
      size: file.size,
      content: Buffer.from(await file.arrayBuffer()),
      url: `${this.settings.baseUrl()}/media/${uuid}/${quoteFilename(filename)}`,
      createdOn: this.state.clock.now(),
    };
    this.state.media.set(uuid, media);
    return media;
  }

  private serveMedia(url: URL, method: string, res: ServerResponse): void {
    const match = /^\/media\/([^/]+)\/(.+)$/.exec(url.pathname);
    const media = match?.[1] === undefined ? undefined : this.state.findMedia(match[1]);
    let name: string | undefined;
    try {
      name = match?.[2] === undefined ? undefined : decodeURIComponent(match[2]);
    } catch {
      name = undefined;
    }
    if ((method !== "GET" && method !== "HEAD") || !media || name !== media.filename) {
      sendHtml(res, 404, "<Error><Code>NoSuchKey</Code></Error>");
      return;
    }
    res.writeHead(200, { "Content-Type": media.contentType, "Content-Length": String(media.size) }).end(media.content);
  }

  // --- GET endpoints --------------------------------------------------------------------------------------------

  private handleGet(name: string, query: URLSearchParams, url: URL): Record<string, unknown> {
    switch (name) {
      case "messages":
        return this.paginate(this.listMessages(query), query, url, (m) => this.state.msgJson(m));
      case "contacts":
        return this.paginate(this.listContacts(query), query, url, (c) => this.state.contactJson(c));
      case "broadcasts": {
        const list = this.filterByUuidAndDates(this.state.broadcasts, query);
        return this.paginate(list, query, url, (b) => this.broadcastJson(b));
      }
      case "flow_starts": {
        const list = this.filterByUuidAndDates(this.state.flowStarts, query);
        return this.paginate(list, query, url, (s) => this.flowStartJson(s));
      }
      case "flows": {
        const uuid = uuidParam(query, "uuid");
        const flows = [...this.state.flows.values()].filter((f) => uuid === undefined || f.uuid === uuid);
        return this.paginate(flows.reverse(), query, url, (f) => flowJson(f));
      }
      case "workspace":
        return {
          uuid: this.settings.workspace.uuid,
          name: this.settings.workspace.name,
          country: null,
          languages: [this.settings.flowLanguage],
          timezone: "UTC",
          date_style: "day_first",
          anon: false,
          credits: { used: -1, remaining: -1 },
          primary_language: this.settings.flowLanguage,
        };
      default:
        throw new ApiError({ detail: "Not found." }, 404);
    }
  }

  private listMessages(query: URLSearchParams): MsgRecord[] {
    const filters = ["contact", "folder", "label", "broadcast"].filter((key) => param(query, key) !== undefined);
    if (filters.length > 1) {
      throw new ApiError({ detail: "You may only specify one of the contact, folder, label, broadcast parameters" });
    }
    const id = param(query, "id");
    if (id !== undefined && !/^-?\d+$/.test(id)) throw new ApiError({ detail: "Value for id must be an integer" });
    const uuid = uuidParam(query, "uuid");
    const contactRef = param(query, "contact");
    const contact =
      contactRef !== undefined && isUuid(contactRef) ? this.state.contacts.get(contactRef.toLowerCase()) : undefined;
    const folder = param(query, "folder")?.toLowerCase();
    const broadcast = param(query, "broadcast");
    const label = param(query, "label");
    const { after, before } = dateParams(query);
    const list = this.state.messages.filter((msg) => {
      const owner = this.state.contacts.get(msg.contact);
      if (!owner?.active) return false;
      if (id !== undefined && msg.id !== Number(id)) return false;
      if (uuid !== undefined && msg.uuid !== uuid) return false;
      if (contactRef !== undefined && (contact === undefined || msg.contact !== contact.uuid)) return false;
      if (label !== undefined) return false;
      if (broadcast !== undefined && String(msg.broadcast?.id ?? "") !== broadcast) return false;
      if (folder !== undefined && !inFolder(msg, folder)) return false;
      if (after !== undefined && msg.createdOn < after) return false;
      if (before !== undefined && msg.createdOn > before) return false;
      return true;
    });
    return list.sort((a, b) => b.createdOn - a.createdOn || b.id - a.id);
  }

  private listContacts(query: URLSearchParams): ContactRecord[] {
    const uuid = uuidParam(query, "uuid");
    const urn = param(query, "urn");
    let identity: string | undefined;
    if (urn !== undefined) {
      const normalized = normalizeUrn(urn);
      if (normalized === undefined) throw new ApiError({ detail: `Invalid URN: ${urn}` });
      identity = storedIdentity(normalized);
    }
    const deleted = ["true", "1", "yes"].includes((param(query, "deleted") ?? "").toLowerCase());
    const groupRef = param(query, "group");
    const group = groupRef === undefined ? undefined : this.state.findGroup(groupRef);
    const { after, before } = dateParams(query);
    const list = [...this.state.contacts.values()].filter((c) => {
      if (c.active === deleted) return false;
      if (uuid !== undefined && c.uuid !== uuid) return false;
      if (identity !== undefined && !c.urns.some((u) => storedIdentity(u) === identity)) return false;
      if (groupRef !== undefined && !group?.contacts.has(c.uuid)) return false;
      if (after !== undefined && c.modifiedOn < after) return false;
      if (before !== undefined && c.modifiedOn > before) return false;
      return true;
    });
    return list.sort((a, b) => b.modifiedOn - a.modifiedOn || b.id - a.id);
  }

  private filterByUuidAndDates<T extends { uuid: string; id: number; createdOn: number }>(
    items: T[],
    query: URLSearchParams,
  ): T[] {
    const uuid = uuidParam(query, "uuid");
    const { after, before } = dateParams(query);
    return items
      .filter(
        (item) =>
          (uuid === undefined || item.uuid === uuid) &&
          (after === undefined || item.createdOn >= after) &&
          (before === undefined || item.createdOn <= before),
      )
      .sort((a, b) => b.createdOn - a.createdOn || b.id - a.id);
  }

  /** DRF CursorPagination's envelope; the cursor is opaque (here: the offset). */
  private paginate<T>(
    items: T[],
    query: URLSearchParams,
    url: URL,
    toJson: (item: T) => Record<string, unknown>,
  ): Record<string, unknown> {
    const cursor = param(query, "cursor");
    let offset = 0;
    if (cursor !== undefined) {
      const decoded = /^o=(\d+)$/.exec(Buffer.from(cursor, "base64").toString("latin1"));
      if (!decoded?.[1]) throw new ApiError({ detail: "Invalid cursor" }, 404);
      offset = Number(decoded[1]);
    }
    const size = this.settings.pageSize;
    const page = items.slice(offset, offset + size);
    const link = (at: number): string => {
      const params = new URLSearchParams(query);
      params.delete("cursor");
      if (at > 0) params.set("cursor", Buffer.from(`o=${at}`).toString("base64"));
      const search = params.toString();
      return `${this.settings.baseUrl()}${url.pathname}${search === "" ? "" : `?${search}`}`;
    };
    return {
      next: offset + size < items.length ? link(offset + size) : null,
      previous: offset > 0 ? link(Math.max(0, offset - size)) : null,
      results: page.map(toJson),
    };
  }

  private contactRef(uuid: string): { uuid: string; name: string | null } {
    return { uuid, name: this.state.contacts.get(uuid)?.name ?? null };
  }

  private groupRef(uuid: string): { uuid: string; name: string } {
    return { uuid, name: this.state.groups.get(uuid)?.name ?? "" };
  }

  /** Runs `work` after `asyncDelayMs`, the way RapidPro hands broadcasts and flow starts to mailroom's queue. */
  private schedule(work: () => void): void {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        try {
          if (!this.closed) work();
        } finally {
          resolve();
        }
      }, this.settings.asyncDelayMs);
      this.timers.set(timer, resolve);
    });
    this.pending.add(done);
    void done.then(() => this.pending.delete(done));
  }
}

// --- helpers ------------------------------------------------------------------------------------------------------

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      ...headers,
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(text)),
      Vary: "Accept, Cookie",
    })
    .end(text);
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res
    .writeHead(status, {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(html)),
    })
    .end(html);
}

/** Reads the whole body; undefined when it is larger than `max` bytes (the rest is drained). */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > max) tooLarge = true;
    if (!tooLarge) chunks.push(buf);
  }
  return tooLarge ? undefined : Buffer.concat(chunks);
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return;
  for await (const _ of req) {
    // discard
  }
}

/** DRF's JSONParser behind request.data: empty body → {}, wrong Content-Type → 415, bad JSON → 400. */
function parseJsonBody(contentType: string | undefined, raw: Buffer): unknown {
  if (raw.length === 0) return {};
  const type = contentType ?? "";
  const mime = type.split(";")[0]?.trim().toLowerCase() ?? "";
  const [main, sub] = mime.split("/");
  const json = (main === "application" || main === "*") && (sub === "json" || sub === "*");
  if (!json) throw new ApiError({ detail: `Unsupported media type "${type}" in request.` }, 415);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new ApiError({ detail: "JSON parse error - 'utf-8' codec can't decode the request body" });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError({ detail: `JSON parse error - ${error instanceof Error ? error.message : String(error)}` });
  }
}

/** `query_params.get`: the last value of a repeated parameter. */
function param(query: URLSearchParams, key: string): string | undefined {
  return query.getAll(key).at(-1);
}

/** `get_uuid_param`: absent → undefined, invalid → 400 `Param 'uuid': x is not a valid UUID.` */
function uuidParam(query: URLSearchParams, key: string): string | undefined {
  const value = param(query, key);
  if (value === undefined || value === "") return undefined;
  if (!isUuid(value)) throw new ApiError({ detail: `Param '${key}': ${value} is not a valid UUID.` });
  return value.toLowerCase();
}

/** `before` / `after` (inclusive). */
function dateParams(query: URLSearchParams): { after?: number; before?: number } {
  const out: { after?: number; before?: number } = {};
  for (const key of ["after", "before"] as const) {
    const value = param(query, key);
    if (value === undefined || value === "") continue;
    const micros = parseIsoMicros(value);
    if (micros === undefined) throw new ApiError({ detail: `Param '${key}': ${value} is not a valid datetime.` });
    out[key] = micros;
  }
  return out;
}

function inFolder(
  msg: { direction: string; status: string; visibility: string; flow: unknown },
  folder: string,
): boolean {
  switch (folder) {
    case "inbox":
      return msg.direction === "in" && msg.visibility === "visible" && msg.flow === null;
    case "flows":
      return msg.direction === "in" && msg.visibility === "visible" && msg.flow !== null;
    case "archived":
      return msg.visibility === "archived";
    case "outbox":
      return msg.direction === "out" && (msg.status === "queued" || msg.status === "errored");
    case "sent":
      return msg.direction === "out" && ["wired", "sent", "delivered", "read"].includes(msg.status);
    case "failed":
      return msg.direction === "out" && msg.status === "failed";
    case "incoming":
      return msg.direction === "in";
    default:
      return false;
  }
}

/** Languages: any three lower-case letters (RapidPro checks its ISO 639-3 table). */
function isLanguage(code: string): boolean {
  return /^[a-z]{3}$/.test(code);
}

/** `LanguageField`: CharField(max_length=3) + the ISO 639-3 check. */
function languageField(value: unknown): string {
  const code = charField(value, 3);
  if (!isLanguage(code)) fail("Not an allowed ISO 639-3 language code.");
  return code;
}

/** `normalize_extra`: keys sanitised to [a-zA-Z0-9_] (≤255), strings cut to 640, lists become dicts, ≤256 items. */
function normalizeExtra(extra: Record<string, unknown>): Record<string, unknown> {
  const walk = (value: unknown, count: number): [unknown, number] => {
    if (typeof value === "string") return [truncateCodePoints(value, 640), count + 1];
    if (typeof value === "number" || typeof value === "boolean") return [value, count + 1];
    if (value === null || value === undefined) return ["", count + 1];
    const entries: [string, unknown][] = Array.isArray(value)
      ? value.map((item, index) => [String(index), item])
      : Object.entries(value as Record<string, unknown>);
    let n = count + 1;
    const out: Record<string, unknown> = {};
    for (const [key, item] of entries) {
      const [normalized, next] = walk(item, n);
      out[key.replace(/[^a-zA-Z0-9_]/g, "_").slice(0, 255)] = normalized;
      n = next;
      if (n >= FLOW_START_EXTRA_SIZE) break;
    }
    return [out, n];
  };
  return walk(extra, -1)[0] as Record<string, unknown>;
}

function mediaJson(media: MediaRecord): Record<string, unknown> {
  return {
    uuid: media.uuid,
    content_type: media.contentType,
    url: media.url,
    filename: media.filename,
    size: media.size,
  };
}

function flowJson(flow: FlowRecord): Record<string, unknown> {
  const created = formatMicros(flow.createdOn);
  return {
    uuid: flow.uuid,
    name: flow.name,
    type: "message",
    archived: false,
    labels: [],
    expires: 10080,
    runs: { active: 0, waiting: 0, completed: 0, expired: 0, interrupted: 0, failed: 0 },
    results: [],
    parent_refs: [],
    created_on: created,
    modified_on: created,
  };
}
