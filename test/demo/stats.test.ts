/** The demo's figures (scripts/demo/stats.ts): nearest-rank quantiles, the gap between grants around the leader kill, and the share of the provider's quota used. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gapAroundKill, quantile, quotaShare, type ShareAlgorithm } from "../../scripts/demo/stats.js";
import { providerWindow } from "../../examples/lib/windows.js";
import { checkProperty } from "@ratequeue/testkit";

const FILE = "test/demo/stats.test.ts";

describe("quantile", () => {
  it("is the nearest-rank value: p50 of 1..10 is 5, p99 is 10, p0 is the smallest", () => {
    const xs = Array.from({ length: 10 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(5);
    expect(quantile(xs, 0.99)).toBe(10);
    expect(quantile(xs, 0)).toBe(1);
    expect(quantile([7], 0.99)).toBe(7);
  });

  it("is NaN for no values, and refuses a q outside 0..1", () => {
    expect(quantile([], 0.5)).toBeNaN();
    expect(() => quantile([1], 1.5)).toThrow(/q must be from 0 to 1/);
    expect(() => quantile([1], Number.NaN)).toThrow(/q must be from 0 to 1/);
  });
});

describe("gapAroundKill", () => {
  it("finds the pause that spans the kill, and the longest gap before the window as a baseline", () => {
    // Grants every 100 ms, none from 1000 to 1800 (the kill at 1050), then every 100 ms again.
    const grants = [...Array.from({ length: 10 }, (_, i) => 100 + i * 100), ...Array.from({ length: 10 }, (_, i) => 1800 + i * 100)];
    const g = gapAroundKill({ grantsAtMs: grants, killAtMs: 1050, beforeMs: 200, afterMs: 1000 });
    expect(g.longestGapMs).toBe(800);
    expect([g.fromMs, g.toMs]).toEqual([1000, 1800]);
    expect(g.longestGapBeforeMs).toBe(100);
  });

  it("takes grants in any order, from any number of workers; a gap that reaches into the window counts", () => {
    // Window 850..1950: 200 -> 900 ends inside it (700 ms), 1000 -> 1500 is inside (500 ms).
    const g = gapAroundKill({ grantsAtMs: [1500, 200, 900, 100, 1000], killAtMs: 950, beforeMs: 100, afterMs: 1000 });
    expect(g.longestGapMs).toBe(700);
    expect([g.fromMs, g.toMs]).toEqual([200, 900]);
  });

  it("counts a cluster that never granted again as silence up to the window's end", () => {
    const g = gapAroundKill({ grantsAtMs: [100, 200, 300], killAtMs: 350, beforeMs: 100, afterMs: 2000 });
    expect(g.longestGapMs).toBe(2350 - 300);
    expect(g.toMs).toBe(2350);
  });

  it("does not count the time before the first grant as a baseline gap", () => {
    const g = gapAroundKill({ grantsAtMs: [5000, 5100, 5200, 5300, 5400], killAtMs: 5350, beforeMs: 100, afterMs: 100 });
    expect(g.longestGapBeforeMs).toBe(100);
  });

  it("refuses a negative window", () => {
    expect(() => gapAroundKill({ grantsAtMs: [], killAtMs: 0, beforeMs: -1, afterMs: 0 })).toThrow(/>= 0/);
  });

  it("property: the result is the longest gap between consecutive grants (or the window's end) touching the window, by brute force", () => {
    const arb = fc.record({
      grants: fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 40 }),
      killAtMs: fc.integer({ min: 0, max: 10_000 }),
      beforeMs: fc.integer({ min: 0, max: 3_000 }),
      afterMs: fc.integer({ min: 0, max: 3_000 }),
    });
    checkProperty({ file: FILE, name: "property: the result" }, fc.property(arb, ({ grants, killAtMs, beforeMs, afterMs }) => {
      const from = killAtMs - beforeMs;
      const to = killAtMs + afterMs;
      // The dumb way: every interval between neighbours on the line of points plus the window's ends, clipped to touch [from, to].
      const points = [...new Set([from, ...grants])].sort((a, b) => a - b);
      let expected = 0;
      const atOrBefore = grants.filter((t) => t <= from);
      const lastBeforeOrAtFrom = atOrBefore.length === 0 ? from : Math.max(...atOrBefore);
      const inside = [lastBeforeOrAtFrom, ...points.filter((t) => t > from)];
      for (let i = 1; i < inside.length; i++) {
        if (inside[i - 1]! >= to) break;
        expected = Math.max(expected, inside[i]! - inside[i - 1]!);
      }
      const lastGrant = inside[inside.length - 1]!;
      if (lastGrant < to) expected = Math.max(expected, to - lastGrant);
      const g = gapAroundKill({ grantsAtMs: grants, killAtMs, beforeMs, afterMs });
      if (g.longestGapMs !== expected) throw new Error(`longestGapMs ${g.longestGapMs}, expected ${expected}`);
      if (g.toMs - g.fromMs !== g.longestGapMs) throw new Error("fromMs..toMs is not the gap");
    }));
  });
});

describe("quotaShare", () => {
  const W = 1_000;
  it("sliding: whole windows from the first arrival; the run's tail past the last whole window is left out", () => {
    const arrivals = [
      { atMs: 10_500, tokens: 60 },
      { atMs: 11_000, tokens: 40 },
      { atMs: 12_499, tokens: 100 },
      { atMs: 12_500, tokens: 999 }, // in the third window, which the run does not complete
    ];
    const q = quotaShare({ arrivals, endMs: 13_100, windowMs: W, limit: 100, algorithm: "sliding" })!;
    expect(q).toEqual({ share: 1, tokens: 200, budget: 200, windows: 2, fromMs: 10_500, toMs: 12_500 });
  });

  it("bucket: the same span, and the budget counts the full bucket at the first arrival plus k refills", () => {
    const q = quotaShare({ arrivals: [{ atMs: 0, tokens: 150 }], endMs: 2_500, windowMs: W, limit: 100, algorithm: "bucket" })!;
    expect([q.windows, q.budget, q.share]).toEqual([2, 300, 0.5]);
  });

  it("fixed: only the provider's clock-aligned windows lying wholly in the run", () => {
    const arrivals = [
      { atMs: 10_700, tokens: 100 }, // before the first whole aligned window
      { atMs: 11_000, tokens: 50 },
      { atMs: 11_999, tokens: 50 },
      { atMs: 12_300, tokens: 100 }, // in [12000, 13000), which ends after endMs
    ];
    const q = quotaShare({ arrivals, endMs: 12_900, windowMs: W, limit: 100, algorithm: "fixed" })!;
    expect(q).toEqual({ share: 1, tokens: 100, budget: 100, windows: 1, fromMs: 11_000, toMs: 12_000 });
  });

  it("is null without an arrival or a whole window", () => {
    expect(quotaShare({ arrivals: [], endMs: 5_000, windowMs: W, limit: 1, algorithm: "sliding" })).toBeNull();
    expect(quotaShare({ arrivals: [{ atMs: 0, tokens: 1 }], endMs: 999, windowMs: W, limit: 1, algorithm: "sliding" })).toBeNull();
  });

  it("property: what the simulator's own window admits is never more than the budget (share <= 1)", () => {
    const arb = fc.record({
      algorithm: fc.constantFrom<ShareAlgorithm>("sliding", "fixed", "bucket"),
      limit: fc.integer({ min: 50, max: 500 }),
      windowMs: fc.integer({ min: 100, max: 2_000 }),
      startMs: fc.integer({ min: 0, max: 5_000 }),
      requests: fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 60 }), tokens: fc.integer({ min: 1, max: 50 }) }), { minLength: 1, maxLength: 400 }),
    });
    checkProperty({ file: FILE, name: "property: what the simulator" }, fc.property(arb, ({ algorithm, limit, windowMs, startMs, requests }) => {
      const window = providerWindow(algorithm, limit, windowMs, startMs);
      const arrivals: { atMs: number; tokens: number }[] = [];
      let t = startMs;
      for (const r of requests) {
        t += r.gapMs;
        if (window.waitMs(t, r.tokens) === 0) {
          window.take(t, r.tokens);
          arrivals.push({ atMs: t, tokens: r.tokens });
        }
      }
      const q = quotaShare({ arrivals, endMs: t + 1, windowMs, limit, algorithm });
      if (q !== null && q.share > 1) throw new Error(`share ${q.share}: ${q.tokens} tokens admitted in a budget of ${q.budget}`);
    }));
  });
});
