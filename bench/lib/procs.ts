/**
 * Child processes of a benchmark run: every server and load worker is spawned here, in its own process group,
 * tracked, and killed (the whole group, SIGKILL) when the run ends, fails or is interrupted. Servers also carry
 * `child-hook.ts`, which makes them exit on their own if this process disappears.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gatewayNodeFlags } from "./launch.js";
import type { EventLoopLag, MemorySample, ParentMessage, Target, WorkerConfig, WorkerMessage } from "./types.js";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where `buildServers` compiles the servers: Liaison as `npm start` runs it, the baselines by the same compiler. */
const buildDir = join(repoRoot, "dist", "bench");
const hook = pathToFileURL(join(buildDir, "bench", "lib", "child-hook.js")).href;
/**
 * The Node flags `npm start` gives the gateway, given to every server here, the baselines too: the ratios then compare
 * code, not runtime settings.
 */
export const serverNodeFlags: readonly string[] = gatewayNodeFlags(
  (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start,
);

/**
 * Compiles Liaison and the baselines with `tsc` (`tsconfig.bench.json`), once per run, before any server starts.
 * Servers then run as plain JavaScript, as in production (`npm start`, the Docker image): not through tsx, whose
 * transform wraps every closure Liaison creates per connection and per event in a `__name` call.
 */
export function buildServers(): void {
  const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.bench.json"], { cwd: repoRoot, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`tsc -p tsconfig.bench.json failed:\n${result.stdout}${result.stderr}`);
  }
}

/**
 * An earlier revision of Liaison measured beside the current one (`--compare label=<commit>`): its tree as of that
 * commit, compiled by its own `tsconfig.bench.json`, run with its own `npm start` flags and the current
 * `node_modules` (every revision compared here has the dependencies it imports in it).
 */
export interface Revision {
  label: string;
  commit: string;
  dir: string;
  nodeFlags: readonly string[];
}

