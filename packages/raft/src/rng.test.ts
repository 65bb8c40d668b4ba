import { describe, expect, test } from "vitest";
import { createRng } from "./rng.js";

describe("createRng", () => {
  test("the same seed gives the same sequence; another seed another one", () => {
    const draw = (seed: number) => Array.from({ length: 20 }, ((rng) => () => rng.nextInt(1000))(createRng(seed)));
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  test("values stay in range and cover it roughly uniformly", () => {
    const rng = createRng(3);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = rng.nextInt(10);
      expect(x >= 0 && x < 10 && Number.isInteger(x)).toBe(true);
      counts[x]!++;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(600);
  });

  test("rejects bad bounds and seeds with a clear error", () => {
    expect(() => createRng(1).nextInt(0)).toThrow(/maxExclusive/);
    expect(() => createRng(1).nextInt(1.5)).toThrow(/maxExclusive/);
    expect(() => createRng(Number.NaN)).toThrow(/seed/);
  });
});
