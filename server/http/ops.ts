import { Router } from "express";
import type { Registry } from "prom-client";
import { secretsEqual } from "../core/api-keys.js";
import { GatewayError } from "../core/errors.js";
import { bearer } from "./auth.js";
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
  /** When set, `/metrics` needs it as a bearer token. */
  metricsToken?: string | undefined;
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
  router.get("/metrics", async (req, res) => {
    if (deps.metricsToken !== undefined) {
      const given = bearer(req);
      if (given === undefined || !secretsEqual(given, deps.metricsToken)) {
        throw new GatewayError("unauthorized", "Send the metrics token as Authorization: Bearer <token>.");
      }
    }
    res.setHeader("Content-Type", deps.registry.contentType);
    res.send(await deps.registry.metrics());
  });
  return router;
}
