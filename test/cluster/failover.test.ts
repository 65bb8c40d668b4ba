import type { Acquire } from "@ratequeue/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "./harness.js";
import { RawClient } from "./raw-client.js";

// Tests run in order on one cluster; each leaves all three nodes running.
describe("kill -9 of the leader", () => {
  let cluster: Cluster;
  const clients: RawClient[] = [];
  const connect = async (extra: { resume?: string } = {}): Promise<RawClient> => {
    const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY, extra);
    clients.push(c);
    return c;
  };

  /** What the SDK does after losing its node: reconnect to the leader resuming the session, resend pending acquires. */
  const resume = async (old: RawClient, resend: readonly Acquire[]): Promise<RawClient> => {
    await old.closed();
    const c = await connect({ resume: old.welcome!.sessionId });
    expect(c.welcome!.resumed).toBe(true);
    expect(c.welcome!.sessionId).toBe(old.welcome!.sessionId);
    c.skipRequestIdsTo(old.newRequestId());
    c.send([...resend]);
    return c;
  };

  const acquireOf = (c: RawClient, requestId: number, resource: string): Acquire => {
    const sent = { type: "acquire" as const, requestId, resource };
    expect(c.answersTo(requestId).length).toBeGreaterThan(0); // it was answered (queued or granted) before the kill
    return sent;
  };

  beforeAll(async () => {
    cluster = await Cluster.start({
      snapshotEntries: 10,
      // A held hello is answered when the election ends only if it ends within the node's wait (by default two
      // election timeouts, which a split vote on a loaded machine can outlast); the last test asserts the former.
      extraArgs: ["--leader-wait-ms", "30000"],
      resources: {
        gate: { limits: [{ kind: "concurrency", limit: 2 }] },
        rpm: { limits: [{ kind: "rate", limit: 3, windowMs: 120_000 }] },
        churn: { limits: [{ kind: "concurrency", limit: 1 }] },
        slow: { limits: [{ kind: "concurrency", limit: 1 }] },
      },
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  let gateLeases: string[] = [];

  it("a new leader is elected, the waiters are granted after the client resumes, and nothing is granted twice", async () => {
    const a = await connect();
    const b = await connect();
    const held = [await a.granted(a.acquire("gate")), await a.granted(a.acquire("gate"))];
    const aWaiting = [a.acquire("gate"), a.acquire("gate")];
    const bWaiting = b.acquire("gate");
    for (const id of aWaiting) await a.next((m) => m.type === "queued" && m.requestId === id);
    await b.next((m) => m.type === "queued" && m.requestId === bWaiting);
    const rpm = [a.acquire("rpm"), a.acquire("rpm"), a.acquire("rpm")];
    const rpmGrants = await Promise.all(rpm.map((id) => a.granted(id)));
    // A waiter with a timeout whose client does not resend it: the new leader times it out without that client.
    await b.granted(b.acquire("slow"));
    const doomed = b.acquire("slow", { timeoutMs: 2_000 });
    await b.next((m) => m.type === "queued" && m.requestId === doomed);

    const old = await cluster.waitForLeader();
    await old.kill("SIGKILL");
    const leader = await cluster.waitForLeader(20_000, old.id);
    expect(leader.id).not.toBe(old.id);

    // Resend the waiting acquires under their ids, and (to check exactly-once) the ones already granted.
    const a2 = await resume(a, [
      ...aWaiting.map((id) => acquireOf(a, id, "gate")),
      ...held.map((g) => acquireOf(a, g.requestId, "gate")),
      ...rpm.map((id) => acquireOf(a, id, "rpm")),
    ]);
    const b2 = await resume(b, [acquireOf(b, bWaiting, "gate")]);

    // A retry gets the original outcome: the same lease, not a second grant.
    for (const g of [...held, ...rpmGrants]) expect((await a2.granted(g.requestId)).lease).toEqual(g.lease);
    for (const id of aWaiting) expect(await a2.next((m) => "requestId" in m && m.requestId === id)).toMatchObject({ type: "queued" });
    // The rate window survived the leader change: a fourth request in the window is not granted.
    expect(await a2.outcome(a2.acquire("rpm", { try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
    let view = await cluster.resource("gate");
    expect(view.leasesHeld).toBe(2);
    expect(view.queued).toEqual({ default: 3 });
    expect((await cluster.resource("rpm")).usage[0]!.used).toBe(3);

    // Leases granted by the dead leader are released through the new one, which wakes the waiters in order.
    expect(await a2.outcome(a2.release(held[0]!.lease.id))).toMatchObject({ type: "ack" });
    const w0 = await a2.granted(aWaiting[0]!);
    expect(await a2.outcome(a2.release(held[1]!.lease.id))).toMatchObject({ type: "ack" });
    const w1 = await a2.granted(aWaiting[1]!);
    expect(b2.answersTo(bWaiting).filter((m) => m.type === "granted")).toEqual([]);
    expect(await a2.outcome(a2.release(w0.lease.id))).toMatchObject({ type: "ack" });
    const wb = await b2.granted(bWaiting);

    // The waiter on "slow" was not resent, yet the new leader timed it out; a late resend gets that outcome.
    await waitFor(async () => (await cluster.resource("slow")).queued.default === 0, { what: "the slow waiter to time out" });
    b2.send([acquireOf(b, doomed, "slow")]);
    expect(await b2.outcome(doomed)).toMatchObject({ type: "rejected", code: "RQ_TIMEOUT" });
    expect((await cluster.resource("slow")).leasesHeld).toBe(1);

    gateLeases = [...held.map((g) => g.lease.id), w0.lease.id, w1.lease.id, wb.lease.id];
    expect(new Set(gateLeases).size).toBe(5);
    // Each waiter was granted exactly once on its new connection.
    for (const id of aWaiting) expect(a2.answersTo(id).filter((m) => m.type === "granted")).toHaveLength(1);
    view = await cluster.resource("gate");
    expect(view.leasesHeld).toBe(2);
    expect(view.usage[0]!.used).toBe(2);
    expect(view.queued).toEqual({ default: 0 });

    // The killed node comes back while the log moves on; it catches up (by snapshot: its log was compacted).
    for (let i = 0; i < 15; i++) {
      const g = await a2.granted(a2.acquire("churn"));
      expect(await a2.outcome(a2.release(g.lease.id))).toMatchObject({ type: "ack" });
    }
    old.start();
    await caughtUp(old, leader);
    await old.waitForOutput(/installed snapshot from the leader/);
    const onOld = await cluster.resource("gate", old);
    const onLeader = await cluster.resource("gate", leader);
    expect({ usage: onOld.usage, leasesHeld: onOld.leasesHeld }).toEqual({ usage: onLeader.usage, leasesHeld: onLeader.leasesHeld });
    expect(await cluster.resource("rpm", old)).toEqual(await cluster.resource("rpm", leader));
  });

  it("state rebuilt from a snapshot serves as leader: kill the leader again, the survivors still remember every grant", async () => {
    const before = await cluster.resource("gate");
    const leader = await cluster.waitForLeader();
    await leader.kill("SIGKILL");
    const next = await cluster.waitForLeader(20_000, leader.id);
    const c = await connect();
    expect(await c.outcome(c.acquire("rpm", { try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
    const after = await cluster.resource("gate", next);
    expect(after.leasesHeld).toBe(before.leasesHeld);
    // The concurrency limit still counts the two leases held: one more fits nowhere.
    expect(await c.outcome(c.acquire("gate", { try: true }))).toMatchObject({ type: "rejected", code: "RQ_WOULD_WAIT" });
    leader.start();
    await caughtUp(leader, next);
  });

  it("a clean stop (SIGTERM) of the leader hands over and sends its clients to the new leader; they resume there and are served", async () => {
    const c = await connect();
    const held = await c.granted(c.acquire("churn"));
    const waiting = c.acquire("churn");
    await c.next((m) => m.type === "queued" && m.requestId === waiting);
    const leader = await cluster.waitForLeader();
    const exit = leader.exited();
    leader.proc!.kill("SIGTERM");
    await c.closed();
    expect(c.closeCode).toBe(4001);
    expect(await exit).toEqual({ code: 0, signal: null });
    const next = await cluster.waitForLeader(20_000, leader.id);
    expect(c.received.at(-1)).toEqual({ type: "notLeader", leader: next.id, url: next.url });
    const c2 = await resume(c, [acquireOf(c, waiting, "churn")]);
    expect(await c2.outcome(c2.release(held.lease.id))).toMatchObject({ type: "ack" });
    await c2.granted(waiting);
    leader.start();
    await caughtUp(leader, next);
  });

  it("a hello that reaches a survivor during the election is answered when it ends: by the winner, or with the winner's address", async () => {
    const leader = await cluster.waitForLeader();
    await leader.kill("SIGKILL");
    // Before the survivors have elected anyone (their Raft still names the dead leader), but once each has seen its
    // link to it drop, which is what tells a node that its leader may be gone.
    const survivors = cluster.nodes.filter((n) => n.id !== leader.id);
    for (const n of survivors) {
      await waitFor(async () => (await n.status())?.peers.find((p) => p.id === leader.id)?.connected === false, { what: `${n.id} to lose its link` });
    }
    // Each survivor took the closed link as a sign of the leader's death and gave up its lease early (it grants
    // pre-votes at once and campaigns after the random part of its election timeout only).
    for (const n of survivors) expect(await n.waitForOutput(new RegExp(`"leader":"${leader.id}".*link to the leader closed`))).toBeTruthy();
    const answers = await Promise.all(survivors.map((n) => RawClient.connect(n.url, ADMIN_KEY)));
    clients.push(...answers);
    const next = await cluster.waitForLeader(20_000, leader.id);
    for (const [i, c] of answers.entries()) {
      const first = c.received[0];
      if (survivors[i] === next) expect(first).toMatchObject({ type: "welcome", nodeId: next.id });
      else expect(first).toEqual({ type: "notLeader", leader: next.id, url: next.url });
    }
    leader.start();
    await caughtUp(leader, next);
  });
});

/** Waits until `node` follows `leader` and has applied everything the leader had committed when we asked. */
async function caughtUp(node: NodeProcess, leader: NodeProcess): Promise<void> {
  const target = (await leader.status())!.commitIndex;
  await waitFor(
    async () => {
      const s = await node.status();
      return s !== null && s.leader === leader.id && s.appliedIndex >= target;
    },
    { timeoutMs: 20_000, what: `${node.id} to follow ${leader.id} and apply ${target}`, dump: () => node.output.slice(-3000) },
  );
}
