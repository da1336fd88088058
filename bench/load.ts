/**
 * One load worker: a child process started by `bench/run.ts` (`node --import tsx bench/load.ts`), so the load
 * does not share an event loop with the server it drives. It sets up `pairs` conversations the way real clients
 * do (for Liaison: `POST /api/customer/init`, then a customer socket and an API-key agent socket joining), tells
 * the parent it is ready, waits for `go`, and then:
 * - `closed`: each pair keeps one message in flight, alternating customer → agent and agent → customer; the next
 *   is sent once the peer received it (and, for parity and Liaison, the sender has its `{ ok: true }` ack);
 * - `open`: messages at a fixed rate, round robin over all its sockets, each timed send → receive (hrtime);
 * - `idle`: holds the conversations until told to stop.
 * With `desk` (the Rocket.Chat desk case), only customers: each waits until the desk's agent has joined, and in
 * `open` mode each customer message is timed from its send to the agent's `re: <text>` reply reaching the customer.
 * Every wait is bounded; the worker exits on its own after `lifetimeMs` or when its parent goes away.
 */
import { randomUUID } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type { ParentMessage, WorkerConfig, WorkerMessage, WorkerResult } from "./lib/types.js";

const config = JSON.parse(process.env.BENCH_WORKER ?? "{}") as WorkerConfig;
const STEP_TIMEOUT_MS = 15_000;

/** Sends to the parent; resolves once the message is handed over (so exiting right after loses nothing). */
function post(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) {
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

process.on("disconnect", () => process.exit(2));
setTimeout(() => {
  const bail = () => process.exit(5);
  setTimeout(bail, 1_000).unref();
  void post({ type: "error", message: `worker ${config.worker} ran out of time (${config.lifetimeMs} ms)` }).then(bail);
}, config.lifetimeMs).unref();

const nowNs = (): number => Number(process.hrtime.bigint());
const NS_PER_MS = 1e6;

interface Pair {
  index: number;
  conversationId: string;
  customer: Socket;
  /** Absent in the desk case (the agent is Rocket.Chat's). */
  agent?: Socket;
  /** What each socket sent to join (a reconnect joins again with it, plus `since`). */
  joins: Map<Socket, Record<string, unknown>>;
  /** The last `seq` the pair's sockets saw in their history. */
  lastSeq: number;
}

function agentOf(pair: Pair): Socket {
  if (!pair.agent) throw new Error("no agent socket in the desk case");
  return pair.agent;
}

interface ActivityArrived {
  type?: unknown;
  seq?: unknown;
  activityType?: unknown;
  info?: { role?: unknown };
}
const isAgentJoin = (message: ActivityArrived): boolean =>
  message.type === "ActivityMessage" && message.activityType === "participantJoined" && message.info?.role === "agent";

interface Ack {
  ok?: boolean;
  seq?: unknown;
  error?: { code?: string; message?: string };
}

interface Arrived {
  type?: unknown;
  id?: unknown;
  seq?: unknown;
}

const sockets: Socket[] = [];

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function connect(apiKey?: string, url = config.url): Promise<Socket> {
  const socket = io(url, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: STEP_TIMEOUT_MS,
    ...(apiKey === undefined ? {} : { auth: { apiKey } }),
  });
  sockets.push(socket);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", (error: Error) => reject(error));
    }),
    STEP_TIMEOUT_MS,
    "connect",
  );
  return socket;
}

/** Joins and, for Liaison, waits for the `conversationInfo` that follows the ack (the session is then live). */
async function join(socket: Socket, payload: Record<string, unknown>): Promise<{ messages?: ActivityArrived[] }> {
  const info =
    config.target === "liaison"
      ? withTimeout(
          new Promise<{ messages?: ActivityArrived[] }>((resolve) =>
            socket.once("conversationInfo", (value: { messages?: ActivityArrived[] }) => resolve(value)),
          ),
          STEP_TIMEOUT_MS,
          "conversationInfo",
        )
      : Promise.resolve({});
  const ack = (await socket.timeout(STEP_TIMEOUT_MS).emitWithAck("joinConversation", payload)) as Ack;
  if (ack.ok !== true) throw new Error(`joinConversation refused: ${JSON.stringify(ack)}`);
  return info;
}

interface InitAnswer {
  conversationId: string;
  participant: { id: string; name: string };
  token: string;
}

/** The highest `seq` in a `conversationInfo` history (0 for the baselines, which send none). */
const lastSeqOf = (info: { messages?: { seq?: unknown }[] }): number =>
  Math.max(0, ...(info.messages ?? []).map((message) => (typeof message.seq === "number" ? message.seq : 0)));

