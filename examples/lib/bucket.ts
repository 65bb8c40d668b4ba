/**
 * A token bucket of `capacity` units refilled continuously at
 * `capacity / windowMs` per ms, the way OpenAI and Anthropic describe their
 * per-minute limits. Time is an argument (integer ms), never read here, so
 * tests drive it with a fake clock.
 *
 * The level is kept multiplied by `windowMs`, so a ms of refill adds exactly
 * `capacity` and every comparison is integer math: `waitMs` is exact (after
 * waiting it, the amount fits), with no floating-point near-misses.
 */
export class TokenBucket {
  /** level * windowMs at `#atMs`; below 0 after a correction charged more than was there. */
  #levelScaled: number;
  #atMs: number;
  readonly #capacityScaled: number;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
    nowMs: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`bucket capacity must be an integer >= 1, got ${capacity}`);
    if (!Number.isInteger(windowMs) || windowMs < 1) throw new RangeError(`bucket windowMs must be an integer >= 1, got ${windowMs}`);
    if (capacity * windowMs > Number.MAX_SAFE_INTEGER / 4) {
      throw new RangeError(`bucket capacity ${capacity} x windowMs ${windowMs} is too large to count exactly`);
    }
    checkInteger(nowMs, "nowMs");
    this.#capacityScaled = capacity * windowMs;
    this.#levelScaled = this.#capacityScaled; // an idle account starts with a full bucket
    this.#atMs = nowMs;
  }

  /** Units available at `nowMs` (never above capacity; may be fractional). */
  level(nowMs: number): number {
    this.#refill(nowMs);
    return this.#levelScaled / this.windowMs;
  }

  /** 0 if `amount` can be taken at `nowMs`, else the whole ms until it can; Infinity if it never can (above capacity). */
  waitMs(nowMs: number, amount: number): number {
    checkInteger(amount, "amount");
    if (amount > this.capacity) return Infinity;
    this.#refill(nowMs);
    const missingScaled = amount * this.windowMs - this.#levelScaled;
    return missingScaled <= 0 ? 0 : Math.ceil(missingScaled / this.capacity);
  }

  /** Takes `amount`; the caller checked `waitMs(nowMs, amount) === 0` (asserted: a provider never overdraws at admission). */
  take(nowMs: number, amount: number): void {
    if (this.waitMs(nowMs, amount) !== 0) throw new Error(`bucket: take(${amount}) with only ${this.level(nowMs)} available`);
    this.#levelScaled -= amount * this.windowMs;
  }

  /**
   * Corrects an earlier charge by `diff` units (negative returns units, as
   * when a reply used fewer tokens than max_tokens). A refund never lifts the
   * level above capacity; a positive diff may leave it below zero.
   */
  adjust(nowMs: number, diff: number): void {
    checkInteger(diff, "diff");
    this.#refill(nowMs);
    this.#levelScaled = Math.min(this.#capacityScaled, this.#levelScaled - diff * this.windowMs);
  }

  #refill(nowMs: number): void {
    checkInteger(nowMs, "nowMs");
    // A clock that steps back (it should not) refills nothing rather than draining.
    if (nowMs <= this.#atMs) return;
    const elapsedMs = nowMs - this.#atMs;
    this.#atMs = nowMs;
    // Compare before multiplying, so a long idle gap cannot overflow.
    const toFullMs = (this.#capacityScaled - this.#levelScaled) / this.capacity;
    this.#levelScaled = elapsedMs >= toFullMs ? this.#capacityScaled : this.#levelScaled + elapsedMs * this.capacity;
  }
}

function checkInteger(n: number, name: string): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`bucket: ${name} must be a safe integer, got ${n}`);
}
