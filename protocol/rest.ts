import * as z from "zod";
import {
  AttachmentSchema,
  ClientIdSchema,
  ConversationSummarySchema,
  MAX_ATTACHMENTS,
  OpenConversationStateSchema,
  ParticipantSchema,
  hasContent,
  noContentIssue,
} from "./message.js";

/**
 * The body of `POST /api/customer/init`. The original Customer Channel document prints some fields capitalised
 * (`FirstName`, `RefId`, ...) and misspells `reqestId`: every spelling is accepted and folded to the canonical
 * camelCase name. Two spellings of one field with different values are refused.
 */
const canonicalInitKeys: Record<string, string> = {
  firstname: "firstName",
  lastname: "lastName",
  email: "email",
  phone: "phone",
  channel: "channel",
  language: "language",
  refid: "refId",
  url: "url",
  comment: "comment",
  subject: "subject",
  requestid: "requestId",
  reqestid: "requestId",
  timestamp: "timestamp",
  timezone: "timeZone",
};

function foldInitKeys(value: unknown, ctx: z.RefinementCtx): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const folded: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    const canonical = canonicalInitKeys[key.toLowerCase()] ?? key;
    if (canonical in folded && folded[canonical] !== field) {
      ctx.addIssue({ code: "custom", path: [canonical], message: `two spellings of ${canonical} disagree` });
      continue;
    }
    folded[canonical] = field;
  }
  return folded;
}

const optionalText = (max: number) => z.string().trim().max(max).optional();

/** The zone's canonical name (`asia/karachi` → `Asia/Karachi`), or undefined for a zone the runtime does not know. */
function canonicalTimeZone(zone: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

const InitFieldsSchema = z
  .object({
    firstName: z.string().trim().min(1).max(200),
    lastName: optionalText(200),
    email: z.email().max(320).optional(),
    phone: z
      .string()
      .trim()
      .min(3)
      .max(32)
      .regex(/^\+?[\d\s().-]+$/, "must be a phone number")
      .optional(),
    channel: z
      .string()
      .trim()
      .toLowerCase()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9][a-z0-9_.-]*$/, "letters, digits, _ . - only"),
    language: z
      .string()
      .trim()
      .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, "must be a BCP 47 tag such as en or ur-PK")
      .default("en"),
    refId: z.string().trim().min(1).max(256).optional(),
    url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    comment: optionalText(4096),
    subject: optionalText(256),
    requestId: ClientIdSchema.optional(),
    timestamp: z.iso.datetime({ offset: true }).optional(),
    /**
     * The customer's IANA time zone (`Intl.DateTimeFormat().resolvedOptions().timeZone` in a browser): their
     * transcript prints times in it. Absent: UTC.
     */
    timeZone: z
      .string()
      .trim()
      .max(64)
      .transform((zone, ctx) => {
        const canonical = canonicalTimeZone(zone);
        if (canonical === undefined) {
          ctx.addIssue({ code: "custom", message: "must be an IANA time zone such as Asia/Karachi" });
          return z.NEVER;
        }
        return canonical;
      })
      .optional(),
  })
  .refine((body) => body.refId !== undefined || body.phone !== undefined || body.email !== undefined, {
    message: "at least one of refId, phone or email is required",
    path: ["refId"],
  });

export const InitRequestSchema = z.preprocess(foldInitKeys, InitFieldsSchema);
/** The init body in its canonical spelling (the server also accepts the capitalised ones). */
export type InitRequest = z.input<typeof InitFieldsSchema>;
export type InitRequestParsed = z.output<typeof InitFieldsSchema>;

export const InitResponseSchema = z.object({
  conversationId: z.string(),
  participant: ParticipantSchema,
  token: z.string(),
  requestId: z.string(),
  timestamp: z.iso.datetime(),
});
export type InitResponse = z.infer<typeof InitResponseSchema>;

/**
 * What `/api/customer/transcript/:id/:type` serves for an ended conversation (an open or unknown one is `404`):
 * - `GET …/pdf`: the PDF transcript.
 * - `POST …/email` (body {@link TranscriptEmailRequest}, optional): e-mails it, PDF attached, to the customer's address
 *   from `init`; `GET …/email` does the same for older callers.
 *
 * Authorized by the customer's `token` or an API key, sent as `Authorization: Bearer <credential>`. A `?token=` query
 * parameter is still accepted, but a URL ends up in proxy and server logs: prefer the header.
 *
 * Rate limited (`429 rate_limited` with `Retry-After`): per client address (API-key callers excepted), and per
 * conversation, separately for PDFs and e-mails.
 */
