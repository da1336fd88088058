import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";

describe("the front page", () => {
  let gateway: TestApp;
  beforeAll(async () => {
    gateway = await startTestApp();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it("links the widget demo, the two API documents, health and readiness, each of which answers", async () => {
    const response = await fetch(`${gateway.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/html; charset=utf-8/);
    const html = await response.text();
    const links = [...html.matchAll(/<a href="([^"]+)">([^<]+)<\/a>/g)].map(([, href, text]) => ({ href, text }));
    expect(links.map((link) => link.href)).toEqual(["widget/demo", "openapi.json", "asyncapi.json", "health", "ready"]);
    expect(links.every((link) => link.text !== undefined && link.text.trim().length > 0)).toBe(true);
    // The widget demo is served by the widget's routes; the others are the gateway's own and answer here.
    for (const { href } of links.filter((link) => link.href !== "widget/demo")) {
      const target = await fetch(new URL(href ?? "", `${gateway.url}/`));
      expect(target.status, href).toBe(200);
      await target.body?.cancel();
    }
  });

  it("loads nothing from elsewhere: no scripts, stylesheets, images or absolute URLs, and a policy that forbids them", async () => {
    const response = await fetch(`${gateway.url}/`);
    const html = await response.text();
    expect(html).not.toMatch(/<script|<link|<img|<iframe|src=|https?:\/\//i);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<html lang="en">');
    expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
  });

  it("answers only GET: other methods get the JSON 404 of unknown routes", async () => {
    const response = await fetch(`${gateway.url}/`, { method: "POST" });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });
});
