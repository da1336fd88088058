import { defineAdapter, localPublicUrlWarning, type AdapterNotice } from "../contract.js";
import { GmsBot } from "./bot.js";
import { BOT_NAME } from "./client.js";
import { GmsConfigSchema, gmsSecrets } from "./config.js";
import { WEBHOOK_PATHS, gmsRoutes } from "./webhook.js";

/** The GMS chatbots platform's "Omnichannel" connector as the bot: events out to its webhook, its calls in at /gms. */
export const gms = defineAdapter({
  name: BOT_NAME,
  kind: "bot",
  config: GmsConfigSchema,
  secrets: gmsSecrets,
  enabledBy: "GMS_WEBHOOK_URL",
  enabled: (config) => config.GMS_WEBHOOK_URL !== undefined,
  // Without the token, anyone who can reach /gms could speak as the bot, hand conversations over or end them.
  check: (config) =>
    config.GMS_WEBHOOK_URL !== undefined && config.GMS_TOKEN === undefined
      ? ["GMS_TOKEN: the GMS bot needs the channel webhook token the platform sends (Authorization: Token …)"]
      : [],
  create({ config, gateway, core, store, signer, logger, observe }) {
    const { GMS_WEBHOOK_URL: webhookUrl, GMS_TOKEN: token } = config;
    if (webhookUrl === undefined || token === undefined)
      throw new Error("the GMS bot needs GMS_WEBHOOK_URL and GMS_TOKEN");
    const bot = new GmsBot({
      client: { webhookUrl, timeoutMs: config.GMS_TIMEOUT_MS, observe },
      store,
      signer,
      publicUrl: gateway.publicUrl,
      logger,
    });
    const warnings: AdapterNotice[] = [];
    const local = localPublicUrlWarning(gateway.publicUrl);
    if (local !== undefined) warnings.push(local);
    return {
      bot,
      router: gmsRoutes({ core, store, signer, token, maxPayloadBytes: gateway.maxPayloadBytes, logger }),
      ownBodyPaths: WEBHOOK_PATHS,
      warnings,
      problem: () => bot.problem(),
    };
  },
});
