import { build } from "esbuild";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import {
  answerSchemas,
  checkAnswer,
  errorStatuses,
  type AnswerName,
  type CheckedAnswer,
} from "../../clients/sdk/answers.js";
import { browserAnswers, generateAnswerValidators } from "../../clients/sdk/build/browser-answers.js";
import type * as Sdk from "../../clients/sdk/index.js";
import type { ConversationInfo, ConversationUpdated, InitResponse } from "../../protocol/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { mutants, replaceAt } from "../helpers/mutations.js";
import { connect, nextEvent, postJson, request } from "../helpers/socket.js";

/**
 * The SDK's browser build checks the server's answers with validators generated from the protocol's zod schemas
 * (`clients/sdk/build/browser-answers.ts`) instead of zod. They must agree with zod: the same answers accepted, the
 * same refused, the same value returned. The corpus is what a real gateway answers, and mutations of it.
 */

type Check = (name: AnswerName, value: unknown) => CheckedAnswer<unknown>;
interface Sample {
  name: AnswerName;
  value: unknown;
}

const sdkDir = fileURLToPath(new URL("../../clients/sdk/", import.meta.url));
let workdir: string;
let app: TestApp;
let generated: { checkAnswer: Check; errorStatuses: Record<string, number> };
const corpus: Sample[] = [];
const sockets: Socket[] = [];

/** Records what the gateway answered, under the name the SDK checks it as. */
function record<T>(name: AnswerName, value: T): T {
  corpus.push({ name, value: structuredClone(value) });
  return value;
}

async function getJson(url: string, apiKey?: string): Promise<unknown> {
  const response = await fetch(url, apiKey === undefined ? {} : { headers: { authorization: `Bearer ${apiKey}` } });
  return response.json();
}

