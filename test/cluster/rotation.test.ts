import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, CLUSTER_SECRET, Cluster, httpCall as call, sleep, waitFor, type NodeProcess } from "./harness.js";

// Issue #15: the cluster secret, admin keys and worker keys rotate without downtime, by the procedures in
// packages/node/README.md (Security), while a worker keeps acquiring through the SDK.
const NEW_SECRET = "rotated-cluster-secret-0123456789";

/** Every running node's link to every other running node is open, as each node's /v1/status says. */
async function meshUp(cluster: Cluster): Promise<boolean> {
  const running = cluster.nodes.filter((n) => n.running);
  const statuses = await Promise.all(running.map((n) => n.status()));
  return statuses.every(
    (s, i) => s !== null && running.every((o) => o === running[i] || s.peers.find((p) => p.id === o.id)?.connected === true),
  );
}


/** A worker acquiring and releasing in a loop, counting grants and failures, until stopped. */
function worker(cluster: Cluster, apiKey: string): { grants: () => number; failures: string[]; stop: () => Promise<void> } {
  const rq = new RateQueue({ url: cluster.urls, apiKey, clientName: "rotation-worker" });
  const failures: string[] = [];
  let grants = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        await rq.acquire("r", { timeoutMs: 20_000 }, async () => sleep(20));
        grants++;
      } catch (err) {
        failures.push(String(err));
        await sleep(100);
      }
    }
  })();
  return {
    grants: () => grants,
    failures,
    stop: async () => {
      stopped = true;
      await loop;
      await rq.close();
    },
  };
}

describe("rotation without downtime", () => {
  let cluster: Cluster;
  let workerKey = "";
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { r: { limits: [{ kind: "concurrency", limit: 4 }] } } });
    workerKey = (await cluster.admin("POST", "/v1/keys", { name: "workers v1", scope: { acquire: ["r"] } })).json.secret;
  });
  afterAll(async () => cluster?.stop());

  it("the cluster secret, node by node with --previous-cluster-secret, while a worker keeps acquiring", async () => {
    const w = worker(cluster, workerKey);
    try {
      await waitFor(() => w.grants() >= 5, { what: "the worker's first grants" });
      /** A planned restart of one node with changed flags; returns once it links with every other node again. */
      const restart = async (node: NodeProcess, previous: string | null): Promise<void> => {
        started = Date.now();
        const before = w.grants();
        await node.kill("SIGTERM");
        node.setFlag("--cluster-secret", NEW_SECRET);
        node.setFlag("--previous-cluster-secret", previous);
        node.start();
        await waitFor(() => meshUp(cluster), { what: `${node.id} to link with every node`, timeoutMs: 20_000, dump: () => cluster.dump() });
        await waitFor(() => w.grants() > before, { what: `grants after ${node.id} came back` });
        steps.push(`${node.id} ${previous === null ? "new" : "new+old"}: ${Date.now() - started} ms`);
      };
      const steps: string[] = [];
      let started = Date.now();
      // Step 1: every node learns the new secret and keeps accepting the old one. Step 2: the old one goes.
      for (const node of cluster.nodes) await restart(node, CLUSTER_SECRET);
      for (const node of cluster.nodes) await restart(node, null);
      console.log(`rotation: ${steps.join(", ")}; ${w.grants()} grants`);
      expect(w.failures, "the worker never saw an error").toEqual([]);

      // The test can fail: a node that still holds only the old secret can no longer link.
      const stale = cluster.nodes[0]!;
      await stale.kill("SIGTERM");
      const mark = stale.output.length;
      stale.setFlag("--cluster-secret", CLUSTER_SECRET);
      stale.start();
      await waitFor(() => /peer could not prove the cluster secret/.test(stale.output.slice(mark)), { what: "the stale node to be refused" });
      expect((await stale.status())?.peers.some((p) => p.connected === true)).toBe(false);
      // The other two are a majority: the worker goes on.
      const before = w.grants();
      await waitFor(() => w.grants() > before, { what: "grants with the stale node cut off" });
      expect(w.failures).toEqual([]);
      await stale.kill("SIGKILL"); // the rest of this file runs on the two nodes that hold the new secret
    } finally {
      await w.stop();
    }
  });

  it("a worker key and an admin key: create the new one, move to it, revoke the old one", async () => {
    // Worker key: a second key for the same scope; workers move to it; the old one is revoked once nobody uses it.
    const v2 = await cluster.admin("POST", "/v1/keys", { name: "workers v2", scope: { acquire: ["r"] } });
    const w2 = worker(cluster, v2.json.secret);
    const keys = (await cluster.admin("GET", "/v1/keys")).json.keys as { id: string; name: string }[];
    expect((await cluster.admin("DELETE", `/v1/keys/${keys.find((k) => k.name === "workers v1")!.id}`)).status).toBe(204);
    // Admin key: a new admin key, then the old (bootstrap) one revoked with it.
    const leader = await cluster.waitForLeader();
    const admin2 = await call(leader, ADMIN_KEY, "POST", "/v1/keys", { name: "admin v2", scope: "admin" });
    expect(admin2.status).toBe(201);
    const bootstrap = keys.find((k) => k.name === "bootstrap admin")!;
    expect((await call(leader, admin2.json.secret, "DELETE", `/v1/keys/${bootstrap.id}`)).status).toBe(204);
    try {
      const running = cluster.nodes.filter((n) => n.running);
      await waitFor(async () => (await Promise.all(running.map((n) => call(n, ADMIN_KEY, "GET", "/v1/keys")))).every((r) => r.status === 401), {
        what: "every node to refuse the old admin key",
      });
      for (const n of running) expect((await call(n, admin2.json.secret, "GET", "/v1/keys")).status).toBe(200);
      const before = w2.grants();
      await waitFor(() => w2.grants() > before + 5, { what: "grants on the new worker key after the old one went" });
      expect(w2.failures).toEqual([]);
    } finally {
      await w2.stop();
    }
  });
});
