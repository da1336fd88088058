import type { Server as HttpServer } from "node:http";
import type { CorsOptions } from "cors";
import { Server } from "socket.io";
import type { ApiKeys } from "../core/api-keys.js";
import { createLimiter } from "../http/limits.js";
import type { Logger } from "../logger.js";
import type { StoredMessage } from "../../protocol/index.js";
import { handlers, release, type SocketContext, type SocketDeps, type SocketState } from "./handlers.js";
import type { HandshakePace } from "./handshake-pace.js";
import { queueHandlers } from "./queue-handlers.js";
import { HandlerTable, attachHandlers, type EventGate } from "./registry.js";
import type { AppServer, AppSocket } from "./types.js";

export interface SocketServerOptions {
  path: string;
  /** The gateway's one CORS policy (the REST API's too). */
  cors: CorsOptions;
  maxPayloadBytes: number;
  apiKeys: ApiKeys;
  /** Limit for customer sockets (API-key sockets relay many customers and are trusted). */
  customerRateLimit: { perSecond: number; burst: number };
  /** Closed when the node shuts down (see `EventGate`). */
  gate: EventGate;
  /** Events a socket may have waiting before it is disconnected (see `Tuning`). */
  maxQueuedEvents: { customer: number; apiKey: number };
  /** Paces new sessions (see `HandshakePace`); closed when the node shuts down. */
  handshakes: HandshakePace;
  onConnectionChange?: (delta: 1 | -1) => void;
}

/** The Socket.IO server: API-key handshake, one handler registry, cleanup on disconnect. */
export function createSocketServer(httpServer: HttpServer, deps: SocketDeps, options: SocketServerOptions): AppServer {
  const io: AppServer = new Server(httpServer, {
    path: options.path,
    cors: options.cors,
    // A hard cap well above the per-event one, so an oversize event gets a `payload_too_large` ack rather than a
    // dropped connection; only something far beyond it is cut off by the transport.
    maxHttpBufferSize: options.maxPayloadBytes * 2,
    serveClient: false,
    allowRequest: options.handshakes.allow,
  });

  io.use((socket, next) => {
    const apiKey = handshakeApiKey(socket);
    if (apiKey === undefined) {
      socket.data.principal = { kind: "customer" };
      next();
    } else if (options.apiKeys.verify(apiKey)) {
      socket.data.principal = { kind: "apiKey" };
      next();
    } else {
      const error = new Error("unauthorized") as Error & { data?: unknown };
      error.data = { code: "unauthorized", message: "The API key is not valid." };
      next(error);
    }
  });

  const table = new HandlerTable([...handlers, ...queueHandlers]);
  // Per socket, in this process: a socket lives on one node, so its count is whole here (and stays off Redis on the
  // message path). `burst` events at once, then `perSecond` on average.
  const { perSecond, burst } = options.customerRateLimit;
  const customerEvents = createLimiter({
    name: "socket-events",
    points: burst,
    durationSeconds: Math.max(1, Math.round(burst / perSecond)),
    message: (seconds) => `Too many events; retry in ${seconds} s.`,
  });
  const debug = deps.logger.isLevelEnabled("debug");
  io.on("connection", (socket) => {
    const state: SocketState = { principal: socket.data.principal, sessions: new Map() };
    const context = new ConnectionContext(deps, socket, state);
    options.onConnectionChange?.(1);
    if (debug) context.log.debug({}, "socket connected");
    const customer = state.principal.kind === "customer";
    attachHandlers(socket, table, context, {
      gate: options.gate,
      maxPayloadBytes: options.maxPayloadBytes,
      maxQueued: customer ? options.maxQueuedEvents.customer : options.maxQueuedEvents.apiKey,
      overflow: () => {
        context.log.warn({}, "socket disconnected: too many events waiting");
        socket.disconnect(true);
      },
      logger: () => context.log,
      ...(customer ? { rateLimit: { limiter: customerEvents, key: socket.id } } : {}),
    });
    socket.on("disconnect", (reason) => {
      options.onConnectionChange?.(-1);
      for (const session of state.sessions.values()) release(deps, session, true);
      state.sessions.clear();
      if (state.connector) deps.connectors.remove(state.connector.channel, socket.id);
      deps.queue.remove(socket.id);
      if (debug) context.log.debug({ reason }, "socket disconnected");
    });
  });

  return io;
}

/**
 * What every handler of one socket works with. A class, so that every socket's context shares one hidden class: an
 * object literal spreading the deps and defining a getter got a V8 map and descriptor array of its own per socket
 * (about 280 bytes of every idle connection, in a heap snapshot at 1,000 conversations).
 */
class ConnectionContext implements SocketContext {
  readonly core: SocketDeps["core"];
  readonly presence: SocketDeps["presence"];
  readonly clusterPresence: boolean;
  readonly store: SocketDeps["store"];
  readonly fanout: SocketDeps["fanout"];
  readonly queue: SocketDeps["queue"];
  readonly connectors: SocketDeps["connectors"];
  readonly logger: Logger;
  /** A child logger per socket costs memory on every idle connection: made only when something is logged. */
  private child: Logger | undefined = undefined;

  constructor(
    deps: SocketDeps,
    readonly socket: AppSocket,
    readonly state: SocketState,
  ) {
    this.core = deps.core;
    this.presence = deps.presence;
    this.clusterPresence = deps.clusterPresence;
    this.store = deps.store;
    this.fanout = deps.fanout;
    this.queue = deps.queue;
    this.connectors = deps.connectors;
    this.logger = deps.logger;
  }

  get log(): Logger {
    return (this.child ??= this.logger.child({ socketId: this.socket.id, principal: this.state.principal.kind }));
  }

  read(conversationId: string, afterSeq: number): Promise<StoredMessage[]> {
    return this.store.read(conversationId, afterSeq);
  }

  gapFillFailed(conversationId: string, error: unknown): void {
    this.log.warn({ err: error, conversationId }, "gap refill failed");
  }
}

/** `auth: { apiKey }` in the handshake, or an `Authorization: Bearer` header (non-browser clients). */
function handshakeApiKey(socket: AppSocket): string | undefined {
  const auth = socket.handshake.auth as { apiKey?: unknown } | undefined;
  if (typeof auth?.apiKey === "string") return auth.apiKey;
  if (auth?.apiKey !== undefined) return "";
  const header = socket.handshake.headers.authorization;
  if (typeof header === "string" && header.startsWith("Bearer ")) return header.slice(7).trim();
  return undefined;
}
