/** Shared between the orchestrator (`bench/run.ts`) and the load workers (`bench/load.ts`). */

export type Target = "raw" | "parity" | "liaison";
export const targets: readonly Target[] = ["raw", "parity", "liaison"];

export type LoadMode = "closed" | "open" | "idle";

/** One load worker's job, passed as JSON in `BENCH_WORKER`. */
export interface WorkerConfig {
  worker: number;
  target: Target;
  url: string;
  /**
   * Two nodes: the agent sockets connect here (the customers and `init` go to `url`), so every message crosses
   * nodes. Unset: one server.
   */
  peerUrl?: string;
  /**
   * Check the acks' `seq` order per sending socket instead of per conversation (two-node parity: each node
   * numbers the messages it receives, in its own memory).
   */
  ackOrderPerSender?: boolean;
  apiKey: string;
  mode: LoadMode;
  /**
   * The Rocket.Chat desk case (Liaison only, `open` mode): customers only, no agent sockets; each waits for the desk
   * agent to join, and each customer message is timed until the agent's `re: <text>` reply reaches that customer.
   */
  desk?: boolean;
  /** Conversations (customer + agent socket each) this worker sets up. */
  pairs: number;
  /** Added to the pair index so names stay unique across workers. */
  pairOffset: number;
  /** Size of one `sendMessage` payload as JSON, in bytes. */
  messageBytes: number;
  setupConcurrency: number;
  /** Open loop: messages per second this worker offers, spread over its sockets. */
  rate: number;
  warmupMs: number;
  measureMs: number;
  /** Open loop: how long to wait after the window for the messages sent in it. */
  drainMs: number;
  /** The worker exits on its own after this, whatever happens. */
  lifetimeMs: number;
  /**
   * The count mode (closed loop, `bench/instructions.ts`): each `go` runs one batch in which every pair sends this
   * many messages, answered by a result; no time window.
   */
  messagesPerPair?: number;
}

export interface ClosedResult {
  mode: "closed";
  /** Messages delivered (and, for parity and Liaison, acknowledged) inside the measured window. */
  delivered: number;
  windowMs: number;
  /** Round trip of one message (send → received by the peer and acked), milliseconds, sorted. */
  latencies: number[];
  errors: number;
  orderViolations: number;
  /** Pairs whose message was still in flight when the run ended. */
  stuck: number;
  cpuMs: number;
}

export interface OpenResult {
  mode: "open";
  /** Messages sent inside the measured window. */
  sent: number;
  /** Messages received (and acked) whose completion fell inside the measured window. */
  completedInWindow: number;
  windowMs: number;
  /** send → receive latency of the messages sent in the window, milliseconds; lost ones excluded (see `lost`). */
  latencies: number[];
  /** Sent in the window but not received and acked within the drain time. */
  lost: number;
  errors: number;
  orderViolations: number;
  /** How late the generator's sends were against their schedule (ms): p99 and max. */
  scheduleLagP99: number;
  scheduleLagMax: number;
  cpuMs: number;
}

/** What a worker reports for a closed or open loop (the idle mode answers `drop`/`reconnect` instead). */
export type WorkerResult = ClosedResult | OpenResult;

export type WorkerMessage =
  | { type: "ready"; setupMs: number; sockets: number }
  | { type: "result"; result: WorkerResult }
  /** The idle mode's answer to `drop`: every socket has let its connection go. */
  | { type: "dropped"; sockets: number }
  /**
   * The idle mode's answer to `reconnect`: every socket is back and re-joined (`failed` did not make it; `retries`:
   * connection attempts that failed and were tried again, as socket.io-client does).
   */
  | { type: "reconnected"; sockets: number; failed: number; retries: number; ms: number }
  | { type: "error"; message: string };

export type ParentMessage = { type: "go" } | { type: "stop" } | { type: "drop" } | { type: "reconnect" };

/** `GET /lag` on the baselines: event-loop delay since the last reading, in ms. */
export interface EventLoopLag {
  maxMs: number;
  p99Ms: number;
}

/** `GET /memory` on the baselines (Liaison's figures come from `/metrics`). */
export interface MemorySample {
  rss: number;
  heapUsed: number;
}
