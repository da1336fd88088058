/**
 * `npm run bench:instructions`: the servers' own cost per relayed message in CPU instructions, counted by
 * valgrind's callgrind. On a shared machine timed figures move by a third from one minute to the next; an
 * instruction count does not (same code, same inputs: the same count, whatever else the machine runs), so this is
 * the figure to compare before and after an optimisation. It leaves out what instructions cannot see (cache misses,
 * the kernel's socket work, GC helper threads' wall time), so the timed ratios of `npm run bench` stay the verdict.
 *
 * For each target (`parity`, `liaison`; `raw` on request): the server runs under callgrind with instrumentation
 * off (start-up at a few times slower, not fifty), one load worker sets up `--pairs` conversations and sends a
 * warm-up batch (`--messages` per pair, closed loop: the JIT settles), then instrumentation is switched on with
 * zeroed counters, an identical batch runs, and the counters are read: instructions / messages delivered.
 *
 * `--annotate` also keeps callgrind's dump (`bench/results/profiles/`) and lists the instructions per message by
 * function, JavaScript included: node runs with `--perf-basic-prof`, and V8's map of its compiled code names the
 * addresses callgrind cannot (the flag itself adds a little to the count: compare annotated runs with each other).
 *
 * `--compare label=<commit>,...` counts Liaison as of earlier commits too (each built from its own tree, run with its
 * own `npm start` flags): what a change cost, in a figure the machine's load does not move.
 *
 * Needs `valgrind` (Debian package `valgrind`); takes a minute or two.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  benchApiKey,
  buildRevision,
  buildServers,
  installCleanup,
  repoRoot,
  startServer,
  startWorker,
  type Revision,
  type RunningServer,
} from "./lib/procs.js";
import type { ClosedResult, Target } from "./lib/types.js";

const { values: flags } = parseArgs({
  options: {
    targets: { type: "string", default: "parity,liaison" },
    pairs: { type: "string", default: "20" },
    messages: { type: "string", default: "100" },
    annotate: { type: "boolean", default: false },
    compare: { type: "string", default: "" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help === true) {
  process.stdout.write(
    "npm run bench:instructions [-- --targets parity,liaison] [--pairs 20] [--messages 100] [--annotate] [--compare label=<commit>,...]\n",
  );
  process.exit(0);
}

const targets = flags.targets.split(",").map((target) => target.trim()) as Target[];
for (const target of targets) {
  if (!["raw", "parity", "liaison"].includes(target)) throw new Error(`unknown target ${target}`);
}
const pairs = Math.max(1, Number(flags.pairs));
/** `--annotate`: keep callgrind's dump and break the count down by function (V8's perf map names JIT code). */
const annotate = flags.annotate === true;
const profilesDir = join(repoRoot, "bench", "results", "profiles");
if (annotate) mkdirSync(profilesDir, { recursive: true });
const perPair = Math.max(2, Number(flags.messages));
const LIFETIME_MS = 20 * 60_000;
installCleanup(LIFETIME_MS + 60_000);
buildServers();

/** What is counted: a target of this tree, or Liaison as of an earlier commit (`liaison@<label>`). */
interface Subject {
  name: string;
  target: Target;
  revision?: Revision;
}
const subjects: Subject[] = [
  ...targets.map((target) => ({ name: target, target })),
  ...flags.compare
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item): Subject => {
      const match = /^([a-z0-9][a-z0-9-]*)=(.+)$/.exec(item);
      if (!match?.[1] || !match[2]) throw new Error(`--compare: "${item}" is not label=<commit>`);
      return { name: `liaison@${match[1]}`, target: "liaison", revision: buildRevision(match[1], match[2]) };
    }),
];

/**
 * Where valgrind's gdbserver keeps its pipes. Their names also carry USER and HOST from the environment, and the
 * server runs with `HOST=127.0.0.1`: callgrind_control is given the same.
 */
