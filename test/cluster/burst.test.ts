/**
 * A burst of requests from one client must not stall the leader. A client that writes tens of thousands of
 * one-request frames at once (a worker pool resending after a failover, or a client that does not batch) fills
 * the leader's socket with more than a megabyte. If the node decoded and proposed all of it in one turn of its
 * event loop, its Raft heartbeats would wait behind that work for longer than an election timeout, the
 * followers would elect another leader, and every client would pay a failover for one client's burst. The node
 * reads at most one frame per connection per turn, so its timers run between frames.
 */
import { decodeServerFrame, encodeClientFrame } from "@ratequeue/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, Cluster, waitFor } from "./harness.js";
import { LeanClient } from "./lean-client.js";

/** Below the node's cap of acquires waiting per connection (PENDING_ACQUIRES_MAX, 10,000). */
const BURST = 9_000;

describe("a burst of requests from one client", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({
      // The queued requests' session must outlive a slow machine's handling of the burst (the test client sends
      // no heartbeats).
      sessionTtlMs: 300_000,
      resources: { q: { limits: [{ kind: "concurrency", limit: 1 }] } },
    });
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("is queued in full while the leader keeps its leadership", async () => {
    const leader = await cluster.waitForLeader();
    const before = (await leader.status())!;
    const client = await LeanClient.connect([leader.url], ADMIN_KEY);
    const held = await client.request((requestId) => ({ type: "acquire", requestId, resource: "q" }));
    expect(held.type).toBe("granted");

    let queued = 0;
    const other: string[] = [];
    client.ws.on("message", (data: Buffer) => {
      const r = decodeServerFrame(new Uint8Array(data));
      if (!r.ok) throw new Error(r.error.message);
      for (const m of r.messages) {
        if (m.type === "queued") queued++;
        else other.push(m.type);
      }
    });
    // One frame per request, all written before the node has read any of them.
    for (let i = 0; i < BURST; i++) {
      client.ws.send(encodeClientFrame([{ type: "acquire", requestId: 1_000 + i, resource: "q", timeoutMs: 600_000 }]));
    }
    await waitFor(() => queued === BURST || client.ws.readyState !== client.ws.OPEN, {
      timeoutMs: 240_000,
      what: `${BURST} queued answers`,
    });
    expect({ queued, other }).toEqual({ queued: BURST, other: [] });
    const after = (await leader.status())!;
    expect(after.role).toBe("leader");
    expect(after.term).toBe(before.term);
    const resource = await cluster.resource("q", leader);
    expect(resource.queued).toEqual({ default: BURST });
    client.close();
  }, 300_000);
});
