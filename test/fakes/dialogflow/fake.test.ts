import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest";
import { signJwt, startFakeDialogflow } from "./index.js";
import type { FakeDialogflow, ServiceAccountKey } from "./index.js";

// Self-test of the fake's strictness with plain fetch: Google's token endpoint and error model, ES and CX answers.

type Json = Record<string, unknown>;

const CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform";
const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";

// One fake for the file: generating its RSA key is the slow part. Each test makes its own agents and sessions.
let df: FakeDialogflow;
beforeAll(async () => {
  df = await startFakeDialogflow({ projectId: "acme-bot" });
});
afterAll(async () => {
  await df.close();
});
afterEach(async () => {
  df.denyPermission(false);
  df.setTokenLifetime(3599);
  await df.comeUp();
});

const now = () => Math.floor(Date.now() / 1000);

/** The assertion gtoken builds: header `{alg: "RS256"}`, Google's token URL as audience, one hour. */
function assertion(key: ServiceAccountKey = df.serviceAccount, claims: Json = {}, header?: Json): string {
  const iat = now();
  return signJwt(
    { iss: key.client_email, scope: CLOUD_PLATFORM, aud: GOOGLE_TOKEN_URL, exp: iat + 3600, iat, ...claims },
    key.private_key,
    header ?? { alg: "RS256" },
  );
}

async function tokenRequest(form: Record<string, string>, contentType = "application/x-www-form-urlencoded") {
  const response = await fetch(df.tokenUri, {
    method: "POST",
    headers: { "content-type": contentType },
    body: contentType.startsWith("application/json") ? JSON.stringify(form) : new URLSearchParams(form).toString(),
  });
  return { status: response.status, json: (await response.json()) as Json, headers: response.headers };
}

async function token(claims: Json = {}): Promise<string> {
  const res = await tokenRequest({
    grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion: assertion(df.serviceAccount, claims),
  });
  expect(res.status).toBe(200);
  return res.json.access_token as string;
}

async function detect(url: string, body: unknown, bearer?: string, init: RequestInit = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  const text = await response.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, headers: response.headers };
}

const esText = (text: string, languageCode = "en") => ({ queryInput: { text: { text, languageCode } } });
const cxText = (text: string, languageCode = "en") => ({ queryInput: { text: { text }, languageCode } });

let sessions = 0;
const session = () => `sess-${++sessions}-${Date.now()}`;

