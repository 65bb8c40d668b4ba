import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, waitFor } from "./harness.js";
import { RawClient } from "./raw-client.js";

// One cluster for the whole file: none of these tests kills a node. Each test uses its own resource and closes its
// clients when it ends. Clients have a long TTL (heartbeats every 15 s): any entry advances the log's clock, so
// frequent heartbeats would wake waiters and time out requests too, and hide a missing deadline tick.
describe("a three-node cluster grants in agreement with the limits", () => {
  let cluster: Cluster;
  const clients: RawClient[] = [];
  const connect = async (extra: { ttlMs?: number; resume?: string } = {}): Promise<RawClient> => {
    const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY, { ttlMs: 60_000, ...extra });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: {
        llm: { limits: [{ kind: "rate", limit: 3, windowMs: 2_000 }, { kind: "concurrency", limit: 2 }] },
        rpm: { limits: [{ kind: "rate", limit: 3, windowMs: 1_500, window: "sliding" }] },
        tokens: {
          limits: [
            { kind: "load", dimension: "input", limit: 1_000, windowMs: 60_000 },
            { kind: "load", dimension: "output", limit: 500, windowMs: 60_000 },
          ],
        },
        stacked: {
          limits: [
            { kind: "rate", limit: 4, windowMs: 60_000 },
            { kind: "load", limit: 100, windowMs: 60_000, window: "sliding" },
            { kind: "concurrency", limit: 2 },
          ],
        },
        solo: { limits: [{ kind: "concurrency", limit: 1 }] },
        cool: { limits: [{ kind: "rate", limit: 100, windowMs: 60_000 }] },
        settled: { limits: [{ kind: "load", limit: 1_000, windowMs: 60_000 }] },
      },
    });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => cluster?.stop());

  it("grants within the limits, queues the rest, and wakes a waiter on release", async () => {
    const c = await connect();
    const [a, b, w] = [c.acquire("llm"), c.acquire("llm"), c.acquire("llm")];
    const ga = await c.granted(a);
    await c.granted(b);
    await c.next((m) => m.type === "queued" && m.requestId === w);
    expect(c.answersTo(w).map((m) => m.type)).toEqual(["queued"]);
    // Releasing one lease frees a concurrency slot: the waiter is granted.
    const rel = c.release(ga.lease.id);
    expect((await c.outcome(rel)).type).toBe("ack");
    expect((await c.outcome(w)).type).toBe("granted");
  });

  it("rate: a sliding window grants `limit` per window; waiters are woken by the leader's deadline tick", async () => {
    const c = await connect();
    const ids = Array.from({ length: 5 }, () => c.acquire("rpm"));
    const first = await Promise.all(ids.slice(0, 3).map((id) => c.granted(id)));
    await c.next((m) => m.type === "queued" && m.requestId === ids[3]);
    await c.next((m) => m.type === "queued" && m.requestId === ids[4]);
    expect((await cluster.resource("rpm")).usage[0]!.used).toBe(3);
    // Nobody releases anything: only time (a tick entry proposed by the leader at the window's end) wakes them.
    const later = await Promise.all(ids.slice(3).map((id) => c.granted(id, 10_000)));
    // On the log's clock, no 1500 ms interval holds more than 3 grants.
    const times = [...first, ...later].map((g) => g.lease.grantedAt).sort((x, y) => x - y);
    for (let i = 3; i < times.length; i++) expect(times[i]! - times[i - 3]!).toBeGreaterThanOrEqual(1_500);
    const leaseIds = [...first, ...later].map((g) => g.lease.id);
    expect(new Set(leaseIds).size).toBe(5);
  });

  it("load with dimensions: each dimension is charged against its own limit, atomically", async () => {
    const c = await connect();
    const g1 = await c.granted(c.acquire("tokens", { load: { input: 600, output: 100 } }));
    expect(g1.lease.load).toEqual({ input: 600, output: 100 });
    await c.granted(c.acquire("tokens", { load: { input: 300, output: 300 } }));
    // Input would still fit (950 <= 1000) but output would not (600 > 500): nothing is charged, it waits, then times out.
    const blocked = c.acquire("tokens", { load: { input: 50, output: 200 }, timeoutMs: 1_000 });
    await c.next((m) => m.type === "queued" && m.requestId === blocked);
    const timedOut = await c.outcome(blocked, 10_000);
    expect(timedOut).toMatchObject({ type: "rejected", code: "RQ_TIMEOUT" });
    // More than a limit's whole capacity can never be granted: rejected at once, not queued.
    const never = c.acquire("tokens", { load: { input: 1_001, output: 0 } });
    expect(await c.outcome(never)).toMatchObject({ type: "rejected", code: "RQ_UNGRANTABLE" });
    expect(c.answersTo(never).map((m) => m.type)).toEqual(["rejected"]);
    // A load that leaves out a dimension the resource counts is refused, naming the dimensions, never charged 0.
    const partial = c.acquire("tokens", { load: { input: 10 } });
    const refused = await c.outcome(partial);
    expect(refused).toMatchObject({ type: "rejected", code: "RQ_INVALID" });
    expect((refused as { message: string }).message).toMatch(/output/);
    // A request that fits the remaining capacity of both is still granted after the refusals.
    await c.granted(c.acquire("tokens", { load: { input: 100, output: 100 } }));
    const view = await cluster.resource("tokens");
    expect(view.usage.map((u) => u.used)).toEqual([1_000, 500]);
  });

  it("stacked limits: a grant needs every limit to hold, and charges all of them or none", async () => {
    const c = await connect();
    const a = await c.granted(c.acquire("stacked", { load: 30 }));
    const b = await c.granted(c.acquire("stacked", { load: 30 }));
    const third = c.acquire("stacked", { load: 30 }); // concurrency 2 is full
    await c.next((m) => m.type === "queued" && m.requestId === third);
    expect(await c.outcome(c.release(a.lease.id))).toMatchObject({ type: "ack" });
    const g3 = await c.granted(third);
    expect(await c.outcome(c.release(b.lease.id))).toMatchObject({ type: "ack" });
    // Rate (3 of 4) and concurrency (1 of 2) have room, load does not (90 + 30 > 100): it must not be granted.
    const fourth = c.acquire("stacked", { load: 30, timeoutMs: 1_000 });
    expect(await c.outcome(fourth, 10_000)).toMatchObject({ type: "rejected", code: "RQ_TIMEOUT" });
    const view = await cluster.resource("stacked");
    expect(view.usage.map((u) => [u.kind, u.used])).toEqual([
      ["rate", 3],
      ["load", 90],
      ["concurrency", 1],
    ]);
    expect(view.leasesHeld).toBe(1);
    // Load 10 fits every limit: granted, and it takes the last rate unit.
    const g5 = await c.granted(c.acquire("stacked", { load: 10 }));
    expect(new Set([a, b, g3, g5].map((g) => g.lease.id)).size).toBe(4);
    expect(await c.outcome(c.acquire("stacked", { load: 0, try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
  });

  it("concurrency is freed when a session expires: a client that vanishes loses its lease after the TTL", async () => {
    const doomed = await connect({ ttlMs: 1_000 });
    const held = await doomed.granted(doomed.acquire("solo"));
    const waiter = await connect();
    const w = waiter.acquire("solo");
    await waiter.next((m) => m.type === "queued" && m.requestId === w);
    // No goodbye, no more heartbeats: the node must notice by itself (a deadline tick at the session's expiry).
    doomed.close();
    const g = await waiter.granted(w, 15_000);
    expect(g.lease.id).not.toBe(held.lease.id);
    // Coming back too late: the resume is refused politely (resumed: false, a fresh session), the old lease is gone.
    const late = await connect({ resume: doomed.welcome!.sessionId });
    expect(late.welcome).toMatchObject({ resumed: false });
    expect(late.welcome!.sessionId).not.toBe(doomed.welcome!.sessionId);
    expect(await late.outcome(late.release(held.lease.id))).toMatchObject({ type: "ack" }); // idempotent: nothing to free
    const view = await cluster.resource("solo");
    expect(view.leasesHeld).toBe(1);
    expect(view.usage[0]!.used).toBe(1);
    // The waiter's own session (heartbeating) is still alive: it can release and acquire again.
    expect(await waiter.outcome(waiter.release(g.lease.id))).toMatchObject({ type: "ack" });
    await waiter.granted(waiter.acquire("solo"));
    await waitFor(async () => (await cluster.resource("solo")).leasesHeld === 1, { what: "one lease on solo" });
  });

  it("a follower answers hello with notLeader (the leader's id and URL) and closes", async () => {
    const leader = await cluster.waitForLeader();
    for (const f of cluster.nodes.filter((n) => n.id !== leader.id)) {
      const c = await RawClient.connect(f.url, ADMIN_KEY);
      expect(c.received[0]).toEqual({ type: "notLeader", leader: leader.id, url: leader.url });
      await c.closed();
      expect(c.closeCode).toBe(4001);
    }
  });

  it("cooldown: a reported 429 stops grants until retry-after has passed, then the waiter is woken", async () => {
    const c = await connect();
    const cd = c.newRequestId();
    c.send([{ type: "cooldown", requestId: cd, resource: "cool", retryAfterMs: 1_500 }]);
    expect(await c.outcome(cd)).toMatchObject({ type: "ack" });
    const view = await cluster.resource("cool");
    expect(view.cooldownUntil).toEqual(expect.any(Number));
    expect(await c.outcome(c.acquire("cool", { try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
    const w = c.acquire("cool");
    await c.next((m) => m.type === "queued" && m.requestId === w);
    const g = await c.granted(w, 10_000);
    expect(g.lease.grantedAt).toBeGreaterThanOrEqual(view.cooldownUntil!);
  });

  it("settle: reporting less than was charged returns capacity to the window", async () => {
    const c = await connect();
    const g = await c.granted(c.acquire("settled", { load: 900 }));
    expect(await c.outcome(c.acquire("settled", { load: 500, try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
    const s = c.newRequestId();
    c.send([{ type: "settle", requestId: s, leaseId: g.lease.id, actual: 300 }]);
    expect(await c.outcome(s)).toMatchObject({ type: "ack" });
    expect((await cluster.resource("settled")).usage[0]!.used).toBe(300);
    await c.granted(c.acquire("settled", { load: 500 }));
    expect((await cluster.resource("settled")).usage[0]!.used).toBe(800);
  });

  it("every node applies the same state (agreement): followers report the same usage as the leader", async () => {
    const leader = await cluster.waitForLeader();
    const expected = await cluster.resource("stacked", leader);
    const { commitIndex } = (await leader.status())!;
    for (const node of cluster.nodes) {
      await waitFor(async () => ((await node.status())?.appliedIndex ?? 0) >= commitIndex, { what: `${node.id} to apply ${commitIndex}` });
      const view = await cluster.resource("stacked", node);
      expect({ usage: view.usage, leasesHeld: view.leasesHeld }).toEqual({ usage: expected.usage, leasesHeld: expected.leasesHeld });
    }
  });
});
