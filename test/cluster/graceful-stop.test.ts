import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep, waitFor, type NodeProcess } from "./harness.js";
import { RawClient } from "./raw-client.js";

/**
 * A planned stop (SIGTERM) of the leader hands leadership over before the process exits: the leader transfers
 * leadership to a caught-up follower, tells its clients where the new leader is (a `notLeader` naming it), and
 * only then closes. Asserted: no acquire fails, and the handover happened (the old leader logged it, its successor
 * leads the next term, and a client was named the successor). Never timings: the benchmark measures the pause.
 */
describe("SIGTERM of the leader", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { pool: { limits: [{ kind: "concurrency", limit: 1_000 }] } } });
  });
  afterAll(async () => cluster?.stop());

  /** 16 SDK loops acquiring and releasing until `stop` is set; every outcome counted. */
  const loops = (rq: RateQueue) => {
    const state = { grants: 0, failures: [] as string[], stop: false };
    const done = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!state.stop) {
          try {
            await rq.acquire("pool", { timeoutMs: 20_000 }, () => undefined);
            state.grants++;
          } catch (err) {
            state.failures.push(`${(err as { code?: string }).code}: ${(err as Error).message}`);
          }
        }
      }),
    );
    return { state, done };
  };

  const handedOverTo = async (old: NodeProcess): Promise<string> => {
    const line = await old.waitForOutput(/leadership handed over/);
    return (JSON.parse(line) as { to: string }).to;
  };

  it("hands leadership to a follower and names it to its clients before exiting; no acquire fails", async () => {
    const old = await cluster.waitForLeader();
    const before = (await old.status())!;
    const raw = await RawClient.connect(old.url, ADMIN_KEY);
    const rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY });
    const work = loops(rq);
    await waitFor(() => work.state.grants >= 200, { what: "grants before the stop" });

    await old.kill("SIGTERM");
    expect((await old.exited()).code).toBe(0);
    const heir = await handedOverTo(old);
    const leader = await cluster.waitForLeader(20_000, old.id);
    expect(leader.id).toBe(heir);
    // The transfer's campaign is the next term's only election: the successor leads the term right after.
    expect((await leader.status())!.term).toBe(before.term + 1);
    // The client of the stopped leader was told who leads now, with its URL.
    const told = await raw.next((m) => m.type === "notLeader");
    expect(told).toEqual({ type: "notLeader", leader: heir, url: leader.url });

    const after = work.state.grants;
    await waitFor(() => work.state.grants >= after + 200, { what: "grants after the stop" });
    work.state.stop = true;
    await work.done;
    await rq.close();
    raw.close();
    expect(work.state.failures).toEqual([]);
  });

  it("a rolling restart of every node, leader last, fails no acquire; each leader hands over", async () => {
    for (const n of cluster.nodes) if (!n.running) n.start();
    await cluster.waitForLeader();
    const rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY });
    const work = loops(rq);
    await waitFor(() => work.state.grants >= 100, { what: "grants before the restarts" });
    const leaderFirst = await cluster.waitForLeader();
    const order = [...cluster.nodes.filter((n) => n.id !== leaderFirst.id), leaderFirst];
    let handovers = 0;
    for (const node of order) {
      const wasLeader = (await cluster.waitForLeader()).id === node.id;
      node.output = "";
      await node.kill("SIGTERM");
      expect((await node.exited()).code).toBe(0);
      if (wasLeader) {
        await handedOverTo(node);
        handovers++;
      }
      const grants = work.state.grants;
      await waitFor(() => work.state.grants >= grants + 50, { what: `grants with ${node.id} stopped` });
      node.start();
      await cluster.waitForLeader();
      await waitFor(async () => (await node.status())?.leader != null, { what: `${node.id} to rejoin` });
      await sleep(200);
    }
    const grants = work.state.grants;
    await waitFor(() => work.state.grants >= grants + 50, { what: "grants after the restarts" });
    work.state.stop = true;
    await work.done;
    await rq.close();
    expect(handovers).toBeGreaterThanOrEqual(1);
    expect(work.state.failures).toEqual([]);
  });
});
