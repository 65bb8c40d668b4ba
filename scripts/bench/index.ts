/**
 * Every benchmark behind one command. Writes BENCHMARKS.md (figures, the
 * machine, the commands) and bench-chart.svg (RateQueue next to the Redis
 * limiters, measured in the same run). Sections of BENCHMARKS.md that this
 * script does not write (measurements run alone, with their own command and
 * conditions: fidelity, profiles, scale) are kept where they are.
 *
 *   pnpm bench            (= npx tsx --conditions=source scripts/bench/index.ts)
 *   pnpm bench --quick    (shorter runs, for a smoke check)
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { runProtocolBench, type CodecBenchRow } from "@ratequeue/protocol/testing";
import { runClusterBench, type ClusterBenchResult } from "./cluster.js";
import { formatFailoverTable, runFailoverBench, type FailoverBenchResult } from "./failover.js";
import { formatCompareTable, runCompareBench, type CompareRow } from "./compare.js";
import { runLimiterBench, type LimiterBenchResult } from "./limiter.js";
import { runRaftBench, type RaftBenchResult } from "./raft.js";
import { mergeSections } from "./sections.js";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, help: { type: "boolean" }, out: { type: "string" } }, strict: true });
if (values.help === true) {
  process.stdout.write("usage: pnpm bench [--quick] [--out BENCHMARKS.md]\nRuns the limiter, raft, protocol, cluster, failover and comparison benchmarks.\n");
  process.exit(0);
}
const quick = values.quick === true;
const out = values.out ?? "BENCHMARKS.md";
const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

const machine = {
  cpu: cpus()[0]?.model.trim() ?? "unknown",
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  freeGiB: Math.round(freemem() / 2 ** 30),
  node: process.version,
  loadAtStart: loadavg().map((l) => l.toFixed(2)).join(" "),
  date: new Date().toISOString(),
};
const started = Date.now();

log("1/6 limiter state machine");
const limiter: LimiterBenchResult = await runLimiterBench(quick ? { runs: 2 } : {});
log("2/6 raft core (3 nodes in memory)");
const raft: RaftBenchResult = runRaftBench(quick ? { runs: 2 } : {});
log("3/6 wire protocol codecs");
const protocol: CodecBenchRow[] = runProtocolBench(quick ? { runs: 3 } : {});
log("4/6 cluster (3 node processes, fsync on)");
const cluster: ClusterBenchResult = await runClusterBench({ ...(quick ? { runs: 1, seconds: 2 } : {}), log });
log("5/6 failover: SIGTERM, kill -9, rolling restart, SIGSTOP of the leader under 16 SDK loops");
const failover: FailoverBenchResult = await runFailoverBench({ ...(quick ? { events: 1 } : {}), log });
log("6/6 RateQueue vs rate-limiter-flexible and bottleneck on Redis");
const compare: CompareRow[] = await runCompareBench({ ...(quick ? { runs: 1, seconds: 2 } : {}), log });

const f = (n: number, digits = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const md = `# Benchmarks

Written by \`pnpm bench\` (${quick ? "quick mode" : "full run"}) on ${machine.date}, in ${f((Date.now() - started) / 1000)} s.

**Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB (${machine.freeGiB} GiB free), Node.js ${machine.node},
load average at start ${machine.loadAtStart}. These machines are shared: treat single figures as indications and
compare figures measured in the same run.

![RateQueue next to Redis-backed limiters](bench-chart.svg)

## RateQueue next to the Redis-backed limiters (same run, same load)

\`npx tsx --conditions=source scripts/bench/compare.ts\`: 4 worker processes x 16 concurrent loops each, per contender;
runs interleaved; medians over ${compare[0]?.runs ?? 0} runs.

${formatCompareTable(compare)}

What differs: a RateQueue grant is agreed by a majority of three nodes and fsynced before the client hears of it,
and the release is a second replicated, fsynced entry (the SDK's callback form returns once the release is sent; the
release reaches the cluster before the loop's next acquire); it also queues and wakes waiters in order, settles real usage
and survives a node failure. The handle form (\`ratequeue-handle\`) awaits the release's answer before the next acquire.
\`rlf-wiring\` is what a team would build on Redis for the same quota: a concurrency slot as a counter (INCR), then
\`consume()\` on an RPM and a TPM limiter, and a DECR as the release. rate-limiter-flexible's \`consume()\` alone is one
Redis command with no queue, no concurrency slot and no durability beyond Redis's own (no fsync); bottleneck's
clustering mode keeps its state in the same single Redis.

## Cluster (\`npx tsx --conditions=source scripts/bench/cluster.ts\`)

Three real node processes on loopback, fsync on, ${cluster.runs} run(s) of ${cluster.seconds} s per phase.

| phase | grants/s | acquire p50 | acquire p99 |
| --- | ---: | ---: | ---: |
| one client, one request at a time | ${f(cluster.serial.grantsPerSecond)} | ${f(cluster.serial.p50Ms, 2)} ms | ${f(cluster.serial.p99Ms, 2)} ms |
| ${cluster.loops} loops over ${cluster.connections} connections | ${f(cluster.concurrent.grantsPerSecond)} | ${f(cluster.concurrent.p50Ms, 2)} ms | ${f(cluster.concurrent.p99Ms, 2)} ms |

Failover: kill -9 of the leader to the next grant, median ${Number.isFinite(cluster.failoverMs) ? `${f(cluster.failoverMs)} ms` : "not measured"}
(election timeout: 10 ticks of 50 ms = 500-1000 ms; the target is under two election timeouts).

## Failover as a worker sees it (\`npx tsx --conditions=source scripts/bench/failover.ts\`)

Three node processes, default timing (election timeout ${failover.electionTimeoutMs}-${2 * failover.electionTimeoutMs} ms), ${failover.loops} SDK loops
acquiring and releasing without pause. The pause of an event is the longest gap between two consecutive grants from
the event until the node is back and caught up; ${failover.events} event(s) per phase. A SIGTERM is a planned stop: the leader
hands leadership over and names its successor to its clients before it exits. Targets: SIGTERM and each step of a
rolling restart at most 50 ms with no failed acquire; kill -9 median at most one election timeout.

${formatFailoverTable(failover)}

Spurious elections: terms started beyond the one each leader change needs (a follower's restart needs none).

## Limiter state machine (\`npx tsx --conditions=source scripts/bench/limiter.ts\`)

One resource with an RPM and a TPM sliding window and a concurrency limit; acquire+release pairs per CPU-second,
median of ${limiter.runs} runs (wall-clock pairs/s in brackets).

| scenario | pairs/s |
| --- | ---: |
| uncontended | ${f(limiter.uncontendedPairsPerSec)} (${f(limiter.wall.uncontended)}) |
| sliding windows holding ~120,000 grants | ${f(limiter.fullWindow120kPairsPerSec)} (${f(limiter.wall.fullWindow120k)}) |
| 10 waiters queued | ${f(limiter.contended10PairsPerSec)} (${f(limiter.wall.contended10)}) |
| 100,000 waiters queued | ${f(limiter.contended100kPairsPerSec)} (${f(limiter.wall.contended100k)}) |

Slowdown from 10 to 100,000 waiters: ${f(limiter.slowdownAt100k, 2)}x (target: at most 2x).

## Raft core (\`npx tsx --conditions=source scripts/bench/raft.ts\`)

Three RawNodes in one process, messages delivered in memory, ${f(raft.proposals)} proposals per run, median of ${raft.runs} runs.

| mode | µs per committed proposal |
| --- | ---: |
| one by one | ${f(raft.oneByOneUsPerProposal, 2)} |
| batches of 64 | ${f(raft.batch64UsPerProposal, 2)} |

(etcd's raft publishes 5.9 µs per proposal for 3 nodes in memory.)

## Wire protocol (\`npx tsx packages/protocol/src/codec.bench.ts\`)

| frame | codec | bytes/message | encode ns | decode ns |
| --- | --- | ---: | ---: | ---: |
${protocol.map((r) => `| ${r.frame} | ${r.codec} | ${f(r.bytesPerMessage)} | ${f(r.encodeNs)} | ${f(r.decodeNs)} |`).join("\n")}
`;
writeFileSync(out, existsSync(out) ? mergeSections(readFileSync(out, "utf8"), md) : md);
writeFileSync("bench-chart.svg", chart(compare, cluster));
log(`wrote ${out} and bench-chart.svg`);
process.stdout.write(md);

/** Two panels: operations per second, and acquire latency p50/p99, one bar group per contender. */
function chart(rows: readonly CompareRow[], c: ClusterBenchResult): string {
  const width = 760;
  const height = 300;
  const colors: Record<string, string> = {
    ratequeue: "#2563eb",
    "ratequeue-handle": "#60a5fa",
    "rlf-wiring": "#991b1b",
    "rate-limiter-flexible": "#dc2626",
    bottleneck: "#d97706",
  };
  type Bar = { label: string; value: number; color: string; text: string; group?: string };
  const panel = (x0: number, title: string, values: Bar[], unit: string): string => {
    const w = 340;
    const max = Math.max(...values.map((v) => v.value), 1e-9);
    const barW = Math.min(60, (w - 40) / values.length - 10);
    const bars = values
      .map((v, i) => {
        const h = (v.value / max) * 180;
        const x = x0 + 30 + i * (barW + 10);
        const y = 240 - h;
        return `<rect x="${x}" y="${y.toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${v.color}"/>` +
          `<text x="${x + barW / 2}" y="${(y - 4).toFixed(1)}" font-size="10" text-anchor="middle">${v.text}</text>` +
          `<text x="${x + barW / 2}" y="256" font-size="9" text-anchor="middle">${v.label}</text>` +
          (v.group === undefined ? "" : `<text x="${x + barW + 5}" y="270" font-size="9" text-anchor="middle">${v.group}</text>`);
      })
      .join("");
    return `<text x="${x0 + 10}" y="30" font-size="13" font-weight="bold">${title}</text>` +
      `<text x="${x0 + 10}" y="46" font-size="10" fill="#555">${unit}</text>` +
      `<line x1="${x0 + 25}" y1="240" x2="${x0 + w}" y2="240" stroke="#999"/>` + bars;
  };
  const shortNames: Record<string, string> = {
    ratequeue: "RateQueue fn",
    "ratequeue-handle": "RateQueue handle",
    "rlf-wiring": "rlf wiring",
    "rate-limiter-flexible": "rlf consume",
    bottleneck: "bottleneck",
  };
  const short = (name: string): string => shortNames[name] ?? name;
  const ops = rows.map((r) => ({ label: short(r.contender), value: r.opsPerSec, color: colors[r.contender]!, text: f(r.opsPerSec) }));
  const lat: Bar[] = rows.flatMap((r) => [
    { label: "p50", value: r.p50Ms, color: colors[r.contender]!, text: f(r.p50Ms, 2), group: short(r.contender) },
    { label: "p99", value: r.p99Ms, color: colors[r.contender]!, text: f(r.p99Ms, 1) },
  ]);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    panel(0, "Operations per second (higher is better)", ops, "same processes, loops and duration for each") +
    panel(390, "Acquire latency (lower is better)", lat, "milliseconds, p50 and p99") +
    `<text x="10" y="292" font-size="9" fill="#555">RateQueue: 3 nodes, Raft, fsync on; cluster alone: ${f(c.concurrent.grantsPerSecond)} grants/s, p50 ${f(c.concurrent.p50Ms, 2)} ms. ${machine.cores} cores, ${machine.date.slice(0, 10)}.</text>` +
    `</svg>\n`;
}
