import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody, startFakeServer } from "../../helpers/fake-server.js";
import { CxAgent, EsAgent, type ScriptedAgent } from "./agents.js";
import { Auth, keyFile, newKeyPair } from "./auth.js";
import { GoogleApiError, invalidArgument, sendGoogleError, sendNotFoundPage, statusError } from "./errors.js";
import { parseDetectIntent, type QueryInput } from "./request.js";
import type {
  CxAgentOptions,
  DetectIntentCall,
  DialogflowAgent,
  DialogflowEdition,
  DialogflowInjectedFailure,
  DialogflowReply,
  EsAgentOptions,
  FakeDialogflow,
  FakeDialogflowOptions,
} from "./types.js";

export type * from "./types.js";
export { signJwt, decodeJwt } from "./jwt.js";

/** The longest session id Dialogflow takes, in bytes. */
export const MAX_SESSION_ID_BYTES = 36;
const MAX_BODY_BYTES = 10 * 1024 * 1024;

interface Route {
  edition: DialogflowEdition;
  projectId: string;
  location: string;
  /** Whether the path named the location (ES: `…/locations/L/agent`). */
  explicitLocation: boolean;
  agentId?: string;
  environment?: string;
  user?: string;
  sessionId: string;
  sessionPath: string;
}

const SEGMENT = "([^/]+)";
const ROUTES: { edition: DialogflowEdition; pattern: RegExp; groups: (keyof Route)[] }[] = [
  {
    edition: "es",
    pattern: re(`/v2/projects/${SEGMENT}/agent/sessions/${SEGMENT}`),
    groups: ["projectId", "sessionId"],
  },
  {
    edition: "es",
    pattern: re(`/v2/projects/${SEGMENT}/locations/${SEGMENT}/agent/sessions/${SEGMENT}`),
    groups: ["projectId", "location", "sessionId"],
  },
  {
    edition: "es",
    pattern: re(`/v2/projects/${SEGMENT}/agent/environments/${SEGMENT}/users/${SEGMENT}/sessions/${SEGMENT}`),
    groups: ["projectId", "environment", "user", "sessionId"],
  },
  {
    edition: "es",
    pattern: re(
      `/v2/projects/${SEGMENT}/locations/${SEGMENT}/agent/environments/${SEGMENT}/users/${SEGMENT}/sessions/${SEGMENT}`,
    ),
    groups: ["projectId", "location", "environment", "user", "sessionId"],
  },
  {
    edition: "cx",
    pattern: re(`/v3/projects/${SEGMENT}/locations/${SEGMENT}/agents/${SEGMENT}/sessions/${SEGMENT}`),
    groups: ["projectId", "location", "agentId", "sessionId"],
  },
  {
    edition: "cx",
    pattern: re(
      `/v3/projects/${SEGMENT}/locations/${SEGMENT}/agents/${SEGMENT}/environments/${SEGMENT}/sessions/${SEGMENT}`,
    ),
    groups: ["projectId", "location", "agentId", "environment", "sessionId"],
  },
];

function re(path: string): RegExp {
  return new RegExp(`^${path}:detectIntent$`);
}

function route(pathname: string): Route | undefined {
  // The verb's colon may come percent-encoded.
  const path = pathname.replace(/%3A(detectIntent)$/i, ":$1");
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(path);
    if (!match) continue;
    const found: Record<string, string> = {};
    candidate.groups.forEach((group, i) => {
      found[group] = decodeURIComponent(match[i + 1] ?? "");
    });
    const location = found.location ?? "global";
    const sessionPath = path.slice(1, -":detectIntent".length).replace(/^v[23]\//, "");
    return {
      edition: candidate.edition,
      projectId: found.projectId ?? "",
      location,
      explicitLocation: found.location !== undefined,
      ...(found.agentId === undefined ? {} : { agentId: found.agentId }),
      ...(found.environment === undefined ? {} : { environment: found.environment }),
      ...(found.user === undefined ? {} : { user: found.user }),
      sessionId: found.sessionId ?? "",
      sessionPath,
    };
  }
  return undefined;
}

/**
 * Starts a fake Dialogflow (ES v2 and CX v3 detectIntent, and Google's OAuth token endpoint for a service account it
 * generates) on 127.0.0.1 and a free port; see README.md.
 */
