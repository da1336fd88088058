import type { Server as HttpServer } from "node:http";
import { Server } from "socket.io";
import type { ApiKeys } from "../core/api-keys.js";
import type { Logger } from "../logger.js";
import { handlers, release, type SocketContext, type SocketDeps, type SocketState } from "./handlers.js";
import { HandlerTable, attachHandlers } from "./registry.js";
import type { AppServer, AppSocket } from "./types.js";

export interface SocketServerOptions {
  path: string;
  corsOrigins: readonly string[];
  maxPayloadBytes: number;
  apiKeys: ApiKeys;
  /** Limit for customer sockets (API-key sockets relay many customers and are trusted). */
  customerRateLimit: { perSecond: number; burst: number };
  onConnectionChange?: (delta: 1 | -1) => void;
}

/** The Socket.IO server: API-key handshake, one handler registry, cleanup on disconnect. */
export function createSocketServer(httpServer: HttpServer, deps: SocketDeps, options: SocketServerOptions): AppServer {
  const io: AppServer = new Server(httpServer, {
    path: options.path,
    cors: { origin: options.corsOrigins.includes("*") ? true : [...options.corsOrigins] },
    // A hard cap well above the per-event one, so an oversize event gets a `payload_too_large` ack rather than a
    // dropped connection; only something far beyond it is cut off by the transport.
    maxHttpBufferSize: options.maxPayloadBytes * 2,
    serveClient: false,
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

  const table = new HandlerTable(handlers);
  const debug = deps.logger.isLevelEnabled("debug");
  io.on("connection", (socket) => {
    const state: SocketState = { principal: socket.data.principal, sessions: new Map() };
    // A child logger per socket costs memory on every idle connection: made only when something is logged.
    let child: Logger | undefined;
    const logger = (): Logger =>
      (child ??= deps.logger.child({ socketId: socket.id, principal: state.principal.kind }));
    const context: SocketContext = {
      ...deps,
      socket,
      state,
      get log() {
        return logger();
      },
    };
    options.onConnectionChange?.(1);
    if (debug) logger().debug({}, "socket connected");
    attachHandlers(socket, table, context, {
      maxPayloadBytes: options.maxPayloadBytes,
      logger,
      ...(state.principal.kind === "customer" ? { rateLimit: options.customerRateLimit } : {}),
    });
    socket.on("disconnect", (reason) => {
      options.onConnectionChange?.(-1);
      for (const session of state.sessions.values()) release(deps, session, true);
      state.sessions.clear();
      if (state.connector) deps.connectors.remove(state.connector.channel, socket.id);
      if (debug) logger().debug({ reason }, "socket disconnected");
    });
  });

  return io;
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
