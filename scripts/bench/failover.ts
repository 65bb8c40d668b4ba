/**
 * Failover benchmark: what a worker sees when a node goes away. A real three-node cluster (`ratequeue start`
 * processes, fsync on, default timing: 50 ms ticks, election timeout 10 ticks = 500-1000 ms) serves 16 SDK loops
 * (`rq.acquire(resource, options, fn)`, one RateQueue client) acquiring and releasing without pause. For each
 * event, the pause is the longest gap between two consecutive grants (any loop) from the event until the cluster
 * has healed (the node restarted and caught up). Phases:
 *
 * - sigterm: SIGTERM of the leader (a planned stop: it hands leadership over and names the successor to its
 *   clients), then restart it.
 * - kill9: kill -9 of the leader (a crash), then restart it.
 * - rolling: a rolling restart of all three nodes (SIGTERM, restart, wait until caught up, next), leader last.
 * - sigstop: SIGSTOP of the leader for 3 s, then SIGCONT (a frozen process: its connections stay open).
 *
 * Each event is measured twice: the stop (from the signal until grants flow again) and the restart (from starting
 * the node again until it has caught up), so that a slow restart does not hide in the stop's figure or the reverse.
 * `--trace` prints, after each stop, the steps the nodes logged (ms from the signal) around the longest pause.
 *
 * Reported per phase: median and longest pause over its events (stop and restart apart), failed acquires, and spurious elections (terms
 * started beyond the one election each event needs: a transfer or an election after a crash is one term; a rolling
 * restart needs one, for the leader; a follower's restart needs none). A steady-state row (no event) gives the
 * machine's own longest gap for comparison. Nothing is asserted (shared, noisy machines).
 *
 *   npx tsx --conditions=source scripts/bench/failover.ts [--events 3] [--loops 16] [--phases sigterm,kill9,rolling,sigstop] [--trace]
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { RateQueue } from "@ratequeue/sdk";
import { ADMIN_KEY, Cluster, sleep, waitFor, type NodeProcess } from "../../test/cluster/harness.js";

export type FailoverPhase = "steady" | "sigterm" | "kill9" | "rolling" | "sigstop";

export interface FailoverPhaseResult {
  readonly phase: FailoverPhase;
  /** Longest gap between consecutive grants around each stop (until grants flow again), in ms. */
  readonly stopPausesMs: number[];
  /** Longest gap between consecutive grants around each restart (until the node has caught up), in ms. */
  readonly restartPausesMs: number[];
  /** Median and longest of stopPausesMs. */
  readonly medianPauseMs: number;
  readonly longestPauseMs: number;
  readonly medianRestartPauseMs: number;
  readonly longestRestartPauseMs: number;
  /** Acquires that ended in an error during the phase. */
  readonly failedAcquires: number;
  /** Terms started beyond the elections the events needed. */
  readonly spuriousElections: number;
  /** Terms started during the phase. */
  readonly elections: number;
  /** Grants during the phase. */
  readonly grants: number;
}

export interface FailoverBenchResult {
  readonly name: "failover";
  readonly loops: number;
  readonly events: number;
  readonly electionTimeoutMs: number;
  readonly phases: FailoverPhaseResult[];
}

export interface FailoverBenchOptions {
  /** Events per phase (the rolling restart is one event per node). Default 3. */
  readonly events?: number;
  /** SDK loops. Default 16. */
  readonly loops?: number;
  readonly phases?: readonly FailoverPhase[];
  /** Logs, after each stop, the steps every node logged and where the longest pause fell (nodes log at info). */
  readonly trace?: boolean;
  readonly log?: (line: string) => void;
}

const RESOURCE = "failover";
const TICK_MS = 50;
const ELECTION_TICKS = 10;
const STOP_MS = 3_000;

