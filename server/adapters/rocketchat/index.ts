export { rocketChat } from "./module.js";
export { RocketChatDesk, mintVisitorToken, type RocketChatDeskOptions } from "./desk.js";
export { RocketChatClient, RocketChatError } from "./client.js";
