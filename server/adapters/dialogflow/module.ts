import { defineAdapter } from "../contract.js";
import { DialogflowBot } from "./bot.js";
import { DialogflowClient } from "./client.js";
import { DialogflowConfigSchema, defaultApiUrl, dialogflowProblems, dialogflowSecrets } from "./config.js";
import { BOT_NAME } from "./mapper.js";

/** The Dialogflow bot (ES or CX): detectIntent out, nothing in. */
export const dialogflow = defineAdapter({
  name: BOT_NAME,
  kind: "bot",
  config: DialogflowConfigSchema,
  secrets: dialogflowSecrets,
  enabledBy: "DIALOGFLOW_PROJECT_ID",
  enabled: (config) => config.DIALOGFLOW_PROJECT_ID !== undefined,
  check: dialogflowProblems,
  create({ config, logger, observe }) {
    const projectId = config.DIALOGFLOW_PROJECT_ID;
    const account = config.DIALOGFLOW_CREDENTIALS ?? config.DIALOGFLOW_CREDENTIALS_JSON;
    // The configuration refuses both cases (check): reaching here without them is a wiring mistake.
    if (projectId === undefined) throw new Error("the Dialogflow bot needs DIALOGFLOW_PROJECT_ID");
    if (account === undefined) throw new Error("the Dialogflow bot needs DIALOGFLOW_CREDENTIALS");
    const client = new DialogflowClient({
      apiUrl: config.DIALOGFLOW_API_URL ?? defaultApiUrl(config.DIALOGFLOW_LOCATION),
      account,
      timeoutMs: config.DIALOGFLOW_TIMEOUT_MS,
      logger,
      observe,
    });
    const bot = new DialogflowBot({
      client,
      projectId,
      location: config.DIALOGFLOW_LOCATION,
      agentId: config.DIALOGFLOW_AGENT_ID,
      language: config.DIALOGFLOW_LANGUAGE,
      handoffIntents: config.DIALOGFLOW_HANDOFF_INTENTS,
      logger,
    });
    return { bot, problem: () => client.problem() };
  },
});
