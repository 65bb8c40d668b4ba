/**
 * SPEC guarantee 7 (Fidelity): whatever the grant history, if every granted
 * request reaches the provider within the limit's delivery margin D of its
 * grant, a provider that counts requests when they arrive (sliding log, fixed
 * window or token bucket, same numbers) never refuses one. Checked against
 * testing/provider-model.ts over random configs, demand and delays (each
 * delay drawn from 0, D and anything between, so an early grant may arrive
 * late while a later one arrives at once). Scale with RQ_PROPERTY_RUNS; a
 * failure prints the one-line command that replays it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Limiter } from "./limiter.js";
import { checkProperty, propertyRuns } from "@ratequeue/testkit";
import { ProviderWindow } from "../testing/provider-model.js";
import type { Effect, LimitConfig, LoadVector } from "./types.js";
import { defaultDeliveryMarginMs, validateResourceConfig } from "./validate.js";

const FILE = "packages/limiter/src/fidelity.property.test.ts";

interface Case {
  limits: { kind: "rate" | "load"; limit: number; windowMs: number; window: "sliding" | "fixed" | "bucket" }[];
  /** The margin in eighths of the shortest window. */
  eighths: number;
  ops: { gap: number; load: number; timeoutMs: number | null }[];
  /** Per grant (cycled): where in [0, D] it arrives, as a fraction of D. */
  delays: number[];
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  limits: fc.array(
    fc.record({
      kind: fc.constantFrom("rate" as const, "load" as const),
      limit: fc.integer({ min: 1, max: 40 }),
      windowMs: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 200 })),
      window: fc.constantFrom("sliding" as const, "fixed" as const, "bucket" as const),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  eighths: fc.integer({ min: 0, max: 8 }),
  ops: fc.array(
    fc.record({
      // Small gaps pile demand up so grants come back to back at window edges, where the provider is tightest.
      gap: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 2, arbitrary: fc.integer({ min: 0, max: 60 }) }, { weight: 1, arbitrary: fc.integer({ min: 100, max: 400 }) }),
      load: fc.integer({ min: 0, max: 25 }),
      timeoutMs: fc.option(fc.integer({ min: 0, max: 300 }), { nil: null }),
    }),
    { minLength: 1, maxLength: 80 },
  ),
  delays: fc.array(fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 1, maxLength: 40 }),
});

function marginOf(c: Case): number {
  return Math.floor((Math.min(...c.limits.map((l) => l.windowMs)) * c.eighths) / 8);
}

interface Grant {
  readonly grantedAt: number;
  readonly load: LoadVector;
}

/** Runs the demand through a limiter whose limits carry `limiterMarginMs`, ticking at every deadline; returns the grants. */
function grantsOf(c: Case, limiterMarginMs: number): Grant[] {
  const config = { limits: c.limits, deliveryMarginMs: limiterMarginMs };
  const m = new Limiter();
  const grants: Grant[] = [];
  const collect = (effects: Effect[]): void => {
    for (const e of effects) if (e.type === "granted") grants.push({ grantedAt: e.grantedAt, load: e.load });
  };
  collect(m.apply({ type: "putResource", at: 0, name: "r", config }));
  collect(m.apply({ type: "openSession", at: 0, sessionId: "s", ttlMs: 86_400_000 }));
  let at = 0;
  let n = 0;
  const tickUntil = (until: number): void => {
    for (let d = m.nextDeadline(); d !== null && d <= until; d = m.nextDeadline()) collect(m.apply({ type: "tick", at: Math.max(d, m.lastAt) }));
  };
  for (const op of c.ops) {
    at += op.gap;
    tickUntil(at);
    collect(
      m.apply({ type: "acquire", at, sessionId: "s", requestId: `q${++n}`, resource: "r", load: op.load, ...(op.timeoutMs === null ? {} : { timeoutMs: op.timeoutMs }) }),
    );
  }
  tickUntil(at + 10_000);
  return grants;
}

