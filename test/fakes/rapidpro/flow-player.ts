import { Agent as HttpAgent, request as httpRequest } from "node:http";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createGunzip } from "node:zlib";
import type { FakeState } from "./state.js";
import { attachmentJson, preferredUrn } from "./state.js";
import type { RpFlowRef, WebhookCallOptions, WebhookCallResult } from "./types.js";
import { parseUrn } from "./urns.js";
import { formatMicros, snakify, sortedJson, truncateCodePoints, uuid4, uuid7 } from "./util.js";

/** `mailroom core/goflow/engine.go`: `maxValueLength`, `WithWebhookLimits(256*1024, …)`. */
const MAX_RESULT_CHARS = 640;
const MAX_REQUEST_BYTES = 256 * 1024;
const MAX_RESPONSE_BYTES = 256 * 1024;
/** `goflow flows/engine/run.go` `persistWebhookBytesLimit`. */
const PERSIST_WEBHOOK_BYTES = 10_000;
const DEFAULT_TIMEOUT_MS = 15_000;
const MAX_REDIRECTS = 10;
export const MAILROOM_USER_AGENT = "Mailroom/26.1";
/** A "wait for response" with no rules puts everything in this category. */
export const DEFAULT_CATEGORY = "All Responses";
const DEFAULT_FLOW: RpFlowRef = { uuid: "5f7c3a6e-1b2d-4c8e-9f0a-6b5c4d3e2f10", name: "Live Agents" };

interface ResultEntry {
  key: string;
  name: string;
  value: string;
  input: string;
  category: string;
}

/**
 * Plays mailroom's `call_webhook`: builds the body a flow's template produces, sends it with mailroom's headers,
 * waits at most 15 s, never retries, caps the response at 256 KiB and parses it as JSON whatever its type.
 * One call per contact at a time: a contact's session is locked while its webhook runs.
 */
