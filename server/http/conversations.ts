import { Router } from "express";
import { ConversationListQuerySchema, type ConversationList } from "../../protocol/index.js";
import type { ApiKeys } from "../core/api-keys.js";
import { listConversations } from "../core/conversation-list.js";
import { invalidPayload } from "../core/errors.js";
import type { ConversationStore } from "../core/store.js";
import { requireApiKey } from "./auth.js";

/** `GET /api/conversations` (API key): the queue of open conversations, newest first, one page at a time. */
export function conversationRoutes(deps: { store: ConversationStore; apiKeys: ApiKeys }): Router {
  const router = Router();
  router.get("/", async (req, res) => {
    requireApiKey(req, deps.apiKeys);
    const parsed = ConversationListQuerySchema.safeParse(req.query);
    if (!parsed.success) throw invalidPayload(parsed.error.issues);
    const { state, ...rest } = parsed.data;
    const body: ConversationList = await listConversations(deps.store, {
      ...rest,
      ...(state === undefined ? {} : { states: state }),
    });
    res.json(body);
  });
  return router;
}
