import { Router } from "express";
import type { Registry } from "prom-client";
import { GatewayError } from "../core/errors.js";
import type { Logger } from "../logger.js";
import { sendError } from "./errors.js";

/** `/health` (the process answers), `/ready` (its dependencies answer), `/metrics` (Prometheus). */
export function opsRoutes(deps: {
  ping: () => Promise<void>;
  /** Adapters that cannot deliver now (a rejected credential): reported, but they do not fail readiness. */
  problems: () => Record<string, string>;
  registry: Registry;
  logger: Logger;
  isShuttingDown: () => boolean;
}): Router {
  const router = Router();
  router.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/ready", async (_req, res) => {
    if (deps.isShuttingDown()) {
      sendError(res, new GatewayError("unavailable", "Shutting down."));
      return;
    }
    try {
      await deps.ping();
      // A load balancer must keep sending traffic (web chat works, and the outbox holds what cannot go out);
      // monitoring reads `degraded` and the reasons.
      const problems = deps.problems();
      res.json(Object.keys(problems).length === 0 ? { status: "ready" } : { status: "degraded", problems });
    } catch (error) {
      deps.logger.warn({ err: error }, "readiness check failed");
      sendError(res, new GatewayError("unavailable", "The store is not reachable."));
    }
  });
  router.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", deps.registry.contentType);
    res.send(await deps.registry.metrics());
  });
  return router;
}
