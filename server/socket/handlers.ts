import {
  EndConversationSchema,
  HISTORY_PAGE_DEFAULT,
  JoinConversationSchema,
  LeaveConversationSchema,
  RegisterConnectorSchema,
  SendMessageSchema,
  type ConversationInfo,
  type Member,
  type Message,
  type OkAck,
} from "../../protocol/index.js";
import { secretsEqual } from "../core/api-keys.js";
import type { ConnectorDispatcher, DeliveryOutcome } from "../core/connectors.js";
import { seesWhispers, toView, type Conversation } from "../core/conversation.js";
import type { Actor, ConversationService } from "../core/conversations.js";
import { GatewayError } from "../core/errors.js";
import type { ConversationStore } from "../core/store.js";
import type { Logger } from "../logger.js";
import type { Fanout } from "./fanout.js";
import { presenceRoom, type Presence } from "./presence.js";
import type { QueueFeed } from "./queue.js";
import { AFTER_ACK, defineHandler } from "./registry.js";
import { compileSendMessageCheck } from "./send-message-check.js";
import { Session, type SessionSource } from "./session.js";
import type { AppSocket, Principal } from "./types.js";

export interface SocketState {
  principal: Principal;
  /** Set by `registerConnector`: the channel this API-key socket delivers to (and is limited to). */
  connector?: { id: string; name: string; channel: string };
  sessions: Map<string, Session>;
}

export interface SocketDeps {
  core: ConversationService;
  presence: Presence;
  /** Several nodes: each participant's sockets also join a presence room that spans the cluster. */
  clusterPresence: boolean;
  store: ConversationStore;
  fanout: Fanout;
  /** This node's subscribers to the queue (`subscribeConversations`). */
  queue: QueueFeed;
  connectors: ConnectorDispatcher;
  logger: Logger;
}

export interface SocketContext extends SocketDeps, SessionSource {
  socket: AppSocket;
  state: SocketState;
  log: Logger;
}

/** Who is acting on `conversation` from this socket, or why it may not. */
function actorFor(context: SocketContext, conversation: Conversation): Actor {
  const session = context.state.sessions.get(conversation.id);
  if (session) return session.actor;
  if (context.state.principal.kind !== "apiKey") {
    throw new GatewayError("unauthorized", "Join the conversation with its token first.");
  }
  authorizeApiKeySocket(context, conversation);
  const connector = context.state.connector;
  return {
    id: connector ? `connector:${connector.id}` : "connector",
    name: connector?.name ?? "connector",
    role: "connector",
    socketId: context.socket.id,
  };
}

/** An API-key socket reaches every conversation, or only its channel's once it registered as a connector. */
function authorizeApiKeySocket(context: SocketContext, conversation: Conversation): void {
  const channel = context.state.connector?.channel;
  if (channel !== undefined && channel !== conversation.channel) {
    throw new GatewayError("forbidden", `This connector is registered for ${channel}, not ${conversation.channel}.`);
  }
}

export const registerConnector = defineHandler({
  event: "registerConnector",
  schema: RegisterConnectorSchema,
  handle(context: SocketContext, payload) {
    if (context.state.principal.kind !== "apiKey") {
      return Promise.reject(new GatewayError("unauthorized", "Connectors authenticate with an API key."));
    }
    const current = context.state.connector;
    if (!current && context.state.sessions.size > 0) {
      // Its sessions would be live (and unscoped); a connector registers first and joins afterwards.
      return Promise.reject(new GatewayError("conflict", "Register the connector before joining conversations."));
    }
    if (current && current.channel !== payload.channel) {
      return Promise.reject(new GatewayError("conflict", `This socket is registered for ${current.channel} already.`));
    }
    const connector = { id: payload.id, name: payload.name, channel: payload.channel };
    if (current) return Promise.resolve({ ok: true, connector: current });
    context.state.connector = connector;
    const { socket } = context;
    context.log.info({ channel: connector.channel }, "connector registered");
    return Promise.resolve({
      ok: true,
      connector,
      // After the ack has gone out, so the connector sees its registration before its first delivery.
      [AFTER_ACK]: () => {
        if (!socket.connected) return;
        context.connectors.add(connector.channel, {
          id: socket.id,
          deliver: (message, timeoutMs) => offerToConnector(socket, message, timeoutMs),
        });
      },
    });
  },
});