/** Drives a real gateway through what the SDK meets, and records each answer. */
async function captureAnswers(): Promise<void> {
  const agent = await connect(app.url, { apiKey: app.apiKey });
  const connector = await connect(app.url, { apiKey: app.apiKey });
  const customer = await connect(app.url);
  sockets.push(agent, connector, customer);

  const updates: unknown[] = [];
  agent.on("conversationUpdated", (update: ConversationUpdated) => updates.push(update));
  record("okAck", await request(agent, "subscribeConversations", {}));
  record(
    "registerConnectorAck",
    await request(connector, "registerConnector", { id: "sms", name: "SMS gateway", channel: "sms" }),
  );

  const web = record(
    "initResponse",
    (
      await postJson(`${app.url}/api/customer/init`, {
        firstName: "Sara Khan",
        email: "sara@example.com",
        channel: "web",
        subject: "billing",
      })
    ).body as InitResponse,
  );
  const firstInfo = nextEvent<ConversationInfo>(customer, "conversationInfo");
  record(
    "okAck",
    await request(customer, "joinConversation", {
      conversationId: web.conversationId,
      id: web.participant.id,
      name: web.participant.name,
      token: web.token,
    }),
  );
  record("conversationInfo", await firstInfo);
  record(
    "sendAck",
    await request(customer, "sendMessage", { conversationId: web.conversationId, id: "m-1", text: "Hello" }),
  );
  record(
    "sendAck",
    await request(customer, "sendMessage", {
      type: "ActivityMessage",
      activityType: "typing",
      conversationId: web.conversationId,
      info: { state: "start" },
    }),
  );
  const agentInfo = nextEvent<ConversationInfo>(agent, "conversationInfo");
  record(
    "okAck",
    await request(agent, "joinConversation", {
      conversationId: web.conversationId,
      id: "agent-1",
      name: "Ali",
      role: "agent",
    }),
  );
  record("conversationInfo", await agentInfo);
  record(
    "sendAck",
    await request(agent, "sendMessage", { conversationId: web.conversationId, text: "Note", tag: "whisper" }),
  );
  const history = nextEvent<ConversationInfo>(customer, "conversationInfo");
  await request(customer, "joinConversation", {
    conversationId: web.conversationId,
    id: web.participant.id,
    name: web.participant.name,
    token: web.token,
    since: 0,
    limit: 2,
  });
  record("conversationInfo", await history);

  const sms = record(
    "initResponse",
    (
      await postJson(
        `${app.url}/api/customer/init`,
        { firstName: "Bilal", refId: "+923001234567", channel: "sms" },
        { authorization: `Bearer ${app.apiKey}` },
      )
    ).body as InitResponse,
  );
  record(
    "connectorMessageResponse",
    (
      await postJson(
        `${app.url}/api/connectors/sms/messages`,
        { refId: "+923001234567", text: "Your order shipped" },
        { authorization: `Bearer ${app.apiKey}` },
      )
    ).body,
  );
  record(
    "connectorMessageResponse",
    (
      await postJson(
        `${app.url}/api/connectors/sms/messages`,
        { refId: "+923009999999", text: "A campaign" },
        { authorization: `Bearer ${app.apiKey}` },
      )
    ).body,
  );
  record("conversationList", await getJson(`${app.url}/api/conversations?limit=1`, app.apiKey));
  record("conversationList", await getJson(`${app.url}/api/conversations`, app.apiKey));

  record("endAck", await request(agent, "endConversation", { conversationId: web.conversationId, reason: "done" }));
  record("endAck", await request(agent, "endConversation", { conversationId: web.conversationId }));
  record("endAck", await request(agent, "endConversation", { conversationId: sms.conversationId }));

  const refused = await request<{ ok: false; error: unknown }>(customer, "sendMessage", {
    conversationId: web.conversationId,
    text: "too late",
  });
  record("errorInfo", refused.error);
  const errorBodies = [
    await getJson(`${app.url}/api/conversations`),
    await getJson(`${app.url}/api/conversations?state=nope`, app.apiKey),
    (await postJson(`${app.url}/api/customer/init`, { firstName: "", channel: "web" })).body,
    await getJson(`${app.url}/api/customer/transcript/no-such-conversation/pdf`, app.apiKey),
  ];
  for (const body of errorBodies) {
    record("errorBody", body);
    record("errorInfo", (body as { error: unknown }).error);
    record("errorCode", (body as { error: { code: unknown } }).error.code);
  }
  for (const code of Object.keys(errorStatuses)) record("errorCode", code);

  // The agent's subscription saw the web conversation created, taken and ended, and the SMS one.
  for (const update of updates) record("conversationUpdated", update);
}

/** Checks one value with zod and with the generated validators (each on its own copy); they must agree. */
function expectAgreement(name: AnswerName, value: unknown): boolean {
  const byZod = checkAnswer(name, structuredClone(value));
  const generatedCheck = generated.checkAnswer(name, structuredClone(value));
  const context = `${name}: ${JSON.stringify(value)?.slice(0, 400)}`;
  expect(generatedCheck.ok, context).toBe(byZod.ok);
  if (byZod.ok && generatedCheck.ok) {
    expect(generatedCheck.value, context).toStrictEqual(byZod.value);
  } else if (!byZod.ok && !generatedCheck.ok) {
    // The generated validator stops at its first issue; zod lists them all, that one among them.
    expect(generatedCheck.issues.length, context).toBeGreaterThan(0);
    expect(
      byZod.issues.map((issue) => issue.path),
      context,
    ).toContain(generatedCheck.issues[0]?.path);
  }
  return byZod.ok;
}

beforeAll(async () => {
  workdir = mkdtempSync(join(tmpdir(), "liaison-sdk-answers-"));
  const module = join(workdir, "answers.generated.mjs");
  writeFileSync(module, generateAnswerValidators());
  expect(readFileSync(module, "utf8")).not.toMatch(/\b(require\s*\(|import\b)/);
  generated = (await import(pathToFileURL(module).href)) as typeof generated;
  app = await startTestApp();
  await captureAnswers();
}, 60_000);

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await app.close();
  rmSync(workdir, { recursive: true, force: true });
});

