import type { ChatMessage, StoredMessage } from "../../protocol/index.js";
import type { Conversation } from "./conversation.js";

/** The longest digest posted to a desk: the most recent lines are kept. */
const MAX_DIGEST_LENGTH = 3500;

/** How many messages before a hand-off the digest reads (it keeps the most recent that fit anyway). */
export const DIGEST_WINDOW = 200;

/** A bot's buttons as text, for desks and digests that cannot show them: `[Yes] [No]`, a row per line. */
export function buttonsAsText(buttons: ChatMessage["buttons"]): string {
  return (buttons ?? []).map((row) => row.map((button) => `[${button.text}]`).join(" ")).join("\n");
}

/** A message's text with its buttons written out, for a desk that cannot show them. */
export function textWithButtons(message: Pick<ChatMessage, "text" | "buttons">): string {
  const buttons = buttonsAsText(message.buttons);
  return [message.text, buttons].filter((part) => part.trim() !== "").join("\n");
}

/**
 * The hand-off digest for an agent at an external desk: the conversation before the hand-off (customer, bot, and
 * anyone else who spoke aloud), oldest first, with UTC times, buttons and files written out. The customer's messages
 * from `upTo` on are left out: they reach the agent as messages of their own, right after the digest. Undefined when
 * there is nothing to show.
 */
export function handOffDigest(
  conversation: Pick<Conversation, "customer">,
  messages: readonly StoredMessage[],
  upTo: number,
  maxLength = MAX_DIGEST_LENGTH,
): string | undefined {
  const customerId = conversation.customer.id;
  const lines = messages
    .filter((message): message is ChatMessage & { seq: number } => message.type === "ChatMessage")
    .filter((message) => message.tag !== "whisper" && !(message.from.id === customerId && message.seq >= upTo))
    .map((message) => {
      const when = `${message.timestamp.slice(0, 10)} ${message.timestamp.slice(11, 16)} UTC`;
      const who = message.from.name.trim() || (message.from.id === customerId ? "Customer" : message.from.id);
      const files = message.attachments.map((file) => ` [${file.name}]`).join("");
      const buttons = buttonsAsText(message.buttons).replaceAll("\n", " ");
      return `${when} ${who}: ${[message.text, buttons].filter((part) => part.trim() !== "").join(" ")}${files}`;
    });
  if (lines.length === 0) return undefined;
  const head = "Conversation before the hand-off:";
  let body = lines;
  while (body.length > 1 && [head, ...body].join("\n").length > maxLength) body = body.slice(1);
  const text = [head, ...(body.length < lines.length ? ["…"] : []), ...body].join("\n");
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}
