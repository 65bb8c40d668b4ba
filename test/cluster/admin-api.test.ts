import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "./harness.js";
import { RawClient } from "./raw-client.js";

describe("admin API and observability, end to end", () => {
  let cluster: Cluster;
  const clients: RawClient[] = [];
  const connect = async (apiKey = ADMIN_KEY): Promise<RawClient> => {
    const c = await RawClient.connectToLeader(cluster.urls, apiKey);
    clients.push(c);
    return c;
  };
  const follower = async (): Promise<NodeProcess> => {
    const leader = await cluster.waitForLeader();
    return cluster.nodes.find((n) => n.id !== leader.id)!;
  };
  /** Waits until every node has applied what the leader has committed now. */
  const everyNodeApplied = async (): Promise<void> => {
    const { commitIndex } = (await (await cluster.waitForLeader()).status())!;
    for (const n of cluster.nodes) {
      await waitFor(async () => ((await n.status())?.appliedIndex ?? 0) >= commitIndex, { what: `${n.id} to apply ${commitIndex}` });
    }
  };

  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { boot: { limits: [{ kind: "rate", limit: 10, windowMs: 60_000 }] } } });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  it("resources: PUT creates (201) then replaces (200); GET lists and shows live usage, leases and queue; DELETE 204 then 404", async () => {
    const body = {
      limits: [
        { kind: "rate", limit: 5, windowMs: 60_000 },
        { kind: "concurrency", limit: 1 },
      ],
      lanes: { interactive: { weight: 3 }, batch: { weight: 1 } },
      lanePolicy: "shared",
    };
    const created = await cluster.admin("PUT", "/v1/resources/openai-gpt4o", body);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: "openai-gpt4o", lanes: { interactive: { weight: 3 }, batch: { weight: 1 } }, lanePolicy: "shared" });
    expect(created.json.limits).toHaveLength(2);

    const c = await connect();
    const g = await c.granted(c.acquire("openai-gpt4o", { lane: "interactive" }));
    const w = c.acquire("openai-gpt4o", { lane: "batch" });
    await c.next((m) => m.type === "queued" && m.requestId === w);
    const one = await cluster.admin("GET", "/v1/resources/openai-gpt4o");
    expect(one.status).toBe(200);
    expect(one.json.usage.map((u: { kind: string; used: number }) => [u.kind, u.used])).toEqual([
      ["rate", 1],
      ["concurrency", 1],
    ]);
    expect(one.json.leasesHeld).toBe(1);
    expect(one.json.queued).toEqual({ interactive: 0, batch: 1 });

    const list = await cluster.admin("GET", "/v1/resources");
    expect(list.status).toBe(200);
    expect(list.json.resources.map((r: { name: string }) => r.name).sort()).toEqual(["boot", "openai-gpt4o"]);

    const replaced = await cluster.admin("PUT", "/v1/resources/openai-gpt4o", { ...body, limits: [{ kind: "rate", limit: 50, windowMs: 60_000 }] });
    expect(replaced.status).toBe(200);
    expect(replaced.json.limits).toHaveLength(1);
    // Replacing the limits (concurrency dropped) lets the waiter through: a changed limit applies to waiting requests.
    await c.granted(w);
    expect(g.lease.resource).toBe("openai-gpt4o");

    expect((await cluster.admin("DELETE", "/v1/resources/openai-gpt4o")).status).toBe(204);
    expect((await cluster.admin("DELETE", "/v1/resources/openai-gpt4o")).status).toBe(404);
    expect((await cluster.admin("GET", "/v1/resources/openai-gpt4o")).status).toBe(404);
    expect(await c.outcome(c.acquire("openai-gpt4o"))).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });
  });

  it("a changed limit applies to requests already waiting (raising a concurrency limit wakes the queue)", async () => {
    expect((await cluster.admin("PUT", "/v1/resources/pool", { limits: [{ kind: "concurrency", limit: 1 }] })).status).toBe(201);
    const c = await connect();
    await c.granted(c.acquire("pool"));
    const waiting = [c.acquire("pool"), c.acquire("pool"), c.acquire("pool")];
    for (const id of waiting) await c.next((m) => m.type === "queued" && m.requestId === id);
    expect((await cluster.admin("PUT", "/v1/resources/pool", { limits: [{ kind: "concurrency", limit: 3 }] })).status).toBe(200);
    await c.granted(waiting[0]!);
    await c.granted(waiting[1]!);
    await waitFor(async () => (await cluster.resource("pool")).leasesHeld === 3, { what: "3 leases on pool" });
    expect((await cluster.resource("pool")).queued).toEqual({ default: 1 });
    expect(c.answersTo(waiting[2]!).map((m) => m.type)).toEqual(["queued"]);
  });

  it("a changed limit that makes a waiting request impossible rejects it at once; deleting a resource ends its waiters", async () => {
    expect((await cluster.admin("PUT", "/v1/resources/shrink", { limits: [{ kind: "load", limit: 100, windowMs: 60_000 }] })).status).toBe(201);
    const c = await connect();
    const g = await c.granted(c.acquire("shrink", { load: 80 }));
    const big = c.acquire("shrink", { load: 50 });
    await c.next((m) => m.type === "queued" && m.requestId === big);
    expect((await cluster.admin("PUT", "/v1/resources/shrink", { limits: [{ kind: "load", limit: 40, windowMs: 60_000 }] })).status).toBe(200);
    expect(await c.outcome(big)).toMatchObject({ type: "rejected", code: "RQ_UNGRANTABLE" });

    const small = c.acquire("shrink", { load: 10 }); // fits the new limit, but 80 are already charged in the window
    await c.next((m) => m.type === "queued" && m.requestId === small);
    expect((await cluster.admin("DELETE", "/v1/resources/shrink")).status).toBe(204);
    const ended = await c.outcome(small);
    expect(ended).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });
    // The lease of a deleted resource is gone; releasing it is still answered (release is idempotent).
    expect(await c.outcome(c.release(g.lease.id))).toMatchObject({ type: "ack" });
    expect(c.closeCode).toBeNull();
  });

  it("refuses strict lanes whose share rounds down to 0 with 400 RQ_INVALID naming the lane (#11)", async () => {
    const body = { limits: [{ kind: "concurrency", limit: 1 }], lanes: { a: { weight: 1 }, b: { weight: 1 } }, lanePolicy: "strict" };
    const r = await cluster.admin("PUT", "/v1/resources/dead-lanes", body);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: { code: "RQ_INVALID" } });
    expect(JSON.stringify(r.json)).toMatch(/strict lane \\"a\\" gets floor\(1 \* 1 \/ 2\) = 0/);
    expect((await cluster.admin("GET", "/v1/resources/dead-lanes")).status).toBe(404);
  });

  it("a write sent to a follower is forwarded to the leader and takes effect on every node", async () => {
    const f = await follower();
    const put = await cluster.admin("PUT", "/v1/resources/via-follower", { limits: [{ kind: "concurrency", limit: 2 }] }, f);
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ name: "via-follower" });
    await everyNodeApplied();
    for (const n of cluster.nodes) expect((await cluster.resource("via-follower", n)).limits).toEqual([{ kind: "concurrency", limit: 2, reserved: {} }]);
    const key = await cluster.admin("POST", "/v1/keys", { name: "from a follower", scope: "admin" }, f);
    expect(key.status).toBe(201);
    expect((await cluster.admin("DELETE", `/v1/keys/${key.json.id}`, undefined, await follower())).status).toBe(204);
    expect((await cluster.admin("DELETE", "/v1/resources/via-follower", undefined, await follower())).status).toBe(204);
    await everyNodeApplied();
    for (const n of cluster.nodes) expect((await cluster.admin("GET", "/v1/resources/via-follower", undefined, n)).status).toBe(404);
  });

  it("keys: POST shows the secret once; GET lists no secrets or hashes; the key works for a client until DELETE", async () => {
    const created = await cluster.admin("POST", "/v1/keys", { name: "worker", scope: { acquire: ["boot"] } });
    expect(created.status).toBe(201);
    const { id, secret } = created.json as { id: string; secret: string };
    expect(created.json).toMatchObject({ name: "worker", scope: { acquire: ["boot"] } });
    expect(secret).toMatch(/^rq_/);

    const list = await cluster.admin("GET", "/v1/keys");
    expect(list.status).toBe(200);
    const listed = list.json.keys.find((k: { id: string }) => k.id === id);
    expect(listed).toEqual({ id, name: "worker", scope: { acquire: ["boot"] }, createdAt: expect.any(Number) });
    const text = JSON.stringify(list.json);
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/hash/i);

    const c = await connect(secret);
    expect(c.welcome).not.toBeNull();
    await c.granted(c.acquire("boot"));

    expect((await cluster.admin("DELETE", `/v1/keys/${id}`)).status).toBe(204);
    // A revoked key stops working at once, also on a connection it opened before.
    await c.closed();
    expect(c.closeCode).toBe(4003);
    expect(c.received.find((m) => m.type === "error")).toMatchObject({ code: "RQ_UNAUTHORIZED" });
    expect((await cluster.admin("DELETE", `/v1/keys/${id}`)).status).toBe(404);
    expect((await cluster.admin("GET", "/v1/keys")).json.keys.some((k: { id: string }) => k.id === id)).toBe(false);
    const refused = await RawClient.connect((await cluster.waitForLeader()).url, secret);
    expect(refused.received[0]).toMatchObject({ type: "error", code: "RQ_UNAUTHORIZED" });
    await refused.closed();
    expect(refused.closeCode).toBe(4003);
  });

  it("/healthz, /readyz and /v1/status on every node; /metrics counts grants", async () => {
    const leader = await cluster.waitForLeader();
    for (const n of cluster.nodes) {
      const health = await fetch(`${n.httpUrl}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ ok: true });
      // A follower is ready once it has heard the leader and applied what it knows to be committed: soon, not at once.
      let ready = await fetch(`${n.httpUrl}/readyz`);
      await waitFor(
        async () => {
          ready = await fetch(`${n.httpUrl}/readyz`);
          return ready.status === 200;
        },
        { what: `${n.id} to be ready` },
      );
      expect(await ready.json()).toMatchObject({ ready: true, leader: leader.id });
      const status = (await (await fetch(`${n.httpUrl}/v1/status`)).json()) as any;
      expect(status).toMatchObject({
        id: n.id,
        role: n.id === leader.id ? "leader" : "follower",
        term: expect.any(Number),
        leader: leader.id,
        commitIndex: expect.any(Number),
        appliedIndex: expect.any(Number),
      });
      expect(status.term).toBeGreaterThanOrEqual(1);
      expect(status.appliedIndex).toBeLessThanOrEqual(status.commitIndex);
      expect(status.peers.map((p: { id: string }) => p.id).sort()).toEqual(["n1", "n2", "n3"]);
    }

    // Resource series are shown to a key that may see them (test/cluster/endpoints.test.ts): the admin key here.
    const scrape = (url: string) => fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const metricsBefore = await (await scrape(leader.httpUrl)).text();
    const c = await connect();
    await c.granted(c.acquire("boot"));
    await c.granted(c.acquire("boot"));
    const res = await scrape(leader.httpUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    for (const name of ["ratequeue_grants_total", "ratequeue_rejections_total", "ratequeue_commit_latency_seconds", "ratequeue_queue_depth", "ratequeue_leases_held", "ratequeue_sessions", "ratequeue_raft_term", "ratequeue_raft_commit_index"]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(grants(text, "boot") - grants(metricsBefore, "boot")).toBe(2);
    expect(text).toMatch(/ratequeue_raft_role\{role="leader"\} 1/);
    // Every node counts the whole cluster's grants (counters follow applied entries).
    await everyNodeApplied();
    for (const n of cluster.nodes) expect(grants(await (await scrape(n.httpUrl)).text(), "boot")).toBe(grants(text, "boot"));
  });
});

function grants(metrics: string, resource: string): number {
  const m = new RegExp(`^ratequeue_grants_total\\{resource="${resource}"\\} (\\d+)`, "m").exec(metrics);
  return m === null ? 0 : Number(m[1]);
}