const vgdbPrefix = join(tmpdir(), `liaison-bench-vgdb-${process.pid}`);

function callgrind(pid: number, ...args: string[]): string {
  return execFileSync("callgrind_control", [`--vgdb-prefix=${vgdbPrefix}`, ...args, String(pid)], {
    encoding: "utf8",
    env: { ...process.env, HOST: "127.0.0.1" },
  });
}

/**
 * The instructions callgrind counted since the last zeroing, per thread (`callgrind_control -e Ir`: a `Th <n> <Ir>`
 * line each; thread 1 is the main thread, the others are V8's GC and compiler helpers and libuv's pool).
 */
function instructions(pid: number): { main: number; all: number } {
  const output = callgrind(pid, "-e", "Ir");
  const threads = [...output.matchAll(/^\s*Th\s*(\d+)\s+([\d,]+)\s*$/gm)].map((match) => ({
    thread: Number(match[1]),
    count: Number((match[2] ?? "0").replaceAll(",", "")),
  }));
  if (threads.length === 0) throw new Error(`no per-thread totals from callgrind_control:\n${output}`);
  return {
    main: threads.find((entry) => entry.thread === 1)?.count ?? 0,
    all: threads.reduce((total, entry) => total + entry.count, 0),
  };
}

/**
 * Self instructions per message by function, from `callgrind_annotate`: native functions keep their symbols;
 * JIT-compiled JavaScript (`???:0x…`) is named from V8's perf map (`--perf-basic-prof`: start, size, name per line).
 */
