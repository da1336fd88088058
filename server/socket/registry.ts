import type { z } from "zod";
import type { ErrorInfo } from "../../protocol/index.js";
import { GatewayError, invalidPayload } from "../core/errors.js";
import type { Logger } from "../logger.js";
import type { AppSocket } from "./types.js";

/** A handler may return this key with work to do right after its ack has been sent (e.g. `conversationInfo`). */
export const AFTER_ACK = Symbol("afterAck");

export type HandlerResult = Record<string, unknown> & { [AFTER_ACK]?: () => void };

/** A handler: receives validated input only, returns the ack's success fields or throws a GatewayError. */
export interface EventHandler<Schema extends z.ZodType, Context> {
  event: string;
  schema: Schema;
  handle(context: Context, payload: z.output<Schema>): Promise<HandlerResult>;
}

export const defineHandler = <Schema extends z.ZodType, Context>(
  handler: EventHandler<Schema, Context>,
): EventHandler<Schema, Context> => handler;

type Ack = (response: { ok: true } | { ok: false; error: ErrorInfo }) => void;

/**
 * The one path every client event takes: size cap → zod → handler → ack. Events of one socket run one after
 * another, so a client's messages are recorded in the order it sent them. An unexpected throw is logged with its
 * stack and answered `internal`; the socket and the server carry on.
 */
export function attachHandlers<Context>(
  socket: AppSocket,
  handlers: readonly EventHandler<z.ZodType, Context>[],
  context: Context,
  options: {
    maxPayloadBytes: number;
    logger: Logger;
    /** Events per second this socket may send (a token bucket of `burst`); undefined: no limit. */
    rateLimit?: { perSecond: number; burst: number };
  },
): void {
  let chain: Promise<void> = Promise.resolve();
  const bucket = options.rateLimit && { tokens: options.rateLimit.burst, at: Date.now(), ...options.rateLimit };
  const take = (): number => {
    if (!bucket) return 0;
    const now = Date.now();
    bucket.tokens = Math.min(bucket.burst, bucket.tokens + ((now - bucket.at) / 1000) * bucket.perSecond);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / bucket.perSecond) * 1000);
  };
  const known = new Set(handlers.map((handler) => handler.event));

  const run = async (handler: EventHandler<z.ZodType, Context>, payload: unknown, ack: Ack | undefined) => {
    let response: Parameters<Ack>[0];
    let after: (() => void) | undefined;
    try {
      const waitMs = take();
      if (waitMs > 0) {
        throw new GatewayError("rate_limited", `Too many events; retry in ${waitMs} ms.`, { retryAfterMs: waitMs });
      }
      if (approximateSize(payload) > options.maxPayloadBytes) {
        throw new GatewayError("payload_too_large", `Events are limited to ${options.maxPayloadBytes} bytes.`);
      }
      const parsed = handler.schema.safeParse(payload);
      if (!parsed.success) throw invalidPayload(parsed.error.issues);
      const { [AFTER_ACK]: afterAck, ...fields } = await handler.handle(context, parsed.data);
      after = afterAck;
      response = { ok: true, ...fields };
    } catch (error) {
      if (error instanceof GatewayError) {
        response = { ok: false, error: error.toInfo() };
      } else {
        options.logger.error({ err: error, event: handler.event }, "socket handler failed");
        response = { ok: false, error: new GatewayError("internal").toInfo() };
      }
    }
    ack?.(response);
    try {
      after?.();
    } catch (error) {
      options.logger.error({ err: error, event: handler.event }, "socket post-ack step failed");
    }
  };

  for (const handler of handlers) {
    socket.on(handler.event, (...args: unknown[]) => {
      const last = args.at(-1);
      const ack = typeof last === "function" ? (last as Ack) : undefined;
      const payload = args.length > (ack ? 1 : 0) ? args[0] : undefined;
      chain = chain.then(() => run(handler, payload, ack));
    });
  }

  socket.onAny((event: unknown, ...args: unknown[]) => {
    if (typeof event === "string" && known.has(event)) return;
    const last = args.at(-1);
    if (typeof last === "function") {
      (last as Ack)({ ok: false, error: { code: "not_found", message: `Unknown event ${String(event)}.` } });
    }
  });
}

/** An event's size in bytes as JSON (what the transport's own cap counts), without binary attachments. */
function approximateSize(payload: unknown): number {
  try {
    const json = JSON.stringify(payload) as string | undefined;
    return json === undefined ? 0 : Buffer.byteLength(json, "utf8");
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
