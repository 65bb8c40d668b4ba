import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./harness.js";
import { RawClient } from "./raw-client.js";

// Issue #15: a leaked worker key can do no more than its scope says; every request outside it is refused with
// RQ_FORBIDDEN before it reaches the log, and nothing is granted or queued for it.
describe("key scopes on a real cluster", () => {
  let cluster: Cluster;
  let secret = "";

  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: {
        "team-a-chat": { limits: [{ kind: "concurrency", limit: 5 }], lanes: { interactive: { weight: 3 }, batch: { weight: 1 } } },
      },
    });
    const key = await cluster.admin("POST", "/v1/keys", {
      name: "worker",
      scope: { acquire: ["team-a-*"], priorityMax: 20, lanes: ["batch"], ttlMsMax: 30_000, loadMax: 100 },
    });
    expect(key.status).toBe(201);
    secret = key.json.secret;
  });
  afterAll(async () => cluster?.stop());

  it("refuses priority, lane, load and TTL beyond the scope with RQ_FORBIDDEN, and grants within it", async () => {
    const refusedHello = await RawClient.connectToLeader(cluster.urls, secret, { ttlMs: 86_400_000 }).catch((e: Error) => e);
    expect(refusedHello).toBeInstanceOf(Error); // no node welcomes it
    const c = await RawClient.connectToLeader(cluster.urls, secret);
    expect(c.welcome!.ttlMs).toBeLessThanOrEqual(30_000);
    for (const fields of [{ priority: 1_000 }, { lane: "interactive" }, { load: 101 }]) {
      expect(await c.outcome(c.acquire("team-a-chat", { ...fields, lane: fields.lane ?? "batch" }))).toMatchObject({ type: "rejected", code: "RQ_FORBIDDEN" });
    }
    const view = await cluster.admin("GET", "/v1/resources/team-a-chat");
    expect(view.json.leasesHeld).toBe(0);
    const g = await c.granted(c.acquire("team-a-chat", { load: 100, priority: 20, lane: "batch" }));
    expect(g.lease.resource).toBe("team-a-chat");
    expect((await cluster.admin("GET", "/v1/resources/team-a-chat")).json.leasesHeld).toBe(1);
    c.close();
  });
});