describe("the token endpoint (a service account's JWT-bearer grant)", () => {
  it("hands a key file that points at the fake", () => {
    const key = df.serviceAccount;
    expect(key).toMatchObject({
      type: "service_account",
      project_id: "acme-bot",
      client_email: "liaison-bot@acme-bot.iam.gserviceaccount.com",
      token_uri: `${df.url}/token`,
    });
    expect(key.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(key.private_key_id).toMatch(/^[0-9a-f]{40}$/);
  });

  it("issues an access token for a well-signed assertion, with Google's answer", async () => {
    const res = await tokenRequest({
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: assertion(),
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      access_token: expect.stringMatching(/^ya29\.c\./) as string,
      expires_in: 3599,
      token_type: "Bearer",
    });
    expect(res.headers.get("cache-control")).toBe("no-cache, no-store, max-age=0, must-revalidate");
    // The key file's token_uri is an accepted audience as well.
    const own = await tokenRequest({
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: assertion(
        df.serviceAccount,
        { aud: df.tokenUri },
        { alg: "RS256", typ: "JWT", kid: df.serviceAccount.private_key_id },
      ),
    });
    expect(own.status).toBe(200);
    expect(df.tokens().map((t) => t.accessToken)).toEqual(
      expect.arrayContaining([res.json.access_token, own.json.access_token]),
    );
  });

  it("refuses another grant type, or a JSON body, as Google does", async () => {
    const other = await tokenRequest({ grant_type: "client_credentials", assertion: assertion() });
    expect(other).toMatchObject({
      status: 400,
      json: { error: "unsupported_grant_type", error_description: "Invalid grant_type: client_credentials" },
    });
    const json = await tokenRequest(
      { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: assertion() },
      "application/json",
    );
    expect(json).toMatchObject({
      status: 400,
      json: { error: "unsupported_grant_type", error_description: "Invalid grant_type: " },
    });
    const none = await tokenRequest({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer" });
    expect(none).toMatchObject({
      status: 400,
      json: { error: "invalid_request", error_description: "Missing required parameter: assertion" },
    });
  });

  it("verifies the RS256 signature against the key's public half", async () => {
    const grant = (value: string) =>
      tokenRequest({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: value });
    const invalid = { status: 400, json: { error: "invalid_grant", error_description: "Invalid JWT Signature." } };

    // Signed with a key pair the fake never saw, for the right client_email.
    expect(await grant(assertion(await df.untrustedServiceAccount()))).toMatchObject(invalid);
    // Claims changed after signing.
    const [head, , sig] = assertion().split(".");
    const forged = Buffer.from(
      JSON.stringify({
        iss: df.serviceAccount.client_email,
        scope: CLOUD_PLATFORM,
        aud: GOOGLE_TOKEN_URL,
        iat: now(),
        exp: now() + 60,
      }),
    ).toString("base64url");
    expect(await grant(`${head}.${forged}.${sig}`)).toMatchObject(invalid);
    // Another algorithm named in the header, or no signature at all.
    expect(await grant(assertion(df.serviceAccount, {}, { alg: "HS256" }))).toMatchObject(invalid);
    expect(await grant(`${assertion().split(".").slice(0, 2).join(".")}.`)).toMatchObject(invalid);
    // A kid that is not the key's.
    expect(await grant(assertion(df.serviceAccount, {}, { alg: "RS256", kid: "0".repeat(40) }))).toMatchObject(invalid);
    expect(await grant("not-a-jwt")).toMatchObject(invalid);
  });

  it("checks iss, aud, iat and exp", async () => {
    const grant = (claims: Json) =>
      tokenRequest({
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion: assertion(df.serviceAccount, claims),
      });
    expect(await grant({ iss: "someone@else.iam.gserviceaccount.com" })).toMatchObject({
      status: 400,
      json: { error: "invalid_grant", error_description: "Invalid grant: account not found" },
    });
    expect(await grant({ aud: "https://example.org/token" })).toMatchObject({
      status: 400,
      json: {
        error: "invalid_grant",
        error_description: `Invalid JWT: Failed audience check. The right audience is ${df.tokenUri}`,
      },
    });
    const shortLived = {
      status: 400,
      json: {
        error: "invalid_grant",
        error_description:
          "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
      },
    };
    expect(await grant({ exp: now() + 3601 })).toMatchObject(shortLived);
    expect(await grant({ iat: now() - 7200, exp: now() - 3600 })).toMatchObject(shortLived);
    expect(await grant({ iat: now() + 3000, exp: now() + 3500 })).toMatchObject(shortLived);
    expect(await grant({ iat: undefined })).toMatchObject(shortLived);
    expect(await grant({ exp: String(now() + 60) })).toMatchObject(shortLived);
  });

  it("checks the scope, and refuses to act for another user", async () => {
    const grant = (claims: Json) =>
      tokenRequest({
        grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
        assertion: assertion(df.serviceAccount, claims),
      });
    const invalidScope = {
      status: 400,
      json: { error: "invalid_scope", error_description: "Invalid OAuth scope or ID token audience provided." },
    };
    expect(await grant({ scope: undefined })).toMatchObject(invalidScope);
    expect(await grant({ scope: "cloud-platform" })).toMatchObject(invalidScope);
    expect(await grant({ sub: "ola@example.no" })).toMatchObject({
      status: 401,
      json: { error: "unauthorized_client" },
    });
    expect(df.tokenRequests().at(-1)).toMatchObject({ status: 401, clientEmail: df.serviceAccount.client_email });
  });
});

describe("the API's authentication", () => {
  const url = () => {
    const agent = df.esAgent({ projectId: "auth-checks" });
    return agent.detectIntentUrl(session());
  };

  it("answers 401 UNAUTHENTICATED without credentials, with Google's body", async () => {
    const res = await detect(url(), esText("hi"));
    expect(res.status).toBe(401);
    expect(res.json).toEqual({
      error: {
        code: 401,
        message:
          "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        status: "UNAUTHENTICATED",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "CREDENTIALS_MISSING",
            domain: "googleapis.com",
            metadata: {
              service: "dialogflow.googleapis.com",
              method: "google.cloud.dialogflow.v2.Sessions.DetectIntent",
            },
          },
        ],
      },
    });
  });

  it("answers 401 for an unknown token, another scheme, or an expired token", async () => {
    const invalid =
      "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
    const unknown = await detect(url(), esText("hi"), "ya29.c.made-up");
    expect(unknown.status).toBe(401);
    expect(unknown.json).toMatchObject({ error: { code: 401, message: invalid, status: "UNAUTHENTICATED" } });
    const basic = await detect(url(), esText("hi"), undefined, {
      headers: { "content-type": "application/json", authorization: "Basic dXNlcjpwYXNz" },
    });
    expect(basic.status).toBe(401);

    const fresh = await token();
    expect((await detect(url(), esText("hi"), fresh)).status).toBe(200);
    df.expireTokens();
    const expired = await detect(url(), esText("hi"), fresh);
    expect(expired.status).toBe(401);
    expect(expired.json).toMatchObject({
      error: { message: invalid, details: [{ reason: "ACCESS_TOKEN_EXPIRED" }] },
    });
    expect(df.calls().at(-1)?.auth.kind).toBe("invalid");
  });

  it("issues tokens that expire when their expires_in says", async () => {
    df.setTokenLifetime(0);
    const res = await tokenRequest({
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: assertion(),
    });
    expect(res.json.expires_in).toBe(0);
    expect((await detect(url(), esText("hi"), res.json.access_token as string)).status).toBe(401);
  });

  it("answers 403 for a token without a Dialogflow scope", async () => {
    const narrow = await token({ scope: "https://www.googleapis.com/auth/userinfo.email" });
    const res = await detect(url(), esText("hi"), narrow);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({
      error: {
        code: 403,
        message: "Request had insufficient authentication scopes.",
        status: "PERMISSION_DENIED",
        details: [{ reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT" }],
      },
    });
    expect(
      (await detect(url(), esText("hi"), await token({ scope: "https://www.googleapis.com/auth/dialogflow" }))).status,
    ).toBe(200);
  });

  it("accepts a self-signed JWT of the service account, as google-auth-library's JWTAccess sends it", async () => {
    const key = df.serviceAccount;
    const iat = now();
    const header = { alg: "RS256", typ: "JWT", kid: key.private_key_id };
    const byAudience = signJwt(
      { iss: key.client_email, sub: key.client_email, aud: "https://dialogflow.googleapis.com/", iat, exp: iat + 3600 },
      key.private_key,
      header,
    );
    const byScope = signJwt(
      { iss: key.client_email, sub: key.client_email, scope: CLOUD_PLATFORM, iat, exp: iat + 3600 },
      key.private_key,
      header,
    );
    expect((await detect(url(), esText("hi"), byAudience)).status).toBe(200);
    expect(df.calls().at(-1)?.auth).toEqual({
      kind: "self-signed-jwt",
      clientEmail: key.client_email,
      token: byAudience,
    });
    expect((await detect(url(), esText("hi"), byScope)).status).toBe(200);

    const untrusted = await df.untrustedServiceAccount();
    const wrongKey = signJwt(
      { iss: key.client_email, sub: key.client_email, aud: "https://dialogflow.googleapis.com/", iat, exp: iat + 3600 },
      untrusted.private_key,
    );
    expect((await detect(url(), esText("hi"), wrongKey)).status).toBe(401);
    const otherAudience = signJwt(
      { iss: key.client_email, sub: key.client_email, aud: "https://pubsub.googleapis.com/", iat, exp: iat + 3600 },
      key.private_key,
    );
    expect((await detect(url(), esText("hi"), otherAudience)).status).toBe(401);
  });

  it("answers 403 when the service account may not call the agent", async () => {
    const bearer = await token();
    df.denyPermission(true);
    const es = await detect(url(), esText("hi"), bearer);
    expect(es.status).toBe(403);
    expect(es.json).toMatchObject({
      error: {
        code: 403,
        message: "IAM permission 'dialogflow.sessions.detectIntent' on 'projects/auth-checks/agent' denied.",
        status: "PERMISSION_DENIED",
      },
    });
    const cx = df.cxAgent({ projectId: "auth-checks", agentId: "a-1" });
    const denied = await detect(cx.detectIntentUrl(session()), cxText("hi"), bearer);
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({
      error: {
        message:
          "Permission 'dialogflow.sessions.detectIntent' denied on resource 'projects/auth-checks/locations/global/agents/a-1' (or it may not exist).",
      },
    });
  });
});

describe("Dialogflow ES detectIntent", () => {
  let bearer: string;
  beforeAll(async () => {
    bearer = await token();
  });

  it("answers a matched intent with Google's queryResult and records the call", async () => {
    const agent = df.esAgent({ projectId: "es-basic", languages: ["en", "nb"] });
    agent.intent({
      displayName: "talk_to_agent",
      phrases: ["I want a human", /\bagent\b/i],
      action: "handoff.request",
      parameters: { department: "billing" },
      replies: [
        { text: "Connecting you…" },
        { quickReplies: ["Yes", "No"], title: "Sure?", platform: "TELEGRAM" },
        { payload: { handoff: true, department: "billing" } },
        { chips: ["Billing", "Sales"] },
      ],
    });
    const id = session();
    const res = await detect(agent.detectIntentUrl(id), esText("  i WANT a   human ", "en-GB"), bearer);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=UTF-8");
    expect(res.json).toEqual({
      responseId: expect.stringMatching(/^[0-9a-f-]{36}-[0-9a-f]{8}$/) as string,
      queryResult: {
        queryText: "  i WANT a   human ",
        action: "handoff.request",
        parameters: { department: "billing" },
        allRequiredParamsPresent: true,
        fulfillmentText: "Connecting you…",
        fulfillmentMessages: [
          { text: { text: ["Connecting you…"] } },
          { quickReplies: { title: "Sure?", quickReplies: ["Yes", "No"] }, platform: "TELEGRAM" },
          { payload: { handoff: true, department: "billing" } },
          { payload: { richContent: [[{ type: "chips", options: [{ text: "Billing" }, { text: "Sales" }] }]] } },
        ],
        intent: {
          name: expect.stringMatching(/^projects\/es-basic\/agent\/intents\/[0-9a-f-]{36}$/) as string,
          displayName: "talk_to_agent",
        },
        intentDetectionConfidence: 1,
        languageCode: "en-gb",
      },
    });
    expect(df.calls().at(-1)).toMatchObject({
      edition: "es",
      projectId: "es-basic",
      location: "global",
      sessionId: id,
      text: "  i WANT a   human ",
      languageCode: "en-GB",
      auth: { kind: "access-token", clientEmail: df.serviceAccount.client_email },
      status: 200,
      intent: "talk_to_agent",
    });
    expect((await detect(agent.detectIntentUrl(id), esText("get me an agent"), bearer)).json).toMatchObject({
      queryResult: { intent: { displayName: "talk_to_agent" } },
    });
  });

  it("falls back, welcomes, and ends the conversation on an event", async () => {
    const agent = df.esAgent({ projectId: "es-events" });
    agent.intent({
      displayName: "agent_closed",
      events: ["liaison_agent_closed"],
      replies: [{ text: "Glad we could help." }],
      endInteraction: true,
    });
    const id = session();
    const fallback = await detect(agent.detectIntentUrl(id), esText("gibberish"), bearer);
    expect(fallback.json?.queryResult).toMatchObject({
      queryText: "gibberish",
      action: "input.unknown",
      fulfillmentText: "I didn't get that. Can you say it again?",
      intent: { displayName: "Default Fallback Intent", isFallback: true },
    });
    const welcome = await detect(
      agent.detectIntentUrl(id),
      { queryInput: { event: { name: "WELCOME", languageCode: "en" } } },
      bearer,
    );
    expect(welcome.json?.queryResult).toMatchObject({
      queryText: "WELCOME",
      action: "input.welcome",
      intent: { displayName: "Default Welcome Intent" },
    });
    const closed = await detect(
      agent.detectIntentUrl(id),
      { queryInput: { event: { name: "liaison_agent_closed", parameters: { agent: "Jane" }, languageCode: "en" } } },
      bearer,
    );
    expect(closed.json?.queryResult).toMatchObject({
      queryText: "liaison_agent_closed",
      fulfillmentMessages: [{ text: { text: ["Glad we could help."] } }],
      intent: { displayName: "agent_closed", endInteraction: true },
      diagnosticInfo: { end_conversation: true },
    });
    expect(df.calls().at(-1)?.event).toBe("liaison_agent_closed");
    expect(df.calls().at(-1)?.text).toBeUndefined();
  });

  it("scripts a fallback of its own, or none", async () => {
    const agent = df.esAgent({ projectId: "es-fallback", defaultIntents: false });
    const none = await detect(agent.detectIntentUrl(session()), esText("anything"), bearer);
    expect(none.json?.queryResult).toEqual({
      queryText: "anything",
      parameters: {},
      allRequiredParamsPresent: true,
      languageCode: "en",
    });
    agent.fallback({ replies: [{ payload: { handoff: true } }], action: "handoff.fallback" });
    const own = await detect(agent.detectIntentUrl(session()), esText("anything"), bearer);
    expect(own.json?.queryResult).toMatchObject({
      action: "handoff.fallback",
      fulfillmentMessages: [{ payload: { handoff: true } }],
    });
    expect(() => agent.intent({ displayName: "x", replies: [{ liveAgentHandoff: {} }] })).toThrow(/ES has no/);
  });

  it("reaches a regional agent only through its location, and a global one either way", async () => {
    const regional = df.esAgent({ projectId: "es-regions", location: "europe-west2" });
    expect(regional.detectIntentUrl("s1")).toBe(
      `${df.url}/v2/projects/es-regions/locations/europe-west2/agent/sessions/s1:detectIntent`,
    );
    expect((await detect(regional.detectIntentUrl(session()), esText("hi"), bearer)).status).toBe(200);
    const wrong = await detect(`${df.url}/v2/projects/es-regions/agent/sessions/s1:detectIntent`, esText("hi"), bearer);
    expect(wrong.status).toBe(404);
    expect(wrong.json).toMatchObject({
      error: {
        code: 404,
        message:
          "com.google.apps.framework.request.NotFoundException: No DesignTimeAgent found for project 'es-regions'.",
        status: "NOT_FOUND",
      },
    });
    df.esAgent({ projectId: "es-global" });
    const explicit = await detect(
      `${df.url}/v2/projects/es-global/locations/global/agent/sessions/s1:detectIntent`,
      esText("hi"),
      bearer,
    );
    expect(explicit.json?.queryResult).toMatchObject({
      intent: { name: expect.stringMatching(/^projects\/es-global\/locations\/global\/agent\/intents\//) as string },
    });
  });

  it("takes a session in an environment it has, and the draft", async () => {
    df.esAgent({ projectId: "es-env", environments: ["prod"] });
    const at = (env: string) =>
      `${df.url}/v2/projects/es-env/agent/environments/${env}/users/-/sessions/s1:detectIntent`;
    expect((await detect(at("prod"), esText("hi"), bearer)).status).toBe(200);
    expect((await detect(at("-"), esText("hi"), bearer)).status).toBe(200);
    const missing = await detect(at("draft"), esText("hi"), bearer);
    expect(missing).toMatchObject({
      status: 404,
      json: { error: { message: "Environment with id 'draft' was not found.", status: "NOT_FOUND" } },
    });
    expect(df.calls().at(-1)).toMatchObject({ environment: "draft", user: "-" });
  });

  it("refuses a session id longer than 36 bytes", async () => {
    const agent = df.esAgent({ projectId: "es-session" });
    expect((await detect(agent.detectIntentUrl("a".repeat(36)), esText("hi"), bearer)).status).toBe(200);
    const long = await detect(agent.detectIntentUrl("a".repeat(37)), esText("hi"), bearer);
    expect(long.status).toBe(400);
    expect(long.json).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT" } });
    // 18 two-byte characters are 36 bytes; 19 are not.
    expect((await detect(agent.detectIntentUrl("é".repeat(18)), esText("hi"), bearer)).status).toBe(200);
    expect((await detect(agent.detectIntentUrl("é".repeat(19)), esText("hi"), bearer)).status).toBe(400);
  });

  it("refuses bad input with Google's INVALID_ARGUMENT messages", async () => {
    const agent = df.esAgent({ projectId: "es-input" });
    const send = async (body: unknown) => {
      const res = await detect(agent.detectIntentUrl(session()), body, bearer);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const error = res.json?.error as Json;
      expect(error.status).toBe("INVALID_ARGUMENT");
      return error.message;
    };
    expect(await send(esText("x".repeat(257)))).toBe("Input text exceeds 256 characters.");
    expect((await detect(agent.detectIntentUrl(session()), esText("x".repeat(256)), bearer)).status).toBe(200);
    expect(await send(esText(""))).toBe("Input text not set.");
    expect(await send({ queryInput: {} })).toBe("Field input not set.");
    expect(await send({})).toBe("Field input not set.");
    expect(await send({ queryInput: { text: { text: "hi" } } })).toBe("Language code is not set.");
    expect(await send(esText("hi", "fr"))).toBe("Agent does not support language: 'fr'");
    // The CX shape: languageCode beside text is not a field of an ES QueryInput.
    expect(await send({ queryInput: { text: { text: "hi" }, languageCode: "en" } })).toBe(
      "Invalid JSON payload received. Unknown name \"languageCode\" at 'query_input': Cannot find field.",
    );
    expect(await send({ ...esText("hi"), sessionId: "x" })).toBe(
      'Invalid JSON payload received. Unknown name "sessionId": Cannot find field.',
    );
    expect(await send({ queryInput: { text: { text: 42, languageCode: "en" } } })).toBe(
      "Invalid value at 'query_input.text.text' (TYPE_STRING), 42",
    );
    expect(await send({ queryInput: { text: "hi" } })).toBe(
      "Invalid value at 'query_input.text' (type.googleapis.com/google.cloud.dialogflow.v2.TextInput), \"hi\"",
    );
    expect(
      await send({
        queryInput: { text: { text: "hi", languageCode: "en" }, event: { name: "WELCOME", languageCode: "en" } },
      }),
    ).toBe("Invalid JSON payload received. Oneof field 'input' is already set. Cannot set 'event'");
    expect(await send("{")).toBe("Invalid JSON payload received. Unexpected token.");
    // Proto names are accepted as well as JSON names.
    expect(
      (
        await detect(
          agent.detectIntentUrl(session()),
          { query_input: { text: { text: "hi", language_code: "en" } } },
          bearer,
        )
      ).status,
    ).toBe(200);
  });

  it("answers Google's HTML 404 for another path or method", async () => {
    const agent = df.esAgent({ projectId: "es-paths" });
    const wrongVerb = await detect(
      agent.detectIntentUrl("s").replace(":detectIntent", ":matchIntent"),
      esText("hi"),
      bearer,
    );
    expect(wrongVerb.status).toBe(404);
    expect(wrongVerb.headers.get("content-type")).toMatch(/^text\/html/);
    expect(wrongVerb.text).toContain("That’s an error.");
    const get = await fetch(agent.detectIntentUrl("s"), { headers: { authorization: `Bearer ${bearer}` } });
    expect(get.status).toBe(404);
    const encoded = await detect(
      agent.detectIntentUrl("s").replace(":detectIntent", "%3AdetectIntent"),
      esText("hi"),
      bearer,
    );
    expect(encoded.status).toBe(200);
  });
});

describe("Dialogflow CX detectIntent", () => {
  let bearer: string;
  beforeAll(async () => {
    bearer = await token();
  });

  it("answers a matched route with responseMessages, a live-agent hand-off and the session's parameters", async () => {
    const agent = df.cxAgent({ projectId: "cx-basic", location: "europe-west1", agentId: "4f6c1c1e-agent" });
    agent.intent({
      displayName: "talk_to_agent",
      phrases: ["agent please"],
      parameters: { handoff: true },
      page: "Handoff",
      replies: [
        { text: "Transferring you to a specialist." },
        { chips: ["Billing"] },
        { liveAgentHandoff: { queue: "billing", reason: "user_request" } },
      ],
    });
    const id = session();
    const url = agent.detectIntentUrl(id);
    expect(url).toBe(
      `${df.url}/v3/projects/cx-basic/locations/europe-west1/agents/4f6c1c1e-agent/sessions/${id}:detectIntent`,
    );
    const res = await detect(
      url,
      { ...cxText("Agent please"), queryParams: { parameters: { customer: "Ola" }, timeZone: "Europe/Oslo" } },
      bearer,
    );
    expect(res.status).toBe(200);
    const intentRef = {
      name: expect.stringMatching(
        /^projects\/cx-basic\/locations\/europe-west1\/agents\/4f6c1c1e-agent\/intents\//,
      ) as string,
      displayName: "talk_to_agent",
    };
    expect(res.json).toEqual({
      responseId: expect.any(String) as string,
      queryResult: {
        text: "Agent please",
        languageCode: "en",
        parameters: { customer: "Ola", handoff: true },
        responseMessages: [
          { text: { text: ["Transferring you to a specialist."] } },
          { payload: { richContent: [[{ type: "chips", options: [{ text: "Billing" }] }]] } },
          { liveAgentHandoff: { metadata: { queue: "billing", reason: "user_request" } } },
        ],
        currentPage: {
          name: expect.stringContaining("/flows/00000000-0000-0000-0000-000000000000/pages/") as string,
          displayName: "Handoff",
        },
        intent: intentRef,
        intentDetectionConfidence: 1,
        match: {
          intent: intentRef,
          parameters: { handoff: true },
          resolvedInput: "Agent please",
          matchType: "INTENT",
          confidence: 1,
        },
        diagnosticInfo: { "Session Id": id },
      },
    });
    expect(df.sessionParameters(agent, id)).toEqual({ customer: "Ola", handoff: true });
    expect(df.calls().at(-1)).toMatchObject({
      edition: "cx",
      agentId: "4f6c1c1e-agent",
      location: "europe-west1",
      languageCode: "en",
      queryParams: { parameters: { customer: "Ola" }, timeZone: "Europe/Oslo" },
    });
  });

  it("answers no-match, an event, and ends the session", async () => {
    const agent = df.cxAgent({ projectId: "cx-events" });
    agent.intent({
      displayName: "bye",
      events: ["liaison_agent_closed"],
      replies: [{ text: "Bye!" }],
      endInteraction: true,
    });
    const id = session();
    const noMatch = await detect(agent.detectIntentUrl(id), cxText("blorp"), bearer);
    expect(noMatch.json?.queryResult).toMatchObject({
      text: "blorp",
      responseMessages: [{ text: { text: ["I didn't get that. Can you say it again?"] } }],
      currentPage: { displayName: "Start Page" },
      match: { resolvedInput: "blorp", matchType: "NO_MATCH" },
    });
    const closed = await detect(
      agent.detectIntentUrl(id),
      { queryInput: { event: { event: "liaison_agent_closed" }, languageCode: "en" } },
      bearer,
    );
    expect(closed.json?.queryResult).toMatchObject({
      triggerEvent: "liaison_agent_closed",
      responseMessages: [{ text: { text: ["Bye!"] } }, { endInteraction: {} }],
      currentPage: { displayName: "End Session" },
      match: { event: "liaison_agent_closed", matchType: "EVENT" },
    });
    expect((closed.json?.queryResult as Json).intent).toBeUndefined();
    // A new conversation starts on the start page.
    const again = await detect(agent.detectIntentUrl(id), cxText("blorp"), bearer);
    expect(again.json?.queryResult).toMatchObject({ currentPage: { displayName: "Start Page" } });
  });

  it("refuses the ES shape and a missing language", async () => {
    const agent = df.cxAgent({ projectId: "cx-input" });
    const es = await detect(agent.detectIntentUrl(session()), esText("hi"), bearer);
    expect(es.status).toBe(400);
    expect(es.json).toMatchObject({
      error: {
        message:
          "Invalid JSON payload received. Unknown name \"languageCode\" at 'query_input.text': Cannot find field.",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            fieldViolations: [{ field: "query_input.text" }],
          },
        ],
      },
    });
    const noLanguage = await detect(agent.detectIntentUrl(session()), { queryInput: { text: { text: "hi" } } }, bearer);
    expect(noLanguage.json).toMatchObject({ error: { code: 400, message: "Language code is not set." } });
    const long = await detect(agent.detectIntentUrl(session()), cxText("y".repeat(257)), bearer);
    expect(long.json).toMatchObject({ error: { message: "Input text exceeds 256 characters." } });
    expect(() => agent.intent({ displayName: "x", replies: [{ quickReplies: ["a"] }] })).toThrow(/CX has no/);
  });

  it("answers 404 for an agent it does not have", async () => {
    const res = await detect(
      `${df.url}/v3/projects/cx-none/locations/global/agents/nope/sessions/s:detectIntent`,
      cxText("hi"),
      bearer,
    );
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: { status: "NOT_FOUND" } });
  });
});

describe("outages", () => {
  let bearer: string;
  beforeAll(async () => {
    bearer = await token();
  });

  it("answers injected statuses with Google's bodies, Retry-After only when asked", async () => {
    const agent = df.esAgent({ projectId: "outage" });
    df.failNext(1, { status: 429, retryAfterSeconds: 30 });
    const limited = await detect(agent.detectIntentUrl("s"), esText("hi"), bearer);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("30");
    expect(limited.json).toMatchObject({ error: { code: 429, status: "RESOURCE_EXHAUSTED" } });
    df.failNext(2, { status: 503 });
    const unavailable = await detect(agent.detectIntentUrl("s"), esText("hi"), bearer);
    expect(unavailable.json).toEqual({
      error: { code: 503, message: "The service is currently unavailable.", status: "UNAVAILABLE" },
    });
    expect(unavailable.headers.get("retry-after")).toBeNull();
    expect((await detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).status).toBe(503);
    expect((await detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).status).toBe(200);

    df.failNext(1, { status: 500, target: "token" });
    const tokenDown = await tokenRequest({
      grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
      assertion: assertion(),
    });
    expect(tokenDown.status).toBe(500);
    expect((await detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).status).toBe(200);
  });

  it("stays down until it comes up: an HTTP status, refused, reset or hung connections", async () => {
    const agent = df.esAgent({ projectId: "outage-2" });
    await df.goDown({ status: 503 });
    expect((await detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).status).toBe(503);
    await df.goDown("refuse");
    // A pooled connection may first fail as closed; a new one is refused.
    await expect(detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).rejects.toThrow();
    await expect(detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).rejects.toMatchObject({
      cause: { code: "ECONNREFUSED" },
    });
    await df.goDown("reset");
    await expect(detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).rejects.toThrow();
    await df.goDown("hang");
    await expect(
      detect(agent.detectIntentUrl("s"), esText("hi"), bearer, { signal: AbortSignal.timeout(150) }),
    ).rejects.toThrow();
    await df.comeUp();
    expect((await detect(agent.detectIntentUrl("s"), esText("hi"), bearer)).status).toBe(200);
  });
});
