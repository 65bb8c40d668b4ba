/**
 * SPEC guarantee 7 on the real system: real worker processes (the real
 * `openai` client, maxRetries 0) share one quota through a real three-node
 * RateQueue cluster (fsync on) whose leader is killed (kill -9) halfway, in
 * front of the provider simulator counting at arrival behind a seeded,
 * variable network delay and reply time. The RateQueue resource has the
 * provider's own numbers and algorithm plus a delivery margin.
 *
 * Asserted: zero 429s, every worker sending again after the kill, and at
 * least 95% of the tokens the provider admits used (scripts/demo/stats.ts,
 * quotaShare: the tokens it finally charged for requests arriving in its
 * whole windows from the first arrival, over the most its limit admits
 * there) less what the configured delivery margin costs by design
 * (marginCeiling). The margins here cover the grant-to-send delay this
 * shared 2-core machine shows under load (p99 0.3 to 2 s at load average
 * 15 to 26), which on these short windows costs 10 to 17% (BENCHMARKS.md,
 * "Fidelity"); on a minute window the default 1 s margin costs 1.6%. The
 * workload is built so that the provider's token limit binds,
 * not the machine: few workers sending few, large requests (a few hundred
 * tokens of context each, about 2% of the limit), the RPM and concurrency
 * limits out of reach, and more workers than requests in flight, so the
 * RateQueue queue is never empty. The same workload through
 * rate-limiter-flexible + Redis runs in the same test for the report
 * (BENCHMARKS.md), not asserted.
 *
 * The runs differ in every knob (provider algorithm, workers and loops per process,
 * window, margin, request size, reply latency and its jitter, network delay
 * and its jitter, seed), so the result is not tuned to one configuration.
 * No wall-clock assertions: durations only bound how much work is done.
 * RQ_FIDELITY_SCALE (default 1) stretches every window and run.
 */
import { loadavg } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runDemo, startDemoRig, type DemoOptions, type DemoRig, type ModeResult } from "../../scripts/demo/demo.js";

const SCALE = Number(process.env.RQ_FIDELITY_SCALE ?? 1);
/** Issue #10: the fleet uses at least this share of what the provider admits, less what the configured margin costs. */
const MIN_SHARE = 0.95;

/**
 * The most RateQueue may use of the provider's budget in `quotaShare`'s measure, given the delivery margin D
 * (the limiter README, Fidelity): a sliding limit counts each grant for W + D, so a saturated fleet gets
 * W / (W + D) of the provider's rate; a bucket holds back what refills in D, L D / W of the L (k + 1) budget.
 */
function marginCeiling(algorithm: string, windowMs: number, marginMs: number, windows: number): number {
  return algorithm === "bucket" ? 1 - marginMs / (windowMs * (windows + 1)) : windowMs / (windowMs + marginMs);
}

const RUNS: (DemoOptions & { readonly name: string })[] = [
  {
    name: "sliding-log provider, 5 s window, 8 workers in 2 processes",
    algorithm: "sliding",
    limits: { rpm: 10_000, tpm: 20_000, concurrency: 16, windowMs: 5_000 * SCALE },
    secondsPerMode: 13 * SCALE,
    workers: 8,
    marginMs: 1_000,
    latencyMs: 120,
    latencyJitterMs: 250,
    networkDelayMs: 5,
    networkJitterMs: 40,
    contextTokens: { min: 300, max: 700 },
    maxTokens: { min: 16, max: 64 },
    seed: 11,
  },
  {
    name: "token-bucket provider, 6 s window, 12 workers in 2 processes",
    algorithm: "bucket",
    limits: { rpm: 10_000, tpm: 18_000, concurrency: 16, windowMs: 6_000 * SCALE },
    secondsPerMode: 14 * SCALE,
    workers: 12,
    marginMs: 700,
    latencyMs: 300,
    latencyJitterMs: 400,
    networkDelayMs: 20,
    networkJitterMs: 60,
    contextTokens: { min: 400, max: 800 },
    maxTokens: { min: 8, max: 48 },
    seed: 23,
  },
];

