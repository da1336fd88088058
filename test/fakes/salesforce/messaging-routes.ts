import { isConversationUuid, isEntryUuid } from "./ids.js";
import { empty, isObject, json, parseJson, ReplyError } from "./http-kit.js";
import type { FakeRequest, Handler, Reply } from "./http-kit.js";
import type { Conversation, MessagingState, TokenRecord } from "./messaging-state.js";
import type { MiawEntry } from "./types.js";

const REST = "/iamessage/api/v2";
export const SSE_PATH = "/eventrouter/v1/sse";
export const FILES_PATH = "/fake-files/";

/** Salesforce's wording where a public client quotes it; the fake's own, in the same style, elsewhere. */
const UUID_MESSAGE = "Specify the conversationId in UUID format. The UUID must be in lowercase.";

/** An error answer as Messaging for In-App and Web writes it: JSON with a code and a message. */
export function miawError(status: number, message: string, headers?: Record<string, string>): Reply {
  return json(status, { code: String(status), message }, headers);
}

function fail(status: number, message: string): never {
  throw new ReplyError(miawError(status, message));
}

function requireJsonBody(req: FakeRequest): Record<string, unknown> {
  const type = req.header("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) fail(415, `Content type '${type}' is not supported. Use application/json.`);
  const parsed = parseJson(req.body);
  if (!parsed.ok) fail(400, "The request body is not valid JSON.");
  if (!isObject(parsed.value)) fail(400, "The request body must be a JSON object.");
  return parsed.value;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") fail(400, `The ${key} parameter must be a string.`);
  return value;
}

function routingAttributes(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) fail(400, "The routingAttributes parameter must be an object.");
  const attributes: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") fail(400, `The routing attribute ${key} must be a string.`);
    attributes[key] = item;
  }
  return attributes;
}

/** The HTTP side of Messaging for In-App and Web: validation in Salesforce's order, then the state. */
export class MessagingApi {
  constructor(private readonly state: MessagingState) {}

  private get settings() {
    return this.state.settings;
  }

  route(method: string, path: string): Handler | Reply {
    if (path === SSE_PATH) return method === "GET" ? (req) => this.stream(req) : this.notAllowed();
    if (path.startsWith(FILES_PATH)) return method === "GET" ? (req) => this.download(req) : this.notAllowed();
    if (!path.startsWith(`${REST}/`)) return miawError(404, "The requested resource does not exist.");
    const rest = path.slice(REST.length + 1);
    switch (rest) {
      case "authorization/unauthenticated/access-token":
        return method === "POST" ? (req) => this.accessToken(req) : this.notAllowed();
      case "authorization/continuation-access-token":
        return method === "GET" ? (req) => this.continuation(req) : this.notAllowed();
      case "conversation":
        return method === "POST" ? (req) => this.create(req) : this.notAllowed();
      case "conversation/list":
        return method === "GET" ? (req) => this.list(req) : this.notAllowed();
    }
    const match = /^conversation\/([^/]+)(?:\/(message|entry|file|entries|session))?$/.exec(rest);
    if (!match) return miawError(404, "The requested resource does not exist.");
    const id = decodeURIComponent(match[1] ?? "");
    const action = match[2];
    const routes: Record<string, [string, (req: FakeRequest, id: string) => Reply]> = {
      "": ["DELETE", (req, cid) => this.close(req, cid)],
      message: ["POST", (req, cid) => this.message(req, cid)],
      entry: ["POST", (req, cid) => this.typing(req, cid)],
      entries: ["GET", (req, cid) => this.entries(req, cid)],
      session: ["DELETE", (req, cid) => this.endSession(req, cid)],
    };
    if (action === "file") return method === "POST" ? (req) => this.file(req, id) : this.notAllowed();
    const found = routes[action ?? ""];
    if (!found) return miawError(404, "The requested resource does not exist.");
    const [allowed, handler] = found;
    return method === allowed ? (req) => handler(req, id) : this.notAllowed();
  }

  private notAllowed(): Reply {
    return miawError(405, "The HTTP method is not allowed for this resource.");
  }

  private bearer(req: FakeRequest): TokenRecord {
    const header = req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const record = match?.[1] === undefined ? undefined : this.state.authenticate(match[1]);
    if (!record) fail(401, "The access token is missing, expired or invalid.");
    return record;
  }

  /** The caller's conversation: 400 for a malformed id, 404 unknown, 403 another end user's. */
  private conversation(token: TokenRecord, id: string): Conversation {
    if (!isConversationUuid(id)) fail(400, UUID_MESSAGE);
    const conversation = this.state.conversation(id);
    if (!conversation) fail(404, `The conversation ${id} does not exist.`);
    if (conversation.subject !== token.claims.sub) fail(403, "You don't have access to this conversation.");
    return conversation;
  }

