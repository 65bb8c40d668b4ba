import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "./harness.js";
import { RawClient } from "./raw-client.js";

// Issue #15: /metrics and /v1/status leak nothing by default. Resource and lane names reach only a key that may see
// them (admin and metrics keys: every resource; an acquire key: its own), or anyone on a node run with
// --public-metrics; /healthz, /readyz and /v1/status stay open and name no resource.
describe("endpoints that leak nothing by default", () => {
  let cluster: Cluster;
  let teamAKey = "";
  let metricsKey = "";
  const scrape = async (node: NodeProcess, key?: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${node.httpUrl}/metrics`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } });
    return { status: res.status, text: await res.text() };
  };
  const granted = (text: string, resource: string): boolean => new RegExp(`^ratequeue_grants_total\\{resource="${resource}"\\} [1-9]`, "m").test(text);

  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: {
        "team-a-chat": { limits: [{ kind: "concurrency", limit: 5 }], lanes: { interactive: { weight: 3 }, batch: { weight: 1 } } },
        "team-b-secret-project": { limits: [{ kind: "concurrency", limit: 5 }] },
      },
      nodeArgs: { n3: ["--public-metrics"] },
    });
    teamAKey = (await cluster.admin("POST", "/v1/keys", { name: "team a", scope: { acquire: ["team-a-*"] } })).json.secret;
    const created = await cluster.admin("POST", "/v1/keys", { name: "prometheus", scope: "metrics" });
    expect(created.status).toBe(201);
    metricsKey = created.json.secret;
    const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
    await c.granted(c.acquire("team-a-chat", { lane: "batch" }));
    await c.granted(c.acquire("team-b-secret-project"));
    c.close();
    // Counters follow applied entries: wait until every node counted both grants.
    for (const n of cluster.nodes) {
      await waitFor(async () => granted((await scrape(n, ADMIN_KEY)).text, "team-b-secret-project"), { what: `${n.id} to count the grants` });
    }
  });
  afterAll(async () => cluster?.stop());

  it("without a key: node series only on /metrics; /v1/status, /healthz and /readyz open and free of names", async () => {
    for (const n of cluster.nodes.filter((x) => x.id !== "n3")) {
      const anonymous = await scrape(n);
      expect(anonymous.status).toBe(200);
      expect(anonymous.text).toMatch(/^ratequeue_raft_term \d+/m);
      expect(anonymous.text).toContain("# TYPE ratequeue_grants_total counter"); // the family, without its samples
      expect(anonymous.text).not.toMatch(/resource="|lane="|team-/);
      for (const path of ["/v1/status", "/healthz", "/readyz"]) {
        const res = await fetch(`${n.httpUrl}${path}`);
        expect(res.status, path).toBe(200);
        expect(await res.text(), path).not.toMatch(/team-|interactive|batch/);
      }
    }
  });

  it("an admin or metrics key sees every resource and lane; an acquire key only its own; an unknown key is refused", async () => {
    for (const n of cluster.nodes) {
      for (const key of [ADMIN_KEY, metricsKey]) {
        const all = await scrape(n, key);
        expect(all.status).toBe(200);
        expect(granted(all.text, "team-a-chat") && granted(all.text, "team-b-secret-project")).toBe(true);
        expect(all.text).toMatch(/ratequeue_queue_depth\{resource="team-a-chat",lane="batch"\}/);
      }
      const teamA = await scrape(n, teamAKey);
      expect(granted(teamA.text, "team-a-chat")).toBe(true);
      expect(teamA.text).not.toContain("team-b");
      const unknown = await scrape(n, "rq_not-a-key-of-this-cluster");
      expect(unknown.status).toBe(401);
      expect(JSON.parse(unknown.text)).toMatchObject({ error: { code: "RQ_UNAUTHORIZED" } });
    }
  });

  it("a node run with --public-metrics shows every resource without a key", async () => {
    const open = await scrape(cluster.node("n3"));
    expect(granted(open.text, "team-b-secret-project")).toBe(true);
  });

  it("a metrics key reads metrics and nothing else: no admin API, no session", async () => {
    const leader = await cluster.waitForLeader();
    const res = await fetch(`${leader.httpUrl}/v1/keys`, { headers: { authorization: `Bearer ${metricsKey}` } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "RQ_FORBIDDEN" } });
    const hello = await RawClient.connect(leader.url, metricsKey);
    expect(hello.received[0]).toMatchObject({ type: "error", code: "RQ_FORBIDDEN" });
    await hello.closed();
  });
});
