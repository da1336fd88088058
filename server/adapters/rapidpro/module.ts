import { defineAdapter, localPublicUrlWarning, type AdapterNotice } from "../contract.js";
import { RapidProChannel } from "./channel.js";
import { RapidProConfigSchema, localizedTexts, rapidProSecrets } from "./config.js";
import { CHANNEL } from "./mapper.js";
import { liveAgentsRoutes } from "./webhook.js";

/** RapidPro contacts as a customer channel: flow webhooks (`/live-agents/*`) in, API v2 out. */
export const rapidPro = defineAdapter({
  name: CHANNEL,
  kind: "channel",
  config: RapidProConfigSchema,
  secrets: rapidProSecrets,
  enabledBy: "RAPIDPRO_URL",
  enabled: (config) => config.RAPIDPRO_URL !== undefined,
  check: (config) =>
    config.RAPIDPRO_URL !== undefined && config.RAPIDPRO_TOKEN === undefined
      ? ["RAPIDPRO_TOKEN: the RapidPro channel needs its API token"]
      : [],
  derive: (env) => ({ LOCALIZED_TEXTS: localizedTexts(env) }),
  // Contacts' media live on the RapidPro server: a desk may fetch them from there.
  fileHosts: (config) => (config.RAPIDPRO_URL === undefined ? [] : [new URL(config.RAPIDPRO_URL).hostname]),
  // The contact UUID: stable, unguessable, and what the LiveAgents mediator used as the Rocket.Chat visitor token.
  stableRefIds: true,
  create({ config, gateway, core, store, logger, observe }) {
    const { RAPIDPRO_URL: url, RAPIDPRO_TOKEN: token } = config;
    if (url === undefined || token === undefined)
      throw new Error("the RapidPro channel needs RAPIDPRO_URL and its token");
    const publicOrigin = new URL(gateway.publicUrl).origin;
    const channel = new RapidProChannel({
      config: { ...config, RAPIDPRO_URL: url, RAPIDPRO_TOKEN: token },
      texts: config.LOCALIZED_TEXTS,
      deskName: gateway.desk.name,
      fetchable: (file) => file.origin === publicOrigin || gateway.fetchHosts.includes(file.hostname),
      logger,
      observe,
      fileNotAttached: (conversation, message, file, outcome, reason) =>
        core.channelFileNotAttached(conversation, message, file, outcome, reason),
    });
    const warnings: AdapterNotice[] = [];
    if (config.RAPIDPRO_WEBHOOK_TOKEN === undefined) {
      warnings.push({
        log: "RAPIDPRO_WEBHOOK_TOKEN is not set: anyone who can reach /live-agents/* can act for any contact",
        ready: "webhooks are not authenticated",
      });
    }
    const local = localPublicUrlWarning(gateway.publicUrl);
    if (local !== undefined) warnings.push(local);
    return {
      channel,
      router: liveAgentsRoutes({
        core,
        store,
        channel,
        config,
        externalDesk: gateway.desk.external,
        maxPayloadBytes: gateway.maxPayloadBytes,
        logger,
      }),
      warnings,
      problem: () => channel.problem(),
    };
  },
});
