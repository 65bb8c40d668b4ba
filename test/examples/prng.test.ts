import { describe, expect, it } from "vitest";
import { randomInt, seededRandom } from "../../examples/lib/prng.js";

describe("seededRandom", () => {
  it("is reproducible per seed and differs between seeds", () => {
    const draw = (seed: number) => Array.from({ length: 20 }, seededRandom(seed));
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it("stays in [0, 1) and small seeds do not start near 0 (they used to: every first reply was 1 token)", () => {
    const firsts = Array.from({ length: 100 }, (_, seed) => seededRandom(seed)());
    const mean = firsts.reduce((a, b) => a + b, 0) / firsts.length;
    expect(mean).toBeGreaterThan(0.35);
    expect(mean).toBeLessThan(0.65);
    const r = seededRandom(1);
    for (let i = 0; i < 10_000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it("randomInt covers both ends of its range and nothing outside", () => {
    const r = seededRandom(5);
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++) seen.add(randomInt(r, 3, 7));
    expect([...seen].sort()).toEqual([3, 4, 5, 6, 7]);
    expect(() => seededRandom(1.5)).toThrow(/seed must be an integer/);
  });
});
