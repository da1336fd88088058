import type {
  ActivityInfo,
  ActivityMessage,
  ActivityType,
  Button,
  ChatMessage,
  ConversationState,
  ConnectorMessageRequest,
  InitRequestParsed,
  Member,
  Message,
  Participant,
  StoredMessage,
} from "../../protocol/index.js";
import type {
  AppendOptions,
  AppendResult,
  ConnectorEntry,
  ConversationStore,
  MessageDraft,
  OutboxItem,
  OutboxRequest,
} from "./store.js";
import type { BotEffects, BotOutput } from "./bot.js";
import type { BotLaneEffects } from "./bot-outbox.js";
import type { ChannelEffects } from "./channel.js";
import type { ConnectorDispatcher } from "./connectors.js";
import {
  BOT_PARTICIPANT_ID,
  openStates,
  seesWhispers,
  toSummary,
  type Conversation,
  type DeskBinding,
} from "./conversation.js";
import type { Desk, DeskEvent, DeskSession } from "./desk.js";
import type { DeskEffects } from "./desk-outbox.js";
import { GatewayError } from "./errors.js";
import { newConversationId, newCustomerToken, newMessageId, newParticipantId, newRequestId } from "./ids.js";
import type { Clock, CoreLogger, CoreMetrics, MessageBus, QueueChange } from "./ports.js";
import { isoTimestamp } from "./timestamps.js";

export interface ConversationServiceOptions {
  greetingText: string;
  maxTextLength: number;
  /** Channels whose customers hold their own sockets; every other channel goes through connectors. */
  directChannels: readonly string[];
  /** Name of the desk that receives hand-offs (`socket` for the built-in desk). */
  deskName: string;
  /** True when that desk is an external system reached through the outbox (false for the socket desk). */
  externalDesk: boolean;
  /** The text of the `noAgentAvailable` activity. */
  noAgentText?: string;
  /** Channels whose customers Liaison reaches itself, through the channel outbox lane (`rapidpro`). */
  outboundChannels?: readonly string[];
  /** Channels whose `refId` is a stable, unguessable account id a desk may reuse as its own (see `Desk.initialIds`). */
  stableRefChannels?: readonly string[];
  /**
   * The bot that answers new conversations first (`BOT`), on every channel but those Liaison delivers to itself
   * (RapidPro's contacts come from a flow that is a bot already); unset: conversations go straight to the desk.
   */
  bot?: {
    /** `BOT`: the bot adapter's name. */
    name: string;
    /** `BOT_NAME`: the bot participant's name. */
    participantName: string;
    /** `BOT_AFTER_AGENT`: when the agent side closes, the conversation ends, or goes back to the bot. */
    afterAgent: "end" | "resume";
  };
}

/** Why a conversation went from the bot to the desk: the bot asked, the bot failed, or an agent took it. */
export type HandOffReason = "bot" | "bot_unavailable" | "takeover";

/** The hand-off activity's `desk` when a conversation goes (back) to the bot. */
export const BOT_DESK = "bot";

/** Who performs an action: a participant in a role, plus the socket it came from (excluded from the echo). */
export interface Actor extends Member {
  socketId?: string;
  /** `{ id, name }` made once for all this actor's messages (a session keeps one): no new object per message. */
  participant?: Participant;
}

/** A chat message as a client asks to send it. */
export interface ChatInput {
  id?: string;
  text: string;
  attachments: ChatMessage["attachments"];
  to: Participant[];
  tag: "" | "whisper";
  replaces?: string;
  refId?: string;
  /** A customer pressing one of the bot's buttons. */
  button?: Button;
  /** A bot's buttons (a socket that joined as a bot). */
  buttons?: Button[][];
}

export interface SendResult {
  message: StoredMessage;
  duplicate: boolean;
}

export const systemParticipant: Participant = Object.freeze({ id: "system", name: "Liaison" });

/**
 * The conversation core: every state change and every recorded message goes through here. It knows nothing of
 * sockets or HTTP: it records in the store (atomically, with the outbox entries), then publishes on the bus.
 */
export class ConversationService implements DeskEffects, ChannelEffects, BotEffects, BotLaneEffects {
  private deskSignal: (conversationId: string) => void = () => undefined;
  private desk: Pick<Desk, "initialIds" | "typing" | "capabilities"> | undefined;
  private channelSignal: (conversationId: string) => void = () => undefined;
  private botSignal: (conversationId: string) => void = () => undefined;
  private readonly customerParticipants = new WeakMap<Conversation, Participant>();
  private readonly botParticipants = new WeakMap<Conversation, Participant>();

  constructor(
    private readonly store: ConversationStore,
    private readonly bus: MessageBus,
    private readonly connectors: ConnectorDispatcher,
    private readonly options: ConversationServiceOptions,
    private readonly clock: Clock,
    private readonly logger: CoreLogger,
    private readonly metrics: CoreMetrics,
  ) {}

  /** Connects the external desk and its outbox, which is told whenever a conversation has new desk work. */
  attachDesk(
    desk: Pick<Desk, "initialIds" | "typing" | "capabilities">,
    outbox: { notify(conversationId: string): void },
  ): void {
    this.desk = desk;
    this.deskSignal = (conversationId) => outbox.notify(conversationId);
  }

  /** Connects the channel outbox: it is told whenever a conversation has new customer-bound work. */
  attachChannelOutbox(outbox: { notify(conversationId: string): void }): void {
    this.channelSignal = (conversationId) => outbox.notify(conversationId);
  }

  /** Connects the bot lane's outbox: it is told whenever a conversation has new work for the bot. */
  attachBotOutbox(outbox: { notify(conversationId: string): void }): void {
    this.botSignal = (conversationId) => outbox.notify(conversationId);
  }

  /** Whether new conversations of this channel start with the bot. */
  private startsWithBot(channel: string): boolean {
    return this.options.bot !== undefined && !this.isOutboundChannel(channel);
  }

  /** Whether the customers of this channel are reached through connectors. */
  isConnectorChannel(channel: string): boolean {
    return !this.options.directChannels.includes(channel) && !this.isOutboundChannel(channel);
  }

  /** Whether Liaison itself delivers to this channel's customers (the channel outbox lane). */
  isOutboundChannel(channel: string): boolean {
    return this.options.outboundChannels?.includes(channel) ?? false;
  }

