import { Router } from "express";
import { z } from "zod";
import * as protocol from "../../protocol/index.js";
import { clientEvents, serverEvents, type EventSchemas } from "../../protocol/index.js";
import { CloseChatBodySchema, RedirectChatBodySchema, SendMessageBodySchema } from "../adapters/gms/mapper.js";
import { WebhookSchema as LiveChatWebhookSchema } from "../adapters/livechat/mapper.js";
import { FlowWebhookSchema } from "../adapters/rapidpro/mapper.js";
import { WebhookPayloadSchema } from "../adapters/rocketchat/mapper.js";

/**
 * The published protocol: `GET /openapi.json` (OpenAPI 3.1 of the REST routes) and `GET /asyncapi.json` (AsyncAPI 3.0
 * of the Socket.IO events), both generated from the zod schemas that validate the traffic, with zod's own JSON
 * Schema output. Nothing here is written twice: a field added to a protocol schema appears in the documents.
 */

/** What the documents say about where the gateway is. */
export interface ApiDocsOptions {
  /** The gateway's public base URL (`PUBLIC_URL`). */
  publicUrl: string;
  /** The Socket.IO path (`SOCKET_PATH`). */
  socketPath: string;
}

/** A JSON document (the two API descriptions). */
export type JsonObject = Record<string, unknown>;

/** The version of the API the documents describe (not of the gateway's code). */
const API_VERSION = "1.0.0";

// The answers of routes whose shapes are not in protocol/ (operations, and the adapters' own platforms' contracts).
const HealthSchema = z.object({ status: z.literal("ok") });
const ReadinessSchema = z.object({
  status: z.enum(["ready", "degraded"]),
  /** What cannot deliver now, by adapter or outbox lane; `degraded` still takes traffic. */
  problems: z.record(z.string(), z.string()).optional(),
});
const RegisterClientResponseSchema = z.object({
  conversationId: z.string(),
  /** The Rocket.Chat room, once a desk session is open. */
  roomId: z.string().nullable(),
  status: z.enum(["active", "queued"]),
});
const SendMessageToAgentResponseSchema = z.object({ conversationId: z.string(), messageId: z.string() });
const GmsResultSchema = z.object({ result: z.literal("ok") });
const GmsErrorSchema = z.object({ error: z.string(), desc: z.string() });

/** Schemas of this file and of the adapters, by the name they have in the documents. */
const localSchemas: Readonly<Record<string, z.ZodType>> = {
  Health: HealthSchema,
  Readiness: ReadinessSchema,
  RocketChatWebhook: WebhookPayloadSchema,
  RapidProFlowWebhook: FlowWebhookSchema,
  RapidProRegisterClientResponse: RegisterClientResponseSchema,
  RapidProSendMessageToAgentResponse: SendMessageToAgentResponseSchema,
  GmsSendMessage: SendMessageBodySchema,
  GmsRedirectChat: RedirectChatBodySchema,
  GmsCloseChat: CloseChatBodySchema,
  GmsResult: GmsResultSchema,
  GmsError: GmsErrorSchema,
  LiveChatWebhook: LiveChatWebhookSchema,
};

/** Every named schema: the protocol's exports by their name without `Schema`, and the ones above. */
const schemaNames: ReadonlyMap<z.ZodType, string> = new Map([
  ...Object.entries(protocol).flatMap(([name, value]): [z.ZodType, string][] =>
    value instanceof z.ZodType && name.endsWith("Schema") ? [[value, name.slice(0, -"Schema".length)]] : [],
  ),
  ...Object.entries(localSchemas).map(([name, schema]): [z.ZodType, string] => [schema, name]),
]);

function nameOf(schema: z.ZodType): string {
  const name = schemaNames.get(schema);
  if (name === undefined) throw new Error("a schema in the API documents has no name: export it from protocol/");
  return name;
}

type Io = "input" | "output";

/**
 * Collects the schemas a document refers to and turns them into its components with `z.toJSONSchema`: one registry
 * per direction, since a request is described as the client may write it (defaults optional) and an answer as the
 * server writes it. A schema used both ways gets one component per direction (`…Input` for the request side).
 */
