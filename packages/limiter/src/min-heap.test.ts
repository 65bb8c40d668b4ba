import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MinHeap } from "./min-heap.js";

describe("MinHeap", () => {
  it("pops in (key, tie) order whatever the push order, also after filter", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 1000 }))), fc.integer({ min: 0, max: 3 }), (entries, mod) => {
        const heap = new MinHeap<number>();
        for (const [i, [k, t]] of entries.entries()) heap.push(k, t, i);
        heap.filter((i) => i % 4 !== mod);
        const expected = entries
          .map(([k, t], i) => ({ k, t, i }))
          .filter(({ i }) => i % 4 !== mod)
          .sort((a, b) => a.k - b.k || a.t - b.t || a.i - b.i);
        const got: { k: number; t: number }[] = [];
        for (let k = heap.peekKey(); k !== undefined; k = heap.peekKey()) {
          const i = heap.pop() as number;
          got.push({ k, t: (entries[i] as [number, number])[1] });
        }
        expect(got).toEqual(expected.map(({ k, t }) => ({ k, t })));
      }),
    );
  });
});