  /**
   * `POST /api/customer/init`: starts a conversation and hands it to the desk, or returns the one it repeats (same
   * `requestId`). An open conversation of the same `channel` + `refId` is returned only to a `trusted` caller (an
   * API key: a connector vouches for the customer's number): anyone else could otherwise take over a stranger's
   * conversation by naming their phone number or e-mail, so an anonymous caller gets `conflict`.
   */
  async init(
    request: InitRequestParsed,
    caller: { trusted: boolean } = { trusted: false },
    extras: { deskNote?: string; simulated?: boolean } = {},
  ): Promise<{ conversation: Conversation; created: boolean }> {
    if (!caller.trusted) {
      // Only a direct channel's customer opens their own conversation. On a connector channel (SMS) the connector
      // reaches the customer's number: opened anonymously, anyone could make it text any number.
      if (!this.options.directChannels.includes(request.channel)) {
        throw new GatewayError("forbidden", `Conversations on ${request.channel} are opened with an API key.`);
      }
      // A repeated requestId hands out the conversation and its token: without an API key, only an id nobody can
      // guess does.
      if (request.requestId !== undefined && !unguessable(request.requestId)) {
        throw new GatewayError("invalid_payload", "Without an API key, requestId must be a random UUID.", {
          fields: [{ path: "requestId", message: "a random (v4) UUID, or a requestId the gateway issued" }],
        });
      }
    }
    const now = this.clock().toISOString();
    const name = [request.firstName, request.lastName].filter((part) => part !== undefined && part !== "").join(" ");
    const bot = this.startsWithBot(request.channel) ? this.options.bot : undefined;
    const conversation: Conversation = {
      id: newConversationId(),
      token: newCustomerToken(),
      channel: request.channel,
      customer: { id: newParticipantId(), name, firstName: request.firstName },
      subject: request.subject ?? "",
      language: request.language,
      state: bot ? "bot" : "queued",
      desk: this.freshDeskBinding(request),
      requestId: request.requestId ?? newRequestId(),
      createdAt: now,
    };
    if (bot) conversation.bot = { bot: bot.name, name: bot.participantName, ids: {} };
    if (request.refId !== undefined) conversation.refId = request.refId;
    if (request.lastName !== undefined) conversation.customer.lastName = request.lastName;
    if (request.email !== undefined) conversation.customer.email = request.email;
    if (request.phone !== undefined) conversation.customer.phone = request.phone;
    if (request.url !== undefined) conversation.url = request.url;
    if (request.comment !== undefined) conversation.comment = request.comment;
    if (request.timeZone !== undefined) conversation.timeZone = request.timeZone;
    if (extras.simulated === true) conversation.simulated = true;
    if (caller.trusted) conversation.verified = true;

    // With a bot, the conversation is handed to it first (`desk: "bot"`); the desk gets it when the bot lets go.
    const handOff = this.activity(conversation, systemParticipant, "handOff", {
      subject: conversation.subject,
      desk: bot ? BOT_DESK : this.options.deskName,
      reason: "init",
    });
    const openDesk = this.options.externalDesk && !bot;
    const account = this.customerAccount(conversation);
    if (account !== undefined) handOff.refId = account;
    const connectorChannel = this.isConnectorChannel(conversation.channel) ? conversation.channel : undefined;
    const result = await this.store.init(
      conversation,
      {
        requestId: conversation.requestId,
        ...(request.refId === undefined ? {} : { channelRef: { channel: request.channel, refId: request.refId } }),
      },
      [handOff],
      {
        ...(connectorChannel === undefined ? {} : { connectorChannel }),
        ...(openDesk ? { openDesk: true } : {}),
        ...(openDesk && extras.deskNote !== undefined ? { deskNote: extras.deskNote } : {}),
      },
    );
    if (!result.created && result.matchedBy === "channelRef" && !caller.trusted) {
      throw new GatewayError(
        "conflict",
        "This account already has an open conversation: resume it with its token, or call init with an API key.",
      );
    }
    if (!result.created && result.matchedBy === "requestId" && !caller.trusted) {
      // A retry of the same request (its answer was lost) gets its conversation again; a different one does not.
      if (!sameRequest(result.conversation, request)) {
        throw new GatewayError("conflict", "This requestId was used for another request.");
      }
    }
    if (result.created) {
      this.logger.info({ conversationId: conversation.id, channel: conversation.channel }, "conversation started");
      // Nobody has joined it yet: published for the queue's subscribers (the store gave the hand-off its seq).
      const first = handOff as StoredMessage;
      this.bus.publish({
        conversationId: conversation.id,
        message: first,
        queue: { conversation: toSummary(result.conversation, first.timestamp, first.seq) },
      });
      // Index the ids minted for the desk (a visitor token), so that a desk webhook finds the conversation even
      // before the session's own ids are known.
      if (Object.keys(conversation.desk.ids).length > 0)
        await this.store.bindDesk(conversation.id, conversation.desk.ids);
      if (connectorChannel !== undefined) this.connectors.notify(connectorChannel);
      if (openDesk) this.deskSignal(conversation.id);
    }
    return result;
  }

  /** A desk binding for a session not opened yet, with the ids the desk chooses up front (a visitor token). */
  private freshDeskBinding(conversation: { channel: string; refId?: string | undefined }): DeskBinding {
    return {
      desk: this.options.deskName,
      ids:
        this.desk?.initialIds?.(
          { channel: conversation.channel, ...(conversation.refId === undefined ? {} : { refId: conversation.refId }) },
          this.options.stableRefChannels?.includes(conversation.channel) ?? false,
        ) ?? {},
    };
  }

  async get(conversationId: string): Promise<Conversation> {
    const conversation = await this.store.get(conversationId);
    if (!conversation) throw new GatewayError("not_found", "No such conversation.");
    return conversation;
  }

