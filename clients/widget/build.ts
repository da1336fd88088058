import { build } from "esbuild";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { browserAnswers } from "../sdk/build/browser-answers.js";

const here = dirname(fileURLToPath(import.meta.url));

/** Where the gateway serves the widget from: `dist/widget/` under the package root. */
export const widgetOutDir = join(here, "..", "..", "dist", "widget");

/**
 * Bundles the widget into two minified browser scripts, each one self-contained file: `widget.js`, the loader a
 * site adds with a script tag, and `panel.js`, the chat panel in the frame (the SDK and socket.io-client with it, the
 * SDK's answer checks generated from the protocol's schemas rather than zod).
 *
 * @param outdir - where to write them (default {@link widgetOutDir})
 */
export async function buildWidget(outdir: string = widgetOutDir): Promise<void> {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: { widget: join(here, "widget.ts"), panel: join(here, "frame.ts") },
    outdir,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: ["es2020", "chrome90", "firefox90", "safari15"],
    minify: true,
    sourcemap: false,
    legalComments: "none",
    logLevel: "warning",
    plugins: [browserAnswers()],
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildWidget();
}
