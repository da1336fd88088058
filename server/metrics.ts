import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ConversationState, Role } from "../protocol/index.js";
import type { CoreMetrics } from "./core/ports.js";

/** Prometheus metrics of one gateway instance (its own registry, so several apps can share a process in tests). */
const MAX_CHANNEL_LABELS = 50;
const EXPENSIVE_DEFAULT_METRICS = [
  "process_open_fds",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
];

export class Metrics implements CoreMetrics {
  /**
   * Messages in by channel and role not yet added to the counter: the message path only bumps a number, and the
   * counter takes them when it is collected (prom-client hashes the labels on every `inc`, even a child's).
   */
  private readonly pendingIn = new Map<string, Map<Role, number>>();
  readonly registry = new Registry();
  readonly sockets = new Gauge({
    name: "liaison_connected_sockets",
    help: "Connected Socket.IO clients",
    registers: [this.registry],
  });
  private readonly messagesIn = new Counter({
    name: "liaison_messages_in_total",
    help: "Chat messages recorded, by channel and sender role",
    labelNames: ["channel", "role"],
    registers: [this.registry],
    collect: () => {
      for (const [channel, byRole] of this.pendingIn) {
        for (const [role, count] of byRole) {
          if (count === 0) continue;
          this.messagesIn.inc({ channel, role }, count);
          byRole.set(role, 0);
        }
      }
    },
  });
  private readonly deliveredTotal = new Counter({
    name: "liaison_messages_out_total",
    help: "Messages delivered and acknowledged, by destination (connector:<channel>, desk:<name>, channel:<name>, bot:<name>)",
    labelNames: ["destination"],
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: "liaison_delivery_retries_total",
    help: "Deliveries offered again after a timeout, refusal or error, by destination",
    labelNames: ["destination"],
    registers: [this.registry],
  });
  private readonly deliveryFailures = new Counter({
    name: "liaison_delivery_failures_total",
    help: "Deliveries given up as undeliverable, by destination",
    labelNames: ["destination"],
    registers: [this.registry],
  });
  private readonly handOffs = new Counter({
    name: "liaison_handoffs_total",
    help: "Conversations that changed hands, by reason: to the desk (bot, bot_unavailable, takeover) or back to the bot (agent_closed)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  private readonly botOutputsDropped = new Counter({
    name: "liaison_bot_outputs_dropped_total",
    help: "What a bot sent while it did not own the conversation (handed off or ended): not recorded, not delivered; by bot and output (reply, handOff, end)",
    labelNames: ["bot", "output"],
    registers: [this.registry],
  });
  private readonly rateLimited = new Counter({
    name: "liaison_adapter_rate_limited_total",
    help: "Requests an external system refused for its rate limit (HTTP 429), by adapter and operation",
    labelNames: ["adapter", "operation"],
    registers: [this.registry],
  });
  readonly deskStreams = new Gauge({
    name: "liaison_desk_streams",
    help: "Inbound desk streams (a poll loop, an event stream) running on this node",
    labelNames: ["desk"],
    registers: [this.registry],
  });
  readonly deskStreamRestarts = new Counter({
    name: "liaison_desk_stream_restarts_total",
    help: "Inbound desk streams that failed and were started again with backoff",
    labelNames: ["desk"],
    registers: [this.registry],
  });
  readonly adapterLatency = new Histogram({
    name: "liaison_adapter_request_seconds",
    help: "Latency of requests to external systems, by adapter and operation",
    labelNames: ["adapter", "operation", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly transcriptRender = new Histogram({
    name: "liaison_transcript_render_seconds",
    help: "Time to render a PDF transcript (in the worker thread), by outcome (ok, error, timeout)",
    labelNames: ["outcome"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(countByState: () => Promise<Record<ConversationState, number>>) {
    collectDefaultMetrics({ register: this.registry, prefix: "liaison_" });
    // These walk every handle or descriptor on each scrape: with 10,000 sockets, a scrape stalled the event loop
    // for a few hundred ms. `liaison_connected_sockets` counts what they would.
    for (const name of EXPENSIVE_DEFAULT_METRICS) this.registry.removeSingleMetric(`liaison_${name}`);
    new Gauge({
      name: "liaison_conversations",
      help: "Conversations held by the store, by state",
      labelNames: ["state"],
      registers: [this.registry],
      async collect() {
        const counts = await countByState();
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
  }

  messageIn(channel: string, role: Role): void {
    let byRole = this.pendingIn.get(channel);
    if (!byRole) {
      // Channel names come from clients: past a few dozen distinct ones they share one series.
      const label = this.pendingIn.size >= MAX_CHANNEL_LABELS ? "other" : channel;
      byRole = this.pendingIn.get(label) ?? new Map<Role, number>();
      this.pendingIn.set(label, byRole);
    }
    byRole.set(role, (byRole.get(role) ?? 0) + 1);
  }

  delivered(destination: string): void {
    this.deliveredTotal.inc({ destination });
  }

  retried(destination: string): void {
    this.retries.inc({ destination });
  }

  failed(destination: string): void {
    this.deliveryFailures.inc({ destination });
  }

  handOff(reason: string): void {
    this.handOffs.inc({ reason });
  }

  botOutputDropped(bot: string, output: string): void {
    this.botOutputsDropped.inc({ bot, output });
  }

  /** Times one request to an external system (for adapters); counts the ones refused for a rate limit. */
  observe(adapter: string, operation: string, outcome: "ok" | "error" | "rate_limited", seconds: number): void {
    this.adapterLatency.observe({ adapter, operation, outcome }, seconds);
    if (outcome === "rate_limited") this.rateLimited.inc({ adapter, operation });
  }
}
