import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { GmsCallRecord } from "./types.js";

/*
 * The platform's calls to Liaison's channel webhook: `POST {channel webhook URL}/{method}` with a JSON body and, when
 * the channel has a token, `Authorization: Token <token>`. A call fails when the answer is not a 2xx, is not JSON, or
 * carries `error` (the vendor's own sample client for this protocol judges answers that way, and does not retry).
 */

export interface CallSettings {
  channelUrl: string | undefined;
  channelToken: string | undefined;
  timeoutMs: number;
  retry: { attempts: number; delayMs: number } | undefined;
}

interface Answer {
  status: number;
  contentType: string | undefined;
  text: string;
}

export class Caller {
  readonly records: GmsCallRecord[] = [];
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true });
  private readonly abort = new AbortController();
  /** Pending sleeps: closing ends them at once, so that nothing waits on a closed fake. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();

  constructor(private readonly settings: () => CallSettings) {}

  /** One call with the configured retries; resolves with every attempt's record. */
  async call(method: string, body: unknown, chatId: number | undefined): Promise<GmsCallRecord[]> {
    const made: GmsCallRecord[] = [];
    const { retry } = this.settings();
    const attempts = 1 + Math.max(0, retry?.attempts ?? 0);
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (attempt > 1) await this.sleep(retry?.delayMs ?? 0);
      if (this.abort.signal.aborted) break;
      const record = await this.attempt(method, body, chatId, attempt);
      made.push(record);
      if (record.outcome === "ok" || record.failure === "not-configured") break;
    }
    return made;
  }

  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  close(): void {
    this.abort.abort();
    for (const [timer, resolve] of this.timers) {
      clearTimeout(timer);
      resolve();
    }
    this.timers.clear();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async attempt(method: string, body: unknown, chatId: number | undefined, attempt: number) {
    const { channelUrl, channelToken, timeoutMs } = this.settings();
    const url = channelUrl === undefined ? "" : `${channelUrl.replace(/\/$/, "")}/${method}`;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (channelToken !== undefined) headers.authorization = `Token ${channelToken}`;
    const record: GmsCallRecord = {
      seq: this.records.length + 1,
      at: Date.now(),
      chatId,
      method,
      url,
      headers,
      body,
      attempt,
      status: 0,
      responseText: "",
      outcome: "failed",
    };
    this.records.push(record);
    if (channelUrl === undefined) {
      record.failure = "not-configured";
      record.error = "the channel has no webhook URL";
      return record;
    }
    try {
      const answer = await this.post(url, headers, JSON.stringify(body), timeoutMs);
      record.status = answer.status;
      record.responseText = answer.text;
      if (answer.contentType !== undefined) record.responseContentType = answer.contentType;
      judge(record);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      record.failure = message.startsWith("timeout") ? "timeout" : "network";
      record.error = message;
    }
    return record;
  }

  private post(url: string, headers: Record<string, string>, payload: string, timeoutMs: number): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const secure = target.protocol === "https:";
      const req = (secure ? httpsRequest : httpRequest)(target, {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(payload)) },
        agent: secure ? this.httpsAgent : this.httpAgent,
        signal: this.abort.signal,
      });
      const timer = setTimeout(() => req.destroy(new Error(`timeout: no answer within ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      req.once("error", fail);
      req.once("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.once("error", fail);
        res.once("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], text });
        });
      });
      req.end(payload);
    });
  }
}

/** A JSON answer needs a JSON media type too: the sample client's `response.json()` refuses any other. */
function judge(record: GmsCallRecord): void {
  let json: unknown;
  try {
    json = JSON.parse(record.responseText);
    record.responseJson = json;
  } catch {
    json = undefined;
  }
  if (!/^application\/json\b/i.test(record.responseContentType ?? "")) json = undefined;
  if (record.status < 200 || record.status > 299) record.failure = "status";
  else if (json === undefined) record.failure = "not-json";
  else if (typeof json === "object" && json !== null && "error" in json) record.failure = "error-body";
  else record.outcome = "ok";
}