async function setupPair(index: number): Promise<Pair> {
  const email = `bench${index}@example.org`;
  const joins = new Map<Socket, Record<string, unknown>>();
  const joinAs = async (socket: Socket, payload: Record<string, unknown>) => {
    joins.set(socket, payload);
    return join(socket, payload);
  };
  if (config.target === "liaison") {
    const response = await fetch(`${config.url}/api/customer/init`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ firstName: "Bench", lastName: `P${index}`, channel: "web", email }),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`init answered ${response.status}: ${await response.text()}`);
    const init = (await response.json()) as InitAnswer;
    const customer = await connect();
    let agentJoined: () => void = () => undefined;
    const joined = new Promise<void>((resolve) => (agentJoined = resolve));
    const onArrived = (message: ActivityArrived) => {
      if (isAgentJoin(message)) agentJoined();
    };
    if (config.desk === true) customer.on("messageArrived", onArrived);
    const info = await joinAs(customer, {
      conversationId: init.conversationId,
      id: init.participant.id,
      name: init.participant.name,
      token: init.token,
    });
    if (config.desk === true) {
      // The hand-off: Liaison opens the Rocket.Chat room, the fake assigns its agent, the webhook brings the join.
      if (info.messages?.some(isAgentJoin) === true) agentJoined();
      await withTimeout(joined, STEP_TIMEOUT_MS, "the desk agent's join");
      customer.off("messageArrived", onArrived);
      return { index, conversationId: init.conversationId, customer, joins, lastSeq: lastSeqOf(info) };
    }
    const agent = await connect(config.apiKey, config.peerUrl);
    const agentInfo = await joinAs(agent, {
      conversationId: init.conversationId,
      id: `agent-${index}`,
      name: "Agent",
      role: "agent",
    });
    return { index, conversationId: init.conversationId, customer, agent, joins, lastSeq: lastSeqOf(agentInfo) };
  }
  const conversationId = `b-${index}`;
  const customer = await connect();
  await joinAs(customer, { conversationId, id: `cust-${index}`, name: `Bench P${index}`, refId: email });
  const agent = await connect(undefined, config.peerUrl);
  await joinAs(agent, { conversationId, id: `agent-${index}`, name: "Agent", role: "agent" });
  return { index, conversationId, customer, agent, joins, lastSeq: 0 };
}

/**
 * The idle mode's storm, first half: every socket's connection drops at once (a network blip, a balancer
 * restarting).
 */
function dropAll(pairs: readonly Pair[]): number {
  let dropped = 0;
  for (const pair of pairs) {
    for (const socket of pair.joins.keys()) {
      socket.disconnect();
      dropped++;
    }
  }
  return dropped;
}

/**
 * Second half: every socket comes back as socket.io-client does after a drop: its first attempt after
 * `reconnectionDelay` 1 s ± `randomizationFactor` 0.5 (so spread over 0.5–1.5 s), and after a failed attempt (a
 * refused handshake, or none within the connect timeout) the next after twice as long, up to
 * `reconnectionDelayMax` 5 s; once connected it joins again, with `since`. Resolves when every socket is back and
 * re-joined, or has failed: not back within `RECONNECT_GIVE_UP_MS`, or its join not answered.
 */
async function reconnectAll(
  pairs: readonly Pair[],
): Promise<{ sockets: number; failed: number; retries: number; ms: number }> {
  const started = Date.now();
  let failed = 0;
  let retries = 0;
  const attempt = (socket: Socket) => {
    const connected = new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        socket.off("connect_error", onError);
        resolve();
      };
      const onError = (error: Error) => {
        socket.off("connect", onConnect);
        reject(error);
      };
      socket.once("connect", onConnect);
      socket.once("connect_error", onError);
    });
    socket.connect();
    return connected;
  };
  const back = async (socket: Socket, payload: Record<string, unknown>, since: number) => {
    try {
      for (let tries = 0; ; tries++) {
        await sleep(Math.min(RECONNECT_DELAY_MS * 2 ** tries, RECONNECT_DELAY_MAX_MS) * jitter());
        try {
          await attempt(socket);
          break;
        } catch (error) {
          if (Date.now() - started > RECONNECT_GIVE_UP_MS) throw error;
          retries++;
        }
      }
      await join(socket, config.target === "liaison" ? { ...payload, since } : payload);
    } catch {
      failed++;
    }
  };
  const all = pairs.flatMap((pair) => [...pair.joins].map(([socket, payload]) => back(socket, payload, pair.lastSeq)));
  await Promise.all(all);
  return { sockets: all.length, failed, retries, ms: Date.now() - started };
}

