import { LocalBus } from "../core/local-bus.js";
import type { MessageBus, Published } from "../core/ports.js";
import type { Logger } from "../logger.js";
import type { AppServer } from "./types.js";

const EVENT = "liaison:published";

/**
 * The bus across nodes: each node delivers to its own sockets, and tells the others through the Socket.IO adapter
 * (`serverSideEmit`, Redis pub/sub underneath). Best effort by design: a session that misses a message sees the gap
 * in `seq` and reads it from the store.
 */
export class ClusterBus implements MessageBus {
  private readonly local = new LocalBus();
  private io: AppServer | undefined;

  constructor(private readonly logger: Logger) {}

  /** Starts listening to the other nodes (once the Socket.IO server exists). */
  attach(io: AppServer): void {
    this.io = io;
    io.on(EVENT, (event: Published) => this.local.publish(event));
  }

  publish(event: Published): void {
    this.local.publish(event);
    try {
      this.io?.serverSideEmit(EVENT, event);
    } catch (error) {
      this.logger.warn({ err: error, conversationId: event.conversationId }, "cluster publish failed");
    }
  }

  subscribe(listener: (event: Published) => void): () => void {
    return this.local.subscribe(listener);
  }
}
