/**
 * One gateway node for the cluster tests: `server/main.ts`'s process, with the timings the test passes as JSON in
 * its first argument (a lease that runs out in a second instead of thirty).
 */
import { loadConfig } from "../../server/config.js";
import { runGateway } from "../../server/run.js";
import type { Tuning } from "../../server/tuning.js";

const tuning = JSON.parse(process.argv[2] ?? "{}") as Partial<Tuning>;
await runGateway(loadConfig(), { tuning });
