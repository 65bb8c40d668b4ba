/**
 * A rolling restart of every node (SIGTERM, start again on the same data, wait until it is in sync, next) while
 * SDK workers acquire and release leases of a concurrency limit: no acquire fails, the leases held at once never
 * exceed the limit, and the grants the workers received are exactly the grants the cluster applied (none lost,
 * none doubled), by lease id and by request.
 */
import { describe, expect, it } from "vitest";
import { Cluster, sleep, waitFor } from "./harness.js";
import { concurrencyLoad } from "./sdk-load.js";

const LIMIT = 3;

describe("rolling restart", () => {
  it("restarts every node in turn under SDK load with no failed acquire and no lost, doubled or excess grant", async () => {
    // No snapshots during the test: every node's grant history (GET /v1/debug/grants) covers the whole log.
    await using cluster = await Cluster.start({ resources: { pool: { limits: [{ kind: "concurrency", limit: LIMIT }] } }, snapshotEntries: 1_000_000 });
    const work = concurrencyLoad(cluster.urls, { resource: "pool", workers: 6 });
    const restarted: string[] = [];
    try {
      await sleep(1_000);
      for (const node of [...cluster.nodes]) {
        const before = await cluster.waitForLeader();
        await node.kill("SIGTERM");
        node.start();
        // In sync: it has applied everything the leader had committed once it came back.
        const leader = await cluster.waitForLeader(30_000);
        const commit = (await leader.status())!.commitIndex;
        await waitFor(async () => ((await node.status())?.appliedIndex ?? 0) >= commit, {
          timeoutMs: 30_000,
          what: `${node.id} to catch up after its restart`,
          dump: () => cluster.dump(),
        });
        restarted.push(`${node.id}${node.id === before.id ? " (leader)" : ""}`);
        await sleep(500); // load runs on the full cluster between restarts
      }
    } finally {
      const stats = await work.stop();
      console.log(`rolling restart of ${restarted.join(", ")}: ${stats.grants} grants, max held ${stats.maxHeld}/${LIMIT}, longest acquire ${stats.maxWaitMs} ms, failures ${stats.failures.length}`);
      expect(stats.failures).toEqual([]);
      expect(stats.maxHeld).toBeLessThanOrEqual(LIMIT);
      expect(stats.duplicates).toBe(0);
    }
    expect(restarted).toHaveLength(3);
    expect(restarted.some((r) => r.endsWith("(leader)"))).toBe(true);

    // What the cluster applied is what the workers received.
    const leader = await cluster.waitForLeader();
    const history = await cluster.admin("GET", "/v1/debug/grants?limit=100000", undefined, leader);
    expect(history.status).toBe(200);
    expect(history.json.dropped).toBe(0);
    const granted = (history.json.records as { effect: { type: string; resource: string; leaseId: number; sessionId: string; requestId: string } }[])
      .map((r) => r.effect)
      .filter((e) => e.type === "granted" && e.resource === "pool");
    const requests = new Set(granted.map((e) => `${e.sessionId}/${e.requestId}`));
    expect(requests.size).toBe(granted.length); // no request granted twice
    expect(granted.map((e) => String(e.leaseId)).sort()).toEqual([...work.stats.leaseIds].sort());
    expect(granted.length).toBe(work.stats.grants);
    expect(work.stats.grants).toBeGreaterThan(50);
    expect((await cluster.resource("pool")).leasesHeld).toBe(0);
  });
});
