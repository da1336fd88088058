import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadEnvFile } from "../../server/config.js";
import { createLogger, redactPaths } from "../../server/logger.js";
import { flatPng } from "../helpers/png.js";

/** Runs `load` and returns the ConfigError it throws (fails the test if it throws anything else, or nothing). */
function configError(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected loadConfig to throw a ConfigError");
}

const secretsDir = mkdtempSync(join(tmpdir(), "liaison-config-"));
afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));

function secretFile(name: string, content: string): string {
  const path = join(secretsDir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

describe("loadConfig", () => {
  it("applies the documented defaults to an empty environment", () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(8080);
    expect(config.HOST).toBe("0.0.0.0");
    expect(config.MAX_TEXT_LENGTH).toBe(4096);
    expect(config.GREETING_TEXT).toBe("Welcome! An agent will be with you shortly.");
    expect(config.PUBLIC_URL).toBe("http://localhost:8080");
    expect(config.API_KEYS).toEqual([]);
    expect(config.CORS_ORIGINS).toEqual(["*"]);
    expect(config.DIRECT_CHANNELS).toEqual(["web"]);
    expect(config.SOCKET_PATH).toBe("/socket.io");
    expect(config.LOG_LEVEL).toBe("info");
    expect(config.CONNECTOR_ACK_TIMEOUT_MS).toBe(10_000);
    expect(config.BOT).toBe("none");
    // No desk configured: the built-in socket desk takes the hand-offs.
    expect(config.DESK).toBe("socket");
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.SMTP_URL).toBeUndefined();
  });

  it("derives PUBLIC_URL from PORT unless PUBLIC_URL is set", () => {
    expect(loadConfig({ PORT: "3000" }).PUBLIC_URL).toBe("http://localhost:3000");
    expect(loadConfig({ PORT: "3000", PUBLIC_URL: "https://chat.example.com" }).PUBLIC_URL).toBe(
      "https://chat.example.com",
    );
  });

  it("coerces numeric strings to numbers", () => {
    const config = loadConfig({
      PORT: "0",
      MAX_TEXT_LENGTH: "100",
      CONNECTOR_ACK_TIMEOUT_MS: "250",
      INIT_RATE_LIMIT: " 7 ",
    });
    expect(config.PORT).toBe(0);
    expect(config.MAX_TEXT_LENGTH).toBe(100);
    expect(config.CONNECTOR_ACK_TIMEOUT_MS).toBe(250);
    expect(config.INIT_RATE_LIMIT).toBe(7);
  });

  it("ends idle conversations after a day unless IDLE_TIMEOUT_SECONDS says otherwise (0: never)", () => {
    expect(loadConfig({}).IDLE_TIMEOUT_SECONDS).toBe(86_400);
    expect(loadConfig({ IDLE_TIMEOUT_SECONDS: "0" }).IDLE_TIMEOUT_SECONDS).toBe(0);
    expect(loadConfig({ IDLE_TIMEOUT_SECONDS: "3600" }).IDLE_TIMEOUT_SECONDS).toBe(3600);
    for (const value of ["-1", "1.5", "soon"]) {
      expect(configError(() => loadConfig({ IDLE_TIMEOUT_SECONDS: value })).problems).toEqual([
        expect.stringMatching(/^IDLE_TIMEOUT_SECONDS: /),
      ]);
    }
  });

  it("treats an empty variable as unset", () => {
    const config = loadConfig({ PORT: "", GREETING_TEXT: "", CORS_ORIGINS: "" });
    expect(config.PORT).toBe(8080);
    expect(config.GREETING_TEXT).toBe("Welcome! An agent will be with you shortly.");
    expect(config.CORS_ORIGINS).toEqual(["*"]);
  });

  it("splits API_KEYS and CORS_ORIGINS on commas, trimming and dropping empty items", () => {
    const config = loadConfig({
      API_KEYS: " key-one,key-two ,, key-three ",
      CORS_ORIGINS: "https://a.example.com, https://b.example.com,",
    });
    expect(config.API_KEYS).toEqual(["key-one", "key-two", "key-three"]);
    expect(config.CORS_ORIGINS).toEqual(["https://a.example.com", "https://b.example.com"]);
  });

  it("reads API_KEYS from API_KEYS_FILE (a Docker secret), trailing newline included", () => {
    const file = secretFile("api-keys", "file-key-1,file-key-2\n");
    expect(loadConfig({ API_KEYS_FILE: file }).API_KEYS).toEqual(["file-key-1", "file-key-2"]);
  });

  it("reads SMTP_URL from SMTP_URL_FILE", () => {
    const file = secretFile("smtp-url", "smtp://user:pass@mail.example.com:587\n");
    expect(loadConfig({ SMTP_URL_FILE: file }).SMTP_URL).toBe("smtp://user:pass@mail.example.com:587");
  });

  it("refuses X together with X_FILE, naming the variable", () => {
    const file = secretFile("api-keys-both", "from-file");
    const error = configError(() => loadConfig({ API_KEYS: "from-env", API_KEYS_FILE: file }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^API_KEYS: /);
    expect(error.problems[0]).toContain("API_KEYS_FILE");
  });

  it("reports an unreadable *_FILE, naming the variable and the path", () => {
    const missing = join(secretsDir, "does-not-exist");
    const error = configError(() => loadConfig({ API_KEYS_FILE: missing }));
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^API_KEYS_FILE: /);
    expect(error.problems[0]).toContain(missing);
    expect(error.problems[0]).toContain("ENOENT");
  });

  it("reports every invalid variable at once, each problem naming its variable", () => {
    const error = configError(() =>
      loadConfig({
        PORT: "99999",
        MAX_TEXT_LENGTH: "lots",
        LOG_LEVEL: "loud",
        SOCKET_PATH: "no-leading-slash",
        PUBLIC_URL: "ftp://chat.example.com",
        CONNECTOR_ACK_TIMEOUT_MS: "-5",
      }),
    );
    const variables = error.problems.map((problem) => problem.split(":")[0]);
    expect(new Set(variables)).toEqual(
      new Set(["PORT", "MAX_TEXT_LENGTH", "LOG_LEVEL", "SOCKET_PATH", "PUBLIC_URL", "CONNECTOR_ACK_TIMEOUT_MS"]),
    );
    for (const variable of variables) expect(error.message).toContain(`- ${variable}:`);
  });

  it("reports the build's unsupported choices and a bad SMTP_URL alongside each other", () => {
    const error = configError(() => loadConfig({ BOT: "gms", DESK: "rocketchat", SMTP_URL: "http://mail" }));
    const variables = error.problems.map((problem) => problem.split(":")[0]);
    expect(new Set(variables)).toEqual(new Set(["BOT", "DESK", "SMTP_URL"]));
  });

  it("reads TRANSCRIPT_LOGO_FILE once, a PNG or a JPEG, and names the variable when it cannot be used", () => {
    const png = flatPng(64, 16);
    const pngPath = join(secretsDir, "logo.png");
    writeFileSync(pngPath, png);
    expect(loadConfig({ TRANSCRIPT_LOGO_FILE: pngPath }).TRANSCRIPT_LOGO_FILE?.equals(png)).toBe(true);
    // A JPEG's start of image and frame header (SOF0) with its size is what is checked.
    const jpegPath = join(secretsDir, "logo.jpg");
    writeFileSync(jpegPath, Buffer.from("ffd8ffc0000b080010004003011100ffd9", "hex"));
    expect(loadConfig({ TRANSCRIPT_LOGO_FILE: jpegPath }).TRANSCRIPT_LOGO_FILE?.length).toBe(17);
    expect(loadConfig({}).TRANSCRIPT_LOGO_FILE).toBeUndefined();
    expect(loadConfig({}).TRANSCRIPT_TITLE).toBe("Conversation transcript");

    const textPath = join(secretsDir, "logo.svg");
    writeFileSync(textPath, "<svg/>");
    for (const [path, problem] of [
      [join(secretsDir, "missing.png"), /^TRANSCRIPT_LOGO_FILE: cannot read .*missing\.png \(ENOENT\)$/],
      [textPath, /^TRANSCRIPT_LOGO_FILE: .*logo\.svg is not a PNG or JPEG image$/],
    ] as const) {
      expect(configError(() => loadConfig({ TRANSCRIPT_LOGO_FILE: path })).problems).toEqual([
        expect.stringMatching(problem),
      ]);
    }
  });

  it("returns a frozen object", () => {
    const config = loadConfig({ PORT: "1234" });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Reflect.set(config, "PORT", 80)).toBe(false);
    expect(config.PORT).toBe(1234);
  });

  it("names the desks and bots the build has when DESK or BOT names another", () => {
    const error = configError(() => loadConfig({ DESK: "zendesk", BOT: "eliza" }));
    expect(error.problems).toEqual([
      "DESK: must be socket, rocketchat, salesforce, livechat",
      "BOT: must be none, gms, dialogflow",
    ]);
  });

  it("enables the LiveChat desk with its agent token, and names what it still needs", () => {
    expect(configError(() => loadConfig({ DESK: "livechat" })).problems).toEqual([
      "DESK: livechat needs LIVECHAT_AGENT_TOKEN",
    ]);
    expect(configError(() => loadConfig({ LIVECHAT_AGENT_TOKEN: "dal:agent" })).problems).toEqual([
      "LIVECHAT_CLIENT_ID: required with LIVECHAT_AGENT_TOKEN (the Client ID of Liaison's LiveChat app)",
      "LIVECHAT_ORGANIZATION_ID: required with LIVECHAT_AGENT_TOKEN",
    ]);
    const config = loadConfig({
      LIVECHAT_AGENT_TOKEN: "dal:agent",
      LIVECHAT_CLIENT_ID: "0123456789abcdef0123456789abcdef",
      LIVECHAT_ORGANIZATION_ID: "0c2e1c0a-aaaa-4bbb-8ccc-ddddeeeeffff",
      LIVECHAT_GROUPS: '{"billing": 2}',
    });
    expect(config.DESK).toBe("livechat");
    expect(config).toMatchObject({
      LIVECHAT_API_URL: "https://api.livechatinc.com",
      LIVECHAT_ACCOUNTS_URL: "https://accounts.livechat.com",
      LIVECHAT_GROUP_ID: 0,
      LIVECHAT_GROUPS: { billing: 2 },
    });
    expect(configError(() => loadConfig({ LIVECHAT_GROUPS: "[2]" })).problems[0]).toMatch(/^LIVECHAT_GROUPS: /);
  });

  it("reads the bot's settings: BOT names an enabled bot, with its name, what follows an agent, its failure limit", () => {
    const defaults = loadConfig({});
    expect([defaults.BOT, defaults.BOT_NAME, defaults.BOT_AFTER_AGENT, defaults.BOT_FAILURE_HANDOFF_SECONDS]).toEqual([
      "none",
      "Assistant",
      "end",
      30,
    ]);
    const gms = {
      BOT: "gms",
      GMS_WEBHOOK_URL: "https://bots.example.org/connector/omnichannel/omnichannel_message/t0k3n/bot_api_webhook",
      GMS_TOKEN: "channel-token",
    };
    expect(loadConfig({ ...gms, BOT_NAME: "Aida", BOT_AFTER_AGENT: "resume" })).toMatchObject({
      BOT: "gms",
      BOT_NAME: "Aida",
      BOT_AFTER_AGENT: "resume",
    });
    expect(configError(() => loadConfig({ BOT: "gms" })).problems).toEqual(["BOT: gms needs GMS_WEBHOOK_URL"]);
    expect(configError(() => loadConfig({ ...gms, GMS_TOKEN: undefined })).problems).toEqual([
      expect.stringMatching(/^GMS_TOKEN: /),
    ]);
    const bad = configError(() =>
      loadConfig({ ...gms, BOT_AFTER_AGENT: "later", BOT_FAILURE_HANDOFF_SECONDS: "0", BOT_NAME: " " }),
    );
    expect(new Set(bad.problems.map((problem) => problem.split(":")[0]))).toEqual(
      new Set(["BOT_AFTER_AGENT", "BOT_FAILURE_HANDOFF_SECONDS", "BOT_NAME"]),
    );
    // The webhook URL carries the channel's token: a bad one is named, never quoted.
    const url = configError(() => loadConfig({ ...gms, GMS_WEBHOOK_URL: "ftp://bots.example.org/t0k3n" }));
    expect(url.problems).toEqual([expect.stringMatching(/^GMS_WEBHOOK_URL: /)]);
    expect(url.message).not.toContain("t0k3n");
  });

  it("takes the first configured desk unless DESK names one", () => {
    expect(loadConfig({ ROCKETCHAT_URL: "https://chat.example.org" }).DESK).toBe("rocketchat");
    expect(loadConfig({ ROCKETCHAT_URL: "https://chat.example.org", DESK: "socket" }).DESK).toBe("socket");
  });

  it("reads only the environment it is given", () => {
    const a = loadConfig({ GREETING_TEXT: "Hello from A" });
    const b = loadConfig({ GREETING_TEXT: "Hello from B" });
    expect(a.GREETING_TEXT).toBe("Hello from A");
    expect(b.GREETING_TEXT).toBe("Hello from B");
  });
});