/** socket.io-client's reconnection defaults (its `Backoff`: min 1 s, doubling, max 5 s, ±50 % jitter). */
const RECONNECT_DELAY_MS = 1_000;
const RECONNECT_DELAY_MAX_MS = 5_000;
const RECONNECT_RANDOMIZATION = 0.5;
/** A socket not back after this counts as failed (the storm's own time bound is the parent's). */
const RECONNECT_GIVE_UP_MS = 120_000;

function jitter(): number {
  return 1 + RECONNECT_RANDOMIZATION * (2 * Math.random() - 1);
}

async function setupAll(): Promise<Pair[]> {
  const pairs: Pair[] = new Array<Pair>(config.pairs);
  let next = 0;
  const lane = async () => {
    while (next < config.pairs) {
      const slot = next++;
      pairs[slot] = await setupPair(config.pairOffset + slot);
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.setupConcurrency, config.pairs) }, lane));
  return pairs;
}

/** A `sendMessage` payload of `messageBytes` bytes as JSON (the id is a UUID, as the SDK sends). */
function makeText(conversationId: string): string {
  const filler = "The quick brown fox jumps over the lazy dog; my order number is 8812, where is it? ";
  const skeleton = JSON.stringify({ type: "ChatMessage", conversationId, id: randomUUID(), text: "" });
  const length = Math.max(1, config.messageBytes - skeleton.length);
  return filler.repeat(Math.ceil(length / filler.length)).slice(0, length);
}

const needsAck = config.target !== "raw";

