import { createHash } from "node:crypto";
import { Router, type Request, type Response } from "express";
import {
  InitRequestSchema,
  TranscriptEmailRequestSchema,
  TranscriptQuerySchema,
  TranscriptTypeSchema,
  type InitResponse,
  type StoredMessage,
  type TranscriptType,
} from "../../protocol/index.js";
import { secretsEqual, type ApiKeys } from "../core/api-keys.js";
import { toView, type Conversation } from "../core/conversation.js";
import { isWhisper, type ConversationService } from "../core/conversations.js";
import { GatewayError, invalidPayload } from "../core/errors.js";
import type { Logger } from "../logger.js";
import type { ConversationStore } from "../core/store.js";
import type { TranscriptMailer } from "../transcript/mailer.js";
import type { TranscriptInput } from "../transcript/pdf.js";
import { bearer } from "./auth.js";
import { consumeOrRefuse, createLimiter, setRetryAfter, type Limiter, type LimiterOptions } from "./limits.js";

export interface CustomerRoutesDeps {
  core: ConversationService;
  store: ConversationStore;
  apiKeys: ApiKeys;
  mailer: TranscriptMailer | undefined;
  logger: Logger;
  maxTextLength: number;
  initLimits: InitLimits;
  /** Channels init accepts; empty: any. */
  allowedChannels: readonly string[];
  /** Renders PDF transcripts (off the event loop). */
  renderer: { render(input: TranscriptInput): Promise<Buffer> };
  transcriptLimits: TranscriptLimits;
  observeSmtp: (outcome: "ok" | "error", seconds: number) => void;
}

/** The init route's rate limits (see {@link initLimits}). */
export interface InitLimits {
  /** Anonymous calls per client address (web widgets). */
  perAddress: Limiter;
  /** Calls per API key (connectors, RapidPro, back offices: many customers from one address). */
  perApiKey: Limiter;
}

/** The init route's limits. Counted in this process unless `redis` is given (then shared by every node). */
export function initLimits(options: {
  perAddressPerMinute: number;
  perApiKeyPerMinute: number;
  redis?: LimiterOptions["redis"];
}): InitLimits {
  const shared = options.redis === undefined ? {} : { redis: options.redis };
  return {
    perAddress: createLimiter({
      name: "init-address",
      points: options.perAddressPerMinute,
      durationSeconds: 60,
      ...shared,
    }),
    perApiKey: createLimiter({ name: "init-key", points: options.perApiKeyPerMinute, durationSeconds: 60, ...shared }),
  };
}

/** The transcript routes' rate limits (see {@link transcriptLimits}). */
export interface TranscriptLimits {
  /** Transcript requests per client address; API-key callers are not counted. */
  perAddress: Limiter;
  /** PDFs per conversation. */
  pdfs: Limiter;
  /** E-mails per conversation: the address is the customer's word, not verified. */
  emails: Limiter;
}

/**
 * The transcript routes' limits. Counted in this process unless `redis` is given (then shared by every node).
 */
export function transcriptLimits(options: {
  perAddressPerMinute: number;
  pdfsPerHour: number;
  emailsPerHour: number;
  redis?: LimiterOptions["redis"];
}): TranscriptLimits {
  const shared = options.redis === undefined ? {} : { redis: options.redis };
  return {
    perAddress: createLimiter({
      name: "transcript-address",
      points: options.perAddressPerMinute,
      durationSeconds: 60,
      ...shared,
    }),
    pdfs: createLimiter({ name: "transcript-pdf", points: options.pdfsPerHour, durationSeconds: 3600, ...shared }),
    emails: createLimiter({
      name: "transcript-email",
      points: options.emailsPerHour,
      durationSeconds: 3600,
      message: (seconds) => `This transcript was e-mailed too often; retry in ${seconds} s.`,
      ...shared,
    }),
  };
}

