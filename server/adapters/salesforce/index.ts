export { salesforce } from "./module.js";
export { SalesforceMessagingDesk, type MessagingDeskOptions } from "./desk.js";
export { MessagingClient, SalesforceError, SseParser } from "./client.js";