export class FlowPlayer {
  private readonly locks = new Map<string, Promise<void>>();
  private readonly httpAgent = new HttpAgent({ keepAlive: false });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: false });

  constructor(private readonly state: FakeState) {}

  callWebhook(url: string, options: WebhookCallOptions): Promise<WebhookCallResult> {
    const key = options.contact.uuid.toLowerCase();
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(() => this.call(url, options));
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return run;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** The body exactly as the flow's template would render it (keys sorted, as goflow's `json()` does). */
  buildBody(options: WebhookCallOptions): string {
    const known = this.state.contacts.get(options.contact.uuid.toLowerCase());
    const urn = options.contact.urn !== undefined ? options.contact.urn : known ? preferredUrn(known) : null;
    const flow = options.flow ?? [...this.state.flows.values()][0] ?? DEFAULT_FLOW;
    const results = resultEntries(options.results ?? {});
    switch (options.shape) {
      case "default":
        return sortedJson({
          contact: { uuid: options.contact.uuid, name: options.contact.name, urn },
          flow: { uuid: flow.uuid, name: flow.name },
          results: Object.fromEntries(results.map((r) => [r.key, { value: r.value, category: r.category }])),
        });
      case "custom": {
        const body: Record<string, unknown> = {
          contact: { name: options.contact.name, uuid: options.contact.uuid },
          results: Object.fromEntries(results.map((r) => [r.key, { value: r.value }])),
        };
        if (options.department !== undefined) body.department = options.department;
        if (options.input)
          body.input = { text: options.input.text, attachments: [...(options.input.attachments ?? [])] };
        return sortedJson(body);
      }
      case "legacy":
        return sortedJson(this.legacyBody(options, urn, flow, results, known?.language ?? null));
    }
  }

  /** goflow `legacyWebhookPayload` / `ResthookPayload` (§1.3). */
  private legacyBody(
    options: WebhookCallOptions,
    urn: string | null,
    flow: RpFlowRef,
    results: ResultEntry[],
    knownLanguage: string | null,
  ): Record<string, unknown> {
    const clock = this.state.clock;
    const runCreated = clock.now();
    const waitNode = uuid4();
    const webhookNode = uuid4();
    const arrivedWait = clock.now();
    const inputCreated = clock.now();
    const arrivedWebhook = clock.now();
    const channel = {
      address: this.state.channel.address,
      name: this.state.channel.name,
      uuid: this.state.channel.uuid,
    };
    const parsed = urn === null ? undefined : parseUrn(urn);
    const input = options.input
      ? {
          attachments: (options.input.attachments ?? []).map((a) => attachmentJson(a)),
          channel,
          created_on: formatMicros(inputCreated),
          text: options.input.text,
          type: "msg",
          urn: parsed ? { display: parsed.display, path: parsed.path, scheme: parsed.scheme } : null,
          uuid: uuid7(),
        }
      : null;
    return {
      channel: input ? channel : null,
      contact: {
        language: options.contact.language ?? knownLanguage,
        name: options.contact.name,
        urn,
        uuid: options.contact.uuid,
      },
      flow: { name: flow.name, revision: 1, uuid: flow.uuid },
      input,
      path: [
        { arrived_on: formatMicros(arrivedWait), node_uuid: waitNode },
        { arrived_on: formatMicros(arrivedWebhook), node_uuid: webhookNode },
      ],
      results: Object.fromEntries(
        results.map((r) => [
          r.key,
          {
            category: r.category,
            category_localized: r.category,
            created_on: formatMicros(inputCreated),
            input: r.input,
            name: r.name,
            node_uuid: waitNode,
            value: r.value,
          },
        ]),
      ),
      run: { created_on: formatMicros(runCreated), uuid: uuid7() },
    };
  }

  private async call(url: string, options: WebhookCallOptions): Promise<WebhookCallResult> {
    const started = performance.now();
    const requestBody = this.buildBody(options);
    const requestHeaders = webhookHeaders(options);
    const result = (partial: Partial<WebhookCallResult>): WebhookCallResult => ({
      status: 0,
      json: null,
      text: "",
      headers: {},
      keptAcrossWait: false,
      requestBody,
      requestHeaders,
      ...partial,
      elapsedMs: performance.now() - started,
    });
    const size =
      Buffer.byteLength(requestBody) +
      Buffer.byteLength(url) +
      Object.entries(requestHeaders).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    if (size > MAX_REQUEST_BYTES) return result({});

    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    let method = (options.method ?? "POST").toUpperCase();
    let body: string | undefined = requestBody;
    let target = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
      const response = await this.send(target, method, requestHeaders, body, deadline);
      if (response.kind === "error") return result({});
      const { status, headers, raw } = response;
      const location = headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location !== undefined && hop < MAX_REDIRECTS) {
        target = new URL(location, target).toString();
        if (status === 303 || ((status === 301 || status === 302) && method === "POST")) {
          method = method === "HEAD" ? "HEAD" : "GET";
          body = undefined;
        }
        continue;
      }
      const text = new TextDecoder("utf-8").decode(raw);
      const json = extractJson(raw);
      return result({
        status,
        headers,
        text,
        json,
        keptAcrossWait: json !== null && raw.length <= PERSIST_WEBHOOK_BYTES,
      });
    }
    return result({});
  }

  private send(
    target: string,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    deadline: number,
  ): Promise<{ kind: "error" } | { kind: "response"; status: number; headers: Record<string, string>; raw: Buffer }> {
    return new Promise((resolve) => {
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        resolve({ kind: "error" });
        return;
      }
      const isHttps = url.protocol === "https:";
      if (!isHttps && url.protocol !== "http:") {
        resolve({ kind: "error" });
        return;
      }
      const outgoing: OutgoingHttpHeaders = { ...headers, "Accept-Encoding": "gzip" };
      if (body === undefined) {
        for (const key of Object.keys(outgoing)) if (key.toLowerCase() === "content-type") delete outgoing[key];
      } else {
        outgoing["Content-Length"] = String(Buffer.byteLength(body));
      }
      let finished = false;
      const finish = (value: Parameters<typeof resolve>[0]): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve(value);
      };
      const req = (isHttps ? httpsRequest : httpRequest)(url, {
        method,
        headers: outgoing,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
      });
      const timer = setTimeout(
        () => {
          req.destroy(new Error("timeout"));
          finish({ kind: "error" });
        },
        Math.max(0, deadline - Date.now()),
      );
      req.on("error", () => finish({ kind: "error" }));
      req.on("response", (res: IncomingMessage) => {
        const stream =
          (res.headers["content-encoding"] ?? "").toLowerCase() === "gzip" ? res.pipe(createGunzip()) : res;
        const chunks: Buffer[] = [];
        let size = 0;
        stream.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy();
            finish({ kind: "error" });
            return;
          }
          chunks.push(chunk);
        });
        stream.on("error", () => finish({ kind: "error" }));
        stream.on("end", () => {
          const flat: Record<string, string> = {};
          for (const [key, value] of Object.entries(res.headers)) {
            if (value !== undefined) flat[key] = Array.isArray(value) ? value.join(", ") : value;
          }
          finish({ kind: "response", status: res.statusCode ?? 0, headers: flat, raw: Buffer.concat(chunks) });
        });
      });
      req.end(body);
    });
  }
}

/** Result keys snakified, values cut to 640 characters (the input keeps the whole text). */
function resultEntries(results: NonNullable<WebhookCallOptions["results"]>): ResultEntry[] {
  return Object.entries(results).map(([name, result]) => {
    const value = typeof result === "string" ? result : result.value;
    const category = typeof result === "string" ? DEFAULT_CATEGORY : (result.category ?? DEFAULT_CATEGORY);
    return { key: snakify(name), name, value: truncateCodePoints(value, MAX_RESULT_CHARS), input: value, category };
  });
}

/** The author's headers (editor defaults: Accept and Content-Type JSON) plus mailroom's, unless the author set them. */
export function webhookHeaders(options: WebhookCallOptions): Record<string, string> {
  const headers: Record<string, string> = {
    Accept: "application/json",
    "Content-Type": "application/json",
    ...options.headers,
  };
  if (options.contentType === "none") {
    for (const key of Object.keys(headers)) if (key.toLowerCase() === "content-type") delete headers[key];
  }
  const has = (name: string): boolean => Object.keys(headers).some((key) => key.toLowerCase() === name.toLowerCase());
  if (!has("User-Agent")) headers["User-Agent"] = MAILROOM_USER_AGENT;
  if (!has("X-Mailroom-Mode")) headers["X-Mailroom-Mode"] = options.simulation ? "simulation" : "normal";
  return headers;
}

/** goflow `ExtractJSON`: drop invalid UTF-8 and NULs, then parse; null when it is not JSON. */
function extractJson(raw: Buffer): unknown {
  const text = new TextDecoder("utf-8", { fatal: false })
    .decode(raw)
    .replace(/\uFFFD/g, "")
    .replaceAll(String.fromCharCode(0), "");
  if (text.trim() === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
