/**
 * The cost of one limiter snapshot (what a node serialises for a periodic Raft snapshot and for `ratequeue
 * backup`) with many leases held: N leases on one concurrency-limited resource, held by 10 sessions, then the
 * snapshot taken 5 times; prints its size and the median time. The node's event loop is blocked for that long.
 *
 * Run: npx tsx scripts/bench/snapshot.ts [leases]   (default 100000)
 */
import { performance } from "node:perf_hooks";
import { Limiter } from "@ratequeue/limiter";

if (process.argv.includes("--help")) {
  console.log("usage: npx tsx scripts/bench/snapshot.ts [leases]\nTimes Limiter.snapshot() with that many leases held (default 100000).");
  process.exit(0);
}
const leases = Number(process.argv[2] ?? 100_000);
if (!Number.isSafeInteger(leases) || leases < 1) {
  console.error(`leases must be a positive integer, got ${process.argv[2]}`);
  process.exit(2);
}
const limiter = new Limiter();
let at = 1;
const SESSIONS = 10;
limiter.apply({ type: "putResource", name: "r", config: { limits: [{ kind: "concurrency", limit: leases * 2 }] }, at });
for (let s = 0; s < SESSIONS; s++) limiter.apply({ type: "openSession", sessionId: `s${s}`, ttlMs: 3_600_000, at });
for (let i = 0; i < leases; i++) {
  limiter.apply({ type: "acquire", sessionId: `s${i % SESSIONS}`, requestId: `q${i}`, resource: "r", timeoutMs: 0, at });
  if (i % 1_000 === 999) at++;
}
const times: number[] = [];
let bytes = 0;
for (let k = 0; k < 5; k++) {
  const started = performance.now();
  bytes = limiter.snapshot().length;
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
console.log(`${leases} leases held: snapshot ${(bytes / 1e6).toFixed(1)} MB, median ${times[2]!.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[4]!.toFixed(0)})`);
