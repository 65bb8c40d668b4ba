/**
 * Where the time goes: a real three-node cluster (`ratequeue start` processes, LevelDB with fsync) under an SDK
 * load in the handle form (`acquire`, then an awaited `release`), `--loops` loops in each of `--processes`
 * worker processes. Every node and worker is started with scripts/bench/probe.mjs preloaded; SIGUSR2 opens and
 * closes one measurement window in all of them at once, around the measured load.
 *
 * Reported per process (leader, followers, each client): CPU microseconds per grant+release (process.cpuUsage
 * delta over the window / grants in the window), event-loop utilisation and delay (perf_hooks), on the nodes the
 * time in synced LevelDB batches per batch and per log entry, and with --profile the top self-time functions from
 * a V8 CPU profile of the same window (the .cpuprofile files are kept in --out for Chrome DevTools / speedscope).
 *
 * Per-grant CPU is the figure to compare across runs: on a shared machine wall-clock rates move with the load.
 *
 *   npx tsx --conditions=source scripts/bench/profile.ts [--seconds 5] [--processes 2] [--loops 32] [--profile] [--out DIR] [--top 12]
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ADMIN_KEY, Cluster, waitFor, type NodeProcess } from "../../test/cluster/harness.js";

const SELF = fileURLToPath(import.meta.url);
const PROBE = fileURLToPath(new URL("./probe.mjs", import.meta.url));
const RESOURCE = "bench";
const USAGE =
  "usage: npx tsx --conditions=source scripts/bench/profile.ts [--seconds 5] [--processes 2] [--loops 32] [--profile] [--out DIR] [--top 12]\n" +
  "  --seconds    length of the measured window (default 5)\n" +
  "  --processes  SDK worker processes (default 2)\n" +
  "  --loops      concurrent acquire/release loops per worker process (default 32)\n" +
  "  --profile    also take a V8 CPU profile of every process over the window and list top self-time functions\n" +
  "  --out DIR    where the per-process .json and .cpuprofile files go (default: a new temporary folder)\n" +
  "  --top N      functions listed per process (default 12)\n";

/** What probe.mjs writes for one process. */
interface ProbeResult {
  pid: number;
  argv: string;
  wallMs: number;
  userUs: number;
  systemUs: number;
  eventLoopUtilization: number;
  eventLoopDelayMs: { mean: number; p50: number; p99: number; max: number };
  disk: { batches: number; syncBatches: number; syncOps: number; syncMs: number; syncMaxMs: number };
}

