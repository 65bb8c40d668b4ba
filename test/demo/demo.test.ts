/**
 * The demo end to end, short: 5 s per run, 12 workers in 2 processes (more than the provider's 8 in flight), the
 * three runs on one workload, the RateQueue cluster's leader killed (kill -9)
 * halfway through its run. No wall-clock assertions: the durations only bound
 * how much work is done; the pause at the kill is printed, not asserted.
 */
import { describe, expect, it } from "vitest";
import { runDemo } from "../../scripts/demo/demo.js";

const SECONDS = Number(process.env.RQ_DEMO_SECONDS ?? 5);

describe("the demo (scripts/demo), a short run of each mode", () => {
  it("RateQueue: zero 429s and every worker kept going through the leader kill; without coordination the same workload gets 429s", async () => {
    const lines: string[] = [];
    const r = await runDemo({ secondsPerMode: SECONDS, workers: 12, processes: 2, log: (l) => lines.push(l) });
    const byMode = new Map(r.runs.map((m) => [m.mode, m]));
    const none = byMode.get("none")!;
    const redis = byMode.get("redis")!;
    const rq = byMode.get("ratequeue")!;
    for (const m of [none, redis, rq]) {
      // What the workers counted is what the provider saw.
      expect(m.requests, m.mode).toBe(m.provider.completed);
      expect(m.limited, m.mode).toBe(m.provider.limited);
      expect(m.requests, m.mode).toBeGreaterThan(0);
    }
    expect(none.limited).toBeGreaterThan(0); // so RateQueue's zero below means something

    const kill = rq.leaderKill;
    expect(kill, "the leader was killed").not.toBeNull();
    const context = `${JSON.stringify({ kill, errors: rq.errorMessages, limitedBy: rq.provider.limitedBy })}\n${lines.join("\n")}`;
    expect(rq.limited, context).toBe(0);
    expect(rq.errors, context).toBe(0);
    expect(kill!.newLeaderId).not.toBe(kill!.killedId);
    // Every worker sent again after the kill: none was stuck behind the dead leader.
    expect(kill!.loopsSentAfterKill, context).toBe(kill!.loops);
    expect(kill!.loops).toBe(12);
    expect(rq.requestsPerLoop.every((n) => n > 0)).toBe(true);
    expect(rq.provider.maxInFlight).toBeLessThanOrEqual(r.limits.concurrency);
  });
});
