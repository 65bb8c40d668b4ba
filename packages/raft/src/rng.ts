/**
 * The only source of randomness of the core: election timeouts are drawn from
 * it, so a seed replays an election exactly.
 */
export interface Rng {
  /** A uniformly distributed integer in [0, maxExclusive). `maxExclusive` is a positive integer. */
  nextInt(maxExclusive: number): number;
}

/**
 * A small deterministic PRNG: a 32-bit state advanced by a Weyl sequence and
 * finished by an integer mixer (the splitmix32 construction). Not for secrets.
 *
 * @example
 * const rng = createRng(42);
 * rng.nextInt(10); // the same number for seed 42 every time
 */
export function createRng(seed: number): Rng {
  if (!Number.isInteger(seed)) throw new TypeError(`createRng: seed must be an integer, got ${seed}`);
  let state = seed >>> 0;
  const next32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  return {
    nextInt(maxExclusive: number): number {
      if (!Number.isInteger(maxExclusive) || maxExclusive < 1 || maxExclusive > 0x1_0000_0000) {
        throw new RangeError(`nextInt: maxExclusive must be an integer in [1, 2^32], got ${maxExclusive}`);
      }
      // Rejection sampling keeps the result unbiased for any bound.
      const limit = 0x1_0000_0000 - (0x1_0000_0000 % maxExclusive);
      for (;;) {
        const x = next32();
        if (x < limit) return x % maxExclusive;
      }
    },
  };
}
