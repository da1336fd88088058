import { Router } from "express";
import { secretsEqual } from "../../core/api-keys.js";
import type { ConversationService } from "../../core/conversations.js";
import { GatewayError, invalidPayload } from "../../core/errors.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import type { LiveChatDesk } from "./desk.js";
import { DESK_NAME, WebhookSchema, authorsOf, chatIdOf, eventsFromPayload, usersOf } from "./mapper.js";

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
    // Queue positions come by RTM (queue_position_updated); the webhook's copy would only repeat them.
    const events = eventsFromPayload(action, payload, ctx).filter((event) => event.type !== "queued");
    await deps.core.applyDeskEvents(conversation, events);
    log.debug({ conversationId: conversation.id, events: events.length }, "webhook recorded");
    res.type("text/plain").send("ok");
  });
  return router;
}