class Components {
  private readonly used = { input: new Set<z.ZodType>(), output: new Set<z.ZodType>() };
  private readonly refs: { schema: z.ZodType; io: Io; ref: { $ref: string } }[] = [];

  constructor(
    private readonly target: "draft-2020-12" | "draft-07",
    private readonly base: string,
  ) {}

  /** A `$ref` to the component of `schema` as read in direction `io`; its name is settled by {@link schemas}. */
  ref(schema: z.ZodType, io: Io): { $ref: string } {
    this.used[io].add(schema);
    const ref = { $ref: "" };
    this.refs.push({ schema, io, ref });
    return ref;
  }

  private id(schema: z.ZodType, io: Io): string {
    const name = nameOf(schema);
    return io === "input" && this.used.output.has(schema) ? `${name}Input` : name;
  }

  /** The components, once every `ref` was taken. */
  schemas(): Record<string, JsonObject> {
    for (const { schema, io, ref } of this.refs) ref.$ref = `${this.base}${this.id(schema, io)}`;
    const result: Record<string, JsonObject> = {};
    for (const io of ["input", "output"] as const) {
      const registry = z.registry<{ id: string }>();
      for (const schema of this.used[io]) registry.add(schema, { id: this.id(schema, io) });
      const { schemas } = z.toJSONSchema(registry, {
        target: this.target,
        io,
        // Refinements and transforms are the server's checks; the shape around them is what a client needs.
        unrepresentable: "any",
        uri: (id) => `${this.base}${id}`,
      });
      for (const [id, json] of Object.entries(schemas)) {
        const { $schema: _schema, $id: _id, ...rest } = json as JsonObject;
        result[id] = rest;
      }
    }
    return Object.fromEntries(Object.entries(result).sort(([a], [b]) => a.localeCompare(b)));
  }
}

/** The JSON Schema of one value (a path or query parameter), inline. */
function inline(schema: z.ZodType, io: Io = "input"): JsonObject {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonObject;
  return rest;
}

/** The query parameters of an object schema, one per property. */
function queryParameters(schema: z.ZodType, descriptions: Record<string, string> = {}): JsonObject[] {
  const json = inline(schema) as { properties?: Record<string, JsonObject>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query",
    required: json.required?.includes(name) ?? false,
    ...(descriptions[name] === undefined ? {} : { description: descriptions[name] }),
    schema: property,
  }));
}

const pathParameter = (name: string, schema: z.ZodType, description: string): JsonObject => ({
  name,
  in: "path",
  required: true,
  description,
  schema: inline(schema),
});

const statusText: Record<number, string> = {
  400: "The request is invalid: `details` says which fields and why.",
  401: "No credential, or one that is not valid here.",
  403: "The credential does not allow this.",
  404: "No such resource.",
  409: "It conflicts with the conversation's state.",
  413: "The body is larger than `MAX_PAYLOAD_BYTES`.",
  415: "The body's encoding is not supported.",
  422: "The request cannot be carried out as it stands.",
  429: "Too many requests: retry after `Retry-After` seconds.",
  500: "An unexpected error (logged).",
  501: "The feature is not configured on this gateway.",
  503: "Unavailable for now (shutting down, or a dependency is down): retry, after `Retry-After` when given.",
};

/** An OpenAPI operation under construction. */
interface Route {
  method: "get" | "post";
  path: string;
  tag: string;
  summary: string;
  description?: string;
  /** Any one of these credentials (a security scheme's name), `anonymous` where none may do (by configuration). */
  security?: readonly string[];
  parameters?: readonly JsonObject[];
  /** A JSON body, as the client writes it. */
  body?: { schema: z.ZodType; required?: boolean };
  responses: Record<number, { description: string; content?: Record<string, JsonObject> }>;
  /** Refusals answered as `ErrorBody`. */
  errors?: readonly number[];
  /** Refusals answered in the platform's own shape. */
  platformErrors?: { schema: z.ZodType; statuses: readonly number[] };
}

