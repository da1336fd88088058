import { SubscribeConversationsSchema, UnsubscribeConversationsSchema } from "../../protocol/index.js";
import { GatewayError } from "../core/errors.js";
import type { SocketContext } from "./handlers.js";
import { defineHandler } from "./registry.js";

/**
 * `subscribeConversations`: an agent application (an API-key socket) hears of the queue's changes from now on
 * (`conversationUpdated`); again, it replaces its filter. A registered connector hears of its own channel only.
 */
export const subscribeConversations = defineHandler({
  event: "subscribeConversations",
  schema: SubscribeConversationsSchema,
  handle(context: SocketContext, filter) {
    if (context.state.principal.kind !== "apiKey") {
      return Promise.reject(new GatewayError("unauthorized", "The queue is for agent applications, on an API key."));
    }
    const scope = context.state.connector?.channel;
    if (scope !== undefined && filter.channel !== undefined && filter.channel !== scope) {
      return Promise.reject(new GatewayError("forbidden", `This connector is registered for ${scope}.`));
    }
    if (!context.socket.connected) return Promise.reject(new GatewayError("unavailable", "The socket disconnected."));
    const { socket, state } = context;
    context.queue.subscribe(
      {
        id: socket.id,
        emit: (event, update) => socket.emit(event, update),
        scope: () => state.connector?.channel,
      },
      filter,
    );
    return Promise.resolve({ ok: true });
  },
});

/** `unsubscribeConversations`: no more `conversationUpdated` for this socket (also when it had not subscribed). */
export const unsubscribeConversations = defineHandler({
  event: "unsubscribeConversations",
  schema: UnsubscribeConversationsSchema,
  handle(context: SocketContext) {
    context.queue.remove(context.socket.id);
    return Promise.resolve({ ok: true });
  },
});

export const queueHandlers = [subscribeConversations, unsubscribeConversations];
