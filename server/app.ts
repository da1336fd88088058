import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type Express } from "express";
import type { AppServer } from "./socket/types.js";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import type { AdapterInstance, AdapterModule, GatewaySettings } from "./adapters/contract.js";
import { adapterModules } from "./adapters/index.js";
import type { Config } from "./config.js";
import { ApiKeys } from "./core/api-keys.js";
import { ConnectorDispatcher } from "./core/connectors.js";
import { ConversationService } from "./core/conversations.js";
import { BotLane } from "./core/bot-outbox.js";
import { ChannelLane } from "./core/channel.js";
import type { Channel } from "./core/channel.js";
import { DeskLane } from "./core/desk-outbox.js";
import { DeskStreams, hasStream } from "./core/desk-streams.js";
import { IdleSweeper } from "./core/idle-sweeper.js";
import { OutboxWorker, type LaneHandler, type OutboxOptions } from "./core/outbox.js";
import { LocalBus } from "./core/local-bus.js";
import { OutageLog } from "./core/outage-log.js";
import { UrlSigner } from "./core/signed-urls.js";
import type { Clock } from "./core/ports.js";
import { apiDocsRoutes } from "./http/api-docs.js";
import { connectorRoutes } from "./http/connectors.js";
import { conversationRoutes } from "./http/conversations.js";
import cors from "cors";
import { corsOptions } from "./http/cors.js";
import { customerRoutes, initLimits, transcriptLimits } from "./http/customer.js";
import { errorHandler, notFound, sendError, shuttingDownError } from "./http/errors.js";
import { frontPageRoutes } from "./http/front-page.js";
import { opsRoutes } from "./http/ops.js";
import { widgetRoutes } from "./http/widget.js";
import { createLogger, type Logger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { Fanout } from "./socket/fanout.js";
import { Presence, presenceRoom } from "./socket/presence.js";
import { QueueFeed } from "./socket/queue.js";
import { EventGate } from "./socket/registry.js";
import { HandshakePace } from "./socket/handshake-pace.js";
import { createSocketServer } from "./socket/server.js";
import { MemoryStore } from "./store/memory/memory-store.js";
import { RedisStore } from "./store/redis/redis-store.js";
import { ClusterBus } from "./socket/cluster-bus.js";
import type { ConversationStore } from "./core/store.js";
import { createTranscriptMailer } from "./transcript/mailer.js";
import { defaultTuning, type Tuning } from "./tuning.js";
import { TranscriptRenderer } from "./transcript/renderer.js";

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly httpServer: HttpServer;
  /** The express app: every REST route (what `/openapi.json` documents). */
  readonly web: Express;
  readonly io: AppServer;
  readonly store: ConversationStore;
  readonly core: ConversationService;
  readonly metrics: Metrics;
  /** Listens on `PORT`/`HOST` (port 0: any free port) and resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops accepting, disconnects sockets, finishes what it can within `SHUTDOWN_GRACE_MS`, closes the store. */
  close(): Promise<void>;
}

export interface AppOptions {
  logger?: Logger;
  store?: ConversationStore;
  clock?: Clock;
  /** Shorter timings for tests (a lease that passes in a second); production uses `defaultTuning`. */
  tuning?: Partial<Tuning>;
}

