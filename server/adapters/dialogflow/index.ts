export { dialogflow } from "./module.js";
export { DialogflowBot, type DialogflowBotOptions } from "./bot.js";
export { DialogflowClient, DialogflowError, type DialogflowClientOptions } from "./client.js";
export { parseServiceAccount, signAssertion, type ServiceAccount } from "./credentials.js";
