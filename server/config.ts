import { readFileSync } from "node:fs";
import { z } from "zod";
import { RapidProConfigSchema, localizedTexts, rapidProSecrets } from "./adapters/rapidpro/config.js";
import { RocketChatConfigSchema, rocketChatSecrets } from "./adapters/rocketchat/config.js";
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
    .optional()
    .describe(
      "Redis URL: all state in Redis, nodes linked by the Socket.IO Redis adapter; unset: embedded store, one node",
    ),
  REDIS_PREFIX: z.string().min(1).default("liaison:").describe("prefix of every Redis key"),
  REDIS_ADAPTER: z
    .enum(["classic", "sharded"])
    .default("classic")
    .describe("Socket.IO Redis adapter: classic pub/sub or sharded pub/sub (Redis 7+)"),
  NODE_ID: z.string().min(1).optional().describe("this node's name in leases and logs (default: host-pid-random)"),
  OUTBOX_LEASE_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(30_000)
    .describe("how long a node holds a conversation's outbox; a dead node's work moves to another after this"),
  API_KEYS: csv.default([]).describe("comma-separated API keys for connectors, agents and back-office calls (secret)"),
  CORS_ORIGINS: csv.default(["*"]).describe("allowed browser origins, comma-separated; * for any"),
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
    .enum(["socket", "rocketchat", "salesforce", "livechat"])
    .optional()
    .describe("desk that receives hand-offs (default: first configured, else the built-in socket desk)"),
  BOT: z
    .enum(["none", "gms", "dialogflow"])
    .default("none")
    .describe("bot that answers new conversations before hand-off"),
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
  CONNECTOR_MAX_IN_FLIGHT: positiveInt.default(100).describe("unacknowledged deliveries per connector channel"),
  CONNECTOR_MAX_REFUSALS: positiveInt
    .default(5)
    .describe("times a connector may refuse a message ({ ok: false }) before it is given up and reported to agents"),
  MAX_PAYLOAD_BYTES: positiveInt.default(1_048_576).describe("largest socket event or JSON body"),
  INIT_RATE_LIMIT: positiveInt.default(30).describe("POST /api/customer/init per client IP per minute"),
  CUSTOMER_EVENTS_PER_SECOND: positiveInt
    .default(10)
    .describe("events a customer socket may send per second, sustained"),
  CUSTOMER_EVENTS_BURST: positiveInt.default(30).describe("events a customer socket may send in a burst"),
  TRANSCRIPT_EMAILS_PER_HOUR: positiveInt.default(3).describe("e-mailed transcripts per conversation per hour"),
  ENDED_RETENTION_HOURS: positiveInt.default(168).describe("how long ended conversations (and transcripts) are kept"),
  PRESENCE_GRACE_MS: positiveInt
    .default(30_000)
    .describe("how long a participant whose sockets all dropped may take to come back before they count as gone"),
  SHUTDOWN_GRACE_MS: positiveInt.default(10_000).describe("how long a SIGTERM waits for in-flight work"),
  MAX_OPENING_CONNECTIONS: z.coerce
    .number()
    .int()
    .min(0)
    .default(8)
    .describe(
      "new connections let in at once until their first request is read; more wait, accepted, in arrival order " +
        "(a reconnection storm then slows handshakes instead of freezing the server); 0 lets every one in",
    ),
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
  DESK_RETRY_MAX_SECONDS: positiveInt.default(300).describe("longest wait between two delivery attempts to a desk"),
  NO_AGENT_RETRY_MAX_SECONDS: positiveInt.default(60).describe("longest wait between two tries to reach an agent"),
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

export const ConfigSchema = CoreConfigSchema.extend(RocketChatConfigSchema.shape).extend(RapidProConfigSchema.shape);

export type Config = Readonly<z.output<typeof ConfigSchema>> & {
  readonly PUBLIC_URL: string;
  /** The desk that receives hand-offs: DESK, else the first configured one, else the built-in socket desk. */
  readonly DESK: "socket" | "rocketchat" | "salesforce" | "livechat";
  /** `ATTENDED_TEXT_<lang>` and `CLOSED_TEXT_<lang>` found in the environment, by lower-case language tag. */
  readonly LOCALIZED_TEXTS: { attended: Record<string, string>; closed: Record<string, string> };
};

/** Variables that hold secrets: they may come from `<NAME>_FILE` and are never logged. */
export const secretVariables = [
  "REDIS_URL",
  "API_KEYS",
  "SMTP_URL",
  "SIGNING_SECRET",
  ...rocketChatSecrets,
  ...rapidProSecrets,
] as const;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
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
  if (parsed.success) {
    const c = parsed.data;
    if (c.DESK === "salesforce" || c.DESK === "livechat") {
      problems.push(`DESK: the ${c.DESK} desk is not available in this build; use rocketchat or socket`);
    }
    if (c.DESK === "rocketchat" && c.ROCKETCHAT_URL === undefined) {
      problems.push("DESK: rocketchat needs ROCKETCHAT_URL");
    }
    if (c.RAPIDPRO_URL !== undefined && c.RAPIDPRO_TOKEN === undefined) {
      problems.push("RAPIDPRO_TOKEN: the RapidPro channel needs its API token");
    }
    if ((c.ROCKETCHAT_USER_ID === undefined) !== (c.ROCKETCHAT_AUTH_TOKEN === undefined)) {
      problems.push("ROCKETCHAT_AUTH_TOKEN: set ROCKETCHAT_USER_ID and ROCKETCHAT_AUTH_TOKEN together");
    }
    if (c.BOT !== "none") problems.push(`BOT: the ${c.BOT} bot is not available in this build; use none`);
    if (c.SMTP_URL !== undefined && !/^smtps?:\/\//.test(c.SMTP_URL)) {
      problems.push("SMTP_URL: must start with smtp:// or smtps://");
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const config = {
    ...parsed.data,
    PUBLIC_URL: parsed.data.PUBLIC_URL ?? `http://localhost:${parsed.data.PORT}`,
    DESK:
      parsed.data.DESK ?? (parsed.data.ROCKETCHAT_URL !== undefined ? ("rocketchat" as const) : ("socket" as const)),
    LOCALIZED_TEXTS: localizedTexts(env),
  };
  for (const value of Object.values(config)) if (Array.isArray(value)) Object.freeze(value);
  return Object.freeze(config);
}

/** `.env.example`, rendered from the schema so that the example can never drift from what the server reads. */
export function renderEnvExample(): string {
  const lines = ["# Liaison configuration. Generated by `npm run env:example` from server/config.ts; do not edit.", ""];
  for (const [name, schema] of Object.entries(ConfigSchema.shape)) {
    const parsed = schema.safeParse(undefined);
    const fallback = parsed.success && parsed.data !== undefined ? String(parsed.data) : "";
    lines.push(`# ${schema.description ?? ""}`);
    if ((secretVariables as readonly string[]).includes(name)) lines.push(`# (or ${name}_FILE=/run/secrets/...)`);
    lines.push(`# ${name}=${fallback}`, "");
  }
  return lines.join("\n");
}