export async function startFakeDialogflow(options: FakeDialogflowOptions = {}): Promise<FakeDialogflow> {
  const projectId = options.projectId ?? "liaison-test";
  const clientEmail = options.clientEmail ?? `liaison-bot@${projectId}.iam.gserviceaccount.com`;
  const pair = await newKeyPair();

  const esAgents = new Map<string, EsAgent>();
  const cxAgents = new Map<string, CxAgent>();
  const calls: DetectIntentCall[] = [];
  let failure: (DialogflowInjectedFailure & { count: number }) | undefined;
  let httpOutage: Omit<DialogflowInjectedFailure, "target"> | undefined;

  const injected = (fail: { status: number; retryAfterSeconds?: number }): GoogleApiError =>
    statusError(
      fail.status,
      fail.retryAfterSeconds === undefined ? {} : { "retry-after": String(fail.retryAfterSeconds) },
    );

  const takeFailure = (target: "detectIntent" | "token"): GoogleApiError | undefined => {
    if (httpOutage) return injected(httpOutage);
    if (failure && failure.count > 0 && (failure.target ?? "detectIntent") === target) {
      failure.count -= 1;
      return injected(failure);
    }
    return undefined;
  };

  const findAgent = (where: Route): ScriptedAgent => {
    if (where.edition === "es") {
      const agent = esAgents.get(`${where.projectId}|${where.location}`);
      if (!agent) {
        throw new GoogleApiError(
          404,
          `com.google.apps.framework.request.NotFoundException: No DesignTimeAgent found for project '${where.projectId}'.`,
        );
      }
      return agent;
    }
    const agent = cxAgents.get(`${where.projectId}|${where.location}|${where.agentId ?? ""}`);
    if (!agent) {
      throw new GoogleApiError(
        404,
        `com.google.apps.framework.request.NotFoundException: Agent 'projects/${where.projectId}/locations/${where.location}/agents/${where.agentId ?? ""}' does not exist.`,
      );
    }
    return agent;
  };

  const handleDetectIntent = (req: IncomingMessage, res: ServerResponse, raw: string, where: Route) => {
    const call: DetectIntentCall = {
      seq: calls.length + 1,
      at: Date.now(),
      edition: where.edition,
      path: new URL(req.url ?? "/", "http://127.0.0.1").pathname,
      headers: req.headers,
      projectId: where.projectId,
      location: where.location,
      ...(where.agentId === undefined ? {} : { agentId: where.agentId }),
      ...(where.environment === undefined ? {} : { environment: where.environment }),
      ...(where.user === undefined ? {} : { user: where.user }),
      sessionId: where.sessionId,
      auth: { kind: "none" },
      status: 0,
    };
    calls.push(call);
    try {
      call.body = JSON.parse(raw) as unknown;
    } catch {
      // recorded as raw text is of no use to a test; the parse error is answered below
    }
    try {
      const fail = takeFailure("detectIntent");
      if (fail) throw fail;
      try {
        call.auth = auth.authenticate(req.headers.authorization, where.edition);
      } catch (error) {
        const header = req.headers.authorization;
        call.auth =
          header === undefined ? { kind: "none" } : { kind: "invalid", token: header.replace(/^Bearer\s+/i, "") };
        throw error;
      }
      const input: QueryInput = parseDetectIntent(where.edition, raw);
      if (input.text !== undefined) call.text = input.text;
      if (input.event !== undefined) call.event = input.event;
      call.languageCode = input.languageCode;
      // Recorded as sent (JSON or proto names); the agent reads the parsed copy.
      const sent = call.body as Record<string, unknown>;
      const params = sent.queryParams ?? sent.query_params;
      if (typeof params === "object" && params !== null) call.queryParams = params as Record<string, unknown>;
      if (Buffer.byteLength(where.sessionId, "utf8") > MAX_SESSION_ID_BYTES) {
        throw invalidArgument(
          `The length of the session ID must not exceed ${MAX_SESSION_ID_BYTES} bytes: '${where.sessionId}'.`,
          "session",
        );
      }
      if (auth.denied) {
        const resource =
          where.edition === "es"
            ? `projects/${where.projectId}/agent`
            : `projects/${where.projectId}/locations/${where.location}/agents/${where.agentId ?? ""}`;
        throw new GoogleApiError(
          403,
          where.edition === "es"
            ? `IAM permission 'dialogflow.sessions.detectIntent' on '${resource}' denied.`
            : `Permission 'dialogflow.sessions.detectIntent' denied on resource '${resource}' (or it may not exist).`,
        );
      }
      const agent = findAgent(where);
      const environment = where.environment;
      if (environment !== undefined && environment !== "-" && !agent.environments.includes(environment)) {
        throw new GoogleApiError(404, `Environment with id '${environment}' was not found.`);
      }
      const answer = agent.answer(input, where.sessionPath, where.sessionId);
      call.status = 200;
      call.response = answer.body;
      if (answer.intent !== undefined) call.intent = answer.intent;
      res.writeHead(200, { "content-type": "application/json; charset=UTF-8", vary: "Origin, X-Origin, Referer" });
      res.end(JSON.stringify(answer.body, null, 2));
    } catch (error) {
      if (!(error instanceof GoogleApiError)) throw error;
      call.status = error.code;
      call.response = error.body;
      sendGoogleError(res, error);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) {
      res.writeHead(413, { "content-type": "text/html; charset=UTF-8" }).end("<h1>413. That’s an error.</h1>");
      return;
    }
    if (url.pathname === "/token" && req.method === "POST") {
      const fail = takeFailure("token");
      if (fail) {
        sendGoogleError(res, fail);
        return;
      }
      auth.handleToken(req, body, res);
      return;
    }
    const where = route(url.pathname);
    if (!where || req.method !== "POST") {
      sendNotFoundPage(res, url.pathname);
      return;
    }
    handleDetectIntent(req, res, body.toString("utf8"), where);
  };

  const server = await startFakeServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end(String(error));
    });
  });
  const tokenUri = `${server.url}/token`;
  const serviceAccount = keyFile(projectId, clientEmail, tokenUri, pair);
  // Created once the server listens: the key's token_uri needs the port. The handlers above run after this.
  const auth = new Auth(serviceAccount, tokenUri, options.tokenLifetimeSeconds ?? 3599);
  const tokens = auth;

  const handleOf = (agent: EsAgent | CxAgent): DialogflowAgent => {
    const check = (replies: DialogflowReply[] | undefined) => {
      // Mapping every reply once refuses, at scripting time, a message the edition does not have.
      agent.answerCheck(replies ?? []);
    };
    const base = {
      edition: agent.edition,
      projectId: agent.projectId,
      location: agent.location,
      intent(script: Parameters<DialogflowAgent["intent"]>[0]) {
        check(script.replies);
        agent.addIntent(script);
      },
      fallback(script: Parameters<DialogflowAgent["fallback"]>[0]) {
        check(script.replies);
        agent.setFallback(script);
      },
    };
    if (agent instanceof CxAgent) {
      return {
        ...base,
        agentId: agent.agentId,
        name: agent.name,
        detectIntentUrl: (sessionId: string) =>
          `${server.url}/v3/${agent.name}/sessions/${encodeURIComponent(sessionId)}:detectIntent`,
      };
    }
    const name =
      agent.location === "global"
        ? `projects/${agent.projectId}/agent`
        : `projects/${agent.projectId}/locations/${agent.location}/agent`;
    return {
      ...base,
      name,
      detectIntentUrl: (sessionId: string) =>
        `${server.url}/v2/${name}/sessions/${encodeURIComponent(sessionId)}:detectIntent`,
    };
  };

  let closed = false;
  const fake: FakeDialogflow = {
    url: server.url,
    tokenUri,
    serviceAccount,
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
    },
    esAgent(agentOptions: EsAgentOptions = {}) {
      const agent = new EsAgent(
        agentOptions.projectId ?? projectId,
        agentOptions.location ?? "global",
        agentOptions.languages ?? ["en"],
        agentOptions.defaultIntents ?? true,
      );
      agent.environments = agentOptions.environments ?? [];
      esAgents.set(`${agent.projectId}|${agent.location}`, agent);
      return handleOf(agent);
    },
    cxAgent(agentOptions: CxAgentOptions = {}) {
      const agent = new CxAgent(
        agentOptions.projectId ?? projectId,
        agentOptions.location ?? "global",
        agentOptions.agentId ?? randomUUID(),
        agentOptions.languages ?? ["en"],
      );
      agent.environments = agentOptions.environments ?? [];
      cxAgents.set(`${agent.projectId}|${agent.location}|${agent.agentId}`, agent);
      return handleOf(agent);
    },
    async untrustedServiceAccount() {
      return keyFile(projectId, clientEmail, tokenUri, await newKeyPair());
    },
    expireTokens() {
      tokens.expireAll();
    },
    setTokenLifetime(seconds) {
      tokens.lifetimeSeconds = seconds;
    },
    denyPermission(denied) {
      tokens.denied = denied;
    },
    tokens: () => [...tokens.issued.values()].map((t) => ({ ...t, scopes: [...t.scopes] })),
    tokenRequests: () => [...tokens.requests],
    calls: () => [...calls],
    sessionParameters(agent, sessionId) {
      if (agent.edition !== "cx") return undefined;
      const cx = cxAgents.get(`${agent.projectId}|${agent.location}|${agent.agentId ?? ""}`);
      const session = cx?.sessions.get(sessionId);
      return session ? { ...session.parameters } : undefined;
    },
    failNext(count, fail) {
      failure = { ...fail, count };
    },
    async goDown(mode) {
      if (typeof mode === "object") {
        httpOutage = mode;
        return;
      }
      await server.goDown(mode);
    },
    async comeUp() {
      httpOutage = undefined;
      await server.comeUp();
    },
  };
  return fake;
}
