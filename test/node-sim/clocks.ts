import type { Prng } from "@ratequeue/testkit";

/** A monotonic clock's rate is off by at most this (a crystal's error plus NTP's slew of at most 500 ppm). */
export const MONOTONIC_DRIFT_MAX = 0.001;
/** Wall clocks start at a realistic epoch, so a negative offset is still a valid clock. */
const EPOCH_MS = 1_750_000_000_000;

/**
 * A simulated node's two clocks, as a real host has them.
 *
 * The wall clock (`Date.now()`) is as hostile as reality: an offset of up to
 * --skew ms (a VM restored with a wrong clock), a rate off by up to --drift per
 * mille, and jumps forward and back during the run (an NTP step, an operator's
 * `date -s`). The monotonic clock (`performance.now()`) never jumps, starts
 * from an arbitrary value in every process, and runs within
 * MONOTONIC_DRIFT_MAX of true time. Timers run on the monotonic clock, as
 * Node's do.
 */
export class NodeClocks {
  #wallOffsetMs: number;
  readonly #wallRate: number;
  readonly #monoRate: number;
  #monoBaseMs = 0;

  constructor(options: { prng: Prng; skewMs: number; driftPermille: number; monoRate?: number }) {
    const { prng, skewMs, driftPermille } = options;
    this.#wallOffsetMs = skewMs === 0 ? 0 : prng.int(-skewMs, skewMs);
    this.#wallRate = 1 + (driftPermille === 0 ? 0 : prng.int(-driftPermille, driftPermille)) / 1000;
    const ppm = MONOTONIC_DRIFT_MAX * 1e6;
    this.#monoRate = options.monoRate ?? (driftPermille === 0 ? 1 : 1 + prng.int(-ppm, ppm) / 1e6);
  }

  /** The wall clock's offset from true time now (ms; positive when ahead). */
  wallOffsetMs(trueMs: number): number {
    return this.wallNow(trueMs) - (EPOCH_MS + trueMs);
  }

  wallNow(trueMs: number): number {
    return EPOCH_MS + this.#wallOffsetMs + Math.floor(trueMs * this.#wallRate);
  }

  /** The wall clock is set `byMs` forward (or back, when negative). */
  jump(byMs: number): void {
    this.#wallOffsetMs += byMs;
  }

  /** A new process: its monotonic clock starts from an arbitrary value. */
  restart(trueMs: number, prng: Prng): void {
    this.#monoBaseMs = prng.int(0, 1_000_000) - trueMs * this.#monoRate;
  }

  monotonicNow(trueMs: number): number {
    return this.#monoBaseMs + trueMs * this.#monoRate;
  }

  /** True ms until a timer of `ms` monotonic ms fires. */
  timerDelayMs(ms: number): number {
    return Math.max(0, Math.ceil(ms / this.#monoRate));
  }
}
