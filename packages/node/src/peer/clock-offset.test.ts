import fc from "fast-check";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { ClockEcho, ClockProbe } from "@ratequeue/protocol";
import { CLOCK_SAMPLE_MAX_AGE_MS, CLOCK_SAMPLES_MAX, CLOCK_WARN_EVERY_MS, ClockOffsetEstimator, PeerClocks } from "./clock-offset.js";

describe("ClockOffsetEstimator", () => {
  it("estimates the peer's offset from one round trip, halfway through it", () => {
    const e = new ClockOffsetEstimator();
    // Probe at our wall 1,000,000 (mono 50); the peer, 120 s ahead, answers after 3 ms; the echo lands at mono 56.
    expect(e.sample({ probeWallMs: 1_000_000, probeMonoMs: 50, peerWallMs: 1_000_000 + 120_000 + 3, echoMonoMs: 56 })).toBe(true);
    expect(e.estimate(56)).toEqual({ offsetMs: 120_000, rttMs: 6 });
  });

  it("keeps the sample with the smallest round trip of the last few (queueing only adds delay)", () => {
    const e = new ClockOffsetEstimator();
    e.sample({ probeWallMs: 0, probeMonoMs: 0, peerWallMs: 500 + 40, echoMonoMs: 80 }); // rtt 80: a queued answer
    e.sample({ probeWallMs: 1_000, probeMonoMs: 1_000, peerWallMs: 1_500 + 1, echoMonoMs: 1_002 }); // rtt 2
    e.sample({ probeWallMs: 2_000, probeMonoMs: 2_000, peerWallMs: 2_500 + 2, echoMonoMs: 2_060 }); // rtt 60, asymmetric
    expect(e.estimate(2_060)).toEqual({ offsetMs: 500, rttMs: 2 });
  });

  it("forgets samples beyond the last CLOCK_SAMPLES_MAX, and stale ones, so a clock that jumped shows soon", () => {
    const e = new ClockOffsetEstimator();
    e.sample({ probeWallMs: 0, probeMonoMs: 0, peerWallMs: 0, echoMonoMs: 0.1 }); // offset 0, the best round trip
    for (let i = 1; i <= CLOCK_SAMPLES_MAX; i++) {
      const m = i * 1_000;
      e.sample({ probeWallMs: m, probeMonoMs: m, peerWallMs: m + 300_000 + 1, echoMonoMs: m + 2 }); // the peer jumped 5 min ahead
    }
    expect(e.estimate(CLOCK_SAMPLES_MAX * 1_000 + 2)).toEqual({ offsetMs: 300_000, rttMs: 2 });
    expect(e.estimate(CLOCK_SAMPLES_MAX * 1_000 + 2 + CLOCK_SAMPLE_MAX_AGE_MS + 1)).toBeNull();
  });

  it("refuses readings no real exchange produces", () => {
    const e = new ClockOffsetEstimator();
    expect(e.sample({ probeWallMs: 0, probeMonoMs: 10, peerWallMs: 0, echoMonoMs: 9 })).toBe(false);
    expect(e.sample({ probeWallMs: Number.NaN, probeMonoMs: 0, peerWallMs: 0, echoMonoMs: 1 })).toBe(false);
    expect(e.estimate(10)).toBeNull();
  });

  it("property: the estimate is within rtt/2 of the true offset, whatever the path's asymmetry", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -3_600_000, max: 3_600_000 }), // true offset of the peer's wall clock
        fc.array(fc.record({ outMs: fc.double({ min: 0, max: 500, noNaN: true }), backMs: fc.double({ min: 0, max: 500, noNaN: true }) }), { minLength: 1, maxLength: 20 }),
        (offsetMs, trips) => {
          const e = new ClockOffsetEstimator();
          let t = 1_000_000; // true time = our wall clock = our monotonic clock + 0 here
          for (const { outMs, backMs } of trips) {
            e.sample({ probeWallMs: t, probeMonoMs: t, peerWallMs: t + outMs + offsetMs, echoMonoMs: t + outMs + backMs });
            t += 1_000;
          }
          const est = e.estimate(t)!;
          expect(Math.abs(est.offsetMs - offsetMs)).toBeLessThanOrEqual(est.rttMs / 2 + 1e-6);
        },
      ),
    );
  });
});