function topFunctions(dump: string, perfMap: string, messages: number): [string, number][] {
  // Code space is reused as V8 recompiles and collects: the later line for an address is the one that counts.
  const byStart = new Map<number, { start: number; size: number; name: string }>();
  for (const line of readFileSync(perfMap, "utf8").split("\n")) {
    const [start, size, ...name] = line.split(" ");
    if (!start || !size) continue;
    const entry = { start: Number.parseInt(start, 16), size: Number.parseInt(size, 16), name: name.join(" ") };
    byStart.set(entry.start, entry);
  }
  const code = [...byStart.values()].sort((a, b) => a.start - b.start);
  const nameAt = (address: number): string | undefined => {
    let low = 0;
    let high = code.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const entry = code[middle];
      if (!entry) break;
      if (address < entry.start) high = middle - 1;
      else if (address >= entry.start + entry.size) low = middle + 1;
      else return entry.name;
    }
    return undefined;
  };
  const annotated = execFileSync("callgrind_annotate", ["--threshold=100", dump], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const totals = new Map<string, number>();
  for (const line of annotated.split("\n")) {
    const match = /^\s*([\d,]+)\s+\([^)]*\)\s+(.+)$/.exec(line);
    if (!match?.[1] || !match[2] || match[2].includes("PROGRAM TOTALS")) continue;
    const count = Number(match[1].replaceAll(",", ""));
    const jit = /\?\?\?:0x([0-9a-f]+)/.exec(match[2]);
    const name = jit?.[1] ? (nameAt(Number.parseInt(jit[1], 16)) ?? match[2]) : match[2].replace(/^[^:]*:/, "");
    totals.set(name, (totals.get(name) ?? 0) + count / messages);
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

interface Row {
  /** The target, or `liaison@<label>` for an earlier commit. */
  target: string;
  delivered: number;
  /** Every thread's instructions in the measured batch. */
  instructions: number;
  perMessage: number;
  /** The main (JavaScript) thread's share, per message. */
  mainPerMessage: number;
}

async function measure({ name, target, revision }: Subject): Promise<Row> {
  let server: RunningServer | undefined;
  const worker = { stop: () => Promise.resolve() };
  try {
    server = await startServer(target, LIFETIME_MS, {
      ...(revision ? { revision } : {}),
      launcher: [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        `--callgrind-out-file=${annotate ? join(profilesDir, `callgrind.${name}.%p`) : "/dev/null"}`,
        `--vgdb-prefix=${vgdbPrefix}`,
      ],
      readyTimeoutMs: 10 * 60_000,
      // V8 writes /tmp/perf-<pid>.map: where each compiled JavaScript function lies, to name callgrind's `???`s.
      ...(annotate ? { nodeArgs: ["--perf-basic-prof"] } : {}),
    });
    const load = startWorker({
      worker: 0,
      target,
      url: server.url,
      apiKey: benchApiKey,
      mode: "closed",
      pairs,
      pairOffset: 0,
      messageBytes: 200,
      setupConcurrency: 5,
      rate: 0,
      warmupMs: 0,
      measureMs: 0,
      drainMs: 0,
      lifetimeMs: LIFETIME_MS,
      messagesPerPair: perPair,
    });
    worker.stop = () => load.stop();
    await load.next("ready", 10 * 60_000);
    const batch = async (): Promise<ClosedResult> => {
      load.send({ type: "go" });
      const { result } = await load.next("result", 10 * 60_000);
      if (result.mode !== "closed") throw new Error("expected a closed-loop result");
      if (result.errors > 0 || result.stuck > 0) throw new Error(`${result.errors} errors, ${result.stuck} stuck`);
      return result;
    };
    await batch();
    callgrind(server.pid, "--instr=on");
    callgrind(server.pid, "--zero");
    const measured = await batch();
    const counted = instructions(server.pid);
    if (annotate) callgrind(server.pid, "--dump");
    callgrind(server.pid, "--instr=off");
    log(`${name}: ${measured.delivered} messages, ${formatInt(counted.all)} instructions`);
    if (annotate) {
      const dump = join(profilesDir, `callgrind.${name}.${server.pid}.1`);
      const top = topFunctions(dump, `/tmp/perf-${server.pid}.map`, measured.delivered);
      const file = join(profilesDir, `${name}.instructions.txt`);
      writeFileSync(file, `${top.map(([name, count]) => `${formatInt(count).padStart(9)}  ${name}`).join("\n")}\n`);
      log(`${name}: instructions per message by function (self), top 15 of ${file}:`);
      for (const [name, count] of top.slice(0, 15)) log(`  ${formatInt(count).padStart(9)}  ${name.slice(0, 110)}`);
    }
    return {
      target: name,
      delivered: measured.delivered,
      instructions: counted.all,
      perMessage: counted.all / measured.delivered,
      mainPerMessage: counted.main / measured.delivered,
    };
  } finally {
    await worker.stop();
    await server?.stop();
  }
}

const formatInt = (value: number) => Math.round(value).toLocaleString("en-US");
const log = (line: string) => process.stderr.write(`${line}\n`);

const rows: Row[] = [];
for (const subject of subjects) {
  log(`${subject.name}: starting under callgrind (a minute or two)`);
  rows.push(await measure(subject));
}
const parity = rows.find((row) => row.target === "parity");
const lines = [
  `Instructions per relayed message (callgrind), ${pairs} conversations, ${perPair} messages each after as many to warm up`,
  "",
  "| server | messages | instructions / message | of which main thread | × parity |",
  "| ------ | -------: | ---------------------: | -------------------: | -------: |",
  ...rows.map(
    (row) =>
      `| ${row.target} | ${row.delivered} | ${formatInt(row.perMessage)} | ${formatInt(row.mainPerMessage)} | ${
        parity ? (row.perMessage / parity.perMessage).toFixed(2) : "–"
      } |`,
  ),
];
process.stdout.write(`${lines.join("\n")}\n`);
const date = new Date().toISOString().slice(0, 10);
writeFileSync(
  join(
    repoRoot,
    "bench",
    "results",
    `${date}.instructions${subjects.some((subject) => subject.revision) ? ".partial" : ""}.json`,
  ),
  `${JSON.stringify({ date, pairs, messagesPerPair: perPair, rows }, null, 2)}\n`,
);
process.exit(0);
