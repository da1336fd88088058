/** Event name → the arguments its listeners receive. */
export type EventMap = Record<string, unknown[]>;

/** A listener of one event. */
export type Listener<Args extends unknown[]> = (...args: Args) => void;

/**
 * A tiny typed event emitter that runs in Node and in browsers alike (no `node:events`). A listener that throws
 * does not stop the others, nor the SDK's own processing: its error is rethrown on a fresh microtask, where it
 * surfaces as an uncaught error like any other bug.
 */
export class TypedEmitter<Events extends EventMap> {
  readonly #listeners: { [E in keyof Events]?: Set<Listener<Events[E]>> } = {};

  /**
   * Adds a listener.
   *
   * @param event - the event name
   * @param listener - called with the event's arguments
   * @returns a function that removes the listener
   */
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    const set = this.#listeners[event] ?? new Set<Listener<Events[E]>>();
    this.#listeners[event] = set;
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * Adds a listener that is removed after its first call.
   *
   * @param event - the event name
   * @param listener - called once with the event's arguments
   * @returns a function that removes the listener before it ran
   */
  once<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /**
   * Removes a listener added with {@link TypedEmitter.on}.
   *
   * @param event - the event name
   * @param listener - the listener to remove
   */
  off<E extends keyof Events>(event: E, listener: Listener<Events[E]>): void {
    this.#listeners[event]?.delete(listener);
  }

  /**
   * The number of listeners of an event.
   *
   * @param event - the event name
   */
  listenerCount(event: keyof Events): number {
    return this.#listeners[event]?.size ?? 0;
  }

  /** Calls every listener of `event`, in the order they were added. */
  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    const set = this.#listeners[event];
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
