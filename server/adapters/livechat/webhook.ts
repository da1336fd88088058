import { Router } from "express";
import { secretsEqual } from "../../core/api-keys.js";
import type { ConversationService } from "../../core/conversations.js";
import { GatewayError, invalidPayload } from "../../core/errors.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import type { LiveChatDesk } from "./desk.js";
import { DESK_NAME, WebhookSchema, chatIdOf, eventsFromPayload, usersOf } from "./mapper.js";

export const WEBHOOK_PATH = "/webhooks/livechat";

export interface LiveChatRoutesDeps {
  core: ConversationService;
  store: ConversationStore;
  desk: LiveChatDesk;
  secret: string;
  logger: Logger;
}

/**
 * LiveChat's license webhooks (`POST /webhooks/livechat`), the second path of agent activity beside each
 * conversation's RTM socket. LiveChat signs nothing: the registered `secret_key` is in the body, compared in
 * constant time. The answer is 200 once the events are recorded; LiveChat retries anything else, and a repeated or
 * doubled webhook changes nothing (agent messages are keyed by their event id, the same on both paths).
 */
export function liveChatRoutes(deps: LiveChatRoutesDeps): Router {
  const router = Router();
  router.post(WEBHOOK_PATH, async (req, res) => {
    const body = req.body as { secret_key?: unknown } | undefined;
    const given = body?.secret_key;
    if (typeof given !== "string" || !secretsEqual(given, deps.secret)) {
      throw new GatewayError("unauthorized", "Missing or wrong secret_key.");
    }
    const parsed = WebhookSchema.safeParse(req.body);
    if (!parsed.success) throw invalidPayload(parsed.error.issues, "Not a LiveChat webhook.");
    const { action, payload } = parsed.data;
    const chatId = chatIdOf(payload);
    const log = deps.logger.child({ webhook: action, chatId });
    const conversation = chatId === undefined ? undefined : await deps.store.findByDeskRef(DESK_NAME, "chatId", chatId);
    if (!conversation) {
      log.debug({}, "webhook for a chat Liaison does not handle");
      res.type("text/plain").send("ignored");
      return;
    }
    // The chat outlives the conversation: a later conversation of the same customer resumes it in a new thread.
    const threadId =
      typeof payload.thread_id === "string"
        ? payload.thread_id
        : ((payload.chat as { thread?: { id?: unknown } } | undefined)?.thread?.id as string | undefined);
    const bound = conversation.desk.ids.threadId;
    if (threadId !== undefined && bound !== undefined && threadId !== bound) {
      log.debug({ conversationId: conversation.id }, "webhook of an earlier thread");
      res.type("text/plain").send("ignored");
      return;
    }
    deps.desk.learn(usersOf(action, payload));
    const ctx = await deps.desk.context(conversation, authorsOf(payload));
    const events = eventsFromPayload(action, payload, ctx);
    await deps.core.applyDeskEvents(conversation, events);
    log.debug({ conversationId: conversation.id, events: events.length }, "webhook recorded");
    res.type("text/plain").send("ok");
  });
  return router;
}

/** The LiveChat users a payload names without their names (an event's author, who left, who closed). */
export function authorsOf(payload: Record<string, unknown>): string[] {
  const ids: string[] = [];
  const event = payload.event as { author_id?: unknown } | undefined;
  if (typeof event?.author_id === "string") ids.push(event.author_id);
  if (typeof payload.user_id === "string") ids.push(payload.user_id);
  return ids;
}
