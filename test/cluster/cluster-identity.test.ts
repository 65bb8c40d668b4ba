/**
 * Cluster identity on real processes: a node holding another cluster's data, with the same node id, the same
 * address and the same cluster secret, is refused by every member (and refuses them); it changes nothing on
 * either side, and the cluster keeps granting without it.
 */
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, CLUSTER_SECRET, freePorts, NodeProcess, sleep, waitFor, type NodeStatus } from "./harness.js";

const RESOURCES = { capped: { limits: [{ kind: "rate", limit: 100, windowMs: 600_000 }] } };

async function grant(urls: string[], count: number): Promise<void> {
  const rq = new RateQueue({ url: urls, apiKey: ADMIN_KEY });
  try {
    for (let i = 0; i < count; i++) expect(await rq.tryAcquire("capped")).not.toBeNull();
  } finally {
    await rq.close();
  }
}

/** Waits until every running node of `cluster` reports the same, non-null cluster id; returns it. */
async function clusterIdOf(cluster: Cluster): Promise<string> {
  let id: string | null = null;
  await waitFor(
    async () => {
      const ids = new Set((await Promise.all(cluster.nodes.filter((n) => n.running).map((n) => n.status()))).map((s) => s?.clusterId ?? null));
      id = [...ids][0] ?? null;
      return ids.size === 1 && id !== null;
    },
    { timeoutMs: 30_000, what: "every node to know the cluster id", dump: () => cluster.dump() },
  );
  return id!;
}

describe("cluster identity", () => {
  it("refuses a node of another cluster with the same id, address and secret; the cluster keeps granting", async () => {
    const ports = await freePorts(3);
    const keep = await mkdtemp(join(tmpdir(), "rq-foreign-"));
    try {
      // Cluster "other" on these ports: its n3's data folder is what an operator might mistakenly start later.
      let otherId: string;
      let foreignBefore: NodeStatus;
      {
        await using other = await Cluster.start({ ports, resources: RESOURCES });
        await grant(other.urls, 3);
        otherId = await clusterIdOf(other);
        const commit = (await (await other.waitForLeader()).status())!.commitIndex;
        const n3 = other.node("n3");
        await waitFor(async () => ((await n3.status())?.appliedIndex ?? 0) >= commit, { what: "the other cluster's n3 to apply everything" });
        await Promise.all(other.nodes.map((n) => n.kill("SIGTERM")));
        await cp(n3.dataDir, join(keep, "n3"), { recursive: true });
        n3.start();
        const seen: (NodeStatus | null)[] = [null];
        await waitFor(
          async () => {
            seen[0] = await n3.status();
            return seen[0] !== null;
          },
          { what: "n3 to answer" },
        );
        foreignBefore = seen[0]!;
        await n3.kill("SIGTERM");
      }

      // A new cluster on the same ports, ids and secret.
      await using cluster = await Cluster.start({ ports, resources: RESOURCES });
      await grant(cluster.urls, 2);
      const ownId = await clusterIdOf(cluster);
      expect(ownId).toMatch(/^[0-9a-f]{16}$/);
      expect(ownId).not.toBe(otherId);
      const members = async (): Promise<unknown> =>
        (await cluster.admin("GET", "/v1/members")).json.members.map((m: { id: string; voter: boolean; address: string }) => [m.id, m.voter, m.address]);
      const membersBefore = await members();

      // Its n3 dies, and the other cluster's n3 is started in its place.
      await cluster.node("n3").kill("SIGKILL");
      const foreign = new NodeProcess("n3", ports[2]!, join(keep, "n3"), [
        "--id", "n3",
        "--listen", `127.0.0.1:${ports[2]}`,
        "--data", join(keep, "n3"),
        "--cluster-secret", CLUSTER_SECRET,
        "--tick-ms", "50",
        "--election-ticks", "10",
      ]);
      foreign.start();
      try {
        // Every node names both ids, with the refusal code.
        const both = new RegExp(`RQ_CLUSTER_MISMATCH.*(${ownId}.*${otherId}|${otherId}.*${ownId})`);
        await foreign.waitForOutput(both, 30_000);
        for (const id of ["n1", "n2"]) await cluster.node(id).waitForOutput(both, 30_000);

        // The cluster keeps granting on its two nodes, and its membership is as it was.
        await grant(cluster.nodes.filter((n) => n.running).map((n) => n.url), 5);
        await sleep(1_000);
        expect(await members()).toEqual(membersBefore);

        // The foreign node took nothing from the cluster: its log is as it left it, and it links to nobody.
        const foreignAfter = (await foreign.status())!;
        expect(foreignAfter.clusterId).toBe(otherId);
        expect(foreignAfter.lastIndex).toBe(foreignBefore.lastIndex);
        expect(foreignAfter.commitIndex).toBe(foreignBefore.commitIndex);
        expect(foreignAfter.peers.filter((p) => p.connected === true)).toEqual([]);
        for (const id of ["n1", "n2"]) {
          const s = (await cluster.node(id).status())!;
          expect(s.clusterId).toBe(ownId);
          expect(s.peers.find((p) => p.id === "n3")?.connected).not.toBe(true);
        }
        expect(foreign.running).toBe(true); // refused, not crashed
      } finally {
        await foreign.kill("SIGKILL");
      }

      // The cluster's own n3 comes back and links again.
      cluster.node("n3").start();
      await waitFor(async () => (await cluster.node("n3").status())?.clusterId === ownId, { what: "n3 back in its own cluster" });
      await waitFor(async () => (await cluster.node("n1").status())?.peers.find((p) => p.id === "n3")?.connected === true, {
        what: "n1 to link to its own n3 again",
      });
    } finally {
      await rm(keep, { recursive: true, force: true });
    }
  }, 240_000);

  it("a node whose data belongs to another cluster does not join, and names both ids", async () => {
    await using first = await Cluster.start({ size: 1 });
    const firstId = await clusterIdOf(first);
    // A joiner without an admin key takes the first cluster's id, then waits to be added (it never is).
    const [port] = await freePorts(1);
    const waiting = first.joiner("n4", port!, first.nodes[0]!.httpUrl, false);
    waiting.start();
    try {
      await waiting.waitForOutput(/cluster id known/, 30_000);
    } finally {
      await waiting.kill("SIGTERM");
    }
    await using second = await Cluster.start({ size: 1 });
    const secondId = await clusterIdOf(second);
    // The same data folder, now pointed at the second cluster, with the admin key that would add it. The node itself
    // refuses to join (and the cluster would refuse its add request, 409 RQ_CLUSTER_MISMATCH): with both checks
    // off it becomes a member of the second cluster.
    const stray = new NodeProcess("n4", port!, waiting.dataDir, [
      "--id", "n4",
      "--listen", `127.0.0.1:${port}`,
      "--join", second.nodes[0]!.httpUrl,
      "--data", waiting.dataDir,
      "--cluster-secret", CLUSTER_SECRET,
      "--admin-key", ADMIN_KEY,
      "--tick-ms", "50",
      "--election-ticks", "10",
    ]);
    stray.start();
    try {
      await stray.waitForOutput(new RegExp(`RQ_CLUSTER_MISMATCH.*${firstId}.*${secondId}`), 30_000);
      await sleep(2_000);
      const members = (await second.admin("GET", "/v1/members")).json.members.map((m: { id: string }) => m.id);
      expect(members).toEqual(["n1"]);
      expect(stray.running).toBe(true); // refused, not crashed
      expect((await stray.status())?.clusterId).toBe(firstId);
    } finally {
      await stray.kill("SIGKILL");
    }
  }, 240_000);
});
