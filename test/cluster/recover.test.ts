/**
 * Force-recover on real processes: three nodes, two killed for good, the survivor alone cannot grant; `ratequeue
 * recover --force-new-cluster` rewrites its data so it is a one-voter cluster with its own state, it grants again
 * (the usage it had is still counted), and the cluster grows back with a node that joins it.
 */
import { describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, freePorts, runCli, waitFor } from "./harness.js";

const CAPPED = 10;
const USED = 6;
const RESOURCES = {
  capped: { limits: [{ kind: "rate", limit: CAPPED, windowMs: 600_000 }] },
  pool: { limits: [{ kind: "concurrency", limit: 2 }] },
};

describe("force-recover", () => {
  it("turns the last survivor of a lost majority into a one-voter cluster that keeps its state and grows back", async () => {
    await using cluster = await Cluster.start({ resources: RESOURCES });
    const rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY });
    try {
      for (let i = 0; i < USED; i++) expect(await rq.tryAcquire("capped")).not.toBeNull();
    } finally {
      await rq.close();
    }
    const leader = await cluster.waitForLeader();
    const survivor = cluster.nodes.find((n) => n.id !== leader.id)!;
    const lost = cluster.nodes.filter((n) => n !== survivor);
    // The survivor holds every acknowledged grant (pick the most caught-up survivor: `ratequeue status`).
    const commit = (await leader.status())!.commitIndex;
    await waitFor(async () => ((await survivor.status())?.appliedIndex ?? 0) >= commit, { what: "the survivor to apply everything" });
    await Promise.all(lost.map((n) => n.kill("SIGKILL")));

    // Refused while the node runs on the folder, and without the explicit flag.
    const busy = await runCli(["recover", "--data", survivor.dataDir, "--id", survivor.id, "--force-new-cluster"]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/RQ_DATA_IN_USE: data folder .* is in use: stop the node running on it first/);
    await survivor.kill("SIGTERM");
    const unconfirmed = await runCli(["recover", "--data", survivor.dataDir, "--id", survivor.id]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/refusing without --force-new-cluster/);
    const wrongId = await runCli(["recover", "--data", survivor.dataDir, "--id", "n9", "--force-new-cluster"]);
    expect(wrongId.code).toBe(2);
    expect(wrongId.stderr).toMatch(/RQ_INVALID: data folder belongs to node n\d, not n9 \(check --id\)/);

    const recovered = await runCli(["recover", "--data", survivor.dataDir, "--id", survivor.id, "--force-new-cluster"]);
    expect(recovered.stderr).toMatch(new RegExp(`^WARNING: ${survivor.id} is now a one-voter cluster .* Removed for good: ${lost.map((n) => n.id).sort().join(", ")}\\.`));
    expect(recovered.code).toBe(0);

    // It starts with the flags it always had (--peers is ignored: the data holds the membership) and leads alone.
    survivor.start();
    const alone = await cluster.waitForLeader(30_000);
    expect(alone.id).toBe(survivor.id);
    const members = await cluster.admin("GET", "/v1/members");
    expect(members.json.members.map((m: { id: string }) => m.id)).toEqual([survivor.id]);

    // Its state is the cluster's: 6 of 10 were used, so exactly 4 more are granted.
    const after = new RateQueue({ url: [survivor.url], apiKey: ADMIN_KEY });
    try {
      for (let i = 0; i < CAPPED - USED; i++) expect(await after.tryAcquire("capped")).not.toBeNull();
      expect(await after.tryAcquire("capped")).toBeNull();
    } finally {
      await after.close();
    }
    expect((await cluster.resource("capped")).usage[0]!.used).toBe(CAPPED);

    // Grow back: a fresh node joins the recovered cluster and becomes a voter; the two grant together.
    const [port] = await freePorts(1);
    const fresh = cluster.joiner("n4", port!, survivor.httpUrl, true);
    cluster.nodes.push(fresh);
    fresh.start();
    await waitFor(async () => (await cluster.admin("GET", "/v1/members")).json.members.some((m: { id: string; voter: boolean }) => m.id === "n4" && m.voter), {
      timeoutMs: 45_000,
      what: "n4 to become a voter",
      dump: () => cluster.dump(),
    });
    const both = new RateQueue({ url: [survivor.url, fresh.url], apiKey: ADMIN_KEY });
    try {
      const lease = await both.acquire("pool", { timeoutMs: 20_000 });
      await lease.release();
      expect(await both.tryAcquire("capped")).toBeNull();
    } finally {
      await both.close();
    }
    // n4 applied the same state: the used-up limit reads the same there.
    await waitFor(async () => ((await fresh.status())?.appliedIndex ?? 0) >= (await survivor.status())!.commitIndex, { what: "n4 to apply everything" });
    expect((await cluster.resource("capped", fresh)).usage[0]!.used).toBe(CAPPED);
  });
});
