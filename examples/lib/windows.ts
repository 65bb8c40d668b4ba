/**
 * The three ways a provider counts a per-window limit, as the provider
 * simulator runs them. Each counts a request when it arrives (the time
 * passed to `take`), like OpenAI and Anthropic do. Time is an argument
 * (integer ms), never read here.
 *
 * - "bucket": a token bucket refilled continuously (lib/bucket.ts).
 * - "sliding": an exact log; a request at `t` is admitted when the units
 *   admitted in (t - windowMs, t] plus its own fit the limit.
 * - "fixed": clock-aligned windows [k * windowMs, (k + 1) * windowMs) of the
 *   clock passed in (Date.now in the simulator, so aligned to UTC as
 *   providers' per-minute counters are).
 */
import { TokenBucket } from "./bucket.js";

export type ProviderAlgorithm = "bucket" | "sliding" | "fixed";
export const PROVIDER_ALGORITHMS: readonly ProviderAlgorithm[] = ["bucket", "sliding", "fixed"];

export interface ProviderWindow {
  readonly capacity: number;
  readonly windowMs: number;
  /** Units available at `nowMs` (may be fractional for a bucket). */
  level(nowMs: number): number;
  /** 0 if `amount` can be taken at `nowMs`, else the whole ms until it can; Infinity if never (above capacity). */
  waitMs(nowMs: number, amount: number): number;
  /** Takes `amount` at `nowMs` (the caller checked waitMs); returns a ticket for {@link adjust}. */
  take(nowMs: number, amount: number): number;
  /** Corrects the charge of `ticket` by `diff` units (a reply that used fewer tokens than reserved refunds). */
  adjust(nowMs: number, diff: number, ticket: number): void;
}

export function providerWindow(algorithm: ProviderAlgorithm, capacity: number, windowMs: number, nowMs: number): ProviderWindow {
  switch (algorithm) {
    case "bucket":
      return new BucketWindow(new TokenBucket(capacity, windowMs, nowMs));
    case "sliding":
      return new SlidingLog(capacity, windowMs);
    case "fixed":
      return new FixedCounter(capacity, windowMs);
  }
}

class BucketWindow implements ProviderWindow {
  constructor(private readonly bucket: TokenBucket) {}
  get capacity(): number {
    return this.bucket.capacity;
  }
  get windowMs(): number {
    return this.bucket.windowMs;
  }
  level(nowMs: number): number {
    return this.bucket.level(nowMs);
  }
  waitMs(nowMs: number, amount: number): number {
    return this.bucket.waitMs(nowMs, amount);
  }
  take(nowMs: number, amount: number): number {
    this.bucket.take(nowMs, amount);
    return 0;
  }
  adjust(nowMs: number, diff: number): void {
    this.bucket.adjust(nowMs, diff);
  }
}

/** An exact log of admitted requests: O(requests in the window) memory. */
export class SlidingLog implements ProviderWindow {
  private readonly entries: { at: number; amount: number; ticket: number }[] = [];
  private head = 0;
  private sum = 0;
  private tickets = 0;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
  ) {
    checkPositive(capacity, "capacity");
    checkPositive(windowMs, "windowMs");
  }

  private expire(nowMs: number): void {
    while (this.head < this.entries.length && this.entries[this.head]!.at <= nowMs - this.windowMs) this.sum -= this.entries[this.head++]!.amount;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  level(nowMs: number): number {
    this.expire(nowMs);
    return this.capacity - this.sum;
  }

  waitMs(nowMs: number, amount: number): number {
    if (amount > this.capacity) return Infinity;
    this.expire(nowMs);
    let sum = this.sum;
    if (sum + amount <= this.capacity) return 0;
    for (let i = this.head; i < this.entries.length; i++) {
      sum -= this.entries[i]!.amount;
      if (sum + amount <= this.capacity) return this.entries[i]!.at + this.windowMs - nowMs;
    }
    throw new Error("sliding log: amount <= capacity but never fits");
  }

  take(nowMs: number, amount: number): number {
    if (this.waitMs(nowMs, amount) !== 0) throw new Error(`sliding log: take(${amount}) with only ${this.level(nowMs)} available`);
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && nowMs < last.at) throw new Error("sliding log: time went back");
    this.entries.push({ at: nowMs, amount, ticket: ++this.tickets });
    this.sum += amount;
    return this.tickets;
  }

  adjust(nowMs: number, diff: number, ticket: number): void {
    this.expire(nowMs);
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.ticket !== ticket) continue;
      const next = Math.max(0, e.amount + diff);
      this.sum += next - e.amount;
      e.amount = next;
      return;
    }
    // Already out of the window: nothing to correct.
  }
}

/** Clock-aligned fixed windows: O(1) memory. */
export class FixedCounter implements ProviderWindow {
  private index = -Infinity;
  private used = 0;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
  ) {
    checkPositive(capacity, "capacity");
    checkPositive(windowMs, "windowMs");
  }

  private roll(nowMs: number): void {
    const index = Math.floor(nowMs / this.windowMs);
    if (index > this.index) {
      this.index = index;
      this.used = 0;
    }
  }

  level(nowMs: number): number {
    this.roll(nowMs);
    return this.capacity - this.used;
  }

  waitMs(nowMs: number, amount: number): number {
    if (amount > this.capacity) return Infinity;
    this.roll(nowMs);
    return this.used + amount <= this.capacity ? 0 : (this.index + 1) * this.windowMs - nowMs;
  }

  take(nowMs: number, amount: number): number {
    if (this.waitMs(nowMs, amount) !== 0) throw new Error(`fixed window: take(${amount}) with only ${this.level(nowMs)} available`);
    this.used += amount;
    return this.index;
  }

  adjust(nowMs: number, diff: number, ticket: number): void {
    this.roll(nowMs);
    if (ticket === this.index) this.used = Math.max(0, this.used + diff);
  }
}

function checkPositive(n: number, name: string): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be an integer >= 1, got ${n}`);
}