function percentileSorted(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

const roundUs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** `go`s from the parent not yet taken (the count mode takes one per batch). */
let goes = 0;
let onGo: (() => void) | undefined;
process.on("message", (raw: unknown) => {
  const message = raw as ParentMessage;
  if (message.type === "go") {
    goes++;
    onGo?.();
  }
  if (message.type === "stop") shutdown(0);
  if (message.type === "drop") onDrop?.();
  if (message.type === "reconnect") onReconnect?.();
});
let onDrop: (() => void) | undefined;
let onReconnect: (() => void) | undefined;

function nextGo(): Promise<void> {
  return new Promise((resolve) => {
    const take = () => {
      if (goes === 0) return;
      goes--;
      onGo = undefined;
      resolve();
    };
    onGo = take;
    take();
  });
}

function shutdown(code: number): void {
  for (const socket of sockets) socket.close();
  // Let the close frames go out, then leave.
  setTimeout(() => process.exit(code), 100).unref();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One message in flight per pair until the window closes, or, with `perPair` (the count mode), until each pair has
 * sent `perPair` messages (every one counted, no warm-up).
 */
async function closedLoop(pairs: Pair[], perPair?: number): Promise<WorkerResult> {
  const start = nowNs();
  const counted = perPair !== undefined;
  const windowStart = counted ? start : start + config.warmupMs * NS_PER_MS;
  const windowEnd = counted ? Number.POSITIVE_INFINITY : windowStart + config.measureMs * NS_PER_MS;
  let unfinished = pairs.length;
  let allFinished: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (allFinished = resolve));
  const cleanups: (() => void)[] = [];
  let running = true;
  let delivered = 0;
  let errors = 0;
  let orderViolations = 0;
  const latencies: number[] = [];

  interface Flight {
    id: string;
    sentNs: number;
    received: boolean;
    acked: boolean;
  }
  const inFlight = new Map<number, Flight>();

  const drive = (pair: Pair) => {
    const text = makeText(pair.conversationId);
    let n = 0;
    const lastAckSeq = new Map<Socket | Pair, number>();
    const lastArrivedSeq = new Map<Socket, number>();

    const complete = (flight: Flight) => {
      if (!flight.received || !flight.acked || inFlight.get(pair.index) !== flight) return;
      inFlight.delete(pair.index);
      const done = nowNs();
      if (done >= windowStart && done < windowEnd) {
        delivered++;
        latencies.push(roundUs((done - flight.sentNs) / NS_PER_MS));
      }
      n++;
      if (running && (perPair === undefined || n < perPair)) send();
      else if (--unfinished === 0) allFinished();
    };
    const onArrived = (receiver: Socket) => (message: Arrived) => {
      const flight = inFlight.get(pair.index);
      if (message.type !== "ChatMessage" || !flight || message.id !== flight.id) return;
      if (typeof message.seq === "number") {
        if (message.seq <= (lastArrivedSeq.get(receiver) ?? 0)) orderViolations++;
        lastArrivedSeq.set(receiver, message.seq);
      }
      flight.received = true;
      complete(flight);
    };
    const agent = agentOf(pair);
    const toCustomer = onArrived(pair.customer);
    const toAgent = onArrived(agent);
    pair.customer.on("messageArrived", toCustomer);
    agent.on("messageArrived", toAgent);
    cleanups.push(() => {
      pair.customer.off("messageArrived", toCustomer);
      agent.off("messageArrived", toAgent);
    });

    const send = () => {
      const from = n % 2 === 0 ? pair.customer : agent;
      const id = randomUUID();
      const flight: Flight = { id, sentNs: nowNs(), received: false, acked: !needsAck };
      inFlight.set(pair.index, flight);
      const payload = { type: "ChatMessage", conversationId: pair.conversationId, id, text };
      if (!needsAck) {
        from.emit("sendMessage", payload);
        return;
      }
      from.emit("sendMessage", payload, (ack: Ack) => {
        if (ack.ok !== true) {
          errors++;
          flight.received = true; // it will never arrive: move on
        } else if (typeof ack.seq === "number") {
          const key = config.ackOrderPerSender === true ? from : pair;
          if (ack.seq <= (lastAckSeq.get(key) ?? 0)) orderViolations++;
          lastAckSeq.set(key, ack.seq);
        }
        flight.acked = true;
        complete(flight);
      });
    };
    send();
  };

  for (const pair of pairs) drive(pair);
  let cpuWindow: NodeJS.CpuUsage;
  if (counted) {
    const cpuStart = process.cpuUsage();
    await finished;
    cpuWindow = process.cpuUsage(cpuStart);
  } else {
    await sleep(config.warmupMs);
    const cpuStart = process.cpuUsage();
    await sleep(config.measureMs);
    cpuWindow = process.cpuUsage(cpuStart);
    running = false;
    // Let the last messages land (bounded) so the sockets close cleanly.
    for (let waited = 0; inFlight.size > 0 && waited < 2_000; waited += 50) await sleep(50);
  }
  for (const cleanup of cleanups) cleanup();
  latencies.sort((a, b) => a - b);
  return {
    mode: "closed",
    delivered,
    windowMs: counted ? (nowNs() - start) / NS_PER_MS : config.measureMs,
    latencies,
    errors,
    orderViolations,
    stuck: inFlight.size,
    cpuMs: (cpuWindow.user + cpuWindow.system) / 1000,
  };
}

const DESK_REPLY = "re: ";
/** The id of the customer message a desk reply answers (`re: <uuid> …`), or undefined. */
function deskReplyOf(message: Arrived & { text?: unknown }): string | undefined {
  const text = message.text;
  if (typeof text !== "string" || !text.startsWith(DESK_REPLY)) return undefined;
  return text.slice(DESK_REPLY.length, DESK_REPLY.length + 36);
}

async function openLoop(pairs: Pair[]): Promise<WorkerResult> {
  interface Lane {
    pair: Pair;
    from: Socket;
    text: string;
    lastAckSeq: number;
  }
  interface Flight {
    sentNs: number;
    receivedNs: number;
    acked: boolean;
    inWindow: boolean;
  }
  const lanes: Lane[] = [];
  for (const pair of pairs) {
    const text = makeText(pair.conversationId);
    lanes.push({ pair, from: pair.customer, text, lastAckSeq: 0 });
    if (config.desk !== true) lanes.push({ pair, from: agentOf(pair), text, lastAckSeq: 0 });
  }
  const flights = new Map<string, Flight>();
  let errors = 0;
  let orderViolations = 0;
  let sent = 0;
  let sentInWindow = 0;
  let pendingInWindow = 0;
  let completedInWindow = 0;
  const latencies: number[] = [];
  const lags: number[] = [];

  const start = nowNs();
  const windowStart = start + config.warmupMs * NS_PER_MS;
  const windowEnd = windowStart + config.measureMs * NS_PER_MS;

  const finish = (id: string, flight: Flight) => {
    if (flight.receivedNs === 0 || !flight.acked) return;
    flights.delete(id);
    const done = nowNs();
    if (done >= windowStart && done < windowEnd) completedInWindow++;
    if (flight.inWindow) {
      pendingInWindow--;
      latencies.push(roundUs((flight.receivedNs - flight.sentNs) / NS_PER_MS));
    }
  };
  for (const pair of pairs) {
    for (const receiver of config.desk === true ? [pair.customer] : [pair.customer, agentOf(pair)]) {
      let lastSeq = 0;
      receiver.on("messageArrived", (message: Arrived) => {
        if (message.type !== "ChatMessage" || typeof message.id !== "string") return;
        // Desk case: the agent's reply `re: <id> <text>` completes the customer message `<id>`.
        const key = config.desk === true ? deskReplyOf(message) : message.id;
        if (key === undefined) return;
        const flight = flights.get(key);
        if (!flight || flight.receivedNs !== 0) return;
        flight.receivedNs = nowNs();
        if (typeof message.seq === "number") {
          if (message.seq <= lastSeq) orderViolations++;
          lastSeq = message.seq;
        }
        finish(key, flight);
      });
    }
  }

  const sendOne = (lane: Lane, scheduledNs: number) => {
    const id = randomUUID();
    const sentNs = nowNs();
    const inWindow = sentNs >= windowStart && sentNs < windowEnd;
    const flight: Flight = { sentNs, receivedNs: 0, acked: !needsAck, inWindow };
    flights.set(id, flight);
    if (inWindow) {
      sentInWindow++;
      pendingInWindow++;
      lags.push((sentNs - scheduledNs) / NS_PER_MS);
    }
    const text = config.desk === true ? `${id} ${lane.text}` : lane.text;
    const payload = { type: "ChatMessage", conversationId: lane.pair.conversationId, id, text };
    if (!needsAck) {
      lane.from.emit("sendMessage", payload);
      return;
    }
    lane.from.emit("sendMessage", payload, (ack: Ack) => {
      if (ack.ok !== true) {
        errors++;
        flight.receivedNs = flight.receivedNs || nowNs(); // never arrives: close it, counted as an error
      } else if (typeof ack.seq === "number") {
        if (ack.seq <= lane.lastAckSeq) orderViolations++;
        lane.lastAckSeq = ack.seq;
      }
      flight.acked = true;
      finish(id, flight);
    });
  };

  let cpuStart = process.cpuUsage();
  let cpuWindow: NodeJS.CpuUsage | undefined;
  const intervalNs = 1e9 / config.rate;
  await new Promise<void>((resolve) => {
    let cpuArmed = false;
    const timer = setInterval(() => {
      const now = nowNs();
      if (!cpuArmed && now >= windowStart) {
        cpuArmed = true;
        cpuStart = process.cpuUsage();
      }
      if (now >= windowEnd) {
        clearInterval(timer);
        cpuWindow = process.cpuUsage(cpuStart);
        resolve();
        return;
      }
      const due = Math.floor((now - start) / intervalNs);
      while (sent < due) {
        const lane = lanes[sent % lanes.length];
        if (lane) sendOne(lane, start + sent * intervalNs);
        sent++;
      }
    }, 1);
  });
  for (let waited = 0; pendingInWindow > 0 && waited < config.drainMs; waited += 20) await sleep(20);
  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  const usage = cpuWindow ?? process.cpuUsage(cpuStart);
  return {
    mode: "open",
    sent: sentInWindow,
    completedInWindow,
    windowMs: config.measureMs,
    latencies,
    lost: pendingInWindow,
    errors,
    orderViolations,
    scheduleLagP99: roundUs(percentileSorted(lags, 99)),
    scheduleLagMax: roundUs(lags.at(-1) ?? 0),
    cpuMs: (usage.user + usage.system) / 1000,
  };
}

async function main(): Promise<void> {
  const setupStart = Date.now();
  const pairs = await setupAll();
  await post({ type: "ready", setupMs: Date.now() - setupStart, sockets: pairs.length * 2 });
  if (config.messagesPerPair !== undefined) {
    // The count mode: one batch per `go`, each answered with its result, until `stop`.
    for (;;) {
      await nextGo();
      await post({ type: "result", result: await closedLoop(pairs, config.messagesPerPair) });
    }
  }
  if (config.mode === "idle") {
    // Held until the parent says stop or the lifetime runs out; each `reconnect` runs a storm.
    onReconnect = () => {
      void reconnectAll(pairs).then((outcome) => post({ type: "reconnected", ...outcome }));
    };
    onDrop = () => {
      void post({ type: "dropped", sockets: dropAll(pairs) });
    };
    return;
  }
  await nextGo();
  const result: WorkerResult = config.mode === "closed" ? await closedLoop(pairs) : await openLoop(pairs);
  await post({ type: "result", result });
  shutdown(0);
}

main().catch(async (error: unknown) => {
  await post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  shutdown(1);
});
