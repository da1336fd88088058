/** The Customer Channel wire contract: import shapes from here, nowhere else. */
export * from "./errors.js";
export * from "./message.js";
export * from "./events.js";
export * from "./rest.js";
