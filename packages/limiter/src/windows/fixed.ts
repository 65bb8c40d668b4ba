import type { Reader, Writer } from "../codec.js";
import type { Window } from "./window.js";

/**
 * Fixed window: clock-aligned buckets [k * windowMs, (k + 1) * windowMs) of
 * log time, reset at each boundary. O(1) memory. Allows up to 2x the limit
 * across a boundary (a burst at the end of one bucket and the start of the
 * next), which is the documented price of the algorithm.
 */
export class FixedWindow implements Window {
  private index = 0;
  private used = 0;

  constructor(readonly windowMs: number) {}

  private roll(at: number): void {
    const index = Math.floor(at / this.windowMs);
    if (index !== this.index) {
      this.index = index;
      this.used = 0;
    }
  }

  fits(at: number, amount: number, cap: number): boolean {
    this.roll(at);
    return this.used + amount <= cap;
  }

  fitAt(at: number, amount: number, cap: number): number {
    this.roll(at);
    if (amount > cap) return Infinity;
    return this.used + amount <= cap ? at : (this.index + 1) * this.windowMs;
  }

  charge(at: number, amount: number): void {
    this.roll(at);
    this.used += amount;
  }

  chargeExtra(at: number, amount: number): void {
    this.charge(at, amount);
  }

  adjust(at: number, _seq: number, grantedAt: number, diff: number): void {
    this.roll(at);
    if (Math.floor(grantedAt / this.windowMs) !== this.index) return; // its bucket has passed
    // Clamped: a window created by a config change after the grant never counted it.
    this.used = Math.max(0, this.used + diff);
  }

  wouldOverflow(diff: number): boolean {
    return this.used + diff > Number.MAX_SAFE_INTEGER;
  }

  usedAt(at: number): number {
    return Math.floor(at / this.windowMs) === this.index ? this.used : 0;
  }

  encode(w: Writer): void {
    w.uint(this.index);
    w.uint(this.used);
  }

  static decode(r: Reader, windowMs: number): FixedWindow {
    const win = new FixedWindow(windowMs);
    win.index = r.uint();
    win.used = r.uint();
    return win;
  }
}
