import { SnapshotError, type Reader, type Writer } from "../codec.js";
import { mulAddDiv } from "./exact.js";
import type { Window } from "./window.js";

/**
 * Token bucket of capacity `limit`, refilled continuously at
 * `limit / windowMs` units per ms. We store the debt (capacity minus level)
 * at `lastAt` exactly, as whole units `debt` plus `frac / windowMs` of a unit
 * (0 <= frac < windowMs). Refilling `e` ms repays `e * limit / windowMs`
 * units, computed by {@link mulAddDiv}: exact integer math for any limit up
 * to 1e12 and any window up to 31 days, with no drift however the refills
 * are split. O(1) memory.
 *
 * Settle charges or refunds the difference now (a refund never raises the
 * level above capacity), as the SPEC says: "more charges the difference".
 *
 * With a delivery margin D, `limit * D / windowMs` units (what refills in D)
 * are held back: grants fill the bucket up to `cap - limit * D / windowMs`.
 * Grants made in any interval [u, v] then total at most
 * `cap - limit * D / windowMs + limit * (v - u) / windowMs`, so requests
 * arriving in [s, t] (granted in [s - D, t]) total at most
 * `cap + limit * (t - s) / windowMs`: a provider's bucket counting at arrival
 * never runs dry. The long-run rate is not reduced at all.
 */
export class BucketWindow implements Window {
  #debt = 0;
  #frac = 0;
  #lastAt = 0;
  /** What is held back, `holdUnits + holdFrac / windowMs` = limit * D / windowMs (0 <= holdFrac < windowMs). */
  #holdUnits = 0;
  #holdFrac = 0;
  #limit: number;
  readonly #marginMs: number;

  constructor(
    readonly windowMs: number,
    limit: number,
    marginMs: number,
  ) {
    this.#limit = limit;
    this.#marginMs = marginMs;
    this.#hold();
  }

  #hold(): void {
    [this.#holdUnits, this.#holdFrac] = mulAddDiv(this.#limit, this.#marginMs, 0, this.windowMs);
  }

  /** A config change of the limit: refill up to `at` at the old rate, then use the new one. */
  setLimit(at: number, limit: number): void {
    this.#refill(at);
    this.#limit = limit;
    this.#hold();
  }


  capacity(cap: number): number {
    return cap - this.#holdUnits - (this.#holdFrac > 0 ? 1 : 0);
  }

  /**
   * How far over its fill line the bucket would be after `amount` more, in 1/windowMs units:
   * (debt + frac/windowMs + amount) - (cap - hold), times windowMs. Fits when <= 0. Exact: the
   * whole-unit part x is compared first, so nothing large is multiplied.
   */
  #excess(amount: number, cap: number): { whole: number; scaled: number } {
    const whole = this.#debt + amount + this.#holdUnits - cap;
    const parts = this.#frac + this.#holdFrac; // 0 <= parts < 2 * windowMs
    return { whole, scaled: whole >= 1 || whole <= -2 ? Math.sign(whole) : whole * this.windowMs + parts };
  }

  /** The debt `[units, frac]` at `at >= lastAt`, without changing anything. */
  #debtAt(at: number): [number, number] {
    const elapsedMs = at - this.#lastAt;
    if (elapsedMs <= 0 || this.#limit === 0 || (this.#debt === 0 && this.#frac === 0)) return [this.#debt, this.#frac];
    const [q, r] = mulAddDiv(elapsedMs, this.#limit, 0, this.windowMs);
    if (q > this.#debt || (q === this.#debt && r >= this.#frac)) return [0, 0];
    return r > this.#frac ? [this.#debt - q - 1, this.#frac - r + this.windowMs] : [this.#debt - q, this.#frac - r];
  }

  #refill(at: number): void {
    if (at <= this.#lastAt) return;
    [this.#debt, this.#frac] = this.#debtAt(at);
    this.#lastAt = at;
  }

  fits(at: number, amount: number, cap: number): boolean {
    this.#refill(at);
    return this.#excess(amount, cap).scaled <= 0;
  }

  fitAt(at: number, amount: number, cap: number): number {
    this.#refill(at);
    if (amount > this.capacity(cap)) return Infinity;
    const { whole, scaled } = this.#excess(amount, cap);
    if (scaled <= 0) return at;
    if (this.#limit === 0) return Infinity;
    // The first e with e * limit >= whole * windowMs + frac + holdFrac (> 0, so whole >= -1).
    const [q, r] = whole >= 0 ? mulAddDiv(whole, this.windowMs, this.#frac + this.#holdFrac, this.#limit) : mulAddDiv(scaled, 1, 0, this.#limit);
    const t = at + q + (r > 0 ? 1 : 0);
    return Number.isSafeInteger(t) ? t : Infinity;
  }

  charge(at: number, amount: number): void {
    this.#refill(at);
    this.#debt += amount;
  }

  chargeExtra(at: number, amount: number): void {
    this.charge(at, amount);
  }

  adjust(at: number, _seq: number, _grantedAt: number, diff: number): void {
    this.#refill(at);
    this.#debt += diff;
    if (this.#debt < 0) [this.#debt, this.#frac] = [0, 0];
  }

  wouldOverflow(diff: number): boolean {
    return this.#debt + diff + 1 > Number.MAX_SAFE_INTEGER;
  }

  usedAt(at: number): number {
    const [debt, frac] = this.#debtAt(Math.max(at, this.#lastAt));
    return debt + frac / this.windowMs;
  }

  encode(w: Writer): void {
    w.uint(this.#debt);
    w.uint(this.#frac);
    w.uint(this.#lastAt);
  }

  static decode(r: Reader, windowMs: number, limit: number, marginMs: number): BucketWindow {
    const win = new BucketWindow(windowMs, limit, marginMs);
    win.#debt = r.uint();
    win.#frac = r.uint();
    win.#lastAt = r.uint();
    if (win.#frac >= windowMs) throw new SnapshotError("bucket fraction out of range");
    return win;
  }
}
