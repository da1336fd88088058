import type { Request } from "express";
import type { ApiKeys } from "../core/api-keys.js";
import { GatewayError } from "../core/errors.js";

/** The bearer credential of a request (`Authorization: Bearer …`), if any. */
export function bearer(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== "string") return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Requires a configured API key as the bearer credential. */
export function requireApiKey(req: Request, apiKeys: ApiKeys): void {
  const credential = bearer(req);
  if (credential === undefined)
    throw new GatewayError("unauthorized", "Send an API key as Authorization: Bearer <key>.");
  if (!apiKeys.verify(credential)) throw new GatewayError("unauthorized", "The API key is not valid.");
}
