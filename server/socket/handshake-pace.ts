import type { IncomingMessage } from "node:http";

/** The signature of engine.io's `allowRequest` option (a server option of Socket.IO). */
export type AllowRequest = (
  req: IncomingMessage,
  callback: (error: string | null | undefined, success: boolean) => void,
) => void;

/**
 * Socket.IO's `allowRequest`, pacing new sessions: at most `perTurn` handshakes go on in one turn of the event loop,
 * the others in the turns after, in the order they came. When thousands of clients reconnect at once (a node or the
 * balancer restarted), one poll phase meets hundreds of handshakes: taken all at once, their upgrades, authentications
 * and joins hold the event loop for a second and more, and every client already connected waits with them. Paced,
 * those clients are served between two batches. Only a handshake request that has arrived waits here: a connection
 * that sends nothing never reaches it, and holds nothing. A request whose connection closed while it waited is
 * refused without work.
 */
export function pacedHandshakes(perTurn: number): AllowRequest {
  const waiting: { req: IncomingMessage; callback: Parameters<AllowRequest>[1] }[] = [];
  let scheduled = false;

  const nextTurn = (): void => {
    scheduled = false;
    for (let taken = 0; taken < perTurn;) {
      const next = waiting.shift();
      if (next === undefined) return;
      if (next.req.socket.destroyed) {
        next.callback("the connection closed", false);
        continue;
      }
      taken += 1;
      next.callback(null, true);
    }
    schedule();
  };
  const schedule = (): void => {
    if (scheduled || waiting.length === 0) return;
    scheduled = true;
    setImmediate(nextTurn);
  };

  return (req, callback) => {
    waiting.push({ req, callback });
    schedule();
  };
}
