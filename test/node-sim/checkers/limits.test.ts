import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LimitChecker, specFromConfig, type LimitSpec } from "./limits.js";

const one = (limit: LimitSpec) => new LimitChecker([{ name: "r", limits: [limit] }]);
let lease = 0;
const grant = (c: LimitChecker, atMs: number, load: Record<string, number> = { load: 1 }) => c.grant({ resource: "r", leaseId: ++lease, load, atMs });

describe("LimitChecker (the simulator's brute-force window model)", () => {
  it("sliding: a grant counts through t + W - 1 and leaves at t + W", () => {
    const c = one({ kind: "rate", limit: 2, windowMs: 100, window: "sliding" });
    expect(grant(c, 0)).toBeNull();
    expect(grant(c, 50)).toBeNull();
    expect(grant(c, 99)).toMatch(/3 charged in one sliding window/);
    const d = one({ kind: "rate", limit: 2, windowMs: 100, window: "sliding" });
    grant(d, 0);
    grant(d, 50);
    expect(grant(d, 100)).toBeNull();
  });

  it("fixed: clock-aligned buckets; a burst across the boundary is allowed", () => {
    const c = one({ kind: "load", limit: 10, windowMs: 100, window: "fixed", dimension: "input" });
    expect(grant(c, 95, { input: 10 })).toBeNull();
    expect(grant(c, 100, { input: 10 })).toBeNull();
    expect(grant(c, 150, { input: 1 })).toMatch(/11 charged in one fixed window/);
  });

  it("bucket: capacity L at once, then L / W per ms", () => {
    const c = one({ kind: "rate", limit: 4, windowMs: 100, window: "bucket" });
    for (let i = 0; i < 4; i++) expect(grant(c, 0)).toBeNull();
    expect(grant(c, 10)).toMatch(/token bucket allows/);
    const d = one({ kind: "rate", limit: 4, windowMs: 100, window: "bucket" });
    for (let i = 0; i < 4; i++) grant(d, 0);
    expect(grant(d, 25)).toBeNull(); // one token refilled
  });

  it("configure: the limits in force judge every later grant over all usage the name ever granted, across changes, delete and re-create", () => {
    const c = one({ kind: "rate", limit: 3, windowMs: 60_000, window: "sliding" });
    for (const t of [10, 11, 12]) expect(grant(c, t)).toBeNull();
    // 3 per 60 s used up, then windowMs 60001 (the first example of #11): the grants already made still count.
    c.configure("r", specFromConfig("r", { limits: [{ kind: "rate", limit: 3, windowMs: 60_001 }] }));
    expect(grant(c, 60_010)).toMatch(/4 charged in one sliding window of 60001 ms/);
    const d = one({ kind: "load", limit: 100, windowMs: 1000, window: "sliding", dimension: "load" });
    expect(grant(d, 0, { load: 80 })).toBeNull();
    d.configure("r", null);
    expect(grant(d, 1, { load: 1 })).toMatch(/was deleted/);
    d.configure("r", specFromConfig("r", { limits: [{ kind: "load", limit: 100, windowMs: 1000, window: "bucket" }] }));
    expect(grant(d, 2, { load: 30 })).toMatch(/token bucket allows/); // the deleted resource's 80 still count
  });

  it("specFromConfig reads an admin body with SPEC's defaults (sliding, dimension load) and ignores lanes and margins", () => {
    expect(specFromConfig("x", { limits: [{ kind: "load", limit: 5, windowMs: 10, deliveryMarginMs: 2, reserved: {} }, { kind: "concurrency", limit: 2 }], lanes: {} })).toEqual({
      name: "x",
      limits: [{ kind: "load", limit: 5, windowMs: 10, window: "sliding", dimension: "load" }, { kind: "concurrency", limit: 2 }],
    });
  });

  it("settle: a lower actual returns capacity; a higher one is excused, never counted against later grants", () => {
    const c = one({ kind: "load", limit: 100, windowMs: 1000, window: "sliding", dimension: "load" });
    expect(grant(c, 0, { load: 80 })).toBeNull();
    c.settle(lease, { load: 20 }, 10);
    expect(grant(c, 20, { load: 80 })).toBeNull();
    c.settle(lease, { load: 500 }, 30);
    expect(grant(c, 40, { load: 0 })).toBeNull();
    expect(grant(c, 50, { load: 1 })).toMatch(/101 charged/);
  });

  it("reserved capacity: a grant must leave the units reserved for other lanes unused; the lane it is reserved for may use it", () => {
    const c = new LimitChecker([{ name: "r", limits: [{ kind: "rate", limit: 4, windowMs: 100, window: "sliding" }, { kind: "concurrency", limit: 3 }] }]);
    const g = (reserved: number[]) => c.grant({ resource: "r", leaseId: ++lease, load: {}, atMs: 10 }, reserved);
    expect(g([1, 1])).toBeNull(); // 1 of rate 4 - 1 reserved elsewhere; 1 of concurrency 3 - 1
    expect(g([1, 1])).toBeNull(); // 2 and 2
    expect(g([0, 0])).toBeNull(); // the reserved lane takes the third: 3 and 3
    expect(g([1, 0])).toMatch(/rate 4\/100ms sliding, 1 reserved for other lanes\): 4 charged/);
  });

  it("concurrency and cooldown", () => {
    const c = one({ kind: "concurrency", limit: 1 });
    expect(grant(c, 0)).toBeNull();
    const held = lease;
    expect(grant(c, 1)).toMatch(/2 leases held/);
    c.release(held);
    c.release(lease);
    expect(grant(c, 2)).toBeNull();
    c.cooldown("r", 100);
    c.release(lease);
    expect(grant(c, 99)).toMatch(/during a cooldown/);
  });

  it("agrees with a per-millisecond recount of the sliding window (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 9 })), { maxLength: 40 }), (steps) => {
        const W = 25;
        const L = 20;
        const c = one({ kind: "load", limit: L, windowMs: W, window: "sliding", dimension: "load" });
        const history: [number, number][] = [];
        let t = 0;
        for (const [dt, amount] of steps) {
          t += dt;
          history.push([t, amount]);
          // The dumbest model: the sum over grants in (t - W, t].
          const used = history.filter(([at]) => at > t - W).reduce((s, [, a]) => s + a, 0);
          const verdict = grant(c, t, { load: amount });
          expect(verdict === null).toBe(used <= L);
          if (verdict !== null) return; // the checker stops a run at its first violation
        }
      }),
    );
  });
});
