/**
 * A token bucket of `capacity` units refilled continuously at
 * `capacity / windowMs` per ms, the way OpenAI and Anthropic describe their
 * per-minute limits. Time is an argument, never read here, so the simulator's
 * tests can drive it with a fake clock.
 */
export class TokenBucket {
  /** Units available at `#atMs`; below 0 after a correction charged more than was there. */
  #level: number;
  #atMs: number;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
    nowMs: number,
  ) {
    if (!Number.isFinite(capacity) || capacity <= 0) throw new RangeError(`bucket capacity must be a finite number > 0, got ${capacity}`);
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError(`bucket windowMs must be a finite number > 0, got ${windowMs}`);
    this.#level = capacity; // an idle account starts with a full bucket
    this.#atMs = nowMs;
  }

  /** Units per ms. */
  get refillPerMs(): number {
    return this.capacity / this.windowMs;
  }

  /** Units available at `nowMs` (never above capacity). */
  level(nowMs: number): number {
    this.#refill(nowMs);
    return this.#level;
  }

  /** 0 if `amount` can be taken at `nowMs`, else the ms until it can; Infinity if it never can (above capacity). */
  waitMs(nowMs: number, amount: number): number {
    if (amount > this.capacity) return Infinity;
    const missing = amount - this.level(nowMs);
    return missing <= 0 ? 0 : missing / this.refillPerMs;
  }

  /** Takes `amount`; the caller checked `waitMs(nowMs, amount) === 0` (asserted: a provider never overdraws at admission). */
  take(nowMs: number, amount: number): void {
    if (this.waitMs(nowMs, amount) !== 0) throw new Error(`bucket: take(${amount}) with only ${this.#level} available`);
    this.#level -= amount;
  }

  /**
   * Corrects an earlier charge by `diff` units (negative returns units, as
   * when a reply used fewer tokens than max_tokens). A refund never lifts the
   * level above capacity; a positive diff may leave it below zero.
   */
  adjust(nowMs: number, diff: number): void {
    this.#refill(nowMs);
    this.#level = Math.min(this.capacity, this.#level - diff);
  }

  #refill(nowMs: number): void {
    // A clock that steps back (it should not) refills nothing rather than draining.
    if (nowMs <= this.#atMs) return;
    this.#level = Math.min(this.capacity, this.#level + (nowMs - this.#atMs) * this.refillPerMs);
    this.#atMs = nowMs;
  }
}