  /**
   * Effects of a participant joining: the first customer join greets; an agent's join makes a queued conversation
   * `active`. An agent who joins while the bot has the conversation watches: the bot keeps it until the agent speaks.
   */
  async joined(conversation: Conversation, actor: Actor): Promise<void> {
    if (conversation.state === "ended") return;
    const participant = { id: actor.id, name: actor.name };
    if (actor.role === "customer") {
      await this.appendActivity(conversation, "participantJoined", { participant, role: "customer" }, actor, {
        flag: { key: `present:customer:${actor.id}`, value: true },
      });
      await this.greet(conversation);
    } else if (actor.role === "agent") {
      await this.appendActivity(conversation, "participantJoined", { participant, role: "agent" }, actor, {
        flag: { key: `present:agent:${actor.id}`, value: true },
        transition: { from: ["queued"], to: "active", patch: { agent: participant } },
      });
    } else if (actor.role === "bot") {
      await this.appendActivity(conversation, "participantJoined", { participant, role: "bot" }, actor, {
        flag: { key: `present:bot:${actor.id}`, value: true },
      });
    }
  }

  /** Effects of a participant leaving: `participantLeft`; the conversation's agent leaving puts it back in the queue. */
  async left(conversation: Conversation, actor: Actor): Promise<void> {
    if (conversation.state === "ended") return;
    if (actor.role !== "customer" && actor.role !== "agent" && actor.role !== "bot") return;
    const participant = { id: actor.id, name: actor.name };
    const wasAgent = actor.role === "agent" && conversation.agent?.id === actor.id;
    await this.appendActivity(conversation, "participantLeft", { participant, role: actor.role }, actor, {
      flag: { key: `present:${actor.role}:${actor.id}`, value: false },
      // Back to the queue only when no other agent is still in the conversation.
      ...(wasAgent
        ? {
            transition: {
              from: ["active"],
              to: "queued",
              patch: { agent: undefined },
              unlessFlagPrefix: "present:agent:",
            },
          }
        : {}),
    });
  }

  /** Records a chat message (idempotently by client id) and publishes it. */
  async send(conversation: Conversation, actor: Actor, input: ChatInput): Promise<SendResult> {
    if (input.tag === "whisper" && !seesWhispers(actor.role)) {
      throw new GatewayError("forbidden", "Only agents and supervisors may whisper.");
    }
    if (input.text.length > this.options.maxTextLength) {
      throw new GatewayError("invalid_payload", `Text is longer than ${this.options.maxTextLength} characters.`, {
        fields: [{ path: "text", message: `at most ${this.options.maxTextLength} characters` }],
      });
    }
    if (input.replaces !== undefined) {
      const original = await this.store.findMessage(conversation.id, input.replaces);
      if (!original || original.type !== "ChatMessage") {
        throw new GatewayError("invalid_payload", "replaces names no message of this conversation.", {
          fields: [{ path: "replaces", message: "unknown message id" }],
        });
      }
      if (original.from.id !== actor.id) throw new GatewayError("forbidden", "Only the author may correct a message.");
    }

    const fromCustomer = actor.role === "customer" || actor.role === "connector";
    if (input.button !== undefined && !fromCustomer) {
      throw new GatewayError("forbidden", "Only customers press buttons.");
    }
    if (input.buttons !== undefined && actor.role !== "bot") {
      throw new GatewayError("forbidden", "Only bots offer buttons.");
    }
    // A press shows as the button's text wherever buttons mean nothing (desks, transcripts, connectors).
    const content =
      input.button !== undefined && input.text.trim() === "" ? { ...input, text: input.button.text } : input;
    const message = chatDraft(
      input.id ?? newMessageId(),
      conversation.id,
      isoTimestamp(this.clock()),
      fromCustomer ? this.customerParticipant(conversation) : (actor.participant ?? { id: actor.id, name: actor.name }),
      content,
      this.customerAccount(conversation),
    );
    // An agent who speaks while the bot has the conversation takes it over, before their message is recorded.
    if (actor.role === "agent" && input.tag !== "whisper" && conversation.bot !== undefined) {
      const current = await this.store.get(conversation.id);
      if (current?.state === "bot")
        await this.handOff(current, "takeover", { agent: actor.participant ?? { id: actor.id, name: actor.name } });
    }

    const options: AppendOptions = { requireOpen: true };
    if (input.id !== undefined) options.dedupe = { id: input.id };
    const customerBound = !fromCustomer && input.tag !== "whisper";
    const toConnector = customerBound && this.isConnectorChannel(conversation.channel);
    if (toConnector) options.connectorChannel = conversation.channel;
    const toChannel = customerBound && this.isOutboundChannel(conversation.channel);
    const toDesk = fromCustomer && this.usesExternalDesk(conversation);
    // A bot's conversation: the customer's message goes to whoever owns it when it is recorded (the session's copy
    // of the conversation may be older than a hand-off), decided by the store in the same step.
    const toBot = fromCustomer && conversation.bot !== undefined && this.options.bot !== undefined;
    const outbox: OutboxRequest[] = [];
    if (toBot) outbox.push({ lane: "bot", kind: "message", states: BOT_STATES });
    if (toDesk)
      outbox.push(toBot ? { lane: "desk", kind: "message", states: DESK_STATES } : { lane: "desk", kind: "message" });
    if (toChannel) outbox.push({ lane: "channel", kind: "message" });
    if (outbox.length > 0) options.outbox = outbox;

    const result = await this.store.append(conversation.id, message, options);
    switch (result.status) {
      case "appended":
        this.metrics.messageIn(conversation.channel, fromCustomer ? "customer" : actor.role);
        this.publish(result.message, actor.socketId, toConnector ? conversation.channel : undefined);
        if (toBot) this.botSignal(conversation.id);
        if (toDesk) this.deskSignal(conversation.id);
        if (toChannel) this.channelSignal(conversation.id);
        // A connector's customer never "joins": their first message is when they are greeted.
        if (actor.role === "connector" && this.isConnectorChannel(conversation.channel)) await this.greet(conversation);
        return { message: result.message, duplicate: false };
      case "duplicate":
        if (!sameContent(result.message, message)) {
          throw new GatewayError("conflict", "A different message was already sent with this id.", { id: input.id });
        }
        return { message: result.message, duplicate: true };
      case "ended":
        throw new GatewayError("conversation_ended");
      case "skipped":
      case "not_found":
        throw new GatewayError("not_found", "No such conversation.");
    }
  }