export const TranscriptTypeSchema = z.enum(["pdf", "email"]);
export type TranscriptType = z.infer<typeof TranscriptTypeSchema>;

/** The query string of the transcript routes. */
export const TranscriptQuerySchema = z.object({
  /** The customer's token; `Authorization: Bearer` is preferred (a query string is logged by proxies). */
  token: z.string().max(256).optional(),
  /** `GET …/email` with an API key only: send the transcript to this address instead of the customer's. */
  to: z.email().max(320).optional(),
});

/** The body of `POST /api/customer/transcript/:id/email`; it may be left out. */
export const TranscriptEmailRequestSchema = z.strictObject({
  /** With an API key only: send the transcript to this address instead of the customer's. */
  to: z.email().max(320).optional(),
});
export type TranscriptEmailRequest = z.infer<typeof TranscriptEmailRequestSchema>;

/** `POST /api/connectors/:channel/messages`: a third-party or campaign message to a customer of the channel. */
export const ConnectorMessageRequestSchema = z
  .object({
    refId: z.string().trim().min(1).max(256),
    text: z.string().default(""),
    attachments: z.array(AttachmentSchema).max(MAX_ATTACHMENTS).default([]),
    id: ClientIdSchema.optional(),
  })
  .refine(hasContent, noContentIssue);
export type ConnectorMessageRequest = z.input<typeof ConnectorMessageRequestSchema>;

export const ConnectorMessageResponseSchema = z.object({
  id: z.string(),
  status: z.enum(["queued", "sent"]),
  conversationId: z.string().optional(),
});
export type ConnectorMessageResponse = z.infer<typeof ConnectorMessageResponseSchema>;

/** Conversations a page of `GET /api/conversations` holds when the request names no `limit`. */
export const CONVERSATION_PAGE_DEFAULT = 50;
/** The most conversations one page may hold. */
export const CONVERSATION_PAGE_MAX = 200;

/** A query parameter given once, several times (`?state=a&state=b`) or as a list (`?state=a,b`): its values. */
function listParameter(value: unknown): unknown {
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((item) => typeof item === "string")) return value;
  return values.flatMap((item) => item.split(",")).map((item) => item.trim());
}

/** An empty query parameter (`?subject=`) is the same as leaving it out. */
const absentIfEmpty = (value: unknown): unknown => (value === "" ? undefined : value);

/**
 * The query string of `GET /api/conversations` (API key): the open conversations, newest first by their last
 * message, one page at a time. Unknown parameters are refused (`invalid_payload`), so a misspelt filter never
 * silently lists everything.
 */
export const ConversationListQuerySchema = z.strictObject({
  /** `bot`, `queued`, `active`, or several (`state=queued,bot` or `state=queued&state=bot`); default all three. */
  state: z.preprocess(
    (value) => (value === "" || value === undefined ? undefined : listParameter(value)),
    z
      .array(OpenConversationStateSchema)
      .min(1)
      .max(3)
      .transform((states) => [...new Set(states)])
      .optional(),
  ),
  channel: z.preprocess(
    absentIfEmpty,
    z
      .string()
      .trim()
      .toLowerCase()
      .max(64)
      .regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, _ . - only")
      .optional(),
  ),
  subject: z.preprocess(absentIfEmpty, z.string().trim().min(1).max(256).optional()),
  /** Conversations per page: default {@link CONVERSATION_PAGE_DEFAULT}, at most {@link CONVERSATION_PAGE_MAX}. */
  limit: z.preprocess(
    absentIfEmpty,
    z.coerce.number().int().min(1).max(CONVERSATION_PAGE_MAX).default(CONVERSATION_PAGE_DEFAULT),
  ),
  /** The previous page's `nextCursor`. */
  cursor: z.preprocess(absentIfEmpty, z.string().min(1).max(512).optional()),
});
export type ConversationListQuery = z.input<typeof ConversationListQuerySchema>;

/**
 * The answer of `GET /api/conversations`. While `nextCursor` is present more may follow: ask again with it as
 * `cursor`. A page may hold fewer than `limit` conversations (even none) and still have a `nextCursor`: a page looks at
 * a bounded number of conversations, and a `channel` or `subject` filter may pass over many of them.
 */
export const ConversationListSchema = z.object({
  conversations: z.array(ConversationSummarySchema),
  nextCursor: z.string().optional(),
});
export type ConversationList = z.infer<typeof ConversationListSchema>;
