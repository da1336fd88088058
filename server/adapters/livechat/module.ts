import { defineAdapter } from "../contract.js";
import { LiveChatConfigSchema, liveChatSecrets } from "./config.js";
import { LiveChatDesk } from "./desk.js";
import { DESK_NAME } from "./mapper.js";
import { liveChatRoutes } from "./webhook.js";

/** The LiveChat desk: Liaison is the customer of the Customer Chat API; agents answer in the LiveChat app. */
export const liveChat = defineAdapter({
  name: DESK_NAME,
  kind: "desk",
  config: LiveChatConfigSchema,
  secrets: liveChatSecrets,
  enabledBy: "LIVECHAT_AGENT_TOKEN",
  enabled: (config) => config.LIVECHAT_AGENT_TOKEN !== undefined,
  check(config) {
    if (config.LIVECHAT_AGENT_TOKEN === undefined) return [];
    const problems: string[] = [];
    if (config.LIVECHAT_CLIENT_ID === undefined) {
      problems.push("LIVECHAT_CLIENT_ID: required with LIVECHAT_AGENT_TOKEN (the Client ID of Liaison's LiveChat app)");
    }
    if (config.LIVECHAT_ORGANIZATION_ID === undefined) {
      problems.push("LIVECHAT_ORGANIZATION_ID: required with LIVECHAT_AGENT_TOKEN");
    }
    return problems;
  },
  create({ config, gateway, core, store, logger, observe }) {
    const { LIVECHAT_AGENT_TOKEN, LIVECHAT_CLIENT_ID, LIVECHAT_ORGANIZATION_ID } = config;
    if (
      LIVECHAT_AGENT_TOKEN === undefined ||
      LIVECHAT_CLIENT_ID === undefined ||
      LIVECHAT_ORGANIZATION_ID === undefined
    ) {
      throw new Error("the LiveChat desk needs LIVECHAT_AGENT_TOKEN, LIVECHAT_CLIENT_ID and LIVECHAT_ORGANIZATION_ID");
    }
    const desk = new LiveChatDesk({
      config: { ...config, LIVECHAT_AGENT_TOKEN, LIVECHAT_CLIENT_ID, LIVECHAT_ORGANIZATION_ID },
      store,
      logger,
      fetchHosts: gateway.fetchHosts,
      maxFileBytes: gateway.maxFileBytes,
      observe,
      onTyping(conversation, agent, typing) {
        try {
          core.typing(conversation, { ...agent, role: "agent" }, typing ? "start" : "stop");
        } catch {
          // The conversation ended meanwhile: nobody to tell.
        }
      },
    });
    const secret = config.LIVECHAT_WEBHOOK_SECRET;
    return {
      desk,
      ...(secret === undefined ? {} : { router: liveChatRoutes({ core, store, desk, secret, logger }) }),
      problem: () => desk.problem(),
    };
  },
});
