/**
 * SPEC guarantee 7 on the real system: real worker processes (the real
 * `openai` client, maxRetries 0) share one quota through a real three-node
 * RateQueue cluster (fsync on) whose leader is killed (kill -9) halfway, in
 * front of the provider simulator counting at arrival behind a seeded,
 * variable network delay and reply time. The RateQueue resource has the
 * provider's own numbers and algorithm plus a delivery margin. Asserted: zero
 * 429s and every worker sending again after the kill; the share of the
 * provider's tokens used is printed (issue #10 asks >= 95%; not yet shown). The same workload through rate-limiter-flexible +
 * Redis runs in the same test for the report (BENCHMARKS.md), not asserted.
 *
 * The two runs differ in every knob (provider algorithm, workers, processes,
 * window, margin, reply latency and its jitter, network delay and its
 * jitter, seed), so the result is not tuned to one configuration. No
 * wall-clock assertions: durations only bound how much work is done.
 * RQ_FIDELITY_SCALE (default 1) stretches every window and run.
 */
import { describe, expect, it } from "vitest";
import { runDemo, type DemoOptions } from "../../scripts/demo/demo.js";

const SCALE = Number(process.env.RQ_FIDELITY_SCALE ?? 1);

const RUNS: (DemoOptions & { readonly name: string })[] = [
  {
    name: "sliding-log provider, 20 s window, 12 workers in 3 processes",
    algorithm: "sliding",
    limits: { rpm: 3_000, tpm: 40_000, concurrency: 8, windowMs: 20_000 * SCALE },
    // The kill lands as the first window's grants start to leave: the steady state, where a late grant would bite.
    secondsPerMode: 40 * SCALE,
    workers: 12,
    processes: 3,
    marginMs: 1_000,
    latencyMs: 120,
    latencyJitterMs: 200,
    networkDelayMs: 5,
    networkJitterMs: 40,
    maxTokens: { min: 16, max: 64 },
    seed: 11,
  },
  {
    name: "token-bucket provider, 10 s window, 16 workers in 2 processes",
    algorithm: "bucket",
    limits: { rpm: 2_000, tpm: 24_000, concurrency: 6, windowMs: 10_000 * SCALE },
    secondsPerMode: 20 * SCALE,
    workers: 16,
    processes: 2,
    marginMs: 600,
    latencyMs: 250,
    latencyJitterMs: 300,
    networkDelayMs: 20,
    networkJitterMs: 60,
    maxTokens: { min: 16, max: 64 },
    seed: 23,
  },
];

describe("fidelity on the real system: zero 429s against the provider's own window, through a leader kill", () => {
  for (const run of RUNS) {
    it(run.name, async () => {
      const lines: string[] = [];
      const { name, ...options } = run;
      const r = await runDemo({ ...options, modes: ["redis", "ratequeue"], log: (l) => lines.push(l) });
      const rq = r.runs.find((m) => m.mode === "ratequeue")!;
      const redis = r.runs.find((m) => m.mode === "redis")!;
      const figures = (m: typeof rq): string =>
        `${m.mode}: ${m.requests} requests, ${m.limited} 429s ${JSON.stringify(m.provider.limitedBy)}, window share ${(m.windowShare * 100).toFixed(1)}%, run share ${(m.tpmShare * 100).toFixed(1)}%, wait p50 ${m.waitP50Ms.toFixed(0)} ms p99 ${m.waitP99Ms.toFixed(0)} ms, ${(m.elapsedMs / 1000).toFixed(1)} s`;
      console.log(`[fidelity] ${name}\n  ${figures(redis)}\n  ${figures(rq)}\n  kill: ${JSON.stringify(rq.leaderKill && { newLeaderAfterMs: rq.leaderKill.newLeaderAfterMs, gap: rq.leaderKill.gap })}`);
      const context = `${figures(rq)}\n${JSON.stringify({ kill: rq.leaderKill, errors: rq.errorMessages })}\n${lines.join("\n")}`;
      expect(rq.requests, context).toBe(rq.provider.completed);
      expect(rq.limited, context).toBe(0);
      expect(rq.errors, context).toBe(0);
      expect(rq.leaderKill, "the leader was killed").not.toBeNull();
      expect(rq.leaderKill!.loopsSentAfterKill, context).toBe(rq.leaderKill!.loops);
      // The share of the provider's tokens used is reported, not asserted: on a loaded 2-core machine the
      // workers cannot saturate the quota (the Redis run shows the same share), so it measures the machine.
      expect(rq.provider.maxInFlight).toBeLessThanOrEqual(r.limits.concurrency);
    }, 600_000);
  }
});