  /** Relays a typing indicator: published to the others, never stored. */
  typing(conversation: Conversation, actor: Actor, state: "start" | "stop", id?: string): ActivityMessage {
    if (conversation.state === "ended") throw new GatewayError("conversation_ended");
    const fromCustomer = actor.role === "customer" || actor.role === "connector";
    const participant = fromCustomer ? this.customerParticipant(conversation) : { id: actor.id, name: actor.name };
    const message = this.activity(conversation, participant, "typing", { participant, state });
    if (id !== undefined) message.id = id;
    this.bus.publish({
      conversationId: conversation.id,
      message,
      ...(actor.socketId === undefined ? {} : { originSocketId: actor.socketId }),
      // A supervisor listens in silently: customers must not see them typing.
      ...(actor.role === "supervisor" ? { staffOnly: true } : {}),
    });
    const desk = this.desk;
    if (fromCustomer && desk?.typing && desk.capabilities.typing && this.usesExternalDesk(conversation)) {
      if (conversation.desk.openedAt !== undefined && conversation.state !== "bot") {
        const relayed =
          desk.capabilities.typing === "ordered"
            ? this.queueDeskTyping(conversation.id, state)
            : desk.typing(conversation, state);
        relayed.catch((error: unknown) =>
          this.logger.debug({ err: error, conversationId: conversation.id }, "typing not relayed to the desk"),
        );
      }
    }
    return message;
  }

  /** For a desk that takes typing in order with the messages: on the desk outbox lane, behind what waits there. */
  private async queueDeskTyping(conversationId: string, state: "start" | "stop"): Promise<void> {
    const queued = await this.store.queueTyping(conversationId, {
      id: `t:${newMessageId()}`,
      state,
      queuedAt: this.clock().getTime(),
    });
    if (queued) this.deskSignal(conversationId);
  }

  /**
   * Ends the conversation once; a repeated end reports `alreadyEnded` (the store's state change is atomic, so of
   * two ends at once, on one node or two, one records the `endOfConversation`). Unless the desk itself reported the
   * end, the desk session is closed through the outbox. With `idleBeforeMs` (an end for inactivity), it ends only
   * if its last message is older than that, checked in the same step: else it stays open (`stillActive`).
   */
  async end(
    conversation: Conversation,
    actor: Actor,
    reason: string,
    options: { fromDesk?: boolean; idleBeforeMs?: number; from?: readonly ConversationState[] } = {},
  ): Promise<{ alreadyEnded: boolean; stillActive?: true; resumed?: true }> {
    if (this.returnsToBot(conversation, actor, options)) {
      const resumed = await this.resume(conversation);
      if (resumed === "appended") return { alreadyEnded: false, resumed: true };
      if (resumed === "ended") return { alreadyEnded: true };
      // Skipped, the bot has the conversation already: a desk's close repeated (a retried webhook) changes nothing;
      // an agent who only watched the bot ends the conversation.
      if (options.fromDesk === true) return { alreadyEnded: false };
    }
    const endedBy: Member = { id: actor.id, name: actor.name, role: actor.role };
    const endedAt = this.clock().toISOString();
    const closeDesk = this.usesExternalDesk(conversation) && options.fromDesk !== true;
    const result = await this.appendActivity(conversation, "endOfConversation", { reason, endedBy }, actor, {
      transition: {
        from: options.from ?? openStates,
        to: "ended",
        patch: { endedAt, endReason: reason, endedBy },
        required: true,
      },
      ...(closeDesk ? { outbox: [{ lane: "desk" as const, kind: "close" as const, reason }] } : {}),
      ...(options.idleBeforeMs === undefined ? {} : { idleBeforeMs: options.idleBeforeMs }),
    });
    if (result === "ended") return { alreadyEnded: true };
    if (result === "skipped") return { alreadyEnded: false, stillActive: true };
    if (closeDesk) this.deskSignal(conversation.id);
    this.logger.info({ conversationId: conversation.id, endedBy: actor.role, reason }, "conversation ended");
    return { alreadyEnded: false };
  }

  /**
   * Whether this end is the agent side closing a conversation that a bot had, with `BOT_AFTER_AGENT=resume`: the
   * desk closing its session (not the customer), or an agent of the socket desk ending it. Ends for inactivity and
   * the customer's own end always end.
   */
  private returnsToBot(
    conversation: Conversation,
    actor: Actor,
    options: { fromDesk?: boolean; idleBeforeMs?: number },
  ): boolean {
    if (this.options.bot?.afterAgent !== "resume" || conversation.bot === undefined) return false;
    if (options.idleBeforeMs !== undefined) return false;
    if (options.fromDesk === true) return actor.role !== "customer";
    return actor.role === "agent" && !this.usesExternalDesk(conversation);
  }

  /**
   * `BOT_AFTER_AGENT=resume`: the agent side closed, the conversation is the bot's again (state `bot`), in one step
   * with the bot's `agent_closed` event and, for an external desk, a fresh desk binding (a later hand-off opens a new
   * session) and the customer messages the closed session had not taken yet, which go to the bot instead.
   */
  private async resume(conversation: Conversation): Promise<"appended" | "skipped" | "ended"> {
    const external = this.usesExternalDesk(conversation);
    const desk = this.freshDeskBinding(conversation);
    if (external && conversation.agent !== undefined && conversation.state !== "ended") {
      // The desk's close says nothing of its agent leaving; without this, their presence would outlive the session.
      await this.appendActivity(
        conversation,
        "participantLeft",
        { participant: conversation.agent, role: "agent" },
        undefined,
        { flag: { key: `present:agent:${conversation.agent.id}`, value: false } },
      );
    }
    const result = await this.appendActivity(
      conversation,
      "handOff",
      { subject: conversation.subject, desk: BOT_DESK, reason: "agent_closed" },
      undefined,
      {
        transition: {
          from: ["queued", "active"],
          to: "bot",
          required: true,
          patch: { agent: undefined, ...(external ? { desk } : {}) },
        },
        outbox: [
          { lane: "bot", kind: "event", name: "agent_closed" },
          ...(external ? [{ lane: "bot" as const, kind: "move" as const, from: "desk" as const }] : []),
        ],
      },
    );
    if (result !== "appended") return result;
    // Index the new session's ids chosen up front, as init does, so that its webhooks find the conversation.
    if (external && Object.keys(desk.ids).length > 0) await this.store.bindDesk(conversation.id, desk.ids);
    this.metrics.handOff("agent_closed");
    this.logger.info({ conversationId: conversation.id }, "conversation back with the bot");
    this.botSignal(conversation.id);
    return result;
  }

