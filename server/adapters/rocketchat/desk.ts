import { randomBytes } from "node:crypto";
import type { Attachment, ChatMessage } from "../../../protocol/index.js";
import type { Conversation } from "../../core/conversation.js";
import {
  DeskSessionClosedError,
  NoAgentAvailableError,
  type Desk,
  type DeskCapabilities,
  type DeskSession,
} from "../../core/desk.js";
import type { RetryContext } from "../../core/outbox.js";
import { AdapterError } from "../../core/errors.js";
import type { Logger } from "../../logger.js";
import { decodeDataUrl } from "../http.js";
import { RocketChatClient, RocketChatError } from "./client.js";
import type { RocketChatConfig } from "./config.js";
import { DESK_NAME, VISITOR_TOKEN_PREFIX, agentParticipant, rocketChatMessageId, visitorFor } from "./mapper.js";

/** How far Rocket.Chat's clock may lag ours when a retry looks for an upload that landed. */
const CLOCK_SLACK_MS = 120_000;

/** How long "nobody online" is trusted to livechat/config before the room call is tried again. */
const UNSTAFFED_CHECK_MS = 60_000;

export const capabilities: DeskCapabilities = {
  attachments: true,
  edits: false,
  queuePosition: false,
  typing: false,
  buttons: false,
};

export interface RocketChatDeskOptions {
  config: RocketChatConfig & { ROCKETCHAT_URL: string };
  logger: Logger;
  /** Hosts whose http(s) attachment URLs Liaison may fetch to upload the file (SSRF guard); others go as links. */
  fetchHosts: readonly string[];
  maxFileBytes: number;
  observe?: (operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number) => void;
}

/** A fresh, unguessable visitor token for a new conversation (stored with it at init, reused by every retry). */
export function mintVisitorToken(): Record<string, string> {
  return { visitorToken: `${VISITOR_TOKEN_PREFIX}${randomBytes(18).toString("base64url")}` };
}

/**
 * The Rocket.Chat Omnichannel desk: each conversation becomes a Livechat visitor and room. Every method is
 * idempotent, as the outbox may repeat a call whose outcome it never learnt.
 */
export class RocketChatDesk implements Desk {
  readonly name = DESK_NAME;
  readonly capabilities = capabilities;
  readonly client: RocketChatClient;
  /**
   * Departments last seen with nobody online (by the id Rocket.Chat resolved, until when): their opens first ask
   * `livechat/config` (rate-limited by the default rule, not by the 5 per minute of the visitor and room routes),
   * but the real room call is tried again once the mark expires.
   */
  private readonly unstaffed = new Map<string, { departmentId: string | undefined; until: number }>();

  constructor(private readonly options: RocketChatDeskOptions) {
    const { config } = options;
    this.client = new RocketChatClient({
      baseUrl: config.ROCKETCHAT_URL,
      timeoutMs: config.ROCKETCHAT_TIMEOUT_MS,
      logger: options.logger,
      ...(config.ROCKETCHAT_USER_ID === undefined ? {} : { userId: config.ROCKETCHAT_USER_ID }),
      ...(config.ROCKETCHAT_AUTH_TOKEN === undefined ? {} : { authToken: config.ROCKETCHAT_AUTH_TOKEN }),
      ...(options.observe === undefined ? {} : { observe: options.observe }),
    });
  }

  initialIds(conversation: { channel: string; refId?: string }, stableRefId: boolean): Record<string, string> {
    // A stable account id (RapidPro's contact UUID) is the visitor token the LiveAgents mediator used: a contact
    // handed over before Liaison keeps its Rocket.Chat visitor and history.
    return stableRefId && conversation.refId !== undefined ? { visitorToken: conversation.refId } : mintVisitorToken();
  }

