import { invalidArgument, type GoogleApiError } from "./errors.js";
import type { DialogflowEdition } from "./types.js";

/*
 * The JSON body of a detectIntent request, checked the way Google's front end transcodes JSON into the request proto:
 * every member must be a field of the message (by its JSON name or its proto name), of the field's type; null is the
 * default value; a oneof takes one member. Then the service's own checks of the input.
 */

type FieldType = "string" | "bool" | "object" | { message: MessageSchema } | { repeated: "string" | "object" };

interface MessageSchema {
  /** The proto type, as Google names it in "Invalid value" errors. */
  typeName: string;
  fields: Record<string, FieldType>;
  oneofs?: Record<string, string[]>;
}

const ES = "google.cloud.dialogflow.v2";
const CX = "google.cloud.dialogflow.cx.v3";

const ES_TEXT: MessageSchema = { typeName: `${ES}.TextInput`, fields: { text: "string", language_code: "string" } };
const ES_EVENT: MessageSchema = {
  typeName: `${ES}.EventInput`,
  fields: { name: "string", parameters: "object", language_code: "string" },
};
const ES_QUERY_INPUT: MessageSchema = {
  typeName: `${ES}.QueryInput`,
  fields: { audio_config: "object", text: { message: ES_TEXT }, event: { message: ES_EVENT }, dtmf: "object" },
  oneofs: { input: ["audio_config", "text", "event", "dtmf"] },
};
const ES_QUERY_PARAMS: MessageSchema = {
  typeName: `${ES}.QueryParameters`,
  fields: {
    time_zone: "string",
    geo_location: "object",
    contexts: { repeated: "object" },
    reset_contexts: "bool",
    session_entity_types: { repeated: "object" },
    payload: "object",
    sentiment_analysis_request_config: "object",
    webhook_headers: "object",
    platform: "string",
  },
};
const ES_REQUEST: MessageSchema = {
  typeName: `${ES}.DetectIntentRequest`,
  fields: {
    session: "string",
    query_params: { message: ES_QUERY_PARAMS },
    query_input: { message: ES_QUERY_INPUT },
    output_audio_config: "object",
    output_audio_config_mask: "string",
    input_audio: "string",
  },
};

const CX_TEXT: MessageSchema = { typeName: `${CX}.TextInput`, fields: { text: "string" } };
const CX_EVENT: MessageSchema = { typeName: `${CX}.EventInput`, fields: { event: "string" } };
const CX_INTENT: MessageSchema = { typeName: `${CX}.IntentInput`, fields: { intent: "string" } };
const CX_QUERY_INPUT: MessageSchema = {
  typeName: `${CX}.QueryInput`,
  fields: {
    text: { message: CX_TEXT },
    intent: { message: CX_INTENT },
    audio: "object",
    event: { message: CX_EVENT },
    dtmf: "object",
    tool_call_result: "object",
    language_code: "string",
  },
  oneofs: { input: ["text", "intent", "audio", "event", "dtmf", "tool_call_result"] },
};
const CX_QUERY_PARAMS: MessageSchema = {
  typeName: `${CX}.QueryParameters`,
  fields: {
    time_zone: "string",
    geo_location: "object",
    session_entity_types: { repeated: "object" },
    payload: "object",
    parameters: "object",
    current_page: "string",
    disable_webhook: "bool",
    analyze_query_text_sentiment: "bool",
    webhook_headers: "object",
    flow_versions: { repeated: "string" },
    channel: "string",
    session_ttl: "string",
    end_user_metadata: "object",
    search_config: "object",
    populate_data_store_connection_signals: "bool",
    current_playbook: "string",
    llm_model_settings: "object",
  },
};
const CX_REQUEST: MessageSchema = {
  typeName: `${CX}.DetectIntentRequest`,
  fields: {
    session: "string",
    query_params: { message: CX_QUERY_PARAMS },
    query_input: { message: CX_QUERY_INPUT },
    output_audio_config: "object",
  },
};

function camel(protoName: string): string {
  return protoName.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A message's members by proto name (JSON and proto names both accepted, as Google's parser does). */
