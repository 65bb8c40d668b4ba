/**
 * A node whose own link to the leader is down (the leader may be dead; Raft would notice only at the election
 * timeout) holds a client's hello, and sends it on to the leader as soon as the link is back. Cut through the
 * nemesis's TCP proxies: only the follower's outbound link, so it still hears the leader and keeps it as leader.
 */
import { PROTOCOL_VERSION } from "@ratequeue/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, sleep, waitFor } from "../cluster/harness.js";
import { RawClient } from "../cluster/raw-client.js";
import { ChaosCluster } from "./chaos-cluster.js";

describe("a hello held while this node's link to the leader is down", () => {
  let cluster: ChaosCluster;
  const clients: RawClient[] = [];
  beforeAll(async () => {
    // A hold far longer than the test's waits, so only the link coming back can release the hello.
    cluster = await ChaosCluster.start({ resources: {}, extraArgs: ["--leader-wait-ms", "60000"] });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.destroy();
  });

  it("is sent on to the leader as soon as the link is back", async () => {
    const leader = (await cluster.waitForLeader(30_000))!;
    const follower = cluster.nodes.find((n) => n.id !== leader.id)!;
    const link = cluster.proxies.get(`${follower.id}>${leader.id}`)!;
    link.cut();
    await waitFor(async () => (await follower.status())?.peers.find((p) => p.id === leader.id)?.connected === false, {
      what: `${follower.id} to see its link to ${leader.id} down`,
    });
    expect((await follower.status())!.leader).toBe(leader.id); // it still hears the leader: only the link looks dead

    const c = await RawClient.open(follower.url);
    clients.push(c);
    c.send([{ type: "hello", protocolVersion: PROTOCOL_VERSION, apiKey: ADMIN_KEY }]);
    await sleep(500);
    expect(c.received).toEqual([]); // held, not sent to a leader that may be gone

    link.heal();
    const answer = await c.next((m) => m.type === "notLeader" || m.type === "welcome" || m.type === "error", 20_000);
    expect(answer).toMatchObject({ type: "notLeader", leader: leader.id, url: expect.any(String) });
  });
});
