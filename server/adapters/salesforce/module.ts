import { defineAdapter, localPublicUrlWarning } from "../contract.js";
import { SalesforceChatDesk } from "./chat-desk.js";
import { DESK_NAME } from "./client.js";
import { SalesforceConfigSchema, salesforceSecrets } from "./config.js";
import { SalesforceMessagingDesk } from "./desk.js";
import { chatFileLinks } from "./webhook.js";

/** Salesforce answers every 30 s or so on a live event stream (a `ping`); this long without a byte, it is dead. */
const STREAM_IDLE_MS = 90_000;

/**
 * The Salesforce desk: Messaging for In-App and Web (`SALESFORCE_API=messaging`), Liaison playing the end user of a
 * Custom Client deployment, agents' events over the end user's event stream; or the legacy Chat REST API
 * (`SALESFORCE_API=chat`), agents' events over the chat session's long-poll loop.
 */
export const salesforce = defineAdapter({
  name: DESK_NAME,
  kind: "desk",
  config: SalesforceConfigSchema,
  secrets: salesforceSecrets,
  enabledBy: "SALESFORCE_MESSAGING_URL (or SALESFORCE_CHAT_URL with SALESFORCE_API=chat)",
  enabled: (config) =>
    config.SALESFORCE_API === "chat"
      ? config.SALESFORCE_CHAT_URL !== undefined
      : config.SALESFORCE_MESSAGING_URL !== undefined,
  check: (config) => {
    const problems: string[] = [];
    if (config.SALESFORCE_API === "chat") {
      if (config.SALESFORCE_CHAT_URL === undefined) {
        if (config.SALESFORCE_MESSAGING_URL !== undefined) {
          problems.push("SALESFORCE_CHAT_URL: SALESFORCE_API=chat needs the org's Chat API endpoint");
        }
        return problems;
      }
      const needed = {
        SALESFORCE_ORG_ID: "the org id (00D…)",
        SALESFORCE_DEPLOYMENT_ID: "the chat deployment's id",
        SALESFORCE_BUTTON_ID: "the chat button's id",
      } as const;
      for (const [name, what] of Object.entries(needed)) {
        if (config[name as keyof typeof needed] === undefined) {
          problems.push(`${name}: the Salesforce desk on the legacy Chat API needs ${what}`);
        }
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
  create({ config, gateway, store, signer, logger, observe }) {
    const orgId = config.SALESFORCE_ORG_ID;
    if (config.SALESFORCE_API === "chat") {
      const {
        SALESFORCE_CHAT_URL: url,
        SALESFORCE_DEPLOYMENT_ID: deploymentId,
        SALESFORCE_BUTTON_ID: buttonId,
      } = config;
      if (url === undefined || orgId === undefined || deploymentId === undefined || buttonId === undefined) {
        throw new Error("the Salesforce desk on the legacy Chat API needs its URL, org, deployment and button ids");
      }
      const files = chatFileLinks({ store, signer, publicUrl: gateway.publicUrl });
      const desk = new SalesforceChatDesk({
        baseUrl: url,
        apiVersion: config.SALESFORCE_API_VERSION,
        orgId,
        deploymentId,
        buttonId,
        timeoutMs: config.SALESFORCE_TIMEOUT_MS,
        store,
        logger,
        fileLink: files.link,
        observe,
      });
      desk.verify().catch((error: unknown) => logger.warn({ err: error }, "salesforce chat availability check failed"));
      const local = localPublicUrlWarning(gateway.publicUrl);
      return {
        desk,
        router: files.router,
        warnings: local === undefined ? [] : [local],
        problem: () => desk.problem(),
      };
    }
    const { SALESFORCE_MESSAGING_URL: url, SALESFORCE_MESSAGING_DEPLOYMENT: deployment } = config;
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
