/**
 * Limiter benchmark: acquire+release pairs per second on one resource with an
 * RPM, a TPM and a concurrency limit stacked, applied straight to the state
 * machine (no Raft, no network), on one core.
 *
 * - uncontended: every acquire is granted at once, then released.
 * - contended: the concurrency limit is full and N waiters are queued; each
 *   pair releases one lease (which grants the head waiter) and queues one new
 *   acquire at the tail, so the queue stays at N. Run at N = 10 and
 *   N = 100,000: the ratio shows whether cost grows with the queue.
 *
 * Simulated time advances 7 ms per pair, so the sliding RPM/TPM windows hold
 * ~8,600 grants in steady state and expire one per pair (the real hot path).
 *
 * Figures are pairs per CPU-second of this process (see LimiterBenchResult),
 * with wall-clock pairs/s beside them.
 *
 * Run: npx tsx --conditions=source scripts/bench/limiter.ts   (RQ_BENCH_RUNS, RQ_BENCH_PAIRS to scale)
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { Limiter, type Effect } from "@ratequeue/limiter";

/**
 * Figures are acquire+release pairs per CPU-second of this process (all its
 * threads, GC included), median over runs. CPU time rather than wall time,
 * because benchmark machines are shared: other processes stretch wall time
 * but not the CPU this work needs. `wall` holds the wall-clock figures.
 */
export interface LimiterBenchResult {
  readonly uncontendedPairsPerSec: number;
  readonly contended10PairsPerSec: number;
  readonly contended100kPairsPerSec: number;
  /** Uncontended, but the sliding RPM/TPM windows hold ~120,000 grants each. */
  readonly fullWindow120kPairsPerSec: number;
  /** contended10 / contended100k: 1 means queue length costs nothing; the target is <= 2. */
  readonly slowdownAt100k: number;
  readonly runs: number;
  readonly wall: { readonly uncontended: number; readonly contended10: number; readonly contended100k: number; readonly fullWindow120k: number };
}

interface Rate {
  readonly cpu: number;
  readonly wall: number;
}

/** Runs `body` (which does `pairs` pairs) and measures it. */
function measure(pairs: number, body: () => void): Rate {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  body();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpu: pairs / ((cpu.user + cpu.system) / 1e6), wall: pairs / (wallMs / 1000) };
}

const STEP_MS = 7;
const CONFIG = {
  limits: [
    { kind: "rate", limit: 10_000, windowMs: 60_000 }, // RPM
    { kind: "load", limit: 2_000_000, windowMs: 60_000, dimension: "tokens" }, // TPM
    { kind: "concurrency", limit: 100 },
  ],
};

/** The same limits scaled up so that 2 grants per ms fit: windows hold 120,000 grants. */
const BIG_WINDOW_CONFIG = {
  limits: [
    { kind: "rate", limit: 130_000, windowMs: 60_000 },
    { kind: "load", limit: 130_000 * 150, windowMs: 60_000, dimension: "tokens" },
    { kind: "concurrency", limit: 100 },
  ],
};

function setup(config: object = CONFIG): Limiter {
  const l = new Limiter();
  l.apply({ type: "putResource", at: 0, name: "gpt", config });
  for (let s = 0; s < 100; s++) l.apply({ type: "openSession", at: 0, sessionId: `s${s}`, ttlMs: 86_400_000 });
  return l;
}

function grantOf(effects: Effect[]): number {
  for (const e of effects) if (e.type === "granted") return e.leaseId;
  throw new Error(`expected a grant, got ${JSON.stringify(effects)}`);
}

function uncontended(pairs: number, options: { grantsPerMs?: number } = {}): Rate {
  const l = options.grantsPerMs === undefined ? setup() : setup(BIG_WINDOW_CONFIG);
  let at = 0;
  const perMs = options.grantsPerMs;
  const pair = (i: number): void => {
    if (perMs === undefined) at += STEP_MS;
    else if (i % perMs === 0) at += 1;
    const sessionId = `s${i % 100}`;
    const lease = grantOf(l.apply({ type: "acquire", at, sessionId, requestId: `r${i}`, resource: "gpt", load: { tokens: 150 } }));
    l.apply({ type: "release", at, sessionId, leaseId: lease });
  };
  // Fill the windows first when measuring full windows: 60 s at 2 grants per ms.
  const fill = perMs === undefined ? 0 : 60_000 * perMs;
  for (let i = 0; i < fill; i++) pair(i);
  return measure(pairs, () => {
    for (let i = fill; i < fill + pairs; i++) pair(i);
  });
}

