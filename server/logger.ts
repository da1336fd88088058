import { pino, type LevelWithSilent, type Logger } from "pino";

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
 * The gateway's logger: one JSON object per line (what log collectors read), or, when the output is a terminal
 * (someone running `npm start` or `npm run dev`), the same lines made readable by pino-pretty.
 */
export function createLogger(
  config: { LOG_LEVEL: LevelWithSilent },
  terminal: boolean = process.stdout.isTTY === true,
): Logger {
  return pino({
    level: config.LOG_LEVEL,
    base: { service: "liaison" },
    redact: { paths: redactPaths, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(terminal
      ? {
          transport: {
            target: "pino-pretty",
            options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" },
          },
        }
      : {}),
  });
}
