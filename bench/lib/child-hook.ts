import { setFlagsFromString } from "node:v8";

/**
 * Preloaded (`--import`) into every server the benchmark starts, Liaison included, with `--expose-gc`:
 * - `SIGUSR2` runs a full, compacting garbage collection, so memory is sampled on live objects only, the same way in
 *   each server. Compacting, as V8's memory reducer does to a process that has gone quiet (here ~20 s after the
 *   last set-up): a plain full GC frees objects but keeps every page that still holds one, so RSS kept whatever
 *   free space set-up's garbage left scattered over the old generation (Liaison 59 MB at 9,600 conversations, raw
 *   20 MB) and moved with it from run to run;
 * - the process exits when the benchmark that started it is gone (its parent changed) or after
 *   `BENCH_LIFETIME_MS`, so no server outlives a run, whatever happens to the orchestrator.
 * It adds one signal handler and one unref'd 1 s timer: nothing on the message path.
 */
const parent = process.ppid;
const lifetimeMs = Number(process.env.BENCH_LIFETIME_MS ?? "0");
const started = Date.now();

process.on("SIGUSR2", () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  setFlagsFromString("--compact-on-every-full-gc");
  gc?.();
  gc?.();
  setFlagsFromString("--no-compact-on-every-full-gc");
});

setInterval(() => {
  if (process.ppid !== parent) process.exit(3);
  if (lifetimeMs > 0 && Date.now() - started > lifetimeMs) process.exit(4);
}, 1_000).unref();

export {};