  private deployment(value: unknown): void {
    if (value === undefined || value === null || value === "") fail(400, "Specify the esDeveloperName parameter.");
    if (value !== this.settings.deployment) fail(400, "The esDeveloperName parameter value is invalid.");
  }

  private accessToken(req: FakeRequest): Reply {
    const body = requireJsonBody(req);
    const orgId = body.orgId;
    if (typeof orgId !== "string" || orgId === "") fail(400, "Specify the orgId parameter.");
    if (orgId !== this.settings.orgId15 && orgId !== this.settings.orgId18)
      fail(400, "The orgId parameter is invalid.");
    this.deployment(body.esDeveloperName);
    if (typeof body.capabilitiesVersion !== "string" || body.capabilitiesVersion === "")
      fail(400, "Specify the capabilitiesVersion parameter.");
    if (body.platform !== "Web" && body.platform !== "iOS" && body.platform !== "Android")
      fail(400, "Specify the platform parameter: Web, iOS or Android.");
    if (body.context !== undefined && !isObject(body.context)) fail(400, "The context parameter must be an object.");
    optionalString(body, "deviceId");
    const { record, lastEventId } = this.state.issueToken(undefined);
    return json(200, this.tokenBody(record, lastEventId));
  }

  private continuation(req: FakeRequest): Reply {
    const token = this.bearer(req);
    // Same subject and the same expiry: continuation does not extend a token's life.
    const { record, lastEventId } = this.state.issueToken(token.claims.sub, token.claims.exp);
    return json(200, this.tokenBody(record, lastEventId));
  }

  private tokenBody(record: TokenRecord, lastEventId: string): unknown {
    return {
      accessToken: record.token,
      lastEventId,
      context: {
        endUser: { subject: record.claims.sub },
        configuration: {
          embeddedServiceConfig: {
            name: this.settings.deployment,
            deploymentType: "Custom",
            embeddedServiceMessagingChannel: { channelAddressIdentifier: this.state.channelAddressIdentifier },
          },
        },
      },
    };
  }

  private create(req: FakeRequest): Reply {
    const token = this.bearer(req);
    const body = requireJsonBody(req);
    if (!isConversationUuid(body.conversationId)) fail(400, UUID_MESSAGE);
    this.deployment(body.esDeveloperName);
    const attributes = routingAttributes(body.routingAttributes) ?? {};
    const language = optionalString(body, "language");
    if (this.state.conversation(body.conversationId))
      fail(409, `A conversation with the conversationId ${body.conversationId} already exists.`);
    this.state.createConversation(token.claims.sub, body.conversationId, attributes, language);
    return empty(201);
  }

  private list(req: FakeRequest): Reply {
    const token = this.bearer(req);
    const includeClosed = req.url.searchParams.get("inclClosedConvs");
    if (includeClosed !== null && includeClosed !== "true" && includeClosed !== "false")
      fail(400, "The inclClosedConvs parameter must be true or false.");
    const limit = this.limit(req.url.searchParams.get("limit"));
    const all = this.state.subjectConversations(token.claims.sub);
    const open = all.filter((c) => c.status === "Open");
    const closed = all.filter((c) => c.status === "Closed");
    const listed = (includeClosed === "true" ? all : open).slice(0, limit).map((c) => ({
      conversationId: c.id,
      startTimestamp: c.createdAt,
      status: c.status === "Open" ? "OPEN" : "CLOSED",
    }));
    return json(200, {
      openConversationsFound: open.length,
      closedConversationsFound: closed.length,
      conversations: listed,
    });
  }