  async open(conversation: Conversation): Promise<DeskSession> {
    const minted = conversation.desk.ids.visitorToken;
    if (minted === undefined) throw new AdapterError(DESK_NAME, "conversation has no visitor token", false);
    let department = this.departmentOf(conversation);
    const key = department ?? "";
    // While nobody is online, retries ask livechat/config instead of spending the visitor/room routes' 5 per minute.
    const mark = this.unstaffed.get(key);
    if (mark && mark.until > Date.now() && !(await this.client.online(mark.departmentId))) {
      throw new NoAgentAvailableError("no-agent-online");
    }

    let visitor;
    try {
      visitor = await this.client.registerVisitor(visitorFor(conversation, minted, department));
    } catch (error) {
      if (!(error instanceof RocketChatError) || error.errorType !== "error-invalid-department") throw error;
      const fallback = this.options.config.ROCKETCHAT_DEPARTMENT;
      this.options.logger.warn({ conversationId: conversation.id, department }, "rocket.chat refused the department");
      department = fallback !== undefined && fallback !== department ? fallback : undefined;
      visitor = await this.client.registerVisitor(visitorFor(conversation, minted, department));
    }
    // Rocket.Chat may merge us into an existing visitor (same phone or e-mail) and answer with ITS token. That
    // visitor's open room is someone else's conversation: never adopt it; register a fresh, anonymous visitor.
    let token = visitor.token;
    if (token !== minted) {
      this.options.logger.warn(
        { conversationId: conversation.id },
        "rocket.chat merged the visitor into another; using a fresh one",
      );
      const fresh = mintVisitorToken().visitorToken ?? minted;
      const anonymous = visitorFor({ ...conversation, verified: false }, fresh, department);
      token = (await this.client.registerVisitor(anonymous)).token;
    }
    const departmentId = typeof visitor.department === "string" ? visitor.department : undefined;

    let room;
    try {
      room = (await this.client.room(token)).room;
    } catch (error) {
      if (error instanceof RocketChatError && error.errorType === "no-agent-online") {
        this.unstaffed.set(key, { departmentId, until: Date.now() + UNSTAFFED_CHECK_MS });
        throw new NoAgentAvailableError("no-agent-online");
      }
      throw error;
    }
    this.unstaffed.delete(key);
    const session: DeskSession = { ids: { visitorToken: token, rid: room._id } };
    if (department !== undefined) session.ids.department = department;
    if (room.servedBy) session.agent = agentParticipant(await this.agentOf(room._id, token, room.servedBy));
    return session;
  }

  async send(conversation: Conversation, message: ChatMessage, retry?: RetryContext): Promise<void> {
    try {
      await this.sendParts(conversation, message, retry);
    } catch (error) {
      // livechat/message says room-closed (or invalid-room once the room is gone); livechat/upload answers a room
      // that is not open to the visitor with a 403 (see RocketChatClient.upload).
      if (
        error instanceof RocketChatError &&
        (error.errorType === "room-closed" ||
          error.errorType === "invalid-room" ||
          error.errorType === "upload-forbidden")
      ) {
        throw new DeskSessionClosedError(`the Rocket.Chat room was closed (${error.errorType})`);
      }
      throw error;
    }
  }

  private async sendParts(conversation: Conversation, message: ChatMessage, retry?: RetryContext): Promise<void> {
    const { rid, visitorToken: token } = conversation.desk.ids;
    if (rid === undefined || token === undefined)
      throw new AdapterError(DESK_NAME, "no room for this conversation", false);
    const uploads: Attachment[] = [];
    const links: string[] = [];
    for (const attachment of message.attachments) {
      if (this.uploadable(attachment)) uploads.push(attachment);
      else links.push(`${attachment.name}: ${attachment.contentUrl}`);
    }
    const text = [message.text, ...links].filter((part) => part.trim() !== "").join("\n");
    if (text !== "") {
      await this.client.sendMessage({ token, rid, msg: text, _id: rocketChatMessageId(conversation, message) });
    }
    for (const attachment of uploads) await this.uploadOnce(rid, token, message, attachment, retry);
  }

