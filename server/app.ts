import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { AppServer } from "./socket/types.js";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import {
  RAPIDPRO_CHANNEL,
  RapidProChannel,
  SEND_MESSAGE_TO_AGENT_PATH,
  liveAgentsFastRoute,
  liveAgentsRoutes,
} from "./adapters/rapidpro/index.js";
import {
  RocketChatDesk,
  WEBHOOK_PATHS,
  mintVisitorToken,
  rocketChatRoutes,
  rocketChatWebhook,
} from "./adapters/rocketchat/index.js";
import type { Config } from "./config.js";
import { ApiKeys } from "./core/api-keys.js";
import { ConnectorDispatcher } from "./core/connectors.js";
import { ConversationService } from "./core/conversations.js";
import { ChannelLane } from "./core/channel.js";
import type { Desk } from "./core/desk.js";
import { DeskLane } from "./core/desk-outbox.js";
import { OutboxWorker, type LaneHandler, type OutboxOptions } from "./core/outbox.js";
import { LocalBus } from "./core/local-bus.js";
import { UrlSigner } from "./core/signed-urls.js";
import type { Clock } from "./core/ports.js";
import { connectorRoutes } from "./http/connectors.js";
import { ConnectionAdmission } from "./http/admission.js";
import { cors } from "./http/cors.js";
import { fastJsonRoutes, type FastJsonRoute } from "./http/fast-json.js";
import { customerRoutes, transcriptLimits } from "./http/customer.js";
import { errorHandler, notFound, sendError, shuttingDownError } from "./http/errors.js";
import { opsRoutes } from "./http/ops.js";
import { createLogger, type Logger } from "./logger.js";
import { Metrics } from "./metrics.js";
import { Fanout } from "./socket/fanout.js";
import { Presence, presenceRoom } from "./socket/presence.js";
import { nativeMasking } from "./socket/native-masking.js";
import { createSocketServer } from "./socket/server.js";
import { MemoryStore } from "./store/memory/memory-store.js";
import { RedisStore } from "./store/redis/redis-store.js";
import { ClusterBus } from "./socket/cluster-bus.js";
import type { ConversationStore } from "./store/store.js";
import { createTranscriptMailer } from "./transcript/mailer.js";
import { TranscriptRenderer } from "./transcript/renderer.js";

export interface App {
  readonly config: Config;
  readonly logger: Logger;
  readonly httpServer: HttpServer;
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
}

