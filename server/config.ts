import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import type { AdapterModule } from "./adapters/contract.js";
import { adapterModules } from "./adapters/index.js";
import { readLogo } from "./transcript/logo.js";

const csv = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  )
  .pipe(z.array(z.string()));

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

/**
 * Every environment variable Liaison reads, with defaults and descriptions. `server/config.ts` is the only reader
 * of `process.env`; the parsed, frozen result is passed down explicitly.
 */
const CoreConfigSchema = z.object({
  PORT: port.default(8080).describe("HTTP + Socket.IO port"),
  HOST: z.string().min(1).default("0.0.0.0").describe("bind address"),
  PUBLIC_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("how external systems reach Liaison (default http://localhost:$PORT)"),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    // Checked here so that a bad one stops the start with this message, never with one that quotes it (a password).
    .refine((value) => URL.canParse(value) && new URL(value).hostname !== "", "must be a valid URL")
    .optional()
    .describe(
      "Redis URL: all state in Redis, nodes linked by the Socket.IO Redis adapter; unset: embedded store, one node",
    ),
  REDIS_PREFIX: z.string().min(1).default("liaison:").describe("prefix of every Redis key"),
  NODE_ID: z.string().min(1).optional().describe("this node's name in leases and logs (default: host-pid-random)"),
  API_KEYS: csv.default([]).describe("comma-separated API keys for connectors, agents and back-office calls (secret)"),
  CORS_ORIGINS: csv.default(["*"]).describe("allowed browser origins, comma-separated; * for any"),
  METRICS_TOKEN: z
    .string()
    .min(16)
    .optional()
    .describe("when set, GET /metrics needs Authorization: Bearer <token> (secret)"),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info")
    .describe("pino level"),
  GREETING_TEXT: z
    .string()
    .default("Welcome! An agent will be with you shortly.")
    .describe("the greetings activity text"),
  MAX_TEXT_LENGTH: positiveInt.max(1_000_000).default(4096).describe("longest accepted message text"),
  SMTP_URL: z.string().optional().describe("smtp(s)://user:pass@host:port for e-mailed transcripts (secret)"),
  MAIL_FROM: z.string().default("Liaison <no-reply@localhost>").describe("sender address of transcript e-mails"),
  DESK: z
    .string()
    .optional()
    .describe(
      `desk that receives hand-offs: socket (built in)${names("desk")} (default: the first configured, else socket)`,
    ),
  BOT: z
    .string()
    .default("none")
    .describe(`bot that answers new conversations before hand-off: none${names("bot")}`),
  BOT_NAME: z
    .string()
    .trim()
    .min(1)
    .max(256)
    .default("Assistant")
    .describe("the bot participant's name: its replies come from { id: bot, name: BOT_NAME }"),
  BOT_AFTER_AGENT: z
    .enum(["end", "resume"])
    .default("end")
    .describe("when the agent side closes a conversation the bot handed over: end it, or resume (back to the bot)"),
  BOT_FAILURE_HANDOFF_SECONDS: positiveInt
    .max(86_400)
    .default(30)
    .describe(
      "a bot that keeps failing (timeouts, 5xx, 429) this long, counted from the first failed attempt of the oldest message it has not received, hands the conversation to the desk",
    ),
  SOCKET_PATH: z
    .string()
    .regex(/^\/[\w./-]*$/)
    .default("/socket.io")
    .describe("Socket.IO path (for path-prefix proxies)"),
  TRUST_PROXY: z
    .string()
    .default("loopback")
    .describe("Express trust proxy setting: which proxies may set X-Forwarded-For"),
  ALLOWED_CHANNELS: csv
    .default([])
    .describe("channels init accepts, comma-separated (empty: any); stops callers inventing channels nobody serves"),
  DIRECT_CHANNELS: csv
    .default(["web"])
    .describe(
      "channels whose customers connect over Socket.IO themselves; every other channel is delivered through its registered connectors",
    ),
  CONNECTOR_ACK_TIMEOUT_MS: positiveInt
    .default(10_000)
    .describe("a connector delivery not acked within this is offered again"),
  CONNECTOR_MAX_REFUSALS: positiveInt
    .default(5)
    .describe("times a connector may refuse a message ({ ok: false }) before it is given up and reported to agents"),
  MAX_PAYLOAD_BYTES: positiveInt.default(1_048_576).describe("largest socket event or JSON body"),
  INIT_RATE_LIMIT: positiveInt
    .default(30)
    .describe("POST /api/customer/init per client address per minute, without an API key (all nodes together)"),
  INIT_API_KEY_RATE_LIMIT: positiveInt
    .default(1_200)
    .describe(
      "POST /api/customer/init per API key per minute (connectors, RapidPro, back offices; all nodes together)",
    ),
  CUSTOMER_EVENTS_PER_SECOND: positiveInt
    .default(10)
    .describe("events a customer socket may send per second, sustained"),
  CUSTOMER_EVENTS_BURST: positiveInt.default(30).describe("events a customer socket may send in a burst"),
  TRANSCRIPT_EMAILS_PER_HOUR: positiveInt.default(3).describe("e-mailed transcripts per conversation per hour"),
  ENDED_RETENTION_HOURS: positiveInt.default(168).describe("how long ended conversations (and transcripts) are kept"),
  IDLE_TIMEOUT_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .default(86_400)
    .describe(
      "a conversation with no recorded message (chat or activity; typing does not count) for this long ends, reason inactive; 0: never",
    ),
  SHUTDOWN_GRACE_MS: positiveInt.default(10_000).describe("how long a SIGTERM waits for in-flight work"),
  SIGNING_SECRET: z
    .string()
    .min(32)
    .optional()
    .describe(
      "key that signs the expiring links Liaison hands out for desk files; set the same on every node (secret)",
    ),
  FILE_URL_TTL_SECONDS: positiveInt.default(86_400).describe("how long a signed file link stays valid"),
  FILE_FETCH_HOSTS: csv
    .default([])
    .describe(
      "hosts whose http(s) attachment URLs Liaison may download to re-upload to a desk; others are sent as links",
    ),
  MAX_FILE_BYTES: positiveInt.default(26_214_400).describe("largest file Liaison downloads to forward to a desk"),
  NO_AGENT_TEXT: z
    .string()
    .default("All our agents are busy right now. Please stay: you will be connected as soon as one is free.")
    .describe("the noAgentAvailable activity text"),
  TRANSCRIPTS_PER_MINUTE: positiveInt
    .default(10)
    .describe("transcript requests (PDF or e-mail) per client address per minute; API-key callers are not counted"),
  TRANSCRIPT_PDFS_PER_HOUR: positiveInt.default(20).describe("PDF transcripts per conversation per hour"),
  TRANSCRIPT_TITLE: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .default("Conversation transcript")
    .describe("heading of every transcript: the organisation's name (e.g. Example Bank) or what it calls the document"),
  // Parsed into the file's bytes: read once, here, so that a bad file stops the server before it listens.
  TRANSCRIPT_LOGO_FILE: z
    .string()
    .transform((path, ctx) => {
      try {
        return readLogo(path);
      } catch (error) {
        ctx.addIssue((error as Error).message);
        return z.NEVER;
      }
    })
    .optional()
    .describe("PNG or JPEG logo printed above the heading of every transcript (read once at start)"),
});

