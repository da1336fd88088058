import { z } from "zod";

/** `LIVECHAT_GROUPS`: a JSON object of conversation subject → LiveChat group id. */
const GroupsSchema = z.string().transform((text, ctx) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    ctx.addIssue("must be a JSON object of subject → group id");
    return z.NEVER;
  }
  const groups = z.record(z.string(), z.number().int().nonnegative()).safeParse(parsed);
  if (!groups.success) {
    ctx.addIssue("must be a JSON object whose values are group ids (integers ≥ 0)");
    return z.NEVER;
  }
  return groups.data;
});

/** The LiveChat desk's settings (merged into the one config schema by server/config.ts). */
export const LiveChatConfigSchema = z.object({
  LIVECHAT_AGENT_TOKEN: z
    .string()
    .min(1)
    .optional()
    .describe(
      "an agent's OAuth access token with scope customers:own (not a personal access token): mints LiveChat customers; enables the LiveChat desk (secret)",
    ),
  LIVECHAT_CLIENT_ID: z.string().min(1).optional().describe("the Client ID of Liaison's app in the Developer Console"),
  LIVECHAT_ORGANIZATION_ID: z.string().min(1).optional().describe("the LiveChat organization id (a UUID)"),
  LIVECHAT_API_URL: z
    .url({ protocol: /^https?$/ })
    .default("https://api.livechatinc.com")
    .describe("Customer Chat API base URL (the RTM socket is the same host over wss:)"),
  LIVECHAT_ACCOUNTS_URL: z
    .url({ protocol: /^https?$/ })
    .default("https://accounts.livechat.com")
    .describe("accounts server base URL (customer tokens)"),
  LIVECHAT_GROUP_ID: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe("the LiveChat group of conversations whose subject LIVECHAT_GROUPS does not map"),
  LIVECHAT_GROUPS: GroupsSchema.optional().describe(
    'JSON object of conversation subject → LiveChat group id, e.g. {"billing":2,"sales":3}',
  ),
  LIVECHAT_WEBHOOK_SECRET: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the secret_key of the license webhooks registered for POST /webhooks/livechat; unset: the route is off (secret)",
    ),
  LIVECHAT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000).describe("timeout of each LiveChat request"),
});

export type LiveChatConfig = z.output<typeof LiveChatConfigSchema>;

export const liveChatSecrets = ["LIVECHAT_AGENT_TOKEN", "LIVECHAT_WEBHOOK_SECRET"] as const;
