import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../examples/lib/bucket.js";
import { checkProperty } from "@ratequeue/testkit";

const FILE = "test/examples/bucket.test.ts";

type Op = { advanceMs: number } & ({ kind: "take"; amount: number } | { kind: "adjust"; diff: number });

const configArb = fc.record({ capacity: fc.integer({ min: 1, max: 10_000 }), windowMs: fc.integer({ min: 1, max: 60_000 }) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ advanceMs: fc.integer({ min: 0, max: 2_000 }), kind: fc.constant("take" as const), amount: fc.integer({ min: 0, max: 12_000 }) }),
  fc.record({ advanceMs: fc.integer({ min: 0, max: 2_000 }), kind: fc.constant("adjust" as const), diff: fc.integer({ min: -5_000, max: 5_000 }) }),
);

describe("TokenBucket (the provider simulator's limit)", () => {
  it("never admits more than capacity + refill over any interval, plus what was refunded in it", () => {
    // The provider's promise, checked independently of how the bucket computes it.
    const name = "never admits more than capacity + refill over any interval, plus what was refunded in it";
    checkProperty({ file: FILE, name }, fc.property(fc.tuple(configArb, fc.array(opArb, { maxLength: 60 })), ([{ capacity, windowMs }, ops]) => {
      const bucket = new TokenBucket(capacity, windowMs, 0);
      const events: { atMs: number; taken: number; refunded: number }[] = [];
      let nowMs = 0;
      for (const op of ops) {
        nowMs += op.advanceMs;
        if (op.kind === "take") {
          if (bucket.waitMs(nowMs, op.amount) !== 0) continue;
          bucket.take(nowMs, op.amount);
          events.push({ atMs: nowMs, taken: op.amount, refunded: 0 });
        } else {
          bucket.adjust(nowMs, op.diff);
          events.push({ atMs: nowMs, taken: 0, refunded: Math.max(0, -op.diff) });
        }
      }
      for (let i = 0; i < events.length; i++) {
        let taken = 0;
        let refunded = 0;
        for (let j = i; j < events.length; j++) {
          taken += events[j]!.taken;
          if (j > i) refunded += events[j - 1]!.refunded; // a refund can only fund later takes
          const spanMs = events[j]!.atMs - events[i]!.atMs;
          const bound = capacity + (capacity * spanMs) / windowMs + refunded;
          if (taken > bound + 1e-9) throw new Error(`took ${taken} in [${events[i]!.atMs}, ${events[j]!.atMs}] ms, bound ${bound}`);
        }
      }
    }));
  });

  it("waitMs is exact: an amount that must wait fits after exactly that wait, and not 1 ms sooner", () => {
    const name = "waitMs is exact: an amount that must wait fits after exactly that wait, and not 1 ms sooner";
    checkProperty({ file: FILE, name }, fc.property(fc.tuple(configArb, fc.array(opArb, { maxLength: 30 }), fc.integer({ min: 1, max: 10_000 })), ([{ capacity, windowMs }, ops, probe]) => {
        const bucket = new TokenBucket(capacity, windowMs, 0);
        let nowMs = 0;
        for (const op of ops) {
          nowMs += op.advanceMs;
          if (op.kind === "take" && bucket.waitMs(nowMs, op.amount) === 0) bucket.take(nowMs, op.amount);
          if (op.kind === "adjust") bucket.adjust(nowMs, op.diff);
        }
        const amount = Math.min(probe, capacity);
        const waitMs = bucket.waitMs(nowMs, amount);
        if (waitMs === 0) return;
        if (bucket.waitMs(nowMs + waitMs - 1, amount) === 0) throw new Error(`fits at ${waitMs - 1} ms, before the promised ${waitMs}`);
        if (bucket.waitMs(nowMs + waitMs, amount) !== 0) throw new Error(`does not fit after the promised ${waitMs} ms`);
      }));
  });

  it("starts full, refills continuously, never above capacity; a refund is capped, an extra charge may go below zero", () => {
    const b = new TokenBucket(600, 60_000, 1_000);
    expect(b.level(1_000)).toBe(600);
    b.take(1_000, 600);
    expect(b.waitMs(1_000, 1)).toBe(100); // 600 per minute = 1 per 100 ms
    expect(b.level(1_050)).toBe(0.5);
    expect(b.level(1_000_000)).toBe(600);
    b.adjust(1_000_000, -50);
    expect(b.level(1_000_000)).toBe(600);
    b.take(1_000_000, 600);
    b.adjust(1_000_000, 30);
    expect(b.level(1_000_000)).toBe(-30);
    expect(b.waitMs(1_000_000, 601)).toBe(Infinity);
  });

  it("rejects nonsense with a clear error and leaves its state alone", () => {
    expect(() => new TokenBucket(0, 60_000, 0)).toThrow(/capacity must be an integer >= 1/);
    expect(() => new TokenBucket(10, 1.5, 0)).toThrow(/windowMs must be an integer >= 1/);
    expect(() => new TokenBucket(1e9, 1e9, 0)).toThrow(/too large/);
    const b = new TokenBucket(10, 1_000, 0);
    expect(() => b.take(0, 11)).toThrow(/take\(11\)/);
    expect(() => b.waitMs(0.5, 1)).toThrow(/nowMs must be a safe integer/);
    expect(() => b.adjust(0, Number.NaN)).toThrow(/diff must be a safe integer/);
    expect(b.level(0)).toBe(10);
  });
});
