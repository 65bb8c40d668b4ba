import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventQueue } from "./event-queue.js";

describe("EventQueue", () => {
  it("pops in (time, push order) order, like a stable sort", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 60 }), fc.integer({ min: 0, max: 5 }), (times, dropMod) => {
        const q = new EventQueue<number>();
        for (const [i, t] of times.entries()) q.push(t, i);
        if (dropMod > 0) q.removeWhere((i) => i % (dropMod + 1) === 0);
        const expected = times
          .map((t, i) => ({ t, i }))
          .filter(({ i }) => dropMod === 0 || i % (dropMod + 1) !== 0)
          .sort((a, b) => a.t - b.t || a.i - b.i)
          .map(({ i }) => i);
        const got: number[] = [];
        for (let e = q.pop(); e !== undefined; e = q.pop()) got.push(e.item);
        expect(got).toEqual(expected);
        expect(q.peekTimeMs()).toBe(Infinity);
      }),
    );
  });

  it("rejects a non-finite time", () => {
    expect(() => new EventQueue<number>().push(NaN, 1)).toThrow(/finite/);
  });
});