function walk(schema: MessageSchema, value: Record<string, unknown>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const byJsonName = new Map<string, string>();
  for (const name of Object.keys(schema.fields)) {
    byJsonName.set(name, name);
    byJsonName.set(camel(name), name);
  }
  for (const [key, member] of Object.entries(value)) {
    const name = byJsonName.get(key);
    if (name === undefined) {
      const where = path === "" ? "" : ` at '${path}'`;
      throw invalidArgument(
        `Invalid JSON payload received. Unknown name ${JSON.stringify(key)}${where}: Cannot find field.`,
        path === "" ? undefined : path,
      );
    }
    if (member === null) continue;
    const fieldPath = path === "" ? name : `${path}.${name}`;
    out[name] = typed(schema.fields[name] as FieldType, member, fieldPath);
  }
  for (const [oneof, members] of Object.entries(schema.oneofs ?? {})) {
    const set = members.filter((m) => out[m] !== undefined);
    if (set.length > 1) {
      throw invalidArgument(
        `Invalid JSON payload received. Oneof field '${oneof}' is already set. Cannot set '${camel(set[1] as string)}'`,
        path,
      );
    }
  }
  return out;
}

function typed(type: FieldType, value: unknown, path: string): unknown {
  const wrong = (name: string) =>
    invalidArgument(`Invalid value at '${path}' (${name}), ${JSON.stringify(value)}`, path);
  if (type === "string") {
    if (typeof value !== "string") throw wrong("TYPE_STRING");
    return value;
  }
  if (type === "bool") {
    if (typeof value !== "boolean") throw wrong("TYPE_BOOL");
    return value;
  }
  if (type === "object") {
    if (!isObject(value)) throw wrong("type.googleapis.com/google.protobuf.Struct");
    return value;
  }
  if ("repeated" in type) {
    if (!Array.isArray(value)) throw wrong(type.repeated === "string" ? "TYPE_STRING" : "TYPE_MESSAGE");
    return value.map((item, i) => typed(type.repeated, item, `${path}[${i}]`));
  }
  if (!isObject(value)) throw wrong(`type.googleapis.com/${type.message.typeName}`);
  return walk(type.message, value, path);
}

/** What the agent is asked, once the request passed every check. */
export interface QueryInput {
  text?: string;
  event?: string;
  eventParameters?: Record<string, unknown>;
  languageCode: string;
  queryParams?: Record<string, unknown>;
}

/** Dialogflow's limit on a text query, in UTF-16 code units (its service counts as Java does). */
export const MAX_TEXT_LENGTH = 256;

/** Parses and checks a detectIntent body; throws Google's 400. */
export function parseDetectIntent(edition: DialogflowEdition, raw: string): QueryInput {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw invalidArgument("Invalid JSON payload received. Unexpected token.");
  }
  if (!isObject(body)) {
    throw invalidArgument(`Invalid JSON payload received. Expected an object, got: ${JSON.stringify(body)}.`);
  }
  const request = walk(edition === "es" ? ES_REQUEST : CX_REQUEST, body, "");
  const params = request.query_params as Record<string, unknown> | undefined;
  const input = (request.query_input as Record<string, unknown> | undefined) ?? {};
  const queryParams = params === undefined ? {} : { queryParams: params };
  if (edition === "es") {
    const text = input.text as Record<string, unknown> | undefined;
    const event = input.event as Record<string, unknown> | undefined;
    if (text) {
      const value = (text.text as string | undefined) ?? "";
      checkText(value);
      return { text: value, languageCode: language(text.language_code), ...queryParams };
    }
    if (event) {
      const name = (event.name as string | undefined) ?? "";
      if (name === "") throw invalidArgument("Event name not set.");
      return {
        event: name,
        languageCode: language(event.language_code),
        ...(event.parameters === undefined ? {} : { eventParameters: event.parameters as Record<string, unknown> }),
        ...queryParams,
      };
    }
    if (input.audio_config !== undefined || input.dtmf !== undefined) throw notPlayed();
    throw invalidArgument("Field input not set.");
  }
  const text = input.text as Record<string, unknown> | undefined;
  const event = input.event as Record<string, unknown> | undefined;
  if (text) {
    const value = (text.text as string | undefined) ?? "";
    checkText(value);
    return { text: value, languageCode: language(input.language_code), ...queryParams };
  }
  if (event) {
    const name = (event.event as string | undefined) ?? "";
    if (name === "") throw invalidArgument("Event name not set.");
    return { event: name, languageCode: language(input.language_code), ...queryParams };
  }
  if (Object.keys(input).some((k) => k !== "language_code")) throw notPlayed();
  throw invalidArgument("Field input not set.");
}

function checkText(text: string): void {
  if (text === "") throw invalidArgument("Input text not set.");
  if (text.length > MAX_TEXT_LENGTH) throw invalidArgument(`Input text exceeds ${MAX_TEXT_LENGTH} characters.`);
}

function language(value: unknown): string {
  if (typeof value !== "string" || value === "") throw invalidArgument("Language code is not set.");
  return value;
}

function notPlayed(): GoogleApiError {
  return invalidArgument("This fake plays text and event input only (no audio, DTMF, intent or tool input).");
}
