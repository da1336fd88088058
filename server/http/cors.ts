import type { RequestHandler } from "express";

/** CORS for browser widgets calling the REST API from another origin (CORS_ORIGINS). */
export function cors(origins: readonly string[]): RequestHandler {
  const any = origins.includes("*");
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (typeof origin === "string" && (any || origins.includes(origin))) {
      res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
      if (!any) res.setHeader("Vary", "Origin");
      res.setHeader("Access-Control-Allow-Headers", "Content-Type, Authorization");
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.setHeader("Access-Control-Expose-Headers", "Retry-After, Content-Disposition");
      res.setHeader("Access-Control-Max-Age", "600");
    }
    if (req.method === "OPTIONS") {
      res.status(204).end();
      return;
    }
    next();
  };
}
