/**
 * The three ways a demo worker decides when to send, behind one interface:
 *
 * - `none`: send at once; after a 429, sleep the provider's `retry-after`.
 * - `redis`: what a typical Node.js user builds from rate-limiter-flexible
 *   and Redis. Two `RateLimiterRedis` (fixed windows of `windowMs`, starting at
 *   the first consume): one with points = RPM, consumed 1 per request, one with
 *   points = TPM, consumed prompt + max_tokens (the provider charges that at
 *   arrival, so reserving less risks 429s). On rejection, wait `msBeforeNext`
 *   and try again. Concurrency: a Redis counter (INCR; over the limit, DECR
 *   and poll again after a short sleep; DECR when the reply is in).
 *   What it cannot do: settle (it has `reward()`, but a reward that lands in a
 *   later fixed window than its consume creates capacity the provider never
 *   had, so a careful user does not use it for this, and we do not), queue in
 *   order (waiters poll and race at each window reset), pace against a
 *   continuously refilling bucket (a fixed window admits up to 2x its points
 *   across a boundary), or free a crashed worker's concurrency slot (the
 *   counter leaks it).
 * - `ratequeue`: `rq.acquire(resource, { load: prompt + max_tokens })`,
 *   `lease.settle(total_tokens)` and `release()` once the reply is in; a 429
 *   (none expected) is reported with `rq.reportLimited` so the fleet pauses.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { CancelledError, RateQueue, type Lease } from "@ratequeue/sdk";
import { Redis } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";

export type Mode = "none" | "redis" | "ratequeue";
export const MODES: readonly Mode[] = ["none", "redis", "ratequeue"];

/** A turn to send one request. */
export interface Ticket {
  /** RateQueue's grant stamp (log time, epoch ms), when the gate has one: how late the send is against it. */
  readonly grantedAtMs?: number;
  /** The reply is in: `totalTokens` it used, or null for a 429 (the provider charged nothing). Frees the concurrency slot. */
  done(totalTokens: number | null): Promise<void>;
}

export interface Gate {
  /** Waits for a turn to send a request that reserves `reserveTokens`; null when `signal` aborted first. */
  acquire(reserveTokens: number, signal: AbortSignal): Promise<Ticket | null>;
  /** A 429 came back with this `retry-after`; resolves when this worker may ask again (early if `signal` aborts). */
  limited(retryAfterMs: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export type GateConfig =
  | { readonly mode: "none" }
  | {
      readonly mode: "redis";
      readonly redisPort: number;
      /** Keys are prefixed with it, so runs never share counters. */
      readonly keyPrefix: string;
      readonly rpm: number;
      readonly tpm: number;
      readonly concurrency: number;
      readonly windowMs: number;
    }
  | { readonly mode: "ratequeue"; readonly url: string; readonly apiKey: string; readonly resource: string; readonly clientName: string };

/** How often a worker retries the Redis concurrency counter when it is full. */
const CONCURRENCY_POLL_MS = 20;

export function createGate(config: GateConfig): Gate {
  switch (config.mode) {
    case "none":
      return noGate();
    case "redis":
      return redisGate(config);
    case "ratequeue":
      return rateQueueGate(config);
  }
}

const FREE_TICKET: Ticket = { done: async () => undefined };

function noGate(): Gate {
  return {
    acquire: async (_reserveTokens, signal) => (signal.aborted ? null : FREE_TICKET),
    limited: (retryAfterMs, signal) => pause(retryAfterMs, signal),
    close: async () => undefined,
  };
}

function redisGate(config: Extract<GateConfig, { mode: "redis" }>): Gate {
  if (config.windowMs % 1000 !== 0) throw new RangeError(`rate-limiter-flexible counts whole seconds: windowMs must be a multiple of 1000, got ${config.windowMs}`);
  const client = new Redis({ port: config.redisPort, host: "127.0.0.1" });
  const duration = config.windowMs / 1000;
  const requests = new RateLimiterRedis({ storeClient: client, keyPrefix: `${config.keyPrefix}:rpm`, points: config.rpm, duration });
  const tokens = new RateLimiterRedis({ storeClient: client, keyPrefix: `${config.keyPrefix}:tpm`, points: config.tpm, duration });
  const inFlightKey = `${config.keyPrefix}:in-flight`;
  const KEY = "provider";

  /** consume() until it succeeds, waiting msBeforeNext after each rejection; false if aborted. */
  const consume = async (limiter: RateLimiterRedis, points: number, signal: AbortSignal): Promise<boolean> => {
    while (!signal.aborted) {
      try {
        await limiter.consume(KEY, points);
        return true;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection; // a Redis error, not a limit
        await pause(Math.max(1, rejection.msBeforeNext), signal);
      }
    }
    return false;
  };
  return {
    async acquire(reserveTokens, signal) {
      if (!(await consume(requests, 1, signal))) return null;
      if (!(await consume(tokens, reserveTokens, signal))) return null;
      while (!signal.aborted) {
        if ((await client.incr(inFlightKey)) <= config.concurrency) {
          let freed = false;
          return {
            async done() {
              if (freed) throw new Error("invariant: a concurrency slot freed twice");
              freed = true;
              await client.decr(inFlightKey);
            },
          };
        }
        await client.decr(inFlightKey);
        await pause(CONCURRENCY_POLL_MS, signal);
      }
      return null;
    },
    limited: (retryAfterMs, signal) => pause(retryAfterMs, signal),
    close: async () => void client.disconnect(),
  };
}

function rateQueueGate(config: Extract<GateConfig, { mode: "ratequeue" }>): Gate {
  const rq = new RateQueue({ url: config.url, apiKey: config.apiKey, clientName: config.clientName });
  return {
    async acquire(reserveTokens, signal) {
      let lease: Lease;
      try {
        lease = await rq.acquire(config.resource, { load: reserveTokens, signal });
      } catch (err) {
        if (err instanceof CancelledError) return null; // the run ended while this worker waited in line
        throw err;
      }
      return {
        grantedAtMs: lease.grantedAt,
        async done(totalTokens) {
          await lease.settle(totalTokens ?? 0);
          await lease.release();
        },
      };
    },
    // The cluster grants nothing on the resource until retry-after has passed, to any worker: the next acquire waits.
    limited: (retryAfterMs) => rq.reportLimited(config.resource, { retryAfterMs }),
    close: () => rq.close(),
  };
}

/** Sleeps `ms`, or less if `signal` aborts (never throws). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}