  /**
   * Hands a bot's conversation to the desk, in one atomic step: the `handOff` activity, the state change (`queued`,
   * or `active` for an agent of the socket desk who took it over), the department as the new subject and, for an
   * external desk, the session's open, the digest of the conversation so far and the customer's messages the bot
   * had not received yet, moved to the desk lane in order (before anything the customer sends later). The socket
   * desk's agents read all of it in the history, so the bot's waiting messages are dropped. `except` is the bot
   * lane's item being delivered when the bot asked: the bot has it, it stays. Skipped unless the bot has it now.
   */
  private async handOff(
    conversation: Conversation,
    reason: HandOffReason,
    options: { department?: string | undefined; except?: string; agent?: Participant } = {},
  ): Promise<"appended" | "skipped" | "ended"> {
    const external = this.usesExternalDesk(conversation);
    const department = options.department?.trim().slice(0, 256) ?? "";
    const subject = department === "" ? conversation.subject : department;
    const taken = options.agent !== undefined && !external;
    const except = options.except === undefined ? {} : { except: options.except };
    const outbox: OutboxRequest[] = external
      ? [
          { lane: "desk", kind: "open" },
          { lane: "desk", kind: "digest", from: "bot", ...except },
          { lane: "desk", kind: "move", from: "bot", ...except },
        ]
      : [{ lane: "bot", kind: "clear", ...except }];
    const result = await this.appendActivity(
      conversation,
      "handOff",
      { subject, desk: conversation.desk.desk, reason },
      undefined,
      {
        transition: {
          from: ["bot"],
          to: taken ? "active" : "queued",
          required: true,
          patch: {
            ...(subject === conversation.subject ? {} : { subject }),
            ...(taken ? { agent: options.agent } : {}),
          },
        },
        outbox,
      },
    );
    if (result === "appended") {
      this.metrics.handOff(reason);
      this.logger.info(
        { conversationId: conversation.id, reason, desk: conversation.desk.desk },
        "conversation handed off",
      );
    }
    return result;
  }

  // --- the bot side ----------------------------------------------------------------------------------------------

  /** What a bot reported on its own (a webhook): recorded in order, or dropped once the bot no longer has it. */
  async botOutputs(conversation: Conversation, outputs: readonly BotOutput[]): Promise<void> {
    await this.applyBotOutputs(conversation, outputs, undefined);
  }

  /** Bot lane effect: the bot answered a delivered item at once. */
  async botAnswered(conversation: Conversation, item: OutboxItem, outputs: readonly BotOutput[]): Promise<void> {
    await this.applyBotOutputs(conversation, outputs, item);
  }