export async function runFailoverBench(options: FailoverBenchOptions = {}): Promise<FailoverBenchResult> {
  const events = options.events ?? 3;
  const loops = options.loops ?? 16;
  const phases = options.phases ?? ["sigterm", "kill9", "rolling", "sigstop"];
  const log = options.log ?? (() => undefined);
  const trace = options.trace ?? false;
  const cluster = await Cluster.start({
    tickMs: TICK_MS,
    electionTicks: ELECTION_TICKS,
    resources: { [RESOURCE]: { limits: [{ kind: "concurrency", limit: 1_000_000 }] } },
    extraArgs: ["--log-level", trace ? "info" : "warn"],
  });
  const rq = new RateQueue({ url: cluster.urls, apiKey: ADMIN_KEY });
  const grantsAt: number[] = [];
  const failures: string[] = [];
  let running = true;
  const workers = Promise.all(
    Array.from({ length: loops }, async () => {
      while (running) {
        try {
          await rq.acquire(RESOURCE, { timeoutMs: 30_000 }, () => void grantsAt.push(performance.now()));
        } catch (err) {
          failures.push(`${(err as { code?: string }).code ?? "?"}: ${(err as Error).message}`);
        }
      }
    }),
  );
  const results: FailoverPhaseResult[] = [];
  try {
    await waitFor(() => grantsAt.length >= 500, { timeoutMs: 60_000, what: "the loops to warm up" });
    const measure = async (
      phase: FailoverPhase,
      count: number,
      expectedElections: number,
      stop: (i: number) => Promise<NodeProcess | null>,
      restart: (node: NodeProcess) => Promise<void>,
    ): Promise<void> => {
      await healed(cluster);
      const termBefore = await maxTerm(cluster);
      const failedBefore = failures.length;
      const grantsBefore = grantsAt.length;
      const stopPausesMs: number[] = [];
      const restartPausesMs: number[] = [];
      for (let i = 0; i < count; i++) {
        await sleep(500);
        // The stop: from the event until grants flow again (plus 500 ms), before the node comes back.
        const from = grantsAt.length;
        const t0 = performance.now();
        const node = await stop(i);
        await waitFor(() => grantsAt.length >= from + 4 * loops, { timeoutMs: 60_000, what: "grants to flow after the stop" });
        await sleep(500);
        const t1 = performance.now();
        const restartFrom = grantsAt.length;
        stopPausesMs.push(longestGap(grantsAt, from, t0, restartFrom, t1));
        if (trace && node !== null) log(timeline(cluster, `${phase} ${i + 1} stop`, grantsAt, from, t0, restartFrom));
        // The restart: from starting the node until it has caught up (plus 500 ms).
        if (node !== null) await restart(node);
        await healed(cluster);
        await sleep(500);
        restartPausesMs.push(longestGap(grantsAt, restartFrom, t1, grantsAt.length, performance.now()));
        log(`failover ${phase} ${i + 1}/${count}: longest pause at the stop ${stopPausesMs.at(-1)!.toFixed(0)} ms, at the restart ${restartPausesMs.at(-1)!.toFixed(0)} ms`);
      }
      const elections = (await maxTerm(cluster)) - termBefore;
      results.push({
        phase,
        stopPausesMs,
        restartPausesMs,
        medianPauseMs: median(stopPausesMs),
        longestPauseMs: Math.max(...stopPausesMs),
        medianRestartPauseMs: median(restartPausesMs),
        longestRestartPauseMs: Math.max(...restartPausesMs),
        failedAcquires: failures.length - failedBefore,
        spuriousElections: Math.max(0, elections - expectedElections),
        elections,
        grants: grantsAt.length - grantsBefore,
      });
    };

    await measure(
      "steady",
      1,
      0,
      async () => {
        await sleep(3_000);
        return null;
      },
      async () => undefined,
    );
    const startAgain = async (node: NodeProcess): Promise<void> => {
      node.start();
      await healed(cluster);
    };
    for (const phase of phases) {
      if (phase === "sigterm" || phase === "kill9") {
        await measure(phase, events, events, async () => {
          const leader = await cluster.waitForLeader();
          await leader.kill(phase === "sigterm" ? "SIGTERM" : "SIGKILL");
          return leader;
        }, startAgain);
      } else if (phase === "rolling") {
        // One event per node, leader last; the rolling restart needs one election in all (the leader's handover).
        const leader = await cluster.waitForLeader();
        const order = [...cluster.nodes.filter((n) => n.id !== leader.id), leader];
        await measure("rolling", order.length, 1, async (i) => {
          const node = order[i]!;
          await node.kill("SIGTERM");
          return node;
        }, startAgain);
      } else if (phase === "sigstop") {
        const n = Math.max(1, Math.min(events, 2));
        await measure("sigstop", n, n, async () => {
          const leader = await cluster.waitForLeader();
          leader.proc!.kill("SIGSTOP");
          await sleep(STOP_MS);
          leader.proc!.kill("SIGCONT");
          return null;
        }, async () => undefined);
      }
    }
  } finally {
    running = false;
    await Promise.race([workers, sleep(35_000)]);
    await rq.close().catch(() => undefined);
    await cluster.stop();
  }
  if (failures.length > 0) log(`failover: failed acquires: ${[...new Set(failures)].slice(0, 5).join("; ")}`);
  return { name: "failover", loops, events, electionTimeoutMs: TICK_MS * ELECTION_TICKS, phases: results };
}

async function healed(cluster: Cluster): Promise<void> {
  const leader = await cluster.waitForLeader(60_000);
  const target = (await leader.status())?.commitIndex ?? 0;
  for (const n of cluster.nodes) {
    await waitFor(
      async () => {
        const s = await n.status();
        return s !== null && s.leader === leader.id && s.appliedIndex >= target;
      },
      { timeoutMs: 60_000, what: `${n.id} to follow ${leader.id} and catch up` },
    );
  }
}

async function maxTerm(cluster: Cluster): Promise<number> {
  const statuses = await Promise.all(cluster.nodes.filter((n) => n.running).map((n) => n.status()));
  return Math.max(...statuses.map((s) => s?.term ?? 0));
}

/**
 * Longest gap between consecutive grants in the window from `t0` (grants[from - 1] is the last grant before it, if
 * any) to `t1` (grants[to] is the first one after it, if any): a gap open at either edge counts in full.
 */
