import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { STAMP_RATE, StampClock } from "./stamp-clock.js";

const WALL = 1_750_000_000_000;

describe("StampClock", () => {
  it("takes the wall clock only as the origin of a brand-new cluster, then counts monotonic time", () => {
    const c = new StampClock();
    expect(c.read(500)).toBeNull();
    expect(c.stamp(500, WALL)).toBe(WALL);
    // The wall clock jumps an hour ahead: log time does not notice.
    expect(c.stamp(1_500, WALL + 3_600_000)).toBe(WALL + Math.floor(1_000 * STAMP_RATE));
  });

  it("continues from a learned stamp by the monotonic time since it was learned, not since it was made", () => {
    const c = new StampClock();
    c.learned(1_000_000, 50); // the stamp reached this node at monotonic 50, whenever it was made
    expect(c.read(50)).toBe(1_000_000);
    expect(c.stamp(10_050, 0)).toBe(1_000_000 + Math.floor(10_000 * STAMP_RATE));
  });

  it("never stamps below the last stamp in the log, and a cut tail moves that floor back down", () => {
    const c = new StampClock();
    c.learned(2_000, 0);
    expect(c.stamp(0, WALL)).toBe(2_000);
    c.learned(1_500, 100); // the entry stamped 2,000 was cut; the last stamp in the log is now 1,500
    expect(c.read(100)).toBe(1_500);
  });

  it("delayUntil is the monotonic wait until the clock reads a stamp", () => {
    const c = new StampClock();
    c.learned(10_000, 0);
    expect(c.delayUntil(9_000, 0)).toBe(0);
    const wait = c.delayUntil(10_999, 0);
    expect(c.read(wait)).toBeGreaterThanOrEqual(10_999);
    expect(c.read(wait - 1)).toBeLessThan(10_999);
  });

  it("property: stamps never advance faster than monotonic time since the anchor they count from", () => {
    type Step = { kind: "learn"; stamp: number; dt: number } | { kind: "stamp"; dt: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant("learn" as const), stamp: fc.integer({ min: 0, max: 1e9 }), dt: fc.double({ min: 0, max: 5_000, noNaN: true }) }),
      fc.record({ kind: fc.constant("stamp" as const), dt: fc.double({ min: 0, max: 5_000, noNaN: true }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 0, max: 1e12 }), (steps, wall) => {
        const c = new StampClock();
        let mono = 0;
        let last: { stamp: number; mono: number } | null = null; // the last stamp in the log and when it got there
        for (const s of steps) {
          mono += s.dt;
          if (s.kind === "learn") {
            c.learned(s.stamp, mono);
            last = { stamp: s.stamp, mono };
            continue;
          }
          const at = c.stamp(mono, wall);
          if (last !== null) {
            expect(at).toBeGreaterThanOrEqual(last.stamp);
            expect(at - last.stamp).toBeLessThanOrEqual(Math.ceil(mono - last.mono));
          }
          last = { stamp: at, mono };
        }
      }),
    );
  });
});