/** Two PeerClocks wired back to back over plain function calls, with clocks the test sets. */
function pair(options: { aheadMs: number; warnMs?: number }) {
  const lines: { level: number; msg: string; peer?: string; offsetMs?: number }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  let mono = 10_000;
  const wall = 1_765_000_000_000;
  const nodes = new Map<string, PeerClocks>();
  const deliver = (from: string, to: string, m: ClockProbe | ClockEcho): void => {
    const target = nodes.get(to)!;
    mono += 1; // each hop takes 1 ms
    if (m.type === "clockProbe") target.onProbe(from, m);
    else target.onEcho(from, m);
  };
  const make = (id: string, other: string, skewMs: number): PeerClocks =>
    new PeerClocks({
      selfId: id,
      logger: logger.child({ node: id }),
      warnMs: options.warnMs ?? 500,
      monotonicNow: () => mono,
      wallNow: () => wall + mono + skewMs,
      connectedPeers: () => [other],
      send: (to, m) => deliver(id, to, m),
    });
  nodes.set("n1", make("n1", "n2", 0));
  nodes.set("n2", make("n2", "n1", options.aheadMs));
  return {
    n1: nodes.get("n1")!,
    n2: nodes.get("n2")!,
    lines,
    advance: (ms: number): void => {
      mono += ms;
    },
  };
}

describe("PeerClocks", () => {
  it("measures each other's offset over probe and echo, with opposite signs", () => {
    const { n1, n2 } = pair({ aheadMs: 120_000 });
    n1.probeAll();
    n2.probeAll();
    expect(n1.offset("n2")).toEqual({ offsetMs: 120_000, rttMs: 2 });
    expect(n2.offset("n1")).toEqual({ offsetMs: -120_000, rttMs: 2 });
    expect([...n1.offsets().keys()]).toEqual(["n2"]);
  });

  it("warns beyond the threshold, at most once a minute per peer, and says when the clock is back", () => {
    const { n1, lines, advance } = pair({ aheadMs: 2_000, warnMs: 500 });
    n1.probeAll();
    const warns = () => lines.filter((l) => l.level === 40 && l.peer === "n2");
    expect(warns()).toHaveLength(1);
    expect(warns()[0]!.msg).toContain("peer n2's wall clock is 2.0 s ahead of this node's, beyond --clock-warn-ms 500");
    expect(warns()[0]!.offsetMs).toBe(2_000);
    for (let i = 0; i < 10; i++) {
      advance(1_000);
      n1.probeAll();
    }
    expect(warns()).toHaveLength(1); // rate-limited
    advance(CLOCK_WARN_EVERY_MS);
    n1.probeAll();
    expect(warns()).toHaveLength(2);
    expect(lines.filter((l) => l.msg === "peer clock offset measured")).toHaveLength(1);
  });

  it("does not warn within the threshold", () => {
    const { n1, n2, lines } = pair({ aheadMs: 400, warnMs: 500 });
    n1.probeAll();
    n2.probeAll();
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(lines.filter((l) => l.msg === "peer clock offset measured")).toHaveLength(2);
  });

  it("ignores readings whose ids do not match the link they came on", () => {
    const { n1 } = pair({ aheadMs: 0 });
    n1.onEcho("n2", { type: "clockEcho", from: "n3", to: "n1", probeWallMs: 0, probeMonoUs: 0, wallMs: 0 });
    n1.onEcho("n2", { type: "clockEcho", from: "n2", to: "n9", probeWallMs: 0, probeMonoUs: 0, wallMs: 0 });
    expect(n1.offset("n2")).toBeNull();
  });

  it("refuses a threshold that is not a positive integer", () => {
    const logger = pino({ level: "silent" });
    const base = { selfId: "n1", logger, monotonicNow: () => 0, wallNow: () => 0, connectedPeers: () => [], send: () => undefined };
    for (const warnMs of [0, -1, 1.5, Number.NaN]) expect(() => new PeerClocks({ ...base, warnMs })).toThrow(RangeError);
  });
});
