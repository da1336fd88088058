import { z } from "zod";
import { LcError } from "./errors.js";

/*
 * Request payloads of the Customer Chat API v3.5/v3.6, as the Web API reference and the data-structure reference
 * define them. Objects are strict: a key the reference does not define is refused (`validation`), so that a client
 * written against this fake sends only what LiveChat documents. LiveChat's own validation messages are not
 * published; these name the offending field instead.
 */

/** "Max. raw text size is 16 KB (one UTF-8 char like emoji can use up to 4 B)". */
export const MAX_TEXT_BYTES = 16 * 1024;

const properties = z.record(z.string(), z.record(z.string(), z.unknown()));
const visibility = z.enum(["all", "agents"]);
const groupIds = z.array(z.number().int().nonnegative()).min(1);

const text = z
  .string()
  .min(1)
  .refine((value) => Buffer.byteLength(value, "utf8") <= MAX_TEXT_BYTES, {
    message: `longer than ${MAX_TEXT_BYTES} bytes`,
  });

const postback = z
  .strictObject({
    id: z.string(),
    thread_id: z.string(),
    event_id: z.string(),
    type: z.string().optional(),
    value: z.string().optional(),
    ecommerce: z
      .strictObject({ product_id: z.string(), option_id: z.string().optional(), quantity: z.number().optional() })
      .optional(),
  })
  .refine((p) => (p.type === undefined) === (p.value === undefined), {
    message: "type and value go together",
  });

const common = {
  custom_id: z.string().optional(),
  properties: properties.optional(),
  recipients: visibility.optional(),
};

const button = z.strictObject({
  text: z.string(),
  type: z.enum(["webview", "message", "url", "phone"]).optional(),
  value: z.string().optional(),
  webview_height: z.enum(["compact", "full", "tall"]).optional(),
  postback_id: z.string(),
  user_ids: z.array(z.string()),
  target: z.enum(["new", "current"]).optional(),
});

const image = z.strictObject({
  url: z.string(),
  name: z.string().optional(),
  content_type: z.string().optional(),
  size: z.number().optional(),
  width: z.number().optional(),
  height: z.number().optional(),
  alternative_text: z.string().optional(),
});

/** The event types a customer may send (`form` is not supported in the LiveChat app; `system` cannot be sent in 3.6). */
export const customerEvent = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("message"), text, postback: postback.optional(), ...common }),
  z.strictObject({
    type: z.literal("file"),
    url: z.string().min(1),
    alternative_text: z.string().optional(),
    ...common,
  }),
  z.strictObject({
    type: z.literal("filled_form"),
    form_id: z.string(),
    fields: z.array(z.record(z.string(), z.unknown())),
    ...common,
  }),
  z.strictObject({ type: z.literal("custom"), content: z.record(z.string(), z.unknown()).optional(), ...common }),
  z.strictObject({
    type: z.literal("rich_message"),
    template_id: z.enum(["cards", "sticker", "quick_replies"]),
    elements: z
      .array(
        z.strictObject({
          title: z.string().optional(),
          subtitle: z.string().optional(),
          image: image.optional(),
          buttons: z.array(button).max(13).optional(),
        }),
      )
      .max(10)
      .optional(),
    ...common,
  }),
  z.strictObject({
    type: z.literal("system_message"),
    system_message_type: z.string(),
    text: z.string().optional(),
    text_vars: z.record(z.string(), z.string()).optional(),
    ...common,
  }),
]);
export type CustomerEventInput = z.infer<typeof customerEvent>;

const threadInput = z.strictObject({ events: z.array(customerEvent).optional(), properties: properties.optional() });

const sessionFields = z.array(z.record(z.string(), z.string()));

const customerInput = {
  name: z.string().optional(),
  email: z.email().optional(),
  avatar: z.string().optional(),
  session_fields: sessionFields.optional(),
};

const address = z.strictObject({
  address: z.string().optional(),
  city: z.string().optional(),
  country: z.string().optional(),
  state: z.string().optional(),
  postal_code: z.string().optional(),
});