const json = (schema: JsonObject | { $ref: string }): Record<string, JsonObject> => ({
  "application/json": { schema },
});

const signedLinkParameters = [
  { name: "exp", in: "query", required: true, description: "Expiry, in Unix seconds.", schema: { type: "string" } },
  {
    name: "sig",
    in: "query",
    required: true,
    description: "The gateway's signature of the path and the other parameters.",
    schema: { type: "string" },
  },
];

/** The REST routes, as the express app mounts them (a test compares the two). */
function routes(c: Components): Route[] {
  const gmsErrors = { schema: GmsErrorSchema, statuses: [400, 401, 404, 500, 503] };
  const binary = { schema: { type: "string", contentMediaType: "application/octet-stream" } };
  return [
    {
      method: "get",
      path: "/",
      tag: "gateway",
      summary: "The front page: links to the widget demo, these documents, health and readiness.",
      responses: {
        200: { description: "A small HTML page.", content: { "text/html": { schema: { type: "string" } } } },
      },
    },
    {
      method: "get",
      path: "/openapi.json",
      tag: "gateway",
      summary: "This document: OpenAPI 3.1 of every REST route.",
      responses: { 200: { description: "The document.", content: json({ type: "object" }) } },
    },
    {
      method: "get",
      path: "/asyncapi.json",
      tag: "gateway",
      summary: "AsyncAPI 3.0 of every Socket.IO event, with its payload and its ack.",
      responses: { 200: { description: "The document.", content: json({ type: "object" }) } },
    },
    ...(
      [
        ["/widget.js", 'The widget\'s loader: `<script src="…/widget.js" async>` adds the chat launcher to a page.'],
        ["/widget/panel.js", "The chat panel's script, loaded by the frame when the visitor opens the chat."],
      ] as const
    ).map(([path, summary]): Route => ({
      method: "get",
      path,
      tag: "widget",
      summary,
      responses: {
        200: { description: "JavaScript.", content: { "text/javascript": { schema: { type: "string" } } } },
      },
      errors: [501],
    })),
    ...(
      [
        [
          "/widget/frame",
          "The chat panel, framed by the loader; with `CORS_ORIGINS` set only those sites may frame it.",
        ],
        ["/widget/demo", "A demo page with the widget on it."],
      ] as const
    ).map(([path, summary]): Route => ({
      method: "get",
      path,
      tag: "widget",
      summary,
      responses: {
        200: { description: "An HTML page.", content: { "text/html": { schema: { type: "string" } } } },
      },
    })),
    {
      method: "get",
      path: "/health",
      tag: "operations",
      summary: "Liveness: the process answers.",
      responses: { 200: { description: "Alive.", content: json(c.ref(HealthSchema, "output")) } },
    },
    {
      method: "get",
      path: "/ready",
      tag: "operations",
      summary: "Readiness: the store answers. `degraded` (still 200) names adapters that cannot deliver now.",
      responses: { 200: { description: "Ready, or degraded.", content: json(c.ref(ReadinessSchema, "output")) } },
      errors: [503],
    },
    {
      method: "get",
      path: "/metrics",
      tag: "operations",
      summary: "Prometheus metrics. With `METRICS_TOKEN` set, it is required as a bearer token.",
      security: ["metricsToken", "anonymous"],
      responses: {
        200: {
          description: "The Prometheus text exposition format.",
          content: { "text/plain": { schema: { type: "string" } } },
        },
      },
      errors: [401],
    },
    {
      method: "post",
      path: "/api/customer/init",
      tag: "customers",
      summary: "Starts a customer's conversation (or resumes the open one of the same request id).",
      description:
        "Anonymous (web widgets: rate limited per address) or with an API key (connectors, back offices: rate limited " +
        "per key). Field names are also accepted capitalised (`FirstName`, `RefId`, …). The answer's `token` lets the " +
        "customer join the conversation over Socket.IO and read its transcript. A key that is not valid counts as " +
        "none. Without an API key: a channel outside `DIRECT_CHANNELS` (a connector's, such as `sms`) is refused " +
        "with 403, a `requestId` must be a random UUID (400), and a `requestId` repeated with a different request, or " +
        "a `channel` + `refId` that has an open conversation, is a 409 `conflict`.",
      security: ["apiKey", "anonymous"],
      body: { schema: protocol.InitRequestSchema },
      responses: {
        200: { description: "The conversation.", content: json(c.ref(protocol.InitResponseSchema, "output")) },
      },
      errors: [400, 403, 409, 413, 415, 429, 503],
    },
    {
      method: "get",
      path: "/api/customer/transcript/{id}/{type}",
      tag: "customers",
      summary: "The transcript of an ended conversation: the PDF (`pdf`) or an e-mail of it to the customer (`email`).",
      description:
        "Authorized by the customer's token or an API key, as `Authorization: Bearer` (or `?token=`, which proxies log). " +
        "Rate limited per address and per conversation.",
      security: ["customerToken", "apiKey"],
      parameters: [
        pathParameter("id", protocol.ConversationIdSchema, "The conversation."),
        pathParameter("type", protocol.TranscriptTypeSchema, "`pdf` to download, `email` to send it."),
        ...queryParameters(protocol.TranscriptQuerySchema, {
          token: "The customer's token; prefer `Authorization: Bearer`.",
          to: "With `email` and an API key only: another recipient.",
        }),
      ],
      responses: {
        200: {
          description: "`pdf`: the PDF; `email`: sent (empty body).",
          content: { "application/pdf": { schema: { type: "string", contentMediaType: "application/pdf" } } },
        },
      },
      errors: [400, 401, 403, 404, 422, 429, 501, 503],
    },
    {
      method: "post",
      path: "/api/customer/transcript/{id}/email",
      tag: "customers",
      summary: "E-mails the transcript of an ended conversation, PDF attached, to the customer's address from init.",
      security: ["customerToken", "apiKey"],
      parameters: [
        pathParameter("id", protocol.ConversationIdSchema, "The conversation."),
        ...queryParameters(protocol.TranscriptQuerySchema, {
          token: "The customer's token; prefer `Authorization: Bearer`.",
          to: "With an API key only: another recipient.",
        }),
      ],
      body: { schema: protocol.TranscriptEmailRequestSchema, required: false },
      responses: { 200: { description: "Sent (empty body)." } },
      errors: [400, 401, 403, 404, 422, 429, 501, 503],
    },
    {
      method: "post",
      path: "/api/connectors/{channel}/messages",
      tag: "connectors",
      summary: "A campaign or third-party message to a customer of a connector channel (SMS…), by their `refId`.",
      description:
        "Handed to one connected connector socket of the channel (`sent`) or kept, durably, until one registers " +
        "(`queued`). A repeated `id` is not sent twice.",
      security: ["apiKey"],
      parameters: [
        pathParameter(
          "channel",
          z
            .string()
            .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/)
            .max(64),
          "The connector channel.",
        ),
      ],
      body: { schema: protocol.ConnectorMessageRequestSchema },
      responses: {
        202: { description: "Accepted.", content: json(c.ref(protocol.ConnectorMessageResponseSchema, "output")) },
      },
      errors: [400, 401, 409, 413, 429, 503],
    },
    {
      method: "get",
      path: "/api/conversations",
      tag: "agents",
      summary: "The queue: open conversations, newest first by their last message, one page at a time.",
      description:
        "Unknown parameters are refused. While `nextCursor` is present more may follow; the Socket.IO event " +
        "`subscribeConversations` gives every change from then on.",
      security: ["apiKey"],
      parameters: queryParameters(protocol.ConversationListQuerySchema, {
        state: "`bot`, `queued`, `active`, or several (`state=queued,bot` or repeated); default all three.",
        channel: "Only this channel's conversations.",
        subject: "Only conversations with this subject (department).",
        limit: "Conversations per page.",
        cursor: "The previous page's `nextCursor`.",
      }),
      responses: {
        200: { description: "One page.", content: json(c.ref(protocol.ConversationListSchema, "output")) },
      },
      errors: [400, 401],
    },
    ...["/webhooks/rocketchat", "/live-agents/sendMessageToClient"].map((path): Route => ({
      method: "post",
      path,
      tag: "rocketchat",
      summary:
        path === "/webhooks/rocketchat"
          ? "Rocket.Chat's Omnichannel webhook: agents' messages, transfers and closes."
          : "Rocket.Chat's Omnichannel webhook, on the path installations of the old mediator already use.",
      description: "Enabled by `ROCKETCHAT_URL`. Answered once the events are recorded; a retry changes nothing.",
      security: ["rocketChatToken", "anonymous"],
      body: { schema: WebhookPayloadSchema },
      responses: {
        200: {
          description: "`ok`, or `ignored` for a room Liaison does not handle.",
          content: { "text/plain": { schema: { type: "string", enum: ["ok", "ignored"] } } },
        },
      },
      errors: [400, 401, 413, 503],
    })),
    {
      method: "post",
      path: "/webhooks/livechat",
      tag: "livechat",
      summary: "LiveChat's license webhooks: agents' messages and files, joins and leaves, transfers, the chat's end.",
      description:
        "Enabled by `LIVECHAT_WEBHOOK_SECRET`; `secret_key` in the body must equal it. Answered once the events are " +
        "recorded; an event that also came over the customer's RTM socket, or comes again, is recorded once.",
      body: { schema: LiveChatWebhookSchema },
      responses: {
        200: {
          description: "`ok`, or `ignored` for a chat (or an earlier thread) Liaison does not handle.",
          content: { "text/plain": { schema: { type: "string", enum: ["ok", "ignored"] } } },
        },
      },
      errors: [400, 401, 413, 503],
    },
    {
      method: "get",
      path: "/files/rocketchat/{fileId}/{name}",
      tag: "rocketchat",
      summary: "A file an agent sent, through a signed link the gateway handed out in the message.",
      parameters: [
        pathParameter("fileId", z.string(), "Rocket.Chat's file id."),
        pathParameter("name", z.string(), "The file's name."),
        ...signedLinkParameters,
        {
          name: "jwt",
          in: "query",
          required: false,
          description: "Rocket.Chat's file token.",
          schema: { type: "string" },
        },
      ],
      responses: { 200: { description: "The file.", content: { "application/octet-stream": binary } } },
      errors: [403, 404, 503],
    },
    {
      method: "get",
      path: "/files/salesforce/{conversationId}/{messageId}/{index}",
      tag: "salesforce",
      summary: "A file a customer sent, through a signed link the legacy Chat API's agent gets in the message text.",
      description: "Enabled by `SALESFORCE_API=chat` (the legacy Chat REST API has no visitor upload).",
      parameters: [
        pathParameter("conversationId", z.string(), "The conversation."),
        pathParameter("messageId", z.string(), "The customer's message."),
        pathParameter("index", z.number().int().nonnegative(), "The file's place among the message's attachments."),
        ...signedLinkParameters,
      ],
      responses: { 200: { description: "The file.", content: { "application/octet-stream": binary } } },
      errors: [403, 404, 503],
    },
    {
      method: "post",
      path: "/live-agents/registerClient",
      tag: "rapidpro",
      summary: "A RapidPro flow hands the contact to an agent (the old LiveAgents mediator's call).",
      description:
        "Enabled by `RAPIDPRO_URL`. With an external desk it waits (at most `RAPIDPRO_REGISTER_WAIT_MS`) for the room. " +
        "The body is read as JSON whatever its Content-Type.",
      security: ["rapidProToken", "anonymous"],
      body: { schema: FlowWebhookSchema },
      responses: {
        200: {
          description: "Handed over.",
          content: json(c.ref(RegisterClientResponseSchema, "output")),
        },
      },
      errors: [400, 401, 413, 503],
    },
    {
      method: "post",
      path: "/live-agents/sendMessageToAgent",
      tag: "rapidpro",
      summary: "A RapidPro flow passes the contact's message to the agent.",
      security: ["rapidProToken", "anonymous"],
      body: { schema: FlowWebhookSchema },
      responses: {
        200: { description: "With the agent.", content: json(c.ref(SendMessageToAgentResponseSchema, "output")) },
        202: {
          description: "Recorded; no agent has the conversation yet.",
          content: json(c.ref(SendMessageToAgentResponseSchema, "output")),
        },
      },
      errors: [400, 401, 409, 413, 503],
    },
    ...(
      [
        ["send_message", SendMessageBodySchema, "The bot's message: text, a keyboard (buttons) or a file."],
        ["redirect_chat", RedirectChatBodySchema, "The bot hands the conversation to a human (`dep_key`: department)."],
        ["close_chat", CloseChatBodySchema, "The bot ends the conversation."],
      ] as const
    ).map(([method, schema, summary]): Route => ({
      method: "post",
      path: `/gms/${method}`,
      tag: "gms",
      summary,
      description:
        "The GMS Omnichannel bot platform's channel webhook (enabled by `GMS_WEBHOOK_URL`); refusals in its shape.",
      security: ["gmsToken"],
      body: { schema },
      responses: { 200: { description: "Recorded.", content: json(c.ref(GmsResultSchema, "output")) } },
      platformErrors: gmsErrors,
    })),
    {
      method: "get",
      path: "/files/gms/{conversationId}/{seq}/{index}/{name}",
      tag: "gms",
      summary: "A file the customer sent, through the signed link the bot platform was given.",
      parameters: [
        pathParameter("conversationId", protocol.ConversationIdSchema, "The conversation."),
        pathParameter("seq", z.int().positive(), "The message's `seq`."),
        pathParameter("index", z.int().nonnegative(), "The attachment's index in the message."),
        pathParameter("name", z.string(), "The file's name."),
        ...signedLinkParameters,
      ],
      responses: {
        200: { description: "The file, as a download.", content: { "application/octet-stream": binary } },
        302: { description: "A file the customer sent as a link: its URL." },
      },
      errors: [403, 404],
    },
  ];
}

