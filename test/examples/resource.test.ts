import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../examples/lib/bucket.js";
import { bucketLimit } from "../../examples/lib/resource.js";
import { checkProperty } from "./property.js";

const FILE = "test/examples/resource.test.ts";

describe("bucketLimit: the provider's limit less a margin of refill", () => {
  it("keeps the refill rate at or below the provider's and the capacity below it by the margin's refill", () => {
    const name = "keeps the refill rate at or below the provider's and the capacity below it by the margin's refill";
    const arb = fc.record({
      providerLimit: fc.integer({ min: 1, max: 10_000_000 }),
      windowMs: fc.integer({ min: 1_000, max: 3_600_000 }),
      marginMs: fc.integer({ min: 0, max: 5_000 }),
    });
    checkProperty({ file: FILE, name }, arb, ({ providerLimit, windowMs, marginMs }) => {
      let l;
      try {
        l = bucketLimit({ kind: "load", providerLimit, windowMs, marginMs });
      } catch (err) {
        if (err instanceof RangeError && (providerLimit * marginMs) / windowMs > providerLimit - 1) return; // nothing would be left
        throw err;
      }
      if (!(l.limit >= 1 && l.limit <= providerLimit - (providerLimit * marginMs) / windowMs + 1e-9)) throw new Error(`capacity ${l.limit}`);
      if (l.limit / l.windowMs > providerLimit / windowMs + 1e-12) throw new Error(`rate ${l.limit}/${l.windowMs} above ${providerLimit}/${windowMs}`);
      if (l.window !== "bucket") throw new Error("not a bucket");
    });
  });

  it("grants made against it never overdraw the provider's bucket when delivery delays vary by up to the margin", () => {
    // The argument of lib/resource.ts, checked by simulation: a bucket with the
    // resource's limit decides at grant time; requests reach the provider's
    // bucket after a delay of 0..marginMs each (so they may arrive reordered),
    // and the provider must admit every one.
    const name = "grants made against it never overdraw the provider's bucket when delivery delays vary by up to the margin";
    const arb = fc.record({
      providerLimit: fc.integer({ min: 20, max: 5_000 }),
      windowMs: fc.integer({ min: 2_000, max: 60_000 }),
      marginMs: fc.integer({ min: 1, max: 1_000 }),
      requests: fc.array(
        // Short gaps keep the granting bucket at its edge; delays at both extremes reorder arrivals the most.
        fc.record({
          gapMs: fc.integer({ min: 0, max: 40 }),
          amountPct: fc.integer({ min: 1, max: 30 }),
          delayPct: fc.integer({ min: 0, max: 100 }),
        }),
        { maxLength: 300, size: "max" }, // long runs: the bucket must be driven to its edge
      ),
      // The worst case: every request granted in the margin before some moment arrives at that moment
      // (earlier grants delayed more, later ones less), so the provider gets them all at once.
      // null: each request's own delayPct.
      bunchAtMs: fc.option(fc.integer({ min: 0, max: 3_000 })),
    });
    checkProperty({ file: FILE, name }, arb, ({ providerLimit, windowMs, marginMs, requests, bunchAtMs }) => {
      if ((providerLimit * marginMs) / windowMs > providerLimit / 2) return; // a margin that eats half the limit is not a setting anyone uses
      const ours = bucketLimit({ kind: "load", providerLimit, windowMs, marginMs });
      const granting = new TokenBucket(ours.limit, ours.windowMs, 0);
      const arrivals: { atMs: number; amount: number }[] = [];
      let nowMs = 0;
      for (const r of requests) {
        nowMs += r.gapMs;
        const amount = Math.max(1, Math.floor((ours.limit * r.amountPct) / 100));
        if (granting.waitMs(nowMs, amount) !== 0) continue;
        granting.take(nowMs, amount);
        const delayMs =
          bunchAtMs === null ? Math.floor((marginMs * r.delayPct) / 100) : Math.min(marginMs, Math.max(0, bunchAtMs - nowMs));
        arrivals.push({ atMs: nowMs + delayMs, amount });
      }
      arrivals.sort((a, b) => a.atMs - b.atMs);
      const provider = new TokenBucket(providerLimit, windowMs, 0);
      for (const a of arrivals) {
        const waitMs = provider.waitMs(a.atMs, a.amount);
        if (waitMs !== 0) throw new Error(`the provider refused ${a.amount} at ${a.atMs} ms (${waitMs} ms short)`);
        provider.take(a.atMs, a.amount);
      }
    });
  });

  it("refuses a margin that leaves nothing, or is not below the window", () => {
    expect(() => bucketLimit({ kind: "rate", providerLimit: 1, windowMs: 60_000, marginMs: 1_000 })).toThrow(/leaves nothing/);
    expect(() => bucketLimit({ kind: "rate", providerLimit: 100, windowMs: 1_000, marginMs: 1_000 })).toThrow(/marginMs must be/);
    expect(bucketLimit({ kind: "rate", providerLimit: 600, windowMs: 60_000, marginMs: 1_000 })).toEqual({
      kind: "rate",
      limit: 590,
      windowMs: 59_000,
      window: "bucket",
    });
  });
});