  /** Bot lane effect: the bot refused an item for good or failed too long; a human takes over. */
  async botUnavailable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    this.logger.warn(
      { conversationId: conversation.id, item: item.id, reason },
      "bot unavailable: the conversation goes to the desk",
    );
    await this.handOff(conversation, "bot_unavailable");
  }

  private async applyBotOutputs(
    conversation: Conversation,
    outputs: readonly BotOutput[],
    item: OutboxItem | undefined,
  ): Promise<void> {
    const bot = conversation.bot?.bot ?? this.options.bot?.name ?? BOT_DESK;
    for (const [index, output] of outputs.entries()) {
      let outcome: "appended" | "duplicate" | "skipped" | "ended";
      switch (output.type) {
        case "reply": {
          const id =
            output.externalId !== undefined
              ? `${bot}:${output.externalId}`
              : item !== undefined
                ? `${bot}:${item.id}:${index}`
                : newMessageId();
          outcome = await this.recordBotReply(conversation, output, id);
          break;
        }
        case "handOff":
          outcome = await this.handOff(conversation, "bot", {
            department: output.department,
            ...(item === undefined ? {} : { except: item.id }),
          });
          break;
        case "end": {
          const actor: Actor = { ...this.botParticipant(conversation), role: "bot" };
          const ended = await this.end(conversation, actor, output.reason ?? "ended by the bot", { from: ["bot"] });
          outcome = ended.alreadyEnded ? "ended" : ended.stillActive === true ? "skipped" : "appended";
          break;
        }
      }
      if (outcome === "skipped" || outcome === "ended") {
        this.metrics.botOutputDropped(bot, output.type);
        this.logger.info(
          { conversationId: conversation.id, bot, output: output.type },
          "bot output dropped: the bot no longer has the conversation",
        );
      }
    }
  }

  private async recordBotReply(
    conversation: Conversation,
    reply: Extract<BotOutput, { type: "reply" }>,
    id: string,
  ): Promise<"appended" | "duplicate" | "skipped" | "ended"> {
    const message = chatDraft(
      id,
      conversation.id,
      isoTimestamp(this.clock()),
      this.botParticipant(conversation),
      { to: [], text: reply.text, attachments: reply.attachments, tag: "", buttons: reply.buttons },
      this.customerAccount(conversation),
    );
    const toConnector = this.isConnectorChannel(conversation.channel);
    const toChannel = this.isOutboundChannel(conversation.channel);
    const result = await this.store.append(conversation.id, message, {
      dedupe: { id },
      transition: WHILE_BOT,
      ...(toConnector ? { connectorChannel: conversation.channel } : {}),
      ...(toChannel ? { outbox: [{ lane: "channel" as const, kind: "message" as const }] } : {}),
    });
    switch (result.status) {
      case "appended":
        this.metrics.messageIn(conversation.channel, "bot");
        this.publish(result.message, undefined, toConnector ? conversation.channel : undefined);
        if (toChannel) this.channelSignal(conversation.id);
        return "appended";
      case "not_found":
        throw new GatewayError("not_found", "No such conversation.");
      default:
        return result.status;
    }
  }

  /**
   * One page of history: at most `limit` messages of the log after `since`, as a participant in `viewer` may see
   * them (customers and connectors never see whispers). `lastSeq` and `hasMore` are the log's, whispers included,
   * so a page of nothing but whispers still moves a customer on: `lastSeq` is where the next page (or the live
   * feed, when none follows) starts.
   */
  async history(
    conversation: Conversation,
    since: number,
    viewer: Member["role"],
    limit: number,
  ): Promise<{ messages: StoredMessage[]; lastSeq: number; hasMore: boolean }> {
    // One more than the page tells whether more follow, without a second read.
    const read = await this.store.read(conversation.id, since, limit + 1);
    const hasMore = read.length > limit;
    const page = hasMore ? read.slice(0, limit) : read;
    const messages = seesWhispers(viewer) ? page : page.filter((message) => !isWhisper(message));
    const last = page.at(-1)?.seq;
    // A `since` beyond the end (a client's mistake) must not swallow the next live messages.
    return { messages, hasMore, lastSeq: last ?? Math.min(since, await this.store.headSeq(conversation.id)) };
  }

  /**
   * `POST /api/connectors/:channel/messages`: a third-party message to a customer of the channel. Recorded in the
   * customer's open conversation when there is one (agents see it), else queued on its own.
   */
  async postToConnector(
    channel: string,
    request: ConnectorMessageRequest & { text: string; attachments: ChatMessage["attachments"] },
    sender: Participant,
  ): Promise<{ id: string; status: "queued" | "sent"; conversationId?: string }> {
    if (!this.isConnectorChannel(channel)) {
      throw new GatewayError("invalid_payload", `Customers of ${channel} connect directly; it has no connectors.`, {
        fields: [{ path: "channel", message: "not a connector channel" }],
      });
    }
    const status = (): "queued" | "sent" => (this.connectors.hasEndpoint(channel) ? "sent" : "queued");
    const open = await this.store.findOpenByChannelRef(channel, request.refId);
    if (open) {
      const input: ChatInput = { text: request.text, attachments: request.attachments, to: [], tag: "" };
      if (request.id !== undefined) input.id = request.id;
      const { message } = await this.send(open, { ...sender, role: "system" }, input);
      return { id: message.id, status: status(), conversationId: open.id };
    }
    const id = request.id ?? newMessageId();
    const message: ChatMessage = {
      type: "ChatMessage",
      id,
      conversationId: "",
      seq: 0,
      timestamp: this.clock().toISOString(),
      from: sender,
      to: [],
      refId: request.refId,
      text: request.text,
      attachments: request.attachments,
      tag: "",
    };
    const { entry } = await this.store.enqueueConnector(channel, {
      id: `campaign:${id}`,
      message,
      enqueuedAt: message.timestamp,
    });
    this.connectors.notify(channel);
    return { id: entry.message.id, status: status() };
  }

  /** A connector refused a message for good: agents see a `deliveryFailed` activity (not sent to the connector). */
  async connectorUndeliverable(channel: string, entry: ConnectorEntry, reason: string): Promise<void> {
    if (entry.message.conversationId === "") return;
    const conversation = await this.store.get(entry.message.conversationId);
    if (!conversation) return;
    await this.appendActivity(
      conversation,
      "deliveryFailed",
      { messageId: entry.message.id, destination: `connector:${channel}`, reason },
      undefined,
      { flag: { key: `failed:connector:${entry.id}`, value: true } },
      { toConnector: false },
    );
  }

  /**
   * The customer's channel refused a message for good (an unreachable contact): agents see a `deliveryFailed`
   * activity, and the desk gets a note so the agent in their own tool knows too.
   */
  async channelUndeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    const original = item.seq === undefined ? undefined : (await this.store.read(conversation.id, item.seq - 1, 1))[0];
    const shown = original?.type === "ChatMessage" ? `"${original.text.slice(0, 80)}"` : "a message";
    await this.appendActivity(
      conversation,
      "deliveryFailed",
      { messageId: original?.id ?? "", destination: conversation.channel, reason },
      undefined,
      {
        flag: { key: `failed:channel:${item.id}`, value: true },
        ...(this.usesExternalDesk(conversation)
          ? {
              outbox: [
                {
                  lane: "desk" as const,
                  kind: "note" as const,
                  text: `⚠ Not delivered to the customer: ${shown} (${reason})`,
                },
              ],
            }
          : {}),
      },
      { toConnector: false },
    );
  }

  /**
   * The customer's channel took a message but not one of its files as a file (a type or size it refuses): the
   * customer got a link to it instead (`link`), or only a line saying it could not be delivered (`dropped`). Agents
   * see a `deliveryFailed` activity naming the file, and the desk gets a note. `index` is the file's position in the
   * message, so that a retried delivery reports each file once.
   */
  async channelFileNotAttached(
    conversation: Conversation,
    message: { id: string },
    file: { index: number; name: string },
    outcome: "link" | "dropped",
    reason: string,
  ): Promise<void> {
    const happened =
      outcome === "link" ? "the customer got a link to it instead" : "the customer got a line saying so instead";
    await this.appendActivity(
      conversation,
      "deliveryFailed",
      {
        messageId: message.id,
        destination: conversation.channel,
        reason: `${file.name} was not attached (${reason}); ${happened}`,
      },
      undefined,
      {
        flag: { key: `file:channel:${message.id}:${file.index}`, value: true },
        ...(this.usesExternalDesk(conversation)
          ? {
              outbox: [
                {
                  lane: "desk" as const,
                  kind: "note" as const,
                  text: `⚠ Not attached for the customer: ${file.name} (${reason}); ${happened}`,
                },
              ],
            }
          : {}),
      },
      { toConnector: false },
    );
  }

  // --- the desk side -------------------------------------------------------------------------------------------

  /** Outbox effect: the desk session is open; record its ids and whoever took the conversation already. */
  async opened(conversation: Conversation, session: DeskSession): Promise<void> {
    const bound = await this.store.bindDesk(conversation.id, session.ids, this.clock().toISOString());
    if (!bound) return;
    this.logger.info({ conversationId: conversation.id, desk: bound.desk.desk }, "desk session opened");
    const events: DeskEvent[] = [];
    if (session.agent) events.push({ type: "agentJoined", agent: session.agent });
    else if (session.queuePosition !== undefined) events.push({ type: "queued", position: session.queuePosition });
    await this.applyDeskEvents(bound, events);
  }

  /** Outbox effect: nobody can take the conversation now; tell the customer once, it stays queued. */
  async noAgent(conversation: Conversation, reason: string): Promise<void> {
    await this.applyDeskEvents(conversation, [{ type: "noAgentAvailable", reason }]);
  }

  /** Outbox effect: the desk refused an item for good; the customer is told which message did not arrive. */
  async undeliverable(conversation: Conversation, item: OutboxItem, reason: string): Promise<void> {
    const messageId =
      item.seq === undefined ? "" : ((await this.store.read(conversation.id, item.seq - 1, 1))[0]?.id ?? "");
    await this.appendActivity(
      conversation,
      "deliveryFailed",
      { messageId, destination: conversation.desk.desk, reason },
      undefined,
      // Keyed by item, so that a retried report never doubles.
      { flag: { key: `failed:${item.id}`, value: true } },
    );
  }

  /** Desk lane effect: the desk session was closed without a webhook telling us; end it as the desk would have. */
  async sessionClosed(conversation: Conversation, reason: string): Promise<void> {
    await this.applyDeskEvents(conversation, [{ type: "closed", by: "system", reason }]);
  }

  /** Records what a desk reported (webhook or poll), idempotently: a repeated event changes nothing. */
  async applyDeskEvents(conversation: Conversation, events: readonly DeskEvent[]): Promise<void> {
    const desk = conversation.desk.desk;
    for (const event of events) {
      switch (event.type) {
        case "queued":
          if (event.position !== undefined) {
            const info = {
              position: event.position,
              ...(event.estimatedWaitSeconds === undefined ? {} : { estimatedWaitSeconds: event.estimatedWaitSeconds }),
            };
            await this.appendActivity(conversation, "queuePosition", info, undefined, {});
          }
          break;
        case "agentJoined":
          await this.appendActivity(
            conversation,
            "participantJoined",
            { participant: event.agent, role: "agent" },
            undefined,
            {
              flag: { key: `present:agent:${event.agent.id}`, value: true },
              // Not from `bot`: a desk's agent joins a session that a hand-off opened.
              transition: { from: ["queued", "active"], to: "active", patch: { agent: event.agent } },
            },
          );
          break;
        case "agentLeft":
          await this.appendActivity(
            conversation,
            "participantLeft",
            { participant: event.agent, role: "agent" },
            undefined,
            {
              flag: { key: `present:agent:${event.agent.id}`, value: false },
            },
          );
          break;
        case "noAgentAvailable":
          await this.appendActivity(
            conversation,
            "noAgentAvailable",
            { subject: conversation.subject, reason: event.reason, text: this.options.noAgentText ?? event.reason },
            undefined,
            { flag: { key: "noAgentNotified", value: true } },
          );
          break;
        case "agentMessage":
          await this.recordAgentMessage(conversation, desk, event);
          break;
        case "typing":
          if (conversation.state !== "ended") this.typing(conversation, { ...event.agent, role: "agent" }, event.state);
          break;
        case "closed": {
          const endedBy: Member =
            event.by === "agent" && event.agent
              ? { ...event.agent, role: "agent" }
              : event.by === "customer"
                ? { ...this.customerParticipant(conversation), role: "customer" }
                : { ...systemParticipant, role: "system" };
          await this.end(conversation, endedBy, event.reason, { fromDesk: true });
          break;
        }
      }
    }
  }

  private async recordAgentMessage(
    conversation: Conversation,
    desk: string,
    event: Extract<DeskEvent, { type: "agentMessage" }>,
  ): Promise<void> {
    const message = chatDraft(
      `${desk}:${event.externalId}`,
      conversation.id,
      this.clock().toISOString(),
      event.agent,
      {
        to: [],
        text: event.text,
        attachments: event.attachments,
        tag: "",
        replaces: event.editOf === undefined ? undefined : `${desk}:${event.editOf}`,
      },
      this.customerAccount(conversation),
    );
    // After the end (a late or retried webhook) the message is kept for the record, not sent to the customer.
    const open = conversation.state !== "ended";
    const toConnector = open && this.isConnectorChannel(conversation.channel);
    const toChannel = open && this.isOutboundChannel(conversation.channel);
    const result = await this.store.append(conversation.id, message, {
      dedupe: { id: message.id },
      ...(toConnector ? { connectorChannel: conversation.channel } : {}),
      ...(toChannel ? { outbox: [{ lane: "channel" as const, kind: "message" as const }] } : {}),
    });
    if (result.status === "appended") {
      this.metrics.messageIn(conversation.channel, "agent");
      this.publish(result.message, undefined, toConnector ? conversation.channel : undefined);
      if (toChannel) this.channelSignal(conversation.id);
    } else if (result.status === "duplicate" && !sameContent(result.message, message)) {
      // The desk re-sent its message id with other content and no edit mark: the first copy stands.
      this.logger.warn({ conversationId: conversation.id, messageId: message.id }, "desk message id reused");
    }
  }

  private usesExternalDesk(conversation: Conversation): boolean {
    return this.options.externalDesk && conversation.desk.desk === this.options.deskName;
  }

  private async greet(conversation: Conversation): Promise<void> {
    await this.appendActivity(conversation, "greetings", { text: this.options.greetingText }, undefined, {
      flag: { key: "greeted", value: true },
    });
  }

  /** Appends a server activity with the given options; returns the store's status. */
  private async appendActivity<T extends ActivityType>(
    conversation: Conversation,
    type: T,
    info: ActivityInfo<T>,
    actor: Actor | undefined,
    options: AppendOptions,
    routing: { toConnector?: boolean } = {},
  ): Promise<"appended" | "skipped" | "ended"> {
    const message = this.activity(conversation, systemParticipant, type, info);
    const refId = this.customerAccount(conversation);
    if (refId !== undefined) message.refId = refId;
    const toConnector = routing.toConnector !== false && this.isConnectorChannel(conversation.channel);
    const toChannel = routing.toConnector !== false && this.isOutboundChannel(conversation.channel);
    const outbox: OutboxRequest[] = [
      ...(options.outbox ?? []),
      ...(toChannel ? [{ lane: "channel" as const, kind: "message" as const }] : []),
    ];
    const result = await this.store.append(conversation.id, message, {
      ...options,
      ...(toConnector ? { connectorChannel: conversation.channel } : {}),
      ...(outbox.length > 0 ? { outbox } : {}),
    });
    if (result.status === "appended") {
      this.publish(result.message, undefined, toConnector ? conversation.channel : undefined, queueChange(result));
      if (toChannel) this.channelSignal(conversation.id);
      if (outbox.some((request) => request.lane === "desk")) this.deskSignal(conversation.id);
      return "appended";
    }
    if (result.status === "not_found") throw new GatewayError("not_found", "No such conversation.");
    if (result.status === "ended" || result.status === "skipped") return result.status;
    this.logger.warn(
      { conversationId: conversation.id, status: result.status, actor: actor?.id },
      "activity not recorded",
    );
    return "skipped";
  }

  /** Publishes a recorded message; `queue` when it came with a state change (see `queueChange`). */
  private publish(
    message: StoredMessage,
    originSocketId: string | undefined,
    connectorChannel: string | undefined,
    queue?: QueueChange,
  ): void {
    this.bus.publish({
      conversationId: message.conversationId,
      message,
      ...(originSocketId === undefined ? {} : { originSocketId }),
      ...(queue === undefined ? {} : { queue }),
    });
    if (connectorChannel !== undefined) this.connectors.notify(connectorChannel);
  }

  private activity<T extends ActivityType>(
    conversation: Conversation,
    from: Participant,
    type: T,
    info: ActivityInfo<T>,
  ): MessageDraft & ActivityMessage {
    return {
      type: "ActivityMessage",
      id: newMessageId(),
      conversationId: conversation.id,
      timestamp: isoTimestamp(this.clock()),
      from,
      to: [],
      activityType: type,
      info,
    } as MessageDraft & ActivityMessage;
  }

  /** The bot as a message's `from` (id `bot`, its `BOT_NAME`): one frozen object per conversation record. */
  private botParticipant(conversation: Conversation): Participant {
    let participant = this.botParticipants.get(conversation);
    if (!participant) {
      participant = Object.freeze({
        id: BOT_PARTICIPANT_ID,
        name: conversation.bot?.name ?? this.options.bot?.participantName ?? "",
      });
      this.botParticipants.set(conversation, participant);
    }
    return participant;
  }

  /** The customer as a message's `from`: one frozen object per conversation record, shared by its messages. */
  private customerParticipant(conversation: Conversation): Participant {
    let participant = this.customerParticipants.get(conversation);
    if (!participant) {
      participant = Object.freeze({ id: conversation.customer.id, name: conversation.customer.name });
      this.customerParticipants.set(conversation, participant);
    }
    return participant;
  }

  /** The customer's account on the channel (their phone for SMS): the `refId` connectors deliver to. */
  private customerAccount(conversation: Conversation): string | undefined {
    return conversation.refId ?? conversation.customer.phone ?? conversation.customer.email;
  }
}

