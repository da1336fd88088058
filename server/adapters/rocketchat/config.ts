import { z } from "zod";

/** The Rocket.Chat desk's settings (merged into the one config schema by server/config.ts). */
export const RocketChatConfigSchema = z.object({
  ROCKETCHAT_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe("Rocket.Chat base URL, e.g. https://chat.example.org; enables the Rocket.Chat desk"),
  ROCKETCHAT_WEBHOOK_TOKEN: z
    .string()
    .optional()
    .describe("the value Rocket.Chat sends as X-RocketChat-Livechat-Token (its Livechat_secret_token) (secret)"),
  ROCKETCHAT_USER_ID: z
    .string()
    .optional()
    .describe("an agent/bot user id: downloads protected files, closes rooms as a user"),
  ROCKETCHAT_AUTH_TOKEN: z.string().optional().describe("that user's personal access token (secret)"),
  ROCKETCHAT_DEPARTMENT: z.string().optional().describe("department (id or name) for conversations without a subject"),
  ROCKETCHAT_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe("timeout of each Rocket.Chat request"),
});

export type RocketChatConfig = z.output<typeof RocketChatConfigSchema>;

export const rocketChatSecrets = ["ROCKETCHAT_WEBHOOK_TOKEN", "ROCKETCHAT_AUTH_TOKEN"] as const;
