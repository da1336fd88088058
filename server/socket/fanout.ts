import type { MessageBus, Published } from "../core/ports.js";
import type { Session } from "./session.js";

/** This node's sessions by conversation; feeds each one what the bus publishes for its conversation. */
export class Fanout {
  private readonly byConversation = new Map<string, Set<Session>>();
  private readonly unsubscribe: () => void;

  constructor(bus: MessageBus) {
    this.unsubscribe = bus.subscribe((event) => this.deliver(event));
  }

  add(session: Session): void {
    let sessions = this.byConversation.get(session.conversationId);
    if (!sessions) {
      sessions = new Set();
      this.byConversation.set(session.conversationId, sessions);
    }
    sessions.add(session);
  }

  remove(session: Session): void {
    session.close();
    const sessions = this.byConversation.get(session.conversationId);
    if (!sessions) return;
    sessions.delete(session);
    if (sessions.size === 0) this.byConversation.delete(session.conversationId);
  }

  sessionCount(): number {
    let count = 0;
    for (const sessions of this.byConversation.values()) count += sessions.size;
    return count;
  }

  close(): void {
    this.unsubscribe();
    for (const sessions of this.byConversation.values()) for (const session of sessions) session.close();
    this.byConversation.clear();
  }

  private deliver(event: Published): void {
    const sessions = this.byConversation.get(event.conversationId);
    if (!sessions) return;
    for (const session of sessions) session.receive(event);
  }
}
