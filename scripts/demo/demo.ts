/**
 * The demo: one OpenAI-style quota (RPM, TPM, concurrency) on a local
 * provider simulator, shared by a fleet of worker processes, run three ways
 * on the same workload (same seeds): no coordination, rate-limiter-flexible +
 * Redis, and RateQueue on a local three-node cluster whose leader is killed
 * (kill -9) halfway through. For each run: requests completed, 429s, share of
 * the TPM limit used, and p50/p99 of the wait before sending; for the kill,
 * the longest gap between consecutive grants around it against the election
 * timeout.
 */
import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { prepareEnvironment, type Environment } from "../../examples/lib/environment.js";
import { forkTypeScript, nextMessage, withTimeout } from "../../examples/lib/fork.js";
import { startLocalCluster, type LocalCluster } from "../../examples/local-cluster.js";
import { openAiResource } from "../../examples/openai-workers.js";
import { bucketBudget, DEFAULT_LIMITS, slidingBudget, startProviderSim, type ApiStats, type ProviderAlgorithm, type ProviderLimits, type ProviderSim } from "../../examples/provider-sim.js";
import { MODES, type GateConfig, type Mode } from "./gates.js";
import { ensureRedisInstalled, startRedisServer, type RedisServer } from "./redis-server.js";
import { gapAroundKill, quantile, quotaShare, type GapAroundKill, type QuotaShare } from "./stats.js";
import type { LoopReport, RunConfig, WorkerMessage } from "./worker.js";

const WORKER_SCRIPT = fileURLToPath(new URL("./worker.ts", import.meta.url));
const READY_TIMEOUT_MS = 60_000;
/** How errors name a worker process. */
const WORKER_WHO = "a demo worker process";
const RESOURCE = "demo-openai";
/** The cluster's Raft timing, passed to every node explicitly so the report can state it. */
export const TICK_MS = 50;
export const ELECTION_TICKS = 10;
export const ELECTION_TIMEOUT_MS = TICK_MS * ELECTION_TICKS;
/** The window the gap around the kill is looked for in. */
const GAP_BEFORE_KILL_MS = 1_000;
const GAP_AFTER_KILL_MS = 5_000;

/**
 * A minute compressed to 5 s: a 20 s run then holds four refills of the
 * bucket for its one initial fill, so the figures show the steady state, where
 * coordination matters, more than the first burst.
 */
export const DEMO_LIMITS: ProviderLimits = { ...DEFAULT_LIMITS, rpm: 600, tpm: 20_000, concurrency: 8, windowMs: 5_000 };

/** The demo's delivery margin: a tenth of its 5 s window, which a leader kill on a loaded 2-core machine needs. */
export const DEFAULT_MARGIN_MS = 500;

export interface DemoOptions {
  /** Length of each run, in which workers start new requests (default 20). */
  readonly secondsPerMode?: number;
  /** Concurrent workers in all, spread over the processes (default 16). */
  readonly workers?: number;
  /** Worker processes (default 4). */
  readonly processes?: number;
  /** Which runs, in this order (default all three). */
  readonly modes?: readonly Mode[];
  readonly limits?: Partial<ProviderLimits>;
  /** The simulator's reply latency (default 200 ms). */
  readonly latencyMs?: number;
  /** Plus a seeded uniform 0..latencyJitterMs (default 0). */
  readonly latencyJitterMs?: number;
  /** How the provider counts RPM and TPM, and so RateQueue's resource (default "bucket"). */
  readonly algorithm?: ProviderAlgorithm;
  /** The provider's one-way network delay and its seeded jitter, each way (default 0 and 0). */
  readonly networkDelayMs?: number;
  readonly networkJitterMs?: number;
  readonly seed?: number;
  /**
   * The RateQueue resource's deliveryMarginMs: how late after its grant a
   * request may reach the provider (the limiter's README, "Fidelity").
   * Default 500 ms, a tenth of the demo's 5 s window: it covers a leader
   * kill (election timeout 500 to 1000 ms, but no grants are made during
   * it) and the network delay.
   */
  readonly marginMs?: number;
  readonly maxTokens?: { readonly min: number; readonly max: number };
  /** Tokens of context in each prompt, drawn uniformly (default none): fewer, bigger requests saturate the token limit cheaply. */
  readonly contextTokens?: { readonly min: number; readonly max: number };
  /** Kill -9 the leader halfway through the RateQueue run (default true). */
  readonly killLeader?: boolean;
  /** Cluster, Redis and worker processes shared with other runs (startDemoRig); default: started and stopped here. */
  readonly rig?: DemoRig;
  /** Lines worth keeping (setup steps). */
  readonly log?: (line: string) => void;
  /** The progress line, about once a second (a TTY overwrites it). */
  readonly progress?: (line: string) => void;
}

