import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue, type Lease } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep } from "../cluster/harness.js";

describe("the SDK across a kill -9 of the leader", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: { pool: { limits: [{ kind: "concurrency", limit: 30 }, { kind: "rate", limit: 10_000, windowMs: 60_000 }] } },
    });
  });
  afterAll(async () => cluster?.stop());

  it("every acquire in flight ends granted exactly once or with an error; none hangs", async () => {
    const rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY });
    const warm = await rq.acquire("pool");
    await warm.release();
    const leader = await cluster.waitForLeader();
    // 40 acquires against 30 slots: 30 are granted, 10 wait in the queue when the leader dies.
    type Outcome = { lease?: Lease; error?: Error };
    const outcomes = Array.from({ length: 40 }, () =>
      rq.acquire("pool", { timeoutMs: 25_000 }).then(
        (lease): Outcome => ({ lease }),
        (error: Error): Outcome => ({ error }),
      ),
    );
    await sleep(50);
    await leader.kill("SIGKILL");
    const newLeader = await cluster.waitForLeader(20_000, leader.id);
    // Release a few of the granted leases so that waiters can be granted by the new leader.
    const settled: Outcome[] = [];
    const early = await Promise.race([Promise.all(outcomes.slice(0, 10)), sleep(25_000).then(() => null)]);
    expect(early, "the first acquires must finish").not.toBeNull();
    for (const o of early!) if (o.lease) await o.lease.release();
    const all = await Promise.race([Promise.all(outcomes), sleep(40_000).then(() => null)]);
    expect(all, "no acquire may hang").not.toBeNull();
    settled.push(...all!);
    const granted = settled.filter((o) => o.lease !== undefined).map((o) => o.lease!);
    const errors = settled.filter((o) => o.error !== undefined).map((o) => (o.error as { code?: string }).code);
    for (const code of errors) expect(["RQ_TIMEOUT", "RQ_UNAVAILABLE"]).toContain(code);
    // Every lease id is distinct: nothing was granted twice.
    const ids = granted.map((l) => l.id);
    expect(new Set(ids).size).toBe(ids.length);
    // The cluster holds exactly the leases the client holds (the first ten were released).
    const view = (await cluster.admin("GET", "/v1/resources/pool", undefined, newLeader)).json;
    const held = granted.filter((l) => !l.released);
    expect(view.leasesHeld).toBe(held.length);
    expect(held.length).toBeLessThanOrEqual(30);
    expect(granted.length).toBeGreaterThanOrEqual(30);
    for (const l of held) await l.release();
    const after = (await cluster.admin("GET", "/v1/resources/pool", undefined, newLeader)).json;
    expect(after.leasesHeld).toBe(0);
    // Agreement: the two surviving nodes applied the same grant history, entry for entry.
    const survivors = cluster.nodes.filter((n) => n.running);
    const logs = await Promise.all(survivors.map(async (n) => (await cluster.admin("GET", "/v1/debug/grants?since=0&limit=100000", undefined, n)).json));
    const upTo = Math.min(...logs.map((l) => l.appliedIndex));
    const prefix = (l: { records: { index: number }[] }) => JSON.stringify(l.records.filter((r) => r.index <= upTo));
    expect(prefix(logs[0])).toBe(prefix(logs[1]));
    expect(logs[0].records.filter((r: { effect: { type: string } }) => r.effect.type === "granted").length).toBeGreaterThanOrEqual(granted.length);
    // The killed node comes back and the client keeps working across a second failover.
    leader.start();
    await sleep(500);
    const second = await cluster.waitForLeader();
    await second.kill("SIGKILL");
    await cluster.waitForLeader(20_000, second.id);
    const lease = await rq.acquire("pool", { timeoutMs: 20_000 });
    expect(lease.resource).toBe("pool");
    await lease.release();
    await rq.close();
  });
});

describe("the SDK when the leader freezes with its sockets open (SIGSTOP)", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { pool: { limits: [{ kind: "concurrency", limit: 10 }] } } });
  });
  afterAll(async () => cluster?.stop());

  it("gives up the silent node and is granted by the next leader while the old one is still stopped", async () => {
    const rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY, silentAfterMs: 1_000 });
    const warm = await rq.acquire("pool"); // the client now talks to the leader
    await warm.release();
    const leader = await cluster.waitForLeader();
    leader.proc!.kill("SIGSTOP");
    let frozen = true;
    try {
      // No close event ever comes from a stopped process: only the silence tells. Without it these wait on the
      // frozen node until their own timeout (RQ_TIMEOUT), long after the other nodes have elected a leader.
      const leases = await Promise.all([1, 2, 3].map(() => rq.acquire("pool", { timeoutMs: 20_000 })));
      expect(frozen, "granted while the old leader was still stopped").toBe(true);
      expect(new Set(leases.map((l) => l.id)).size).toBe(3);
      for (const l of leases) await l.release();
    } finally {
      frozen = false;
      leader.proc!.kill("SIGCONT");
    }
    // The old leader rejoins; the cluster agrees on one leader and holds no lease.
    const now = await cluster.waitForLeader(20_000);
    expect((await cluster.admin("GET", "/v1/resources/pool", undefined, now)).json.leasesHeld).toBe(0);
    await rq.close();
  }, 60_000);
});
