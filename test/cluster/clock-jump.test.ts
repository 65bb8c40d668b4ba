// A leader whose wall clock jumps while it leads (an NTP step, a VM resumed): 10 minutes forward, then 20 minutes
// back, by libfaketime reading its offset from a file the test rewrites. No window of true time holds more than the
// limit and no limit stays frozen (SPEC guarantee 6; issue #18). On stamps taken from the wall clock, the jump
// forward grants a whole new window at once and the jump back freezes the limit for 10 minutes.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./harness.js";
import { expectProviderWindowsHold, faketimeFromFile, LIMIT, makeLeader, RESOURCE, SaturatingWorkload, waitForClockOffset } from "./clock-workload.js";

describe("a wall clock that jumps while its node leads", () => {
  let cluster: Cluster;
  let dir: string;
  let clockFile: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rq-faketime-"));
    clockFile = join(dir, "offset");
    await writeFile(clockFile, "+0\n");
    cluster = await Cluster.start({ resources: { jumpy: RESOURCE }, launch: { n1: faketimeFromFile(clockFile) } });
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("jumps 10 min forward, then 20 min back: no true window over the limit, no frozen limit", async () => {
    const [n1, n2] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    await makeLeader(cluster, n1);
    const { term } = (await n1.status())!;
    const work = new SaturatingWorkload(cluster, "jumpy");
    try {
      work.start();
      await work.grants(LIMIT, "before the jump"); // the window is full
      await writeFile(clockFile, "+10m\n");
      // n2 measures the jump over its peer link (proof that n1's wall clock moved), while the workload goes on.
      await waitForClockOffset(n2, "n1", (ms) => ms > 590_000 && ms < 610_000, "jump 10 min ahead");
      await work.grants(2 * LIMIT, "after the jump forward");
      expectProviderWindowsHold(work.grantsAtMs);
      await writeFile(clockFile, "-10m\n");
      await waitForClockOffset(n2, "n1", (ms) => ms < -590_000 && ms > -610_000, "jump back to 10 min behind");
      await work.grants(2 * LIMIT, "after the jump back");
    } finally {
      await work.stop();
    }
    expectProviderWindowsHold(work.grantsAtMs);
    // All of it under one leader: the jumps happened while n1 led.
    const after = (await n1.status())!;
    expect([after.role, after.term]).toEqual(["leader", term]);
  });
});
