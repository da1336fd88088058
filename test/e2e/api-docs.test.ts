import { generateKeyPairSync } from "node:crypto";
import asyncApiSpecs from "@asyncapi/specs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientEvents, serverEvents } from "../../protocol/index.js";
import { adapterModules } from "../../server/adapters/index.js";
import { handlers } from "../../server/socket/handlers.js";
import { queueHandlers } from "../../server/socket/queue-handlers.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

type Json = Record<string, unknown>;

/** Every adapter enabled (its routes mounted): a service account key for Dialogflow, made here. */
function everyAdapter(): Record<string, string> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const serviceAccount = {
    type: "service_account",
    client_email: "bot@acme.iam.example",
    private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    token_uri: "http://127.0.0.1:9/token",
  };
  return {
    DESK: "rocketchat",
    ROCKETCHAT_URL: "http://127.0.0.1:9",
    RAPIDPRO_URL: "http://127.0.0.1:9",
    RAPIDPRO_TOKEN: "rapidpro-api-token",
    BOT: "gms",
    GMS_WEBHOOK_URL: "http://127.0.0.1:9/gms",
    GMS_TOKEN: "gms-channel-token",
    DIALOGFLOW_PROJECT_ID: "acme-bot",
    DIALOGFLOW_CREDENTIALS_JSON: JSON.stringify(serviceAccount),
    SALESFORCE_API: "chat",
    SALESFORCE_CHAT_URL: "http://127.0.0.1:9/chat/rest",
    SALESFORCE_ORG_ID: "00D000000000001",
    SALESFORCE_DEPLOYMENT_ID: "572000000000001",
    SALESFORCE_BUTTON_ID: "573000000000001",
    LIVECHAT_AGENT_TOKEN: "livechat-agent-token",
    LIVECHAT_CLIENT_ID: "livechat-client-id",
    LIVECHAT_ORGANIZATION_ID: "6d0e7c3a-8f1e-4c7a-9a2b-0c1d2e3f4a5b",
    LIVECHAT_WEBHOOK_SECRET: "livechat-webhook-secret",
  };
}

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string | string[];
}

/** `METHOD /path` of every route the express app answers, mounted routers walked, `:name` written `{name}`. */
function appRoutes(stack: Layer[], prefix = ""): string[] {
  const found: string[] = [];
  const paths = (path: string | string[] | undefined) => (Array.isArray(path) ? path : [path ?? "/"]);
  const join = (base: string, path: string) => `${base}/${path}`.replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
  for (const layer of stack) {
    if (layer.route) {
      for (const path of paths(layer.route.path)) {
        for (const method of Object.keys(layer.route.methods)) {
          const template = join(prefix, path).replace(/:(\w+)/g, "{$1}");
          found.push(`${method === "_all" ? "ALL" : method.toUpperCase()} ${template}`);
        }
      }
    } else if (layer.handle?.stack) {
      for (const mount of paths(layer.rawPath)) found.push(...appRoutes(layer.handle.stack, join(prefix, mount)));
    }
  }
  return found;
}

/**
 * Routes the document leaves out, with the reason: they exist only to refuse what the platform might call by mistake.
 */
const undocumented = new Map([["ALL /gms/{*method}", "answers the GMS platform's unknown methods with its 404"]]);

/** Every local `$ref` in `document` that does not resolve. */
function danglingRefs(document: unknown): string[] {
  const refs: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) {
        if (key === "$ref" && typeof inner === "string") refs.push(inner);
        else walk(inner);
      }
    }
  };
  walk(document);
  expect(refs.length).toBeGreaterThan(10);
  return refs.filter((ref) => {
    if (!ref.startsWith("#/")) return true;
    let node: unknown = document;
    for (const part of ref.slice(2).split("/")) {
      const key = decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~");
      if (node === null || typeof node !== "object" || !(key in node)) return true;
      node = (node as Json)[key];
    }
    return node === undefined;
  });
}

