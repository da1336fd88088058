import type { Server as HttpServer, IncomingMessage } from "node:http";
import { createServer, type Server as NetServer, type Socket } from "node:net";

export interface AdmissionOptions {
  /**
   * Connections let in whose first request has not been read yet. Each costs the loop one request's work (an HTTP
   * request, or a WebSocket upgrade then the Socket.IO connect and join that follow it), so this bounds how much of
   * a burst of arrivals one turn of the event loop can meet.
   */
  maxOpening: number;
  /** A connection let in that sends nothing for this long gives its place up (it stays open, under the HTTP server's own timeouts). */
  openingTimeoutMs: number;
}

/**
 * The listening socket, in front of the HTTP server: every TCP connection is accepted paused and let in (handed to
 * the HTTP server and resumed) only while fewer than `maxOpening` let-in connections have yet to send their first
 * request. A connection is let in at the next turn of the loop after a place frees up, in arrival order.
 * `maxOpening: 0` lets every connection in at once.
 *
 * Why: 10,000 clients reconnecting at once (a balancer restart, a network blip) put thousands of upgrade requests
 * in the kernel's buffers within a second. libuv's poll phase runs the callbacks of every ready socket (up to 1,024
 * per epoll wait, and it waits again at once while the batches come full) before any timer, so a phase that met
 * hundreds of upgrades (then their Socket.IO connects and joins) ran for half a second or more, during which no
 * message, timer or health check was served. Admitted this way, a poll meets at most `maxOpening` first requests;
 * the rest wait, accepted and unread, in a queue here (a descriptor each), and the clients see a slower handshake
 * instead of a frozen server. The bound is on connections let in and not yet heard from, not on connections per
 * turn: a storm's clients send their upgrade some time after their connect completes, and letting 16 in per turn
 * let hundreds in before their requests arrived together (the loop then stalled 0.6–1 s, as with no admission).
 *
 * The price: a connection that sends nothing holds its place for `openingTimeoutMs`, so a client exposed to the
 * internet without a proxy in front could slow everyone's handshakes by opening connections and staying silent
 * (a proxy sends each request as soon as it has it; `MAX_OPENING_CONNECTIONS=0` turns this off).
 */
export class ConnectionAdmission {
  readonly listener: NetServer;
  private readonly waiting: (Socket | undefined)[] = [];
  private head = 0;
  private readonly opening = new Map<Socket, NodeJS.Timeout>();
  private pumpScheduled = false;
  private closed = false;
  /** Connections let in and not closed yet. */
  private live = 0;
  private drained: (() => void) | undefined;
  /** One listener for every socket (a closure each would stay on each idle socket for its lifetime). */
  private readonly onClose: (this: Socket) => void;
  private readonly timedOut = (socket: Socket): void => this.release(socket);

  constructor(
    private readonly httpServer: HttpServer,
    private readonly options: AdmissionOptions,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the listener's `this` is the socket
    const admission = this;
    this.onClose = function (this: Socket) {
      admission.release(this);
      if (--admission.live === 0) admission.drained?.();
    };
    this.listener = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.arrive(socket));
    const first = (request: IncomingMessage) => this.release(request.socket);
    httpServer.on("request", first);
    httpServer.on("upgrade", first);
  }

  /** Connections accepted and not let in yet. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /**
   * Stop accepting; connections still waiting are closed (their clients retry, elsewhere). Resolves once the
   * listening socket is closed and every connection let in has ended, as `net.Server#close` does for its own.
   */
  close(): Promise<void> {
    this.closed = true;
    for (let index = this.head; index < this.waiting.length; index++) this.waiting[index]?.destroy();
    this.waiting.length = 0;
    this.head = 0;
    const listening = new Promise<void>((resolve) => {
      if (this.listener.listening) this.listener.close(() => resolve());
      else resolve();
    });
    const drained = new Promise<void>((resolve) => {
      if (this.live === 0) resolve();
      else this.drained = resolve;
    });
    return Promise.all([listening, drained]).then(() => undefined);
  }

  private arrive(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.options.maxOpening === 0) {
      this.letIn(socket);
      return;
    }
    // Paused, a socket reads nothing and so meets no error, but one must never crash the process. (Kept on: taking
    // a listener off deletes a key of the socket's listener map, which costs every socket its map's fast shape.)
    socket.on("error", ignore);
    this.waiting.push(socket);
    this.schedule();
  }

  private release(socket: Socket | null | undefined): void {
    if (!socket) return;
    const timer = this.opening.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.opening.delete(socket);
    this.schedule();
  }

  private schedule(): void {
    if (this.pumpScheduled || this.queued === 0 || this.opening.size >= this.options.maxOpening) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    while (this.opening.size < this.options.maxOpening && this.head < this.waiting.length) {
      const socket = this.waiting[this.head];
      this.waiting[this.head++] = undefined;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (socket === undefined || socket.destroyed) continue;
      const timer = setTimeout(this.timedOut, this.options.openingTimeoutMs, socket);
      timer.unref();
      this.opening.set(socket, timer);
      this.letIn(socket);
    }
  }

  private letIn(socket: Socket): void {
    this.live++;
    socket.once("close", this.onClose);
    this.httpServer.emit("connection", socket);
    socket.resume();
  }
}

function ignore(): void {}
