import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody, startFakeServer } from "../../helpers/fake-server.js";
import { Caller } from "./caller.js";
import type {
  FakeGms,
  FakeGmsOptions,
  GmsAction,
  GmsBotInput,
  GmsCallRecord,
  GmsChat,
  GmsChatState,
  GmsFileCheck,
  GmsInjectedFailure,
  GmsMatcher,
  GmsWebhookRecord,
} from "./types.js";
import { validateEvent } from "./validate.js";

export type * from "./types.js";

const WEBHOOK_PATH = /^\/connector\/omnichannel\/omnichannel_message\/([^/]+)\/bot_api_webhook$/;
const NO_ACTIVE_CHANNEL = { error: "There is no active channel for received event." };
/** A body cap of our own: the platform's is not documented. */
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_FILE_CHECK_BYTES = 50 * 1024 * 1024;

interface ChatState {
  chatId: number;
  visitorIds: string[];
  state: GmsChatState;
  messageIds: Set<string>;
  /** The chat's work (replies) runs in order, one event after the other. */
  queue: Promise<void>;
}

/**
 * Starts a fake GMS chatbots platform (the "Omnichannel" connector, playing the bot) on 127.0.0.1 and a free port.
 * It receives Liaison's `bot_api_webhook` events as strictly as the platform documents, answers them, and calls
 * Liaison back as scripted; see README.md.
 */
