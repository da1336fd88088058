import type { CorsOptions } from "cors";

/**
 * The one CORS policy of the gateway, for the REST API and Socket.IO alike (engine.io hands its `cors` option to the
 * same `cors` package): browsers on `CORS_ORIGINS` (or any, with `*`) may call the API and open sockets, reading the
 * headers a client needs (`Retry-After` on 429/503, the transcript's file name).
 */
export function corsOptions(origins: readonly string[]): CorsOptions {
  return {
    origin: origins.includes("*") ? "*" : [...origins],
    methods: ["GET", "POST"],
    allowedHeaders: ["Content-Type", "Authorization"],
    exposedHeaders: ["Retry-After", "Content-Disposition"],
    maxAge: 600,
  };
}
