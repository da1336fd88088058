import { Router } from "express";
import { ConnectorMessageRequestSchema, type ConnectorMessageResponse } from "../../protocol/index.js";
import type { ApiKeys } from "../core/api-keys.js";
import type { ConversationService } from "../core/conversations.js";
import { GatewayError, invalidPayload } from "../core/errors.js";
import { requireApiKey } from "./auth.js";

const channelPattern = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** `POST /api/connectors/:channel/messages`: third-party and campaign messages to a channel's customers. */
export function connectorRoutes(deps: { core: ConversationService; apiKeys: ApiKeys; maxTextLength: number }): Router {
  const router = Router();
  router.post("/:channel/messages", async (req, res) => {
    requireApiKey(req, deps.apiKeys);
    const channel = String(req.params.channel);
    if (!channelPattern.test(channel)) {
      throw new GatewayError("invalid_payload", "Unknown channel name.", {
        fields: [{ path: "channel", message: "lower-case letters, digits, _ . - only" }],
      });
    }
    const parsed = ConnectorMessageRequestSchema.safeParse(req.body);
    if (!parsed.success) throw invalidPayload(parsed.error.issues);
    if (parsed.data.text.length > deps.maxTextLength) {
      throw invalidPayload([{ path: ["text"], message: `at most ${deps.maxTextLength} characters` }]);
    }
    const result = await deps.core.postToConnector(channel, parsed.data, { id: "api", name: channel });
    const body: ConnectorMessageResponse = result;
    res.status(202).json(body);
  });
  return router;
}
