import {
  CONVERSATION_PAGE_DEFAULT,
  openConversationStates,
  type ConversationList,
  type OpenConversationState,
} from "../../protocol/index.js";
import { toSummary } from "./conversation.js";
import { GatewayError } from "./errors.js";
import type { ConversationStore, ListPosition } from "./store.js";

/**
 * The most conversations one page looks at (see `OpenConversationQuery.scan`). A page with a `channel` or `subject`
 * filter reads each record it passes over: this bounds how long one request holds the store (a Redis script blocks
 * every other client while it runs), at the price of short pages when the filter is narrow.
 */
export const LIST_SCAN_PER_PAGE = 500;

/** One page of the queue, as `GET /api/conversations` asks for it (already validated). */
export interface ConversationListRequest {
  states?: readonly OpenConversationState[];
  channel?: string;
  subject?: string;
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string;
}

/** The open conversations of the queue, newest first, one page. A cursor this gateway did not make is refused. */
export async function listConversations(
  store: Pick<ConversationStore, "listOpen">,
  request: ConversationListRequest,
): Promise<ConversationList> {
  const after = request.cursor === undefined ? undefined : decodeCursor(request.cursor);
  if (request.cursor !== undefined && after === undefined) {
    throw new GatewayError("invalid_payload", "The cursor is not one this gateway gave out.", {
      fields: [{ path: "cursor", message: "use the nextCursor of the previous page" }],
    });
  }
  const limit = request.limit ?? CONVERSATION_PAGE_DEFAULT;
  const page = await store.listOpen({
    states: request.states ?? openConversationStates,
    limit,
    scan: Math.max(limit, LIST_SCAN_PER_PAGE),
    ...(request.channel === undefined ? {} : { channel: request.channel }),
    ...(request.subject === undefined ? {} : { subject: request.subject }),
    ...(after === undefined ? {} : { after }),
  });
  const conversations = page.conversations.map((listed) =>
    toSummary(listed.conversation, new Date(listed.lastActivityMs).toISOString(), listed.lastSeq),
  );
  return page.next === undefined ? { conversations } : { conversations, nextCursor: encodeCursor(page.next) };
}

/** A position as an opaque cursor: `<ms>:<id>`, base64url. */
export function encodeCursor(position: ListPosition): string {
  return Buffer.from(`${position.ms}:${position.id}`, "utf8").toString("base64url");
}

/** The position a cursor holds, or undefined when it is not one `encodeCursor` made. */
export function decodeCursor(cursor: string): ListPosition | undefined {
  const match = /^(\d{1,16}):([\x21-\x7e]{1,64})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  if (!match) return undefined;
  const position = { ms: Number(match[1]), id: match[2] as string };
  // Base64url decoding skips what it cannot read: only the cursor's own spelling is accepted.
  if (!Number.isSafeInteger(position.ms) || encodeCursor(position) !== cursor) return undefined;
  return position;
}
