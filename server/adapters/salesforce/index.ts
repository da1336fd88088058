export { salesforce } from "./module.js";
export { SalesforceMessagingDesk, type MessagingDeskOptions } from "./desk.js";
export { SalesforceChatDesk, type ChatDeskOptions } from "./chat-desk.js";
export { MessagingClient, SalesforceError, SseParser } from "./client.js";
export { ChatClient, ChatApiError } from "./chat-client.js";
