import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Router, type Response } from "express";
import { GatewayError } from "../core/errors.js";

/** What the widget's routes need to know of the gateway. */
export interface WidgetRoutesOptions {
  /** `CORS_ORIGINS`: the sites that may frame the chat panel (`*`: any). */
  corsOrigins: readonly string[];
  /** `SOCKET_PATH`, for the panel's socket. */
  socketPath: string;
  /** `MAX_PAYLOAD_BYTES`: a file travels base64-encoded inside one socket event. */
  maxPayloadBytes: number;
  /** `MAX_FILE_BYTES`: the largest file the gateway forwards to a desk. */
  maxFileBytes: number;
  /** Where the built `widget.js` and `panel.js` are (default: `dist/widget/` under the package root). */
  assetsDir?: string;
}

/** Room left in a socket event for everything around a file's base64 text. */
const EVENT_OVERHEAD_BYTES = 8_192;

/**
 * The web chat widget: `GET /widget.js` (the loader a site adds with one script tag), `GET /widget/frame` (the chat
 * panel's page, framed by the loader; with `CORS_ORIGINS` set only those sites may frame it), `GET /widget/panel.js`
 * (the panel's script) and `GET /widget/demo` (a demo host page).
 */
export function widgetRoutes(options: WidgetRoutesOptions): Router {
  const router = Router();
  const assetsDir = options.assetsDir ?? join(packageRoot(), "dist", "widget");
  const assets = new Map<string, Promise<Buffer>>();
  const asset = (name: string): Promise<Buffer> => {
    let loaded = assets.get(name);
    if (loaded === undefined) {
      loaded = readFile(join(assetsDir, name));
      // A failed read (not built yet) is tried again on the next request rather than remembered.
      loaded.catch(() => assets.delete(name));
      assets.set(name, loaded);
    }
    return loaded;
  };
  const script = async (res: Response, name: string): Promise<void> => {
    let body: Buffer;
    try {
      body = await asset(name);
    } catch {
      throw new GatewayError(
        "not_configured",
        "The web chat widget is not built on this gateway: run `npm run build`.",
      );
    }
    res.setHeader("Content-Type", "text/javascript; charset=utf-8");
    res.setHeader("Cache-Control", "public, max-age=300");
    // Sites that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
    res.setHeader("Cross-Origin-Resource-Policy", "cross-origin");
    res.send(body);
  };
  const maxFileBytes = Math.max(
    0,
    Math.min(options.maxFileBytes, Math.floor(((options.maxPayloadBytes - EVENT_OVERHEAD_BYTES) * 3) / 4)),
  );
  const framePage = renderFrame(options.socketPath, maxFileBytes);
  const frameCsp = frameContentSecurityPolicy(options.corsOrigins);

  router.get("/widget.js", async (_req, res) => script(res, "widget.js"));
  router.get("/widget/panel.js", async (_req, res) => script(res, "panel.js"));
  router.get("/widget/frame", (_req, res) => {
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.setHeader("Content-Security-Policy", frameCsp);
    res.setHeader("Cache-Control", "no-cache");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.send(framePage);
  });
  router.get("/widget/demo", (_req, res) => {
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.setHeader(
      "Content-Security-Policy",
      "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
    );
    res.setHeader("Cache-Control", "no-cache");
    res.send(DEMO_PAGE);
  });
  return router;
}

/**
 * The panel page's policy: its own script only, connections to the gateway only, images it carries itself, and, with
 * `CORS_ORIGINS` set, framing by those sites (and the gateway's own demo) only.
 */
export function frameContentSecurityPolicy(corsOrigins: readonly string[]): string {
  const directives = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data: blob:",
    "base-uri 'none'",
    "form-action 'none'",
  ];
  if (!corsOrigins.includes("*")) directives.push(`frame-ancestors 'self' ${corsOrigins.join(" ")}`.trim());
  return directives.join("; ");
}

function renderFrame(socketPath: string, maxFileBytes: number): string {
  return `<!doctype html>
<html data-socket-path="${escapeAttribute(socketPath)}" data-max-file-bytes="${maxFileBytes}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Chat</title>
</head>
<body>
<script src="panel.js"></script>
</body>
</html>
`;
}

const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Liaison web chat: demo</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
  code { background: #f2f2f2; padding: 0.1em 0.3em; border-radius: 4px; }
</style>
</head>
<body>
<main>
<h1>Liaison web chat</h1>
<p>This page embeds the chat widget with one script tag:</p>
<p><code>&lt;script src="https://your-gateway/widget.js" async&gt;&lt;/script&gt;</code></p>
<p>Open the chat with the button in the corner, fill in your name and e-mail address, and an agent will answer.</p>
</main>
<script src="../widget.js" async data-title="Demo chat"></script>
</body>
</html>
`;

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The nearest folder above this module with a `package.json`: the repository, or `/app` in the image. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}
