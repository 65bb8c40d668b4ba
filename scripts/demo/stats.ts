/**
 * The demo's figures, computed from what the workers recorded: pure functions
 * of their inputs (no clock), so test/demo/stats.test.ts checks them directly.
 */

/** The q-quantile (0..1) of ascending `sorted` by the nearest-rank method; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`q must be from 0 to 1, got ${q}`);
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

export interface GapAroundKill {
  /** The longest time between two consecutive grants (of any worker) in the window around the kill, in ms. */
  readonly longestGapMs: number;
  /** Where that gap starts and ends (epoch ms). */
  readonly fromMs: number;
  readonly toMs: number;
  /**
   * The longest gap in the same length of time just before the window (from
   * the first grant at the earliest): what a gap looks like without a kill.
   */
  readonly longestGapBeforeMs: number;
}

/**
 * The longest gap between consecutive grants whose interval touches
 * [killAtMs - beforeMs, killAtMs + afterMs]. Grants are epoch ms from every
 * worker, in any order. A window with no grant after the kill counts the gap
 * up to the window's end, so a cluster that never recovered shows as a long
 * gap, not as none.
 */
export function gapAroundKill(options: {
  readonly grantsAtMs: readonly number[];
  readonly killAtMs: number;
  readonly beforeMs: number;
  readonly afterMs: number;
}): GapAroundKill {
  const { killAtMs, beforeMs, afterMs } = options;
  if (!(beforeMs >= 0 && afterMs >= 0)) throw new RangeError("beforeMs and afterMs must be >= 0");
  const sorted = [...options.grantsAtMs].sort((a, b) => a - b);
  const from = killAtMs - beforeMs;
  const to = killAtMs + afterMs;
  const around = longestGap(sorted, from, to);
  const first = sorted[0];
  const beforeFrom = Math.max(from - (beforeMs + afterMs), first ?? from);
  const before = beforeFrom < from ? longestGap(sorted, beforeFrom, from) : { gapMs: 0 };
  return { longestGapMs: around.gapMs, fromMs: around.fromMs, toMs: around.toMs, longestGapBeforeMs: before.gapMs };
}

/** The longest gap between consecutive points (or the window's ends) within [from, to]. */
function longestGap(sorted: readonly number[], from: number, to: number): { gapMs: number; fromMs: number; toMs: number } {
  // The points inside the window, bounded by the last point before it and the first after it (or the window's ends).
  let prev = from;
  for (const t of sorted) if (t <= from) prev = t;
  let best = { gapMs: 0, fromMs: from, toMs: from };
  for (const t of sorted) {
    if (t <= from) continue;
    if (prev >= to) return best; // a gap that starts at or after the window's end does not touch it
    const gap = { gapMs: t - prev, fromMs: prev, toMs: t };
    if (gap.gapMs > best.gapMs) best = gap;
    prev = t;
    if (t >= to) return best;
  }
  // No grant at or after the window's end: the silence runs at least to the end.
  return to - prev > best.gapMs ? { gapMs: to - prev, fromMs: prev, toMs: to } : best;
}

/** How the provider counts its token limit (examples/lib/windows.ts). */
export type ShareAlgorithm = "sliding" | "fixed" | "bucket";

export interface QuotaShare {
  /** Tokens charged for the arrivals in [fromMs, toMs), over `budget` (0..1 when the provider never over-admits). */
  readonly share: number;
  readonly tokens: number;
  /** The most the provider's limit admits in [fromMs, toMs). */
  readonly budget: number;
  /** Whole windows measured. */
  readonly windows: number;
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * The share of a provider's token limit a run used, over whole windows of
 * the provider: the tokens it finally charged (prompt + completion, after its
 * end-of-request correction) for the requests that arrived in a span, over
 * the most its limit admits in that span. Times are epoch ms; `endMs` is when
 * the run stopped starting requests. With W the window and L the limit:
 *
 * - sliding: the span is [first arrival, first arrival + k W), k = floor((endMs
 *   - first arrival) / W); a sliding log admits at most L in any W, so at most
 *   k L there.
 * - bucket: the same span; the bucket is full at the first arrival (a fresh,
 *   idle account) and refills L per W, so at most L + k L.
 * - fixed: the provider's clock-aligned windows [jW, (j + 1) W) lying wholly
 *   in [first arrival, endMs), k of them, at most k L.
 *
 * Starting at the first arrival leaves out the workers' start-up; ending at
 * a whole window leaves out the run's tail. null when no whole window fits.
 */
export function quotaShare(options: {
  readonly arrivals: readonly { readonly atMs: number; readonly tokens: number }[];
  readonly endMs: number;
  readonly windowMs: number;
  readonly limit: number;
  readonly algorithm: ShareAlgorithm;
}): QuotaShare | null {
  const { arrivals, endMs, windowMs: w, limit, algorithm } = options;
  if (!(w > 0 && limit > 0)) throw new RangeError("windowMs and limit must be above 0");
  if (arrivals.length === 0) return null;
  const first = Math.min(...arrivals.map((a) => a.atMs));
  let fromMs = first;
  if (algorithm === "fixed") fromMs = Math.ceil(first / w) * w;
  const windows = Math.floor((endMs - fromMs) / w);
  if (windows < 1) return null;
  const toMs = fromMs + windows * w;
  let tokens = 0;
  for (const a of arrivals) if (a.atMs >= fromMs && a.atMs < toMs) tokens += a.tokens;
  const budget = algorithm === "bucket" ? limit * (windows + 1) : limit * windows;
  return { share: tokens / budget, tokens, budget, windows, fromMs, toMs };
}
