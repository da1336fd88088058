import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseServiceAccount, type ServiceAccount } from "./credentials.js";

const csv = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  )
  .pipe(z.array(z.string()));

/** A key checked once, when the configuration is read: a bad key stops the start, naming the variable. */
function serviceAccount(read: (value: string) => string) {
  return z.string().transform((value, ctx): ServiceAccount => {
    let json: string;
    try {
      json = read(value);
    } catch (error) {
      ctx.addIssue(`cannot read ${value} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
      return z.NEVER;
    }
    const account = parseServiceAccount(json);
    if ("problem" in account) {
      // Never the content: it holds a private key.
      ctx.addIssue(account.problem);
      return z.NEVER;
    }
    return account;
  });
}

/** The Dialogflow bot's settings (merged into the one config schema by server/config.ts). */
export const DialogflowConfigSchema = z.object({
  DIALOGFLOW_PROJECT_ID: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.:-]{0,99}$/, "must be a Google Cloud project id such as acme-bot")
    .optional()
    .describe("Google Cloud project of the Dialogflow agent; enables the Dialogflow bot (BOT=dialogflow)"),
  DIALOGFLOW_LOCATION: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,62}$/, "must be a Dialogflow location such as global or europe-west1")
    .optional()
    .describe("the agent's region, e.g. europe-west1 (ES: unset for the default; CX: default global)"),
  DIALOGFLOW_AGENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a Dialogflow CX agent id (the UUID in the agent's name)")
    .optional()
    .describe("Dialogflow CX agent id; unset: the project's Dialogflow ES agent"),
  DIALOGFLOW_CREDENTIALS: serviceAccount((path) => readFileSync(path, "utf8"))
    .optional()
    .describe("path of the service account's JSON key file (read once at start)"),
  DIALOGFLOW_CREDENTIALS_JSON: serviceAccount((json) => json)
    .optional()
    .describe("the service account's JSON key itself, instead of DIALOGFLOW_CREDENTIALS (secret)"),
  DIALOGFLOW_LANGUAGE: z
    .string()
    .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, "must be a language code such as en or pt-BR")
    .default("en")
    .describe("languageCode for conversations without a language, or in one the agent does not speak"),
  DIALOGFLOW_HANDOFF_INTENTS: csv
    .default(["talk_to_agent", "handoff.request"])
    .describe("comma-separated intent display names or actions that hand the conversation to a human"),
  DIALOGFLOW_API_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("Dialogflow API base URL (default https://dialogflow.googleapis.com, or the location's regional host)"),
  DIALOGFLOW_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(15_000)
    .describe("timeout of each detectIntent (keep it above the agent's webhook timeout)"),
});

export type DialogflowConfig = z.output<typeof DialogflowConfigSchema>;

export const dialogflowSecrets = ["DIALOGFLOW_CREDENTIALS_JSON"] as const;

/** Problems across the variables: credentials, and settings that mean nothing without a project. */
export function dialogflowProblems(config: DialogflowConfig): string[] {
  const problems: string[] = [];
  const hasFile = config.DIALOGFLOW_CREDENTIALS !== undefined;
  const hasJson = config.DIALOGFLOW_CREDENTIALS_JSON !== undefined;
  if (config.DIALOGFLOW_PROJECT_ID === undefined) {
    const orphans = [
      ["DIALOGFLOW_AGENT_ID", config.DIALOGFLOW_AGENT_ID],
      ["DIALOGFLOW_LOCATION", config.DIALOGFLOW_LOCATION],
      ["DIALOGFLOW_CREDENTIALS", config.DIALOGFLOW_CREDENTIALS],
      ["DIALOGFLOW_CREDENTIALS_JSON", config.DIALOGFLOW_CREDENTIALS_JSON],
      ["DIALOGFLOW_API_URL", config.DIALOGFLOW_API_URL],
    ].filter(([, value]) => value !== undefined);
    if (orphans.length > 0) {
      problems.push(`DIALOGFLOW_PROJECT_ID: needed by ${orphans.map(([name]) => name as string).join(", ")}`);
    }
    return problems;
  }
  if (!hasFile && !hasJson) {
    problems.push(
      "DIALOGFLOW_CREDENTIALS: set DIALOGFLOW_CREDENTIALS (a service account key file) or DIALOGFLOW_CREDENTIALS_JSON",
    );
  }
  if (hasFile && hasJson) {
    problems.push("DIALOGFLOW_CREDENTIALS_JSON: set either DIALOGFLOW_CREDENTIALS or DIALOGFLOW_CREDENTIALS_JSON");
  }
  return problems;
}

/** Google's host for a location: `dialogflow.googleapis.com` for global, `<location>-dialogflow.googleapis.com` else. */
export function defaultApiUrl(location: string | undefined): string {
  return location === undefined || location === "global"
    ? "https://dialogflow.googleapis.com"
    : `https://${location}-dialogflow.googleapis.com`;
}
