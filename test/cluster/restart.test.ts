import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster } from "./harness.js";
import { RawClient } from "./raw-client.js";

// Durability (SPEC guarantee 5): kill -9 every node, restart, and the windows still remember the grants.
describe("kill -9 of all three nodes, then a restart", () => {
  let cluster: Cluster;
  const clients: RawClient[] = [];
  const connect = async (extra: { resume?: string } = {}): Promise<RawClient> => {
    const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY, extra);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await Cluster.start({
      // Small, so the restart reads a snapshot and a log tail from disk, not only a log.
      snapshotEntries: 10,
      resources: {
        rpm: { limits: [{ kind: "rate", limit: 3, windowMs: 60_000 }] },
        tpm: { limits: [{ kind: "load", limit: 100, windowMs: 60_000, window: "bucket" }] },
      },
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  it("no over-grant after the restart: the rate window and the token bucket remember; sessions and config survive", async () => {
    const c = await connect();
    const grants = [await c.granted(c.acquire("rpm")), await c.granted(c.acquire("rpm")), await c.granted(c.acquire("rpm"))];
    const tokens = await c.granted(c.acquire("tpm", { load: 90 }));
    // A resource created through the admin API is as durable as a grant.
    expect((await cluster.admin("PUT", "/v1/resources/later", { limits: [{ kind: "concurrency", limit: 1 }] })).status).toBe(201);
    const held = await c.granted(c.acquire("later"));
    // Enough entries for a few snapshots (every 10 entries), so the restart reads a snapshot plus a tail.
    for (let i = 0; i < 12; i++) expect(await c.outcome(c.acquire("tpm", { load: 0 }))).toMatchObject({ type: "granted" });
    const before = (await (await cluster.waitForLeader()).status())!;

    await Promise.all(cluster.nodes.map((n) => n.kill("SIGKILL")));
    await c.closed();
    const leader = await cluster.restartAll();
    const after = (await leader.status())!;
    expect(after.commitIndex).toBeGreaterThanOrEqual(before.commitIndex);
    expect(after.term).toBeGreaterThan(before.term);
    for (const n of cluster.nodes) {
      // Each node restored a snapshot from its own disk (applied > 1: past the bootstrap snapshot) plus a log tail.
      const recovered = n.output.split("\n").filter((l) => l.includes('"recovered from disk"')).map((l) => JSON.parse(l));
      expect(recovered).toHaveLength(2);
      expect(recovered[1].applied).toBeGreaterThan(10);
    }

    // The session outlived the crash (the new leader gave it a fresh TTL): resume it; a retry answers the original grant.
    const c2 = await connect({ resume: c.welcome!.sessionId });
    expect(c2.welcome!.resumed).toBe(true);
    c2.skipRequestIdsTo(c.newRequestId());
    c2.send(grants.map((g) => ({ type: "acquire" as const, requestId: g.requestId, resource: "rpm" })));
    for (const g of grants) expect((await c2.granted(g.requestId)).lease).toEqual(g.lease);

    // The 4th request in the 60 s window waits and times out: it is not granted.
    const fourth = c2.acquire("rpm", { timeoutMs: 1_500 });
    expect(await c2.outcome(fourth, 15_000)).toMatchObject({ type: "rejected", code: "RQ_TIMEOUT" });
    expect(c2.answersTo(fourth).map((m) => m.type)).toEqual(["queued", "rejected"]);
    // The bucket had 10 tokens left (plus a trickle of 100 per minute): 50 more do not fit.
    expect(await c2.outcome(c2.acquire("tpm", { load: 50, try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
    expect(tokens.lease.load).toEqual({ load: 90 });

    const rpm = await cluster.resource("rpm");
    expect(rpm.usage[0]!.used).toBe(3);
    const later = await cluster.resource("later");
    expect(later.leasesHeld).toBe(1);
    // The lease held before the crash is still this session's to release.
    expect(await c2.outcome(c2.release(held.lease.id))).toMatchObject({ type: "ack" });
    expect((await cluster.resource("later")).leasesHeld).toBe(0);
  });
});