  private limit(raw: string | null): number {
    if (raw === null) return 20;
    const limit = Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 50) fail(400, "The limit parameter must be from 1 to 50.");
    return limit;
  }

  /** Checks shared by message and file: the conversation is open and has a session, or starts a new one. */
  private sendable(
    token: TokenRecord,
    id: string,
    body: Record<string, unknown>,
    messageId: string,
  ): { conversation: Conversation; duplicate: boolean } {
    const conversation = this.conversation(token, id);
    if (conversation.status === "Closed") fail(400, `The conversation ${id} is closed.`);
    if (conversation.messages.has(messageId)) {
      const answer = this.settings.duplicateMessageId;
      if (answer === "conflict") fail(409, `An entry with the id ${messageId} already exists.`);
      if (answer === "badRequest") fail(400, `An entry with the id ${messageId} already exists.`);
      return { conversation, duplicate: true };
    }
    const isNew = body.isNewMessagingSession;
    if (isNew !== undefined && typeof isNew !== "boolean")
      fail(400, "The isNewMessagingSession parameter must be a boolean.");
    const attributes = routingAttributes(body.routingAttributes);
    const language = optionalString(body, "language");
    if (isNew === true) {
      if (conversation.sessionStatus !== "Ended")
        fail(400, "The conversation already has an active messaging session.");
      if (attributes === undefined || language === undefined)
        fail(400, "Specify routingAttributes and language to start a new messaging session.");
      this.state.startSession(conversation, attributes, language);
    } else if (conversation.sessionStatus === "Ended") {
      // What Salesforce's sample client expects: no messaging session, start one with isNewMessagingSession.
      fail(417, "No active messaging session exists for this conversation.");
    }
    return { conversation, duplicate: false };
  }

  private message(req: FakeRequest, id: string): Reply {
    const token = this.bearer(req);
    if (!isConversationUuid(id)) fail(400, UUID_MESSAGE);
    const body = requireJsonBody(req);
    const message = body.message;
    if (!isObject(message)) fail(400, "Specify the message parameter.");
    if (!isEntryUuid(message.id)) fail(400, "Specify the message id in UUID format. The UUID must be in lowercase.");
    if (message.messageType !== "StaticContentMessage") fail(400, "The messageType must be StaticContentMessage.");
    const content = message.staticContent;
    if (!isObject(content) || content.formatType !== "Text") fail(400, "The staticContent formatType must be Text.");
    if (typeof content.text !== "string" || content.text.trim() === "") fail(400, "Specify the text of the message.");
    const reply = message.inReplyToMessageId;
    if (reply !== undefined && reply !== null && !isEntryUuid(reply))
      fail(400, "The inReplyToMessageId must be a UUID.");
    this.deployment(body.esDeveloperName);
    const { conversation } = this.sendable(token, id, body, message.id);
    const { entry } = this.state.endUserMessage(conversation, message.id, content.text);
    return json(202, { conversationEntries: [entry] });
  }

  private typing(req: FakeRequest, id: string): Reply {
    const token = this.bearer(req);
    if (!isConversationUuid(id)) fail(400, UUID_MESSAGE);
    const body = requireJsonBody(req);
    const type = body.entryType;
    if (type !== "TypingStartedIndicator" && type !== "TypingStoppedIndicator")
      fail(400, "The entryType must be TypingStartedIndicator or TypingStoppedIndicator.");
    if (!isEntryUuid(body.id)) fail(400, "Specify the entry id in UUID format. The UUID must be in lowercase.");
    const conversation = this.conversation(token, id);
    if (conversation.status === "Closed") fail(400, `The conversation ${id} is closed.`);
    if (conversation.sessionStatus === "Ended") fail(417, "No active messaging session exists for this conversation.");
    this.state.endUserTyping(conversation, body.id, type === "TypingStartedIndicator");
    return json(202, { conversationEntries: [{ id: body.id, clientTimestamp: Date.now() }] });
  }

  private async file(req: FakeRequest, id: string): Promise<Reply> {
    const token = this.bearer(req);
    if (!isConversationUuid(id)) fail(400, UUID_MESSAGE);
    const type = req.header("content-type") ?? "";
    if (!/^multipart\/form-data\b/i.test(type))
      fail(415, `Content type '${type}' is not supported. Use multipart/form-data.`);
    let form: FormData;
    try {
      form = await new Response(new Uint8Array(req.body), { headers: { "content-type": type } }).formData();
    } catch {
      fail(400, "The multipart request could not be read.");
    }
    const entryPart = form.get("messageEntry");
    if (entryPart === null) fail(400, "Specify the messageEntry part.");
    const entryText = typeof entryPart === "string" ? entryPart : await entryPart.text();
    const parsed = parseJson(Buffer.from(entryText));
    if (!parsed.ok || !isObject(parsed.value)) fail(400, "The messageEntry part must be a JSON object.");
    const entry = parsed.value;
    const message = entry.message;
    if (!isObject(message)) fail(400, "Specify the message parameter.");
    if (!isEntryUuid(message.id)) fail(400, "Specify the message id in UUID format. The UUID must be in lowercase.");
    if (!isEntryUuid(message.fileId)) fail(400, "Specify the fileId in UUID format. The UUID must be in lowercase.");
    const caption = message.text;
    if (caption !== undefined && caption !== null && typeof caption !== "string")
      fail(400, "The text parameter must be a string.");
    this.deployment(entry.esDeveloperName);
    const data = form.get("fileData");
    if (data === null || typeof data === "string") fail(400, "Specify the fileData part with a file.");
    if (data.size > this.settings.maxFileBytes) fail(413, "The file exceeds the maximum file size.");
    if (data.size === 0) fail(400, "The file is empty.");
    const mimeType = data.type.split(";")[0]?.trim().toLowerCase() ?? "";
    if (!this.settings.allowedFileTypes.includes(mimeType))
      fail(400, `The file type ${mimeType || "(none)"} isn't allowed.`);
    const { conversation } = this.sendable(token, id, entry, message.id);
    const content = Buffer.from(await data.arrayBuffer());
    const name = data instanceof File && data.name !== "" ? data.name : "file";
    const result = this.state.endUserFile(
      conversation,
      message.id,
      message.fileId,
      { name, mimeType, content },
      typeof caption === "string" && caption !== "" ? caption : undefined,
    );
    return json(202, { conversationEntries: [result.entry] });
  }

  private entries(req: FakeRequest, id: string): Reply {
    const token = this.bearer(req);
    const conversation = this.conversation(token, id);
    const params = req.url.searchParams;
    const limit = this.limit(params.get("limit"));
    const direction = params.get("direction") ?? "FromEnd";
    if (direction !== "FromEnd" && direction !== "FromStart") fail(400, "The direction must be FromStart or FromEnd.");
    const start = this.timestamp(params.get("startTimestamp"), "startTimestamp");
    const end = this.timestamp(params.get("endTimestamp"), "endTimestamp");
    const filter = params.get("entryTypeFilter");
    const types = filter === null || filter === "" ? undefined : new Set(filter.split(","));
    let list: MiawEntry[] = this.state
      .entriesOf(conversation)
      .filter(
        (e) =>
          (types === undefined || types.has(e.entryType)) &&
          (start === undefined || e.transcriptedTimestamp >= start) &&
          (end === undefined || e.transcriptedTimestamp <= end),
      );
    list = direction === "FromEnd" ? list.reverse().slice(0, limit) : list.slice(0, limit);
    return json(200, { conversationEntries: list });
  }

  private timestamp(raw: string | null, name: string): number | undefined {
    if (raw === null) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) fail(400, `The ${name} parameter must be a timestamp in milliseconds.`);
    return value;
  }

  private close(req: FakeRequest, id: string): Reply {
    const token = this.bearer(req);
    if (!isConversationUuid(id)) fail(400, UUID_MESSAGE);
    this.deployment(req.url.searchParams.get("esDeveloperName") ?? undefined);
    const conversation = this.conversation(token, id);
    if (conversation.status === "Closed") fail(400, `The conversation ${id} is already closed.`);
    this.state.close(conversation);
    return empty(204);
  }

  private endSession(req: FakeRequest, id: string): Reply {
    const token = this.bearer(req);
    if (!isConversationUuid(id)) fail(400, UUID_MESSAGE);
    this.deployment(req.url.searchParams.get("esDeveloperName") ?? undefined);
    const conversation = this.conversation(token, id);
    if (conversation.status === "Closed") fail(400, `The conversation ${id} is closed.`);
    if (conversation.sessionStatus === "Ended") fail(400, "No active messaging session exists for this conversation.");
    this.state.endSession(conversation, "EndUser");
    return empty(204);
  }

  private stream(req: FakeRequest): Reply {
    const token = this.bearer(req);
    const orgId = req.header("x-org-id");
    if (orgId === undefined || orgId === "") fail(400, "Specify the X-Org-Id header.");
    if (orgId !== this.settings.orgId15) fail(400, "The X-Org-Id header must be the 15-character org id.");
    // A wildcard accepts the stream too (fetch sends */*); a header that rules it out, or none at all, does not.
    const accept = (req.header("accept") ?? "").toLowerCase();
    if (!/(^|,)\s*(text\/event-stream|text\/\*|\*\/\*)\s*(;|,|$)/.test(accept))
      fail(406, "Accept must be text/event-stream.");
    const lastEventId = req.header("last-event-id");
    if (lastEventId === undefined || lastEventId === "") {
      if (this.settings.requireLastEventId) fail(400, "Specify the Last-Event-Id header.");
    } else if (!/^\d+$/.test(lastEventId)) fail(400, "The Last-Event-Id header must be an event id.");
    const last = lastEventId === "" ? undefined : lastEventId;
    return { stream: (res) => this.state.openStream(res, token, last) };
  }

  private download(req: FakeRequest): Reply {
    const file = this.state.files.get(req.path.slice(FILES_PATH.length));
    if (!file) return miawError(404, "The requested resource does not exist.");
    return { stream: (res) => res.writeHead(200, { "Content-Type": file.mimeType }).end(file.content) };
  }
}
