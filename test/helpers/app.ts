import { createServer } from "node:net";
import { createApp, type App, type AppOptions } from "../../server/app.js";
import { loadConfig } from "../../server/config.js";

export const TEST_API_KEY = "test-api-key-0123456789";

export interface TestApp {
  app: App;
  url: string;
  port: number;
  apiKey: string;
  close(): Promise<void>;
}

/** A port nothing listens on right now (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The real app on 127.0.0.1 with the built-in socket desk unless `overrides` (env variables) say otherwise, with
 * `options` (shorter timings, a logger of the test's own). The port is chosen first so that PUBLIC_URL (the base of the links the gateway
 * hands out) is right.
 */
export async function startTestApp(overrides: Record<string, string> = {}, options: AppOptions = {}): Promise<TestApp> {
  const port = overrides.PORT ?? String(await freePort());
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: port,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    SIGNING_SECRET: "test-signing-secret-0123456789abcdef",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    API_KEYS: TEST_API_KEY,
    INIT_RATE_LIMIT: "10000",
    TRANSCRIPTS_PER_MINUTE: "10000",
    ...overrides,
  });
  // Tests close many gateways with sockets still open: a short linger (see `Tuning`) unless the test sets one.
  const app = createApp(config, { ...options, tuning: { shutdownLingerMs: 50, ...options.tuning } });
  let bound: number;
  try {
    bound = await app.listen();
  } catch (error) {
    await app.close();
    throw error;
  }
  const url = `http://127.0.0.1:${bound}`;
  return { app, url, port: bound, apiKey: TEST_API_KEY, close: () => app.close() };
}
