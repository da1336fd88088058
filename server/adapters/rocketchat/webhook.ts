import { Readable } from "node:stream";
import type { ReadableStream } from "node:stream/web";
import { Router } from "express";
import { secretsEqual } from "../../core/api-keys.js";
import type { ConversationService } from "../../core/conversations.js";
import type { DeskEvent } from "../../core/desk.js";
import { GatewayError, invalidPayload } from "../../core/errors.js";
import type { UrlSigner } from "../../core/signed-urls.js";
import type { Logger } from "../../logger.js";
import type { ConversationStore } from "../../core/store.js";
import type { RocketChatClient } from "./client.js";
import { DESK_NAME, VISITOR_TOKEN_PREFIX, WebhookPayloadSchema, eventsFromWebhook } from "./mapper.js";

export interface RocketChatRoutesDeps {
  core: ConversationService;
  store: ConversationStore;
  client: RocketChatClient;
  signer: UrlSigner;
  publicUrl: string;
  webhookToken: string | undefined;
  logger: Logger;
}

const FILE_PATH = "/files/rocketchat";

/** Where Rocket.Chat's Omnichannel webhook is received: ours, and the path existing installations already use. */
export const WEBHOOK_PATHS = ["/webhooks/rocketchat", "/live-agents/sendMessageToClient"] as const;

/**
 * Inbound routes: the Omnichannel webhook (`WEBHOOK_PATHS`: JSON in, `200 text/plain` out, `ok`, or `ignored` for a
 * room Liaison does not handle) and the signed links to agents' files.
 */
export function rocketChatRoutes(deps: RocketChatRoutesDeps): Router {
  const router = Router();
  const fileUrl = (file: { id: string; name: string; jwt?: string }): string => {
    const path = `${FILE_PATH}/${encodeURIComponent(file.id)}/${encodeURIComponent(file.name)}`;
    return `${deps.publicUrl.replace(/\/+$/, "")}${deps.signer.sign(path, file.jwt === undefined ? {} : { jwt: file.jwt })}`;
  };

  router.post([...WEBHOOK_PATHS], (req, _res, next) => {
    if (deps.webhookToken !== undefined) {
      const given = req.headers["x-rocketchat-livechat-token"];
      if (typeof given !== "string" || !secretsEqual(given, deps.webhookToken)) {
        throw new GatewayError("unauthorized", "Missing or wrong X-RocketChat-Livechat-Token.");
      }
    }
    next();
  });

  router.post([...WEBHOOK_PATHS], async (req, res) => {
    const parsed = WebhookPayloadSchema.safeParse(req.body);
    if (!parsed.success) throw invalidPayload(parsed.error.issues, "Not a Rocket.Chat Omnichannel webhook payload.");
    const payload = parsed.data;
    const log = deps.logger.child({ webhook: payload.type, rid: payload._id });

    const conversation =
      (payload._id === undefined ? undefined : await deps.store.findByDeskRef(DESK_NAME, "rid", payload._id)) ??
      (payload.visitor?.token === undefined
        ? undefined
        : await deps.store.findByDeskRef(DESK_NAME, "visitorToken", payload.visitor.token));
    if (!conversation) {
      if (payload.visitor?.token?.startsWith(VISITOR_TOKEN_PREFIX) === true) {
        // One of ours whose room we have not recorded yet (the webhook overtook the room's creation): ask
        // Rocket.Chat to send it again rather than lose it.
        log.info({}, "webhook for a room not yet bound; asking for a retry");
        throw new GatewayError("unavailable", "Room not known yet; retry.");
      }
      log.debug({}, "webhook for a room Liaison does not handle");
      res.type("text/plain").send("ignored");
      return;
    }
    const openedAt = conversation.desk.openedAt === undefined ? Number.NaN : Date.parse(conversation.desk.openedAt);
    const mapped = eventsFromWebhook(payload, {
      fileUrl,
      ...(Number.isFinite(openedAt) ? { openedAt } : {}),
    });
    // A close transcript repeats every agent message of the room: only those not recorded yet are new (the rest
    // would only be compared again, their fresh file links differing from the recorded ones).
    const events = payload.type === "LivechatSession" ? await unrecorded(deps.store, conversation.id, mapped) : mapped;
    await deps.core.applyDeskEvents(conversation, events);
    log.debug({ conversationId: conversation.id, events: events.length }, "webhook recorded");
    // Rocket.Chat stores this body as the room's crmData and echoes it in later webhooks: keep it short.
    res.type("text/plain").send("ok");
  });

  router.get(`${FILE_PATH}/:fileId/:name`, async (req, res) => {
    const fileId = String(req.params.fileId);
    const name = String(req.params.name);
    const path = `${FILE_PATH}/${encodeURIComponent(fileId)}/${encodeURIComponent(name)}`;
    if (!deps.signer.verify(path, req.query))
      throw new GatewayError("forbidden", "This link is invalid or has expired.");
    const jwt = typeof req.query.jwt === "string" ? req.query.jwt : undefined;
    const upstream = await deps.client.download(
      `/file-upload/${encodeURIComponent(fileId)}/${encodeURIComponent(name)}`,
      jwt,
    );
    if (upstream.status === 404) throw new GatewayError("not_found", "Rocket.Chat no longer has this file.");
    if (!upstream.ok || !upstream.body) {
      deps.logger.warn({ status: upstream.status, fileId }, "rocket.chat refused a file download");
      throw new GatewayError("unavailable", "Rocket.Chat did not hand out the file; try again later.");
    }
    res.status(200);
    const type = upstream.headers.get("content-type") ?? "application/octet-stream";
    // Only media is shown inline; anything else (an agent's .html) downloads, and nothing runs on our origin.
    const inline = /^(image\/(png|jpeg|gif|webp)|audio\/|video\/|application\/pdf)/i.test(type);
    res.setHeader("Content-Type", type);
    res.setHeader("Content-Security-Policy", "sandbox; default-src 'none'");
    const length = upstream.headers.get("content-length");
    if (length !== null) res.setHeader("Content-Length", length);
    res.setHeader(
      "Content-Disposition",
      `${inline ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(name)}`,
    );
    res.setHeader("Cache-Control", "private, max-age=300");
    Readable.fromWeb(upstream.body as ReadableStream<Uint8Array>).pipe(res);
  });

  return router;
}

async function unrecorded(store: ConversationStore, conversationId: string, events: DeskEvent[]): Promise<DeskEvent[]> {
  const fresh: DeskEvent[] = [];
  for (const event of events) {
    if (
      event.type === "agentMessage" &&
      (await store.findMessage(conversationId, `${DESK_NAME}:${event.externalId}`))
    ) {
      continue;
    }
    fresh.push(event);
  }
  return fresh;
}
