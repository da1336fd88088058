import { z } from "zod";

const positiveInt = z.coerce.number().int().positive();

/** The RapidPro channel's settings (merged into the one config schema by server/config.ts). */
export const RapidProConfigSchema = z.object({
  RAPIDPRO_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("RapidPro base URL, e.g. https://rapidpro.example.org; enables the RapidPro channel and /live-agents/*"),
  RAPIDPRO_TOKEN: z.string().optional().describe("RapidPro API token, sent as Authorization: Token ... (secret)"),
  RAPIDPRO_WEBHOOK_TOKEN: z
    .string()
    .optional()
    .describe("when set, flow webhooks to /live-agents/* must carry Authorization: Token <value> (secret)"),
  RAPIDPRO_SEND: z
    .enum(["messages", "broadcasts"])
    .default("messages")
    .describe("messages (/api/v2/messages.json) or broadcasts (servers older than v8.1.35)"),
  RAPIDPRO_MEDIA: z
    .enum(["upload", "links"])
    .default("upload")
    .describe(
      "agent files: upload (to /api/v2/media.json, attached; RapidPro >= v8.1.37, with broadcasts >= v8.1.39) or links (in the text; older servers)",
    ),
  RAPIDPRO_MAX_TEXT: positiveInt.default(640).describe("split agent text into parts of at most this many characters"),
  RAPIDPRO_CLOSE_FLOW: z.string().optional().describe("flow UUID started for the contact when the agent closes"),
  RAPIDPRO_HISTORY_HOURS: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(6)
    .describe("hours of bot conversation posted to the agent on hand-off (0: off)"),
  RAPIDPRO_TIMEOUT_MS: positiveInt.default(10_000).describe("timeout of each RapidPro API request"),
  RAPIDPRO_REGISTER_WAIT_MS: positiveInt
    .max(12_000)
    .default(8_000)
    .describe("how long registerClient waits for the Rocket.Chat room before answering (RapidPro gives up at 15 s)"),
  RAPIDPRO_REOPEN: z
    .enum(["true", "false"])
    .default("true")
    .transform((value) => value === "true")
    .describe("a contact message after the agent closed opens a new conversation (true) or is refused with 409"),
  ATTENDED_TEXT: z
    .string()
    .default("You are now being attended by: {agent}")
    .describe(
      "sent when an agent takes the chat; ATTENDED_TEXT_<LANG> per contact language (RapidPro's code: ATTENDED_TEXT_SPA)",
    ),
  CLOSED_TEXT: z
    .string()
    .default("The conversation with the agent has ended.")
    .describe("sent when the agent closes; CLOSED_TEXT_<LANG> per contact language (CLOSED_TEXT_SPA)"),
  UNDELIVERED_TEXT: z
    .string()
    .default("Sorry, your last message could not be delivered to the agent.")
    .describe("sent to a RapidPro contact when a message of theirs could not reach the agent"),
});

export type RapidProConfig = z.output<typeof RapidProConfigSchema>;

export const rapidProSecrets = ["RAPIDPRO_TOKEN", "RAPIDPRO_WEBHOOK_TOKEN"] as const;

/** `ATTENDED_TEXT_SPA=...`, `CLOSED_TEXT_PT_BR=...`: per-language texts read from the environment. */
export function localizedTexts(env: Readonly<Record<string, string | undefined>>): {
  attended: Record<string, string>;
  closed: Record<string, string>;
} {
  const attended: Record<string, string> = {};
  const closed: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const match = /^(ATTENDED|CLOSED)_TEXT_([A-Za-z]{2,3}(?:_[A-Za-z0-9]{2,8})?)$/.exec(key);
    if (!match || value === undefined || value === "") continue;
    const language = (match[2] ?? "").toLowerCase().replace("_", "-");
    (match[1] === "ATTENDED" ? attended : closed)[language] = value;
  }
  return { attended, closed };
}