function contended(waiters: number, pairs: number): Rate {
  const l = setup();
  let at = 0;
  let next = 0;
  const held: { leaseId: number; sessionId: string }[] = [];
  const acquire = (): Effect[] => {
    const i = next++;
    const sessionId = `s${i % 100}`;
    return l.apply({ type: "acquire", at, sessionId, requestId: `r${i}`, resource: "gpt", load: { tokens: 150 }, timeoutMs: 3_600_000 });
  };
  for (let i = 0; i < 100; i++) {
    at += STEP_MS;
    held.push({ leaseId: grantOf(acquire()), sessionId: `s${(next - 1) % 100}` });
  }
  for (let i = 0; i < waiters; i++) acquire();
  if (l.resource("gpt")?.queued.default !== waiters) throw new Error("setup: queue is not full");
  let head = 0;
  const rate = measure(pairs, () => {
    for (let i = 0; i < pairs; i++) {
      at += STEP_MS;
      const h = held[head++] as { leaseId: number; sessionId: string };
      const e = l.apply({ type: "release", at, sessionId: h.sessionId, leaseId: h.leaseId });
      const g = e[1];
      if (g?.type !== "granted") throw new Error("release did not grant the head");
      held.push({ leaseId: g.leaseId, sessionId: g.sessionId });
      const q = acquire();
      if (q[0]?.type !== "queued") throw new Error("acquire did not queue");
    }
  });
  if (l.resource("gpt")?.queued.default !== waiters) throw new Error("queue length drifted");
  return rate;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

export async function runLimiterBench(options: { runs?: number; pairs?: number } = {}): Promise<LimiterBenchResult> {
  const runs = options.runs ?? Number(process.env.RQ_BENCH_RUNS ?? 5);
  const pairs = options.pairs ?? Number(process.env.RQ_BENCH_PAIRS ?? 200_000);
  uncontended(20_000); // warm up the JIT
  contended(10, 20_000);
  const u: Rate[] = [];
  const c10: Rate[] = [];
  const c100k: Rate[] = [];
  const full: Rate[] = [];
  for (let r = 0; r < runs; r++) {
    u.push(uncontended(pairs));
    full.push(uncontended(pairs, { grantsPerMs: 2 }));
    c10.push(contended(10, pairs));
    c100k.push(contended(100_000, pairs));
  }
  const cpu = (xs: Rate[]): number => median(xs.map((x) => x.cpu));
  const wall = (xs: Rate[]): number => Math.round(median(xs.map((x) => x.wall)));
  return {
    uncontendedPairsPerSec: Math.round(cpu(u)),
    contended10PairsPerSec: Math.round(cpu(c10)),
    contended100kPairsPerSec: Math.round(cpu(c100k)),
    fullWindow120kPairsPerSec: Math.round(cpu(full)),
    slowdownAt100k: Number((cpu(c10) / cpu(c100k)).toFixed(2)),
    runs,
    wall: { uncontended: wall(u), contended10: wall(c10), contended100k: wall(c100k), fullWindow120k: wall(full) },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runLimiterBench();
  const fmt = (n: number): string => n.toLocaleString("en-US");
  console.log(`limiter bench: acquire+release pairs per CPU-second (wall-clock in brackets), median of ${r.runs} runs`);
  console.log(`one resource: RPM + TPM (sliding windows) + concurrency`);
  console.log(`  uncontended               ${fmt(r.uncontendedPairsPerSec)}  [${fmt(r.wall.uncontended)}]`);
  console.log(`  120,000 grants in window  ${fmt(r.fullWindow120kPairsPerSec)}  [${fmt(r.wall.fullWindow120k)}]`);
  console.log(`  10 waiters queued         ${fmt(r.contended10PairsPerSec)}  [${fmt(r.wall.contended10)}]`);
  console.log(`  100,000 waiters queued    ${fmt(r.contended100kPairsPerSec)}  [${fmt(r.wall.contended100k)}]  (${r.slowdownAt100k}x the cost at 10 waiters)`);
}
