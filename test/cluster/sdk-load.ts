import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, sleep } from "./harness.js";

/** What `concurrencyLoad` saw. */
export interface LoadStats {
  grants: number;
  /** The most leases the workers held at once (counted free before each release is sent: never above the cluster's count). */
  maxHeld: number;
  /** Every acquire that failed, as `CODE message`. */
  failures: string[];
  /** The longest any acquire took (the failover window, under a concurrency limit also the wait for a slot). */
  maxWaitMs: number;
  leaseIds: Set<string>;
  /** Lease ids granted more than once. */
  duplicates: number;
}

/**
 * SDK workers that acquire `resource` (a concurrency limit), hold each lease `holdMs` and release it, until stopped.
 * Used by the tests that change the cluster under load: no acquire may fail, none may see a lease id twice, and the
 * leases held at once must never exceed the limit.
 */
export function concurrencyLoad(urls: readonly string[], options: { resource: string; workers: number; holdMs?: number; apiKey?: string }) {
  const rq = new RateQueue({ url: [...urls], apiKey: options.apiKey ?? ADMIN_KEY });
  let held = 0;
  let stop = false;
  const stats: LoadStats = { grants: 0, maxHeld: 0, failures: [], maxWaitMs: 0, leaseIds: new Set(), duplicates: 0 };
  const loops = Array.from({ length: options.workers }, async () => {
    while (!stop) {
      const started = Date.now();
      try {
        const lease = await rq.acquire(options.resource, { timeoutMs: 30_000 });
        stats.maxWaitMs = Math.max(stats.maxWaitMs, Date.now() - started);
        if (stats.leaseIds.has(lease.id)) stats.duplicates++;
        stats.leaseIds.add(lease.id);
        held++;
        stats.grants++;
        stats.maxHeld = Math.max(stats.maxHeld, held);
        await sleep(options.holdMs ?? 5);
        held--;
        await lease.release();
      } catch (err) {
        stats.failures.push(`${(err as { code?: string }).code ?? ""} ${(err as Error).message}`);
        await sleep(50);
      }
    }
  });
  return {
    stats,
    async stop(): Promise<LoadStats> {
      stop = true;
      await Promise.all(loops);
      await rq.close();
      return stats;
    },
  };
}
