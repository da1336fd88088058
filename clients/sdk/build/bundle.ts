import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { browserAnswers } from "./browser-answers.js";

const sdkDir = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Bundles the SDK's browser build, `dist/browser/liaison-sdk.js`: one minified ES module, socket.io-client inside,
 * and the answer checks generated from the protocol's zod schemas instead of zod itself.
 */
export async function bundleBrowserSdk(): Promise<void> {
  await build({
    entryPoints: [join(sdkDir, "index.ts")],
    outfile: join(sdkDir, "dist", "browser", "liaison-sdk.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
    plugins: [browserAnswers()],
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bundleBrowserSdk();
}
