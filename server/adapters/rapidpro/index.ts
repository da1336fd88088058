export { rapidPro } from "./module.js";
export { RapidProChannel, type RapidProChannelOptions } from "./channel.js";
export { RapidProClient, RapidProError } from "./client.js";
