// Nodes whose wall clocks are minutes off (Debian's faketime), as a VM resumed with a stale clock would be: their
// clock health is visible (/v1/status, /metrics, a warning in the logs), and when they lead, no window of true time
// holds more than the limit and no limit stays frozen (SPEC guarantee 6; issue #18). On stamps taken from the wall
// clock, the node 3 minutes ahead grants a whole new window at once and the node 3 minutes behind freezes the limit
// for 3 minutes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./harness.js";
import { expectProviderWindowsHold, faketime, LIMIT, makeLeader, RESOURCE, SaturatingWorkload, waitForClockOffset } from "./clock-workload.js";

const SKEW_MS = 180_000;

describe("wall clocks minutes off", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({
      resources: { skewed: RESOURCE },
      extraArgs: ["--clock-warn-ms", "1000"],
      launch: { n2: faketime("+3m"), n3: faketime("-3m") },
    });
  });
  afterAll(async () => cluster?.stop());

  it("shows each peer's clock offset in /v1/status and /metrics, and warns in the logs", async () => {
    const [n1, n2, n3] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const near = (expectedMs: number) => (offsetMs: number) => Math.abs(offsetMs - expectedMs) < 5_000;
    await waitForClockOffset(n1, "n2", near(SKEW_MS), "about 3 min ahead");
    await waitForClockOffset(n1, "n3", near(-SKEW_MS), "about 3 min behind");
    await waitForClockOffset(n2, "n3", near(-2 * SKEW_MS), "about 6 min behind");
    await waitForClockOffset(n3, "n1", near(SKEW_MS), "about 3 min ahead");

    const metrics = await (await fetch(`${n1.httpUrl}/metrics`)).text();
    const gauge = (peer: string): number => Number(new RegExp(`^ratequeue_peer_clock_offset_seconds\\{peer="${peer}"\\} (\\S+)$`, "m").exec(metrics)?.[1]);
    expect(gauge("n2")).toBeGreaterThan(175);
    expect(gauge("n2")).toBeLessThan(185);
    expect(gauge("n3")).toBeLessThan(-175);
    expect(gauge("n3")).toBeGreaterThan(-185);

    // n1 sees one peer ahead and one behind: it names the peer. n2 is ahead of both: it names itself.
    const warning = JSON.parse(await n1.waitForOutput(/"level":40.*"peer":"n2".*wall clock/)) as Record<string, unknown>;
    expect(warning).toMatchObject({ peer: "n2", warnMs: 1000 });
    expect(Math.abs((warning.offsetMs as number) - SKEW_MS)).toBeLessThan(5_000);
    expect(warning.msg).toContain("peer n2's wall clock is 180 s ahead of this node's, beyond --clock-warn-ms 1000");
    await n2.waitForOutput(/"level":40.*this node's wall clock differs from every peer's/);
    await n3.waitForOutput(/"level":40.*this node's wall clock differs from every peer's/);
  });

  it("a leader 3 min ahead, then one 3 min behind: no true window over the limit, no frozen limit", async () => {
    const [n1, n2, n3] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    await makeLeader(cluster, n1);
    const work = new SaturatingWorkload(cluster, "skewed");
    try {
      work.start();
      await work.grants(LIMIT, "under n1 (a true clock)"); // the window is full
      await makeLeader(cluster, n2);
      await work.grants(2 * LIMIT, "under n2 (3 min ahead)");
      expectProviderWindowsHold(work.grantsAtMs);
      await makeLeader(cluster, n3);
      await work.grants(2 * LIMIT, "under n3 (3 min behind)");
    } finally {
      await work.stop();
    }
    expectProviderWindowsHold(work.grantsAtMs);
  });
});
