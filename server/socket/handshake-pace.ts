import type { IncomingMessage } from "node:http";

/** The signature of engine.io's `allowRequest` option (a server option of Socket.IO). */
export type AllowRequest = (
  req: IncomingMessage,
  callback: (error: string | null | undefined, success: boolean) => void,
) => void;

interface Waiting {
  req: IncomingMessage;
  callback: Parameters<AllowRequest>[1];
  /** Node lets go of an upgrading connection's errors before the handshake goes on: this takes them meanwhile. */
  onError: () => void;
}

/**
 * Socket.IO's `allowRequest` ({@link HandshakePace.allow}), pacing new sessions: at most `perTurn` handshakes go on
 * in one turn of the event loop, the others in the turns after, in the order they came. When thousands of clients
 * reconnect at once (a node or the balancer restarted), one poll phase meets hundreds of handshakes: taken all at
 * once, their upgrades, authentications and joins hold the event loop for a second and more, and every client
 * already connected waits with them. Paced, those clients are served between two batches. Only a handshake request
 * that has arrived waits here: a connection that sends nothing never reaches it, and holds nothing. A request whose
 * connection closed or failed while it waited is refused without work, and so is every request once the node shuts
 * down.
 */
export class HandshakePace {
  private readonly waiting: Waiting[] = [];
  private scheduled = false;
  private closed = false;

  constructor(private readonly perTurn: number) {}

  readonly allow: AllowRequest = (req, callback) => {
    if (this.closed) {
      callback("the server is shutting down", false);
      return;
    }
    const { socket } = req;
    // A WebSocket upgrade's connection has no error listener until the handshake goes on (Node removes its own
    // before the `upgrade` event, ws adds one when it takes the connection): a reset meanwhile would be thrown.
    const onError = (): void => {
      socket.destroy();
    };
    socket.on("error", onError);
    this.waiting.push({ req, callback, onError });
    this.schedule();
  };

  /** Refuses whatever waits, and every handshake from now on. */
  close(): void {
    this.closed = true;
    for (const entry of this.waiting.splice(0)) this.settle(entry, "the server is shutting down");
  }

  private readonly nextTurn = (): void => {
    this.scheduled = false;
    for (let taken = 0; taken < this.perTurn;) {
      const next = this.waiting.shift();
      if (next === undefined) return;
      const { socket } = next.req;
      if (socket.destroyed || !socket.writable) {
        this.settle(next, "the connection closed");
        continue;
      }
      taken += 1;
      this.settle(next);
    }
    this.schedule();
  };

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(this.nextTurn);
  }

  /** Lets the handshake go on, or refuses it with `refusal`. */
  private settle(entry: Waiting, refusal?: string): void {
    entry.req.socket.off("error", entry.onError);
    if (refusal === undefined) entry.callback(null, true);
    else entry.callback(refusal, false);
  }
}
