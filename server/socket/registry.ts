import type { z } from "zod";
import type { ErrorInfo } from "../../protocol/index.js";
import { GatewayError, invalidPayload } from "../core/errors.js";
import type { Logger } from "../logger.js";
import type { AppSocket } from "./types.js";

/** A handler may return this key with work to do right after its ack has been sent (e.g. `conversationInfo`). */
export const AFTER_ACK = Symbol("afterAck");

/** The success ack itself (sent as it is: no copy on the message path), plus optional work after it. */
export type HandlerResult = { ok: true } & Record<string, unknown> & { [AFTER_ACK]?: () => void };

/** A handler: receives validated input only, returns its success ack or throws a GatewayError. */
export interface EventHandler<Schema extends z.ZodType, Context> {
  event: string;
  schema: Schema;
  handle(context: Context, payload: z.output<Schema>): Promise<HandlerResult>;
}

export const defineHandler = <Schema extends z.ZodType, Context>(
  handler: EventHandler<Schema, Context>,
): EventHandler<Schema, Context> => handler;

type Ack = (response: { ok: true } | { ok: false; error: ErrorInfo }) => void;

/** The handler table of a server: built once, shared by every socket. */
export class HandlerTable<Context> {
  readonly byEvent: ReadonlyMap<string, EventHandler<z.ZodType, Context>>;

  constructor(handlers: readonly EventHandler<z.ZodType, Context>[]) {
    this.byEvent = new Map(handlers.map((handler) => [handler.event, handler]));
  }
}

/**
 * The one path every client event takes: size cap → zod → handler → ack. Events of one socket run one after
 * another, so a client's messages are recorded in the order it sent them. An unexpected throw is logged with its
 * stack and answered `internal`; the socket and the server carry on. One small object per socket (idle sockets are
 * most of a gateway's memory): the handlers themselves are shared.
 */
class SocketDispatcher<Context> {
  /** Events waiting behind the one being handled (empty almost always: then an event runs at once). */
  private readonly queue: (() => Promise<void>)[] = [];
  private busy = false;
  private tokens: number;
  private at = Date.now();

  constructor(
    private readonly table: HandlerTable<Context>,
    private readonly context: Context,
    private readonly options: DispatchOptions,
  ) {
    this.tokens = options.rateLimit?.burst ?? 0;
  }

  dispatch(event: unknown, args: unknown[]): void {
    const last = args.at(-1);
    const ack = typeof last === "function" ? (last as Ack) : undefined;
    const handler = typeof event === "string" ? this.table.byEvent.get(event) : undefined;
    if (!handler) {
      ack?.({ ok: false, error: { code: "not_found", message: `Unknown event ${String(event)}.` } });
      return;
    }
    const payload = args.length > (ack ? 1 : 0) ? args[0] : undefined;
    if (this.busy) this.queue.push(() => this.run(handler, payload, ack));
    else void this.runThenDrain(handler, payload, ack);
  }

  /** Runs an event at once (the usual case: nothing queued), then whatever queued up behind it. */
  private async runThenDrain(
    handler: EventHandler<z.ZodType, Context>,
    payload: unknown,
    ack: Ack | undefined,
  ): Promise<void> {
    this.busy = true;
    try {
      await this.run(handler, payload, ack);
      for (let task = this.queue.shift(); task; task = this.queue.shift()) await task();
    } finally {
      this.busy = false;
    }
  }

  /** A token of the socket's bucket; the wait in ms when there is none. */
  private take(): number {
    const limit = this.options.rateLimit;
    if (!limit) return 0;
    const now = Date.now();
    this.tokens = Math.min(limit.burst, this.tokens + ((now - this.at) / 1000) * limit.perSecond);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / limit.perSecond) * 1000);
  }

  private async run(handler: EventHandler<z.ZodType, Context>, payload: unknown, ack: Ack | undefined): Promise<void> {
    let response: Parameters<Ack>[0];
    let after: (() => void) | undefined;
    try {
      const waitMs = this.take();
      if (waitMs > 0) {
        throw new GatewayError("rate_limited", `Too many events; retry in ${waitMs} ms.`, { retryAfterMs: waitMs });
      }
      if (approximateSize(payload, this.options.maxPayloadBytes) > this.options.maxPayloadBytes) {
        throw new GatewayError("payload_too_large", `Events are limited to ${this.options.maxPayloadBytes} bytes.`);
      }
      const parsed = handler.schema.safeParse(payload);
      if (!parsed.success) throw invalidPayload(parsed.error.issues);
      const result = await handler.handle(this.context, parsed.data);
      after = result[AFTER_ACK];
      if (after !== undefined) delete result[AFTER_ACK];
      response = result;
    } catch (error) {
      if (error instanceof GatewayError) {
        response = { ok: false, error: error.toInfo() };
      } else {
        this.options.logger().error({ err: error, event: handler.event }, "socket handler failed");
        response = { ok: false, error: new GatewayError("internal").toInfo() };
      }
    }
    ack?.(response);
    try {
      after?.();
    } catch (error) {
      this.options.logger().error({ err: error, event: handler.event }, "socket post-ack step failed");
    }
  }
}

interface DispatchOptions {
  maxPayloadBytes: number;
  /** The socket's logger, made on first use. */
  logger: () => Logger;
  /** Events per second this socket may send (a token bucket of `burst`); undefined: no limit. */
  rateLimit?: { perSecond: number; burst: number };
}

/** Routes every event of the socket through the handler table. */
export function attachHandlers<Context>(
  socket: AppSocket,
  table: HandlerTable<Context>,
  context: Context,
  options: DispatchOptions,
): void {
  const dispatcher = new SocketDispatcher(table, context, options);
  socket.onAny((event: unknown, ...args: unknown[]) => dispatcher.dispatch(event, args));
}

/**
 * An event's size in bytes as JSON (what the transport's own cap counts). A cheap upper bound first (every string
 * at 3 bytes a character, generous overhead per value): only an event near the limit is serialised to measure it.
 */
function approximateSize(payload: unknown, limit: number): number {
  if (upperBound(payload, 0, limit) <= limit) return 0;
  try {
    const json = JSON.stringify(payload) as string | undefined;
    return json === undefined ? 0 : Buffer.byteLength(json, "utf8");
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** An upper bound of the JSON size of `value`, stopping as soon as it passes `limit`. */
function upperBound(value: unknown, depth: number, limit: number): number {
  if (typeof value === "string") return value.length * 3 + 2;
  if (value === null || typeof value !== "object") return 24;
  if (depth > 32) return Number.POSITIVE_INFINITY;
  let total = 2;
  if (Array.isArray(value)) {
    for (const item of value) {
      total += upperBound(item, depth + 1, limit) + 1;
      if (total > limit) return total;
    }
    return total;
  }
  for (const key in value) {
    total += key.length * 3 + 4 + upperBound((value as Record<string, unknown>)[key], depth + 1, limit);
    if (total > limit) return total;
  }
  return total;
}
