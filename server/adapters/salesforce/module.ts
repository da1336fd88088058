import { defineAdapter } from "../contract.js";
import { DESK_NAME } from "./client.js";
import { SalesforceConfigSchema, salesforceSecrets } from "./config.js";
import { SalesforceMessagingDesk } from "./desk.js";

/** Salesforce answers every 30 s or so on a live event stream (a `ping`); this long without a byte, it is dead. */
const STREAM_IDLE_MS = 90_000;

/**
 * The Salesforce desk: Messaging for In-App and Web (`SALESFORCE_API=messaging`), Liaison playing the end user of a
 * Custom Client deployment, agents' events over the end user's event stream. The legacy Chat REST API
 * (`SALESFORCE_API=chat`) is refused by the configuration for now.
 */
export const salesforce = defineAdapter({
  name: DESK_NAME,
  kind: "desk",
  config: SalesforceConfigSchema,
  secrets: salesforceSecrets,
  enabledBy: "SALESFORCE_MESSAGING_URL",
  enabled: (config) =>
    config.SALESFORCE_API === "chat"
      ? config.SALESFORCE_CHAT_URL !== undefined
      : config.SALESFORCE_MESSAGING_URL !== undefined,
  check: (config) => {
    const problems: string[] = [];
    if (config.SALESFORCE_API === "chat") {
      if (config.SALESFORCE_CHAT_URL !== undefined || config.SALESFORCE_MESSAGING_URL !== undefined) {
        problems.push(
          "SALESFORCE_API: chat (the legacy Chat REST API, retired by Salesforce in February 2026) is not supported by this version; use SALESFORCE_API=messaging with SALESFORCE_MESSAGING_URL",
        );
      }
      return problems;
    }
    if (config.SALESFORCE_MESSAGING_URL === undefined) return problems;
    if (config.SALESFORCE_ORG_ID === undefined) {
      problems.push("SALESFORCE_ORG_ID: the Salesforce desk needs the org id (00D…)");
    }
    if (config.SALESFORCE_MESSAGING_DEPLOYMENT === undefined) {
      problems.push(
        "SALESFORCE_MESSAGING_DEPLOYMENT: the Salesforce desk needs the API name of the Embedded Service deployment",
      );
    }
    return problems;
  },
  create({ config, gateway, store, logger, observe }) {
    const {
      SALESFORCE_MESSAGING_URL: url,
      SALESFORCE_ORG_ID: orgId,
      SALESFORCE_MESSAGING_DEPLOYMENT: deployment,
    } = config;
    if (url === undefined || orgId === undefined || deployment === undefined) {
      throw new Error("the Salesforce desk needs SALESFORCE_MESSAGING_URL, SALESFORCE_ORG_ID and its deployment");
    }
    const desk = new SalesforceMessagingDesk({
      baseUrl: url,
      orgId,
      deployment,
      routingAttributes: config.SALESFORCE_ROUTING_ATTRIBUTES,
      timeoutMs: config.SALESFORCE_TIMEOUT_MS,
      streamIdleMs: STREAM_IDLE_MS,
      store,
      logger,
      fetchHosts: gateway.fetchHosts,
      maxFileBytes: gateway.maxFileBytes,
      observe,
    });
    return { desk, problem: () => desk.problem() };
  },
});
