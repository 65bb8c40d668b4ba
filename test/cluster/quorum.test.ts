import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, sleep, waitFor } from "./harness.js";
import { RawClient } from "./raw-client.js";

// SPEC guarantee 1: a client learns of a grant only after its entry is committed on a majority.
describe("a leader without a majority", () => {
  let cluster: Cluster;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    cluster = await Cluster.start({ resources: { gate: { limits: [{ kind: "concurrency", limit: 1 }] } } });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  it("grants nothing while both followers are down; once one is back, the resent request is granted exactly once", async () => {
    const leader = await cluster.waitForLeader();
    const c = await RawClient.connect(leader.url, ADMIN_KEY);
    clients.push(c);
    expect(c.welcome).not.toBeNull();
    const followers = cluster.nodes.filter((n) => n.id !== leader.id);
    await Promise.all(followers.map((f) => f.kill("SIGKILL")));

    const id = c.acquire("gate");
    // A second of silence: no grant (nor any other answer) can come without a majority.
    await sleep(1_000);
    expect(c.answersTo(id)).toEqual([]);
    // The leader notices it lost its majority (check-quorum), steps down and drops its clients (close 4001).
    await c.closed();
    expect(c.closeCode).toBe(4001);
    expect(c.answersTo(id).filter((m) => m.type === "granted")).toEqual([]);
    // Without a leader the node is alive but not ready.
    expect((await fetch(`${leader.httpUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${leader.httpUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, leader: null });

    followers[0]!.start();
    await cluster.waitForLeader(30_000);
    const c2 = await RawClient.connectToLeader(cluster.urls, ADMIN_KEY, { resume: c.welcome!.sessionId });
    clients.push(c2);
    expect(c2.welcome!.resumed).toBe(true);
    c2.skipRequestIdsTo(c.newRequestId());
    c2.send([{ type: "acquire", requestId: id, resource: "gate" }]);
    const g = await c2.granted(id);
    // The same request again: the same lease, and the one slot is held once.
    c2.send([{ type: "acquire", requestId: id, resource: "gate" }]);
    await waitFor(() => c2.answersTo(id).length >= 2, { what: "the second answer" });
    // `sentAt` is when each answer left the node (for the delivery-delay report); everything else is the same.
    const { sentAt: _, ...grant } = g;
    expect(c2.answersTo(id)).toEqual([
      { ...grant, sentAt: expect.any(Number) },
      { ...grant, sentAt: expect.any(Number) },
    ]);
    expect((await cluster.resource("gate")).leasesHeld).toBe(1);
    followers[1]!.start();
  });
});