/** The composition root: config → logger → store → core → http + socket. The only place that picks implementations. */
export function createApp(config: Config, options: AppOptions = {}): App {
  const logger = options.logger ?? createLogger(config);
  const clock = options.clock ?? (() => new Date());
  const nodeId = config.NODE_ID ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const redisUrl = config.REDIS_URL;
  const store =
    options.store ??
    (redisUrl === undefined
      ? new MemoryStore()
      : new RedisStore({
          url: redisUrl,
          prefix: config.REDIS_PREFIX,
          campaignRetentionMs: config.ENDED_RETENTION_HOURS * 3_600_000,
          onEvent: (event, detail) => {
            if (event === "error") logger.warn({ err: detail }, "redis error");
            else logger.info({ event }, "redis connection");
          },
        }));
  const metrics = new Metrics(() => store.countByState());
  const apiKeys = new ApiKeys(config.API_KEYS);
  const bus = redisUrl === undefined ? new LocalBus() : new ClusterBus(logger.child({ component: "bus" }));
  const connectors: ConnectorDispatcher = new ConnectorDispatcher(
    store,
    {
      ackTimeoutMs: config.CONNECTOR_ACK_TIMEOUT_MS,
      maxInFlight: config.CONNECTOR_MAX_IN_FLIGHT,
      maxRefusals: config.CONNECTOR_MAX_REFUSALS,
      ...(redisUrl === undefined ? {} : { nodeId }),
      onUndeliverable: (channel, entry, reason): Promise<void> => core.connectorUndeliverable(channel, entry, reason),
    },
    logger.child({ component: "connectors" }),
    metrics,
  );
  if (config.ROCKETCHAT_URL !== undefined && config.ROCKETCHAT_WEBHOOK_TOKEN === undefined) {
    logger.warn(
      {},
      "ROCKETCHAT_WEBHOOK_TOKEN is not set: anyone who can reach /webhooks/rocketchat can post as an agent",
    );
  }
  if (config.RAPIDPRO_URL !== undefined && config.RAPIDPRO_WEBHOOK_TOKEN === undefined) {
    logger.warn({}, "RAPIDPRO_WEBHOOK_TOKEN is not set: anyone who can reach /live-agents/* can act for any contact");
  }
  if (
    (rocketChatConfigured(config) || config.RAPIDPRO_URL !== undefined) &&
    /\/\/(localhost|127\.|\[::1\])/.test(config.PUBLIC_URL)
  ) {
    logger.warn(
      { publicUrl: config.PUBLIC_URL },
      "PUBLIC_URL points at this machine: links to desk files will not open elsewhere",
    );
  }
  if (config.SIGNING_SECRET === undefined) {
    logger.warn({}, "SIGNING_SECRET is not set: file links are signed with a per-process key and die with it");
  }
  const signer = new UrlSigner(
    config.SIGNING_SECRET ?? randomBytes(32).toString("base64url"),
    config.FILE_URL_TTL_SECONDS,
  );
  const rapidPro =
    config.RAPIDPRO_URL === undefined || config.RAPIDPRO_TOKEN === undefined
      ? undefined
      : new RapidProChannel({
          config: { ...config, RAPIDPRO_URL: config.RAPIDPRO_URL, RAPIDPRO_TOKEN: config.RAPIDPRO_TOKEN },
          texts: config.LOCALIZED_TEXTS,
          deskName: config.DESK,
          fetchable: (url) =>
            url.origin === new URL(config.PUBLIC_URL).origin || config.FILE_FETCH_HOSTS.includes(url.hostname),
          logger: logger.child({ component: "rapidpro" }),
          observe: (operation, outcome, seconds) => metrics.observe("rapidpro", operation, outcome, seconds),
        });
  // Contacts' media live on the RapidPro server: the desk may fetch files from there.
  const fetchHosts = [
    ...config.FILE_FETCH_HOSTS,
    ...(config.RAPIDPRO_URL === undefined ? [] : [new URL(config.RAPIDPRO_URL).hostname]),
  ];
  const rocketChat =
    config.ROCKETCHAT_URL === undefined
      ? undefined
      : new RocketChatDesk({
          config: { ...config, ROCKETCHAT_URL: config.ROCKETCHAT_URL },
          logger: logger.child({ component: "rocketchat" }),
          fetchHosts,
          maxFileBytes: config.MAX_FILE_BYTES,
          observe: (operation, outcome, seconds) => metrics.observe("rocketchat", operation, outcome, seconds),
        });
  const desk: Desk | undefined = config.DESK === "rocketchat" ? rocketChat : undefined;
  const core: ConversationService = new ConversationService(
    store,
    bus,
    connectors,
    {
      greetingText: config.GREETING_TEXT,
      maxTextLength: config.MAX_TEXT_LENGTH,
      directChannels: config.DIRECT_CHANNELS,
      deskName: config.DESK,
      externalDesk: desk !== undefined,
      noAgentText: config.NO_AGENT_TEXT,
      ...(config.DESK === "rocketchat"
        ? {
            // A RapidPro contact's visitor token is its contact UUID (what the old mediator used); others get a fresh one.
            deskIds: (draft: { channel: string; refId?: string }) =>
              draft.channel === RAPIDPRO_CHANNEL && draft.refId !== undefined
                ? { visitorToken: draft.refId }
                : mintVisitorToken(),
          }
        : {}),
      ...(rapidPro ? { outboundChannels: [RAPIDPRO_CHANNEL] } : {}),
    },
    clock,
    logger.child({ component: "core" }),
    metrics,
  );
  const outboxOptions: OutboxOptions = {
    baseDelayMs: 500,
    maxDelayMs: config.DESK_RETRY_MAX_SECONDS * 1000,
    noAgentBaseMs: 2_000,
    noAgentMaxMs: config.NO_AGENT_RETRY_MAX_SECONDS * 1000,
    pollMs: 1_000,
    nodeId,
    leaseMs: config.OUTBOX_LEASE_MS,
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
  if (desk) core.attachDeskOutbox(lane(new DeskLane(store, desk, core)));
  if (rapidPro) core.attachChannelOutbox(lane(new ChannelLane(store, rapidPro, core)));
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

  const web = express();
  web.disable("x-powered-by");
  web.set("trust proxy", trustProxy(config.TRUST_PROXY));
  web.use((_req, res, next) => {
    res.setHeader("X-Content-Type-Options", "nosniff");
    next();
  });
  web.use(cors(config.CORS_ORIGINS));
  // While shutting down, inbound work (webhooks, flow calls, init) is refused with 503 so senders retry on another
  // node, rather than accepted by a node that is about to stop working its outbox.
  web.use((req, res, next) => {
    if (shuttingDown && req.method === "POST") {
      res.setHeader("Retry-After", "1");
      sendError(res, shuttingDownError());
      return;
    }
    next();
  });
  web.use(express.json({ limit: config.MAX_PAYLOAD_BYTES, strict: true }));
  web.use(
    opsRoutes({
      ping: () => store.ping(),
      problems: (): Record<string, string> => {
        const problems: Record<string, string> = {};
        const problem = rapidPro?.problem();
        if (problem !== undefined) problems.rapidpro = problem;
        if (config.ROCKETCHAT_URL !== undefined && config.ROCKETCHAT_WEBHOOK_TOKEN === undefined) {
          problems.rocketchatWebhook = "ROCKETCHAT_WEBHOOK_TOKEN is not set: webhooks are not authenticated";
        }
        if (config.RAPIDPRO_URL !== undefined && config.RAPIDPRO_WEBHOOK_TOKEN === undefined) {
          problems.rapidproWebhook = "RAPIDPRO_WEBHOOK_TOKEN is not set: flow webhooks are not authenticated";
        }
        return problems;
      },
      registry: metrics.registry,
      logger,
      isShuttingDown: () => shuttingDown,
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
      initRateLimit: config.INIT_RATE_LIMIT,
      allowedChannels: config.ALLOWED_CHANNELS,
      renderer,
      transcriptLimits: transcriptLimits({
        perAddressPerMinute: config.TRANSCRIPTS_PER_MINUTE,
        pdfsPerHour: config.TRANSCRIPT_PDFS_PER_HOUR,
        emailsPerHour: config.TRANSCRIPT_EMAILS_PER_HOUR,
      }),
      observeSmtp: (outcome, seconds) =>
        metrics.adapterLatency.observe({ adapter: "smtp", operation: "send", outcome }, seconds),
    }),
  );
  web.use("/api/connectors", connectorRoutes({ core, apiKeys, maxTextLength: config.MAX_TEXT_LENGTH }));
  // The per-message webhooks are answered by `node:http` directly in their plain case (`fastJsonRoutes`).
  const fastRoutes = new Map<string, FastJsonRoute>();
  if (rapidPro) {
    const deps = {
      core,
      store,
      channel: rapidPro,
      config,
      externalDesk: desk !== undefined,
      maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
      logger: logger.child({ component: "live-agents" }),
    };
    const sendMessageToAgent = liveAgentsFastRoute(deps);
    fastRoutes.set(SEND_MESSAGE_TO_AGENT_PATH, sendMessageToAgent);
    web.use(liveAgentsRoutes(deps, sendMessageToAgent));
  }
  if (rocketChat) {
    const deps = {
      core,
      store,
      client: rocketChat.client,
      signer,
      publicUrl: config.PUBLIC_URL,
      webhookToken: config.ROCKETCHAT_WEBHOOK_TOKEN,
      logger: logger.child({ component: "rocketchat" }),
    };
    const webhook = rocketChatWebhook(deps);
    for (const path of WEBHOOK_PATHS) fastRoutes.set(path, { handler: webhook });
    web.use(rocketChatRoutes(deps, webhook));
  }
  web.use(notFound);
  web.use(errorHandler(logger));
  const fast = fastJsonRoutes(fastRoutes, {
    maxBytes: config.MAX_PAYLOAD_BYTES,
    corsOrigins: config.CORS_ORIGINS,
    isShuttingDown: () => shuttingDown,
    logger,
  });

  const httpServer = createServer((req, res) => {
    if (!fast(req, res)) web(req, res);
  });
  const admission = new ConnectionAdmission(httpServer, {
    maxOpening: config.MAX_OPENING_CONNECTIONS,
    openingTimeoutMs: 2_000,
  });
  metrics.watchWaitingConnections(() => admission.queued);
  // Several nodes: Socket.IO's Redis adapter links them (cross-node emits, fetchSockets, the bus above).
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
          for (const client of [pub, sub])
            client.on("error", (error: unknown) => logger.warn({ err: error }, "redis adapter error"));
          return { pub, sub };
        })();
  const fanout = new Fanout(bus);
  const presence = new Presence(config.PRESENCE_GRACE_MS, (conversationId, member) => {
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
    { core, store, fanout, presence, clusterPresence: redisUrl !== undefined, connectors, logger },
    {
      path: config.SOCKET_PATH,
      corsOrigins: config.CORS_ORIGINS,
      maxPayloadBytes: config.MAX_PAYLOAD_BYTES,
      apiKeys,
      customerRateLimit: { perSecond: config.CUSTOMER_EVENTS_PER_SECOND, burst: config.CUSTOMER_EVENTS_BURST },
      onConnectionChange: (delta) => metrics.sockets.inc(delta),
    },
  );
  if (adapterClients) {
    io.adapter(
      config.REDIS_ADAPTER === "sharded"
        ? createShardedAdapter(adapterClients.pub, adapterClients.sub, { channelPrefix: `${config.REDIS_PREFIX}sio` })
        : createAdapter(adapterClients.pub, adapterClients.sub, { key: `${config.REDIS_PREFIX}sio` }),
    );
  }
  if (bus instanceof ClusterBus) bus.attach(io);

  const retentionMs = config.ENDED_RETENTION_HOURS * 3_600_000;
  const sweeper = setInterval(() => {
    store
      .sweepEnded(new Date(clock().getTime() - retentionMs))
      .then((removed) => removed > 0 && logger.info({ removed }, "ended conversations expired"))
      .catch((error: unknown) => logger.warn({ err: error }, "retention sweep failed"));
  }, 600_000);
  sweeper.unref();

  return {
    config,
    logger,
    httpServer,
    io,
    store,
    core,
    metrics,
    listen: () =>
      new Promise((resolve, reject) => {
        const { listener } = admission;
        listener.once("error", reject);
        listener.listen(config.PORT, config.HOST, () => {
          listener.off("error", reject);
          listener.on("error", (error) => logger.error({ err: error }, "listening socket error"));
          // The HTTP server serves the connections the admission hands it: it starts its request and header
          // timeouts (slow clients) on "listening", as when it listens itself.
          httpServer.emit("listening");
          const port = (listener.address() as AddressInfo).port;
          logger.info(
            {
              host: config.HOST,
              port,
              desk: config.DESK,
              node: nodeId,
              store: redisUrl === undefined ? "memory" : "redis",
              nativeMasking: nativeMasking(),
            },
            "listening",
          );
          for (const worker of workers) worker.start();
          resolve(port);
        });
      }),
    close: async () => {
      if (shuttingDown) return;
      // 1. /ready answers 503 and no new connection is accepted (the load balancer moves traffic away).
      shuttingDown = true;
      clearInterval(sweeper);
      const stopped = admission.close();
      // The HTTP server listens on nothing itself; its close stops its timeout checks and ends idle keep-alive
      // connections (and reports, harmlessly, that it was not listening).
      httpServer.close(() => undefined);
      // 2. Deliveries under way finish (or their leases pass to another node); nothing new starts here.
      connectors.stop();
      await Promise.all(workers.map((worker) => worker.stop(config.SHUTDOWN_GRACE_MS)));
      // 3. Sockets are disconnected: clients reconnect to another node and resume with `since`.
      const closed = new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
      const grace = setTimeout(() => httpServer.closeAllConnections(), config.SHUTDOWN_GRACE_MS);
      httpServer.closeIdleConnections();
      await closed;
      await stopped;
      clearTimeout(grace);
      fanout.close();
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

const rocketChatConfigured = (config: Config): boolean => config.ROCKETCHAT_URL !== undefined;

/** `TRUST_PROXY`: true/false, a hop count, or Express's named ranges / CIDR list. */
function trustProxy(value: string): boolean | number | string {
  if (value === "true") return true;
  if (value === "false") return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}
