import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster } from "./harness.js";
import { RawClient } from "./raw-client.js";

describe("a three-node cluster grants over WebSockets", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: { llm: { limits: [{ kind: "rate", limit: 3, windowMs: 2_000 }, { kind: "concurrency", limit: 2 }] } },
    });
  });
  afterAll(async () => cluster?.stop());

  it("grants within the limits, queues the rest, and wakes a waiter on release", async () => {
    const c = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY);
    const [a, b, w] = [c.newRequestId(), c.newRequestId(), c.newRequestId()];
    c.send([
      { type: "acquire", requestId: a, resource: "llm" },
      { type: "acquire", requestId: b, resource: "llm" },
      { type: "acquire", requestId: w, resource: "llm" },
    ]);
    const ga = await c.outcome(a);
    const gb = await c.outcome(b);
    expect(ga.type).toBe("granted");
    expect(gb.type).toBe("granted");
    await c.next((m) => m.type === "queued" && m.requestId === w);
    expect(c.answersTo(w).map((m) => m.type)).toEqual(["queued"]);
    // Releasing one lease frees a concurrency slot: the waiter is granted.
    const rel = c.newRequestId();
    c.send([{ type: "release", requestId: rel, leaseId: (ga as any).lease.id }]);
    expect((await c.outcome(rel)).type).toBe("ack");
    expect((await c.outcome(w)).type).toBe("granted");
    c.close();
  });
});
