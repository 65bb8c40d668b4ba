import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, httpCall as call, waitFor } from "./harness.js";

// Issue #15: admin keys live in the replicated key table. The bootstrap --admin-key seeds it once; admin keys are
// then created, listed and revoked like any key and every node agrees; nodes whose flags differ do not disagree
// silently (the table wins, the others warn); a cluster founded with no admin key at all refuses to start.
const FLAGS = { n1: "admin-key-of-n1-0123456789", n2: "admin-key-of-n2-0123456789", n3: "admin-key-of-n3-0123456789" } as const;
const IGNORED_FLAG = /--admin-key is not an admin key in the cluster's key table/;


/** What every node answers to GET /v1/keys with `key`: one status per node. */
async function everyNode(cluster: Cluster, key: string): Promise<number[]> {
  return Promise.all(cluster.nodes.map(async (n) => (await call(n, key, "GET", "/v1/keys")).status));
}

describe("admin keys in the replicated key table", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ adminKey: null, nodeArgs: { n1: ["--admin-key", FLAGS.n1], n2: ["--admin-key", FLAGS.n2], n3: ["--admin-key", FLAGS.n3] } });
  });
  afterAll(async () => cluster?.stop());

  let seeded = "";
  let seededNode = "";

  it("nodes founded with different --admin-key values agree: the first leader's key is seeded, the others warn", async () => {
    const answers = await Promise.all(Object.values(FLAGS).map((key) => everyNode(cluster, key)));
    // Exactly one flag is an admin key, on every node (a follower that has not applied the seed asks the leader).
    const winners = Object.entries(FLAGS).filter((_, i) => answers[i]!.every((s) => s === 200));
    expect(winners).toHaveLength(1);
    for (const [i, a] of answers.entries()) if (Object.keys(FLAGS)[i] !== winners[0]![0]) expect(a).toEqual([401, 401, 401]);
    [seededNode, seeded] = winners[0]!;
    const keys = (await call(cluster.nodes[0]!, seeded, "GET", "/v1/keys")).json.keys;
    expect(keys).toEqual([expect.objectContaining({ name: "bootstrap admin", scope: "admin" })]);
    for (const n of cluster.nodes) {
      if (n.id === seededNode) continue;
      await n.waitForOutput(IGNORED_FLAG);
    }
    expect(cluster.node(seededNode).output).not.toMatch(IGNORED_FLAG);
  });

  it("admin keys are created, listed and revoked like other keys; the last one cannot be revoked", async () => {
    const [a, b] = [cluster.nodes.find((n) => n.id !== seededNode)!, cluster.node(seededNode)];
    const created = await call(a, seeded, "POST", "/v1/keys", { name: "ops", scope: "admin" });
    expect(created.status).toBe(201);
    const second: string = created.json.secret;
    // Usable at once on every node, followers included.
    expect(await everyNode(cluster, second)).toEqual([200, 200, 200]);
    const listed = (await call(b, second, "GET", "/v1/keys")).json.keys as { id: string; scope: unknown }[];
    expect(listed.filter((k) => k.scope === "admin")).toHaveLength(2);
    const bootstrapId = listed.find((k) => k.id !== created.json.id)!.id;

    expect((await call(b, second, "DELETE", `/v1/keys/${bootstrapId}`)).status).toBe(204);
    // Refused by the leader at once (writes and sessions all go there), by a follower once it applied the entry.
    expect((await call(await cluster.waitForLeader(), seeded, "GET", "/v1/keys")).status).toBe(401);
    await waitFor(async () => (await everyNode(cluster, seeded)).every((s) => s === 401), { what: "every node to refuse the revoked key" });
    await cluster.node(seededNode).waitForOutput(IGNORED_FLAG); // its flag is no admin key any more
    const last = await call(a, second, "DELETE", `/v1/keys/${created.json.id}`);
    expect(last.status).toBe(409);
    expect(last.json).toMatchObject({ error: { code: "RQ_LAST_ADMIN_KEY" } });
    expect(await everyNode(cluster, second)).toEqual([200, 200, 200]);

    // A full restart: every node still holds its --admin-key flag, but the table has an admin key, so nothing is
    // seeded again and the revoked bootstrap key stays revoked.
    await Promise.all(cluster.nodes.map((n) => n.kill("SIGKILL")));
    await cluster.restartAll();
    expect(await everyNode(cluster, second)).toEqual([200, 200, 200]);
    for (const key of Object.values(FLAGS)) expect(await everyNode(cluster, key)).toEqual([401, 401, 401]);
  });
});

describe("a cluster with no admin key", () => {
  it("refuses to found itself, saying how to give one", async () => {
    const cluster = await Cluster.start({ size: 1, adminKey: null, noWait: true });
    try {
      const node = cluster.nodes[0]!;
      expect(await node.exited()).toEqual({ code: 2, signal: null });
      expect(node.output).toMatch(/a new cluster needs an admin key.*--admin-key/);
    } finally {
      await cluster.stop();
    }
  });
});
