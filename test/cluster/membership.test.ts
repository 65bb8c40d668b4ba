/**
 * Membership changes on a real cluster under SDK load: grow 3 -> 5 and back (removing the leader on the way), and
 * replace a kill -9'd node with a fresh one on a new port, then restart everything with no membership flags.
 * Throughout, workers hold leases of a concurrency limit: the most they ever hold at once never exceeds it, no
 * acquire fails (each may wait out a failover), and every lease id is granted once.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, CLUSTER_SECRET, Cluster, NodeProcess, freePorts, runCli, sleep, waitFor } from "./harness.js";
import { concurrencyLoad } from "./sdk-load.js";

const LIMIT = 3;
const RESOURCES = { pool: { limits: [{ kind: "concurrency", limit: LIMIT }] } };

function cli(args: readonly string[]) {
  return runCli(args, { env: { RATEQUEUE_ADMIN_KEY: ADMIN_KEY }, timeoutMs: 180_000 });
}

async function members(cluster: Cluster): Promise<{ leader: string | null; members: { id: string; voter: boolean; address: string }[] }> {
  const r = await cluster.admin("GET", "/v1/members");
  expect(r.status).toBe(200);
  return r.json;
}

describe("membership changes", () => {
  it("grows 3 to 5 and back under load (the leader is removed on the way), with no over-grant and no failed acquire", async () => {
    await using cluster = await Cluster.start({ resources: RESOURCES });
    const work = concurrencyLoad(cluster.urls, { resource: "pool", workers: 6 });
    try {
      const [p4, p5] = await freePorts(2);
      // n4 asks to be added itself (--join with the admin key).
      const n4 = cluster.joiner("n4", p4!, cluster.nodes[1]!.httpUrl, true);
      cluster.nodes.push(n4);
      n4.start();
      await waitFor(async () => (await members(cluster)).members.some((m) => m.id === "n4" && m.voter), {
        timeoutMs: 90_000,
        what: "n4 to become a voter",
        dump: () => cluster.dump(),
      });
      // n5 is added by an operator (`ratequeue members add`), then started without an admin key.
      const add = cli(["members", "add", "n5", "--address", `127.0.0.1:${p5}`, "--url", cluster.nodes[2]!.httpUrl, "--timeout-ms", "90000"]);
      const n5 = cluster.joiner("n5", p5!, cluster.nodes[0]!.httpUrl, false);
      cluster.nodes.push(n5);
      await sleep(500);
      n5.start();
      const added = await add;
      expect(added.stderr, cluster.dump()).toBe("");
      expect(added.stdout).toMatch(/^n5 is a voter\n/);
      let m = await members(cluster);
      expect(m.members.filter((x) => x.voter).map((x) => x.id).sort()).toEqual(["n1", "n2", "n3", "n4", "n5"]);
      expect(m.members.find((x) => x.id === "n5")!.address).toBe(`127.0.0.1:${p5}`);
      // Every node, the new ones included, sees the same five voters.
      for (const node of cluster.nodes) {
        await waitFor(async () => (await node.status())?.peers.filter((p) => p.voter).length === 5, { what: `${node.id} to see 5 voters` });
      }
      await sleep(1_000); // load keeps running on five

      // Back to three: the leader first (it hands over), then one more.
      const leader = await cluster.waitForLeader();
      const removed = await cli(["members", "remove", leader.id, "--url", leader.httpUrl]);
      expect(removed.stderr, cluster.dump()).toBe("");
      expect(removed.stdout).toMatch(new RegExp(`^${leader.id} removed`));
      await leader.kill("SIGTERM");
      const newLeader = await cluster.waitForLeader(20_000, leader.id);
      expect(newLeader.id).not.toBe(leader.id);
      const other = cluster.nodes.find((n) => n.running && n.id !== newLeader.id && n.id !== "n4")!;
      expect((await cli(["members", "remove", other.id, "--url", newLeader.httpUrl])).code).toBe(0);
      await other.kill("SIGTERM");
      m = await members(cluster);
      expect(m.members.map((x) => x.id).sort()).toEqual(cluster.nodes.filter((n) => n.running).map((n) => n.id).sort());
      expect(m.members).toHaveLength(3);
      await sleep(1_000);
    } finally {
      const stats = await work.stop();
      console.log(`grow/shrink: ${stats.grants} grants, max held ${stats.maxHeld}/${LIMIT}, longest acquire ${stats.maxWaitMs} ms, failures ${stats.failures.length}`);
      expect(stats.failures).toEqual([]);
      expect(stats.maxHeld).toBeLessThanOrEqual(LIMIT);
      expect(stats.duplicates).toBe(0);
      expect(stats.grants).toBeGreaterThan(50);
    }
    const view = await cluster.resource("pool");
    expect(view.leasesHeld).toBe(0);
  });

  it("replaces a kill -9'd node by a fresh one on a new port, then restarts every node with no membership flags", async () => {
    await using cluster = await Cluster.start({ resources: RESOURCES });
    const work = concurrencyLoad(cluster.urls, { resource: "pool", workers: 6 });
    let dead: NodeProcess;
    try {
      dead = await cluster.waitForLeader();
      await dead.kill("SIGKILL");
      await cluster.waitForLeader(20_000, dead.id);
      // Removing a healthy voter now would leave 1 of 2 reachable: refused.
      const healthy = cluster.nodes.find((n) => n.running)!;
      const refused = await cli(["members", "remove", healthy.id, "--url", healthy.httpUrl]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/RQ_QUORUM: removing n\d would leave 1 reachable voter\(s\) of 2/);
      // The dead one can go: two of two remain.
      const gone = await cli(["members", "remove", dead.id, "--url", healthy.httpUrl]);
      expect(gone.stderr, cluster.dump()).toBe("");
      const [port] = await freePorts(1);
      const fresh = cluster.joiner("n4", port!, cluster.nodes.filter((n) => n.running).map((n) => `127.0.0.1:${n.port}`).join(","), true);
      cluster.nodes.push(fresh);
      fresh.start();
      await waitFor(async () => (await members(cluster)).members.some((m) => m.id === "n4" && m.voter), {
        timeoutMs: 90_000,
        what: "n4 to become a voter",
        dump: () => cluster.dump(),
      });
      // The removed id cannot come back.
      // (n4 shows as a voter a moment before its add is over: until then any change is "in progress".)
      let reuse = await cluster.admin("POST", "/v1/members", { id: dead.id, address: `127.0.0.1:${dead.port}` });
      await waitFor(
        async () => {
          if (reuse.json?.error?.code !== "RQ_CHANGE_IN_PROGRESS") return true;
          reuse = await cluster.admin("POST", "/v1/members", { id: dead.id, address: `127.0.0.1:${dead.port}` });
          return false;
        },
        { what: "the add of n4 to end" },
      );
      expect(reuse.status).toBe(409);
      expect(reuse.json.error.message).toMatch(/ids are never reused/);
      await sleep(1_000);
    } finally {
      const stats = await work.stop();
      console.log(`replace: ${stats.grants} grants, max held ${stats.maxHeld}/${LIMIT}, longest acquire ${stats.maxWaitMs} ms, failures ${stats.failures.length}`);
      expect(stats.failures).toEqual([]);
      expect(stats.maxHeld).toBeLessThanOrEqual(LIMIT);
      expect(stats.duplicates).toBe(0);
    }
    // kill -9 every node; restart them with neither --peers nor --join: the data holds the membership.
    const live = cluster.nodes.filter((n) => n.running);
    await Promise.all(live.map((n) => n.kill("SIGKILL")));
    const restarted = live.map(
      (n) =>
        new NodeProcess(n.id, n.port, n.dataDir, [
          "--id", n.id, "--listen", `127.0.0.1:${n.port}`, "--data", n.dataDir, "--cluster-secret", CLUSTER_SECRET, "--admin-key", ADMIN_KEY,
        ]),
    );
    cluster.nodes.splice(0, cluster.nodes.length, ...restarted);
    for (const n of restarted) n.start();
    await cluster.waitForLeader(30_000);
    const rq = new RateQueue({ url: restarted.map((n) => n.url), apiKey: ADMIN_KEY });
    try {
      const lease = await rq.acquire("pool", { timeoutMs: 20_000 });
      await lease.release();
    } finally {
      await rq.close();
    }
    const m = await members(cluster);
    expect(m.members.map((x) => x.id).sort()).toEqual(restarted.map((n) => n.id).sort());
  });

  it("refuses clearly: a bad body, a second change while one is in progress, an unknown member, another cluster, a node with no cluster", async () => {
    await using cluster = await Cluster.start();
    const bad = await cluster.admin("POST", "/v1/members", { id: "n 4", address: "nowhere", extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details).toEqual([
      'unknown field "extra" (known: id, address, timeoutMs, clusterId)',
      "id must be 1-64 of A-Z a-z 0-9 _ -",
      "address must be host:port, where the node serves peers and clients (e.g. 10.0.0.4:7401)",
    ]);
    // n9 is never started: its add waits for a catch-up that cannot happen; a second change meanwhile is refused.
    const [port] = await freePorts(1);
    const pending = cluster.admin("POST", "/v1/members", { id: "n9", address: `127.0.0.1:${port}`, timeoutMs: 3_000 });
    await waitFor(async () => (await members(cluster)).members.some((m) => m.id === "n9"), { what: "n9 to be a learner" });
    const second = await cluster.admin("DELETE", "/v1/members/n2");
    expect(second.status).toBe(409);
    expect(second.json.error.code).toBe("RQ_CHANGE_IN_PROGRESS");
    const timedOut = await pending;
    expect(timedOut.status).toBe(504);
    expect(timedOut.json.error.message).toMatch(/"n9" is a learner that has not caught up/);
    expect((await members(cluster)).members.find((m) => m.id === "n9")).toMatchObject({ voter: false });
    // A learner that will never come can be removed.
    expect((await cluster.admin("DELETE", "/v1/members/n9")).status).toBe(200);
    const unknown = await cluster.admin("DELETE", "/v1/members/n7");
    expect(unknown.status).toBe(404);
    // A joiner holding another cluster's data (another cluster id) is refused, naming both ids.
    const ownId = (await cluster.node("n1").status())!.clusterId!;
    const foreign = await cluster.admin("POST", "/v1/members", { id: "n7", address: `127.0.0.1:${port}`, clusterId: "0123456789abcdef" });
    expect(foreign.status).toBe(409);
    expect(foreign.json.error.code).toBe("RQ_CLUSTER_MISMATCH");
    expect(foreign.json.error.message).toContain("0123456789abcdef");
    expect(foreign.json.error.message).toContain(ownId);
    expect((await members(cluster)).members.some((m) => m.id === "n7")).toBe(false);
    // A node with an empty data folder and neither --peers nor --join refuses to start.
    const lost = new NodeProcess("n8", port!, join(cluster.root, "n8"), ["--id", "n8", "--listen", `127.0.0.1:${port}`, "--data", join(cluster.root, "n8"), "--cluster-secret", CLUSTER_SECRET]);
    lost.start();
    expect((await lost.exited()).code).toBe(2);
    expect(lost.output).toMatch(/holds no cluster: give peers .* or join/);
  });
});
