import { randomBytes, randomUUID } from "node:crypto";
import { invalidArgument } from "./errors.js";
import type { QueryInput } from "./request.js";
import type { DialogflowEdition, DialogflowFallbackScript, DialogflowIntentScript, DialogflowReply } from "./types.js";

/*
 * Scripted agents and the detectIntent answers they give, in each edition's shape: ES v2 `queryResult` (queryText,
 * action, parameters, fulfillmentText, fulfillmentMessages, intent, intentDetectionConfidence, diagnosticInfo,
 * languageCode) and CX v3 `queryResult` (text or triggerEvent, languageCode, parameters, responseMessages,
 * currentPage, intent, match, diagnosticInfo).
 */

const DEFAULT_FLOW = "00000000-0000-0000-0000-000000000000";
const NO_MATCH_TEXT = "I didn't get that. Can you say it again?";

interface Intent extends DialogflowIntentScript {
  id: string;
  isFallback?: boolean;
}

interface CxSession {
  parameters: Record<string, unknown>;
  page: { name: string; displayName: string };
}

export interface AgentAnswer {
  body: Record<string, unknown>;
  intent?: string;
}

function normalise(text: string): string {
  return text.trim().replace(/\s+/g, " ").toLowerCase();
}

/** `en-GB` is accepted by an agent that speaks `en`. */
function supports(languages: string[], code: string): boolean {
  const wanted = code.toLowerCase();
  return languages.some((l) => {
    const have = l.toLowerCase();
    return have === wanted || have === wanted.split("-")[0];
  });
}

function responseId(): string {
  return `${randomUUID()}-${randomBytes(4).toString("hex")}`;
}

export abstract class ScriptedAgent {
  readonly intents: Intent[] = [];
  /** Environments besides the draft. */
  environments: string[] = [];
  protected fallbackScript: DialogflowFallbackScript = {};

  constructor(
    readonly edition: DialogflowEdition,
    readonly projectId: string,
    readonly location: string,
    readonly languages: string[],
  ) {}

  addIntent(script: DialogflowIntentScript): void {
    this.intents.push({ ...script, id: randomUUID() });
  }

  setFallback(script: DialogflowFallbackScript): void {
    this.fallbackScript = script;
  }

  protected checkLanguage(code: string): void {
    if (!supports(this.languages, code)) throw invalidArgument(`Agent does not support language: '${code}'`);
  }

  protected match(input: QueryInput): Intent | undefined {
    if (input.event !== undefined) {
      const event = input.event;
      return this.intents.find((i) => !i.isFallback && (i.events ?? []).includes(event));
    }
    const text = input.text ?? "";
    return this.intents.find(
      (i) =>
        !i.isFallback &&
        (i.phrases ?? []).some((p) => (typeof p === "string" ? normalise(p) === normalise(text) : p.test(text))),
    );
  }

  abstract answer(input: QueryInput, sessionPath: string, sessionId: string): AgentAnswer;

  /** Throws when a reply has no message of this edition's kind (checked when the test scripts it). */
  abstract answerCheck(replies: DialogflowReply[]): void;
}

function chipsPayload(options: string[]): Record<string, unknown> {
  return { richContent: [[{ type: "chips", options: options.map((text) => ({ text })) }]] };
}

export class EsAgent extends ScriptedAgent {
  constructor(projectId: string, location: string, languages: string[], defaultIntents: boolean) {
    super("es", projectId, location, languages);
    if (defaultIntents) {
      // A new ES agent's two intents; Dialogflow picks one of several texts at random, the fake the first.
      this.addIntent({
        displayName: "Default Welcome Intent",
        events: ["WELCOME"],
        action: "input.welcome",
        replies: [{ text: "Hi! How are you doing?" }],
      });
      this.fallbackScript = { action: "input.unknown", replies: [{ text: NO_MATCH_TEXT }] };
    } else {
      this.fallbackScript = {};
    }
    this.hasFallback = defaultIntents;
  }

  private hasFallback: boolean;
  private readonly fallbackId = randomUUID();

  override setFallback(script: DialogflowFallbackScript): void {
    super.setFallback(script);
    this.hasFallback = true;
  }

  answerCheck(replies: DialogflowReply[]): void {
    replies.forEach(esMessage);
  }

  /** `projects/P/agent` or `projects/P/locations/L/agent`, as the request named it. */
  answer(input: QueryInput, sessionPath: string): AgentAnswer {
    this.checkLanguage(input.languageCode);
    const agentPath = sessionPath.replace(/\/(environments\/[^/]+\/users\/[^/]+\/)?sessions\/[^/]+$/, "");
    let intent = this.match(input);
    if (!intent && input.text !== undefined && this.hasFallback) {
      intent = {
        id: this.fallbackId,
        displayName: "Default Fallback Intent",
        isFallback: true,
        action: this.fallbackScript.action ?? "input.unknown",
        ...(this.fallbackScript.replies === undefined ? {} : { replies: this.fallbackScript.replies }),
      };
    }
    const messages = (intent?.replies ?? []).map((reply) => esMessage(reply));
    const firstText = messages.find((m) => "text" in m)?.text as { text: string[] } | undefined;
    const result: Record<string, unknown> = {
      // For an event, Dialogflow puts the event's name where the text would be.
      queryText: input.text ?? input.event,
      ...(intent?.action === undefined ? {} : { action: intent.action }),
      parameters: intent?.parameters ?? {},
      allRequiredParamsPresent: true,
      ...(firstText === undefined ? {} : { fulfillmentText: firstText.text[0] }),
      ...(messages.length === 0 ? {} : { fulfillmentMessages: messages }),
    };
    if (intent) {
      result.intent = {
        name: `${agentPath}/intents/${intent.id}`,
        displayName: intent.displayName,
        ...(intent.isFallback === true ? { isFallback: true } : {}),
        ...(intent.endInteraction === true ? { endInteraction: true } : {}),
      };
      result.intentDetectionConfidence = intent.confidence ?? 1;
      if (intent.endInteraction === true) result.diagnosticInfo = { end_conversation: true };
    }
    // Dialogflow ES answers with the language code in lower case.
    result.languageCode = input.languageCode.toLowerCase();
    return {
      body: { responseId: responseId(), queryResult: result },
      ...(intent === undefined ? {} : { intent: intent.displayName }),
    };
  }
}

