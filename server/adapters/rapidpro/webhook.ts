import type { IncomingHttpHeaders } from "node:http";
import express, { Router, type Request } from "express";
import { secretsEqual } from "../../core/api-keys.js";
import type { Conversation } from "../../core/conversation.js";
import { systemParticipant, type ConversationService } from "../../core/conversations.js";
import { GatewayError, invalidPayload } from "../../core/errors.js";
import type { Logger } from "../../logger.js";
import type { ConversationStore } from "../../core/store.js";
import type { RapidProChannel } from "./channel.js";
import type { RapidProConfig } from "./config.js";
import {
  CHANNEL,
  FlowWebhookSchema,
  contactMessage,
  contactName,
  historyDigest,
  resultsSummary,
  type FlowWebhook,
} from "./mapper.js";

export interface LiveAgentsDeps {
  core: ConversationService;
  store: ConversationStore;
  channel: RapidProChannel;
  config: RapidProConfig;
  /** True when hand-offs go to an external desk (Rocket.Chat): registerClient then waits for the room. */
  externalDesk: boolean;
  maxPayloadBytes: number;
  logger: Logger;
}

/** How long registerClient may spend fetching the bot history (RapidPro waits 15 s for the whole call). */
const DIGEST_TIMEOUT_MS = 2_500;

/** The RapidPro "call_webhook" sender acting on the contact's behalf. */
const rapidProActor = { id: "rapidpro", name: "RapidPro", role: "connector" as const };

/**
 * `/live-agents/registerClient` and `/live-agents/sendMessageToAgent`, exactly as flows written for the old
 * LiveAgents mediator call them (`/live-agents/sendMessageToClient` is the Rocket.Chat webhook). Bodies are JSON
 * whatever their Content-Type; answers come within RapidPro's 15 s budget, as soon as the work is durably recorded.
 */
export function liveAgentsRoutes(deps: LiveAgentsDeps): Router {
  const router = Router();
  // RapidPro sends JSON, but flow authors may delete the Content-Type header: parse whatever it says.
  const json = express.json({ type: () => true, limit: deps.maxPayloadBytes, strict: true });

  const authorize = liveAgentsAuthorizer(deps.config);
  const parse = (req: Request): FlowWebhook => parseFlowWebhook(req.body);

  const start = startConversation(deps);

  // The token is checked before the body is read: an unauthenticated caller learns nothing about the body.
  const guard = (req: Request, _res: unknown, next: (error?: unknown) => void) => {
    try {
      authorize(req.headers);
      next();
    } catch (error) {
      next(error);
    }
  };

  router.post("/live-agents/registerClient", guard, json, async (req, res) => {
    const body = parse(req);
    const isSimulation = simulated(req.headers);
    const existing = await deps.store.findOpenByChannelRef(CHANNEL, body.contact.uuid);
    const digest = existing || isSimulation || !deps.externalDesk ? undefined : await digestFor(body, deps);
    const { conversation, created } = await start(body, {
      simulated: isSimulation,
      ...(digest === undefined ? {} : { digest }),
    });
    const outcome = deps.externalDesk
      ? await waitForSession(deps.store, conversation.id, deps.config.RAPIDPRO_REGISTER_WAIT_MS)
      : "opened";
    if (outcome === "no_agent") {
      // The flow takes its Failure branch (and may try again later): this attempt ends here, nothing lingers.
      await deps.core.end(conversation, { ...systemParticipant, role: "system" }, "no agent available", {
        fromDesk: true,
      });
      throw new GatewayError("unavailable", "No agent is available right now.");
    }
    const current = (await deps.store.get(conversation.id)) ?? conversation;
    deps.logger.info({ conversationId: current.id, created, outcome }, "rapidpro hand-off registered");
    res.status(200).json({
      conversationId: current.id,
      roomId: current.desk.ids.rid ?? null,
      status: current.state === "active" ? "active" : "queued",
    });
  });

  // 200 when the message is with the agent, 202 when it is recorded and no agent has the conversation yet.
  const sendMessageToAgent = sendMessageToAgentHandler(deps);
  router.post("/live-agents/sendMessageToAgent", guard, json, async (req, res) => {
    const answer = await sendMessageToAgent(req.headers, req.body);
    res.status(answer.status).json(answer.body);
  });

  return router;
}

/** Mailroom's flow simulator marks its webhooks: conversations it opens are marked simulated. */
const simulated = (headers: IncomingHttpHeaders): boolean => headers["x-mailroom-mode"] === "simulation";

