import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { defaultApiUrl } from "../../server/adapters/dialogflow/config.js";
import { dialogflow, signAssertion, type ServiceAccount } from "../../server/adapters/dialogflow/index.js";
import { ConfigError, loadConfig } from "../../server/config.js";

const dir = mkdtempSync(join(tmpdir(), "liaison-dialogflow-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rsa = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

/** A key file as the Cloud console downloads it. */
const keyFile = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: "service_account",
    project_id: "acme-bot",
    private_key_id: "a".repeat(40),
    private_key: rsa.privateKey,
    client_email: "liaison-bot@acme-bot.iam.gserviceaccount.com",
    client_id: "1234567890",
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: "https://oauth2.googleapis.com/token",
    universe_domain: "googleapis.com",
    ...overrides,
  });

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected loadConfig to throw a ConfigError");
}

describe("the Dialogflow configuration", () => {
  it("is off by default, with the documented defaults", () => {
    const config = loadConfig({});
    expect(dialogflow.enabled(config as never)).toBe(false);
    expect(config.DIALOGFLOW_LANGUAGE).toBe("en");
    expect(config.DIALOGFLOW_HANDOFF_INTENTS).toEqual(["talk_to_agent", "handoff.request"]);
    expect(config.DIALOGFLOW_TIMEOUT_MS).toBe(15_000);
  });

  it("reads the key file once, at start, and BOT=dialogflow runs with it", () => {
    const config = loadConfig({
      BOT: "dialogflow",
      DIALOGFLOW_PROJECT_ID: "acme-bot",
      DIALOGFLOW_CREDENTIALS: file("key.json", keyFile()),
      DIALOGFLOW_HANDOFF_INTENTS: " human , agent,,",
    });
    expect(dialogflow.enabled(config as never)).toBe(true);
    const account = config.DIALOGFLOW_CREDENTIALS as ServiceAccount;
    expect(account).toMatchObject({
      clientEmail: "liaison-bot@acme-bot.iam.gserviceaccount.com",
      keyId: "a".repeat(40),
      tokenUri: "https://oauth2.googleapis.com/token",
      projectId: "acme-bot",
    });
    expect(config.DIALOGFLOW_HANDOFF_INTENTS).toEqual(["human", "agent"]);
    // The private key shows neither in JSON nor when inspected.
    expect(JSON.stringify(config)).not.toContain("PRIVATE KEY");
    expect(inspect(config, { depth: 10 })).not.toContain("PRIVATE KEY");
    expect(signAssertion(account, 1_700_000_000).split(".")).toHaveLength(3);
  });

  it("takes the key's JSON itself, or from DIALOGFLOW_CREDENTIALS_JSON_FILE", () => {
    const inline = loadConfig({ DIALOGFLOW_PROJECT_ID: "acme-bot", DIALOGFLOW_CREDENTIALS_JSON: keyFile() });
    expect(inline.DIALOGFLOW_CREDENTIALS_JSON).toMatchObject({ clientEmail: expect.any(String) as string });
    const fromFile = loadConfig({
      DIALOGFLOW_PROJECT_ID: "acme-bot",
      DIALOGFLOW_CREDENTIALS_JSON_FILE: file("secret.json", keyFile()),
    });
    expect(fromFile.DIALOGFLOW_CREDENTIALS_JSON).toMatchObject({ tokenUri: "https://oauth2.googleapis.com/token" });
  });

  it("names the variable when the key cannot be used, and never quotes it", () => {
    const env = { DIALOGFLOW_PROJECT_ID: "acme-bot" };
    const cases: [Record<string, string>, RegExp][] = [
      [
        { DIALOGFLOW_CREDENTIALS: join(dir, "missing.json") },
        /^DIALOGFLOW_CREDENTIALS: cannot read .*missing\.json \(ENOENT\)$/,
      ],
      [{ DIALOGFLOW_CREDENTIALS: file("text.json", "not json") }, /^DIALOGFLOW_CREDENTIALS: is not JSON/],
      [{ DIALOGFLOW_CREDENTIALS_JSON: "[1]" }, /^DIALOGFLOW_CREDENTIALS_JSON: is not a service account key/],
      [
        { DIALOGFLOW_CREDENTIALS_JSON: keyFile({ type: "authorized_user" }) },
        /^DIALOGFLOW_CREDENTIALS_JSON: is not a service account key: it has no "type": "service_account"$/,
      ],
      [
        { DIALOGFLOW_CREDENTIALS_JSON: keyFile({ client_email: undefined }) },
        /^DIALOGFLOW_CREDENTIALS_JSON: is not a service account key: it has no client_email$/,
      ],
      [
        { DIALOGFLOW_CREDENTIALS_JSON: keyFile({ private_key: rsa.privateKey.slice(0, 200) }) },
        /^DIALOGFLOW_CREDENTIALS_JSON: .*its private_key is not a PEM private key$/,
      ],
      [
        { DIALOGFLOW_CREDENTIALS_JSON: keyFile({ token_uri: "http://tokens.example.org/token" }) },
        /^DIALOGFLOW_CREDENTIALS_JSON: .*token_uri that is not https$/,
      ],
    ];
    for (const [variables, expected] of cases) {
      const found = problems({ ...env, ...variables });
      expect(found).toEqual([expect.stringMatching(expected)]);
      expect(found.join("\n")).not.toContain("PRIVATE KEY");
    }
    const ec = generateKeyPairSync("ec", {
      namedCurve: "P-256",
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    expect(problems({ ...env, DIALOGFLOW_CREDENTIALS_JSON: keyFile({ private_key: ec.privateKey }) })).toEqual([
      "DIALOGFLOW_CREDENTIALS_JSON: is not a usable service account key: its private_key is not an RSA key",
    ]);
  });

  it("needs credentials, one way only, and a project for the other settings", () => {
    expect(problems({ DIALOGFLOW_PROJECT_ID: "acme-bot" })).toEqual([
      "DIALOGFLOW_CREDENTIALS: set DIALOGFLOW_CREDENTIALS (a service account key file) or DIALOGFLOW_CREDENTIALS_JSON",
    ]);
    expect(
      problems({
        DIALOGFLOW_PROJECT_ID: "acme-bot",
        DIALOGFLOW_CREDENTIALS: file("both.json", keyFile()),
        DIALOGFLOW_CREDENTIALS_JSON: keyFile(),
      }),
    ).toEqual(["DIALOGFLOW_CREDENTIALS_JSON: set either DIALOGFLOW_CREDENTIALS or DIALOGFLOW_CREDENTIALS_JSON"]);
    expect(problems({ DIALOGFLOW_AGENT_ID: "a-1", DIALOGFLOW_CREDENTIALS_JSON: keyFile() })).toEqual([
      "DIALOGFLOW_PROJECT_ID: needed by DIALOGFLOW_AGENT_ID, DIALOGFLOW_CREDENTIALS_JSON",
    ]);
    expect(problems({ BOT: "dialogflow" })).toEqual(["BOT: dialogflow needs DIALOGFLOW_PROJECT_ID"]);
  });

  it("checks the shape of ids, locations, languages and the API URL", () => {
    const env = { DIALOGFLOW_CREDENTIALS_JSON: keyFile() };
    expect(problems({ ...env, DIALOGFLOW_PROJECT_ID: "Acme Bot" })).toEqual([
      "DIALOGFLOW_PROJECT_ID: must be a Google Cloud project id such as acme-bot",
    ]);
    expect(problems({ ...env, DIALOGFLOW_PROJECT_ID: "acme-bot", DIALOGFLOW_LOCATION: "europe/west1" })).toEqual([
      "DIALOGFLOW_LOCATION: must be a Dialogflow location such as global or europe-west1",
    ]);
    expect(problems({ ...env, DIALOGFLOW_PROJECT_ID: "acme-bot", DIALOGFLOW_AGENT_ID: "../x" })).toEqual([
      "DIALOGFLOW_AGENT_ID: must be a Dialogflow CX agent id (the UUID in the agent's name)",
    ]);
    expect(problems({ ...env, DIALOGFLOW_PROJECT_ID: "acme-bot", DIALOGFLOW_LANGUAGE: "english!" })).toEqual([
      "DIALOGFLOW_LANGUAGE: must be a language code such as en or pt-BR",
    ]);
    expect(
      problems({ ...env, DIALOGFLOW_PROJECT_ID: "acme-bot", DIALOGFLOW_API_URL: "ftp://dialogflow.example.org" }),
    ).toEqual([expect.stringMatching(/^DIALOGFLOW_API_URL: /)]);
  });

  it("reaches Google's global host, or the location's regional one", () => {
    expect(defaultApiUrl(undefined)).toBe("https://dialogflow.googleapis.com");
    expect(defaultApiUrl("global")).toBe("https://dialogflow.googleapis.com");
    expect(defaultApiUrl("europe-west2")).toBe("https://europe-west2-dialogflow.googleapis.com");
  });
});
