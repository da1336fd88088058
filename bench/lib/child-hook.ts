/**
 * Preloaded (`--import`) into every server the benchmark starts, Liaison included, with `--expose-gc`:
 * - `SIGUSR2` runs a full garbage collection, so memory is sampled on live objects only, the same way in each
 *   server;
 * - the process exits when the benchmark that started it is gone (its parent changed) or after
 *   `BENCH_LIFETIME_MS`, so no server outlives a run, whatever happens to the orchestrator.
 * It adds one signal handler and one unref'd 1 s timer: nothing on the message path.
 */
const parent = process.ppid;
const lifetimeMs = Number(process.env.BENCH_LIFETIME_MS ?? "0");
const started = Date.now();

process.on("SIGUSR2", () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
});

setInterval(() => {
  if (process.ppid !== parent) process.exit(3);
  if (lifetimeMs > 0 && Date.now() - started > lifetimeMs) process.exit(4);
}, 1_000).unref();

export {};