/** OpenAPI 3.1 of every REST route of the gateway. */
export function openApiDocument(options: ApiDocsOptions): JsonObject {
  const c = new Components("draft-2020-12", "#/components/schemas/");
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const route of routes(c)) {
    const responses: Record<string, JsonObject> = {};
    for (const [status, response] of Object.entries(route.responses)) responses[status] = response;
    for (const status of route.errors ?? []) {
      responses[String(status)] = {
        description: statusText[status] ?? "Refused.",
        content: json(c.ref(protocol.ErrorBodySchema, "output")),
      };
    }
    if (route.platformErrors) {
      for (const status of route.platformErrors.statuses) {
        responses[String(status)] = {
          description: statusText[status] ?? "Refused.",
          content: json(c.ref(route.platformErrors.schema, "output")),
        };
      }
    }
    const operation: JsonObject = {
      operationId: operationId(route.method, route.path),
      tags: [route.tag],
      summary: route.summary,
      ...(route.description === undefined ? {} : { description: route.description }),
      ...(route.security === undefined
        ? {}
        : { security: route.security.map((name) => (name === "anonymous" ? {} : { [name]: [] })) }),
      ...(route.parameters === undefined ? {} : { parameters: route.parameters }),
      ...(route.body === undefined
        ? {}
        : {
            requestBody: { required: route.body.required ?? true, content: json(c.ref(route.body.schema, "input")) },
          }),
      responses,
    };
    (paths[route.path] ??= {})[route.method] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Liaison REST API",
      version: API_VERSION,
      description:
        "The REST side of Liaison's Customer Channel protocol (init, transcripts, campaign messages, the queue), the " +
        "webhooks its adapters receive, and its operations endpoints. The Socket.IO side is in `/asyncapi.json`. " +
        'Every refusal of Liaison\'s own routes is `{ "error": { "code", "message", "details"? } }`.',
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: options.publicUrl }],
    tags: [
      { name: "gateway", description: "The front page and these documents." },
      { name: "operations", description: "Health, readiness and metrics." },
      { name: "customers", description: "Starting a conversation and its transcript." },
      { name: "widget", description: "The web chat widget a site adds with one script tag." },
      { name: "connectors", description: "Campaign and third-party messages to connector channels." },
      { name: "agents", description: "The socket desk's queue." },
      { name: "rocketchat", description: "The Rocket.Chat desk adapter (`ROCKETCHAT_URL`)." },
      { name: "rapidpro", description: "The RapidPro channel adapter (`RAPIDPRO_URL`): `/live-agents/*`." },
      {
        name: "salesforce",
        description: "The Salesforce desk adapter (`SALESFORCE_MESSAGING_URL` or `SALESFORCE_API=chat`).",
      },
      { name: "livechat", description: "The LiveChat desk adapter (`LIVECHAT_AGENT_TOKEN`)." },
      { name: "gms", description: "The GMS Omnichannel bot adapter (`GMS_WEBHOOK_URL`)." },
    ],
    paths,
    components: {
      schemas: c.schemas(),
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "One of `API_KEYS`." },
        customerToken: { type: "http", scheme: "bearer", description: "The customer's `token` from init." },
        metricsToken: { type: "http", scheme: "bearer", description: "`METRICS_TOKEN`, when it is set." },
        rocketChatToken: {
          type: "apiKey",
          in: "header",
          name: "X-RocketChat-Livechat-Token",
          description: "`ROCKETCHAT_WEBHOOK_TOKEN`, when it is set.",
        },
        rapidProToken: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description: "`Token <RAPIDPRO_WEBHOOK_TOKEN>`, when it is set.",
        },
        gmsToken: { type: "apiKey", in: "header", name: "Authorization", description: "`Token <GMS_TOKEN>`." },
      },
    },
  };
}