/** The composition root: config → logger → store → core → http + socket. The only place that picks implementations. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const logger = options.logger ?? createLogger(config);
  const tuning: Tuning = { ...defaultTuning, ...options.tuning };
  const clock = options.clock ?? (() => new Date());
  const nodeId = config.NODE_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const redisUrl = config.REDIS_URL;
  // Redis down: one warning when it goes, one when it is back (ioredis reports every reconnection attempt).
  const redisOutage = new OutageLog(logger, "redis");
  const store =
    options.store ??
    (redisUrl === undefined
      ? new MemoryStore()
      : new RedisStore({
          url: redisUrl,
          prefix: config.REDIS_PREFIX,
          campaignRetentionMs: config.ENDED_RETENTION_HOURS * 3_600_000,
          onEvent: (event, detail) => {
            if (event === "error") redisOutage.failed(detail);
            else if (event === "ready") redisOutage.succeeded();
            else logger.debug({ event }, "redis connection");
          },
        }));
  const metrics = new Metrics(() => store.countByState());
  const apiKeys = new ApiKeys(config.API_KEYS);
  const bus = redisUrl === undefined ? new LocalBus() : new ClusterBus(logger.child({ component: "bus" }));
  const connectors: ConnectorDispatcher = new ConnectorDispatcher(
    store,
    {
      ackTimeoutMs: config.CONNECTOR_ACK_TIMEOUT_MS,
      maxInFlight: tuning.connectorMaxInFlight,
      maxRefusals: config.CONNECTOR_MAX_REFUSALS,
      ...(redisUrl === undefined ? {} : { nodeId }),
      onUndeliverable: (channel, entry, reason): Promise<void> => core.connectorUndeliverable(channel, entry, reason),
    },
    logger.child({ component: "connectors" }),
    metrics,
  );
  if (config.SIGNING_SECRET === undefined) {
    logger.warn({}, "SIGNING_SECRET is not set: file links are signed with a per-process key and die with it");
  }
  const signer = new UrlSigner(
    config.SIGNING_SECRET ?? randomBytes(32).toString("base64url"),
    config.FILE_URL_TTL_SECONDS,
  );

  const enabled = adapterModules.filter((module) => module.enabled(config));
  const channelModules = enabled.filter((module) => module.kind === "channel");
  const core: ConversationService = new ConversationService(
    store,
    bus,
    connectors,
    {
      greetingText: config.GREETING_TEXT,
      maxTextLength: config.MAX_TEXT_LENGTH,
      directChannels: config.DIRECT_CHANNELS,
      deskName: config.DESK,
      // The configuration accepts DESK only when it names the built-in socket desk or an enabled desk module.
      externalDesk: config.DESK !== "socket",
      noAgentText: config.NO_AGENT_TEXT,
      outboundChannels: channelModules.map((module) => module.name),
      stableRefChannels: channelModules.filter((module) => module.stableRefIds === true).map((module) => module.name),
      ...(config.BOT === "none"
        ? {}
        : { bot: { name: config.BOT, participantName: config.BOT_NAME, afterAgent: config.BOT_AFTER_AGENT } }),
    },
    clock,
    logger.child({ component: "core" }),
    metrics,
  );

  // The adapters: every enabled module, in the order of the list.
  const gateway: GatewaySettings = {
    publicUrl: config.PUBLIC_URL,
    maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
    maxFileBytes: config.MAX_FILE_BYTES,
    fetchHosts: [...config.FILE_FETCH_HOSTS, ...enabled.flatMap((module) => module.fileHosts?.(config) ?? [])],
    desk: { name: config.DESK, external: config.DESK !== "socket" },
  };
  const adapters = new Map<AdapterModule, AdapterInstance>();
  for (const module of enabled) {
    const adapterLogger = logger.child({ component: module.name });
    const instance = module.create({
      config,
      gateway,
      core,
      store,
      signer,
      logger: adapterLogger,
      observe: (operation, outcome, seconds) => metrics.observe(module.name, operation, outcome, seconds),
    });
    for (const warning of instance.warnings ?? []) adapterLogger.warn({}, warning.log);
    adapters.set(module, instance);
  }
  const desk = [...adapters].find(([module]) => module.name === config.DESK)?.[1].desk;
  // The configuration accepts BOT only when it names an enabled bot module.
  const bot = [...adapters].find(([module]) => module.kind === "bot" && module.name === config.BOT)?.[1].bot;
  const channels = [...adapters.values()].flatMap((instance): Channel[] =>
    instance.channel === undefined ? [] : [instance.channel],
  );
  const outboxOptions: OutboxOptions = {
    baseDelayMs: 500,
    maxDelayMs: tuning.retryMaxMs,
    noAgentBaseMs: 2_000,
    noAgentMaxMs: tuning.noAgentRetryMaxMs,
    pollMs: 1_000,
    nodeId,
    leaseMs: tuning.outboxLeaseMs,
  };
  const workers: OutboxWorker[] = [];
  const lane = (handler: LaneHandler): OutboxWorker => {
    const worker = new OutboxWorker(
      store,
      handler,
      outboxOptions,
      logger.child({ component: "outbox", lane: handler.lane }),
      metrics,
    );
    workers.push(worker);
    return worker;
  };
  // A desk that holds a connection per conversation (its agents' events come over it, not by webhook).
  const streamDesk = desk !== undefined && hasStream(desk) ? desk : undefined;
  const streams =
    streamDesk === undefined
      ? undefined
      : new DeskStreams(
          store,
          streamDesk,
          core,
          {
            nodeId,
            scanMs: tuning.deskStreamScanMs,
            leaseMs: tuning.deskStreamLeaseMs,
            restartBaseMs: tuning.deskStreamRestartBaseMs,
            restartMaxMs: tuning.deskStreamRestartMaxMs,
            pageSize: 200,
          },
          logger.child({ component: "desk-streams" }),
          {
            running: (delta) => metrics.deskStreams.inc({ desk: streamDesk.name }, delta),
            restarted: () => metrics.deskStreamRestarts.inc({ desk: streamDesk.name }),
          },
        );
  if (desk) {
    const deskLane = new DeskLane(
      store,
      desk,
      core,
      (id) => streams?.notify(id),
      () => clock().getTime(),
    );
    core.attachDesk(desk, lane(deskLane));
  }
  if (channels.length > 0) core.attachChannelOutbox(lane(new ChannelLane(store, channels, core)));
  if (bot) core.attachBotOutbox(lane(new BotLane(store, bot, core, config.BOT_FAILURE_HANDOFF_SECONDS * 1000)));
  const mailer =
    config.SMTP_URL === undefined
      ? undefined
      : createTranscriptMailer({
          smtpUrl: config.SMTP_URL,
          from: config.MAIL_FROM,
          logger: logger.child({ component: "mailer" }),
        });
  const renderer = new TranscriptRenderer({
    branding: {
      title: config.TRANSCRIPT_TITLE,
      ...(config.TRANSCRIPT_LOGO_FILE === undefined ? {} : { logo: config.TRANSCRIPT_LOGO_FILE }),
    },
    observe: (outcome, seconds) => metrics.transcriptRender.observe({ outcome }, seconds),
  });
  let shuttingDown = false;
  const gate = new EventGate();
  const handshakes = new HandshakePace(tuning.handshakesPerTurn);

  // Several nodes: Socket.IO's Redis adapter links them (cross-node emits, fetchSockets, the bus above), and the
  // rate limits count on its publishing client, so that N nodes allow what one does.
  const adapterClients =
    redisUrl === undefined
      ? undefined
      : (() => {
          const pub = new Redis(redisUrl, {
            maxRetriesPerRequest: null,
            retryStrategy: (n) => Math.min(2_000, 50 * 2 ** Math.min(n, 6)),
            // A tick's publishes (one per message sent across nodes) go out as one pipeline, in order.
            enableAutoPipelining: true,
          });
          const sub = pub.duplicate({ enableAutoPipelining: false });
          for (const client of [pub, sub]) {
            client.on("error", (error: unknown) => redisOutage.failed(error));
            client.on("ready", () => redisOutage.succeeded());
          }
          return { pub, sub };
        })();
  const limitsRedis = adapterClients && { client: adapterClients.pub, prefix: config.REDIS_PREFIX };

  const web = express();
  web.disable("x-powered-by");
  web.set("trust proxy", trustProxy(config.TRUST_PROXY));
  web.use((_req, res, next) => {
    res.setHeader("X-Content-Type-Options", "nosniff");
    next();
  });
  const corsPolicy = corsOptions(config.CORS_ORIGINS);
  web.use(cors(corsPolicy));
  // While shutting down, every request on a connection still open (webhooks, flow calls, init, transcripts) is
  // refused with 503 so that its sender retries on another node, and the connection is closed after the answer.
  // `/health`, `/ready` (which says 503 itself) and `/metrics` still answer.
  web.use((req, res, next) => {
    if (shuttingDown && !OPS_PATHS.has(req.path)) {
      res.setHeader("Retry-After", "1");
      res.setHeader("Connection", "close");
      sendError(res, shuttingDownError());
      return;
    }
    next();
  });
  // Adapters that answer a malformed body in their platform's own shape read their routes' bodies themselves.
  const ownBodyPaths = new Set([...adapters.values()].flatMap((instance) => instance.ownBodyPaths ?? []));
  const json = express.json({ limit: config.MAX_PAYLOAD_BYTES, strict: true });
  web.use((req, res, next) => {
    if (ownBodyPaths.has(req.path)) next();
    else json(req, res, next);
  });
  web.use(
    opsRoutes({
      ping: () => store.ping(),
      problems: (): Record<string, string> => {
        const problems: Record<string, string> = {};
        for (const worker of workers) {
          const problem = worker.problem();
          if (problem !== undefined) problems[worker.destination] = problem;
        }
        const streamProblem = streams?.problem();
        if (streamProblem !== undefined) problems[`desk:${config.DESK}:streams`] = streamProblem;
        for (const [module, instance] of adapters) {
          // Only the `ready` faces: the details (variables, hosts, what the system said) are in the log.
          const notices = [instance.problem?.(), ...(instance.warnings ?? [])];
          const all = notices.filter((notice) => notice !== undefined).map((notice) => notice.ready);
          if (all.length > 0) problems[module.name] = all.join("; ");
        }
        return problems;
      },
      registry: metrics.registry,
      logger,
      isShuttingDown: () => shuttingDown,
      metricsToken: config.METRICS_TOKEN,
    }),
  );
  web.use(
    "/api/customer",
    customerRoutes({
      core,
      store,
      apiKeys,
      mailer,
      logger,
      maxTextLength: config.MAX_TEXT_LENGTH,
      initLimits: initLimits({
        perAddressPerMinute: config.INIT_RATE_LIMIT,
        perApiKeyPerMinute: config.INIT_API_KEY_RATE_LIMIT,
        ...(limitsRedis === undefined ? {} : { redis: limitsRedis }),
      }),
      allowedChannels: config.ALLOWED_CHANNELS,
      renderer,
      transcriptLimits: transcriptLimits({
        perAddressPerMinute: config.TRANSCRIPTS_PER_MINUTE,
        pdfsPerHour: config.TRANSCRIPT_PDFS_PER_HOUR,
        emailsPerHour: config.TRANSCRIPT_EMAILS_PER_HOUR,
        ...(limitsRedis === undefined ? {} : { redis: limitsRedis }),
      }),
      observeSmtp: (outcome, seconds) =>
        metrics.adapterLatency.observe({ adapter: "smtp", operation: "send", outcome }, seconds),
    }),
  );
  web.use("/api/connectors", connectorRoutes({ core, apiKeys, maxTextLength: config.MAX_TEXT_LENGTH }));
  web.use("/api/conversations", conversationRoutes({ store, apiKeys }));
  web.use(
    widgetRoutes({
      corsOrigins: config.CORS_ORIGINS,
      socketPath: config.SOCKET_PATH,
      maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
      maxFileBytes: config.MAX_FILE_BYTES,
    }),
  );
  for (const instance of adapters.values()) if (instance.router) web.use(instance.router);
  web.use(apiDocsRoutes({ publicUrl: config.PUBLIC_URL, socketPath: config.SOCKET_PATH }));
  web.use(frontPageRoutes());
  web.use(notFound);
  web.use(errorHandler(logger));
  const httpServer = createServer(
    {
      headersTimeout: tuning.headersTimeoutMs,
      requestTimeout: tuning.requestTimeoutMs,
      // How often Node checks those timeouts (its default, 30 s, would let a silent connection stay three times longer).
      connectionsCheckingInterval: Math.min(2_000, tuning.headersTimeoutMs),
    },
    web,
  );
  const fanout = new Fanout(bus);
  const queue = new QueueFeed(bus);
  const presence = new Presence(tuning.presenceGraceMs, (conversationId, member) => {
    // Gone from this node; maybe reconnected to another: the presence room spans the cluster.
    io.in(presenceRoom(conversationId, member))
      .fetchSockets()
      .then(async (sockets) => {
        if (sockets.length > 0) return;
        await core.left(await core.get(conversationId), member);
      })
      .catch((error: unknown) => logger.warn({ err: error, conversationId }, "presence update failed"));
  });
  const io = createSocketServer(
    httpServer,
    { core, store, fanout, queue, presence, clusterPresence: redisUrl !== undefined, connectors, logger },
    {
      path: config.SOCKET_PATH,
      cors: corsPolicy,
      maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
      apiKeys,
      customerRateLimit: { perSecond: config.CUSTOMER_EVENTS_PER_SECOND, burst: config.CUSTOMER_EVENTS_BURST },
      maxQueuedEvents: tuning.maxQueuedEvents,
      handshakes,
      gate,
      onConnectionChange: (delta) => metrics.sockets.inc(delta),
    },
  );
  if (bus instanceof ClusterBus) bus.attach(io);

  const retentionMs = config.ENDED_RETENTION_HOURS * 3_600_000;
  const sweeper = setInterval(() => {
    store
      .sweepEnded(new Date(clock().getTime() - retentionMs))
      .then((removed) => removed > 0 && logger.info({ removed }, "ended conversations expired"))
      .catch((error: unknown) => logger.warn({ err: error }, "retention sweep failed"));
  }, 600_000);
  sweeper.unref();
  const idle = new IdleSweeper(
    store,
    core,
    { idleMs: config.IDLE_TIMEOUT_SECONDS * 1000, everyMs: tuning.idleSweepMs, batch: tuning.idleSweepBatch },
    clock,
    logger.child({ component: "idle" }),
  );

  return {
    config,
    logger,
    httpServer,
    web,
    io,
    store,
    core,
    metrics,
    listen: async () => {
      // Links to the other nodes first (cross-node delivery, shared rate limits), for a few seconds at most: a node
      // whose Redis is down still starts, degraded, and connects when Redis is back.
      if (adapterClients) {
        const refused = await readyWithin([adapterClients.pub, adapterClients.sub], 5_000);
        // Credentials Redis refuses make the node useless, and the adapter's commands would be refused one by one:
        // the node does not start (its supervisor says why, and retries).
        if (refused !== undefined) throw new Error(`Redis refused the credentials of REDIS_URL: ${refused}`);
        // The classic (pub/sub) adapter: the store connects to one Redis, never a Cluster, where sharded pub/sub would
        // spread nothing. Installed once the clients are up, before any socket can connect.
        io.adapter(createAdapter(adapterClients.pub, adapterClients.sub, { key: `${config.REDIS_PREFIX}sio` }));
      }
      return new Promise<number>((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(config.PORT, config.HOST, () => {
          httpServer.off("error", reject);
          httpServer.on("error", (error) => logger.error({ err: error }, "listening socket error"));
          const port = (httpServer.address() as AddressInfo).port;
          logger.info(
            {
              host: config.HOST,
              port,
              desk: config.DESK,
              node: nodeId,
              store: redisUrl === undefined ? "memory" : "redis",
            },
            "listening",
          );
          for (const worker of workers) worker.start();
          streams?.start();
          idle.start();
          resolve(port);
        });
      });
    },
    close: async () => {
      if (shuttingDown) return;
      const deadline = Date.now() + config.SHUTDOWN_GRACE_MS;
      // 1. New connections are refused (the load balancer moves on) and /ready answers 503; requests on connections
      //    still open get 503 with Retry-After, socket events not yet started get `unavailable` (clients resend them,
      //    by id, to another node).
      shuttingDown = true;
      handshakes.close();
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      clearInterval(sweeper);
      // 2. What is under way finishes within the grace period: socket events (their acks go out), deliveries (or
      //    their leases pass to another node), requests.
      connectors.stop();
      await withinGrace(
        Promise.all([
          gate.close(),
          idle.stop(),
          streams?.stop(),
          ...workers.map((worker) => worker.stop(config.SHUTDOWN_GRACE_MS)),
        ]),
        deadline,
      );
      // 3. Events already on their way get their refusal too; then the sockets are disconnected, their last acks
      //    flushed: clients reconnect to another node and resume with `since`.
      if (io.engine.clientsCount > 0) {
        await withinGrace(new Promise((resolve) => setTimeout(resolve, tuning.shutdownLingerMs)), deadline);
      }
      const closed = new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
      const grace = setTimeout(() => httpServer.closeAllConnections(), Math.max(0, deadline - Date.now()));
      httpServer.closeIdleConnections();
      await closed;
      await stopped;
      clearTimeout(grace);
      fanout.close();
      queue.close();
      presence.close();
      if (adapterClients)
        await Promise.all([adapterClients.pub.quit(), adapterClients.sub.quit()]).catch(() => undefined);
      mailer?.close();
      await renderer.close();
      await store.close();
      logger.info({}, "closed");
    },
  };
}

/** The paths that answer while the node shuts down. */
const OPS_PATHS: ReadonlySet<string> = new Set(["/health", "/ready", "/metrics"]);

