export { liveChat } from "./module.js";
export { LiveChatDesk, type LiveChatDeskOptions } from "./desk.js";
export { LiveChatClient, LiveChatError } from "./client.js";
