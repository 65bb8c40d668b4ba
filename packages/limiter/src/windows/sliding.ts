import { type Reader, SnapshotError, type Writer } from "../codec.js";
import type { Window } from "./window.js";

/**
 * Sliding window with an exact per-grant log, counted over `windowMs + D`
 * (D the delivery margin): no interval of `windowMs + D` consecutive ms ever
 * holds grants of more than the cap. A grant at `t` stays counted through
 * `t + windowMs + D - 1` and leaves at `t + windowMs + D`. That is what a
 * provider's log of `windowMs` sees when every grant arrives within D of its
 * stamp: the grants arriving in (a - windowMs, a] were stamped in
 * (a - windowMs - D, a], an interval of windowMs + D.
 *
 * Memory: one entry (time, amount, seq) per grant still inside the window,
 * kept in parallel arrays used as a deque with a running sum, so charge and
 * expiry are O(1) amortized and settle is O(log n) (binary search by seq,
 * which grows with time). At 100,000 grants in one window that is ~2.4 MB.
 */
export class SlidingWindow implements Window {
  #ats: number[] = [];
  #amounts: number[] = [];
  #seqs: number[] = [];
  #head = 0;
  #sum = 0;
  /**
   * fitAt's last answer. Expiry alone never changes it (entries that left the
   * window do not count at any later time), so only a charge or a settle
   * invalidates it: a blocked head costs one walk per change, not per pump.
   */
  #changes = 0;
  #cached = { changes: -1, amount: 0, cap: 0, fitAt: 0 };

  /** windowMs + D: how long a grant stays counted. */
  readonly #spanMs: number;

  constructor(
    readonly windowMs: number,
    marginMs: number,
  ) {
    this.#spanMs = windowMs + marginMs;
  }


  capacity(cap: number): number {
    return cap;
  }

  /** Drops the grants that have left the window at `at`. */
  #expire(at: number): void {
    const cutoff = at - this.#spanMs;
    const ats = this.#ats;
    let head = this.#head;
    while (head < ats.length && (ats[head] as number) <= cutoff) {
      this.#sum -= this.#amounts[head] as number;
      head++;
    }
    this.#head = head;
    // Compact only when the dead prefix is large and at least half the array:
    // keeps expiry O(1) amortized without reallocating on every call.
    if (head >= 4096 && head * 2 >= ats.length) {
      this.#ats = ats.slice(head);
      this.#amounts = this.#amounts.slice(head);
      this.#seqs = this.#seqs.slice(head);
      this.#head = 0;
    }
    if (this.#head === this.#ats.length && this.#sum !== 0) throw new Error("sliding window: empty log with non-zero sum");
  }

  fits(at: number, amount: number, cap: number): boolean {
    this.#expire(at);
    return this.#sum + amount <= cap;
  }

  fitAt(at: number, amount: number, cap: number): number {
    this.#expire(at);
    if (amount > cap) return Infinity;
    let sum = this.#sum;
    if (sum + amount <= cap) return at;
    const c = this.#cached;
    if (c.changes === this.#changes && c.amount === amount && c.cap === cap) return c.fitAt;
    // Walk from the oldest grant until enough has left: O(grants that must leave).
    for (let i = this.#head; i < this.#ats.length; i++) {
      sum -= this.#amounts[i] as number;
      if (sum + amount <= cap) {
        this.#cached = { changes: this.#changes, amount, cap, fitAt: (this.#ats[i] as number) + this.#spanMs };
        return this.#cached.fitAt;
      }
    }
    throw new Error("sliding window: amount <= cap but never fits");
  }

  charge(at: number, amount: number, seq: number): void {
    // Seqs only grow (equal ones allowed: a charge for no grant of its own repeats the last); lookups take the first.
    if (this.#seqs.length > this.#head && seq < (this.#seqs[this.#seqs.length - 1] as number)) throw new Error("sliding window: seq went back");
    this.#ats.push(at);
    this.#amounts.push(amount);
    this.#seqs.push(seq);
    this.#sum += amount;
    this.#changes++;
  }

  /** Charges `amount` at `at` for no grant of its own (a settle's increase on a grant this log does not hold). */
  chargeExtra(at: number, amount: number): void {
    this.charge(at, amount, this.#seqs.length > this.#head ? (this.#seqs[this.#seqs.length - 1] as number) : 0);
  }

  /** The entry of grant `seq` made at `grantedAt`, or -1 (the first entry with that seq: extras come after it). */
  #indexOf(seq: number, grantedAt: number): number {
    let lo = this.#head;
    let hi = this.#seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#seqs[mid] as number) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#seqs.length && this.#seqs[lo] === seq && this.#ats[lo] === grantedAt ? lo : -1;
  }

  adjust(at: number, seq: number, grantedAt: number, diff: number): void {
    this.#expire(at);
    const i = this.#indexOf(seq, grantedAt);
    if (i < 0) return;
    const next = (this.#amounts[i] as number) + diff;
    if (next < 0) throw new Error("sliding window: settle below zero");
    this.#amounts[i] = next;
    this.#sum += diff;
    this.#changes++;
  }

  wouldOverflow(diff: number): boolean {
    return this.#sum + diff > Number.MAX_SAFE_INTEGER;
  }

  usedAt(at: number): number {
    const cutoff = at - this.#spanMs;
    let sum = this.#sum;
    for (let i = this.#head; i < this.#ats.length && (this.#ats[i] as number) <= cutoff; i++) sum -= this.#amounts[i] as number;
    return sum;
  }

  encode(w: Writer): void {
    const n = this.#ats.length - this.#head;
    w.uint(n);
    for (let i = this.#head; i < this.#ats.length; i++) {
      w.uint(this.#ats[i] as number);
      w.uint(this.#amounts[i] as number);
      w.uint(this.#seqs[i] as number);
    }
  }

  static decode(r: Reader, windowMs: number, marginMs: number): SlidingWindow {
    const win = new SlidingWindow(windowMs, marginMs);
    const n = r.count();
    let lastSeq = 0;
    for (let i = 0; i < n; i++) {
      const at = r.uint();
      const amount = r.uint();
      const seq = r.uint();
      if (seq < lastSeq) throw new SnapshotError("sliding window log out of order");
      lastSeq = seq;
      win.charge(at, amount, seq);
    }
    return win;
  }
}