/** Refuses a flow webhook without `Authorization: Token <RAPIDPRO_WEBHOOK_TOKEN>` (when that token is set). */
export function liveAgentsAuthorizer(config: RapidProConfig): (headers: IncomingHttpHeaders) => void {
  return (headers) => {
    const expected = config.RAPIDPRO_WEBHOOK_TOKEN;
    if (expected === undefined) return;
    const match = /^Token\s+(\S+)\s*$/i.exec(headers.authorization ?? "");
    if (!match?.[1] || !secretsEqual(match[1], expected)) {
      throw new GatewayError("unauthorized", "Send Authorization: Token <RAPIDPRO_WEBHOOK_TOKEN>.");
    }
  };
}

function parseFlowWebhook(body: unknown): FlowWebhook {
  const parsed = FlowWebhookSchema.safeParse(body);
  if (!parsed.success) throw invalidPayload(parsed.error.issues, "Not a RapidPro flow webhook body.");
  return parsed.data;
}

/** Opens (or finds) the contact's conversation for a hand-off, trusted: the flow webhook is authenticated. */
function startConversation(deps: LiveAgentsDeps) {
  return async (body: FlowWebhook, options: { simulated: boolean; digest?: string }) => {
    const language = body.contact.language ?? undefined;
    const department = body.department?.trim() ?? "";
    return deps.core.init(
      {
        firstName: contactName(body).slice(0, 200),
        channel: CHANNEL,
        refId: body.contact.uuid,
        language: language !== undefined && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(language) ? language : "en",
        ...(department === "" ? {} : { subject: department.slice(0, 256) }),
      },
      { trusted: true },
      { simulated: options.simulated, ...(options.digest === undefined ? {} : { deskNote: options.digest }) },
    );
  };
}

function sendMessageToAgentHandler(deps: LiveAgentsDeps) {
  const start = startConversation(deps);
  return async (
    headers: IncomingHttpHeaders,
    rawBody: unknown,
  ): Promise<{ status: 200 | 202; body: { conversationId: string; messageId: string } }> => {
    const body = parseFlowWebhook(rawBody);
    const message = contactMessage(body);
    if (message.text.trim() === "" && message.attachments.length === 0) {
      throw invalidPayload([
        { path: ["results", "clientmessage", "value"], message: "the contact's message is empty" },
      ]);
    }
    let conversation: Conversation | undefined = await deps.store.findLatestByChannelRef(CHANNEL, body.contact.uuid);
    if (!conversation) throw new GatewayError("not_found", "No hand-off was registered for this contact.");
    if (conversation.state === "ended") {
      if (!deps.config.RAPIDPRO_REOPEN)
        throw new GatewayError("conversation_ended", "The agent closed this conversation.");
      conversation = (await start(body, { simulated: simulated(headers) })).conversation;
    }
    const { message: recorded } = await deps.core.send(conversation, rapidProActor, {
      text: message.text,
      attachments: message.attachments,
      to: [],
      tag: "",
      ...(message.id === undefined ? {} : { id: message.id }),
    });
    const current = (await deps.store.get(conversation.id)) ?? conversation;
    // 202: recorded, and known not to be with an agent yet (no room so far); it is delivered when there is one.
    const delivered = !deps.externalDesk || current.desk.openedAt !== undefined;
    return { status: delivered ? 200 : 202, body: { conversationId: current.id, messageId: recorded.id } };
  };
}

/** The contact's recent bot conversation and the flow's results, for the agent; undefined when there is none. */
async function digestFor(body: FlowWebhook, deps: LiveAgentsDeps): Promise<string | undefined> {
  const hours = deps.config.RAPIDPRO_HISTORY_HOURS;
  const results = resultsSummary(body);
  if (hours === 0) return results === undefined ? undefined : `Flow results: ${results}`;
  try {
    const since = new Date(Date.now() - hours * 3_600_000);
    let timer: NodeJS.Timeout | undefined;
    const messages = await Promise.race([
      deps.channel.client.messages(body.contact.uuid, since),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("history took too long")), DIGEST_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    return historyDigest(contactName(body), messages, hours, results);
  } catch (error) {
    // Context is a courtesy: the hand-off must not wait for, or fail on, it.
    deps.logger.warn({ err: error }, "rapidpro history unavailable for the hand-off digest");
    return results === undefined ? undefined : `Flow results: ${results}`;
  }
}

/** Waits (bounded) until the desk session is open, the desk reported no agent, or time is up. */
async function waitForSession(
  store: ConversationStore,
  conversationId: string,
  timeoutMs: number,
): Promise<"opened" | "no_agent" | "pending"> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const conversation = await store.get(conversationId);
    if (!conversation || conversation.desk.openedAt !== undefined || conversation.state === "ended") return "opened";
    const head = await store.outboxHead(conversationId, "desk");
    if (head?.kind === "open" && head.lastError?.includes("no-agent-online") === true) return "no_agent";
    if (Date.now() >= deadline) return "pending";
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