describe("the published protocol", () => {
  let gateway: TestApp;
  let openApi: Json & { paths: Record<string, Record<string, Json>>; components: { schemas: Record<string, Json> } };
  let asyncApi: Json & {
    channels: Record<string, Json & { address: string | null }>;
    operations: Record<string, Json & { action: string; channel: { $ref: string }; reply?: Json }>;
    components: { schemas: Record<string, Json>; messages: Record<string, Json> };
  };

  beforeAll(async () => {
    gateway = await startTestApp(everyAdapter());
    const [a, b] = await Promise.all(
      ["/openapi.json", "/asyncapi.json"].map(async (path) => {
        const response = await fetch(`${gateway.url}${path}`);
        expect(response.status).toBe(200);
        expect(response.headers.get("content-type")).toMatch(/^application\/json/);
        return response.json();
      }),
    );
    openApi = a as typeof openApi;
    asyncApi = b as typeof asyncApi;
  });
  afterAll(async () => {
    await gateway.close();
  });

  it("documents every route the express app answers, with every adapter enabled, and no other", () => {
    expect(adapterModules.filter((module) => !module.enabled(gateway.app.config)).map((module) => module.name)).toEqual(
      [],
    );
    const served = new Set(
      appRoutes((gateway.app.web.router as unknown as { stack: Layer[] }).stack).filter(
        (route) => !undocumented.has(route),
      ),
    );
    const documented = new Set(
      Object.entries(openApi.paths).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
      ),
    );
    // The walk finds what is known to be mounted (a broken walk would find nothing and compare nothing).
    for (const route of ["POST /api/customer/init", "POST /live-agents/registerClient", "GET /health", "GET /"]) {
      expect(served).toContain(route);
    }
    expect([...served].filter((route) => !documented.has(route)).sort()).toEqual([]);
    expect([...documented].filter((route) => !served.has(route)).sort()).toEqual([]);
  });

  it("documents every Socket.IO event of the protocol's event maps, each with its payload and its ack as the reply", () => {
    const operations = Object.values(asyncApi.operations).map((operation) => {
      const channel = asyncApi.channels[operation.channel.$ref.replace("#/channels/", "")];
      return { event: channel?.address, action: operation.action, reply: operation.reply };
    });
    const received = operations.filter((operation) => operation.action === "receive");
    const sent = operations.filter((operation) => operation.action === "send");
    expect(received.map((operation) => operation.event).sort()).toEqual(Object.keys(clientEvents).sort());
    expect(sent.map((operation) => operation.event).sort()).toEqual(Object.keys(serverEvents).sort());
    expect(Object.keys(clientEvents)).toEqual(
      expect.arrayContaining(["leaveConversation", "subscribeConversations", "unsubscribeConversations"]),
    );
    for (const [event, schemas] of [...Object.entries(clientEvents), ...Object.entries(serverEvents)]) {
      const operation = operations.find((candidate) => candidate.event === event);
      expect(operation?.reply === undefined, event).toBe(!("ack" in schemas));
    }
    // Every client event has a payload schema and a reply with the success ack and the failure.
    for (const event of Object.keys(clientEvents)) {
      const message = asyncApi.components.messages[event] as { payload: { $ref: string } };
      expect(message.payload.$ref, event).toMatch(/^#\/components\/schemas\//);
      const reply = asyncApi.operations[event]?.reply as { messages: { $ref: string }[] };
      expect(reply.messages.map((ref) => ref.$ref.split("/").pop())).toEqual([`${event}Ack`, "AckFailure"]);
    }
  });

  it("describes with the server's own schemas exactly the events the server handles", () => {
    const handled = [...handlers, ...queueHandlers];
    expect(handled.map((handler) => handler.event).sort()).toEqual(Object.keys(clientEvents).sort());
    for (const handler of handled) {
      expect(handler.schema, handler.event).toBe(clientEvents[handler.event as keyof typeof clientEvents].payload);
    }
  });

  it("is a valid OpenAPI 3.1 document whose every $ref resolves and path parameter is declared", async () => {
    const validator = new Validator();
    const result = await validator.validate(openApi);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(danglingRefs(openApi)).toEqual([]);
    for (const [path, item] of Object.entries(openApi.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      for (const [method, operation] of Object.entries(item)) {
        const declared = ((operation.parameters ?? []) as { in: string; name: string }[])
          .filter((parameter) => parameter.in === "path")
          .map((parameter) => parameter.name);
        expect(declared, `${method} ${path}`).toEqual(names);
        expect(Object.keys(operation.responses as Json).length, `${method} ${path}`).toBeGreaterThan(0);
      }
    }
  });

  it("is a valid AsyncAPI 3.0 document whose every $ref resolves", () => {
    // The AsyncAPI schema carries its own copy of the draft-07 meta-schema, under the id Ajv's would have.
    const ajv = new Ajv({ strict: false, allErrors: true, meta: false, validateSchema: false, validateFormats: false });
    const validate = ajv.compile(asyncApiSpecs.schemas["3.0.0"]);
    const valid = validate(asyncApi);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    expect(danglingRefs(asyncApi)).toEqual([]);
  });

  it("tells the truth: a real init request and its answer match the document's schemas", async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: "https://liaison.test/openapi", components: openApi.components });
    const schema = (name: string) => ajv.compile({ $ref: `https://liaison.test/openapi#/components/schemas/${name}` });
    const request = { firstName: "Sara Khan", email: "sara@example.com", channel: "web" };
    expect(schema("InitRequest")(request)).toBe(true);
    expect(schema("InitRequest")({ firstName: "Sara" })).toBe(false);
    const response = await fetch(`${gateway.url}/api/customer/init`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
    expect(response.status).toBe(200);
    const validate = schema("InitResponse");
    expect(validate(await response.json()), JSON.stringify(validate.errors)).toBe(true);
    const refused = await fetch(`${gateway.url}/api/customer/init`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(refused.status).toBe(400);
    expect(schema("ErrorBody")(await refused.json())).toBe(true);
  });
});
