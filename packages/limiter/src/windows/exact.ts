/**
 * Exact integer arithmetic for products that may pass 2^53 (a bucket of 1e12
 * units per 31 days multiplies to ~2.7e21). Numbers when the product is safe,
 * BigInt only when it is not, so the common case allocates nothing.
 */

/** `[q, r]` with `a * b + c = q * d + r` and `0 <= r < d`, for non-negative integers (d >= 1). */
export function mulAddDiv(a: number, b: number, c: number, d: number): [number, number] {
  const p = a * b + c;
  if (p <= Number.MAX_SAFE_INTEGER) {
    const r = p % d; // exact for integers
    return [(p - r) / d, r]; // an exact multiple of d divides exactly
  }
  const big = BigInt(a) * BigInt(b) + BigInt(c);
  const D = BigInt(d);
  return [Number(big / D), Number(big % D)];
}