  async close(conversation: Conversation, reason: string): Promise<void> {
    const { rid, visitorToken: token } = conversation.desk.ids;
    if (rid === undefined || token === undefined) return;
    try {
      await this.client.closeRoom(rid, token);
    } catch (error) {
      if (!(error instanceof RocketChatError)) throw error;
      if (error.errorType === "room-closed" || error.errorType === "invalid-room") return;
      if (error.errorType === "error-not-allowed-to-close-conversation" && this.client.hasUserCredentials) {
        await this.client.closeByUser(rid, reason);
        return;
      }
      throw error;
    }
  }

  private departmentOf(conversation: Conversation): string | undefined {
    const subject = conversation.subject.trim();
    return subject !== "" ? subject : this.options.config.ROCKETCHAT_DEPARTMENT;
  }

  private async agentOf(rid: string, token: string, servedBy: { _id: string; username?: string; name?: string }) {
    try {
      const agent = await this.client.agentInfo(rid, token);
      return agent?._id === servedBy._id ? { ...servedBy, ...agent } : servedBy;
    } catch {
      // Agent info is a nicety (the display name); the room is what matters.
      return servedBy;
    }
  }

  private uploadable(attachment: Attachment): boolean {
    if (attachment.contentUrl.startsWith("data:")) return true;
    try {
      return this.options.fetchHosts.includes(new URL(attachment.contentUrl).hostname);
    } catch {
      return false;
    }
  }

  /**
   * Uploads have no client id, so a retry could post the file twice. On a retry (only then), look in the room's
   * history for the same file (name and size) posted since the first failed attempt: the outbox works one item of
   * a conversation at a time, so nothing else of this conversation was uploaded in that window. A few minutes of
   * slack absorb clock differences between Liaison and Rocket.Chat.
   */
  private async uploadOnce(
    rid: string,
    token: string,
    message: ChatMessage,
    attachment: Attachment,
    retry: RetryContext | undefined,
  ): Promise<void> {
    const file = await this.content(attachment);
    if (retry?.outcomeUnknown === true) {
      const since = retry.since - CLOCK_SLACK_MS;
      const history = await this.client.history(rid, token, 50);
      const landed = history.some(
        (posted) =>
          posted.file?.name === attachment.name &&
          (posted.fileUpload?.size === undefined || posted.fileUpload.size === file.data.byteLength) &&
          (posted.ts === undefined || Date.parse(posted.ts) >= since),
      );
      if (landed) return;
    }
    await this.client.upload(rid, token, file, message.attachments.length === 1 ? undefined : attachment.name);
  }

  private async content(attachment: Attachment): Promise<{ name: string; type: string; data: Uint8Array }> {
    if (attachment.contentUrl.startsWith("data:")) {
      const data = decodeDataUrl(attachment.contentUrl);
      if (data === undefined)
        throw new AdapterError(DESK_NAME, `${attachment.name} is not a readable data: URL`, false);
      return { name: attachment.name, type: attachment.type, data };
    }
    let response: Response;
    try {
      response = await fetch(attachment.contentUrl, { signal: AbortSignal.timeout(30_000), redirect: "error" });
    } catch (error) {
      throw new AdapterError(DESK_NAME, `fetching ${attachment.name} failed`, true, undefined, { cause: error });
    }
    if (!response.ok) {
      throw new AdapterError(
        DESK_NAME,
        `fetching ${attachment.name}: ${response.status}`,
        response.status >= 500,
        response.status,
      );
    }
    const data = new Uint8Array(await response.arrayBuffer());
    if (data.byteLength > this.options.maxFileBytes) {
      throw new AdapterError(DESK_NAME, `${attachment.name} is larger than ${this.options.maxFileBytes} bytes`, false);
    }
    return { name: attachment.name, type: attachment.type, data };
  }
}