/** Each grant reaches the provider at grantedAt + delay (delay in [0, D]); returns the provider's 429s per limit. */
function refusals(c: Case, grants: readonly Grant[], deliveryMs: number): string[] {
  const arrivals = grants.map((g, i) => ({ at: g.grantedAt + Math.round((c.delays[i % c.delays.length] as number) * deliveryMs), load: g.load }));
  arrivals.sort((a, b) => a.at - b.at); // stable: grants arriving in the same ms keep grant order
  const problems: string[] = [];
  const parsed = validateResourceConfig({ limits: c.limits, deliveryMarginMs: 0 });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  parsed.config.limits.forEach((lim: LimitConfig, i) => {
    if (lim.kind === "concurrency") return;
    const provider = new ProviderWindow(lim.window, lim.limit, lim.windowMs);
    for (const a of arrivals) {
      const amount = lim.kind === "rate" ? 1 : (a.load[lim.dimension] ?? 0);
      if (!provider.arrive(a.at, amount)) problems.push(`limit #${i} (${lim.window} ${lim.limit}/${lim.windowMs} ms) refused ${amount} arriving at ${a.at}`);
    }
  });
  return problems;
}

describe("fidelity: a provider counting at arrival never refuses a request delivered within the margin", () => {
  it("for sliding logs, fixed windows and buckets, any grant history and any delays in [0, D]", () => {
    checkProperty({ file: FILE, name: "for sliding logs, fixed windows and buckets, any grant history and any delays in [0, D]", runs: 600 }, fc.property(caseArb, (c) => {
      const d = marginOf(c);
      const grants = grantsOf(c, d);
      expect(refusals(c, grants, d)).toEqual([]);
    }));
  });

  it("is not vacuous: without the margin, the same delays make the provider refuse", () => {
    // The same generator with the limiter's margin at 0: the provider must be seen refusing within the runs.
    const details = fc.check(
      fc.property(caseArb.filter((c) => marginOf(c) > 0), (c) => refusals(c, grantsOf(c, 0), marginOf(c)).length === 0),
      { numRuns: propertyRuns(300), seed: 42 },
    );
    expect(details.failed).toBe(true);
  });

  it("the default margin covers 1 s on a one-minute window and never costs more than 1/41 of the quota", () => {
    expect(defaultDeliveryMarginMs(60_000)).toBe(1000);
    expect(defaultDeliveryMarginMs(10_000)).toBe(250);
    expect(defaultDeliveryMarginMs(1000)).toBe(25);
    for (const w of [1, 39, 40, 1000, 60_000, 3_600_000]) expect(defaultDeliveryMarginMs(w) / (w + defaultDeliveryMarginMs(w))).toBeLessThanOrEqual(1 / 41);
  });

  it("quota cost under saturating demand: sliding and fixed lose D / (windowMs + D), a bucket keeps its full rate", () => {
    // 1000 units per minute, demand always waiting, 10 minutes of log time, default margin (1 s).
    const used = (window: "sliding" | "fixed" | "bucket", marginMs?: number): number => {
      const m = new Limiter();
      m.apply({ type: "putResource", at: 0, name: "r", config: { limits: [{ kind: "rate", limit: 1000, windowMs: 60_000, window, ...(marginMs === undefined ? {} : { deliveryMarginMs: marginMs }) }] } });
      m.apply({ type: "openSession", at: 0, sessionId: "s", ttlMs: 86_400_000 });
      const end = 10 * 60_000;
      let granted = 0;
      let n = 0;
      const count = (effects: Effect[]): void => {
        for (const e of effects) if (e.type === "granted") granted++;
      };
      // Keep 50 requests waiting at all times.
      const topUp = (at: number): void => {
        while (n - granted < 50) count(m.apply({ type: "acquire", at, sessionId: "s", requestId: `q${++n}`, resource: "r" }));
      };
      topUp(0);
      for (let d = m.nextDeadline(); d !== null && d < end; d = m.nextDeadline()) {
        count(m.apply({ type: "tick", at: d }));
        topUp(d);
      }
      return granted;
    };
    const full = used("sliding", 0);
    expect(full).toBe(10 * 1000);
    const sliding = used("sliding");
    const fixed = used("fixed");
    const bucket = used("bucket");
    expect(1 - sliding / full).toBeLessThanOrEqual(1000 / 61_000 + 0.002);
    expect(1 - fixed / full).toBeLessThanOrEqual(1000 / 61_000 + 0.002);
    expect(1 - bucket / (used("bucket", 0))).toBeLessThanOrEqual(0.002);
  });
});
