import express, { Router, type ErrorRequestHandler, type Request, type Response } from "express";
import type { z } from "zod";
import { secretsEqual } from "../../core/api-keys.js";
import type { BotOutput } from "../../core/bot.js";
import type { Conversation } from "../../core/conversation.js";
import type { ConversationService } from "../../core/conversations.js";
import { GatewayError } from "../../core/errors.js";
import type { UrlSigner } from "../../core/signed-urls.js";
import type { ConversationStore } from "../../core/store.js";
import type { Logger } from "../../logger.js";
import { decodeDataUrl } from "../http.js";
import { BOT_NAME } from "./client.js";
import {
  CHAT_ID_KEY,
  CloseChatBodySchema,
  FILE_PATH,
  RedirectChatBodySchema,
  SendMessageBodySchema,
  filePath,
  replyOf,
} from "./mapper.js";

export interface GmsRoutesDeps {
  core: ConversationService;
  store: ConversationStore;
  signer: UrlSigner;
  /** `GMS_TOKEN`: what the platform sends as `Authorization: Token <value>`. */
  token: string;
  maxPayloadBytes: number;
  logger: Logger;
}

/** The platform's "Channel webhook: URL" is `<PUBLIC_URL>/gms`; it appends the method. */
export const WEBHOOK_BASE = "/gms";
export const WEBHOOK_PATHS = [
  `${WEBHOOK_BASE}/send_message`,
  `${WEBHOOK_BASE}/redirect_chat`,
  `${WEBHOOK_BASE}/close_chat`,
] as const;

/** A refusal in the platform's own shape: `{ "error": <code>, "desc": <text> }`. */
class GmsRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    desc: string,
  ) {
    super(desc);
  }
}

/**
 * The routes the platform calls (`send_message`, `redirect_chat`, `close_chat`), answered as it expects: `200
 * {"result":"ok"}` (JSON: an empty answer counts as a failure there), else `{ error, desc }` with 401 `invalid_token`,
 * 400 `bad_request`, 404 `chat_not_found`. The platform gives its calls no id, so each `send_message` is one new
 * message; a repeated `redirect_chat` or `close_chat` changes nothing more. What the bot sends once a human has the
 * conversation (or after its end) is answered `ok` and dropped, counted. Also the signed links to the customers'
 * files the platform is given.
 */
export function gmsRoutes(deps: GmsRoutesDeps): Router {
  const router = Router();
  const json = express.json({ type: () => true, limit: deps.maxPayloadBytes, strict: true });

  // The token is checked before the body is read: an unauthenticated caller learns nothing about the body.
  const authorize = (req: Request, _res: Response, next: (error?: unknown) => void) => {
    const match = /^Token\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!match?.[1] || !secretsEqual(match[1], deps.token)) {
      next(new GmsRefusal(401, "invalid_token", "Send Authorization: Token <the channel webhook token>."));
      return;
    }
    next();
  };

  const chat = async (chatId: number): Promise<Conversation> => {
    const conversation = await deps.store.findByBotRef(BOT_NAME, CHAT_ID_KEY, String(chatId));
    if (!conversation) throw new GmsRefusal(404, "chat_not_found", `No chat ${chatId} was started by Liaison.`);
    return conversation;
  };

  const handle =
    <S extends z.ZodType>(schema: S, outputs: (body: z.output<S>) => BotOutput[]) =>
    async (req: Request, res: Response) => {
      const parsed = schema.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.join(".") ?? "";
        throw new GmsRefusal(400, "bad_request", `${where === "" ? "body" : where}: ${issue?.message ?? "invalid"}`);
      }
      const body = parsed.data as z.output<S> & { chat_id: number };
      const conversation = await chat(body.chat_id);
      await deps.core.botOutputs(conversation, outputs(parsed.data));
      res.status(200).json({ result: "ok" });
    };

  router.post(
    WEBHOOK_PATHS[0],
    authorize,
    json,
    handle(SendMessageBodySchema, (body) => [replyOf(body.message)]),
  );
  router.post(
    WEBHOOK_PATHS[1],
    authorize,
    json,
    handle(RedirectChatBodySchema, (body) => {
      if (body.operator_id !== undefined) {
        deps.logger.info({ chatId: body.chat_id }, "gms redirect names an operator; the desk routes by department");
      }
      return [{ type: "handOff", ...(body.dep_key === undefined ? {} : { department: body.dep_key }) }];
    }),
  );
  router.post(
    WEBHOOK_PATHS[2],
    authorize,
    json,
    handle(CloseChatBodySchema, () => [{ type: "end", reason: "closed by the bot" }]),
  );
  router.all(`${WEBHOOK_BASE}/{*method}`, () => {
    throw new GmsRefusal(
      404,
      "not_found",
      "The channel webhook's methods are send_message, redirect_chat, close_chat.",
    );
  });

  router.get(`${FILE_PATH}/:conversationId/:seq/:index/:name`, async (req, res) => {
    const conversationId = String(req.params.conversationId);
    const seq = Number(req.params.seq);
    const index = Number(req.params.index);
    const name = String(req.params.name);
    const path = filePath(conversationId, seq, index, name);
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(index) || !deps.signer.verify(path, req.query)) {
      throw new GatewayError("forbidden", "This link is invalid or has expired.");
    }
    const conversation = await deps.store.get(conversationId);
    const [message] = conversation ? await deps.store.read(conversationId, seq - 1, 1) : [];
    const attachment =
      message?.type === "ChatMessage" && message.from.id === conversation?.customer.id
        ? message.attachments[index]
        : undefined;
    if (attachment === undefined) throw new GatewayError("not_found", "This file is no longer here.");
    const data = decodeDataUrl(attachment.contentUrl);
    if (data === undefined) {
      // A file the customer sent as a link stays where it is.
      res.redirect(302, attachment.contentUrl);
      return;
    }
    // Served as a download: nothing a customer sent runs on Liaison's origin.
    res.setHeader("Content-Type", attachment.type);
    res.setHeader("Content-Security-Policy", "sandbox; default-src 'none'");
    res.setHeader("Content-Disposition", `attachment; filename*=UTF-8''${encodeURIComponent(attachment.name)}`);
    res.setHeader("Cache-Control", "private, max-age=300");
    res.status(200).send(Buffer.from(data));
  });

  router.use(WEBHOOK_BASE, gmsErrors(deps.logger));
  return router;
}

/** Every failure of the webhook routes in the platform's shape, never Liaison's. */
function gmsErrors(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const answer = (status: number, code: string, desc: string) => res.status(status).json({ error: code, desc });
    if (error instanceof GmsRefusal) {
      answer(error.status, error.code, error.message);
      return;
    }
    const parserType = (error as { type?: unknown }).type;
    if (parserType === "entity.parse.failed") {
      answer(400, "bad_request", "The body is not valid JSON.");
    } else if (parserType === "entity.too.large") {
      answer(413, "bad_request", "The body is too large.");
    } else if (typeof parserType === "string") {
      answer(400, "bad_request", "The body could not be read.");
    } else if (error instanceof GatewayError && error.code === "unavailable") {
      answer(503, "unavailable", "Liaison cannot record this now; try again.");
    } else {
      logger.error({ err: error, path: req.path }, "gms webhook failed");
      answer(500, "internal", "Liaison failed to handle this call.");
    }
  };
}
