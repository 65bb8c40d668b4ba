/**
 * The SDK conformance suite (scenarios.json), run by the Node SDK against a
 * real three-node cluster. packages/python/tests/test_conformance.py runs the
 * same list with the Python SDK.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue, RateQueueError, type Lease, type RateQueueOptions } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep, waitFor } from "../cluster/harness.js";

interface Scenario {
  id: string;
  limits: Record<string, unknown>[] | null;
  load?: number;
  actual?: number;
  timeoutMs?: number;
  retryAfterMs?: number;
  waiters?: { tag: string; priority?: number }[];
  keyScope?: string[];
  apiKey?: string;
  url?: string;
  unavailableAfterMs?: number;
  requests?: number;
  holdMs?: number;
  killAfterGrants?: number;
  expect: Record<string, any>;
}

const { scenarios } = JSON.parse(readFileSync(new URL("./scenarios.json", import.meta.url), "utf8")) as { scenarios: Scenario[] };

let names = 0;
async function resourceFor(cluster: Cluster, s: Scenario): Promise<string> {
  if (s.limits === null) return "no-such-resource";
  const name = `node-${++names}`;
  const r = await cluster.admin("PUT", `/v1/resources/${name}`, { limits: s.limits });
  expect([200, 201]).toContain(r.status);
  return name;
}

async function queued(cluster: Cluster, name: string): Promise<number> {
  return Object.values((await cluster.resource(name)).queued).reduce((a, b) => a + b, 0);
}

async function waitQueued(cluster: Cluster, name: string, count: number): Promise<void> {
  await waitFor(async () => (await queued(cluster, name)) === count, { what: `${count} queued on ${name}`, timeoutMs: 20_000 });
}

/** Runs `fn` with a fresh client, closed afterwards. */
async function withClient<T>(cluster: Cluster, options: Partial<RateQueueOptions>, fn: (rq: RateQueue) => Promise<T>): Promise<T> {
  const rq = new RateQueue({ url: cluster.urls.join(","), apiKey: ADMIN_KEY, ...options });
  try {
    return await fn(rq);
  } finally {
    await rq.close();
  }
}

async function expectError(s: Scenario, call: () => Promise<unknown>): Promise<void> {
  const err = await call().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RateQueueError);
  const e = err as RateQueueError;
  expect(e.code).toBe(s.expect.code);
  if ("request" in s.expect) expect(e.request !== null).toBe(s.expect.request);
}

async function orderOfWaiters(cluster: Cluster, s: Scenario): Promise<string[]> {
  const name = await resourceFor(cluster, s);
  return withClient(cluster, {}, async (rq) => {
    const holder = await rq.acquire(name);
    const order: string[] = [];
    const waits: Promise<void>[] = [];
    for (const w of s.waiters!) {
      waits.push(rq.acquire(name, w.priority === undefined ? {} : { priority: w.priority }, () => void order.push(w.tag)));
      await waitQueued(cluster, name, waits.length);
    }
    await holder.release();
    await Promise.all(waits);
    return order;
  });
}

type Runner = (cluster: Cluster, s: Scenario) => Promise<void>;

