import { get } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { describe, expect, it, onTestFinished } from "vitest";
import { errorHandler } from "../../server/http/errors.js";
import { widgetRoutes } from "../../server/http/widget.js";
import { createLogger } from "../../server/logger.js";
import { startTestApp } from "../helpers/app.js";

async function startApp(overrides: Record<string, string> = {}) {
  const app = await startTestApp(overrides);
  onTestFinished(() => app.close());
  return app;
}

function statusOf(url: string, headers: Record<string, string>): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (response) => {
      response.resume();
      resolve(response.statusCode);
    }).on("error", reject);
  });
}

describe("the widget's routes", () => {
  it("serves the loader and the panel's script to any site, cacheable", async () => {
    const app = await startApp();
    for (const path of ["/widget.js", "/widget/panel.js"]) {
      const response = await fetch(`${app.url}${path}`, { headers: { origin: "https://shop.example" } });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      expect(response.headers.get("cross-origin-resource-policy")).toBe("cross-origin");
      expect(response.headers.get("cache-control")).toBe("public, max-age=300");
      expect((await response.text()).length).toBeGreaterThan(1_000);
      const etag = response.headers.get("etag");
      expect(etag).not.toBeNull();
      // node:http rather than fetch, which turns a conditional request into an uncached one.
      expect(await statusOf(`${app.url}${path}`, { "if-none-match": etag ?? "" })).toBe(304);
    }
    expect(await (await fetch(`${app.url}/widget.js`)).text()).toContain("LiaisonWidget");
  });

  it("lets any site frame the panel by default, and only CORS_ORIGINS (and the gateway) when set", async () => {
    const open = await startApp();
    const anyone = await fetch(`${open.url}/widget/frame`);
    expect(anyone.status).toBe(200);
    expect(anyone.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const policy = anyone.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).not.toContain("frame-ancestors");
    // A file goes base64-encoded inside one socket event of at most MAX_PAYLOAD_BYTES (1 MiB by default).
    expect(await anyone.text()).toContain('data-max-file-bytes="780288"');

    const closed = await startApp({ CORS_ORIGINS: "https://shop.example,https://www.shop.example" });
    const listed = await fetch(`${closed.url}/widget/frame`);
    expect(listed.headers.get("content-security-policy")).toContain(
      "frame-ancestors 'self' https://shop.example https://www.shop.example",
    );
  });

  it("serves a demo page that embeds the widget with its script tag", async () => {
    const app = await startApp();
    const response = await fetch(`${app.url}/widget/demo`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toMatch(/<script src="\.\.\/widget\.js" async data-title="Demo chat"><\/script>/);
    expect(response.headers.get("content-security-policy")).toContain("frame-src 'self'");
  });

  it("says so, in the error shape, when the widget has not been built", async () => {
    const web = express();
    web.use(
      widgetRoutes({
        corsOrigins: ["*"],
        socketPath: "/socket.io",
        maxPayloadBytes: 1_048_576,
        maxFileBytes: 26_214_400,
        assetsDir: "/nonexistent/widget",
      }),
    );
    web.use(errorHandler(createLogger({ LOG_LEVEL: "silent" })));
    const server = web.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/widget.js`);
    expect(response.status).toBe(501);
    expect(await response.json()).toEqual({
      error: {
        code: "not_configured",
        message: "The web chat widget is not built on this gateway: run `npm run build`.",
      },
    });
  });
});
