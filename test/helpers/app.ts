import { createApp, type App } from "../../server/app.js";
import { loadConfig } from "../../server/config.js";

export const TEST_API_KEY = "test-api-key-0123456789";

export interface TestApp {
  app: App;
  url: string;
  port: number;
  apiKey: string;
  close(): Promise<void>;
}

/** The real app on 127.0.0.1, any free port, with the built-in socket desk; `overrides` are env variables. */
export async function startTestApp(overrides: Record<string, string> = {}): Promise<TestApp> {
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    API_KEYS: TEST_API_KEY,
    INIT_RATE_LIMIT: "10000",
    ...overrides,
  });
  const app = createApp(config);
  const port = await app.listen();
  const url = `http://127.0.0.1:${port}`;
  return { app, url, port, apiKey: TEST_API_KEY, close: () => app.close() };
}
