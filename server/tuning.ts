/**
 * Timings and bounds that belong to the gateway's design, not to a deployment: they are constants, and only tests
 * shorten them (through `createApp`'s options) so that a lease or a grace period passes in a second.
 */
export interface Tuning {
  /**
   * How long a node holds a conversation's outbox lane without renewing it (renewed every third of it while it
   * works): after a node dies, another takes its conversations over within this. Longer than any one delivery's
   * timeout would be safer still, but the lease is renewed while a delivery runs, so it only bounds recovery.
   */
  outboxLeaseMs: number;
  /** How long a participant whose sockets all dropped may take to come back before they count as gone. */
  presenceGraceMs: number;
  /** Unacknowledged deliveries per connector channel: a slow connector cannot hold the whole queue. */
  connectorMaxInFlight: number;
  /** The longest wait between two delivery attempts after a transient failure (backoff doubles up to it). */
  retryMaxMs: number;
  /** The longest wait between two tries to reach an agent while the desk has none. */
  noAgentRetryMaxMs: number;
  /**
   * Events a socket may have waiting behind the one being handled before it is disconnected: a customer sends one
   * at a time (its rate limit admits a burst), a connector or an agent application relays many customers at once.
   */
  maxQueuedEvents: { customer: number; apiKey: number };
  /**
   * How long a new connection may take to send its request's headers (a WebSocket upgrade, an API call) before the
   * server answers 408 and closes it: a connection that sends nothing holds nothing for longer. The whole request,
   * body included, gets `requestTimeoutMs`.
   */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /**
   * New Socket.IO sessions let through per turn of the event loop (`socket/handshake-pace.ts`): a reconnect storm
   * is taken in batches, with the clients already connected served between them.
   */
  handshakesPerTurn: number;
  /**
   * How long a node that shuts down keeps refusing socket events (`unavailable`) after the work under way is done and
   * before it closes the sockets, within `SHUTDOWN_GRACE_MS`: events a client sent before it heard of the shutdown
   * are still on their way, and each gets its refusal rather than silence.
   */
  shutdownLingerMs: number;
  /**
   * How often each node looks for conversations idle past `IDLE_TIMEOUT_SECONDS`: one ends within about this of
   * its time. The look is one read of an index when nothing is due.
   */
  idleSweepMs: number;
  /** Idle conversations read from the store at a time by that look (it reads again while a read comes back full). */
  idleSweepBatch: number;
  /**
   * How often each node looks for open desk sessions whose inbound stream (a desk that holds a connection per
   * conversation: Salesforce, LiveChat) runs nowhere: a dead node's streams move within about this plus the lease.
   */
  deskStreamScanMs: number;
  /** How long a node holds a conversation's desk stream without renewing it (renewed every third of it). */
  deskStreamLeaseMs: number;
  /** The first and the longest wait before a failed desk stream runs again (doubling between them, with jitter). */
  deskStreamRestartBaseMs: number;
  deskStreamRestartMaxMs: number;
}

export const defaultTuning: Readonly<Tuning> = Object.freeze({
  outboxLeaseMs: 30_000,
  presenceGraceMs: 30_000,
  connectorMaxInFlight: 100,
  retryMaxMs: 300_000,
  noAgentRetryMaxMs: 60_000,
  maxQueuedEvents: { customer: 64, apiKey: 1_024 },
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  handshakesPerTurn: 16,
  shutdownLingerMs: 1_000,
  idleSweepMs: 5_000,
  idleSweepBatch: 100,
  deskStreamScanMs: 1_000,
  deskStreamLeaseMs: 5_000,
  deskStreamRestartBaseMs: 500,
  deskStreamRestartMaxMs: 30_000,
});
