import { z } from "zod";

/** The GMS bot's settings (merged into the one config schema by server/config.ts). */
export const GmsConfigSchema = z.object({
  GMS_WEBHOOK_URL: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe(
      "the platform's webhook for this channel, …/connector/omnichannel/omnichannel_message/<token>/bot_api_webhook; enables the GMS bot and /gms/* (secret: the URL carries the channel's token)",
    ),
  GMS_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the channel webhook token the platform sends as Authorization: Token <value> to /gms/send_message, /gms/redirect_chat and /gms/close_chat (secret)",
    ),
  GMS_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe("timeout of each event posted to the platform; a timeout is retried"),
});

export type GmsConfig = z.output<typeof GmsConfigSchema>;

export const gmsSecrets = ["GMS_WEBHOOK_URL", "GMS_TOKEN"] as const;
