import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Tuning } from "../../server/tuning.js";
import { freePort, TEST_API_KEY } from "../helpers/app.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

export interface GatewayNode {
  name: string;
  url: string;
  process: ChildProcess;
  /** Ends the process: SIGKILL (a crash) or SIGTERM (a graceful shutdown). */
  kill(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
  logs: string[];
}

/** One gateway node as its own process (`server/main.ts` through tsx), on Redis, ready when this resolves. */
export async function startNode(
  name: string,
  env: Record<string, string>,
  tuning: Partial<Tuning> = {},
): Promise<GatewayNode> {
  const port = await freePort();
  const logs: string[] = [];
  const child = spawn(process.execPath, ["--import", "tsx", "test/cluster/node.ts", JSON.stringify(tuning)], {
    cwd: root,
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      API_KEYS: TEST_API_KEY,
      NODE_ID: name,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn",
      SIGNING_SECRET: "cluster-signing-secret-0123456789abcdef",
      INIT_RATE_LIMIT: "10000",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node ${name} exited (${child.exitCode}): ${logs.join("")}`);
    try {
      const ready = await fetch(`${url}/ready`);
      if (ready.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`node ${name} not ready in time: ${logs.join("")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    name,
    url,
    process: child,
    logs,
    kill: async (signal = "SIGKILL") => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
}
