import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { gatewayNodeFlags } from "../../bench/lib/launch.js";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");
const startScript = (JSON.parse(read("package.json")) as { scripts: { start: string } }).scripts.start;

/** The Docker image's exec-form `CMD ["node", …flags, "dist/server/main.js"]`. */
function dockerCmd(): string[] {
  const line = read("Dockerfile")
    .split("\n")
    .find((candidate) => candidate.startsWith("CMD ["));
  if (line === undefined) throw new Error("no exec-form CMD in the Dockerfile");
  return JSON.parse(line.slice("CMD ".length)) as string[];
}

describe("the gateway's Node flags", () => {
  it("are the same for npm start, the Docker image and the benchmark (which reads them from npm start)", () => {
    const flags = gatewayNodeFlags(startScript);
    expect(dockerCmd()).toEqual(["node", ...flags, "dist/server/main.js"]);
    // Node's own defaults in production; `--v8-pool-size` is an option for small hosts (README, "Running in production").
    expect(flags.filter((flag) => flag.startsWith("--v8-pool-size"))).toEqual([]);
  });

  it("are read from a start script, or the script is reported", () => {
    expect(gatewayNodeFlags("npm run build --silent && node dist/server/main.js")).toEqual([]);
    expect(gatewayNodeFlags("node --v8-pool-size=2 --max-old-space-size=512 dist/server/main.js")).toEqual([
      "--v8-pool-size=2",
      "--max-old-space-size=512",
    ]);
    expect(() => gatewayNodeFlags("tsx server/main.ts")).toThrow(/does not run/);
  });
});
