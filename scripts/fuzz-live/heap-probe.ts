/**
 * Investigation tool (not a test): runs the fuzz-live rounds against a cluster whose nodes run with --inspect, and
 * after each round forces a full GC in the leader through the inspector and prints its heap after GC, its RSS,
 * its active handles, and (with --snapshots DIR) writes a heap snapshot per round for diffing with heap-diff.ts.
 *
 *   npx tsx scripts/fuzz-live/heap-probe.ts [--rounds 4] [--snapshots /tmp/rq-heap] [--only slowReaders,...] [--probe follower]
 *
 * --only takes attack names: badFrames, oversizedFrames, connectionFlood, halfOpenSockets, slowReaders, garbage.
 * --probe follower measures a follower instead of the leader (the attacks still hit the leader).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep, waitFor } from "../../test/cluster/harness.js";
import { Inspector, inspectorUrl } from "@ratequeue/testkit";
import { badFrames, connectionFlood, garbageAndPeerProbes, halfOpenSockets, oversizedFrames, slowReaders } from "../../test/fuzz-live/attacks.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
};
const ROUNDS = Number(arg("rounds") ?? 4);
const SNAPSHOTS = arg("snapshots");
const ONLY = arg("only")?.split(",");
const SEED = Number(arg("seed") ?? 1234);
const SETTLE_MS = Number(arg("settle") ?? 3_000);
const PROBE_FOLLOWER = arg("probe") === "follower";

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.replace(/\D+/g, "")) / 1024;
}

async function main(): Promise<void> {
  if (SNAPSHOTS !== undefined) mkdirSync(SNAPSHOTS, { recursive: true });
  const cluster = await Cluster.start({
    sessionTtlMs: 2_000,
    snapshotEntries: 100_000_000,
    execArgv: ["--inspect=127.0.0.1:0"],
    resources: {
      good: { limits: [{ kind: "concurrency", limit: 4 }, { kind: "rate", limit: 100_000, windowMs: 1_000 }] },
      target: { limits: [{ kind: "concurrency", limit: 2 }, { kind: "load", limit: 5_000, windowMs: 60_000 }] },
    },
  });
  try {
    const leader = await cluster.waitForLeader();
    const probed = PROBE_FOLLOWER ? cluster.nodes.find((n) => n !== leader)! : leader;
    const insp = await Inspector.connect(inspectorUrl(probed.output));
    const key = await cluster.admin("POST", "/v1/keys", { name: "fuzzer", scope: { acquire: ["target"] } });
    const target = { host: "127.0.0.1", port: leader.port, fuzzKey: key.json.secret as string };
    const good = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY, clientName: "well-behaved" });
    let stop = false;
    let grants = 0;
    const loop = (async () => {
      while (!stop) {
        try {
          {
            await using _lease = await good.acquire("good", { load: 1, timeoutMs: 10_000 });
            grants++;
          }
          await sleep(20);
        } catch {
          await sleep(50);
        }
      }
    })();
    await waitFor(() => grants >= 20, { what: "first grants", timeoutMs: 30_000 });
    const measure = async (label: string): Promise<void> => {
      const probe = await insp.heapAfterGc();
      const status = await probed.status();
      console.log(JSON.stringify({ label, node: `${probed.id} (${status?.role})`, rssProcMb: +rssMb(probed.proc!.pid!).toFixed(1), lastIndex: status?.lastIndex, sessions: status?.sessions, grants, ...probe }));
      if (SNAPSHOTS !== undefined) await insp.writeHeapSnapshot(`${SNAPSHOTS}/${label}.heapsnapshot`);
    };
    await measure("r0");
    const want = (name: string): boolean => ONLY === undefined || ONLY.includes(name);
    for (let round = 1; round <= ROUNDS; round++) {
      const seed = SEED + round * 7;
      if (want("badFrames")) await badFrames(target, { count: 300, seed });
      if (want("oversizedFrames")) await oversizedFrames(target, { count: 20 });
      if (want("connectionFlood")) await connectionFlood(target, { connections: 1_000, holdMs: 3_000 });
      if (want("halfOpenSockets")) await halfOpenSockets(target, { sockets: 300, holdMs: 4_000 });
      if (want("slowReaders")) await slowReaders(target, { readers: 3, frames: 1_000, messagesPerFrame: 200, gapMs: 3 });
      if (want("garbage")) await garbageAndPeerProbes(target, { count: 50, seed: seed + 1 });
      await sleep(SETTLE_MS);
      await measure(`r${round}`);
    }
    stop = true;
    await loop;
    await good.close();
    insp.close();
  } finally {
    await cluster.stop();
  }
}

await main();
