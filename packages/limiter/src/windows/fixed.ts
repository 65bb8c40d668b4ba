import type { Reader, Writer } from "../codec.js";
import type { Window } from "./window.js";

/**
 * Fixed window: clock-aligned buckets [k * windowMs, (k + 1) * windowMs) of
 * log time, reset at each boundary. Allows up to 2x the limit across a
 * boundary (a burst at the end of one bucket and the start of the next),
 * which is the documented price of the algorithm.
 *
 * With a delivery margin D, a grant stamped in the last D ms of bucket k may
 * reach the provider in bucket k + 1, so it counts in both: bucket k + 1
 * starts with the grants stamped in [(k + 1) * windowMs - D, (k + 1) * windowMs)
 * (`carry`). The provider's bucket k + 1 then sees at most what bucket k + 1
 * counts here. D <= windowMs, so a grant reaches at most the next bucket.
 * O(1) memory.
 */
export class FixedWindow implements Window {
  #index = 0;
  #used = 0;
  /** Units charged in this bucket's last D ms: what the next bucket starts with. */
  #carry = 0;
  readonly #marginMs: number;

  constructor(
    readonly windowMs: number,
    marginMs: number,
  ) {
    this.#marginMs = marginMs;
  }


  capacity(cap: number): number {
    return cap;
  }

  #roll(at: number): void {
    const index = Math.floor(at / this.windowMs);
    if (index === this.#index) return;
    this.#used = index === this.#index + 1 ? this.#carry : 0;
    this.#carry = 0;
    this.#index = index;
  }

  /** Whether a grant at `at` in the current bucket also reaches the next one. */
  #inTail(at: number): boolean {
    return at >= (this.#index + 1) * this.windowMs - this.#marginMs;
  }

  fits(at: number, amount: number, cap: number): boolean {
    this.#roll(at);
    // carry <= used, so a grant that fits here also fits the next bucket.
    return this.#used + amount <= cap;
  }

  fitAt(at: number, amount: number, cap: number): number {
    this.#roll(at);
    if (amount > cap) return Infinity;
    if (this.#used + amount <= cap) return at;
    return this.#carry + amount <= cap ? (this.#index + 1) * this.windowMs : (this.#index + 2) * this.windowMs;
  }

  charge(at: number, amount: number): void {
    this.#roll(at);
    this.#used += amount;
    if (this.#inTail(at)) this.#carry += amount;
  }

  chargeExtra(at: number, amount: number): void {
    this.charge(at, amount);
  }

  adjust(at: number, _seq: number, grantedAt: number, diff: number): void {
    this.#roll(at);
    // Clamped: a window created by a config change after the grant never counted it.
    const bucket = Math.floor(grantedAt / this.windowMs);
    if (bucket === this.#index) {
      this.#used = Math.max(0, this.#used + diff);
      if (this.#inTail(grantedAt)) this.#carry = Math.max(0, this.#carry + diff);
    } else if (bucket === this.#index - 1 && grantedAt >= this.#index * this.windowMs - this.#marginMs) {
      this.#used = Math.max(0, this.#used + diff); // carried into this bucket
    }
  }

  wouldOverflow(diff: number): boolean {
    return this.#used + diff > Number.MAX_SAFE_INTEGER;
  }

  usedAt(at: number): number {
    const index = Math.floor(at / this.windowMs);
    return index === this.#index ? this.#used : index === this.#index + 1 ? this.#carry : 0;
  }

  encode(w: Writer): void {
    w.uint(this.#index);
    w.uint(this.#used);
    w.uint(this.#carry);
  }

  static decode(r: Reader, windowMs: number, marginMs: number): FixedWindow {
    const win = new FixedWindow(windowMs, marginMs);
    win.#index = r.uint();
    win.#used = r.uint();
    win.#carry = r.uint();
    return win;
  }
}
