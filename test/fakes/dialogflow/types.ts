import type { IncomingHttpHeaders } from "node:http";
import type { NetworkOutage } from "../../helpers/fake-server.js";

export type DialogflowEdition = "es" | "cx";

/** A service-account key file, as the Cloud console downloads it (`token_uri` points at the fake). */
export interface ServiceAccountKey {
  type: "service_account";
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: string;
}

/**
 * One message of a scripted answer. `text` is a plain text response; `quickReplies` an ES quick-replies message;
 * `chips` a custom payload in Dialogflow Messenger's rich-content form (`{richContent: [[{type: "chips", …}]]}`);
 * `payload` any custom payload (e.g. `{handoff: true, department: "billing"}`); `liveAgentHandoff` the CX hand-off
 * message with this metadata; `raw` a message exactly as given.
 */
export type DialogflowReply =
  | { text: string }
  | { quickReplies: string[]; title?: string; platform?: string }
  | { chips: string[] }
  | { payload: Record<string, unknown> }
  | { liveAgentHandoff: Record<string, unknown> }
  | { raw: Record<string, unknown> };

/** An intent (ES) or an intent route (CX), as a test scripts it. */
export interface DialogflowIntentScript {
  displayName: string;
  /** Training phrases: a string matches the whole input (case, spacing and surrounding blanks ignored); a RegExp is tested. */
  phrases?: (string | RegExp)[];
  /** Event names that trigger it (ES: the intent's events; CX: an event handler), e.g. `liaison_agent_closed`. */
  events?: string[];
  /** ES: `queryResult.action`. */
  action?: string;
  /** ES: `queryResult.parameters`; CX: session parameters it sets (`queryResult.parameters`, `match.parameters`). */
  parameters?: Record<string, unknown>;
  replies?: DialogflowReply[];
  /** ES: the intent ends the conversation (`intent.endInteraction`, `diagnosticInfo.end_conversation`); CX: the route goes to End Session (`endInteraction` message). */
  endInteraction?: boolean;
  /** CX: the page the route moves to (`queryResult.currentPage.displayName`). */
  page?: string;
  /** `intentDetectionConfidence` (default 1). */
  confidence?: number;
}

export interface DialogflowFallbackScript {
  replies?: DialogflowReply[];
  /** ES only (default `input.unknown`). */
  action?: string;
}

export interface EsAgentOptions {
  projectId?: string;
  /** The agent's region (default `global`, which is also what a path without `locations/` reaches). */
  location?: string;
  /** Languages it supports (default `["en"]`); a regional variant (`en-GB`) of one is accepted. */
  languages?: string[];
  /** Include a new agent's Default Welcome Intent (event `WELCOME`) and Default Fallback Intent (default true). */
  defaultIntents?: boolean;
  /** Environments besides the draft (`-`), for `…/agent/environments/{e}/users/{u}/sessions/{s}`. */
  environments?: string[];
}

export interface CxAgentOptions {
  projectId?: string;
  location?: string;
  /** The agent's id (default: a random UUID). */
  agentId?: string;
  languages?: string[];
  /** Environments besides the draft (`-`), for `…/agents/{a}/environments/{e}/sessions/{s}`. */
  environments?: string[];
}

export interface DialogflowAgent {
  edition: DialogflowEdition;
  projectId: string;
  location: string;
  /** CX only. */
  agentId?: string;
  /** `projects/…/agent` (ES) or `projects/…/locations/…/agents/…` (CX). */
  name: string;
  /** The full detectIntent URL of a session of this agent. */
  detectIntentUrl(sessionId: string): string;
  /** Adds an intent; they are tried in the order they were added. */
  intent(script: DialogflowIntentScript): void;
  /** What answers when nothing matches (ES: the Default Fallback Intent; CX: the no-match event handler). */
  fallback(script: DialogflowFallbackScript): void;
}

/** How a request authenticated (or failed to). */
export interface DialogflowAuth {
  kind: "access-token" | "self-signed-jwt" | "none" | "invalid";
  clientEmail?: string;
  token?: string;
}

/** One detectIntent request that reached the fake, whatever its answer. */
export interface DetectIntentCall {
  seq: number;
  at: number;
  edition: DialogflowEdition;
  path: string;
  headers: IncomingHttpHeaders;
  projectId: string;
  location: string;
  agentId?: string;
  environment?: string;
  user?: string;
  sessionId: string;
  body?: unknown;
  text?: string;
  event?: string;
  languageCode?: string;
  queryParams?: Record<string, unknown>;
  auth: DialogflowAuth;
  status: number;
  response?: unknown;
  /** The matched intent's display name (fallbacks included). */
  intent?: string;
}

/** One request to the token endpoint. */
export interface TokenRequest {
  seq: number;
  at: number;
  status: number;
  grantType?: string;
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  clientEmail?: string;
  error?: string;
  errorDescription?: string;
  accessToken?: string;
}

export interface IssuedToken {
  accessToken: string;
  clientEmail: string;
  scopes: string[];
  expiresAt: number;
}

/** An injected answer: Google's error body for the status, `Retry-After` only when asked for. */
export interface DialogflowInjectedFailure {
  status: number;
  retryAfterSeconds?: number;
  /** Which endpoint (default `detectIntent`). */
  target?: "detectIntent" | "token";
}

export interface FakeDialogflowOptions {
  /** The service account's project (default `liaison-test`); agents default to it too. */
  projectId?: string;
  clientEmail?: string;
  /** `expires_in` of the access tokens the fake issues (default 3599, as Google's). */
  tokenLifetimeSeconds?: number;
}

export interface FakeDialogflow {
  /** The API's base URL (`DIALOGFLOW_API_URL`), `http://127.0.0.1:<port>`. */
  url: string;
  /** The token endpoint, also the key's `token_uri`. */
  tokenUri: string;
  /** A service-account key whose private half the fake generated and whose public half it trusts. */
  serviceAccount: ServiceAccountKey;
  close(): Promise<void>;

  esAgent(options?: EsAgentOptions): DialogflowAgent;
  cxAgent(options?: CxAgentOptions): DialogflowAgent;

  /** A key for the same `client_email` signed with a key pair the fake does not know. */
  untrustedServiceAccount(): Promise<ServiceAccountKey>;
  /** Every token issued so far is expired from now on. */
  expireTokens(): void;
  setTokenLifetime(seconds: number): void;
  /** The service account loses (or regains) `dialogflow.sessions.detectIntent` on every agent. */
  denyPermission(denied: boolean): void;
  tokens(): IssuedToken[];
  tokenRequests(): TokenRequest[];

  calls(): DetectIntentCall[];
  /** CX: a session's parameters as they stand. */
  sessionParameters(agent: DialogflowAgent, sessionId: string): Record<string, unknown> | undefined;

  failNext(count: number, failure: DialogflowInjectedFailure): void;
  goDown(mode: NetworkOutage | Omit<DialogflowInjectedFailure, "target">): Promise<void>;
  comeUp(): Promise<void>;
}
