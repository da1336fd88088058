import { Router } from "express";
import { GatewayError } from "../../core/errors.js";
import type { UrlSigner } from "../../core/signed-urls.js";
import type { ConversationStore } from "../../core/store.js";
import { decodeDataUrl } from "../http.js";

const FILE_PATH = "/files/salesforce";

/** The path of one file of a customer's message, as the signed link names it. */
const filePath = (conversationId: string, messageId: string, index: number): string =>
  `${FILE_PATH}/${encodeURIComponent(conversationId)}/${encodeURIComponent(messageId)}/${index}`;

/**
 * Signed, expiring links to the files customers sent as `data:` URLs, for the legacy Chat API, which has no visitor
 * upload: the agent gets the link in the text and opens it from the Service Console.
 */
export function chatFileLinks(deps: { store: ConversationStore; signer: UrlSigner; publicUrl: string }): {
  link: (conversationId: string, messageId: string, index: number) => string;
  router: Router;
} {
  const router = Router();
  router.get(`${FILE_PATH}/:conversationId/:messageId/:index`, async (req, res) => {
    const conversationId = String(req.params.conversationId);
    const messageId = String(req.params.messageId);
    const index = Number(req.params.index);
    if (!Number.isInteger(index) || index < 0) throw new GatewayError("not_found", "No such file.");
    if (!deps.signer.verify(filePath(conversationId, messageId, index), req.query)) {
      throw new GatewayError("forbidden", "This link is invalid or has expired.");
    }
    const message = await deps.store.findMessage(conversationId, messageId);
    const attachment = message?.type === "ChatMessage" ? message.attachments[index] : undefined;
    const data = attachment === undefined ? undefined : decodeDataUrl(attachment.contentUrl);
    if (attachment === undefined || data === undefined) throw new GatewayError("not_found", "No such file.");
    // Only media is shown inline; anything else downloads, and nothing runs on our origin.
    const inline = /^(image\/(png|jpeg|gif|webp)|audio\/|video\/|application\/pdf)/i.test(attachment.type);
    res.setHeader("Content-Type", attachment.type);
    res.setHeader("Content-Security-Policy", "sandbox; default-src 'none'");
    res.setHeader(
      "Content-Disposition",
      `${inline ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(attachment.name)}`,
    );
    res.setHeader("Cache-Control", "private, max-age=300");
    res.status(200).end(Buffer.from(data));
  });
  const base = deps.publicUrl.replace(/\/+$/, "");
  return {
    router,
    link: (conversationId, messageId, index) =>
      `${base}${deps.signer.sign(filePath(conversationId, messageId, index))}`,
  };
}
