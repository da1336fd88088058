import { createApp, type App, type AppOptions } from "./app.js";
import type { Config } from "./config.js";

/**
 * Runs the gateway as a process: listens, and on SIGTERM or SIGINT shuts down gracefully (within
 * `SHUTDOWN_GRACE_MS`, then exits). `server/main.ts` calls it with the environment's configuration.
 */
export async function runGateway(config: Config, options: AppOptions = {}): Promise<App> {
  const app = createApp(config, options);
  try {
    await app.listen();
  } catch (error) {
    app.logger.fatal({ err: error }, "cannot listen");
    process.exit(1);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, "shutting down");
    const deadline = setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS + 5_000);
    deadline.unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // A rejection nobody handled, or an exception nobody caught, leaves the process in a state nobody knows: it ends
  // (logged), and the supervisor (Docker, Kubernetes, systemd) starts a fresh one.
  process.on("unhandledRejection", (reason) => {
    app.logger.fatal({ err: reason }, "unhandled rejection");
    process.exit(1);
  });
  process.on("uncaughtException", (error) => {
    app.logger.fatal({ err: error }, "uncaught exception");
    process.exit(1);
  });
  return app;
}