const pageFields = {
  page_id: z.string().optional(),
  sort_order: z.enum(["asc", "desc"]).optional(),
};

function startChatSchema(rtm: boolean) {
  return z.strictObject({
    chat: z
      .strictObject({
        properties: properties.optional(),
        access: z.strictObject({ group_ids: groupIds }).optional(),
        thread: threadInput.optional(),
        // Only the RTM reference lists `chat.users` (one user, the customer).
        ...(rtm
          ? {
              users: z
                .array(z.strictObject({ id: z.string(), type: z.literal("customer") }))
                .max(1)
                .optional(),
            }
          : {}),
      })
      .optional(),
    active: z.boolean().optional(),
    continuous: z.boolean().optional(),
  });
}

export const payloadSchemas = {
  start_chat: { web: startChatSchema(false), rtm: startChatSchema(true) },
  resume_chat: z.strictObject({
    chat: z.strictObject({
      id: z.string(),
      access: z.strictObject({ group_ids: groupIds }).optional(),
      properties: properties.optional(),
      thread: threadInput.optional(),
    }),
    active: z.boolean().optional(),
    continuous: z.boolean().optional(),
  }),
  send_event: z.strictObject({
    chat_id: z.string(),
    event: customerEvent,
    attach_to_last_thread: z.boolean().optional(),
  }),
  deactivate_chat: z.strictObject({ id: z.string() }),
  get_chat: z.strictObject({ chat_id: z.string(), thread_id: z.string().optional() }),
  list_chats: z
    .strictObject({ limit: z.number().int().min(1).max(25).optional(), ...pageFields })
    .refine((p) => p.page_id === undefined || (p.limit === undefined && p.sort_order === undefined), {
      message: "limit and sort_order can't be provided along with page_id",
    }),
  list_threads: z
    .strictObject({
      chat_id: z.string(),
      limit: z.number().int().min(1).max(100).optional(),
      min_events_count: z.number().int().min(1).max(100).optional(),
      ...pageFields,
    })
    .refine((p) => p.limit === undefined || p.min_events_count === undefined, {
      message: "limit and min_events_count can't be used together",
    })
    .refine((p) => p.page_id === undefined || (p.limit === undefined && p.sort_order === undefined), {
      message: "limit and sort_order can't be provided along with page_id",
    }),
  update_customer: z
    .strictObject({
      ...customerInput,
      omnichannel: z.record(z.string(), z.unknown()).optional(),
      address: address.optional(),
    })
    .refine((p) => Object.keys(p).length > 0, { message: "at least one field is required" }),
  set_customer_session_fields: z.strictObject({ session_fields: sessionFields }),
  get_customer: z.strictObject({}),
  list_group_statuses: z
    .strictObject({ all: z.boolean().optional(), group_ids: z.array(z.number().int().nonnegative()).optional() })
    .refine((p) => p.all === true || p.group_ids !== undefined, { message: "all or group_ids is required" }),
  mark_events_as_seen: z.strictObject({ chat_id: z.string(), seen_up_to: z.string() }),
  send_sneak_peek: z.strictObject({ chat_id: z.string(), sneak_peek_text: z.string() }),
  login: z.strictObject({
    token: z.string(),
    customer: z.strictObject({ ...customerInput, address: address.optional() }).optional(),
    customer_page: z.strictObject({ title: z.string().optional(), url: z.string().optional() }).optional(),
    customer_side_storage: z.record(z.string(), z.string()).optional(),
    is_mobile: z.boolean().optional(),
    group_id: z.number().int().nonnegative().optional(),
    referrer: z.string().optional(),
    application: z
      .strictObject({
        name: z.string().optional(),
        version: z.string().optional(),
        channel_type: z.string().optional(),
      })
      .optional(),
    pushes: z.record(z.string(), z.array(z.string())).optional(),
  }),
} as const;

/** Parses with the schema, or throws LiveChat's `validation` error naming the first problem. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: unknown): T {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path.map(String).join(".") ?? "";
  throw new LcError("validation", `${path === "" ? "payload" : path}: ${issue?.message ?? "invalid"}`);
}