describe("the SDK's generated answer validators", () => {
  it("accept every answer a real gateway gave, as zod does, and return the same value", () => {
    const names = new Set(corpus.map((sample) => sample.name));
    expect([...names].sort()).toEqual(Object.keys(answerSchemas).sort());
    for (const sample of corpus) {
      expect(checkAnswer(sample.name, structuredClone(sample.value)).ok, `${sample.name} from the gateway`).toBe(true);
      expectAgreement(sample.name, sample.value);
    }
    expect(corpus.filter((sample) => sample.name === "conversationUpdated").length).toBeGreaterThanOrEqual(3);
  });

  it("accept and refuse the same mutations of those answers as zod", () => {
    let accepted = 0;
    let refused = 0;
    for (const sample of corpus) {
      for (const mutant of mutants(sample.value)) {
        if (expectAgreement(sample.name, mutant)) accepted++;
        else refused++;
      }
    }
    // Both outcomes are well represented: the agreement is not that of two checks that accept (or refuse) all.
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(5_000);
  });

  it("agree with zod on random values put anywhere in an answer", () => {
    const samples = corpus.filter((sample) => sample.name !== "errorCode");
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        fc.jsonValue(),
        (sample, steps, replacement) => {
          expectAgreement(sample.name, replaceAt(sample.value, steps, replacement));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("carry the protocol's HTTP status of every error code", () => {
    expect(generated.errorStatuses).toEqual(errorStatuses);
  });

  it("refuse schemas whose checks JSON Schema cannot express (refinements, overwrites, defaults, transforms)", () => {
    const refined = z.object({ id: z.string() }).refine((value) => value.id !== "x");
    const trimmed = z.object({ id: z.string().trim() });
    const defaulted = z.object({ id: z.string().default("x") });
    const transformed = z.object({ id: z.string().transform((id) => id.length) });
    for (const schema of [refined, trimmed, defaulted, transformed]) {
      expect(() => generateAnswerValidators({ sample: schema }, {})).toThrow(/JSON Schema|Transforms/);
    }
    expect(generateAnswerValidators({ sample: z.object({ id: z.string().min(1) }) }, {})).toContain("export");
  });
});

describe("the SDK's browser build", () => {
  let sdk: typeof Sdk;
  let bundleInputs: string[];
  let server: ReturnType<typeof createServer>;
  let answer: unknown;
  let url: string;

  beforeAll(async () => {
    const result = await build({
      entryPoints: [join(sdkDir, "index.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      write: false,
      metafile: true,
      logLevel: "silent",
      plugins: [browserAnswers()],
    });
    bundleInputs = Object.keys(result.metafile.inputs);
    const file = join(workdir, "liaison-sdk.mjs");
    writeFileSync(file, result.outputFiles[0]?.text ?? "");
    sdk = (await import(pathToFileURL(file).href)) as typeof Sdk;
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("bundles neither zod nor the protocol's schemas", () => {
    expect(bundleInputs.filter((input) => /node_modules\/zod\/|(^|\/)protocol\//.test(input))).toEqual([]);
    expect(bundleInputs.some((input) => input.startsWith("liaison-browser-answers:"))).toBe(true);
  });

  it("refuses an answer that breaks the protocol with bad_response and the failing field", async () => {
    const valid = corpus.find((sample) => sample.name === "initResponse")?.value as InitResponse;
    answer = { ...valid, timestamp: "2026-12-07T10:00:00+01:00" };
    const error = await sdk
      .initConversation(url, { firstName: "Sara", email: "sara@example.com", channel: "web" })
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect(sdk.isLiaisonError(error, "bad_response")).toBe(true);
    expect((error as Sdk.LiaisonError).details).toEqual({
      issues: [{ path: "timestamp", message: expect.any(String) as string }],
    });
  });

  it("returns a valid answer without the fields the protocol does not name, as the Node build does", async () => {
    const valid = corpus.find((sample) => sample.name === "initResponse")?.value as InitResponse;
    answer = { ...valid, participant: { ...valid.participant, internal: 1 }, debug: true };
    const started = await sdk.initConversation(url, { firstName: "Sara", email: "sara@example.com", channel: "web" });
    expect(started).toStrictEqual(valid);
  });
});
