import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../server/logger.js";

/** The gateway's own logger (its serializers and redaction), writing into `lines`: every JSON line, as text. */
export function capturedLogger(level: "trace" | "debug" | "info" = "debug"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(line);
      done();
    },
  });
  return { logger: createLogger({ LOG_LEVEL: level }, stream), lines };
}
