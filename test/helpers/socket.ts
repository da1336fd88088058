import { io, type Socket } from "socket.io-client";
import type { ConversationInfo, InitResponse, Message } from "../../protocol/index.js";

export const EVENT_TIMEOUT_MS = 5_000;

/** A raw socket.io-client connected to the app (WebSocket only, no reconnection unless asked). */
export async function connect(url: string, options: { apiKey?: string; reconnection?: boolean } = {}): Promise<Socket> {
  const socket = io(url, {
    transports: ["websocket"],
    reconnection: options.reconnection ?? false,
    forceNew: true,
    ...(options.apiKey === undefined ? {} : { auth: { apiKey: options.apiKey } }),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
  });
  return socket;
}

/** Emits and resolves with the ack; fails the test if none comes in time. */
export function request<T = Record<string, unknown>>(socket: Socket, event: string, ...args: unknown[]): Promise<T> {
  return socket.timeout(EVENT_TIMEOUT_MS).emitWithAck(event, ...args) as Promise<T>;
}

/** Resolves with the next `event` (matching `predicate`), or rejects after the timeout. */
export function nextEvent<T = unknown>(
  socket: Socket,
  event: string,
  predicate: (value: T) => boolean = () => true,
  timeoutMs = EVENT_TIMEOUT_MS,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (value: T) => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(value);
    };
    socket.on(event, listener);
  });
}

/** Records every `messageArrived`; `waitFor(n)` resolves once n have arrived. */
export function collectMessages(socket: Socket): {
  messages: Message[];
  waitFor(count: number, timeoutMs?: number): Promise<Message[]>;
} {
  const messages: Message[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  socket.on("messageArrived", (message: Message, ack?: (res: { ok: true }) => void) => {
    messages.push(message);
    ack?.({ ok: true });
    for (const waiter of waiters.filter((w) => messages.length >= w.count)) waiter.resolve();
  });
  return {
    messages,
    waitFor(count, timeoutMs = EVENT_TIMEOUT_MS) {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} messages, got ${messages.length}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(messages);
          },
        });
      });
    },
  };
}

/** POSTs JSON and returns status, headers and parsed body. */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: unknown }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: return the text
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/**
 * A web customer who started a conversation (`POST /api/customer/init`) and joined it with its token. `inbox` holds
 * what the customer sees: the history the join brought, then every live message. The caller closes `socket`.
 */
export async function webCustomer(url: string, body: Record<string, string> = {}) {
  const init = (
    await postJson(`${url}/api/customer/init`, {
      firstName: "Sara",
      lastName: "Khan",
      channel: "web",
      email: "sara@example.org",
      ...body,
    })
  ).body as InitResponse;
  const socket = await connect(url);
  const inbox = collectMessages(socket);
  const info = nextEvent<ConversationInfo>(socket, "conversationInfo");
  await request(socket, "joinConversation", {
    conversationId: init.conversationId,
    id: init.participant.id,
    name: "Sara",
    token: init.token,
  });
  inbox.messages.unshift(...(await info).messages);
  const send = (text: string, extra: Record<string, unknown> = {}) =>
    request<{ ok: boolean; seq?: number }>(socket, "sendMessage", {
      conversationId: init.conversationId,
      text,
      ...extra,
    });
  return { init, socket, inbox, send };
}