/** `post /api/customer/init` → `postApiCustomerInit`. */
function operationId(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter((word) => word !== "");
  return method + words.map((word) => word[0]?.toUpperCase() + word.slice(1)).join("");
}

/** What a client → server event is for, and who may send it. */
const clientEventText: Record<keyof typeof clientEvents, { summary: string; apiKeyOnly?: true }> = {
  registerConnector: {
    summary: "An API-key socket registers as the connector of a channel: messages for its customers come to it.",
    apiKeyOnly: true,
  },
  joinConversation: {
    summary:
      "Joins a conversation (customers with their token, API-key sockets with a role); then `conversationInfo` " +
      "brings the history after `since`.",
  },
  sendMessage: {
    summary:
      "A chat message (deduplicated by its client `id`; `type` may be left out) or a typing indicator, never stored.",
  },
  endConversation: { summary: "Ends the conversation; every participant gets an `endOfConversation` activity." },
  leaveConversation: {
    summary: "Stops receiving a conversation on this socket; an agent leaving produces `participantLeft`.",
  },
  subscribeConversations: {
    summary: "Watches the queue: `conversationUpdated` for every change the filter matches, on any node.",
    apiKeyOnly: true,
  },
  unsubscribeConversations: { summary: "No more `conversationUpdated` for this socket.", apiKeyOnly: true },
};

