/**
 * A seeded generator of floats in [0, 1): xorshift32 (Marsaglia's 13/17/5
 * shifts). Good enough to vary prompts, sizes and latencies reproducibly; not
 * for anything secret.
 */
export function seededRandom(seed: number): () => number {
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  // Small seeds would start xorshift near 0 (its first outputs tiny), so scramble
  // the seed first (a multiply-xorshift mix), and never start at 0, where it stays.
  let x = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** An integer in [min, max], both included. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