const runners: Record<string, Runner> = {
  grant: async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      const lease = await rq.acquire(name, { load: s.load! });
      expect(lease.resource).toBe(name);
      expect(lease.load).toEqual(s.expect.leaseLoad);
      expect((await cluster.resource(name)).leasesHeld).toBe(s.expect.leasesHeld);
    });
  },
  fifo: async (cluster, s) => expect(await orderOfWaiters(cluster, s)).toEqual(s.expect.order),
  priority: async (cluster, s) => expect(await orderOfWaiters(cluster, s)).toEqual(s.expect.order),
  timeout: async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      await rq.acquire(name);
      await expectError(s, () => rq.acquire(name, { timeoutMs: s.timeoutMs! }));
      expect(await queued(cluster, name)).toBe(s.expect.queued);
    });
  },
  cancel: async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      const holder = await rq.acquire(name);
      const abort = new AbortController();
      const waiter = rq.acquire(name, { signal: abort.signal }).catch((e: unknown) => e);
      await waitQueued(cluster, name, 1);
      abort.abort();
      expect(await waiter).toMatchObject({ code: "RQ_CANCELLED" });
      await waitQueued(cluster, name, s.expect.queued);
      await holder.release();
      expect(await rq.tryAcquire(name)).not.toBeNull();
    });
  },
  "try-refused": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      await rq.acquire(name);
      expect(await rq.tryAcquire(name)).toBe(s.expect.try);
      expect(await queued(cluster, name)).toBe(s.expect.queued);
    });
  },
  settle: async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      const lease = await rq.acquire(name, { load: s.load! });
      await lease.settle(s.actual!);
      await lease.release();
      expect((await cluster.resource(name)).usage.map((u) => u.used)).toEqual([s.expect.used]);
    });
  },
  "release-idempotent": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      const lease = await rq.acquire(name);
      await lease.release();
      await lease.release();
      expect((await cluster.resource(name)).leasesHeld).toBe(s.expect.leasesHeld);
    });
  },
  cooldown: async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, async (rq) => {
      await rq.reportLimited(name, { retryAfterMs: s.retryAfterMs! });
      expect(await rq.tryAcquire(name)).toBe(s.expect.try);
      expect((await cluster.resource(name)).cooldownUntil !== null).toBe(s.expect.cooldown);
    });
  },
  "delivery-report": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    // A report period longer than the test: only closing the client sends the report.
    await withClient(cluster, { deliveryReportMs: 600_000 }, async (rq) => {
      for (let i = 0; i < s.requests!; i++) await rq.acquire(name, {}, () => undefined);
    });
    const leader = await cluster.waitForLeader();
    const scrape = async (): Promise<string> => (await fetch(`${leader.httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const value = (text: string, series: string): number | null => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? null : Number(line.slice(series.length + 1));
    };
    await waitFor(async () => value(await scrape(), `ratequeue_grant_delivery_seconds_count{resource="${name}"}`) === s.expect.count, {
      what: `${s.expect.count} delays of ${name} in /metrics`,
    });
    const text = await scrape();
    expect(value(text, `ratequeue_grant_delivery_seconds_bucket{resource="${name}",le="+Inf"}`)).toBe(s.expect.count);
    expect(value(text, `ratequeue_grant_delivery_seconds_sum{resource="${name}"}`)).toBeGreaterThanOrEqual(0);
  },
  "error-unknown-resource": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, (rq) => expectError(s, () => rq.acquire(name)));
  },
  "error-ungrantable": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, (rq) => expectError(s, () => rq.acquire(name, { load: s.load! })));
  },
  "error-invalid": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, {}, (rq) => expectError(s, async () => rq.acquire(name, { load: s.load! })));
  },
  "error-forbidden": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    const key = (await cluster.admin("POST", "/v1/keys", { name: "node", scope: { acquire: s.keyScope } })).json.secret as string;
    await withClient(cluster, { apiKey: key }, (rq) => expectError(s, () => rq.acquire(name)));
  },
  "error-unauthorized": async (cluster, s) => {
    const name = await resourceFor(cluster, s);
    await withClient(cluster, { apiKey: s.apiKey! }, (rq) => expectError(s, () => rq.acquire(name)));
  },
  "error-unavailable": async (cluster, s) => {
    await withClient(cluster, { url: s.url!, unavailableAfterMs: s.unavailableAfterMs! }, (rq) => expectError(s, () => rq.acquire("anything")));
  },
  failover: async (_, s) => {
    const cluster = await Cluster.start();
    try {
      await failoverOn(cluster, s);
    } finally {
      await cluster.stop();
    }
  },
};

async function failoverOn(cluster: Cluster, s: Scenario): Promise<void> {
  const name = await resourceFor(cluster, s);
  await withClient(cluster, { unavailableAfterMs: 60_000 }, async (rq) => {
    let held = 0;
    let maxHeld = 0;
    let granted = 0;
    let killNow!: () => void;
    const kill = new Promise<void>((resolve) => (killNow = resolve));
    const sessions = new Set<string>();
    const one = async (): Promise<{ ok: true; leaseId: string } | { ok: false; code: string }> => {
      try {
        let lease: Lease | null = null;
        await rq.acquire(name, { timeoutMs: s.timeoutMs! }, async (l) => {
          lease = l;
          // Counted after the grant and before the release is sent: a conservative view of what is held.
          held++;
          maxHeld = Math.max(maxHeld, held);
          sessions.add(l.sessionId);
          if (++granted === s.killAfterGrants) killNow();
          await sleep(s.holdMs!);
          held--;
        });
        return { ok: true, leaseId: (lease as Lease | null)!.id };
      } catch (err) {
        expect((err as RateQueueError).code).toMatch(/^RQ_/);
        return { ok: false, code: (err as RateQueueError).code };
      }
    };
    const results = Array.from({ length: s.requests! }, () => one());
    await kill;
    const old = await cluster.waitForLeader();
    await old.kill("SIGKILL");
    const outcomes = await Promise.all(results);
    const leader = await cluster.waitForLeader(30_000, old.id);
    expect(maxHeld).toBeLessThanOrEqual(s.expect.maxHeld);
    const ok = outcomes.flatMap((o) => (o.ok ? [o.leaseId] : []));
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(ok.length).toBe(s.expect.granted);
    // Every request the SDK saw granted was granted exactly once in the committed history.
    const history = (await cluster.admin("GET", "/v1/debug/grants?limit=100000", undefined, leader)).json.records as {
      effect: { type: string; resource?: string; sessionId?: string; requestId?: string; leaseId?: number };
    }[];
    const leasesOf = new Map<string, Set<string>>();
    for (const { effect: e } of history) {
      if (e.type !== "granted" || e.resource !== name) continue;
      expect(sessions.has(e.sessionId!)).toBe(true);
      const key = `${e.sessionId}/${e.requestId}`;
      leasesOf.set(key, (leasesOf.get(key) ?? new Set()).add(String(e.leaseId)));
    }
    expect([...leasesOf.values()].every((ids) => ids.size === 1)).toBe(true);
    expect(leasesOf.size).toBe(ok.length);
    expect([...leasesOf.values()].map((ids) => [...ids][0]).sort()).toEqual([...ok].sort());
    await waitFor(async () => (await cluster.resource(name, leader)).leasesHeld === s.expect.leasesHeldAtEnd, {
      what: "every lease released",
    });
  });
}

describe("SDK conformance: the Node SDK", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start();
  }, 60_000);
  afterAll(async () => cluster?.stop());

  for (const s of scenarios) {
    it(s.id, async () => {
      const run = runners[s.id];
      expect(run, `the Node SDK has no runner for conformance scenario ${s.id}`).toBeDefined();
      await run!(cluster, s);
    }, 120_000);
  }
});