describe("loadEnvFile", () => {
  it("loads a .env file into the environment, leaving variables already set as they are", () => {
    const path = secretFile(".env", "LIAISON_TEST_FROM_FILE=file\nLIAISON_TEST_ALREADY_SET=file\n");
    process.env.LIAISON_TEST_ALREADY_SET = "environment";
    try {
      expect(loadEnvFile(path)).toBe(true);
      expect(process.env.LIAISON_TEST_FROM_FILE).toBe("file");
      expect(process.env.LIAISON_TEST_ALREADY_SET).toBe("environment");
    } finally {
      delete process.env.LIAISON_TEST_FROM_FILE;
      delete process.env.LIAISON_TEST_ALREADY_SET;
    }
  });

  it("does nothing without a file", () => {
    expect(loadEnvFile(join(secretsDir, "missing.env"))).toBe(false);
  });
});

describe("logger redaction", () => {
  const secrets = {
    token: "customer-token-SECRET-1",
    apiKey: "api-key-SECRET-2",
    authorization: "Bearer auth-header-SECRET-3",
    nestedToken: "nested-token-SECRET-4",
    password: "password-SECRET-5",
    apiKeysList: "env-api-keys-SECRET-6",
    smtp: "smtp://user:SECRET-7@mail.example.com",
  };

  /** Everything the logger wrote, as text and as parsed lines. */
  function capture(): { stream: { write(line: string): void }; text(): string; lines(): Record<string, unknown>[] } {
    const chunks: string[] = [];
    return {
      stream: { write: (line: string) => void chunks.push(line) },
      text: () => chunks.join(""),
      lines: () =>
        chunks
          .join("")
          .split("\n")
          .filter((line) => line.length > 0)
          .map((line) => JSON.parse(line) as Record<string, unknown>),
    };
  }

  function logSecrets(logger: pino.Logger): void {
    logger.info(
      {
        conversationId: "c_visible",
        token: secrets.token,
        apiKey: secrets.apiKey,
        req: { method: "POST", headers: { authorization: secrets.authorization, host: "visible.example.com" } },
      },
      "request",
    );
    logger.warn({ conversation: { id: "c_visible", token: secrets.nestedToken } }, "nested");
    logger.warn({ adapter: { name: "rocketchat", password: secrets.password } }, "adapter");
    logger.info({ config: { API_KEYS: [secrets.apiKeysList], SMTP_URL: secrets.smtp, PORT: 8080 } }, "config");
  }

  it("redactPaths blanks tokens, API keys, authorization headers and config secrets", () => {
    const out = capture();
    logSecrets(pino({ redact: { paths: redactPaths, censor: "[redacted]" } }, out.stream));
    for (const secret of Object.values(secrets)) expect(out.text()).not.toContain(secret);
    const [request] = out.lines();
    // Only the secrets go: the rest of the line stays useful.
    expect(request).toMatchObject({
      conversationId: "c_visible",
      token: "[redacted]",
      apiKey: "[redacted]",
      req: { method: "POST", headers: { authorization: "[redacted]", host: "visible.example.com" } },
    });
    expect(out.text()).toContain('"PORT":8080');
  });

  it("the logger createLogger builds (and its children) redact the same secrets", () => {
    const out = capture();
    const logger = createLogger({ LOG_LEVEL: "info" }, out.stream);
    logSecrets(logger);
    logSecrets(logger.child({ component: "core" }));
    expect(out.lines()).toHaveLength(8);
    for (const secret of Object.values(secrets)) expect(out.text()).not.toContain(secret);
    expect(out.lines()[0]).toMatchObject({ service: "liaison", conversationId: "c_visible", token: "[redacted]" });
    expect(out.lines()[4]).toMatchObject({ component: "core", apiKey: "[redacted]" });
  });
});