/** The core's variables and every adapter's, in one schema (an adapter's variables are its own to name). */
export const ConfigSchema: z.ZodObject = adapterModules.reduce<z.ZodObject>(
  (schema, module) => schema.extend(module.config.shape),
  CoreConfigSchema,
);

/**
 * The parsed configuration: the core's settings, typed, and each adapter's (read by the adapter through its own
 * schema's type, see `adapterConfig`).
 */
export type Config = Readonly<z.output<typeof CoreConfigSchema>> & {
  readonly PUBLIC_URL: string;
  /** The desk that receives hand-offs: DESK, else the first configured one, else the built-in socket desk. */
  readonly DESK: string;
  readonly [variable: string]: unknown;
};

/** Variables that hold secrets: they may come from `<NAME>_FILE` and are never logged. */
export const secretVariables: readonly string[] = [
  "REDIS_URL",
  "API_KEYS",
  "SMTP_URL",
  "SIGNING_SECRET",
  "METRICS_TOKEN",
  ...adapterModules.flatMap((module) => module.secrets),
];

/** ", a, b" for the adapter modules of a kind (for the descriptions of DESK and BOT). */
function names(kind: AdapterModule["kind"]): string {
  return adapterModules
    .filter((module) => module.kind === kind)
    .map((module) => `, ${module.name}`)
    .join("");
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * Loads a `.env` file (by default the working directory's) into the environment when there is one; a variable the
 * environment already has keeps its value. Returns whether a file was read.
 */
export function loadEnvFile(path = ".env"): boolean {
  if (!existsSync(path)) return false;
  process.loadEnvFile(path);
  return true;
}

/** Parses the environment once; throws ConfigError listing every problem, each naming its variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const problems: string[] = [];
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(ConfigSchema.shape)) {
    const value = env[key];
    input[key] = value === "" ? undefined : value;
  }
  for (const key of secretVariables) {
    const file = env[`${key}_FILE`];
    if (!file) continue;
    if (input[key] !== undefined) {
      problems.push(`${key}: set either ${key} or ${key}_FILE, not both`);
      continue;
    }
    try {
      input[key] = readFileSync(file, "utf8").trim();
    } catch (error) {
      problems.push(`${key}_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join(".")}: ${issue.message}`);
  }
  let desk = "socket";
  if (parsed.success) {
    const c = parsed.data as z.output<typeof CoreConfigSchema> & Record<string, unknown>;
    for (const module of adapterModules) problems.push(...(module.check?.(c) ?? []));
    const enabled = (module: AdapterModule) => module.enabled(c);
    const desks = adapterModules.filter((module) => module.kind === "desk");
    if (c.DESK !== undefined && c.DESK !== "socket") {
      const named = desks.find((module) => module.name === c.DESK);
      if (named === undefined) problems.push(`DESK: must be socket${names("desk")}`);
      else if (!enabled(named)) problems.push(`DESK: ${named.name} needs ${named.enabledBy}`);
    }
    desk = c.DESK ?? desks.find(enabled)?.name ?? "socket";
    if (c.BOT !== "none") {
      const named = adapterModules.find((module) => module.kind === "bot" && module.name === c.BOT);
      if (named === undefined) problems.push(`BOT: must be none${names("bot")}`);
      else if (!enabled(named)) problems.push(`BOT: ${named.name} needs ${named.enabledBy}`);
    }
    if (c.SMTP_URL !== undefined && !/^smtps?:\/\//.test(c.SMTP_URL)) {
      problems.push("SMTP_URL: must start with smtp:// or smtps://");
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const core = parsed.data as z.output<typeof CoreConfigSchema>;
  const config: Config = {
    ...parsed.data,
    ...Object.assign({}, ...adapterModules.map((module) => module.derive?.(env) ?? {})),
    PUBLIC_URL: core.PUBLIC_URL ?? `http://localhost:${core.PORT}`,
    DESK: desk,
  } as Config;
  for (const value of Object.values(config)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze(config);
}

/** `.env.example`, rendered from the schema so that the example can never drift from what the server reads. */
export function renderEnvExample(): string {
  const lines = ["# Liaison configuration. Generated by `npm run env:example` from server/config.ts; do not edit.", ""];
  for (const [name, schema] of Object.entries(ConfigSchema.shape) as [string, z.ZodType][]) {
    const parsed = schema.safeParse(undefined);
    const value = (parsed.success ? parsed.data : undefined) as string | number | boolean | string[] | undefined;
    const fallback = value === undefined ? "" : Array.isArray(value) ? value.join(",") : String(value);
    lines.push(`# ${schema.description ?? ""}`);
    if (secretVariables.includes(name)) lines.push(`# (or ${name}_FILE=/run/secrets/...)`);
    lines.push(`# ${name}=${fallback}`, "");
  }
  return lines.join("\n");
}