function longestGap(grantsAt: readonly number[], from: number, t0: number, to: number, t1: number): number {
  let previous = from > 0 ? Math.max(grantsAt[from - 1]!, t0 - 1_000) : t0;
  let longest = 0;
  for (let i = from; i < to; i++) {
    longest = Math.max(longest, grantsAt[i]! - previous);
    previous = grantsAt[i]!;
  }
  return Math.max(longest, t1 - previous);
}

/** Node log lines that mark the steps of a failover. */
const STEPS = /"msg":"(node stopping|handing leadership over|leadership changed|leadership handed over|link to the leader closed[^"]*|client connected|client disconnected|node stopped)"/;

/**
 * The steps of one stop as every node logged them, in ms from the event (`t0`), with the longest gap between grants
 * placed among them: where a pause goes.
 */
function timeline(cluster: Cluster, title: string, grantsAt: readonly number[], from: number, t0: number, to: number): string {
  const origin = performance.timeOrigin + t0; // epoch ms, as pino's "time"
  const rows: { at: number; what: string }[] = [];
  for (const n of cluster.nodes) {
    for (const line of n.output.split("\n")) {
      const m = STEPS.exec(line);
      if (m === null) continue;
      const parsed = JSON.parse(line) as { time: number; role?: string; leader?: string; to?: string; resumed?: boolean };
      const at = parsed.time - origin;
      if (at < -50 || at > 10_000) continue;
      const detail = [parsed.role, parsed.leader ?? parsed.to, parsed.resumed === undefined ? undefined : `resumed=${parsed.resumed}`].filter((x) => x !== undefined).join(" ");
      rows.push({ at, what: `${n.id}: ${m[1]}${detail === "" ? "" : ` (${detail})`}` });
    }
  }
  let gapAt = from;
  for (let i = from + 1; i < to; i++) if (grantsAt[i]! - grantsAt[i - 1]! > grantsAt[gapAt]! - grantsAt[gapAt - 1]!) gapAt = i;
  if (gapAt > 0 && gapAt < grantsAt.length) {
    rows.push({ at: grantsAt[gapAt - 1]! - t0, what: "sdk: last grant before the longest pause" });
    rows.push({ at: grantsAt[gapAt]! - t0, what: "sdk: first grant after it" });
  }
  rows.sort((a, b) => a.at - b.at);
  return [`trace ${title}:`, ...rows.map((r) => `  ${r.at.toFixed(0).padStart(6)} ms  ${r.what}`)].join("\n");
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const LABELS: Record<FailoverPhase, string> = {
  steady: "steady state (no event), 3 s",
  sigterm: "SIGTERM of the leader, restart",
  kill9: "kill -9 of the leader, restart",
  rolling: "rolling restart of all three (SIGTERM), leader last",
  sigstop: "SIGSTOP of the leader for 3 s, SIGCONT",
};

/** The result as a Markdown table. */
export function formatFailoverTable(r: FailoverBenchResult): string {
  const rows = r.phases.map((p) =>
    `| ${LABELS[p.phase]} | ${p.stopPausesMs.length} | ${p.medianPauseMs.toFixed(0)} ms | ${p.longestPauseMs.toFixed(0)} ms | ${p.medianRestartPauseMs.toFixed(0)} ms | ${p.longestRestartPauseMs.toFixed(0)} ms | ${p.failedAcquires} | ${p.elections} | ${p.spuriousElections} |`,
  );
  return [
    "| event | events | stop: median pause | stop: longest pause | restart: median pause | restart: longest pause | failed acquires | elections | spurious elections |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: { events: { type: "string" }, loops: { type: "string" }, phases: { type: "string" }, trace: { type: "boolean" }, help: { type: "boolean" } },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(
      "usage: npx tsx --conditions=source scripts/bench/failover.ts [--events 3] [--loops 16] [--phases sigterm,kill9,rolling,sigstop] [--trace]\n" +
        "  --trace: after each stop, print the steps the nodes logged (ms from the signal) and where the longest pause fell\n",
    );
    process.exit(0);
  }
  const known: readonly FailoverPhase[] = ["sigterm", "kill9", "rolling", "sigstop"];
  const phases = values.phases?.split(",").map((p) => p.trim()) as FailoverPhase[] | undefined;
  for (const p of phases ?? []) {
    if (!known.includes(p)) {
      process.stderr.write(`unknown phase "${p}"; phases: ${known.join(", ")}\n`);
      process.exit(2);
    }
  }
  const result = await runFailoverBench({
    ...(values.events === undefined ? {} : { events: Number(values.events) }),
    ...(values.loops === undefined ? {} : { loops: Number(values.loops) }),
    ...(phases === undefined ? {} : { phases }),
    trace: values.trace === true,
    log: (line) => console.error(line),
  });
  console.log(`failover: 3 nodes, ${result.loops} SDK loops, election timeout ${result.electionTimeoutMs}-${2 * result.electionTimeoutMs} ms`);
  console.log(formatFailoverTable(result));
  for (const p of result.phases) {
    const ms = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(", ");
    console.log(`${p.phase}: pauses at the stop ${ms(p.stopPausesMs)} ms; at the restart ${ms(p.restartPausesMs)} ms`);
  }
}
