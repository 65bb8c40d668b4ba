import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkProperty } from "@ratequeue/testkit";
import { GrantHistory } from "./grant-history.js";

const FILE = "packages/dashboard/src/grant-history.test.ts";

/** The reference: keep every grant, count by filtering. */
function referenceSeries(grants: readonly { resource: string; atMs: number; count: number }[], resource: string, endMs: number, seconds: number): number[] | null {
  const mine = grants.filter((g) => g.resource === resource);
  if (mine.length === 0) return null;
  const endSecond = Math.floor(endMs / 1000);
  return Array.from({ length: seconds }, (_, i) => {
    const second = endSecond - seconds + 1 + i;
    return mine.filter((g) => Math.floor(g.atMs / 1000) === second).reduce((sum, g) => sum + g.count, 0);
  });
}

describe("GrantHistory", () => {
  it("counts grants per second, oldest first, ending with the second that holds endMs", () => {
    const h = new GrantHistory({ seconds: 5 });
    h.record("a", 10_000);
    h.record("a", 10_999, 2);
    h.record("a", 12_500);
    h.record("b", 12_000);
    expect(h.series("a", 13_100)).toEqual([0, 3, 0, 1, 0]);
    expect(h.series("b", 13_100)).toEqual([0, 0, 0, 1, 0]);
    expect(h.total("a")).toBe(4);
    expect(h.series("never", 13_100)).toBeNull();
    expect(h.total("never")).toBe(0);
    expect(h.latestMs).toBe(12_500);
  });

  it("forgets seconds that left the ring but keeps them in the total", () => {
    const h = new GrantHistory({ seconds: 3 });
    h.record("a", 1_000);
    h.record("a", 4_000); // same slot as second 1, three seconds later: replaces it
    h.record("a", 1_500); // older than the ring now reaches: total only
    expect(h.series("a", 4_000)).toEqual([0, 0, 1]);
    expect(h.total("a")).toBe(3);
  });

  it("starts a series at time zero without negative seconds", () => {
    const h = new GrantHistory({ seconds: 4 });
    h.record("a", 0);
    expect(h.series("a", 500)).toEqual([0, 0, 0, 1]);
  });

  it("tracks at most resourcesMax resources; the rest count as untracked", () => {
    const h = new GrantHistory({ seconds: 2, resourcesMax: 1 });
    h.record("a", 1_000);
    h.record("b", 1_000, 3);
    expect(h.resourceCount).toBe(1);
    expect(h.series("b", 1_000)).toBeNull();
    expect(h.untracked).toBe(3);
    h.forget("a");
    h.record("b", 1_000);
    expect(h.series("b", 1_000)).toEqual([0, 1]);
  });

  it("refuses bad input with a specific error and changes nothing", () => {
    const h = new GrantHistory({ seconds: 2 });
    expect(() => h.record("a", Number.NaN)).toThrow(/atMs must be a finite time/);
    expect(() => h.record("a", -1)).toThrow(/atMs must be a finite time/);
    expect(() => h.record("a", 1, 0)).toThrow(/count must be a positive integer/);
    expect(() => h.record("a", 1, 1.5)).toThrow(/count must be a positive integer/);
    expect(() => h.series("a", Number.POSITIVE_INFINITY)).toThrow(/endMs must be a finite time/);
    expect(h.resourceCount).toBe(0);
    expect(h.latestMs).toBe(0);
    expect(() => new GrantHistory({ seconds: 0 })).toThrow(/seconds must be an integer/);
    expect(() => new GrantHistory({ resourcesMax: -1 })).toThrow(/resourcesMax must be/);
  });

  it("property: agrees with a keep-everything model for any grants (any order) and any end at or after the latest", () => {
    const grant = fc.record({
      resource: fc.constantFrom("a", "b", "c"),
      atMs: fc.integer({ min: 0, max: 40_000 }),
      count: fc.integer({ min: 1, max: 5 }),
    });
    const arb = fc.record({
      seconds: fc.integer({ min: 1, max: 12 }),
      grants: fc.array(grant, { maxLength: 60 }),
      endAfterMs: fc.integer({ min: 0, max: 20_000 }),
    });
    checkProperty({ file: FILE, name: "property: agrees with a keep-everything model" }, fc.property(arb, ({ seconds, grants, endAfterMs }) => {
      const h = new GrantHistory({ seconds });
      for (const g of grants) h.record(g.resource, g.atMs, g.count);
      const endMs = h.latestMs + endAfterMs;
      for (const r of ["a", "b", "c"]) {
        expect(h.series(r, endMs)).toEqual(referenceSeries(grants, r, endMs, seconds));
        expect(h.total(r)).toBe(grants.filter((g) => g.resource === r).reduce((s, g) => s + g.count, 0));
      }
    }));
  });
});
