import type { z } from "zod";
import type { ErrorInfo } from "../../protocol/index.js";
import { GatewayError, invalidPayload } from "../core/errors.js";
import type { Limiter } from "../http/limits.js";
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
  /**
   * A check that answers what `schema.safeParse` answers, faster (compiled from it: `send-message-check.ts`), for an
   * event on every message's path; absent: the dispatcher parses with `schema`.
   */
  check?: (payload: unknown) => z.ZodSafeParseResult<z.output<Schema>>;
  handle(context: Context, payload: z.output<Schema>): Promise<HandlerResult>;
}

export const defineHandler = <Schema extends z.ZodType, Context>(
  handler: EventHandler<Schema, Context>,
): EventHandler<Schema, Context> => handler;

type Ack = (response: { ok: true } | { ok: false; error: ErrorInfo }) => void;

/**
 * Whether events may start, and how many are under way: a node that shuts down refuses every event it has not started
 * (`unavailable`: the client sends it again, with the same id, to another node) and waits for those under way, whose
 * acks then go out before the sockets close. So nothing is recorded without its ack having been sent.
 */
export class EventGate {
  private shut = false;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  get closed(): boolean {
    return this.shut;
  }

  /** Admits an event (false once closed). */
  enter(): boolean {
    if (this.shut) return false;
    this.running += 1;
    return true;
  }

  /** An admitted event is done, its ack sent. */
  leave(): void {
    this.running -= 1;
    if (this.running === 0 && this.waiting.length > 0) for (const wake of this.waiting.splice(0)) wake();
  }

  /** Admits nothing more; resolves once the events under way are done. */
  close(): Promise<void> {
    this.shut = true;
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.waiting.push(resolve));
  }
}

const shuttingDown = (): GatewayError =>
  new GatewayError("unavailable", "This node is shutting down; send again, with the same id, once reconnected.");

/** The handler table of a server: built once, shared by every socket. */
export class HandlerTable<Context> {
  readonly byEvent: ReadonlyMap<string, EventHandler<z.ZodType, Context>>;

  constructor(handlers: readonly EventHandler<z.ZodType, Context>[]) {
    this.byEvent = new Map(handlers.map((handler) => [handler.event, handler]));
  }
}

/**
 * The one path every client event takes: size cap and rate limit as it arrives → queue → zod (or the check compiled
 * from its schema) → handler → ack. Events of one socket run one after another, so a client's messages are recorded
 * in the order it sent them. An event over the size cap or the rate limit is answered at once and never queued; a
 * socket that piles up more events than `maxQueued` behind the one being handled is disconnected. An unexpected
 * throw is logged with its stack and answered `internal`; the socket and the server carry on. One small object per
 * socket (idle sockets are most of a gateway's memory): the handlers themselves are shared.
 */
class SocketDispatcher<Context> {
  /** Events waiting behind the one being handled (empty almost always: then an event runs at once). */
  private readonly queue: (() => Promise<void>)[] = [];
  private busy = false;

  constructor(
    private readonly table: HandlerTable<Context>,
    private readonly context: Context,
    private readonly options: DispatchOptions,
  ) {}

  dispatch(event: unknown, args: unknown[]): void {
    const last = args.at(-1);
    const ack = typeof last === "function" ? (last as Ack) : undefined;
    const handler = typeof event === "string" ? this.table.byEvent.get(event) : undefined;
    if (!handler) {
      ack?.({ ok: false, error: { code: "not_found", message: `Unknown event ${String(event)}.` } });
      return;
    }
    const payload = args.length > (ack ? 1 : 0) ? args[0] : undefined;
    if (this.options.gate.closed) {
      ack?.({ ok: false, error: shuttingDown().toInfo() });
      return;
    }
    if (approximateSize(payload, this.options.maxPayloadBytes) > this.options.maxPayloadBytes) {
      const error = new GatewayError(
        "payload_too_large",
        `Events are limited to ${this.options.maxPayloadBytes} bytes.`,
      );
      ack?.({ ok: false, error: error.toInfo() });
      return;
    }
    const limiter = this.options.rateLimit;
    if (!limiter) {
      this.enqueue(handler, payload, ack);
      return;
    }
    // Counted now, as it arrives. The in-memory limiter settles at once, so events admitted one after another are
    // queued in the order they came.
    limiter.limiter.consume(limiter.key).then(
      () => this.enqueue(handler, payload, ack),
      (error: unknown) => ack?.({ ok: false, error: toGatewayError(error).toInfo() }),
    );
  }

  private enqueue(handler: EventHandler<z.ZodType, Context>, payload: unknown, ack: Ack | undefined): void {
    if (!this.busy) {
      void this.runThenDrain(handler, payload, ack);
      return;
    }
    if (this.queue.length >= this.options.maxQueued) {
      // A client that sends far faster than it is answered (and is not rate limited, or floods within its limit
      // while the store is slow): its backlog would grow without bound.
      this.queue.length = 0;
      this.options.overflow();
      return;
    }
    this.queue.push(() => this.run(handler, payload, ack));
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

  private async run(handler: EventHandler<z.ZodType, Context>, payload: unknown, ack: Ack | undefined): Promise<void> {
    if (!this.options.gate.enter()) {
      ack?.({ ok: false, error: shuttingDown().toInfo() });
      return;
    }
    try {
      await this.admitted(handler, payload, ack);
    } finally {
      this.options.gate.leave();
    }
  }

  private async admitted(
    handler: EventHandler<z.ZodType, Context>,
    payload: unknown,
    ack: Ack | undefined,
  ): Promise<void> {
    let response: Parameters<Ack>[0];
    let after: (() => void) | undefined;
    try {
      const parsed = handler.check ? handler.check(payload) : handler.schema.safeParse(payload);
      if (!parsed.success) throw invalidPayload(parsed.error.issues);
      const result = await handler.handle(this.context, parsed.data);
      after = result[AFTER_ACK];
      if (after === undefined) {
        response = result;
      } else {
        // A copy without the key, not `delete`: deleting turns the object into a dictionary, and one such object among
        // those Socket.IO's encoder walks (`hasBinary`) sent Node 24's optimised walk into a loop of deoptimisations.
        const { [AFTER_ACK]: _after, ...ack } = result;
        response = ack;
      }
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
  /** Shared by every socket of the server: closed when the node shuts down. */
  gate: EventGate;
  maxPayloadBytes: number;
  /** Events that may wait behind the one being handled before the socket is disconnected. */
  maxQueued: number;
  /** Disconnects the socket (its queue passed `maxQueued`). */
  overflow: () => void;
  /** The socket's logger, made on first use. */
  logger: () => Logger;
  /** Counts this socket's events (under `key`); undefined: no limit. */
  rateLimit?: { limiter: Limiter; key: string };
}

function toGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError("internal");
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