export const joinConversation = defineHandler({
  event: "joinConversation",
  schema: JoinConversationSchema,
  async handle(context: SocketContext, payload) {
    const conversation = await context.core.get(payload.conversationId);
    let member: Member;
    if (payload.token !== undefined) {
      if (!secretsEqual(payload.token, conversation.token)) {
        throw new GatewayError("unauthorized", "The token does not grant this conversation.");
      }
      member = { id: conversation.customer.id, name: conversation.customer.name, role: "customer" };
    } else if (context.state.principal.kind === "apiKey") {
      authorizeApiKeySocket(context, conversation);
      if (context.state.connector && payload.role !== undefined && payload.role !== "connector") {
        throw new GatewayError("forbidden", "A registered connector joins as a connector only.");
      }
      member = { id: payload.id, name: payload.name, role: payload.role ?? "connector" };
    } else {
      throw new GatewayError("unauthorized", "Customers join with the token from init.");
    }

    if (!context.socket.connected) throw new GatewayError("unavailable", "The socket disconnected.");
    const previous = context.state.sessions.get(conversation.id);
    if (previous) release(context, previous, false);
    const registeredHere = context.state.connector?.channel === conversation.channel;
    const session = new Session(conversation, member, context.socket, {
      seesWhispers: seesWhispers(member.role),
      live: !(member.role === "connector" && registeredHere && context.core.isConnectorChannel(conversation.channel)),
      source: context,
    });
    // Registered before history is read: whatever is recorded meanwhile is held, then deduped by seq.
    context.state.sessions.set(conversation.id, session);
    context.fanout.add(session);
    context.presence.joined(conversation.id, member);
    if (context.clusterPresence) await context.socket.join(presenceRoom(conversation.id, member));
    try {
      await context.core.joined(conversation, { ...member, socketId: context.socket.id });
      const current = await context.core.get(conversation.id);
      const limit = payload.limit ?? HISTORY_PAGE_DEFAULT;
      const { messages, lastSeq, hasMore } = await context.core.history(
        current,
        payload.since ?? 0,
        member.role,
        limit,
      );
      // The socket may have gone while we waited: its disconnect cleanup ran before the `Session` object was made.
      if (!context.socket.connected) throw new GatewayError("unavailable", "The socket disconnected.");
      const info: ConversationInfo = {
        conversation: toView(current),
        messages,
        hasMore,
        lastSeq,
        participant: { id: member.id, name: member.name },
        role: member.role as ConversationInfo["role"],
      };
      return {
        ok: true,
        [AFTER_ACK]: () => {
          try {
            context.socket.emit("conversationInfo", info);
          } finally {
            session.ready(lastSeq, hasMore);
          }
        },
      };
    } catch (error) {
      if (context.state.sessions.get(conversation.id) === session) context.state.sessions.delete(conversation.id);
      release(context, session, !context.socket.connected);
      throw error;
    }
  },
});

/** Takes a session off the fan-out and out of the presence count (a disconnect starts the grace period). */
export function release(
  context: Pick<SocketDeps, "fanout" | "presence">,
  session: Session,
  disconnected: boolean,
): void {
  context.fanout.remove(session);
  context.presence.released(session.conversationId, session.member, disconnected);
}

export const sendMessage = defineHandler({
  event: "sendMessage",
  schema: SendMessageSchema,
  check: compileSendMessageCheck(),
  async handle(context: SocketContext, payload) {
    // A joined socket sends with what its session knows of the conversation (the fields a send reads never change
    // after init; whether it is still open is checked by the store as it appends): no read before the write.
    const session = context.state.sessions.get(payload.conversationId);
    if (payload.type === "ActivityMessage") {
      // Typing is not recorded: its only check of the conversation's state is this fresh read.
      const current = await context.core.get(payload.conversationId);
      const typing = context.core.typing(current, actorFor(context, current), payload.info.state, payload.id);
      return { ok: true, id: typing.id, timestamp: typing.timestamp };
    }
    const conversation = session ? session.conversation : await context.core.get(payload.conversationId);
    const actor = session ? session.actor : actorFor(context, conversation);
    const { message } = await context.core.send(conversation, actor, payload);
    return { ok: true, id: message.id, seq: message.seq, timestamp: message.timestamp };
  },
});

export const endConversation = defineHandler({
  event: "endConversation",
  schema: EndConversationSchema,
  async handle(context: SocketContext, payload) {
    const conversation = await context.core.get(payload.conversationId);
    const actor = actorFor(context, conversation);
    const { alreadyEnded } = await context.core.end(conversation, actor, payload.reason ?? `ended by ${actor.role}`);
    return alreadyEnded ? { ok: true, alreadyEnded } : { ok: true };
  },
});

export const leaveConversation = defineHandler({
  event: "leaveConversation",
  schema: LeaveConversationSchema,
  async handle(context: SocketContext, payload) {
    const session = context.state.sessions.get(payload.conversationId);
    if (!session) throw new GatewayError("not_found", "This socket has not joined that conversation.");
    context.state.sessions.delete(payload.conversationId);
    release(context, session, false);
    if (context.clusterPresence) await context.socket.leave(presenceRoom(payload.conversationId, session.member));
    const conversation = await context.core.get(payload.conversationId);
    await context.core.left(conversation, { ...session.member, socketId: context.socket.id });
    return { ok: true };
  },
});

export const handlers = [registerConnector, joinConversation, sendMessage, endConversation, leaveConversation];

/** One `messageArrived` offer: settles on the connector's answer, the timeout, or the socket going away. */
function offerToConnector(socket: AppSocket, message: Message, timeoutMs: number): Promise<DeliveryOutcome> {
  if (!socket.connected) return Promise.resolve("timeout");
  return new Promise((resolve) => {
    const gone = () => resolve("timeout");
    socket.once("disconnect", gone);
    socket
      .timeout(timeoutMs)
      .emitWithAck("messageArrived", message)
      .then(
        (reply: unknown) => resolve(isOk(reply) ? "acked" : "refused"),
        () => resolve("timeout"),
      )
      .finally(() => socket.off("disconnect", gone));
  });
}

function isOk(reply: unknown): reply is OkAck {
  return typeof reply === "object" && reply !== null && (reply as { ok?: unknown }).ok === true;
}
