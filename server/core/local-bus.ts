import type { MessageBus, Published } from "./ports.js";

/** The one-node bus: synchronous fan-out to this process's subscribers. */
export class LocalBus implements MessageBus {
  private readonly listeners = new Set<(event: Published) => void>();

  publish(event: Published): void {
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: (event: Published) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