const serverEventText: Record<keyof typeof serverEvents, string> = {
  messageArrived: "A message or activity of a joined conversation, in `seq` order; connectors ack it.",
  conversationInfo: "After a join: the conversation and one page of its history.",
  conversationUpdated: "To queue subscribers: a conversation was created, changed state or was taken.",
};

/** AsyncAPI 3.0 of every Socket.IO event: its payload, and its ack as the operation's reply. */
export function asyncApiDocument(options: ApiDocsOptions): JsonObject {
  const c = new Components("draft-07", "#/components/schemas/");
  const channels: Record<string, JsonObject> = {};
  const operations: Record<string, JsonObject> = {};
  const messages: Record<string, JsonObject> = {};
  const ackFailure = c.ref(protocol.AckFailureSchema, "output");
  messages.AckFailure = {
    name: "AckFailure",
    title: "A refused event",
    summary: "`{ ok: false, error }`: the event was not carried out; `error.code` says why.",
    payload: ackFailure,
  };

  const add = (event: string, schemas: EventSchemas, action: "send" | "receive", summary: string, apiKey = false) => {
    // The server reads what clients write (input) and writes what clients read (output).
    const io: Io = action === "receive" ? "input" : "output";
    messages[event] = { name: event, summary, payload: c.ref(schemas.payload, io) };
    channels[event] = {
      address: event,
      title: event,
      messages: { [event]: { $ref: `#/components/messages/${event}` } },
    };
    const operation: JsonObject = {
      action,
      channel: { $ref: `#/channels/${event}` },
      summary,
      messages: [{ $ref: `#/channels/${event}/messages/${event}` }],
      ...(apiKey ? { security: [{ $ref: "#/components/securitySchemes/apiKey" }] } : {}),
    };
    if (schemas.ack !== undefined) {
      const ack = `${event}Ack`;
      messages[ack] = {
        name: ack,
        summary: `The ack of \`${event}\`.`,
        payload: c.ref(schemas.ack, action === "receive" ? "output" : "input"),
      };
      // The ack is Socket.IO's callback of the same emit: a reply with no address of its own.
      channels[ack] = {
        address: null,
        title: `${event} ack`,
        description: `The acknowledgement callback of \`${event}\`.`,
        messages: {
          [ack]: { $ref: `#/components/messages/${ack}` },
          ...(action === "receive" ? { AckFailure: { $ref: "#/components/messages/AckFailure" } } : {}),
        },
      };
      operation.reply = {
        channel: { $ref: `#/channels/${ack}` },
        messages: [
          { $ref: `#/channels/${ack}/messages/${ack}` },
          ...(action === "receive" ? [{ $ref: `#/channels/${ack}/messages/AckFailure` }] : []),
        ],
      };
    }
    operations[event] = operation;
  };
  for (const [event, schemas] of Object.entries(clientEvents) as [keyof typeof clientEvents, EventSchemas][]) {
    const text = clientEventText[event];
    add(event, schemas, "receive", text.summary, text.apiKeyOnly === true);
  }
  for (const [event, schemas] of Object.entries(serverEvents) as [keyof typeof serverEvents, EventSchemas][]) {
    add(event, schemas, "send", serverEventText[event]);
  }

  const url = new URL(options.publicUrl);
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Liaison Socket.IO API",
      version: API_VERSION,
      description:
        "The Socket.IO side of Liaison's Customer Channel protocol (Socket.IO 4, default namespace). Each event of " +
        "this document is one Socket.IO event name; an operation's reply is the event's acknowledgement callback. " +
        "Customers connect without a credential and join with their token from `POST /api/customer/init`; agents, " +
        "connectors and bots connect with an API key in the handshake (`auth: { apiKey }`, or `Authorization: " +
        "Bearer <apiKey>` from non-browser clients). The REST side is in `/openapi.json`.",
      license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
    },
    defaultContentType: "application/json",
    servers: {
      gateway: {
        host: url.host,
        protocol: url.protocol === "https:" ? "wss" : "ws",
        pathname: options.socketPath,
        title: "The gateway",
        description: "Socket.IO 4 over WebSocket or HTTP long-polling, at the Socket.IO path.",
      },
    },
    channels,
    operations,
    components: {
      schemas: c.schemas(),
      messages,
      securitySchemes: {
        apiKey: {
          type: "httpApiKey",
          in: "header",
          name: "Authorization",
          description: "One of `API_KEYS`, in the handshake's `auth: { apiKey }` or as `Authorization: Bearer <key>`.",
        },
      },
    },
  };
}

/** `GET /openapi.json` and `GET /asyncapi.json`, generated on the first request and kept. */
export function apiDocsRoutes(options: ApiDocsOptions): Router {
  const router = Router();
  let openApi: string | undefined;
  let asyncApi: string | undefined;
  router.get("/openapi.json", (_req, res) => {
    openApi ??= JSON.stringify(openApiDocument(options));
    res.type("application/json").send(openApi);
  });
  router.get("/asyncapi.json", (_req, res) => {
    asyncApi ??= JSON.stringify(asyncApiDocument(options));
    res.type("application/json").send(asyncApi);
  });
  return router;
}
