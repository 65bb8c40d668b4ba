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
 */
export class BucketWindow implements Window {
  private debt = 0;
  private frac = 0;
  private lastAt = 0;

  constructor(
    readonly windowMs: number,
    private limit: number,
  ) {}

  /** A config change of the limit: refill up to `at` at the old rate, then use the new one. */
  setLimit(at: number, limit: number): void {
    this.refill(at);
    this.limit = limit;
  }

  /** The debt `[units, frac]` at `at >= lastAt`, without changing anything. */
  private debtAt(at: number): [number, number] {
    const elapsedMs = at - this.lastAt;
    if (elapsedMs <= 0 || this.limit === 0 || (this.debt === 0 && this.frac === 0)) return [this.debt, this.frac];
    const [q, r] = mulAddDiv(elapsedMs, this.limit, 0, this.windowMs);
    if (q > this.debt || (q === this.debt && r >= this.frac)) return [0, 0];
    return r > this.frac ? [this.debt - q - 1, this.frac - r + this.windowMs] : [this.debt - q, this.frac - r];
  }

  private refill(at: number): void {
    if (at <= this.lastAt) return;
    [this.debt, this.frac] = this.debtAt(at);
    this.lastAt = at;
  }

  fits(at: number, amount: number, cap: number): boolean {
    this.refill(at);
    // debt + frac/windowMs + amount <= cap, in integers.
    return this.debt + amount + (this.frac > 0 ? 1 : 0) <= cap;
  }

  fitAt(at: number, amount: number, cap: number): number {
    this.refill(at);
    if (amount > cap) return Infinity;
    if (this.debt + amount + (this.frac > 0 ? 1 : 0) <= cap) return at;
    if (this.limit === 0) return Infinity;
    // The first e with e * limit / windowMs >= (debt + amount - cap) + frac / windowMs.
    const [q, r] = mulAddDiv(this.debt + amount - cap, this.windowMs, this.frac, this.limit);
    const t = at + q + (r > 0 ? 1 : 0);
    return Number.isSafeInteger(t) ? t : Infinity;
  }

  charge(at: number, amount: number): void {
    this.refill(at);
    this.debt += amount;
  }

  adjust(at: number, _seq: number, _grantedAt: number, diff: number): void {
    this.refill(at);
    this.debt += diff;
    if (this.debt < 0) [this.debt, this.frac] = [0, 0];
  }

  wouldOverflow(diff: number): boolean {
    return this.debt + diff + 1 > Number.MAX_SAFE_INTEGER;
  }

  usedAt(at: number): number {
    const [debt, frac] = this.debtAt(Math.max(at, this.lastAt));
    return debt + frac / this.windowMs;
  }

  encode(w: Writer): void {
    w.uint(this.debt);
    w.uint(this.frac);
    w.uint(this.lastAt);
  }

  static decode(r: Reader, windowMs: number, limit: number): BucketWindow {
    const win = new BucketWindow(windowMs, limit);
    win.debt = r.uint();
    win.frac = r.uint();
    win.lastAt = r.uint();
    if (win.frac >= windowMs) throw new SnapshotError("bucket fraction out of range");
    return win;
  }
}
