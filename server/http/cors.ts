import type { RequestHandler } from "express";

/**
 * The CORS headers for a request from `origin` (none for an origin not in `origins`, or none at all), given to
 * `setHeader`; shared by the express middleware and the fast JSON routes.
 */
export function corsPolicy(
  origins: readonly string[],
): (origin: string | undefined, setHeader: (name: string, value: string) => void) => void {
  const any = origins.includes("*");
  return (origin, setHeader) => {
    if (typeof origin !== "string" || !(any || origins.includes(origin))) return;
    setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
    if (!any) setHeader("Vary", "Origin");
    setHeader("Access-Control-Allow-Headers", "Content-Type, Authorization");
    setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    setHeader("Access-Control-Expose-Headers", "Retry-After, Content-Disposition");
    setHeader("Access-Control-Max-Age", "600");
  };
}

/** CORS for browser widgets calling the REST API from another origin (CORS_ORIGINS). */
export function cors(origins: readonly string[]): RequestHandler {
  const policy = corsPolicy(origins);
  return (req, res, next) => {
    policy(req.headers.origin, (name, value) => res.setHeader(name, value));
    if (req.method === "OPTIONS") {
      res.status(204).end();
      return;
    }
    next();
  };
}
