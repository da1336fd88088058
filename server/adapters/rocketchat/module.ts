import { defineAdapter, localPublicUrlWarning, type AdapterNotice } from "../contract.js";
import { RocketChatConfigSchema, rocketChatSecrets } from "./config.js";
import { RocketChatDesk } from "./desk.js";
import { DESK_NAME } from "./mapper.js";
import { rocketChatRoutes } from "./webhook.js";

/** The Rocket.Chat Omnichannel desk: Livechat REST out, the Omnichannel webhook in. */
export const rocketChat = defineAdapter({
  name: DESK_NAME,
  kind: "desk",
  config: RocketChatConfigSchema,
  secrets: rocketChatSecrets,
  enabledBy: "ROCKETCHAT_URL",
  enabled: (config) => config.ROCKETCHAT_URL !== undefined,
  check: (config) =>
    (config.ROCKETCHAT_USER_ID === undefined) !== (config.ROCKETCHAT_AUTH_TOKEN === undefined)
      ? ["ROCKETCHAT_AUTH_TOKEN: set ROCKETCHAT_USER_ID and ROCKETCHAT_AUTH_TOKEN together"]
      : [],
  create({ config, gateway, core, store, signer, logger, observe }) {
    const url = config.ROCKETCHAT_URL;
    if (url === undefined) throw new Error("the Rocket.Chat desk needs ROCKETCHAT_URL");
    const desk = new RocketChatDesk({
      config: { ...config, ROCKETCHAT_URL: url },
      logger,
      fetchHosts: gateway.fetchHosts,
      maxFileBytes: gateway.maxFileBytes,
      observe,
    });
    const warnings: AdapterNotice[] = [];
    if (config.ROCKETCHAT_WEBHOOK_TOKEN === undefined) {
      warnings.push({
        log: "ROCKETCHAT_WEBHOOK_TOKEN is not set: anyone who can reach /webhooks/rocketchat can post as an agent",
        ready: "webhooks are not authenticated",
      });
    }
    const local = localPublicUrlWarning(gateway.publicUrl);
    if (local !== undefined) warnings.push(local);
    return {
      desk,
      router: rocketChatRoutes({
        core,
        store,
        client: desk.client,
        signer,
        publicUrl: gateway.publicUrl,
        webhookToken: config.ROCKETCHAT_WEBHOOK_TOKEN,
        logger,
      }),
      warnings,
      problem: () => desk.client.rateLimitProblem(),
    };
  },
});