interface WorkerResult {
  count: number;
  latenciesMs: number[];
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

// ---------------------------------------------------------------------------
// Orchestrator

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      processes: { type: "string" },
      loops: { type: "string" },
      profile: { type: "boolean" },
      out: { type: "string" },
      top: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const seconds = Number(values.seconds ?? 5);
  const processes = Number(values.processes ?? 2);
  const loops = Number(values.loops ?? 32);
  const top = Number(values.top ?? 12);
  const profile = values.profile === true;
  for (const [name, v] of Object.entries({ seconds, processes, loops, top })) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  }
  const out = values.out ?? (await mkdtemp(join(tmpdir(), "rq-profile-")));
  await mkdir(out, { recursive: true });
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const loadAtStart = loadavg().map((x) => x.toFixed(2)).join(" ");

  // Inherited by the nodes and the workers: where probe.mjs writes, and whether it profiles.
  process.env.RQ_PROBE_DIR = out;
  process.env.RQ_PROBE_PROFILE = profile ? "1" : "0";
  const cluster = await Cluster.start({
    resources: {
      [RESOURCE]: {
        limits: [
          { kind: "rate", limit: 1_000_000_000, windowMs: 60_000 },
          { kind: "load", limit: 1_000_000_000, windowMs: 60_000 },
          { kind: "concurrency", limit: 1_000_000 },
        ],
      },
    },
    execArgv: ["--import", PROBE],
  });
  const workers: ChildProcess[] = [];
  try {
    const leader = await cluster.waitForLeader();
    const followers = cluster.nodes.filter((n) => n !== leader);
    log(`leader ${leader.id} (pid ${leader.proc!.pid}); starting ${processes} worker processes x ${loops} loops`);
    const ready: Promise<void>[] = [];
    const results: Promise<WorkerResult>[] = [];
    for (let i = 0; i < processes; i++) {
      const child = fork(SELF, ["--worker", String(i), "--loops", String(loops)], {
        env: { ...process.env, RQ_BENCH_URLS: cluster.nodes.map((n) => n.url).join(","), RQ_BENCH_KEY: ADMIN_KEY },
        execArgv: ["--conditions=source", "--import", "tsx", "--import", PROBE],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      workers.push(child);
      ready.push(new Promise((resolve) => child.once("message", () => resolve())));
      results.push(
        new Promise((resolve, reject) => {
          child.on("message", (m) => {
            if (typeof m === "object" && m !== null && "count" in m) resolve(m as WorkerResult);
          });
          child.once("exit", (code) => reject(new Error(`worker ${i} exited with ${code} before reporting`)));
        }),
      );
    }
    await Promise.all(ready);
    const before = await appliedIndex(leader);
    const measured = [...cluster.nodes.map((n) => n.proc!), ...workers];
    for (const p of measured) p.kill("SIGUSR2");
    const t0 = performance.now();
    for (const w of workers) w.send("go");
    await new Promise((r) => setTimeout(r, seconds * 1000));
    for (const w of workers) w.send("stop");
    const reports = await Promise.all(results);
    const wallS = (performance.now() - t0) / 1000;
    for (const p of measured) p.kill("SIGUSR2");
    const probes = new Map<number, ProbeResult>();
    for (const p of measured) {
      const file = join(out, `${p.pid}.json`);
      await waitFor(() => existsSync(file), { timeoutMs: 30_000, what: `probe output of pid ${p.pid}` });
      probes.set(p.pid!, JSON.parse(await readFile(file, "utf8")) as ProbeResult);
    }
    const entries = (await appliedIndex(leader)) - before;
    const grants = reports.reduce((a, r) => a + r.count, 0);
    const lat = reports.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);

    const rows: { role: string; pid: number }[] = [
      { role: `leader ${leader.id}`, pid: leader.proc!.pid! },
      ...followers.map((f) => ({ role: `follower ${f.id}`, pid: f.proc!.pid! })),
      ...workers.map((w, i) => ({ role: `client ${i}`, pid: w.pid! })),
    ];
    const lines: string[] = [];
    lines.push(
      `profile: 3 nodes on loopback, fsync on; SDK handle form (acquire, awaited release), ${processes} processes x ${loops} loops, ` +
        `${seconds} s window; load average at start ${loadAtStart}, at end ${loadavg().map((x) => x.toFixed(2)).join(" ")}`,
    );
    lines.push("");
    lines.push(
      `${grants} grant+release pairs in ${wallS.toFixed(2)} s = ${Math.round(grants / wallS)}/s; acquire p50 ${quantile(lat, 0.5).toFixed(2)} ms, ` +
        `p99 ${quantile(lat, 0.99).toFixed(2)} ms; ${entries} Raft entries applied (${(grants / Math.max(1, entries)).toFixed(1)} pairs per entry)`,
    );
    lines.push("");
    lines.push("| process | CPU µs per pair (user+sys) | of which sys | CPU share of window | event loop busy | loop delay p50 / p99 | synced batches/s | ms per synced batch (mean / max) | pairs per synced batch |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let total = 0;
    for (const { role, pid } of rows) {
      const p = probes.get(pid)!;
      const cpuUs = p.userUs + p.systemUs;
      total += cpuUs;
      const d = p.disk;
      const isNode = !role.startsWith("client");
      lines.push(
        `| ${role} | ${(cpuUs / grants).toFixed(1)} | ${(p.systemUs / grants).toFixed(1)} | ${((cpuUs / 1000 / p.wallMs) * 100).toFixed(0)}% | ` +
          `${(p.eventLoopUtilization * 100).toFixed(0)}% | ${p.eventLoopDelayMs.p50.toFixed(1)} / ${p.eventLoopDelayMs.p99.toFixed(1)} ms | ` +
          (isNode
            ? `${(d.syncBatches / (p.wallMs / 1000)).toFixed(0)} | ${(d.syncMs / Math.max(1, d.syncBatches)).toFixed(2)} / ${d.syncMaxMs.toFixed(1)} | ` +
              `${(grants / Math.max(1, d.syncBatches)).toFixed(1)} |`
            : "| | |"),
      );
    }
    lines.push(`| all processes | ${(total / grants).toFixed(1)} | | | | | | | |`);
    if (profile) {
      for (const { role, pid } of rows) {
        const prof = JSON.parse(await readFile(join(out, `${pid}.cpuprofile`), "utf8")) as CpuProfile;
        lines.push("", `### ${role}: top self time (${join(out, `${pid}.cpuprofile`)})`, "");
        lines.push(...formatTop(selfTimes(prof), top, grants));
      }
    }
    process.stdout.write(`${lines.join("\n")}\n`);
    log(`probe files in ${out}`);
  } finally {
    for (const w of workers) if (w.exitCode === null) w.kill("SIGKILL");
    await cluster.stop();
  }
}

async function appliedIndex(node: NodeProcess): Promise<number> {
  const s = await node.status();
  if (s === null) throw new Error(`${node.id} did not answer /v1/status`);
  return s.appliedIndex;
}

interface SelfTime {
  name: string;
  ms: number;
}

/**
 * Self time per function (name and file; the line too where it means something: tsx-compiled sources report line 1),
 * from a V8 CPU profile's samples and time deltas. Samples under probe.mjs (its own start/stop calls into the
 * inspector, one of which carries the whole start-up delay) are left out.
 */
function selfTimes(profile: CpuProfile): { rows: SelfTime[]; totalMs: number; idleMs: number } {
  const nameOf = new Map<number, string>();
  const parentOf = new Map<number, number>();
  const probeOwn = new Set<number>();
  for (const n of profile.nodes) {
    const { functionName, url, lineNumber } = n.callFrame;
    const path = url.replace(/^file:\/\//, "").replace(/^.*?\/(packages|node_modules|scripts|test)\//, "$1/");
    const file = url === "" ? "" : ` ${path}${lineNumber > 0 ? `:${lineNumber + 1}` : ""}`;
    nameOf.set(n.id, `${functionName === "" ? "(anonymous)" : functionName}${file}`);
    if (url.endsWith("probe.mjs")) probeOwn.add(n.id);
    for (const c of n.children ?? []) parentOf.set(c, n.id);
  }
  const underProbe = (id: number): boolean => {
    for (let x: number | undefined = id; x !== undefined; x = parentOf.get(x)) if (probeOwn.has(x)) return true;
    return false;
  };
  const ms = new Map<string, number>();
  let totalMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    if (underProbe(id)) continue;
    const name = nameOf.get(id) ?? "?";
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    totalMs += dt;
    ms.set(name, (ms.get(name) ?? 0) + dt);
  }
  const idleMs = ms.get("(idle)") ?? 0;
  ms.delete("(idle)");
  const rows = [...ms].map(([name, v]) => ({ name, ms: v })).sort((a, b) => b.ms - a.ms);
  return { rows, totalMs, idleMs };
}

function formatTop(t: { rows: SelfTime[]; totalMs: number; idleMs: number }, top: number, grants: number): string[] {
  const busy = t.totalMs - t.idleMs;
  const lines = [
    `idle ${((t.idleMs / t.totalMs) * 100).toFixed(0)}% of samples; shares below are of the busy ${busy.toFixed(0)} ms`,
    "",
    "| function | self ms | share of busy | µs per pair |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const r of t.rows.slice(0, top)) {
    lines.push(`| \`${r.name}\` | ${r.ms.toFixed(0)} | ${((r.ms / busy) * 100).toFixed(1)}% | ${((r.ms * 1000) / grants).toFixed(2)} |`);
  }
  return lines;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

// ---------------------------------------------------------------------------
// Worker: one SDK client, `loops` handle-form loops between "go" and "stop".

async function worker(index: number, loops: number): Promise<void> {
  const { RateQueue } = await import("@ratequeue/sdk");
  const rq = new RateQueue({ url: process.env.RQ_BENCH_URLS!, apiKey: process.env.RQ_BENCH_KEY, clientName: `profile-${index}` });
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const lease = await rq.acquire(RESOURCE, { load: 1 });
    const ms = performance.now() - t0;
    await lease.release();
    return ms;
  };
  for (let i = 0; i < 200; i++) await once();
  let stop = false;
  const go = new Promise<void>((resolve) =>
    process.on("message", (m) => {
      if (m === "go") resolve();
      if (m === "stop") stop = true;
    }),
  );
  process.send!("ready");
  await go;
  let count = 0;
  const latenciesMs: number[] = [];
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (!stop) {
        latenciesMs.push(await once());
        count++;
      }
    }),
  );
  const result: WorkerResult = { count, latenciesMs };
  process.send!(result);
  // Stay up until the orchestrator has closed the probe window (it kills the workers at the end).
}

const argv = parseArgs({ options: { worker: { type: "string" }, loops: { type: "string" } }, strict: false }).values;
if (typeof argv.worker === "string") {
  await worker(Number(argv.worker), Number(argv.loops));
} else if (process.argv[1] === SELF) {
  await main();
}
