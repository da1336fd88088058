import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import type { ConversationView, StoredMessage } from "../../protocol/index.js";
import { GatewayError } from "../../server/core/errors.js";
import type { TranscriptInput } from "../../server/transcript/pdf.js";
import { TranscriptRenderer, type RenderOutcome } from "../../server/transcript/renderer.js";
import { compact, extractPdf } from "../helpers/pdf.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

const conversation: ConversationView = {
  id: "c_render",
  channel: "web",
  subject: "Delivery",
  language: "en",
  state: "ended",
  customer: { id: "p_1", name: "Sara Khan" },
  participants: [{ id: "p_1", name: "Sara Khan", role: "customer" }],
  createdAt: "2026-11-21T10:00:00.000Z",
  endedAt: "2026-11-21T10:30:00.000Z",
};

function input(count: number): TranscriptInput {
  const messages: StoredMessage[] = Array.from({ length: count }, (_, i) => ({
    type: "ChatMessage",
    id: `m${i + 1}`,
    conversationId: conversation.id,
    seq: i + 1,
    timestamp: new Date(Date.parse(conversation.createdAt) + i * 1000).toISOString(),
    from: { id: "p_1", name: "Sara Khan" },
    to: [],
    text: `Message number ${i + 1}`,
    attachments: [],
    tag: "",
  }));
  return { conversation, messages, generatedAt: new Date("2026-11-22T08:00:00.000Z") };
}

function renderer(options: ConstructorParameters<typeof TranscriptRenderer>[0] = {}): TranscriptRenderer {
  const created = new TranscriptRenderer(options);
  onTestFinished(() => created.close());
  return created;
}

describe("TranscriptRenderer", () => {
  it("renders in a worker thread from the TypeScript sources, one transcript after another", async () => {
    const outcomes: RenderOutcome[] = [];
    const pool = renderer({ observe: (outcome) => outcomes.push(outcome) });
    const [first, second] = await Promise.all([pool.render(input(3)), pool.render(input(40))]);
    const text = compact((await extractPdf(second ?? Buffer.alloc(0))).pages.map((page) => page.text).join(" "));
    expect(first?.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    expect(text).toContain("Message number 40");
    expect(outcomes).toEqual(["ok", "ok"]);
  });

  it("refuses with unavailable, and when to retry, once its queue is full", async () => {
    const pool = renderer({ maxWaiting: 1 });
    const running = pool.render(input(5));
    const waiting = pool.render(input(5));
    const refused = await pool.render(input(5)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ code: "unavailable" });
    expect((refused as GatewayError).details?.retryAfterSeconds).toBeGreaterThan(0);
    // The refusal takes nothing from those already admitted.
    for (const pdf of await Promise.all([running, waiting]))
      expect(pdf.subarray(0, 5).toString("latin1")).toBe("%PDF-");
  });

  it("gives up on a render that takes too long, and says so as unavailable", async () => {
    const outcomes: RenderOutcome[] = [];
    const pool = renderer({ timeoutMs: 1, observe: (outcome) => outcomes.push(outcome) });
    await expect(pool.render(input(2_000))).rejects.toMatchObject({ code: "unavailable" });
    expect(outcomes).toEqual(["timeout"]);
  });

  it("fails what waits, and every later render, once closed", async () => {
    const pool = new TranscriptRenderer();
    const rendering = pool.render(input(500)).catch((error: unknown) => error);
    const waiting = pool.render(input(5)).catch((error: unknown) => error);
    await pool.close();
    expect(await rendering).toMatchObject({ code: "unavailable" });
    expect(await waiting).toMatchObject({ code: "unavailable" });
    await expect(pool.render(input(1))).rejects.toMatchObject({ code: "unavailable" });
  });

  it("renders in a worker thread when compiled as npm start compiles it (tsconfig.build.json, node dist/…)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "liaison-renderer-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, "dist");
    // The build's own settings, limited to the renderer and what it imports.
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.build.json"),
        compilerOptions: { outDir: out, sourceMap: false, typeRoots: [join(root, "node_modules/@types")] },
        files: [join(root, "server/transcript/renderer.ts"), join(root, "server/transcript/render-worker.ts")],
        include: [],
      }),
    );
    await run(join(root, "node_modules/.bin/tsc"), ["-p", join(dir, "tsconfig.json")], { cwd: root });
    // The compiled files find their packages as in the image, where dist/ sits beside node_modules/.
    symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
    const script = join(dir, "render.mjs");
    writeFileSync(
      script,
      `import { TranscriptRenderer } from ${JSON.stringify(join(out, "server/transcript/renderer.js"))};
      const pool = new TranscriptRenderer();
      const pdf = await pool.render(${JSON.stringify({ conversation, messages: input(25).messages })});
      await pool.close();
      process.stdout.write(pdf.toString("base64"));`,
    );
    // No tsx anywhere: plain node, as the start script runs the gateway.
    const { stdout } = await run(process.execPath, [script], {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    });
    const text = compact((await extractPdf(Buffer.from(stdout, "base64"))).pages.map((page) => page.text).join(" "));
    expect(text).toContain("Message number 25");
  }, 60_000);
});
