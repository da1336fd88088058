import * as z from "zod";
import {
  ConnectorMessageResponseSchema,
  ConversationInfoSchema,
  ConversationListSchema,
  ConversationUpdatedSchema,
  EndAckSchema,
  errorCatalogue,
  ErrorBodySchema,
  ErrorCodeSchema,
  ErrorInfoSchema,
  InitResponseSchema,
  OkAckSchema,
  RegisterConnectorAckSchema,
  SendAckSchema,
  type ErrorCode,
} from "../../protocol/index.js";

/**
 * Every answer of the server the SDK checks, by name: the protocol's own zod schemas. The browser build swaps this
 * module for validators generated from these same schemas at build time (`build/browser-answers.ts`), so a browser
 * loads no zod; a test keeps the two in agreement. Only schemas JSON Schema can express exactly belong here (no
 * refinements, transforms or defaults): the generator refuses any other.
 */
export const answerSchemas = {
  okAck: OkAckSchema,
  sendAck: SendAckSchema,
  endAck: EndAckSchema,
  registerConnectorAck: RegisterConnectorAckSchema,
  /**
   * `conversationInfo` with its messages only required to be an array: the client checks each message itself, and
   * leniently, so a newer server's activity types still reach the application.
   */
  conversationInfo: ConversationInfoSchema.extend({ messages: z.array(z.unknown()) }),
  conversationUpdated: ConversationUpdatedSchema,
  errorCode: ErrorCodeSchema,
  errorInfo: ErrorInfoSchema,
  errorBody: ErrorBodySchema,
  initResponse: InitResponseSchema,
  connectorMessageResponse: ConnectorMessageResponseSchema,
  conversationList: ConversationListSchema,
};

/** The name of an answer the SDK checks. */
export type AnswerName = keyof typeof answerSchemas;

/** What a checked answer holds, by name. */
export type Answers = { [N in AnswerName]: z.output<(typeof answerSchemas)[N]> };

/** One reason an answer was refused: the dotted path of the field (empty: the answer itself) and what is wrong. */
export interface AnswerIssue {
  path: string;
  message: string;
}

/** The outcome of {@link checkAnswer}. */
export type CheckedAnswer<T> = { ok: true; value: T } | { ok: false; issues: AnswerIssue[] };

/**
 * Checks an answer of the server against its protocol schema. Keys the schema does not name are dropped, as zod
 * does; the browser build drops them from `value` itself, so pass a value the SDK owns (a parsed body, an ack).
 *
 * @param name - which answer it is
 * @param value - what the server sent
 */
export function checkAnswer<N extends AnswerName>(name: N, value: unknown): CheckedAnswer<Answers[N]> {
  const result = answerSchemas[name].safeParse(value);
  if (result.success) return { ok: true, value: result.data as Answers[N] };
  return {
    ok: false,
    issues: result.error.issues.map((issue) => ({
      path: issue.path.map((key) => (typeof key === "symbol" ? key.toString() : String(key))).join("."),
      message: issue.message,
    })),
  };
}

/** The HTTP status of each error code (from the protocol's catalogue), for answers whose body names no code. */
export const errorStatuses: Readonly<Record<ErrorCode, number>> = Object.fromEntries(
  Object.entries(errorCatalogue).map(([code, entry]) => [code, entry.status]),
) as Record<ErrorCode, number>;
