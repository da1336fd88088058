import type { GmsBotInput, GmsVisitorFields } from "./types.js";

/*
 * The platform's checks of a `bot_api_webhook` body, with its documented answers: a missing parameter is 400, an event
 * or message kind it does not know is 200 and dropped, any other malformation is 500. A file is processed only when
 * its `state` is `ready`. The order of the checks is not documented; this one reads the body top-down.
 */

export const KNOWN_KINDS = ["visitor", "file_visitor", "keyboard_response"] as const;
const FIELD_KEYS = ["name", "login", "phone", "email", "site"] as const;

export type Verdict =
  | { kind: "accept"; input: GmsBotInput }
  | { kind: "ignore"; reason: string; partial: Partial<GmsBotInput> }
  | { kind: "missing"; reason: string }
  | { kind: "malformed"; reason: string };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

class Stop extends Error {
  constructor(readonly verdict: Exclude<Verdict, { kind: "accept" }>) {
    super(verdict.reason);
  }
}

const missing = (path: string) => new Stop({ kind: "missing", reason: `${path} is missing` });
const malformed = (path: string, what: string) => new Stop({ kind: "malformed", reason: `${path} ${what}` });

/** A required member: absent or null is a missing parameter. */
function required(parent: Json, key: string, path: string): unknown {
  const value = parent[key];
  if (value === undefined || value === null) throw missing(path);
  return value;
}

function requiredString(parent: Json, key: string, path: string): string {
  const value = required(parent, key, path);
  if (typeof value !== "string") throw malformed(path, "is not a string");
  return value;
}

function requiredObject(parent: Json, key: string, path: string): Json {
  const value = required(parent, key, path);
  if (!isObject(value)) throw malformed(path, "is not an object");
  return value;
}

export function validateEvent(body: unknown): Verdict {
  try {
    return check(body);
  } catch (error) {
    if (error instanceof Stop) return error.verdict;
    throw error;
  }
}

function check(body: unknown): Verdict {
  if (!isObject(body)) throw malformed("body", "is not a JSON object");
  for (const key of ["event", "chat_id", "visitor", "message"]) required(body, key, key);
  if (body.event !== "new_message") {
    return { kind: "ignore", reason: `unknown event ${JSON.stringify(body.event)}`, partial: {} };
  }
  // The vendor documents chat_id as an integer: a string (even of digits) or a fraction is not one.
  const chatId = body.chat_id;
  if (typeof chatId !== "number" || !Number.isSafeInteger(chatId)) throw malformed("chat_id", "is not an integer");

  const visitor = requiredObject(body, "visitor", "visitor");
  const visitorId = requiredString(visitor, "id", "visitor.id");
  const rawFields = requiredObject(visitor, "fields", "visitor.fields");
  const fields: GmsVisitorFields = {};
  for (const key of FIELD_KEYS) {
    const value = rawFields[key];
    if (value === undefined) continue;
    if (typeof value !== "string") throw malformed(`visitor.fields.${key}`, "is not a string");
    fields[key] = value;
  }

  const message = requiredObject(body, "message", "message");
  const messageId = requiredString(message, "id", "message.id");
  const kind = required(message, "kind", "message.kind");
  const partial = { chatId, visitorId, messageId, fields };
  if (typeof kind !== "string" || !(KNOWN_KINDS as readonly string[]).includes(kind)) {
    return { kind: "ignore", reason: `unknown message kind ${JSON.stringify(kind)}`, partial };
  }

  switch (kind as (typeof KNOWN_KINDS)[number]) {
    case "visitor": {
      const text = requiredString(message, "text", "message.text");
      return { kind: "accept", input: { ...partial, kind: "visitor", text } };
    }
    case "file_visitor": {
      const data = requiredObject(message, "data", "message.data");
      const id = requiredString(data, "id", "message.data.id");
      const state = requiredString(data, "state", "message.data.state");
      requiredString(data, "name", "message.data.name");
      const contentType = requiredString(data, "content_type", "message.data.content_type");
      const size = required(data, "size", "message.data.size");
      if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
        throw malformed("message.data.size", "is not a byte count");
      }
      const url = requiredString(data, "url", "message.data.url");
      if (!/^https?:\/\/[^\s]+$/i.test(url) || !URL.canParse(url)) throw malformed("message.data.url", "is not a URL");
      if (state !== "ready") {
        return { kind: "ignore", reason: `file state ${JSON.stringify(state)} is not ready`, partial };
      }
      return {
        kind: "accept",
        input: { ...partial, kind: "file_visitor", text: `file:${contentType}|${id}|${url}`, data: { ...data } },
      };
    }
    case "keyboard_response": {
      const data = requiredObject(message, "data", "message.data");
      const button = requiredObject(data, "button", "message.data.button");
      requiredString(button, "id", "message.data.button.id");
      // The platform hands the bot the button's label.
      const text = requiredString(button, "text", "message.data.button.text");
      return { kind: "accept", input: { ...partial, kind: "keyboard_response", text, data: { ...data } } };
    }
  }
}