export interface LeaderKill {
  readonly killedId: string;
  /** Ms after the run started. */
  readonly atMs: number;
  /** The next leader all running nodes agreed on, and how long after the kill /v1/status polling saw it. */
  readonly newLeaderId: string;
  readonly newLeaderAfterMs: number;
  readonly gap: GapAroundKill;
  readonly gapWindow: { readonly beforeMs: number; readonly afterMs: number };
  /** Loops (workers) that sent at least once after the kill, out of all. */
  readonly loopsSentAfterKill: number;
  readonly loops: number;
}

export interface ModeResult {
  readonly mode: Mode;
  readonly requests: number;
  readonly limited: number;
  /** Errors other than 429s, and the first few messages. */
  readonly errors: number;
  readonly errorMessages: readonly string[];
  /** Tokens the provider charged over the most its TPM limit admits in elapsedMs (bucket from full: capacity + refill; sliding: one limit per window) (0..1). */
  readonly tpmShare: number;
  /**
   * The share of the provider's TPM used over its whole windows from the first arrival to the stop
   * (stats.ts, quotaShare: sliding k x TPM, bucket TPM + k x TPM, fixed the aligned windows);
   * null if the run was shorter than a window.
   */
  readonly quota: QuotaShare | null;
  readonly waitP50Ms: number;
  readonly waitP99Ms: number;
  /**
   * RateQueue only: ms from each grant's stamp to its send, p50 / p99 / max (null in other modes). The network
   * delay to the provider comes on top; the two must stay within the resource's delivery margin.
   */
  readonly grantToSendMs: { readonly p50: number; readonly p99: number; readonly max: number } | null;
  /** When the 429s were sent, in ms after the leader kill (after the run's start without one). */
  readonly limitedAfterKillMs: readonly number[];
  readonly elapsedMs: number;
  /** Requests completed per loop (every worker's count). */
  readonly requestsPerLoop: readonly number[];
  readonly provider: ApiStats;
  readonly leaderKill: LeaderKill | null;
}