/** Extracts `commit` into `dist/bench-compare/<label>/` and compiles it there. */
export function buildRevision(label: string, rev: string): Revision {
  const git = (args: string[]) => {
    const result = spawnSync("git", args, { cwd: repoRoot, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`git ${args.join(" ")} failed: ${result.stderr}`);
    return result.stdout.trim();
  };
  const commit = git(["rev-parse", "--verify", `${rev}^{commit}`]);
  const dir = join(repoRoot, "dist", "bench-compare", label);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const extract = spawnSync("sh", ["-c", `git archive --format=tar ${commit} | tar -x -C "$0"`, dir], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  if (extract.status !== 0) throw new Error(`extracting ${rev} failed: ${extract.stderr}`);
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"), "dir");
  const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.bench.json"], { cwd: dir, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`compiling ${rev} failed:\n${result.stdout}${result.stderr}`);
  const start = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { scripts: { start: string } }).scripts
    .start;
  return { label, commit, dir, nodeFlags: gatewayNodeFlags(start) };
}

const children = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Kills every child still running. Synchronous, so it is safe in an `exit` handler. */
export function killAll(): void {
  for (const child of children) killGroup(child);
  children.clear();
}

let installed = false;
/** On exit, Ctrl-C, SIGTERM, an uncaught error or a run past `maxRunMs`: no child survives the run. */
export function installCleanup(maxRunMs: number): void {
  if (installed) return;
  installed = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping every server and worker\n`);
      killAll();
      process.exit(130);
    });
  }
  process.on("uncaughtException", (error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    killAll();
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    process.stderr.write(`bench: unhandled rejection: ${String(reason)}\n`);
    killAll();
    process.exit(1);
  });
  setTimeout(() => {
    process.stderr.write(`bench: the run exceeded ${Math.round(maxRunMs / 1000)} s, giving up\n`);
    killAll();
    process.exit(1);
  }, maxRunMs).unref();
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface RunningServer {
  target: Target;
  pid: number;
  url: string;
  /** The last lines the server printed (for error reports). */
  tail(): string;
  /** Whether it died on its own. */
  exited(): boolean;
  stop(): Promise<void>;
}

const API_KEY = "bench-key";
export const benchApiKey = API_KEY;

/** Starts one server in its own process and waits (bounded) until `GET /ready` answers 200. */
export async function startServer(
  target: Target,
  lifetimeMs: number,
  options: {
    nodeArgs?: readonly string[];
    gracefulStop?: boolean;
    env?: Readonly<Record<string, string>>;
    /** Sets `PUBLIC_URL` to the server's own URL (the desk case: the fake Rocket.Chat posts its webhook there). */
    publicUrl?: boolean;
    /** A program that runs node (e.g. `valgrind --tool=callgrind …`): the server is `launcher… node …`. */
    launcher?: readonly string[];
    /** How long the server may take to answer `/ready` (default 30 s). */
    readyTimeoutMs?: number;
    /** Everything the server prints is also written here (e.g. `--trace-gc` lines). */
    logFile?: string;
    /** Liaison as of an earlier commit (`target` must be `liaison`), with that commit's `npm start` flags. */
    revision?: Revision;
  } = {},
): Promise<RunningServer> {
  const port = await freePort();
  const revision = options.revision;
  const script = revision
    ? join(revision.dir, "dist", "bench", "server", "main.js")
    : join(buildDir, target === "liaison" ? "server/main.js" : `bench/baselines/${target}.js`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: "127.0.0.1",
    PORT: String(port),
    BENCH_LIFETIME_MS: String(lifetimeMs),
    NODE_ENV: "production",
  };
  if (target === "liaison") {
    Object.assign(env, {
      API_KEYS: API_KEY,
      LOG_LEVEL: "warn",
      INIT_RATE_LIMIT: "1000000",
      CUSTOMER_EVENTS_PER_SECOND: "1000000",
      CUSTOMER_EVENTS_BURST: "1000000",
      MAX_TEXT_LENGTH: "4096",
    });
    // The memory store and the built-in socket desk: nothing external.
    for (const name of ["REDIS_URL", "ROCKETCHAT_URL", "RAPIDPRO_URL", "SMTP_URL", "DESK", "BOT", "NODE_OPTIONS"]) {
      delete env[name];
    }
  }
  // The two-node case: `REDIS_URL` and friends, given explicitly.
  Object.assign(env, options.env ?? {});
  if (options.publicUrl === true) env.PUBLIC_URL = `http://127.0.0.1:${port}`;
  const child = track(
    spawn(
      options.launcher?.[0] ?? process.execPath,
      [
        ...(options.launcher ? [...options.launcher.slice(1), process.execPath] : []),
        ...(revision?.nodeFlags ?? serverNodeFlags),
        ...(options.nodeArgs ?? []),
        "--expose-gc",
        "--import",
        hook,
        script,
      ],
      {
        cwd: revision?.dir ?? repoRoot,
        env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      },
    ),
  );
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) if (line.trim() !== "") lines.push(line);
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  if (options.logFile !== undefined) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    const log = createWriteStream(options.logFile);
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  }
  const url = `http://127.0.0.1:${port}`;
  const server: RunningServer = {
    target,
    pid: child.pid ?? -1,
    url,
    tail: () => lines.join("\n"),
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop() {
      if (server.exited()) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      if (options.gracefulStop === true && child.pid !== undefined) {
        // SIGTERM first (a --cpu-prof profile is written on a clean exit), SIGKILL if it takes too long.
        process.kill(child.pid, "SIGTERM");
        await Promise.race([gone, sleep(15_000)]);
      }
      killGroup(child);
      await Promise.race([gone, sleep(5_000)]);
    },
  };
  const readyMs = options.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + readyMs;
  while (Date.now() < deadline) {
    if (server.exited()) throw new Error(`${target} exited while starting:\n${server.tail()}`);
    try {
      const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return server;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await server.stop();
  throw new Error(`${target} was not ready within ${Math.round(readyMs / 1000)} s:\n${server.tail()}`);
}

export interface RunningFakeRocketChat {
  pid: number;
  url: string;
  exited(): boolean;
  /** Points the fake's webhook at `url` (resolves once set). */
  setWebhookUrl(url: string): Promise<void>;
  /** Agent answers sent, answers that failed, webhook deliveries not answered 200 (so far). */
  stats(): Promise<{ answered: number; failed: number; failedDeliveries: number }>;
  stop(): Promise<void>;
}

/** The fake Rocket.Chat of the desk case (`bench/rocketchat-fake.ts`) in its own process, tracked like the rest. */
export async function startFakeRocketChatProcess(lifetimeMs: number): Promise<RunningFakeRocketChat> {
  const child = track(
    spawn(process.execPath, ["--import", "tsx", "bench/rocketchat-fake.ts"], {
      cwd: repoRoot,
      env: { ...process.env, BENCH_LIFETIME_MS: String(lifetimeMs), NODE_ENV: "production" },
      detached: true,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const next = <T>(type: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (raw: unknown) => {
        if ((raw as { type?: string }).type !== type) return;
        finish();
        resolve(raw as T);
      };
      const onExit = () => {
        finish();
        reject(new Error(`the fake Rocket.Chat exited before "${type}"`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`the fake Rocket.Chat: no "${type}" within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
      };
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  const stop = async () => {
    if (exited()) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    killGroup(child);
    await Promise.race([gone, sleep(5_000)]);
  };
  try {
    const { url } = await next<{ url: string }>("ready", 30_000);
    return {
      pid: child.pid ?? -1,
      url,
      exited,
      async setWebhookUrl(webhook) {
        const set = next("webhook-set", 5_000);
        child.send({ type: "webhook", url: webhook });
        await set;
      },
      stats() {
        const answer = next<{ answered: number; failed: number; failedDeliveries: number }>("stats", 5_000);
        child.send({ type: "stats" });
        return answer;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface RunningRedis {
  pid: number;
  url: string;
  exited(): boolean;
  stop(): Promise<void>;
}

/**
 * A `redis-server` of the benchmark's own on a free port of 127.0.0.1, without persistence, tracked like every
 * other child (killed with its process group) and bounded by `timeout` to `lifetimeMs` should this process vanish.
 * Ready once it answers `PING` (checked over a raw socket, no client library).
 */
export async function startRedis(lifetimeMs: number): Promise<RunningRedis> {
  const port = await freePort();
  const child = track(
    spawn(
      "timeout",
      [
        "-s",
        "KILL",
        String(Math.ceil(lifetimeMs / 1000)),
        "redis-server",
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      { cwd: repoRoot, detached: true, stdio: ["ignore", "ignore", "pipe"] },
    ),
  );
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const redis: RunningRedis = {
    pid: child.pid ?? -1,
    url: `redis://127.0.0.1:${port}`,
    exited,
    async stop() {
      if (exited()) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      killGroup(child);
      await Promise.race([gone, sleep(5_000)]);
    },
  };
  const ping = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once("error", () => done(false));
      socket.once("connect", () => socket.write("PING\r\n"));
      socket.once("data", (chunk: Buffer) => done(chunk.toString("utf8").startsWith("+PONG")));
    });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("redis-server exited while starting (is it on PATH?)");
    if (await ping()) return redis;
    await sleep(50);
  }
  await redis.stop();
  throw new Error("redis-server was not ready within 10 s");
}

/** The redis-server process itself (the child is `timeout`, its parent), for its CPU time; NaN if not found. */
export function redisServerPid(redis: RunningRedis): number {
  try {
    const children = readFileSync(`/proc/${redis.pid}/task/${redis.pid}/children`, "utf8").trim().split(" ");
    return Number(children[0]) || Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used, in milliseconds, from /proc (Linux); NaN elsewhere. */
export function cpuTimeMs(pid: number): number {
  const { user, system } = cpuTimesMs(pid);
  return user + system;
}

/** A process's CPU time split into user and kernel (system) time, in milliseconds, from /proc (Linux). */
export function cpuTimesMs(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the name: state is field 3, utime 14 and stime 15 (1-based), i.e. indexes 11 and 12 here.
    // USER_HZ is 100 on Linux.
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** A full, compacting GC in the server (via child-hook's SIGUSR2), then its RSS and used heap, measured inside it. */
export async function sampleMemory(server: RunningServer): Promise<MemorySample> {
  process.kill(server.pid, "SIGUSR2");
  await sleep(200);
  // The GC runs in the signal's handler, so a first answer means it is over; V8 unmaps the pages it emptied on a
  // thread of its own, and RSS read at once still counts them (up to twice the settled figure after compacting).
  await readMemory(server);
  await sleep(500);
  return readMemory(server);
}

async function readMemory(server: RunningServer): Promise<MemorySample> {
  if (server.target !== "liaison") {
    const response = await fetch(`${server.url}/memory`, { signal: AbortSignal.timeout(10_000) });
    return (await response.json()) as MemorySample;
  }
  const metric = await liaisonMetrics(server);
  return {
    rss: metric("liaison_process_resident_memory_bytes"),
    heapUsed: metric("liaison_nodejs_heap_size_used_bytes"),
  };
}

/** One scrape of Liaison's `/metrics`: a reader of its unlabelled samples. */
async function liaisonMetrics(server: RunningServer): Promise<(name: string) => number> {
  const response = await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return (name: string): number => {
    const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `));
    if (line === undefined) throw new Error(`/metrics has no ${name}`);
    return Number(
      line
        .slice(name.length + 1)
        .trim()
        .split(" ")[0],
    );
  };
}

/**
 * The server's event-loop delay since the last reading (max and p99, ms), and a fresh start: every server samples
 * it the same way (`monitorEventLoopDelay`, 10 ms resolution): the baselines at `GET /lag`, Liaison in its own
 * `/metrics` (prom-client's `nodejs_eventloop_lag_*`, reset at each scrape).
 */
export async function readEventLoopLag(server: RunningServer): Promise<EventLoopLag> {
  if (server.target !== "liaison") {
    const response = await fetch(`${server.url}/lag`, { signal: AbortSignal.timeout(10_000) });
    return (await response.json()) as EventLoopLag;
  }
  const metric = await liaisonMetrics(server);
  return {
    maxMs: metric("liaison_nodejs_eventloop_lag_max_seconds") * 1000,
    p99Ms: metric("liaison_nodejs_eventloop_lag_p99_seconds") * 1000,
  };
}

/** Sets the nice value of the autogroup `pid` leads; a no-op where the kernel has no autogroups. */
function setAutogroupNice(pid: number, niceness: number): void {
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(niceness));
  } catch {
    // No such file: not Linux, or a kernel built without autogroups; `nice` alone then does it.
  }
}

export interface Worker {
  config: WorkerConfig;
  /** The next message of `type` from the worker; rejects on its error, its exit, or the timeout. */
  next<T extends WorkerMessage["type"]>(type: T, timeoutMs: number): Promise<Extract<WorkerMessage, { type: T }>>;
  send(message: ParentMessage): void;
  stop(): Promise<void>;
}

/**
 * Starts a load worker (`node --import tsx bench/load.ts`) in its own process; `niceness` lowers its scheduling
 * priority (Linux `nice`, 0–19), so that where it competes with the server for a core the server runs first.
 * Each process here starts its own session (`detached`), and where the kernel groups tasks by session
 * (`/proc/sys/kernel/sched_autogroup_enabled`, on by default in many distributions) it shares the CPU between the
 * groups first and a thread's nice value only counts inside its group: a nice-10 worker alone in its group still
 * got a full group's share against the server's. So the worker's group is given the niceness too
 * (`/proc/<pid>/autogroup`; lowering it needs no privilege).
 */
export function startWorker(config: WorkerConfig, options: { niceness?: number } = {}): Worker {
  const command = [process.execPath, "--import", "tsx", "bench/load.ts"];
  // Through `nice` (which execs the command: same pid), so that every thread of the process has the priority:
  // Linux gives each thread its own, and node has started its threads before a setpriority from here could land.
  if (options.niceness !== undefined) command.unshift("nice", "-n", String(options.niceness));
  const child = track(
    spawn(command[0] as string, command.slice(1), {
      cwd: repoRoot,
      env: { ...process.env, BENCH_WORKER: JSON.stringify(config), NODE_ENV: "production" },
      detached: true,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  if (options.niceness !== undefined && child.pid !== undefined) setAutogroupNice(child.pid, options.niceness);
  const inbox: WorkerMessage[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.on("message", (message: unknown) => {
    inbox.push(message as WorkerMessage);
    wake();
  });
  let exitCode: number | null | undefined;
  child.once("exit", (code) => {
    // Its last messages may still be in the IPC pipe: give them a moment to arrive before declaring it gone.
    setTimeout(() => {
      exitCode = code;
      wake();
    }, 500);
  });
  return {
    config,
    next<T extends WorkerMessage["type"]>(type: T, timeoutMs: number) {
      return new Promise<Extract<WorkerMessage, { type: T }>>((resolve, reject) => {
        const check = () => {
          const index = inbox.findIndex((message) => message.type === type || message.type === "error");
          if (index >= 0) {
            const [message] = inbox.splice(index, 1);
            finish();
            if (message?.type === "error") reject(new Error(`worker ${config.worker}: ${message.message}`));
            else resolve(message as Extract<WorkerMessage, { type: T }>);
          } else if (exitCode !== undefined) {
            finish();
            reject(new Error(`worker ${config.worker} exited (${String(exitCode)}) before "${type}"`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`worker ${config.worker}: no "${type}" within ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    send(message) {
      if (child.connected) child.send(message);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      this.send({ type: "stop" });
      await Promise.race([gone, sleep(3_000)]);
      killGroup(child);
    },
  };
}
