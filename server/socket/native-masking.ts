import { createRequire } from "node:module";

/**
 * Whether ws (Socket.IO's WebSocket server) XORs frames with `bufferutil`'s native code, as ws itself decides when it
 * loads: it requires `bufferutil` unless `WS_NO_BUFFER_UTIL` is set, and falls back to a byte loop in JavaScript when
 * the package is missing. `bufferutil` is an optional dependency: on a platform with no prebuilt binary and no
 * compiler it loads its own JavaScript fallback, which this reports as not native either. Every frame a client sends
 * is masked (RFC 6455), so the gateway unmasks every message it receives: natively, 6–7 % fewer instructions per
 * relayed message (`npm run bench:instructions`).
 */
export function nativeMasking(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WS_NO_BUFFER_UTIL) return false;
  try {
    // Resolved from ws's own location, as ws requires it.
    const fromWs = createRequire(createRequire(import.meta.url).resolve("ws"));
    const bufferUtil = fromWs("bufferutil") as { unmask?: unknown };
    return (
      typeof bufferUtil.unmask === "function" &&
      Function.prototype.toString.call(bufferUtil.unmask).includes("[native code]")
    );
  } catch {
    return false;
  }
}