export interface DemoResult {
  readonly limits: ProviderLimits;
  readonly algorithm: ProviderAlgorithm;
  readonly workers: number;
  readonly processes: number;
  readonly secondsPerMode: number;
  readonly runs: readonly ModeResult[];
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const log = options.log ?? (() => undefined);
  const progress = options.progress ?? (() => undefined);
  const secondsPerMode = options.secondsPerMode ?? 20;
  const workers = options.workers ?? 16;
  const processes = Math.min(options.processes ?? 4, workers);
  const modes = options.modes ?? MODES;
  const limits: ProviderLimits = { ...DEMO_LIMITS, ...options.limits };
  const seed = options.seed ?? 1;
  const algorithm = options.algorithm ?? "bucket";
  const maxTokens = options.maxTokens ?? { min: 64, max: 512 };
  if (!(secondsPerMode > 0)) throw new RangeError(`secondsPerMode must be above 0, got ${secondsPerMode}`);
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${workers}`);
  if (modes.length === 0 || modes.some((m) => !MODES.includes(m))) throw new RangeError(`modes must be some of ${MODES.join(", ")}`);
  if (modes.includes("redis") && limits.windowMs % 1000 !== 0) throw new RangeError(`the Redis run needs a windowMs in whole seconds, got ${limits.windowMs}`);

  const own = options.rig === undefined ? await startDemoRig({ modes, processes, log }) : null;
  const rig = options.rig ?? own!;
  if (modes.includes("ratequeue") && rig.cluster === null) throw new Error("the rig has no cluster: start it with the ratequeue mode");
  if (modes.includes("redis") && rig.redis === null) throw new Error("the rig has no Redis: start it with the redis mode");
  const { cluster, redis, children } = rig;
  // Each run on a shared rig gets its own resource, so no run inherits another's windows.
  const resource = own === null ? `${RESOURCE}-${++rigRuns}` : RESOURCE;
  let env: Environment | null = null;
  try {
    if (cluster !== null && modes.includes("ratequeue")) {
      // A previous run on this rig killed a leader: bring it back, so this run's kill leaves a majority.
      for (const n of cluster.nodes.nodes) if (!cluster.nodes.isRunning(n.id)) cluster.nodes.startNode(n.id);
      await cluster.nodes.waitForLeader();
      env = await prepareEnvironment({
        resource,
        config: openAiResource(limits, options.marginMs ?? DEFAULT_MARGIN_MS, algorithm),
        cluster: { url: cluster.url, apiKey: cluster.adminKey },
        log,
      });
    }

    const runs: ModeResult[] = [];
    for (const mode of modes) {
      const keyPrefix = `rq-demo-${mode}-${Date.now()}`; // one set of Redis counters shared by every process of this run
      const gateOf = (index: number): GateConfig => {
        switch (mode) {
          case "none":
            return { mode };
          case "redis":
            return { mode, redisPort: redis!.port, keyPrefix, ...limits };
          case "ratequeue":
            return { mode, url: env!.url, apiKey: env!.workerKey, resource, clientName: `demo-worker-${index}` };
        }
      };
      log(`${MODE_TITLES[mode]}: ${secondsPerMode} s...`);
      const result = await runMode({
        mode,
        children,
        workers,
        limits,
        sim: {
          limits,
          algorithm,
          latencyMs: options.latencyMs ?? 200,
          latencyJitterMs: options.latencyJitterMs ?? 0,
          networkDelayMs: options.networkDelayMs ?? 0,
          networkJitterMs: options.networkJitterMs ?? 0,
          seed,
        },
        seed,
        maxTokens,
        contextTokens: options.contextTokens,
        durationMs: secondsPerMode * 1000,
        gateOf,
        cluster: mode === "ratequeue" && (options.killLeader ?? true) ? cluster : null,
        progress,
      });
      runs.push(result);
    }
    return { limits, algorithm, workers, processes: children.length, secondsPerMode, runs };
  } finally {
    await env?.close();
    await own?.close();
  }
}

let rigRuns = 0;

/** What runs share: the cluster (with the ratequeue mode), redis-server (with the redis mode) and the worker processes. */
export interface DemoRig {
  readonly cluster: LocalCluster | null;
  readonly redis: RedisServer | null;
  readonly children: readonly ChildProcess[];
  close(): Promise<void>;
}

/**
 * Starts what runDemo needs before its runs. runDemo starts its own unless
 * given one; several runDemo calls can share one (the fidelity test does),
 * which saves a cluster's and the worker processes' start-up per call. A
 * leader a run killed is restarted at the next run's start.
 */
export async function startDemoRig(options: { readonly modes?: readonly Mode[]; readonly processes: number; readonly log?: (line: string) => void }): Promise<DemoRig> {
  const log = options.log ?? (() => undefined);
  const modes = options.modes ?? MODES;
  if (!Number.isInteger(options.processes) || options.processes < 1) throw new RangeError(`processes must be an integer >= 1, got ${options.processes}`);
  let cluster: LocalCluster | null = null;
  let redis: RedisServer | null = null;
  const children: ChildProcess[] = [];
  const close = async (): Promise<void> => {
    for (const c of children) if (c.connected) c.send({ type: "exit" } satisfies WorkerMessage);
    await Promise.all(children.map((c) => exitOf(c, 5_000)));
    await cluster?.close();
    await redis?.stop();
  };
  try {
    if (modes.includes("ratequeue")) {
      log(`starting a local three-node RateQueue cluster (election timeout ${ELECTION_TICKS} ticks x ${TICK_MS} ms)...`);
      cluster = await startLocalCluster({ extraArgs: ["--tick-ms", String(TICK_MS), "--election-ticks", String(ELECTION_TICKS)] });
    }
    if (modes.includes("redis")) {
      ensureRedisInstalled();
      redis = await startRedisServer();
      log(`redis-server on 127.0.0.1:${redis.port}`);
    }
    log(`starting ${options.processes} worker processes...`);
    for (let i = 0; i < options.processes; i++) children.push(forkTypeScript(WORKER_SCRIPT));
    await withTimeout(
      Promise.all(children.map((c) => nextMessage<WorkerMessage>(c, { type: "ready", who: WORKER_WHO }))),
      READY_TIMEOUT_MS,
      `the worker processes were not ready in time (${READY_TIMEOUT_MS} ms)`,
    );
    log("the worker processes are ready");
    return { cluster, redis, children, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function runMode(options: {
  mode: Mode;
  children: readonly ChildProcess[];
  workers: number;
  limits: ProviderLimits;
  sim: Parameters<typeof startProviderSim>[0] & { algorithm: ProviderAlgorithm };
  seed: number;
  maxTokens: { min: number; max: number };
  contextTokens: { min: number; max: number } | undefined;
  durationMs: number;
  gateOf: (processIndex: number) => GateConfig;
  cluster: LocalCluster | null;
  progress: (line: string) => void;
}): Promise<ModeResult> {
  const { mode, children, limits, durationMs } = options;
  // A fresh simulator per run: full buckets and zeroed counters, the same seed.
  const sim = await startProviderSim(options.sim);
  try {
    const startedAtMs = Date.now();
    const done = children.map((child, i) => {
      const loops = Math.floor(options.workers / children.length) + (i < options.workers % children.length ? 1 : 0);
      const run: RunConfig = {
        gate: options.gateOf(i),
        simUrl: sim.url,
        loops,
        seed: options.seed * 1_000 + i,
        maxTokens: options.maxTokens,
        ...(options.contextTokens === undefined ? {} : { contextTokens: options.contextTokens }),
      };
      const reply = nextMessage<Extract<WorkerMessage, { type: "done" }>>(child, { type: "done", who: WORKER_WHO });
      child.send({ type: "go", run } satisfies WorkerMessage);
      return reply.then((m) => m.loops);
    });
    for (const d of done) d.catch(() => undefined); // a process that fails is reported by Promise.all below, not as unhandled
    let note = "";
    // The run lasts durationMs; with a leader kill, it also lasts at least half of
    // that after the new leader is known, so every worker has had time to send
    // again however long the failover took on a loaded machine.
    let endAtMs = startedAtMs + durationMs;
    const ticker = setInterval(() => options.progress(progressLine({ mode, sim, startedAtMs, endAtMs, note })), 1_000);
    let kill: { killedId: string; killAtMs: number; newLeaderId: string; newLeaderAfterMs: number } | null = null;
    let loopReports: LoopReport[];
    let stoppedAtMs = 0;
    try {
      try {
        if (options.cluster !== null) {
          await sleep(durationMs / 2);
          const leader = await options.cluster.nodes.waitForLeader();
          const killAtMs = Date.now();
          await options.cluster.nodes.kill(leader.id, "SIGKILL");
          note = `  leader ${leader.id} killed`;
          const next = await options.cluster.nodes.waitForLeader({ not: leader.id });
          kill = { killedId: leader.id, killAtMs, newLeaderId: next.id, newLeaderAfterMs: Date.now() - killAtMs };
          note = `  leader ${leader.id} killed, ${next.id} leads`;
          endAtMs = Math.max(endAtMs, Date.now() + durationMs / 2);
        }
        await sleep(Math.max(0, endAtMs - Date.now()));
      } finally {
        stoppedAtMs = Date.now();
        for (const child of children) if (child.connected) child.send({ type: "stop" } satisfies WorkerMessage);
      }
      loopReports = (await Promise.all(done)).flat();
    } finally {
      clearInterval(ticker);
    }
    const elapsedMs = Date.now() - startedAtMs;
    const provider = sim.stats().openai;
    const waits = loopReports.flatMap((l) => l.waitsMs).sort((a, b) => a - b);
    const grantToSend = loopReports.flatMap((l) => l.grantToSendMs).sort((a, b) => a - b);
    let leaderKill: LeaderKill | null = null;
    if (kill !== null) {
      const gapWindow = { beforeMs: Math.min(GAP_BEFORE_KILL_MS, durationMs / 2), afterMs: Math.min(GAP_AFTER_KILL_MS, endAtMs - kill.killAtMs) };
      leaderKill = {
        killedId: kill.killedId,
        atMs: kill.killAtMs - startedAtMs,
        newLeaderId: kill.newLeaderId,
        newLeaderAfterMs: kill.newLeaderAfterMs,
        gap: gapAroundKill({ grantsAtMs: loopReports.flatMap((l) => l.sentAtMs), killAtMs: kill.killAtMs, ...gapWindow }),
        gapWindow,
        loopsSentAfterKill: loopReports.filter((l) => l.sentAtMs.some((t) => t > kill.killAtMs)).length,
        loops: loopReports.length,
      };
    }
    return {
      mode,
      requests: sum(loopReports.map((l) => l.requests)),
      limited: sum(loopReports.map((l) => l.limited)),
      errors: sum(loopReports.map((l) => l.errors)),
      errorMessages: loopReports.flatMap((l) => l.errorMessages).slice(0, 5),
      tpmShare: provider.totalTokens / tpmBudget(options.sim.algorithm, limits, elapsedMs),
      quota: quotaShare({
        arrivals: sim.arrivals("openai").map((a) => ({ atMs: sim.startedAtMs + a.atMs, tokens: a.tokens })),
        endMs: stoppedAtMs,
        windowMs: limits.windowMs,
        limit: limits.tpm,
        algorithm: options.sim.algorithm,
      }),
      waitP50Ms: quantile(waits, 0.5),
      waitP99Ms: quantile(waits, 0.99),
      grantToSendMs: grantToSend.length === 0 ? null : { p50: quantile(grantToSend, 0.5), p99: quantile(grantToSend, 0.99), max: grantToSend[grantToSend.length - 1]! },
      limitedAfterKillMs: loopReports.flatMap((l) => l.limitedAtMs).sort((a, b) => a - b).map((t) => t - (kill?.killAtMs ?? startedAtMs)),
      elapsedMs,
      requestsPerLoop: loopReports.map((l) => l.requests),
      provider,
      leaderKill,
    };
  } finally {
    await sim.close();
  }
}

export const MODE_TITLES: Record<Mode, string> = {
  none: "no coordination",
  redis: "rate-limiter-flexible + Redis",
  ratequeue: "RateQueue (3 nodes)",
};

function progressLine(o: { mode: Mode; sim: ProviderSim; startedAtMs: number; endAtMs: number; note: string }): string {
  const s = o.sim.stats();
  const elapsedMs = Date.now() - o.startedAtMs;
  const share = s.openai.totalTokens / tpmBudget(s.algorithm, s.limits, elapsedMs);
  return (
    `[${MODE_TITLES[o.mode]}] ${(Math.min(elapsedMs, o.endAtMs - o.startedAtMs) / 1000).toFixed(0)}/${((o.endAtMs - o.startedAtMs) / 1000).toFixed(0)} s` +
    `  requests ${s.openai.completed}  429s ${s.openai.limited}  TPM used ${(share * 100).toFixed(0)}%  in flight ${s.openai.inFlight}${o.note}`
  );
}

/** Waits for the child to exit, killing it after `timeoutMs`. */
async function exitOf(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** The most the provider's TPM limit admits in `elapsedMs` (a fixed window: as a sliding one, one limit per window). */
export function tpmBudget(algorithm: ProviderAlgorithm, limits: ProviderLimits, elapsedMs: number): number {
  const o = { limit: limits.tpm, windowMs: limits.windowMs, elapsedMs };
  return algorithm === "bucket" ? bucketBudget(o) : slidingBudget(o);
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
