/**
 * Cluster benchmark: a real three-node cluster (`ratequeue start` processes on
 * loopback, LevelDB with fsync on), driven over the client protocol.
 *
 * - serial: one loop, acquire then release, one at a time: the uncontended
 *   acquire latency (each acquire is one replicated, synced log entry).
 * - concurrent: `loops` loops spread over `connections` connections, acquire
 *   then release: grants per second and acquire latency under load.
 * - failover: one loop runs; the leader is killed with SIGKILL; the time from
 *   the kill to the next grant (the client reconnects to the new leader,
 *   resuming its session, and resends). Target: under two election timeouts
 *   (2 x 10 ticks x 50 ms = 1 s).
 *
 * Latency figures are medians over runs of each run's percentile; nothing is
 * asserted (shared, noisy machines).
 *
 *   npx tsx --conditions=source scripts/bench/cluster.ts [--seconds 3] [--runs 3] [--loops 32] [--connections 4] [--failovers 3] [--cpu-prof DIR]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
// ws and the protocol package resolve from test/ (the workspace package that depends on them), hence these imports.
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "../../test/cluster/harness.js";
import { LeanClient } from "../../test/cluster/lean-client.js";
import { LevelStore } from "@ratequeue/node/testing";

export interface ClusterBenchOptions {
  /** Seconds each measured phase runs. */
  readonly seconds?: number;
  /** Runs per phase (a fresh cluster each run); medians are reported. */
  readonly runs?: number;
  /** Concurrent acquire/release loops in the concurrent phase. */
  readonly loops?: number;
  /** Client connections the concurrent loops share. */
  readonly connections?: number;
  /** Leader kills measured per run. */
  readonly failovers?: number;
  /** Write a V8 CPU profile of every node process into this folder. */
  readonly cpuProfileDir?: string;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface PhaseFigures {
  readonly grantsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ClusterBenchResult {
  readonly name: "cluster";
  readonly runs: number;
  readonly seconds: number;
  readonly loops: number;
  readonly connections: number;
  readonly serial: PhaseFigures;
  readonly concurrent: PhaseFigures;
  /** Median ms from kill -9 of the leader to the next grant, and every sample. */
  readonly failoverMs: number;
  /**
   * The floor under every grant, for context: median and p99 ms of one synced log write (the node's own
   * LevelStore, one small entry), measured before each run on the same disk. A grant needs one on the leader and
   * one on a follower, in parallel.
   */
  readonly syncWriteP50Ms: number;
  readonly syncWriteP99Ms: number;
  readonly samples: { readonly serial: PhaseFigures[]; readonly concurrent: PhaseFigures[]; readonly failoverMs: number[] };
}

const RESOURCE = "bench";

export async function runClusterBench(options: ClusterBenchOptions = {}): Promise<ClusterBenchResult> {
  const seconds = options.seconds ?? 3;
  const runs = options.runs ?? 3;
  const loops = options.loops ?? 32;
  const connections = options.connections ?? 4;
  const failovers = options.failovers ?? 3;
  const log = options.log ?? (() => undefined);
  const serial: PhaseFigures[] = [];
  const concurrent: PhaseFigures[] = [];
  const failoverMs: number[] = [];
  const syncWrites: PhaseFigures[] = [];

  for (let run = 0; run < runs; run++) {
    syncWrites.push(await syncWriteLatency(200));
    log(`run ${run + 1}: one synced log write p50 ${syncWrites.at(-1)!.p50Ms.toFixed(2)} ms, p99 ${syncWrites.at(-1)!.p99Ms.toFixed(2)} ms`);
    const cluster = await Cluster.start({
      resources: { [RESOURCE]: { limits: [{ kind: "concurrency", limit: 1_000_000 }] } },
      // Info logs cost a write per connection event, not per request: left on, as in production.
      ...(options.cpuProfileDir === undefined ? {} : { execArgv: ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`] }),
    });
    try {
      await warmUp(cluster);
      serial.push(await acquireReleaseLoops(cluster, { loops: 1, connections: 1, seconds }));
      log(`run ${run + 1}: serial ${format(serial.at(-1)!)}`);
      concurrent.push(await acquireReleaseLoops(cluster, { loops, connections, seconds }));
      log(`run ${run + 1}: ${loops} loops / ${connections} connections ${format(concurrent.at(-1)!)}`);
      for (let i = 0; i < failovers; i++) {
        failoverMs.push(await killLeaderToNextGrant(cluster));
        log(`run ${run + 1}: kill -9 of the leader to the next grant ${failoverMs.at(-1)!.toFixed(0)} ms`);
      }
    } finally {
      // SIGTERM lets a profiled node write its profile; the harness then SIGKILLs whatever is left.
      if (options.cpuProfileDir !== undefined) await Promise.all(cluster.nodes.map((n) => n.kill("SIGTERM")));
      await cluster.stop();
    }
  }
  const med = (xs: PhaseFigures[]): PhaseFigures => ({
    grantsPerSecond: median(xs.map((x) => x.grantsPerSecond)),
    p50Ms: median(xs.map((x) => x.p50Ms)),
    p99Ms: median(xs.map((x) => x.p99Ms)),
  });
  return {
    name: "cluster",
    runs,
    seconds,
    loops,
    connections,
    serial: med(serial),
    concurrent: med(concurrent),
    failoverMs: median(failoverMs),
    syncWriteP50Ms: median(syncWrites.map((x) => x.p50Ms)),
    syncWriteP99Ms: median(syncWrites.map((x) => x.p99Ms)),
    samples: { serial, concurrent, failoverMs },
  };
}

// ---------------------------------------------------------------------------

/** Latency of `count` synced one-entry writes through the node's LevelStore in a fresh folder. */
async function syncWriteLatency(count: number): Promise<PhaseFigures> {
  const dir = await mkdtemp(join(tmpdir(), "rq-bench-sync-"));
  const store = new LevelStore({ path: dir, nodeId: "bench" });
  try {
    await store.load();
    const data = new Uint8Array(64);
    const latenciesMs: number[] = [];
    for (let index = 1; index <= count; index++) {
      const t0 = performance.now();
      await store.write({ entries: [{ index, term: 1, type: "normal", data }], hardState: { term: 1, vote: null, commit: index - 1 }, sync: true });
      latenciesMs.push(performance.now() - t0);
    }
    latenciesMs.sort((a, b) => a - b);
    return { grantsPerSecond: 0, p50Ms: percentile(latenciesMs, 0.5), p99Ms: percentile(latenciesMs, 0.99) };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function warmUp(cluster: Cluster): Promise<void> {
  await acquireReleaseLoops(cluster, { loops: 4, connections: 1, seconds: 0.5 });
}

/**
 * `loops` acquire+release loops over `connections` connections for `seconds`: grants per second and acquire latency.
 * Each acquire names the next of `resources` (default: this bench's one resource) and carries `load` if given.
 */
export async function acquireReleaseLoops(
  cluster: Cluster,
  options: { loops: number; connections: number; seconds: number; resources?: readonly string[]; load?: Record<string, number> },
): Promise<PhaseFigures> {
  const clients = await Promise.all(Array.from({ length: options.connections }, () => LeanClient.connect(cluster.urls, ADMIN_KEY, undefined, 120_000)));
  const resources = options.resources ?? [RESOURCE];
  const load = options.load === undefined ? {} : { load: options.load };
  const latenciesMs: number[] = [];
  let grants = 0;
  let pick = 0;
  const started = performance.now();
  const endAt = started + options.seconds * 1000;
  const loop = async (client: LeanClient): Promise<void> => {
    while (performance.now() < endAt) {
      // A fixed stride through the resources: every loop touches many, none is hot.
      pick = (pick + 7919) % resources.length;
      const resource = resources[pick]!;
      const t0 = performance.now();
      const g = await client.request((requestId) => ({ type: "acquire", requestId, resource, ...load }));
      if (g.type !== "granted") throw new Error(`expected a grant, got ${JSON.stringify(g)}`);
      latenciesMs.push(performance.now() - t0);
      grants++;
      const r = await client.request((requestId) => ({ type: "release", requestId, leaseId: g.lease.id }));
      if (r.type !== "ack") throw new Error(`expected an ack, got ${JSON.stringify(r)}`);
    }
  };
  await Promise.all(Array.from({ length: options.loops }, (_, i) => loop(clients[i % clients.length]!)));
  const elapsedS = (performance.now() - started) / 1000;
  for (const c of clients) c.close();
  latenciesMs.sort((a, b) => a - b);
  return { grantsPerSecond: grants / elapsedS, p50Ms: percentile(latenciesMs, 0.5), p99Ms: percentile(latenciesMs, 0.99) };
}

/** Kills the leader while a client is connected to it; ms from the kill to the client's next grant. */
async function killLeaderToNextGrant(cluster: Cluster): Promise<number> {
  const leader = await cluster.waitForLeader();
  await waitForAllCaughtUp(cluster, leader);
  const client = await LeanClient.connect([leader.url], ADMIN_KEY);
  const g = await client.request((requestId) => ({ type: "acquire", requestId, resource: RESOURCE }));
  if (g.type !== "granted") throw new Error("no grant before the kill");
  const killedAt = performance.now();
  await leader.kill("SIGKILL");
  await client.closed;
  // What the SDK does: reconnect to the new leader resuming the session, send the next acquire.
  const resumed = await LeanClient.connect(cluster.urls, ADMIN_KEY, client.sessionId);
  // A new request id in the resumed session (id 1 is the grant above: reusing it would answer that grant again).
  const next = await resumed.request((requestId) => ({ type: "acquire", requestId, resource: RESOURCE }), 2);
  const ms = performance.now() - killedAt;
  if (next.type !== "granted") throw new Error(`expected a grant after failover, got ${JSON.stringify(next)}`);
  resumed.close();
  leader.start();
  await waitForAllCaughtUp(cluster, await cluster.waitForLeader());
  return ms;
}

async function waitForAllCaughtUp(cluster: Cluster, leader: NodeProcess): Promise<void> {
  const target = (await leader.status())!.commitIndex;
  for (const n of cluster.nodes) {
    await waitFor(async () => {
      const s = await n.status();
      return s !== null && s.leader === leader.id && s.appliedIndex >= target;
    }, { timeoutMs: 30_000, what: `${n.id} to catch up` });
  }
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function format(f: PhaseFigures): string {
  return `${f.grantsPerSecond.toFixed(0)} grants/s, acquire p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      runs: { type: "string" },
      loops: { type: "string" },
      connections: { type: "string" },
      failovers: { type: "string" },
      "cpu-prof": { type: "string" },
    },
  });
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const result = await runClusterBench({
    ...(values.seconds === undefined ? {} : { seconds: num(values.seconds)! }),
    ...(values.runs === undefined ? {} : { runs: num(values.runs)! }),
    ...(values.loops === undefined ? {} : { loops: num(values.loops)! }),
    ...(values.connections === undefined ? {} : { connections: num(values.connections)! }),
    ...(values.failovers === undefined ? {} : { failovers: num(values.failovers)! }),
    ...(values["cpu-prof"] === undefined ? {} : { cpuProfileDir: values["cpu-prof"] }),
    log: (line) => console.error(line),
  });
  console.log(`cluster: 3 nodes on loopback, fsync on; ${result.runs} runs x ${result.seconds} s per phase (medians)`);
  console.log("| phase | grants/s | acquire p50 | acquire p99 |");
  console.log("| --- | ---: | ---: | ---: |");
  console.log(`| serial (1 loop) | ${result.serial.grantsPerSecond.toFixed(0)} | ${result.serial.p50Ms.toFixed(2)} ms | ${result.serial.p99Ms.toFixed(2)} ms |`);
  console.log(
    `| ${result.loops} loops / ${result.connections} connections | ${result.concurrent.grantsPerSecond.toFixed(0)} | ${result.concurrent.p50Ms.toFixed(2)} ms | ${result.concurrent.p99Ms.toFixed(2)} ms |`,
  );
  console.log(`| (floor) one synced log write on this disk | | ${result.syncWriteP50Ms.toFixed(2)} ms | ${result.syncWriteP99Ms.toFixed(2)} ms |`);
  if (result.samples.failoverMs.length > 0) {
    const n = result.samples.failoverMs.length;
    console.log(`| kill -9 of the leader to the next grant | | ${result.failoverMs.toFixed(0)} ms (median of ${n}) | max ${Math.max(...result.samples.failoverMs).toFixed(0)} ms |`);
  }
}
