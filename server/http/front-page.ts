import { Router } from "express";

/** The links of the front page: what a visitor of the gateway's address is looking for. */
const links: readonly { href: string; text: string; what: string }[] = [
  { href: "widget/demo", text: "Web chat widget demo", what: "a page with the chat widget, as a site adds it" },
  { href: "openapi.json", text: "OpenAPI document", what: "the REST routes (OpenAPI 3.1)" },
  { href: "asyncapi.json", text: "AsyncAPI document", what: "the Socket.IO events and their acks (AsyncAPI 3.0)" },
  { href: "health", text: "Health", what: "the process answers" },
  { href: "ready", text: "Readiness", what: "the store answers; adapters that cannot deliver now" },
];

// Relative links, so that the page works behind a proxy that serves the gateway under a path prefix.
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Liaison</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
a { color: #0b57d0; }
li { margin: 0.5rem 0; }
@media (prefers-color-scheme: dark) { body { background: #121212; color: #e8e8e8; } a { color: #8ab4f8; } }
</style>
</head>
<body>
<main>
<h1>Liaison</h1>
<p>A real-time gateway between customers, bots and agents.</p>
<ul>
${links.map((link) => `<li><a href="${link.href}">${link.text}</a>: ${link.what}</li>`).join("\n")}
</ul>
</main>
</body>
</html>
`;

/** `GET /`: a small page linking the widget demo, the API documents, health and readiness. No external assets. */
export function frontPageRoutes(): Router {
  const router = Router();
  router.get("/", (_req, res) => {
    res.setHeader("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    res.type("html").send(page);
  });
  return router;
}