function esMessage(reply: DialogflowReply): Record<string, unknown> {
  if ("text" in reply) return { text: { text: [reply.text] } };
  if ("quickReplies" in reply) {
    return {
      quickReplies: { ...(reply.title === undefined ? {} : { title: reply.title }), quickReplies: reply.quickReplies },
      ...(reply.platform === undefined ? {} : { platform: reply.platform }),
    };
  }
  if ("chips" in reply) return { payload: chipsPayload(reply.chips) };
  if ("payload" in reply) return { payload: reply.payload };
  if ("liveAgentHandoff" in reply) {
    throw new Error("Dialogflow ES has no liveAgentHandoff message: script a payload instead");
  }
  return reply.raw;
}

export class CxAgent extends ScriptedAgent {
  readonly sessions = new Map<string, CxSession>();

  constructor(
    projectId: string,
    location: string,
    readonly agentId: string,
    languages: string[],
  ) {
    super("cx", projectId, location, languages);
    this.fallbackScript = { replies: [{ text: NO_MATCH_TEXT }] };
  }

  get name(): string {
    return `projects/${this.projectId}/locations/${this.location}/agents/${this.agentId}`;
  }

  private page(id: string, displayName: string) {
    return { name: `${this.name}/flows/${DEFAULT_FLOW}/pages/${id}`, displayName };
  }

  answerCheck(replies: DialogflowReply[]): void {
    replies.forEach(cxMessage);
  }

  answer(input: QueryInput, _sessionPath: string, sessionId: string): AgentAnswer {
    this.checkLanguage(input.languageCode);
    const session = this.sessions.get(sessionId) ?? { parameters: {}, page: this.page("START_PAGE", "Start Page") };
    this.sessions.set(sessionId, session);
    const given = input.queryParams?.parameters;
    if (typeof given === "object" && given !== null) Object.assign(session.parameters, given);

    const intent = this.match(input);
    const result: Record<string, unknown> = {
      ...(input.text === undefined ? { triggerEvent: input.event } : { text: input.text }),
      languageCode: input.languageCode,
    };
    let messages: Record<string, unknown>[];
    if (intent) {
      Object.assign(session.parameters, intent.parameters ?? {});
      messages = (intent.replies ?? []).map((reply) => cxMessage(reply));
      if (intent.endInteraction === true) {
        messages.push({ endInteraction: {} });
        session.page = this.page("END_SESSION", "End Session");
      } else if (intent.page !== undefined) {
        session.page = this.page(intent.id, intent.page);
      }
      const ref = { name: `${this.name}/intents/${intent.id}`, displayName: intent.displayName };
      const confidence = intent.confidence ?? 1;
      if (Object.keys(session.parameters).length > 0) result.parameters = { ...session.parameters };
      result.responseMessages = messages;
      result.currentPage = session.page;
      if (input.event === undefined) {
        result.intent = ref;
        result.intentDetectionConfidence = confidence;
      }
      result.match =
        input.event === undefined
          ? {
              intent: ref,
              ...(intent.parameters === undefined ? {} : { parameters: intent.parameters }),
              resolvedInput: input.text,
              matchType: "INTENT",
              confidence,
            }
          : { event: input.event, matchType: "EVENT", confidence: 1 };
    } else {
      messages = input.text === undefined ? [] : (this.fallbackScript.replies ?? []).map((reply) => cxMessage(reply));
      if (Object.keys(session.parameters).length > 0) result.parameters = { ...session.parameters };
      result.responseMessages = messages;
      result.currentPage = session.page;
      result.match =
        input.text === undefined
          ? { event: input.event, matchType: "NO_MATCH" }
          : { resolvedInput: input.text, matchType: "NO_MATCH" };
    }
    result.diagnosticInfo = { "Session Id": sessionId };
    // After End Session the next turn starts a new conversation on the start page.
    if (session.page.displayName === "End Session") this.sessions.delete(sessionId);
    return {
      body: { responseId: randomUUID(), queryResult: result },
      ...(intent === undefined ? {} : { intent: intent.displayName }),
    };
  }
}

function cxMessage(reply: DialogflowReply): Record<string, unknown> {
  if ("text" in reply) return { text: { text: [reply.text] } };
  if ("quickReplies" in reply) {
    throw new Error("Dialogflow CX has no quick-replies message: script chips (a rich-content payload) instead");
  }
  if ("chips" in reply) return { payload: chipsPayload(reply.chips) };
  if ("payload" in reply) return { payload: reply.payload };
  if ("liveAgentHandoff" in reply) return { liveAgentHandoff: { metadata: reply.liveAgentHandoff } };
  return reply.raw;
}