/** Waits for `work`, but not past `deadline` (epoch ms). */
async function withinGrace(work: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work,
    new Promise((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    }),
  ]);
  clearTimeout(timer);
}

/**
 * Resolves once every client is ready, or after `timeoutMs`, whichever comes first, or as soon as Redis refuses a
 * client's credentials (with Redis's refusal, e.g. `WRONGPASS …`, which names no secret).
 */
async function readyWithin(clients: readonly Redis[], timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const listeners: (() => void)[] = [];
  // Not `events.once`, which rejects on the first connection error: only readiness or a refusal ends the wait.
  const ready = Promise.all(
    clients
      .filter((client) => client.status !== "ready")
      .map((client) => new Promise((resolve) => client.once("ready", resolve))),
  ).then(() => undefined);
  const refused = new Promise<string>((resolve) => {
    for (const client of clients) {
      const onError = (error: Error) => {
        if (/^(WRONGPASS|NOAUTH|NOPERM)\b/.test(error.message)) resolve(error.message);
      };
      client.on("error", onError);
      listeners.push(() => client.off("error", onError));
    }
  });
  const outcome = await Promise.race([
    ready,
    refused,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  for (const remove of listeners) remove();
  return outcome;
}

/** `TRUST_PROXY`: true/false, a hop count, or Express's named ranges / CIDR list. */
function trustProxy(value: string): boolean | number | string {
  if (value === "true") return true;
  if (value === "false") return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}
