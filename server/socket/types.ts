import type { DefaultEventsMap, Server, Socket } from "socket.io";

/** Who the socket is: customers prove themselves per conversation with its token; API keys in the handshake. */
export type Principal = { kind: "customer" } | { kind: "apiKey" };

export interface SocketData {
  principal: Principal;
}

/** Client events are untyped on purpose: every payload is `unknown` until the registry's zod schema has parsed it. */
export type AppServer = Server<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, SocketData>;
export type AppSocket = Socket<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, SocketData>;
