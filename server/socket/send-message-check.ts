import { Ajv, type ValidateFunction } from "ajv";
import * as z from "zod";
import { inexpressibleParts, zodAgreeingAjvOptions } from "../../protocol/json-schema.js";
import {
  ContentUrlSchema,
  hasContent,
  isContentUrl,
  SendChatMessageSchema,
  SendMessageSchema,
  SendTypingSchema,
  type Attachment,
} from "../../protocol/index.js";

/** What zod's `safeParse` of `sendMessage` answers, and so what this check answers. */
export type SendMessageResult = z.ZodSafeParseResult<z.output<typeof SendMessageSchema>>;

/** The schemas the check is compiled from (the protocol's; a test hands it others to see it refuse them). */
export interface SendMessageSchemas {
  chat: z.ZodType;
  typing: z.ZodType;
}

/**
 * `sendMessage`'s payload check, on the path of every message: validators compiled by ajv from zod's JSON Schema of
 * the protocol's own schemas (as fastify compiles its routes' schemas), under half of zod's cost per message. It
 * returns what `SendMessageSchema.safeParse` returns, and a test holds the two in agreement on real payloads and
 * thousands of mutations:
 * - the union's rule is the protocol's: no `type` is a chat message (`SendMessageSchema`'s preprocess), `ChatMessage`
 *   and `ActivityMessage` pick their schema, anything else is zod's to refuse;
 * - what zod's JSON Schema leaves out, the check runs itself: the chat message's {@link hasContent} and the
 *   attachments' {@link isContentUrl}, the protocol's own functions. Compiling refuses a schema with a refinement or
 *   a transform anywhere else, so a new one cannot slip past the check unseen;
 * - it accepts, or hands the payload to zod: whatever it does not accept, zod parses, and the client is told zod's
 *   issues, word for word. (ajv assigns defaults and drops unknown keys in place, as it goes: the payload is the
 *   socket's own decoded copy, and what it changed zod would have changed the same way.)
 *
 * @throws when a schema has a refinement or a transform the check does not run itself
 */
export function compileSendMessageCheck(
  schemas: SendMessageSchemas = { chat: SendChatMessageSchema, typing: SendTypingSchema },
): (payload: unknown) => SendMessageResult {
  const known = new Set<z.ZodType>([schemas.chat, ContentUrlSchema]);
  for (const [name, schema] of [
    ["chat", schemas.chat],
    ["typing", schemas.typing],
  ] as const) {
    const [part] = inexpressibleParts(schema, { known, defaults: true });
    if (part !== undefined) {
      throw new Error(`sendMessage's ${name} schema has ${part.what} at ${part.path || "its root"}, not checked`);
    }
  }
  const ajv = new Ajv({ ...zodAgreeingAjvOptions, useDefaults: true });
  const compile = (schema: z.ZodType): ValidateFunction => {
    const { $schema: _draft, ...json } = z.toJSONSchema(schema, { target: "draft-07", io: "output" });
    return ajv.compile(json);
  };
  const chat = compile(schemas.chat);
  const typing = compile(schemas.typing);

  return (payload) => {
    if (payload !== null && typeof payload === "object" && !Array.isArray(payload)) {
      const fields = payload as Record<string, unknown>;
      if (!("type" in fields)) fields.type = "ChatMessage";
      const accepted =
        fields.type === "ChatMessage"
          ? chat(fields) && hasContent(fields as Parameters<typeof hasContent>[0]) && urlsAllowed(fields)
          : fields.type === "ActivityMessage" && typing(fields);
      if (accepted) return { success: true, data: fields } as SendMessageResult;
    }
    return SendMessageSchema.safeParse(payload);
  };
}

/** The attachments' URLs pass {@link isContentUrl} (their lengths and the rest were checked by the schema). */
function urlsAllowed(message: Record<string, unknown>): boolean {
  return (message.attachments as readonly Attachment[]).every(
    (file) => isContentUrl(file.contentUrl) && (file.thumbnailUrl === undefined || isContentUrl(file.thumbnailUrl)),
  );
}
