import { createApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";

let config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`liaison: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

const app = createApp(config);
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
process.on("unhandledRejection", (reason) => app.logger.error({ err: reason }, "unhandled rejection"));
