import type { Logger } from "pino";
import type { LimitConfig } from "@ratequeue/limiter";
import { DELIVERY_BUCKETS_MS, type Report } from "@ratequeue/protocol";
import type { StatusBody } from "@ratequeue/protocol/http";

/** A report whose largest delay reaches this share of the resource's delivery margin is warned about. */
export const NEAR_MARGIN_SHARE = 0.8;
/** At most one warning per resource this often. */
const WARN_EVERY_MS = 60_000;
/** The "recent" largest delay covers the reports of the last one to two of these periods. */
const RECENT_MAX_PERIOD_MS = 60_000;

interface ResourceDelivery {
  /** Per DELIVERY_BUCKETS_MS bound, then one above: grants reported, since this node started (not cumulative). */
  readonly buckets: number[];
  count: number;
  sumMs: number;
  /** Largest delay of the current and the previous period (see RECENT_MAX_PERIOD_MS). */
  maxMs: number;
  previousMaxMs: number;
  periodStart: number;
  lastReportAt: number;
  /** When the last warning of each level was logged: "beyond" is not held back by a recent "near". */
  warnedAt: { near: number | null; beyond: number | null };
}

/** One resource's delivery delays as /metrics exports them. */
export interface DeliveryView {
  readonly resource: string;
  /** Cumulative counts per bound of DELIVERY_BUCKETS_MS (delays <= bound), Prometheus style; `count` is the +Inf bucket. */
  readonly cumulative: readonly number[];
  readonly count: number;
  readonly sumMs: number;
  /** The largest delay reported in the last one to two minutes, or null if none was. */
  readonly recentMaxMs: number | null;
}

export interface DeliveryStatsOptions {
  readonly logger: Logger;
  /** Monotonic ms (the node's env clock). */
  readonly now: () => number;
  /** Whether the resource exists now (reports of others are refused; entries of deleted ones are dropped). */
  readonly exists: (resource: string) => boolean;
  /** The resource's delivery margin (the smallest of its windowed limits'), or null if it has none. */
  readonly marginMs: (resource: string) => number | null;
}

/**
 * Grant-to-send delays that this node's clients report (the `report` message, docs/protocol.md "Delivery
 * reports"): per resource, a histogram, sum and count since the node started, and the recent largest delay,
 * for /metrics and /v1/status; and a warning, at most one a minute per resource, when a reported delay
 * reaches NEAR_MARGIN_SHARE of the resource's delivery margin. Node-local and not replicated: each node holds
 * what its own clients reported while it led (Prometheus sums the nodes). Only resources that exist are kept,
 * so the series are bounded by the resource count.
 */
export class DeliveryStats {
  readonly #o: DeliveryStatsOptions;
  readonly #byResource = new Map<string, ResourceDelivery>();

  constructor(options: DeliveryStatsOptions) {
    this.#o = options;
  }

  /** Adds a validated report (the decoder checked its fields against each other) from `who` (for the log). */
  record(report: Report, who: { readonly session: string | null; readonly client: string | null }): void {
    const now = this.#o.now();
    let r = this.#byResource.get(report.resource);
    if (r === undefined) {
      r = { buckets: new Array<number>(DELIVERY_BUCKETS_MS.length + 1).fill(0), count: 0, sumMs: 0, maxMs: 0, previousMaxMs: 0, periodStart: now, lastReportAt: now, warnedAt: { near: null, beyond: null } };
      this.#byResource.set(report.resource, r);
    }
    for (let i = 0; i < r.buckets.length; i++) r.buckets[i]! += report.buckets[i]!;
    r.count += report.count;
    r.sumMs += report.sumMs;
    this.#roll(r, now);
    r.maxMs = Math.max(r.maxMs, report.maxMs);
    r.lastReportAt = now;
    const marginMs = this.#o.marginMs(report.resource);
    if (marginMs === null || report.maxMs < NEAR_MARGIN_SHARE * marginMs) return;
    const level = report.maxMs > marginMs ? "beyond" : "near";
    const last = r.warnedAt[level];
    if (last !== null && now - last < WARN_EVERY_MS) return;
    r.warnedAt[level] = now;
    const meanMs = Math.round(report.sumMs / report.count);
    this.#o.logger.warn(
      { resource: report.resource, maxMs: report.maxMs, meanMs, grants: report.count, deliveryMarginMs: marginMs, session: who.session, client: who.client },
      level === "beyond"
        ? "grant-to-send delay beyond the resource's delivery margin: the provider may count such grants outside RateQueue's window (raise deliveryMarginMs or relieve the worker)"
        : "grant-to-send delay near the resource's delivery margin",
    );
  }

  /** Every resource with reports that still exists (entries of deleted resources are dropped here). */
  views(): DeliveryView[] {
    const now = this.#o.now();
    const out: DeliveryView[] = [];
    for (const [resource, r] of this.#byResource) {
      if (!this.#o.exists(resource)) {
        this.#byResource.delete(resource);
        continue;
      }
      this.#roll(r, now);
      const cumulative: number[] = [];
      let total = 0;
      for (let i = 0; i < DELIVERY_BUCKETS_MS.length; i++) {
        total += r.buckets[i]!;
        cumulative.push(total);
      }
      const recent = now - r.lastReportAt < 2 * RECENT_MAX_PERIOD_MS ? Math.max(r.maxMs, r.previousMaxMs) : null;
      out.push({ resource, cumulative, count: r.count, sumMs: r.sumMs, recentMaxMs: recent });
    }
    return out;
  }

  /** Node-level summary for /v1/status (no resource names: the status is readable without a key). */
  summary(): NonNullable<StatusBody["grantDelivery"]> {
    let grants = 0;
    let recentMaxMs: number | null = null;
    let near = 0;
    for (const v of this.views()) {
      grants += v.count;
      if (v.recentMaxMs !== null) recentMaxMs = Math.max(recentMaxMs ?? 0, v.recentMaxMs);
      const marginMs = this.#o.marginMs(v.resource);
      if (marginMs !== null && v.recentMaxMs !== null && v.recentMaxMs >= NEAR_MARGIN_SHARE * marginMs) near++;
    }
    return { grants, recentMaxMs, resourcesNearMargin: near };
  }

  /** Starts a new period when the current one is over; a report after a silence of two periods forgets the old max. */
  #roll(r: ResourceDelivery, now: number): void {
    const elapsed = now - r.periodStart;
    if (elapsed < RECENT_MAX_PERIOD_MS) return;
    r.previousMaxMs = elapsed < 2 * RECENT_MAX_PERIOD_MS ? r.maxMs : 0;
    r.maxMs = 0;
    r.periodStart = now;
  }
}

/** A resource's delivery margin: the smallest `deliveryMarginMs` of its windowed limits, or null if it has none. */
export function deliveryMarginOf(limits: readonly LimitConfig[]): number | null {
  let marginMs: number | null = null;
  for (const limit of limits) if (limit.kind !== "concurrency") marginMs = Math.min(marginMs ?? Infinity, limit.deliveryMarginMs);
  return marginMs;
}