export async function startFakeGms(options: FakeGmsOptions = {}): Promise<FakeGms> {
  const token = options.token ?? randomBytes(16).toString("hex");
  let active = options.active ?? true;
  let channelUrl = options.channelWebhookUrl;
  let channelToken = options.channelToken;
  let replyDelayMs = options.replyDelayMs ?? 0;
  let answerDelayMs = options.answerDelayMs ?? 0;
  let retry = options.retry;
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  const checkFiles = options.checkFiles ?? true;

  const caller = new Caller(() => ({ channelUrl, channelToken, timeoutMs: callTimeoutMs, retry }));
  const received: GmsWebhookRecord[] = [];
  const chats = new Map<number, ChatState>();
  const rules: { match: GmsMatcher; actions: GmsAction[] }[] = [];
  let fallback: GmsAction[] = [];
  const pending = new Set<Promise<unknown>>();
  let failure: (GmsInjectedFailure & { count: number }) | undefined;
  let httpOutage: GmsInjectedFailure | undefined;
  let closed = false;

  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    void work.then(
      () => pending.delete(work),
      () => pending.delete(work),
    );
    return work;
  };

  const chatFor = (chatId: number): ChatState => {
    let chat = chats.get(chatId);
    if (!chat) {
      chat = { chatId, visitorIds: [], state: "bot", messageIds: new Set(), queue: Promise.resolve() };
      chats.set(chatId, chat);
    }
    return chat;
  };

  const bodyOf = (chatId: number, action: GmsAction): { method: string; body: Record<string, unknown> } => {
    switch (action.kind) {
      case "text":
        return { method: "send_message", body: { chat_id: chatId, message: { kind: "operator", text: action.text } } };
      case "keyboard":
        return {
          method: "send_message",
          body: {
            chat_id: chatId,
            message: {
              kind: "keyboard",
              ...(action.text === undefined ? {} : { text: action.text }),
              buttons: action.buttons,
            },
          },
        };
      case "file":
        return {
          method: "send_message",
          body: {
            chat_id: chatId,
            message: {
              kind: "file_operator",
              data: { url: action.url, name: action.name, media_type: action.mediaType },
            },
          },
        };
      case "redirect":
        return {
          method: "redirect_chat",
          body: {
            chat_id: chatId,
            ...(action.depKey === undefined ? {} : { dep_key: action.depKey }),
            ...(action.operatorId === undefined ? {} : { operator_id: action.operatorId }),
          },
        };
      case "close":
        return { method: "close_chat", body: { chat_id: chatId } };
    }
  };

  /** The bot's actions for one chat, in order; a failed call does not stop the next (as in the vendor's sample). */
  const perform = async (chat: ChatState, actions: GmsAction[], initialDelayMs: number) => {
    const made: GmsCallRecord[] = [];
    await caller.sleep(initialDelayMs);
    for (const action of actions) {
      if (closed) break;
      await caller.sleep(action.delayMs ?? 0);
      const { method, body } = bodyOf(chat.chatId, action);
      const attempts = await caller.call(method, body, chat.chatId);
      made.push(...attempts);
      if (attempts.at(-1)?.outcome === "ok") {
        if (action.kind === "redirect") chat.state = "redirected";
        if (action.kind === "close") chat.state = "closed";
      }
    }
    return made;
  };

  const enqueue = (chat: ChatState, actions: GmsAction[], initialDelayMs: number): Promise<GmsCallRecord[]> => {
    const run = chat.queue.then(() => perform(chat, actions, initialDelayMs));
    chat.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return track(run);
  };

  const actionsFor = (input: GmsBotInput): GmsAction[] => {
    for (const rule of rules) {
      const { match } = rule;
      const hit =
        typeof match === "string"
          ? match === input.text
          : match instanceof RegExp
            ? match.test(input.text)
            : match(input);
      if (hit) return rule.actions;
    }
    return fallback;
  };

  const checkFile = async (record: GmsWebhookRecord, url: string) => {
    const check: GmsFileCheck = { status: 0 };
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(callTimeoutMs), redirect: "follow" });
      check.status = response.status;
      const type = response.headers.get("content-type");
      if (type !== null) check.contentType = type;
      const content = Buffer.from(await response.arrayBuffer());
      if (content.length <= MAX_FILE_CHECK_BYTES) {
        check.size = content.length;
        check.sha256 = createHash("sha256").update(content).digest("hex");
      }
    } catch (error) {
      check.error = error instanceof Error ? error.message : String(error);
    }
    record.fileCheck = check;
  };

  const answer = (res: ServerResponse, status: number, body: unknown, record: GmsWebhookRecord) => {
    const send = () => {
      record.status = status;
      if (res.destroyed) {
        record.status = 0;
        return;
      }
      if (typeof body === "string") res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
      else res.writeHead(status, { "content-type": "application/json" });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    if (answerDelayMs > 0) void track(caller.sleep(answerDelayMs).then(send));
    else send();
  };

  const injected = (res: ServerResponse, fail: GmsInjectedFailure, record: GmsWebhookRecord) => {
    const headers: Record<string, string> = {};
    if (fail.retryAfterSeconds !== undefined) headers["retry-after"] = String(fail.retryAfterSeconds);
    record.outcome = "refused";
    record.reason = `injected ${fail.status}`;
    record.status = fail.status;
    // The platform's own error pages are not documented: a proxy-style page stands in for them.
    res.writeHead(fail.status, { "content-type": "text/html; charset=utf-8", ...headers });
    res.end(`<html><body><h1>${fail.status}</h1></body></html>`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const raw = await readBody(req, MAX_BODY_BYTES);
    const record: GmsWebhookRecord = {
      seq: received.length + 1,
      at: Date.now(),
      method: req.method ?? "",
      path: url.pathname,
      headers: req.headers,
      raw: raw?.toString("utf8") ?? "",
      status: 0,
      outcome: "refused",
    };
    received.push(record);
    if (httpOutage) {
      injected(res, httpOutage, record);
      return;
    }
    const route = WEBHOOK_PATH.exec(url.pathname);
    if (!route) {
      record.reason = "unknown path";
      answer(res, 404, "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>", record);
      return;
    }
    if (failure && failure.count > 0) {
      failure.count -= 1;
      injected(res, failure, record);
      return;
    }
    if (req.method !== "POST") {
      record.reason = "method not allowed";
      res.setHeader("allow", "POST");
      answer(res, 405, "<h1>Method Not Allowed</h1>", record);
      return;
    }
    if (raw === undefined) {
      record.reason = "body too large";
      answer(res, 413, "<h1>Request Entity Too Large</h1>", record);
      return;
    }
    if (!active || decodeURIComponent(route[1] ?? "") !== token) {
      record.reason = active ? "wrong token" : "channel inactive";
      answer(res, 400, NO_ACTIVE_CHANNEL, record);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(record.raw);
      record.body = body;
    } catch {
      record.reason = "body is not JSON";
      answer(res, 500, "<h1>Server Error (500)</h1>", record);
      return;
    }
    const verdict = validateEvent(body);
    switch (verdict.kind) {
      case "missing":
        record.reason = verdict.reason;
        // The vendor gives the status only; this body is the fake's.
        answer(res, 400, { error: verdict.reason }, record);
        return;
      case "malformed":
        record.reason = verdict.reason;
        answer(res, 500, "<h1>Server Error (500)</h1>", record);
        return;
      case "ignore":
        Object.assign(record, stripUndefined(verdict.partial), { outcome: "ignored", reason: verdict.reason });
        answer(res, 200, {}, record);
        return;
      case "accept":
        break;
    }
    const input = verdict.input;
    const chat = chatFor(input.chatId);
    Object.assign(record, {
      chatId: input.chatId,
      visitorId: input.visitorId,
      messageId: input.messageId,
      kind: input.kind,
      text: input.text,
      fields: input.fields,
      chatState: chat.state,
    });
    if (!chat.visitorIds.includes(input.visitorId)) chat.visitorIds.push(input.visitorId);
    if (chat.messageIds.has(input.messageId)) {
      record.outcome = "duplicate";
      answer(res, 200, {}, record);
      return;
    }
    chat.messageIds.add(input.messageId);
    record.outcome = "accepted";
    if (input.kind === "file_visitor" && checkFiles) {
      void track(checkFile(record, String(input.data?.url)));
    }
    // The platform is asynchronous: the bot replies with calls of its own, whenever the webhook's answer arrives.
    answer(res, 200, {}, record);
    void enqueue(chat, actionsFor(input), replyDelayMs);
  };

  const server = await startFakeServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });

  const publicChat = (chat: ChatState): GmsChat => ({
    chatId: chat.chatId,
    visitorIds: [...chat.visitorIds],
    state: chat.state,
    heard: received.filter((r) => r.outcome === "accepted" && r.chatId === chat.chatId),
    calls: caller.records.filter((c) => c.chatId === chat.chatId),
  });

  const fake: FakeGms = {
    url: server.url,
    webhookUrl: `${server.url}/connector/omnichannel/omnichannel_message/${token}/bot_api_webhook`,
    token,
    async close() {
      if (closed) return;
      closed = true;
      caller.close();
      await server.close();
    },
    setChannel(settings) {
      if (settings.webhookUrl !== undefined) channelUrl = settings.webhookUrl;
      if (settings.token !== undefined) channelToken = settings.token ?? undefined;
      if (settings.active !== undefined) active = settings.active;
    },
    setReplyDelay(ms) {
      replyDelayMs = ms;
    },
    setAnswerDelay(ms) {
      answerDelayMs = ms;
    },
    setRetry(value) {
      retry = value;
    },
    reply(match, actions) {
      rules.push({ match, actions });
    },
    otherwise(actions) {
      fallback = actions;
    },
    say(chatId, actions) {
      const chat = chats.get(chatId);
      if (!chat) return Promise.reject(new Error(`the platform knows no chat ${chatId}`));
      return enqueue(chat, actions, 0);
    },
    async call(method, body) {
      const chatId =
        typeof body === "object" && body !== null && "chat_id" in body && typeof body.chat_id === "number"
          ? body.chat_id
          : undefined;
      const attempts = await track(caller.call(method, body, chatId));
      return attempts.at(-1) as GmsCallRecord;
    },
    received: () => [...received],
    heard: (chatId) =>
      received.filter((r) => r.outcome === "accepted" && (chatId === undefined || r.chatId === chatId)),
    calls: () => [...caller.records],
    chat(chatId) {
      const chat = chats.get(chatId);
      return chat ? publicChat(chat) : undefined;
    },
    chats: () => [...chats.values()].map(publicChat),
    async whenIdle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
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

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
