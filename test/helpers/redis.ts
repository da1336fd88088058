import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./app.js";

export interface TestRedis {
  url: string;
  /** Stops the server (SIGKILL when `crash`), keeping its data directory. */
  stop(options?: { crash?: boolean }): Promise<void>;
  /** Starts it again on the same port and directory (append-only file: it comes back with its data). */
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

/**
 * A `redis-server` of the test's own on 127.0.0.1 and a free port, persisting to an append-only file in a temporary
 * directory, with `password` required when given; or, when REDIS_URL is set and no password is asked for, that
 * server (stop/start are then unavailable).
 */
export async function startRedis(options: { password?: string } = {}): Promise<TestRedis> {
  const external = process.env.REDIS_URL;
  if (external !== undefined && external !== "" && options.password === undefined) {
    return {
      url: external,
      stop: () => Promise.reject(new Error("cannot stop an external REDIS_URL")),
      start: () => Promise.reject(new Error("cannot start an external REDIS_URL")),
      close: () => Promise.resolve(),
    };
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "liaison-redis-"));
  const url =
    options.password === undefined
      ? `redis://127.0.0.1:${port}`
      : `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
    ];
    args.push("--save", "", "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning");
    if (options.password !== undefined) args.push("--requirepass", options.password);
    const started = spawn("redis-server", args, { stdio: "ignore" });
    child = started;
    await waitFor(url, started);
  };
  const stop = async (options: { crash?: boolean } = {}) => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill(options.crash ? "SIGKILL" : "SIGTERM");
    await exited;
  };
  await start();
  return {
    url,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === "PONG") return;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("redis-server did not start within 10 s");
}
