import { describe, expect, it } from "vitest";
import { OutageLog } from "../../server/core/outage-log.js";
import type { CoreLogger } from "../../server/core/ports.js";

/** A logger that keeps every call, as the gateway's would write it. */
function recordingLogger(): { logger: CoreLogger; lines: { level: string; obj: object; msg: string }[] } {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const record = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return {
    logger: { debug: record("debug"), info: record("info"), warn: record("warn"), error: record("error") },
    lines,
  };
}

describe("OutageLog", () => {
  it("blanks the password of a URL in the error it logs, first time and while it keeps failing", () => {
    const { logger, lines } = recordingLogger();
    const outage = new OutageLog(logger, "redis", () => 0);
    const secret = "s3cret-Pa55word";
    outage.failed(new Error(`connect to redis://default:${secret}@redis.internal:6379 failed`));
    outage.failed(`smtp://mailer:${secret}@smtp.example.org:587 refused`);
    expect(lines.map((line) => `${line.level} ${line.msg}`)).toEqual(["warn failing", "debug still failing"]);
    expect(JSON.stringify(lines)).not.toContain(secret);
    expect(lines[0]?.obj).toMatchObject({
      error: "connect to redis://default:[redacted]@redis.internal:6379 failed",
    });
    expect(lines[1]?.obj).toMatchObject({ error: "smtp://mailer:[redacted]@smtp.example.org:587 refused" });
  });

  it("keeps a system error's code and a message without credentials as they are", () => {
    const { logger, lines } = recordingLogger();
    const outage = new OutageLog(logger, "desk rocketchat", () => 0);
    outage.failed(Object.assign(new Error("connect failed to http://127.0.0.1:1"), { code: "ECONNREFUSED" }));
    expect(lines[0]?.obj).toMatchObject({ error: "ECONNREFUSED: connect failed to http://127.0.0.1:1" });
    expect(outage.problem()).toBe("failing since 1970-01-01T00:00:00.000Z (1 failure)");
  });
});
