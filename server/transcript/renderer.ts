import { Worker } from "node:worker_threads";
import { GatewayError } from "../core/errors.js";
import type { TranscriptBranding, TranscriptInput } from "./pdf.js";
import type { RenderReply, RenderRequest } from "./render-worker.js";

export interface TranscriptRendererOptions {
  /** The organisation's name and logo on every transcript (default: the title "Conversation transcript"). */
  branding?: TranscriptBranding;
  /** Transcripts that may wait while another renders; more are refused with `unavailable` (default 8). */
  maxWaiting?: number;
  /** A render that takes longer is abandoned, its worker replaced, and its caller told `unavailable` (default 60 s). */
  timeoutMs?: number;
  /** Told of every render once it ends: how, and how long it took. */
  observe?: (outcome: RenderOutcome, seconds: number) => void;
}

export type RenderOutcome = "ok" | "error" | "timeout";

interface Job {
  id: number;
  input: TranscriptInput;
  resolve(pdf: Buffer): void;
  reject(error: Error): void;
}

/** Seconds a client refused for a full queue is told to wait: about what a few large transcripts take. */
const BUSY_RETRY_SECONDS = 5;

/**
 * Renders PDF transcripts in a worker thread, so that a long transcript never holds up the event loop (which every
 * socket and request of the node shares).
 *
 * One worker, one transcript at a time, the others waiting in a bounded queue. Rendering is CPU-bound: a second
 * worker would only contend for the cores the event loop and V8's collector need, and Liaison grows by nodes (one per
 * core) rather than by threads within one. The bound keeps what waiting requests hold (each its conversation's
 * messages) and how long they wait finite: past it, callers get `unavailable` with a `retryAfterSeconds`.
 *
 * The worker starts with the first transcript and stays (its fonts stay loaded), without keeping the process alive.
 * A worker that crashes fails only the transcript it was rendering; the next one starts a new worker.
 */
export class TranscriptRenderer {
  private worker: Worker | undefined;
  private readonly waiting: Job[] = [];
  private running: { job: Job; started: number; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  private closed = false;
  private readonly maxWaiting: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: TranscriptRendererOptions = {}) {
    this.maxWaiting = options.maxWaiting ?? 8;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /**
   * Renders `input` (see `renderTranscriptPdf`).
   * @throws {@link GatewayError} `unavailable` when the queue is full or the renderer is closed or timed out; the
   *   worker's error, logged by the caller as `internal`, when rendering failed
   */
  render(input: TranscriptInput): Promise<Buffer> {
    if (this.closed) return Promise.reject(new GatewayError("unavailable", "This node is shutting down; retry."));
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(
        new GatewayError("unavailable", "Too many transcripts are being prepared; retry shortly.", {
          retryAfterSeconds: BUSY_RETRY_SECONDS,
        }),
      );
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, input, resolve, reject });
      this.pump();
    });
  }

  /** Refuses what waits, stops the worker (failing what it was rendering) and refuses every later render. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0))
      job.reject(new GatewayError("unavailable", "This node is shutting down; retry."));
    const worker = this.worker;
    this.worker = undefined;
    this.finish("error", new GatewayError("unavailable", "This node is shutting down; retry."));
    if (worker !== undefined) await worker.terminate();
  }

  private pump(): void {
    if (this.running !== undefined || this.closed) return;
    const job = this.waiting.shift();
    if (job === undefined) return;
    const worker = this.worker ?? this.spawn();
    const timer = setTimeout(() => this.abandon(), this.timeoutMs);
    timer.unref();
    this.running = { job, started: performance.now(), timer };
    try {
      worker.postMessage({ id: job.id, input: job.input } satisfies RenderRequest);
    } catch (error) {
      this.finish("error", error instanceof Error ? error : new Error(String(error)));
    }
  }

  private spawn(): Worker {
    const worker = startWorker(this.options.branding);
    // An idle worker must not keep a stopping process alive; a request waiting for it does that while needed.
    worker.unref();
    worker.on("message", (reply: RenderReply) => {
      if (worker !== this.worker || this.running?.job.id !== reply.id) return;
      if (reply.ok) this.finish("ok", Buffer.from(reply.pdf.buffer, reply.pdf.byteOffset, reply.pdf.byteLength));
      else this.finish("error", new Error(reply.error));
    });
    const gone = (error: Error) => {
      if (worker !== this.worker) return;
      this.worker = undefined;
      this.finish("error", error);
    };
    worker.on("error", gone);
    worker.on("exit", (code) => gone(new Error(`transcript worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private abandon(): void {
    const worker = this.worker;
    this.worker = undefined;
    this.finish(
      "timeout",
      new GatewayError("unavailable", "The transcript took too long to prepare; try again later."),
    );
    void worker?.terminate();
  }

  private finish(outcome: RenderOutcome, result: Buffer | Error): void {
    const running = this.running;
    if (running === undefined) return;
    this.running = undefined;
    clearTimeout(running.timer);
    this.options.observe?.(outcome, (performance.now() - running.started) / 1000);
    if (result instanceof Error) running.job.reject(result);
    else running.job.resolve(result);
    this.pump();
  }
}

/**
 * Compiled (`dist/`, what `npm start` runs), the worker is the `.js` file beside this one. From the TypeScript sources
 * (tsx, vitest) it is the `.ts` file, which Node cannot load by itself and a worker does not inherit the parent's
 * loader: the worker registers tsx's loader first.
 */
function startWorker(branding: TranscriptBranding | undefined): Worker {
  const compiled = import.meta.url.endsWith(".js");
  const script = new URL(`./render-worker.${compiled ? "js" : "ts"}`, import.meta.url);
  if (compiled) return new Worker(script, { workerData: branding });
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: branding });
}
