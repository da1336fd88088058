import { parentPort, workerData } from "node:worker_threads";
import { renderTranscriptPdf, type TranscriptBranding, type TranscriptInput } from "./pdf.js";

/** A job from {@link TranscriptRenderer}. */
export interface RenderRequest {
  id: number;
  input: TranscriptInput;
}

/** The answer: the PDF's bytes (transferred, not copied), or why there is none. */
export type RenderReply = { id: number; ok: true; pdf: Uint8Array } | { id: number; ok: false; error: string };

const port = parentPort;
if (port === null) throw new Error("render-worker.ts runs as a worker thread");
// Given once when the worker starts: the logo is not copied with every transcript.
const branding = workerData as TranscriptBranding | undefined;

port.on("message", ({ id, input }: RenderRequest) => {
  renderTranscriptPdf(input, branding).then(
    (pdf) => {
      // pdfkit's chunks may sit in Node's shared buffer pool, which cannot be transferred: copy into a buffer of
      // the PDF's own.
      const bytes = new Uint8Array(pdf.byteLength);
      bytes.set(pdf);
      port.postMessage({ id, ok: true, pdf: bytes } satisfies RenderReply, [bytes.buffer]);
    },
    (error: unknown) => {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      port.postMessage({ id, ok: false, error: message } satisfies RenderReply);
    },
  );
});
