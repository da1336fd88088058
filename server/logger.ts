import { pino, type DestinationStream, type LevelWithSilent, type Logger, type LoggerOptions } from "pino";
import { scrubText } from "./core/scrub-text.js";

export type { Logger } from "pino";

/** Paths pino blanks out wherever they appear: tokens, keys, authorization headers and adapter secrets. */
export const redactPaths = [
  "token",
  "apiKey",
  "*.token",
  "*.apiKey",
  "*.password",
  "*.*.token",
  "*.*.apiKey",
  "*.*.password",
  "auth.apiKey",
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "config.API_KEYS",
  "config.SMTP_URL",
  "API_KEYS",
  "SMTP_URL",
];

/**
 * Fields some libraries attach to their errors that carry what was sent: ioredis's `command` (AUTH's password, a
 * message's text), `args`, a request's `options` or `config` (its headers).
 */
const ERROR_PAYLOAD_FIELDS = new Set(["command", "args", "options", "config", "request", "requestOptions"]);

/**
 * An error as it is logged: pino's standard form (type, message, stack, own fields, causes), without the fields that
 * carry payloads and with credentials in URLs blanked, at any depth. Secrets are removed by structure, not by
 * knowing their values.
 */
export function serializeError(error: unknown): unknown {
  return scrub(pino.stdSerializers.err(error as Error), 0);
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === "string") return scrubText(value);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => scrub(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (!ERROR_PAYLOAD_FIELDS.has(key)) copy[key] = scrub(field, depth + 1);
  }
  return copy;
}

/**
 * The gateway's logger: one JSON object per line on stdout (what log collectors read), or, when stdout is a terminal
 * (someone running `npm start` or `npm run dev`), the same lines made readable by pino-pretty. `destination`: the
 * JSON lines go there instead (tests read them).
 */
export function createLogger(config: { LOG_LEVEL: LevelWithSilent }, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level: config.LOG_LEVEL,
    base: { service: "liaison" },
    redact: { paths: redactPaths, censor: "[redacted]" },
    serializers: { err: serializeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination !== undefined) return pino(options, destination);
  if (process.stdout.isTTY !== true) return pino(options);
  return pino({
    ...options,
    transport: { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" } },
  });
}
