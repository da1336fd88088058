import type { Response } from "express";
import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { GatewayError } from "../core/errors.js";

/** How many times something may happen per key (a client address, a conversation...) in a window. */
export interface LimiterOptions {
  /** Names the limit in keys and messages, e.g. `transcript-address`; unique per limit. */
  name: string;
  /** Allowed per key and window. */
  points: number;
  /** The window; a key's count starts over this long after its first use in the window. */
  durationSeconds: number;
  /**
   * Counts in Redis, shared by every node, instead of in this process. While Redis cannot be reached, each node
   * counts on its own in memory rather than refusing everyone or letting everyone through.
   */
  redis?: { client: Redis; prefix: string };
  /** The refusal's message (default: "Too many requests; retry in N s."). */
  message?: (retryAfterSeconds: number) => string;
}

/** A rate limit. Knows nothing of HTTP or sockets: callers turn its refusal into a 429 or a failed ack. */
export interface Limiter {
  readonly name: string;
  /**
   * Counts one use by `key`.
   * @throws {@link GatewayError} `rate_limited` with `details.retryAfterSeconds` when `key` has used up its points
   */
  consume(key: string): Promise<void>;
}

export function createLimiter(options: LimiterOptions): Limiter {
  const base = { points: options.points, duration: options.durationSeconds };
  const memory = (keyPrefix: string) => new RateLimiterMemory({ ...base, keyPrefix });
  const limiter: RateLimiterAbstract =
    options.redis === undefined
      ? memory(options.name)
      : new RateLimiterRedis({
          ...base,
          storeClient: options.redis.client,
          keyPrefix: `${options.redis.prefix}limit:${options.name}`,
          // Without this a command to a Redis that is down waits in ioredis's offline queue, holding the request.
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory(`${options.name}:insurance`),
        });
  const message = options.message ?? ((seconds: number) => `Too many requests; retry in ${seconds} s.`);
  return {
    name: options.name,
    async consume(key) {
      try {
        await limiter.consume(key);
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        const retryAfterMs = Math.max(1, Math.ceil(error.msBeforeNext));
        const retryAfterSeconds = Math.ceil(retryAfterMs / 1000);
        throw new GatewayError("rate_limited", message(retryAfterSeconds), { retryAfterSeconds, retryAfterMs });
      }
    },
  };
}

/**
 * Counts one use by `key`; when refused, sets `Retry-After` on `res` before rethrowing, so the error handler's 429
 * tells the client when to come back.
 */
export async function consumeOrRefuse(res: Response, limiter: Limiter, key: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (error) {
    setRetryAfter(res, error);
    throw error;
  }
}

/** Sets `Retry-After` from a refusal that carries `details.retryAfterSeconds`; anything else is left alone. */
export function setRetryAfter(res: Response, error: unknown): void {
  if (!(error instanceof GatewayError)) return;
  const seconds = error.details?.retryAfterSeconds;
  if (typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0) {
    res.setHeader("Retry-After", String(Math.ceil(seconds)));
  }
}
