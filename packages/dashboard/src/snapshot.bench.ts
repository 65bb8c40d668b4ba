/**
 * Cost of one push: build the shared snapshot for N resources (300-second grant series each), cut it for an
 * admin viewer and serialize it. Prints medians. Run: npx tsx packages/dashboard/src/snapshot.bench.ts
 */
import { GrantHistory } from "./grant-history.js";
import { buildShared, forViewer, type ResourceViewLike } from "./snapshot.js";

function views(count: number): ResourceViewLike[] {
  const rate = { kind: "rate", limit: 1_000, windowMs: 60_000, window: "sliding", reserved: {} } as const;
  const conc = { kind: "concurrency", limit: 10, reserved: {} } as const;
  return Array.from({ length: count }, (_, i) => ({
    name: `resource-${i}`,
    config: { limits: [rate, conc], lanes: [], lanePolicy: "shared", defaultLane: null },
    usage: [
      { config: rate, used: 500 },
      { config: conc, used: 3 },
    ],
    leasesHeld: 3,
    queued: { default: 2 },
    cooldownUntil: null,
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

for (const count of [1, 20, 200]) {
  const history = new GrantHistory();
  const nowMs = 1_000_000;
  for (let i = 0; i < count; i++) for (let t = 0; t < 300; t++) history.record(`resource-${i}`, nowMs - t * 1_000, 1 + (t % 7));
  const vs = views(count);
  const samplesMs: number[] = [];
  let bytes = 0;
  for (let run = 0; run < 60; run++) {
    const start = performance.now();
    const shared = buildShared({ nodeId: "n1", nowMs, polled: [], views: vs, history });
    bytes = JSON.stringify(forViewer(shared, "admin")).length;
    samplesMs.push(performance.now() - start);
  }
  console.log(`${String(count).padStart(4)} resources: median ${median(samplesMs.slice(10)).toFixed(3)} ms per push, ${(bytes / 1024).toFixed(1)} KiB`);
}
