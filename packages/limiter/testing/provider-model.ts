/**
 * A provider's own rate limiter, as the big LLM APIs run it: it counts each
 * request when the request *arrives*, with one of three algorithms, and
 * refuses (a 429) what would take it over the limit. Deliberately simple
 * (brute force over every admitted request), sharing no code with the
 * limiter. `examples/provider-sim.ts` runs the same three algorithms over
 * HTTP.
 *
 * - sliding: an exact log; a request arriving at `a` is refused when the
 *   requests admitted in (a - windowMs, a] plus it exceed the limit.
 * - fixed: clock-aligned buckets [k * windowMs, (k + 1) * windowMs).
 * - bucket: a token bucket that starts full (capacity `limit`) and refills at
 *   `limit / windowMs` per ms; kept in units of 1/windowMs so it is exact.
 *
 * Arrivals must come in non-decreasing time order.
 */
export type ProviderAlgorithm = "sliding" | "fixed" | "bucket";

export class ProviderWindow {
  readonly #admitted: { at: number; amount: number }[] = [];
  #debtScaled = 0;
  #lastAt = 0;
  /** Requests refused so far (the 429s). */
  refused = 0;

  constructor(
    readonly algorithm: ProviderAlgorithm,
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** Counts a request of `amount` units arriving at `at`; false is a 429. */
  arrive(at: number, amount: number): boolean {
    if (at < this.#lastAt) throw new Error(`provider model: arrival at ${at} before ${this.#lastAt}`);
    let ok: boolean;
    if (this.algorithm === "bucket") {
      this.#debtScaled = Math.max(0, this.#debtScaled - (at - this.#lastAt) * this.limit);
      ok = this.#debtScaled + amount * this.windowMs <= this.limit * this.windowMs;
      if (ok) this.#debtScaled += amount * this.windowMs;
    } else {
      const inWindow =
        this.algorithm === "sliding"
          ? (t: number): boolean => t > at - this.windowMs
          : (t: number): boolean => Math.floor(t / this.windowMs) === Math.floor(at / this.windowMs);
      let used = 0;
      for (const r of this.#admitted) if (inWindow(r.at)) used += r.amount;
      ok = used + amount <= this.limit;
      if (ok) this.#admitted.push({ at, amount });
    }
    this.#lastAt = at;
    if (!ok) this.refused++;
    return ok;
  }
}