/**
 * Whether an id has the form of one drawn at random with at least 122 bits: a v4 UUID (what the SDK and browsers'
 * `crypto.randomUUID` make), or one `newRequestId` made (128 bits). The form is all a server can check.
 */
function unguessable(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id) || /^r_[\w-]{22}$/.test(id);
}

/** Whether an init asks for what the conversation was opened with: the same customer, channel and account. */
function sameRequest(conversation: Conversation, request: InitRequestParsed): boolean {
  const { customer } = conversation;
  return (
    customer.firstName === request.firstName &&
    customer.lastName === request.lastName &&
    customer.email === request.email &&
    customer.phone === request.phone &&
    conversation.channel === request.channel &&
    conversation.refId === request.refId
  );
}

/**
 * What the queue's subscribers hear of an append: the conversation's summary, when the append made a state change
 * (queued, taken, handed off, ended, or another agent took it over); nothing otherwise.
 */
function queueChange(result: Extract<AppendResult, { status: "appended" }>): QueueChange | undefined {
  if (result.previousState === undefined || result.conversation === undefined) return undefined;
  return {
    conversation: toSummary(result.conversation, result.message.timestamp, result.message.seq),
    previousState: result.previousState,
  };
}

/** Where a bot conversation's customer message goes, by the state it is recorded in. */
const BOT_STATES: readonly ConversationState[] = ["bot"];
const DESK_STATES: readonly ConversationState[] = ["queued", "active"];

