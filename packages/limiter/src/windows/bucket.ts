import type { Reader, Writer } from "../codec.js";
import type { Window } from "./window.js";

/**
 * Token bucket of capacity `limit`, refilled continuously at
 * `limit / windowMs` units per ms. We store the debt (capacity minus level)
 * at `lastAt`, scaled by `windowMs` so that refill is exact integer math:
 * each ms repays `limit` scaled units. The config guarantees
 * `limit * windowMs < 2^53`. O(1) memory.
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
  private debtScaled = 0;
  private lastAt = 0;

  constructor(
    readonly windowMs: number,
    private limit: number,
    private marginMs: number,
  ) {}

  setMargin(_at: number, marginMs: number): void {
    this.marginMs = marginMs;
  }

  /** What the bucket may fill up to, scaled by windowMs: the cap minus what refills in D. */
  private fillScaled(cap: number): number {
    return cap * this.windowMs - this.limit * this.marginMs;
  }

  capacity(cap: number): number {
    return Math.floor(this.fillScaled(cap) / this.windowMs);
  }

  /** A config change of the limit: refill up to `at` at the old rate, then use the new one. */
  setLimit(at: number, limit: number): void {
    this.refill(at);
    this.limit = limit;
  }

  private refill(at: number): void {
    if (at <= this.lastAt) return;
    if (this.limit === 0) {
      // A strict lane whose share rounds down to 0 can only ever be charged 0.
      this.lastAt = at;
      return;
    }
    const elapsedMs = at - this.lastAt;
    this.lastAt = at;
    // Compare before multiplying so a long idle gap cannot overflow.
    this.debtScaled = elapsedMs >= this.debtScaled / this.limit ? 0 : this.debtScaled - elapsedMs * this.limit;
  }

  fits(at: number, amount: number, cap: number): boolean {
    this.refill(at);
    return this.debtScaled + amount * this.windowMs <= this.fillScaled(cap);
  }

  fitAt(at: number, amount: number, cap: number): number {
    this.refill(at);
    if (amount > this.capacity(cap)) return Infinity;
    const excess = this.debtScaled + amount * this.windowMs - this.fillScaled(cap);
    if (excess <= 0) return at;
    return this.limit === 0 ? Infinity : at + Math.ceil(excess / this.limit);
  }

  charge(at: number, amount: number): void {
    this.refill(at);
    this.debtScaled += amount * this.windowMs;
  }

  adjust(at: number, _seq: number, _grantedAt: number, diff: number): void {
    this.refill(at);
    this.debtScaled = Math.max(0, this.debtScaled + diff * this.windowMs);
  }

  wouldOverflow(diff: number): boolean {
    return this.debtScaled + diff * this.windowMs > Number.MAX_SAFE_INTEGER;
  }

  usedAt(at: number): number {
    const elapsedMs = Math.max(0, at - this.lastAt);
    if (this.limit === 0) return this.debtScaled / this.windowMs;
    const debt = elapsedMs >= this.debtScaled / this.limit ? 0 : this.debtScaled - elapsedMs * this.limit;
    return debt / this.windowMs;
  }

  encode(w: Writer): void {
    w.uint(this.debtScaled);
    w.uint(this.lastAt);
  }

  static decode(r: Reader, windowMs: number, limit: number, marginMs: number): BucketWindow {
    const win = new BucketWindow(windowMs, limit, marginMs);
    win.debtScaled = r.uint();
    win.lastAt = r.uint();
    return win;
  }
}
