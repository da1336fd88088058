import { Router } from "express";
import {
  InitRequestSchema,
  TranscriptQuerySchema,
  TranscriptTypeSchema,
  type InitResponse,
  type StoredMessage,
} from "../../protocol/index.js";
import { secretsEqual, type ApiKeys } from "../core/api-keys.js";
import { toView, type Conversation } from "../core/conversation.js";
import { isWhisper, type ConversationService } from "../core/conversations.js";
import { GatewayError, invalidPayload } from "../core/errors.js";
import type { Logger } from "../logger.js";
import type { ConversationStore } from "../core/store.js";
import type { TranscriptMailer } from "../transcript/mailer.js";
import { renderTranscriptPdf } from "../transcript/pdf.js";
import { bearer } from "./auth.js";
import { rateLimit } from "./rate-limit.js";

export interface CustomerRoutesDeps {
  core: ConversationService;
  store: ConversationStore;
  apiKeys: ApiKeys;
  mailer: TranscriptMailer | undefined;
  logger: Logger;
  maxTextLength: number;
  initRateLimit: number;
  /** Channels init accepts; empty: any. */
  allowedChannels: readonly string[];
  /** E-mailed transcripts per conversation per hour: the address is the customer's word, not verified. */
  emailsPerHour: number;
  observeSmtp: (outcome: "ok" | "error", seconds: number) => void;
}

/** `POST /api/customer/init` and `GET /api/customer/transcript/:id/:type`. */
export function customerRoutes(deps: CustomerRoutesDeps): Router {
  const router = Router();
  const emailsSent = new Map<string, number[]>();

  router.post("/init", rateLimit({ limit: deps.initRateLimit, windowMs: 60_000 }), async (req, res) => {
    const parsed = InitRequestSchema.safeParse(req.body);
    if (!parsed.success) throw invalidPayload(parsed.error.issues);
    if (deps.allowedChannels.length > 0 && !deps.allowedChannels.includes(parsed.data.channel)) {
      throw invalidPayload([{ path: ["channel"], message: `must be one of ${deps.allowedChannels.join(", ")}` }]);
    }
    const tooLong = Object.entries(parsed.data).filter(
      ([, value]) => typeof value === "string" && value.length > deps.maxTextLength,
    );
    if (tooLong.length > 0) {
      throw invalidPayload(
        tooLong.map(([path]) => ({ path: [path], message: `at most ${deps.maxTextLength} characters` })),
      );
    }
    const credential = bearer(req);
    const trusted = credential !== undefined && deps.apiKeys.verify(credential);
    const { conversation } = await deps.core.init(parsed.data, { trusted });
    const body: InitResponse = {
      conversationId: conversation.id,
      participant: { id: conversation.customer.id, name: conversation.customer.name },
      token: conversation.token,
      requestId: conversation.requestId,
      timestamp: conversation.createdAt,
    };
    res.status(200).json(body);
  });

  router.get("/transcript/:id/:type", async (req, res) => {
    const type = TranscriptTypeSchema.safeParse(req.params.type);
    if (!type.success) {
      throw new GatewayError("invalid_payload", "Transcript type is pdf or email.", {
        fields: [{ path: "type", message: "must be pdf or email" }],
      });
    }
    const query = TranscriptQuerySchema.safeParse(req.query);
    if (!query.success) throw invalidPayload(query.error.issues);
    const credential = query.data.token ?? bearer(req);
    if (credential === undefined) {
      throw new GatewayError("unauthorized", "Send the conversation token (?token= or Authorization: Bearer).");
    }
    const conversation = await deps.store.get(String(req.params.id));
    if (!conversation) throw new GatewayError("not_found", "No such conversation.");
    const caller = authorize(conversation, credential, deps.apiKeys);
    if (conversation.state !== "ended") {
      throw new GatewayError("not_found", "The transcript is available once the conversation has ended.");
    }
    const messages = (await deps.store.read(conversation.id, 0)).filter(forCustomer);
    const pdf = await renderTranscriptPdf({ conversation: toView(conversation), messages });

    if (type.data === "pdf") {
      res.setHeader("Content-Type", "application/pdf");
      res.setHeader("Content-Disposition", `attachment; filename="transcript-${conversation.id}.pdf"`);
      res.setHeader("Cache-Control", "no-store");
      res.status(200).send(pdf);
      return;
    }
    if (query.data.to !== undefined && caller !== "apiKey") {
      throw new GatewayError("forbidden", "Only API-key callers may choose the recipient.");
    }
    const to = query.data.to ?? conversation.customer.email;
    if (to === undefined) {
      throw new GatewayError("invalid_payload", "No e-mail address is on file for this conversation.", undefined, {
        status: 422,
      });
    }
    if (!deps.mailer) throw new GatewayError("not_configured", "No mail transport is configured (SMTP_URL).");
    const hourAgo = Date.now() - 3_600_000;
    const recent = (emailsSent.get(conversation.id) ?? []).filter((at) => at > hourAgo);
    if (recent.length >= deps.emailsPerHour) {
      const retryAfter = Math.max(1, Math.ceil(((recent[0] ?? hourAgo) - hourAgo) / 1000));
      res.setHeader("Retry-After", String(retryAfter));
      throw new GatewayError("rate_limited", "This transcript was e-mailed too often; retry later.", {
        retryAfterSeconds: retryAfter,
      });
    }
    recent.push(Date.now());
    emailsSent.set(conversation.id, recent);
    if (emailsSent.size > 10_000) {
      for (const [id, times] of emailsSent) if (!times.some((at) => at > hourAgo)) emailsSent.delete(id);
    }
    const started = performance.now();
    try {
      await deps.mailer.send({ to, conversation: toView(conversation), pdf });
      deps.observeSmtp("ok", (performance.now() - started) / 1000);
    } catch (error) {
      deps.observeSmtp("error", (performance.now() - started) / 1000);
      deps.logger.warn({ err: error, conversationId: conversation.id }, "transcript e-mail failed");
      throw new GatewayError("unavailable", "The mail server did not accept the transcript; try again later.");
    }
    res.status(200).end();
  });

  return router;
}

/** The customer's token opens their own conversation; an API key opens any. */
function authorize(conversation: Conversation, credential: string, apiKeys: ApiKeys): "customer" | "apiKey" {
  if (secretsEqual(credential, conversation.token)) return "customer";
  if (apiKeys.verify(credential)) return "apiKey";
  throw new GatewayError("unauthorized", "The credential does not grant this conversation.");
}

/** What a customer may read: no whispers (and typing is never stored). */
function forCustomer(message: StoredMessage): boolean {
  return !isWhisper(message) && !(message.type === "ActivityMessage" && message.activityType === "typing");
}