const pct = (x: number | undefined): string => (x === undefined ? "-" : `${(x * 100).toFixed(1)}%`);

function figures(m: ModeResult): string {
  const q = m.quota;
  const share = q === null ? "no whole window" : `${pct(q.share)} (${q.tokens} of ${q.budget} tokens over ${q.windows} windows)`;
  return (
    `${m.mode}: ${m.requests} requests, ${m.limited} 429s ${JSON.stringify(m.provider.limitedBy)}, share ${share}, ` +
    `wait p50 ${m.waitP50Ms.toFixed(0)} ms p99 ${m.waitP99Ms.toFixed(0)} ms, ` +
    (m.grantToSendMs === null ? "" : `grant to send p50 ${m.grantToSendMs.p50} p99 ${m.grantToSendMs.p99} max ${m.grantToSendMs.max} ms, `) +
    (m.limited === 0 ? "" : `429s sent at ${m.limitedAfterKillMs.join(", ")} ms after the kill, `) +
    `max in flight ${m.provider.maxInFlight}, ${(m.elapsedMs / 1000).toFixed(1)} s`
  );
}

/** The worker processes every run shares (each run spreads its workers over them: 4 or 6 loops per process). */
const PROCESSES = 2;
const setupLines: string[] = [];
let rig: DemoRig | undefined;
let rigStartedAt = 0;

describe("fidelity on the real system: zero 429s and >= 95% of the provider's tokens, through a leader kill", () => {
  // One cluster, redis-server and set of worker processes for both runs: starting them is most of this file's
  // time on a loaded machine. Each run has its own resource, provider simulator and Redis keys, and restarts
  // the node the previous run killed.
  beforeAll(async () => {
    rigStartedAt = Date.now();
    rig = await startDemoRig({ modes: ["redis", "ratequeue"], processes: PROCESSES, log: (l) => setupLines.push(`+${Date.now() - rigStartedAt} ms ${l}`) });
  }, 240_000);
  afterAll(async () => {
    await rig?.close();
  });

  for (const run of RUNS) {
    it(run.name, async () => {
      const lines: string[] = [];
      const { name, ...options } = run;
      const startedAt = Date.now();
      const r = await runDemo({ ...options, rig: rig!, modes: ["redis", "ratequeue"], log: (l) => lines.push(`+${Date.now() - startedAt} ms ${l}`) });
      const rq = r.runs.find((m) => m.mode === "ratequeue")!;
      const redis = r.runs.find((m) => m.mode === "redis")!;
      console.log(`[fidelity] ${name} (load average ${loadavg()[0]!.toFixed(1)})\n  ${[...setupLines, ...lines].join("\n  ")}\n  ${figures(redis)}\n  ${figures(rq)}\n  kill: ${JSON.stringify(rq.leaderKill && { newLeaderAfterMs: rq.leaderKill.newLeaderAfterMs, gap: rq.leaderKill.gap })}`);
      const context = `${figures(rq)}\n${JSON.stringify({ kill: rq.leaderKill, errors: rq.errorMessages })}\n${lines.join("\n")}`;
      expect(rq.requests, context).toBe(rq.provider.completed);
      expect(rq.limited, context).toBe(0);
      expect(rq.errors, context).toBe(0);
      expect(rq.leaderKill, "the leader was killed").not.toBeNull();
      expect(rq.leaderKill!.loopsSentAfterKill, context).toBe(rq.leaderKill!.loops);
      expect(rq.quota, context).not.toBeNull();
      const ceiling = marginCeiling(r.algorithm, r.limits.windowMs, options.marginMs!, rq.quota!.windows);
      expect(rq.quota!.share, `${context}\nceiling for the margin: ${pct(ceiling)}`).toBeGreaterThanOrEqual(MIN_SHARE * ceiling);
      expect(rq.quota!.share, context).toBeLessThanOrEqual(1);
      // The token limit bound, not concurrency: the provider never had all its slots in use.
      expect(rq.provider.maxInFlight, context).toBeLessThan(r.limits.concurrency);
    }, 240_000);
  }
});