/** `POST /api/customer/init`, `GET /api/customer/transcript/:id/:type` and `POST /api/customer/transcript/:id/email`. */
export function customerRoutes(deps: CustomerRoutesDeps): Router {
  const router = Router();

  router.post("/init", async (req, res) => {
    const credential = bearer(req);
    const trusted = credential !== undefined && deps.apiKeys.verify(credential);
    // Counted before anything else is done; an API key by a digest of it, never the key itself.
    if (trusted) await consumeOrRefuse(res, deps.initLimits.perApiKey, keyDigest(credential));
    else await consumeOrRefuse(res, deps.initLimits.perAddress, req.ip ?? "unknown");
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
    await transcript(req, res, type.data, query.data.token, query.data.to);
  });

  router.post("/transcript/:id/email", async (req, res) => {
    const query = TranscriptQuerySchema.safeParse(req.query);
    if (!query.success) throw invalidPayload(query.error.issues);
    const body = TranscriptEmailRequestSchema.safeParse(req.body ?? {});
    if (!body.success) throw invalidPayload(body.error.issues);
    const { to } = body.data;
    if (to !== undefined && query.data.to !== undefined && to !== query.data.to) {
      throw invalidPayload([{ path: ["to"], message: "the body and the query name different recipients" }]);
    }
    await transcript(req, res, "email", query.data.token, to ?? query.data.to);
  });

  /**
   * Serves a transcript. Rendering is by far the most expensive step, so it comes last: every refusal (credential,
   * conversation, recipient, mail transport, rate limits) is decided before it. The per-conversation limits are
   * counted only for a caller the conversation admits, so that nobody else can use up its customer's allowance.
   */
  async function transcript(
    req: Request,
    res: Response,
    type: TranscriptType,
    token: string | undefined,
    requestedTo: string | undefined,
  ): Promise<void> {
    const credential = token ?? bearer(req);
    // Counted before the credential is checked: this limit is also what stops tokens being guessed from one address.
    if (credential === undefined || !deps.apiKeys.verify(credential)) {
      await consumeOrRefuse(res, deps.transcriptLimits.perAddress, req.ip ?? "unknown");
    }
    if (credential === undefined) {
      throw new GatewayError(
        "unauthorized",
        "Send the conversation token as Authorization: Bearer <token> (or ?token=).",
      );
    }
    const conversation = await deps.store.get(String(req.params.id));
    if (!conversation) throw new GatewayError("not_found", "No such conversation.");
    const caller = authorize(conversation, credential, deps.apiKeys);
    if (conversation.state !== "ended") {
      throw new GatewayError("not_found", "The transcript is available once the conversation has ended.");
    }

    let mail: { mailer: TranscriptMailer; to: string } | undefined;
    if (type === "email") {
      if (requestedTo !== undefined && caller !== "apiKey") {
        throw new GatewayError("forbidden", "Only API-key callers may choose the recipient.");
      }
      const to = requestedTo ?? conversation.customer.email;
      if (to === undefined) {
        throw new GatewayError("invalid_payload", "No e-mail address is on file for this conversation.", undefined, {
          status: 422,
        });
      }
      if (!deps.mailer) throw new GatewayError("not_configured", "No mail transport is configured (SMTP_URL).");
      mail = { mailer: deps.mailer, to };
    }
    const limit = type === "pdf" ? deps.transcriptLimits.pdfs : deps.transcriptLimits.emails;
    await consumeOrRefuse(res, limit, conversation.id);

    const messages = (await deps.store.read(conversation.id, 0)).filter(forCustomer);
    let pdf: Buffer;
    try {
      pdf = await deps.renderer.render({
        conversation: toView(conversation),
        messages,
        ...(conversation.timeZone === undefined ? {} : { timeZone: conversation.timeZone }),
      });
    } catch (error) {
      setRetryAfter(res, error);
      throw error;
    }

    if (mail === undefined) {
      res.setHeader("Content-Type", "application/pdf");
      res.setHeader("Content-Disposition", `attachment; filename="transcript-${conversation.id}.pdf"`);
      res.setHeader("Cache-Control", "no-store");
      res.status(200).send(pdf);
      return;
    }
    const started = performance.now();
    try {
      await mail.mailer.send({
        to: mail.to,
        conversation: toView(conversation),
        pdf,
        ...(conversation.timeZone === undefined ? {} : { timeZone: conversation.timeZone }),
      });
      deps.observeSmtp("ok", (performance.now() - started) / 1000);
    } catch (error) {
      deps.observeSmtp("error", (performance.now() - started) / 1000);
      deps.logger.warn({ err: error, conversationId: conversation.id }, "transcript e-mail failed");
      throw new GatewayError("unavailable", "The mail server did not accept the transcript; try again later.");
    }
    res.status(200).end();
  }

  return router;
}

/** A short, stable name for an API key in a limiter's keys, from which the key cannot be recovered. */
const keyDigest = (apiKey: string): string => createHash("sha256").update(apiKey).digest("base64url").slice(0, 22);

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
