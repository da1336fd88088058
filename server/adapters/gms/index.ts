export { gms } from "./module.js";
export { GmsBot, type GmsBotOptions } from "./bot.js";
export { GmsClient, GmsError } from "./client.js";
