import type { Reader, Writer } from "../codec.js";

/**
 * A time window that counts charged units for one `rate` or `load` limit.
 * Time only moves forward: methods taking `at` may drop state that has aged
 * out, so they must only be called from commands (never from read queries,
 * which use {@link Window.usedAt}). `cap` is passed per call because reserved
 * capacity makes it depend on the requesting lane.
 *
 * Every window keeps the provider safe for a delivery margin D: if each grant
 * reaches the provider at some time in [grant, grant + D], a provider that
 * counts at arrival with the same algorithm and numbers never sees more than
 * `cap` (README, "Fidelity").
 */
export interface Window {
  /** The largest amount that can ever fit under `cap` (a bucket holds some capacity back); may be negative. */
  capacity(cap: number): number;
  /** Whether `amount` more units fit under `cap` at `at`. */
  fits(at: number, amount: number, cap: number): boolean;
  /** The earliest time >= at when `amount` fits under `cap` if nothing else changes; Infinity if never. */
  fitAt(at: number, amount: number, cap: number): number;
  /** Charges `amount` for grant `seq` at `at`. The caller checked {@link fits}. */
  charge(at: number, amount: number, seq: number): void;
  /**
   * Charges `amount` at `at` for no grant of its own: the increase a settle
   * reports for a grant made before this window existed (see history.ts).
   */
  chargeExtra(at: number, amount: number): void;
  /**
   * Re-charges grant `seq` (granted at `grantedAt`) by `diff` units (settle).
   * A grant that has left the window is not visible any more and changes nothing.
   */
  adjust(at: number, seq: number, grantedAt: number, diff: number): void;
  /** Usage counted at `at`, without changing anything (for queries). */
  usedAt(at: number): number;
  /** The largest counted total `adjust` could produce, to keep sums exact (< 2^53). */
  wouldOverflow(diff: number): boolean;
  encode(w: Writer): void;
}

export type WindowDecoder = (r: Reader) => Window;