/**
 * A bot's reply is recorded only while the bot has the conversation: a "transition" from `bot` to itself, required,
 * makes the store check the state in the same step as the append (else `skipped`, or `ended`).
 */
const WHILE_BOT = { from: ["bot"], to: "bot", required: true } as const;

export function isWhisper(message: Message): boolean {
  return message.type === "ChatMessage" && message.tag === "whisper";
}

const NO_PARTICIPANTS: Participant[] = Object.freeze([]) as unknown as Participant[];
const NO_ATTACHMENTS: ChatMessage["attachments"] = Object.freeze([]) as unknown as ChatMessage["attachments"];

/**
 * A chat message draft, always in one shape: every field present (`refId` and `replaces` possibly undefined, which
 * JSON leaves out) and a `seq` placeholder the store fills in. One hidden class for every chat message keeps the
 * message path's property accesses monomorphic, and the memory store keeps the object itself, with no copy.
 */
function chatDraft(
  id: string,
  conversationId: string,
  timestamp: string,
  from: Participant,
  content: Pick<ChatMessage, "to" | "text" | "attachments" | "tag" | "replaces" | "buttons" | "button">,
  refId: string | undefined,
): ChatMessage {
  return {
    type: "ChatMessage",
    id,
    conversationId,
    timestamp,
    from,
    // Most messages have neither: the stored log shares one empty array instead of keeping two per message.
    to: content.to.length === 0 ? NO_PARTICIPANTS : content.to,
    text: content.text,
    attachments: content.attachments.length === 0 ? NO_ATTACHMENTS : content.attachments,
    tag: content.tag,
    refId,
    replaces: content.replaces,
    buttons: content.buttons,
    button: content.button,
    seq: 0,
  };
}

/**
 * Whether a resend under an id already recorded says the same: sender, text, tag, correction, recipients, files.
 * (Compared only when an id comes back, so the message path pays nothing for it.)
 */
function sameContent(stored: StoredMessage, draft: ChatMessage): boolean {
  return (
    stored.type === "ChatMessage" &&
    stored.from.id === draft.from.id &&
    stored.text === draft.text &&
    stored.tag === draft.tag &&
    stored.replaces === draft.replaces &&
    sameJson(stored.button, draft.button) &&
    sameJson(stored.buttons, draft.buttons) &&
    sameJson(stored.to, draft.to) &&
    sameJson(stored.attachments, draft.attachments)
  );
}

/** Equal as JSON whatever the order of each object's keys (a client's, or the schema's in an older record). */
const sameJson = (a: unknown, b: unknown): boolean => a === b || canonicalJson(a) === canonicalJson(b);

const canonicalJson = (value: unknown): string | undefined =>
  JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)))
      : item,
  );
