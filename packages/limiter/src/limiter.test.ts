import { describe, expect, it } from "vitest";
import { Limiter, type LimiterOptions } from "./limiter.js";
import type { Command, Effect, Load } from "./types.js";
import { validateResourceConfig } from "./validate.js";

/** A small driver: one resource "r", one long-lived session "s". */
function setup(config: unknown, options: LimiterOptions = {}): Limiter {
  const l = new Limiter(options);
  expect(l.apply({ type: "putResource", at: 0, name: "r", config })).toEqual([{ type: "resourcePut", name: "r", created: true }]);
  l.apply({ type: "openSession", at: 0, sessionId: "s", ttlMs: 86_400_000 });
  return l;
}

interface AcquireOptions {
  load?: Load;
  priority?: number;
  lane?: string;
  timeoutMs?: number;
  sessionId?: string;
  resource?: string;
}

function acquire(l: Limiter, at: number, requestId: string, o: AcquireOptions = {}): Effect[] {
  const { sessionId = "s", resource = "r", ...rest } = o;
  return l.apply({ type: "acquire", at, sessionId, requestId, resource, ...rest });
}

/** Request ids granted by these effects, in order. */
function granted(effects: Effect[]): string[] {
  return effects.flatMap((e) => (e.type === "granted" ? [e.requestId] : []));
}

function leaseOf(effects: Effect[], requestId: string): number {
  const e = effects.find((x) => x.type === "granted" && x.requestId === requestId);
  if (e === undefined || e.type !== "granted") throw new Error(`${requestId} was not granted`);
  return e.leaseId;
}

function only(effects: Effect[]): Effect {
  expect(effects).toHaveLength(1);
  return effects[0] as Effect;
}

// Scenarios of the algorithms' own arithmetic use no delivery margin; "delivery margin" below covers it.
const rate = (limit: number, windowMs: number, window = "sliding", deliveryMarginMs = 0) => ({ kind: "rate", limit, windowMs, window, deliveryMarginMs });
const tokens = (limit: number, windowMs: number, extra: object = {}) => ({ kind: "load", limit, windowMs, deliveryMarginMs: 0, ...extra });
const concurrency = (limit: number) => ({ kind: "concurrency", limit });

describe("windows", () => {
  it("sliding: 2 requests per second admits a third exactly when the first leaves the window", () => {
    const l = setup({ limits: [rate(2, 1000)] });
    expect(granted(acquire(l, 0, "a"))).toEqual(["a"]);
    expect(granted(acquire(l, 400, "b"))).toEqual(["b"]);
    expect(only(acquire(l, 500, "c")).type).toBe("queued");
    expect(l.nextDeadline()).toBe(1000);
    expect(granted(l.apply({ type: "tick", at: 999 }))).toEqual([]);
    expect(granted(l.apply({ type: "tick", at: 1000 }))).toEqual(["c"]);
  });

  it("fixed: resets at clock-aligned boundaries, so a burst across a boundary may reach 2x", () => {
    const l = setup({ limits: [rate(2, 1000, "fixed")] });
    expect(granted([...acquire(l, 998, "a"), ...acquire(l, 999, "b")])).toEqual(["a", "b"]);
    expect(only(acquire(l, 999, "c")).type).toBe("queued");
    expect(l.nextDeadline()).toBe(1000);
    const e = [...l.apply({ type: "tick", at: 1000 }), ...acquire(l, 1000, "d")];
    expect(granted(e)).toEqual(["c", "d"]); // 4 grants within 3 ms: the documented price of fixed windows
  });

  it("bucket: refills continuously at limit / windowMs", () => {
    const l = setup({ limits: [tokens(1000, 1000, { window: "bucket" })] });
    expect(granted(acquire(l, 0, "a", { load: 1000 }))).toEqual(["a"]);
    expect(only(acquire(l, 0, "b", { load: 250 })).type).toBe("queued");
    expect(l.nextDeadline()).toBe(250); // 1 unit per ms
    expect(granted(l.apply({ type: "tick", at: 250 }))).toEqual(["b"]);
  });

  it("a grant is atomic across stacked limits: nothing is charged unless everything fits", () => {
    const l = setup({ limits: [rate(10, 1000), tokens(1000, 1000)] });
    expect(granted(acquire(l, 0, "big", { load: 900 }))).toEqual(["big"]);
    expect(only(acquire(l, 1, "too-much", { load: 200, timeoutMs: 0 })).type).toBe("timedOut");
    const usage = l.resource("r")?.usage.map((u) => u.used);
    expect(usage).toEqual([1, 900]); // the refused request charged no rate either
  });

  it("load dimensions: input and output tokens are limited separately", () => {
    const l = setup({ limits: [tokens(2000, 60_000, { dimension: "input" }), tokens(1000, 60_000, { dimension: "output" })] });
    expect(granted(acquire(l, 0, "a", { load: { input: 1200, output: 1000 } }))).toEqual(["a"]);
    expect(only(acquire(l, 1, "b", { load: { input: 100, output: 1 } })).type).toBe("queued"); // output is full
    expect(l.resource("r")?.usage.map((u) => u.used)).toEqual([1200, 1000]);
  });
});

describe("load dimensions: a request is never charged nothing on a limit that counts a dimension", () => {
  const dims = { limits: [rate(100, 60_000), tokens(2000, 60_000, { dimension: "input" }), tokens(1000, 60_000, { dimension: "output" })] };

  it("an acquire with a plain number or no load on a resource that limits named dimensions is refused RQ_INVALID, naming them", () => {
    const l = setup(dims);
    for (const [id, load] of [["plain", 500], ["none", undefined], ["partial", { input: 10 }]] as const) {
      const e = only(acquire(l, 0, id, load === undefined ? {} : { load }));
      expect(e).toMatchObject({ type: "rejected", code: "RQ_INVALID", message: expect.stringContaining('"input", "output"') });
    }
    expect(granted(acquire(l, 1, "ok", { load: { input: 10, output: 0 } }))).toEqual(["ok"]); // 0 named is allowed
    expect(l.resource("r")?.usage.map((u) => u.used)).toEqual([1, 10, 0]); // the refused ones charged nothing, not even rate
  });

  it("the default dimension: a plain number is { load: n }; no load at all on a token limit is refused", () => {
    const l = setup({ limits: [tokens(1000, 60_000)] });
    expect(granted(acquire(l, 0, "a", { load: 300 }))).toEqual(["a"]);
    expect(only(acquire(l, 0, "b"))).toMatchObject({ type: "rejected", code: "RQ_INVALID", message: expect.stringContaining('"load"') });
    // A resource without load limits takes a plain load and ignores it, as before.
    const r = setup({ limits: [rate(2, 1000)] });
    expect(granted([...acquire(r, 0, "a", { load: 300 }), ...acquire(r, 0, "b")])).toEqual(["a", "b"]);
  });

  it("settle(n) on a resource whose limits name other dimensions is refused RQ_INVALID and changes nothing", () => {
    const l = setup(dims);
    const a = leaseOf(acquire(l, 0, "a", { load: { input: 100, output: 100 } }), "a");
    const before = l.snapshot();
    expect(only(l.apply({ type: "settle", at: 0, sessionId: "s", leaseId: a, actual: 900 }))).toMatchObject({ type: "error", code: "RQ_INVALID", message: expect.stringContaining('"input", "output"') });
    expect(only(l.apply({ type: "settle", at: 0, sessionId: "s", leaseId: a, actual: {} }))).toMatchObject({ type: "error", code: "RQ_INVALID" });
    expect(l.snapshot()).toEqual(before);
    expect(only(l.apply({ type: "settle", at: 2, sessionId: "s", leaseId: a, actual: { output: 900 } }))).toMatchObject({ type: "settled", load: { input: 100, output: 900 } });
  });

  it("a waiter whose load misses a dimension a reconfiguration adds is rejected RQ_INVALID, not granted for nothing", () => {
    const l = setup({ limits: [concurrency(1)] });
    acquire(l, 0, "a");
    expect(only(acquire(l, 1, "b", { load: 50 })).type).toBe("queued");
    const e = l.apply({ type: "putResource", at: 2, name: "r", config: { limits: [concurrency(1), tokens(100, 1000, { dimension: "input" })] } });
    expect(e[0]).toMatchObject({ type: "rejected", requestId: "b", code: "RQ_INVALID", message: expect.stringContaining('"input"') });
  });

  it("the node's pre-check: acquireLoadProblem and settleLoadProblem answer what the commands would refuse", () => {
    const l = setup(dims);
    expect(l.acquireLoadProblem("r", 5)).toMatch(/"input", "output"/);
    expect(l.acquireLoadProblem("r", { input: 1, output: 2 })).toBeNull();
    expect(l.acquireLoadProblem("nope", 5)).toBeNull();
    const a = leaseOf(acquire(l, 0, "a", { load: { input: 1, output: 1 } }), "a");
    expect(l.settleLoadProblem(a, 5)).toMatch(/"input", "output"/);
    expect(l.settleLoadProblem(a, { input: 3 })).toBeNull();
  });
});

describe("delivery margin (SPEC guarantee 7: the provider counts at arrival, up to D later)", () => {
  it("sliding: a grant stays counted for windowMs + D", () => {
    const l = setup({ limits: [rate(2, 1000, "sliding", 100)] });
    expect(granted([...acquire(l, 0, "a"), ...acquire(l, 400, "b")])).toEqual(["a", "b"]);
    expect(only(acquire(l, 500, "c")).type).toBe("queued");
    // "a" may reach the provider at 100; a provider window ending at 1099 would still hold it.
    expect(l.nextDeadline()).toBe(1100);
    expect(granted(l.apply({ type: "tick", at: 1099 }))).toEqual([]);
    expect(granted(l.apply({ type: "tick", at: 1100 }))).toEqual(["c"]);
  });

  it("fixed: a grant in the last D ms of a bucket also counts in the next one", () => {
    const l = setup({ limits: [rate(2, 1000, "fixed", 100)] });
    expect(granted([...acquire(l, 500, "early"), ...acquire(l, 900, "late")])).toEqual(["early", "late"]);
    // "late" (at 900) may arrive at 1000: the provider's bucket [1000, 2000) may count it.
    expect(granted([...acquire(l, 1000, "x"), ...acquire(l, 1000, "y")])).toEqual(["x"]);
    expect(l.nextDeadline()).toBe(2000);
    expect(l.resource("r")?.usage[0]?.used).toBe(2);
    expect(granted(l.apply({ type: "tick", at: 2000 }))).toEqual(["y"]);
  });

  it("bucket: holds back what refills during D, and keeps its full rate", () => {
    const l = setup({ limits: [tokens(1000, 1000, { window: "bucket", deliveryMarginMs: 100 })] });
    // Capacity 1000 less 100 (what refills in 100 ms at 1 unit per ms).
    expect(granted(acquire(l, 0, "a", { load: 900 }))).toEqual(["a"]);
    expect(only(acquire(l, 0, "b", { load: 250 })).type).toBe("queued");
    expect(l.nextDeadline()).toBe(250); // still 1 unit per ms
    expect(granted(l.apply({ type: "tick", at: 250 }))).toEqual(["b"]);
    const e = only(acquire(l, 300, "huge", { load: 901 }));
    expect(e).toMatchObject({ type: "rejected", code: "RQ_UNGRANTABLE" });
    expect((e as { message: string }).message).toContain("100 ms delivery margin");
  });

  it("defaults to min(1 s, windowMs / 40); a resource may set it for all its limits, a limit for itself", () => {
    const v = validateResourceConfig({ limits: [{ kind: "rate", limit: 1, windowMs: 60_000 }, { kind: "rate", limit: 1, windowMs: 1000 }, { kind: "concurrency", limit: 1 }] });
    expect(v.ok && v.config.limits.map((x) => ("deliveryMarginMs" in x ? x.deliveryMarginMs : null))).toEqual([1000, 25, null]);
    const r = validateResourceConfig({ deliveryMarginMs: 300, limits: [{ kind: "rate", limit: 1, windowMs: 60_000 }, { kind: "load", limit: 1, windowMs: 1000, deliveryMarginMs: 0 }] });
    expect(r.ok && r.config.limits.map((x) => ("deliveryMarginMs" in x ? x.deliveryMarginMs : null))).toEqual([300, 0]);
  });

  it("refuses a margin longer than the window, negative or fractional, and on a concurrency limit", () => {
    const bad = (config: object): unknown => {
      const v = validateResourceConfig(config);
      return v.ok ? null : v.errors;
    };
    expect(bad({ limits: [{ kind: "rate", limit: 1, windowMs: 1000, deliveryMarginMs: 1001 }] })).toEqual([
      { path: "limits/0/deliveryMarginMs", message: "must be between 0 and 1000 (at most the limit's windowMs)" },
    ]);
    expect(bad({ deliveryMarginMs: 2000, limits: [{ kind: "rate", limit: 1, windowMs: 1000 }] })).toEqual([
      { path: "limits/0", message: "the resource's deliveryMarginMs must be between 0 and 1000 (at most this limit's windowMs)" },
    ]);
    expect(bad({ deliveryMarginMs: -1, limits: [{ kind: "rate", limit: 1, windowMs: 1000 }] })).toEqual([{ path: "deliveryMarginMs", message: `must be between 0 and ${31 * 86_400_000}` }]);
    expect(bad({ limits: [{ kind: "rate", limit: 1, windowMs: 1000, deliveryMarginMs: 1.5 }] })).toMatchObject([{ path: "limits/0/deliveryMarginMs" }]);
    expect(bad({ limits: [{ kind: "concurrency", limit: 1, deliveryMarginMs: 10 }] })).toEqual([
      { path: "limits/0/deliveryMarginMs", message: "unknown field for a concurrency limit" },
    ]);
  });

  it("a new margin on a live resource keeps the usage already granted", () => {
    const l = setup({ limits: [rate(2, 1000, "sliding", 0)] });
    expect(granted([...acquire(l, 0, "a"), ...acquire(l, 10, "b")])).toEqual(["a", "b"]);
    l.apply({ type: "putResource", at: 20, name: "r", config: { limits: [rate(2, 1000, "sliding", 500)] } });
    expect(only(acquire(l, 30, "c")).type).toBe("queued");
    expect(l.nextDeadline()).toBe(1500);
  });
});

describe("queue order", () => {
  it("a 15,000-token request waits while 500-token requests behind it also wait", () => {
    const l = setup({ limits: [tokens(20_000, 60_000)] });
    expect(granted(acquire(l, 0, "first", { load: 10_000 }))).toEqual(["first"]);
    expect(only(acquire(l, 1, "big", { load: 15_000 })).type).toBe("queued");
    for (let i = 0; i < 5; i++) expect(only(acquire(l, 2 + i, `small${i}`, { load: 500 })).type).toBe("queued");
    // When "first" leaves the window, the big head goes first, then the small ones that fit behind it.
    expect(granted(l.apply({ type: "tick", at: 60_000 }))).toEqual(["big", "small0", "small1", "small2", "small3", "small4"]);
  });

  it("higher priority goes first; equal priority keeps arrival order", () => {
    const l = setup({ limits: [concurrency(1)] });
    const hold = leaseOf(acquire(l, 0, "hold"), "hold");
    acquire(l, 1, "low", { priority: 1 });
    acquire(l, 2, "normal-1");
    acquire(l, 3, "urgent", { priority: 50 });
    acquire(l, 4, "normal-2");
    const order: string[] = [];
    let lease = hold;
    for (let t = 10; order.length < 4; t++) {
      const e = l.apply({ type: "release", at: t, sessionId: "s", leaseId: lease });
      const next = e.find((x) => x.type === "granted");
      if (next?.type !== "granted") throw new Error("expected a grant");
      order.push(next.requestId);
      lease = next.leaseId;
    }
    expect(order).toEqual(["urgent", "normal-1", "normal-2", "low"]);
  });

  it("release frees a concurrency slot and wakes the next waiter, but refunds no rate", () => {
    const l = setup({ limits: [rate(5, 1000), concurrency(1)] });
    const a = leaseOf(acquire(l, 0, "a"), "a");
    expect(only(acquire(l, 1, "b")).type).toBe("queued");
    const e = l.apply({ type: "release", at: 2, sessionId: "s", leaseId: a });
    expect(e.map((x) => x.type)).toEqual(["released", "granted"]);
    expect(l.resource("r")?.usage[0]?.used).toBe(2);
  });
});

describe("scale", () => {
  it("a sliding window holding 100,000 grants stays exact: the next one is admitted exactly when the oldest leaves", () => {
    const l = setup({ limits: [rate(100_000, 60_000), tokens(100_000 * 7, 60_000)] }, { finishedPerSession: 0 });
    for (let i = 0; i < 100_000; i++) {
      const at = Math.floor(i / 2); // two grants per ms
      const e = acquire(l, at, `r${i}`, { load: 7 });
      if (e[0]?.type !== "granted") throw new Error(`grant ${i} refused`);
    }
    expect(l.resource("r")?.usage.map((u) => u.used)).toEqual([100_000, 700_000]);
    expect(only(acquire(l, 49_999, "late", { load: 7 })).type).toBe("queued");
    expect(l.nextDeadline()).toBe(60_000); // the two grants at 0 leave then
    expect(granted(l.apply({ type: "tick", at: 60_000 }))).toEqual(["late"]);
    expect(granted(acquire(l, 60_000, "one-more", { load: 7 }))).toEqual(["one-more"]);
    expect(only(acquire(l, 60_000, "too-many", { load: 7 })).type).toBe("queued");
  });
});

describe("ranges: windows up to 31 days, limits up to 1e12, on every algorithm", () => {
  const DAY = 86_400_000;

  it("accepts a 31-day window and a 1e12 limit on every algorithm, and refuses one ms more", () => {
    for (const window of ["sliding", "fixed", "bucket"]) {
      expect(validateResourceConfig({ limits: [tokens(1e12, 31 * DAY, { window })] }).ok, window).toBe(true);
      expect(validateResourceConfig({ limits: [tokens(1e12, 31 * DAY + 1, { window })] }).ok, window).toBe(false);
    }
  });

  it("bucket: a 1e12-token, 31-day bucket refills exactly (no drift however the refills are split)", () => {
    const W = 31 * DAY;
    const L = 1e12;
    // Exact reference: after e ms a drained bucket holds floor(e * L / W) whole units.
    const refilled = (e: number): number => Number((BigInt(e) * BigInt(L)) / BigInt(W));
    const l = setup({ limits: [tokens(L, W, { window: "bucket" })] });
    expect(granted(acquire(l, 0, "all", { load: L }))).toEqual(["all"]);
    let t = 0;
    // Refill in awkward steps (each a tick), then ask for exactly what the reference says is there.
    for (const step of [1, 7, 999, 86_399_999, 3, 12_345_678]) {
      t += step;
      l.apply({ type: "heartbeat", at: t, sessionId: "s" }); // keeps the 1-day session open
    }
    const have = refilled(t);
    expect(have).toBeGreaterThan(2 ** 53 / W); // the product e * L is far beyond 2^53
    expect(only(acquire(l, t, "one-too-many", { load: have + 1, timeoutMs: 0 })).type).toBe("timedOut");
    expect(granted(acquire(l, t, "exact", { load: have }))).toEqual(["exact"]);
    // A waiter for n units is granted at the first ms at which n units have refilled, not a ms earlier or later.
    const n = 12_345_678_901;
    expect(only(acquire(l, t, "wait", { load: n })).type).toBe("queued");
    const due = t + Number((BigInt(n) * BigInt(W) + BigInt(L) - 1n) / BigInt(L));
    expect(l.nextDeadline()).toBe(due);
    expect(granted(l.apply({ type: "tick", at: due - 1 }))).toEqual([]);
    expect(granted(l.apply({ type: "tick", at: due }))).toEqual(["wait"]);
  });

  it("sliding and fixed: a 31-day window of 1e12 tokens counts exactly to its last unit", () => {
    const W = 31 * DAY;
    for (const window of ["sliding", "fixed"]) {
      const l = setup({ limits: [tokens(1e12, W, { window })] });
      expect(granted(acquire(l, 0, "a", { load: 1e12 - 1 }))).toEqual(["a"]);
      expect(granted(acquire(l, 1, "b", { load: 1 }))).toEqual(["b"]);
      expect(only(acquire(l, 2, "c", { load: 1 })).type, window).toBe("queued");
      for (let half = 1; half < 62; half++) {
        expect(granted(l.apply({ type: "heartbeat", at: (half * DAY) / 2, sessionId: "s" })), `${window} half-day ${half}`).toEqual([]);
      }
      expect(granted(l.apply({ type: "tick", at: W - 1 })), window).toEqual([]);
      expect(granted(l.apply({ type: "tick", at: W })), window).toEqual(["c"]);
    }
  });
});

describe("settle", () => {
  it("reporting less returns capacity to the window, and a waiter gets it at once", () => {
    const l = setup({ limits: [tokens(1000, 60_000)] });
    const a = leaseOf(acquire(l, 0, "a", { load: 1000 }), "a");
    expect(only(acquire(l, 1, "b", { load: 600 })).type).toBe("queued");
    const e = l.apply({ type: "settle", at: 2, sessionId: "s", leaseId: a, actual: 312 });
    expect(e.map((x) => x.type)).toEqual(["settled", "granted"]);
    expect(l.resource("r")?.usage[0]?.used).toBe(912);
  });

  it("reporting more charges the difference (the only way usage can exceed a limit)", () => {
    const l = setup({ limits: [tokens(1000, 60_000), tokens(1000, 1000, { window: "bucket" })] });
    const a = leaseOf(acquire(l, 0, "a", { load: 500 }), "a");
    l.apply({ type: "settle", at: 1, sessionId: "s", leaseId: a, actual: 1500 });
    expect(l.resource("r")?.usage.map((u) => u.used)).toEqual([1500, 1499]); // the bucket refilled 1 unit in 1 ms
  });

  it("settle after the grant has left a sliding window changes nothing visible", () => {
    const l = setup({ limits: [tokens(1000, 100)] });
    const a = leaseOf(acquire(l, 0, "a", { load: 500 }), "a");
    acquire(l, 50, "b", { load: 100 });
    l.apply({ type: "settle", at: 120, sessionId: "s", leaseId: a, actual: 5000 });
    expect(l.resource("r")?.usage[0]?.used).toBe(100);
  });

  it("settle merges dimensions: only the reported ones change", () => {
    const l = setup({ limits: [tokens(5000, 60_000, { dimension: "input" }), tokens(5000, 60_000, { dimension: "output" })] });
    const a = leaseOf(acquire(l, 0, "a", { load: { input: 1200, output: 1024 } }), "a");
    const e = only(l.apply({ type: "settle", at: 1, sessionId: "s", leaseId: a, actual: { output: 312 } }));
    expect(e).toMatchObject({ type: "settled", load: { input: 1200, output: 312 } });
    expect(l.resource("r")?.usage.map((u) => u.used)).toEqual([1200, 312]);
  });

  it("settle of a released lease is refused with RQ_UNKNOWN_LEASE", () => {
    const l = setup({ limits: [tokens(5000, 60_000)] });
    const a = leaseOf(acquire(l, 0, "a", { load: 10 }), "a");
    l.apply({ type: "release", at: 1, sessionId: "s", leaseId: a });
    expect(only(l.apply({ type: "settle", at: 2, sessionId: "s", leaseId: a, actual: 1 }))).toMatchObject({ type: "error", code: "RQ_UNKNOWN_LEASE" });
  });
});

describe("timeouts, cancellation and immediate rejection", () => {
  it("a waiter times out at its deadline and is never granted afterwards", () => {
    const l = setup({ limits: [rate(1, 1000)] });
    acquire(l, 0, "a");
    expect(only(acquire(l, 100, "b", { timeoutMs: 900 })).type).toBe("queued");
    expect(l.nextDeadline()).toBe(1000); // its deadline and the window slide coincide: the timeout wins
    const e = l.apply({ type: "tick", at: 5000 });
    expect(e).toEqual([expect.objectContaining({ type: "timedOut", requestId: "b", code: "RQ_TIMEOUT" })]);
  });

  it("timeoutMs 0 is tryAcquire: granted now or timed out now", () => {
    const l = setup({ limits: [concurrency(1)] });
    expect(granted(acquire(l, 0, "a", { timeoutMs: 0 }))).toEqual(["a"]);
    expect(only(acquire(l, 0, "b", { timeoutMs: 0 }))).toMatchObject({ type: "timedOut", code: "RQ_TIMEOUT" });
    expect(l.resource("r")?.queued).toEqual({ default: 0 });
  });

  it("cancel removes a waiting head so the request behind it can go", () => {
    const l = setup({ limits: [tokens(1000, 60_000)] });
    acquire(l, 0, "a", { load: 600 });
    acquire(l, 1, "big", { load: 900 });
    acquire(l, 2, "small", { load: 100 });
    const e = l.apply({ type: "cancel", at: 3, sessionId: "s", requestId: "big" });
    expect(e.map((x) => [x.type, "requestId" in x ? x.requestId : ""])).toEqual([["cancelled", "big"], ["granted", "small"]]);
    // A repeated cancel answers the original outcome.
    expect(only(l.apply({ type: "cancel", at: 4, sessionId: "s", requestId: "big" }))).toMatchObject({ type: "cancelled", code: "RQ_CANCELLED" });
  });

  it("rejects at once what can never be granted, with a specific code and reason", () => {
    const l = setup({ limits: [tokens(1000, 60_000)] });
    expect(only(acquire(l, 0, "a", { resource: "nope" }))).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE" });
    expect(only(acquire(l, 0, "b", { lane: "vip" }))).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_RESOURCE", message: expect.stringContaining("no lanes") });
    expect(only(acquire(l, 0, "c", { load: 1001 }))).toMatchObject({ type: "rejected", code: "RQ_UNGRANTABLE", message: expect.stringContaining("capacity 1000") });
    expect(only(acquire(l, 0, "d", { load: { ouput: 5 } }))).toMatchObject({ type: "rejected", code: "RQ_INVALID", message: expect.stringContaining('"ouput"') });
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1.5]) {
      expect(only(acquire(l, 0, "e", { load: bad }))).toMatchObject({ type: "error", code: "RQ_INVALID" });
    }
    expect(l.resource("r")?.usage[0]?.used).toBe(0);
  });

  it("names that collide with object internals are safe: a \"constructor\" dimension is missing when absent, \"__proto__\" is refused", () => {
    const l = setup({ limits: [tokens(100, 1000, { dimension: "constructor" }), tokens(100, 1000, { dimension: "toString" })] });
    expect(only(acquire(l, 0, "a0", { load: { toString: 40 } }))).toMatchObject({ type: "rejected", code: "RQ_INVALID", message: expect.stringContaining('"constructor"') });
    expect(granted(acquire(l, 0, "a", { load: { toString: 40, constructor: 0 } }))).toEqual(["a"]);
    expect(l.resource("r")?.usage.map((u) => u.used)).toEqual([0, 40]);
    const bad = JSON.parse('{"__proto__": 5}') as Record<string, number>;
    expect(only(acquire(l, 0, "b", { load: bad }))).toMatchObject({ type: "error", code: "RQ_INVALID", message: expect.stringContaining("__proto__") });
    expect(validateResourceConfig(JSON.parse('{"limits":[{"kind":"concurrency","limit":1}],"lanes":{"__proto__":{"weight":1}}}')).ok).toBe(false);
  });

  it("a malformed command changes nothing, not even the snapshot bytes", () => {
    const l = setup({ limits: [rate(2, 1000)] });
    acquire(l, 5, "a");
    const before = l.snapshot();
    const bad: unknown[] = [
      null,
      { type: "warp", at: 1 },
      { type: "acquire", at: -1, sessionId: "s", requestId: "x", resource: "r" },
      { type: "acquire", at: 10, sessionId: "s", requestId: "x y", resource: "r" },
      { type: "acquire", at: 10, sessionId: "s", requestId: "x", resource: "r", priority: 1.5 },
      { type: "acquire", at: 10, sessionId: "s", requestId: "x", resource: "r", extra: 1 },
      { type: "cooldown", at: 10, resource: "r" },
      { type: "release", at: 10, sessionId: "s", leaseId: "1" },
    ];
    for (const cmd of bad) expect(only(l.apply(cmd as Command))).toMatchObject({ type: "error", code: "RQ_INVALID" });
    expect(l.snapshot()).toEqual(before);
  });
});

describe("cooldown", () => {
  it("after a reported 429 the resource grants nothing until retry-after has passed", () => {
    const l = setup({ limits: [rate(100, 1000)] });
    expect(only(l.apply({ type: "cooldown", at: 10, resource: "r", retryAfterMs: 2000 }))).toEqual({ type: "cooldown", resource: "r", untilMs: 2010 });
    expect(only(acquire(l, 20, "a")).type).toBe("queued");
    expect(l.nextDeadline()).toBe(2010);
    expect(granted(l.apply({ type: "tick", at: 2010 }))).toEqual(["a"]);
    // A shorter cooldown never shortens a longer one.
    l.apply({ type: "cooldown", at: 2020, resource: "r", untilMs: 5000 });
    l.apply({ type: "cooldown", at: 2030, resource: "r", retryAfterMs: 1 });
    expect(l.resource("r")?.cooldownUntil).toBe(5000);
  });

  it("names its reporter (`by`) in the effect when that report set the end, not when a longer cooldown covered it", () => {
    const l = setup({ limits: [rate(100, 1000)] });
    expect(only(l.apply({ type: "cooldown", at: 10, resource: "r", retryAfterMs: 2000, by: "worker-7" }))).toEqual({ type: "cooldown", resource: "r", untilMs: 2010, by: "worker-7" });
    expect(only(l.apply({ type: "cooldown", at: 20, resource: "r", retryAfterMs: 5, by: "worker-8" }))).toEqual({ type: "cooldown", resource: "r", untilMs: 2010 });
    expect(only(l.apply({ type: "cooldown", at: 30, resource: "r", untilMs: 3000, by: "key k1" }))).toEqual({ type: "cooldown", resource: "r", untilMs: 3000, by: "key k1" });
    const before = l.snapshot();
    for (const by of ["", "x".repeat(129), "a\nb", 7]) {
      expect(only(l.apply({ type: "cooldown", at: 40, resource: "r", retryAfterMs: 9_000, by } as unknown as Command))).toMatchObject({
        type: "error",
        code: "RQ_INVALID",
        message: expect.stringContaining("by must be a string of 1 to 128 printable characters"),
      });
    }
    expect(l.snapshot()).toEqual(before);
  });
});

describe("sessions", () => {
  it("expiry releases the session's leases and drops its waiters", () => {
    const l = setup({ limits: [concurrency(1)] });
    l.apply({ type: "openSession", at: 0, sessionId: "w1", ttlMs: 1000 });
    const a = leaseOf(acquire(l, 0, "a", { sessionId: "w1" }), "a");
    acquire(l, 1, "b", { sessionId: "w1" });
    acquire(l, 2, "c", { sessionId: "s" });
    l.apply({ type: "heartbeat", at: 900, sessionId: "w1" });
    expect(l.nextDeadline()).toBe(1900);
    const e = l.apply({ type: "tick", at: 1900 });
    expect(e).toEqual([
      { type: "sessionEnded", sessionId: "w1", reason: "expired", releasedLeases: [a], droppedRequests: ["b"] },
      expect.objectContaining({ type: "granted", requestId: "c", grantedAt: 1900 }),
    ]);
    expect(only(acquire(l, 2000, "d", { sessionId: "w1" }))).toMatchObject({ type: "rejected", code: "RQ_UNKNOWN_SESSION" });
  });

  it("renewSessions after a long leader change gives every session a fresh TTL instead of expiring it", () => {
    const l = setup({ limits: [concurrency(1)] });
    l.apply({ type: "openSession", at: 0, sessionId: "w1", ttlMs: 1000 });
    expect(only(l.apply({ type: "renewSessions", at: 50_000 }))).toEqual({ type: "sessionsRenewed", count: 2 });
    expect(only(l.apply({ type: "heartbeat", at: 50_500, sessionId: "w1" }))).toEqual({ type: "session", sessionId: "w1", expiresAt: 51_500 });
  });

  it("closeSession releases leases at once", () => {
    const l = setup({ limits: [concurrency(1)] });
    l.apply({ type: "openSession", at: 0, sessionId: "w1" });
    acquire(l, 0, "a", { sessionId: "w1" });
    acquire(l, 1, "b");
    const e = l.apply({ type: "closeSession", at: 2, sessionId: "w1" });
    expect(e.map((x) => x.type)).toEqual(["sessionEnded", "granted"]);
  });
});

describe("exactly once", () => {
  it("a retried acquire returns the original lease, and changes nothing", () => {
    const l = setup({ limits: [rate(2, 1000)] });
    const first = acquire(l, 0, "a");
    const snap = l.snapshot();
    expect(acquire(l, 0, "a")).toEqual(first);
    expect(l.snapshot()).toEqual(snap);
    l.apply({ type: "release", at: 1, sessionId: "s", leaseId: leaseOf(first, "a") });
    expect(acquire(l, 2, "a")).toEqual(first); // still the original grant, not a second one
    expect(l.resource("r")?.usage[0]?.used).toBe(1);
  });

  it("a retried acquire while waiting answers queued, and a repeated release stays released", () => {
    const l = setup({ limits: [concurrency(1)] });
    const a = leaseOf(acquire(l, 0, "a"), "a");
    expect(only(acquire(l, 1, "b")).type).toBe("queued");
    expect(only(acquire(l, 2, "b")).type).toBe("queued");
    expect(l.resource("r")?.queued).toEqual({ default: 1 });
    l.apply({ type: "release", at: 3, sessionId: "s", leaseId: a });
    expect(only(l.apply({ type: "release", at: 4, sessionId: "s", leaseId: a }))).toMatchObject({ type: "released", reason: "notHeld" });
    expect(l.resource("r")?.leasesHeld).toBe(1);
  });

  it("remembers the last N finished requests per session (bounded memory)", () => {
    const l = setup({ limits: [rate(1000, 1000)] }, { finishedPerSession: 2 });
    for (const id of ["a", "b", "c"]) acquire(l, 0, id, { resource: "missing" });
    expect(only(acquire(l, 1, "c", { resource: "missing" })).type).toBe("rejected");
    // "a" was forgotten: the id is treated as new.
    expect(granted(acquire(l, 1, "a"))).toEqual(["a"]);
  });
});

describe("configuration changes keep usage already granted (SPEC guarantee 8)", () => {
  const put = (l: Limiter, at: number, config: unknown): Effect[] => l.apply({ type: "putResource", at, name: "r", config });

  it("a longer window counts the grants already made: 3 per 60 s used up, then windowMs 60001, grants nothing more", () => {
    const l = setup({ limits: [rate(3, 60_000)] });
    for (const id of ["a", "b", "c"]) expect(granted(acquire(l, 10, id))).toEqual([id]);
    put(l, 20, { limits: [rate(3, 60_001)] });
    expect(only(acquire(l, 21, "d")).type).toBe("queued");
    expect(l.nextDeadline()).toBe(10 + 60_001); // when a, b and c leave the new window, not the old one
    expect(granted(l.apply({ type: "tick", at: 60_010 }))).toEqual([]);
    expect(granted(l.apply({ type: "tick", at: 60_011 }))).toEqual(["d"]);
  });

  it("a new algorithm counts the grants already made (sliding to fixed, to bucket, and back)", () => {
    for (const window of ["fixed", "bucket"]) {
      const l = setup({ limits: [rate(3, 1000)] });
      for (const id of ["a", "b", "c"]) acquire(l, 500, id);
      put(l, 600, { limits: [rate(3, 1000, window)] });
      expect(only(acquire(l, 601, "d", { timeoutMs: 0 })).type, window).toBe("timedOut");
      put(l, 700, { limits: [rate(3, 1000)] });
      expect(only(acquire(l, 701, "e", { timeoutMs: 0 })).type, window).toBe("timedOut");
    }
  });

  it("a limit moved to another dimension counts what was charged in that dimension", () => {
    const l = setup({ limits: [tokens(100, 60_000, { dimension: "input" }), tokens(100, 60_000, { dimension: "output" })] });
    acquire(l, 0, "a", { load: { input: 10, output: 90 } });
    put(l, 1, { limits: [tokens(100, 60_000, { dimension: "output" }), tokens(100, 60_000, { dimension: "input", window: "bucket" })] });
    put(l, 2, { limits: [tokens(100, 60_000, { dimension: "input" }), tokens(100, 60_000, { dimension: "output", window: "fixed" })] });
    expect(only(acquire(l, 3, "b", { load: { input: 0, output: 11 }, timeoutMs: 0 })).type).toBe("timedOut");
    expect(granted(acquire(l, 3, "c", { load: { input: 0, output: 10 } }))).toEqual(["c"]);
  });

  it("a resource deleted and created again counts what the deleted one granted", () => {
    const l = setup({ limits: [tokens(100, 60_000)] });
    acquire(l, 0, "a", { load: 80 });
    l.apply({ type: "deleteResource", at: 1, name: "r" });
    put(l, 2, { limits: [tokens(100, 60_000, { window: "bucket" })] });
    expect(only(acquire(l, 3, "b", { load: 21, timeoutMs: 0 })).type).toBe("timedOut");
    expect(granted(acquire(l, 3, "c", { load: 20 }))).toEqual(["c"]);
  });

  it("a settle after a change charges its increase in the rebuilt window", () => {
    const l = setup({ limits: [tokens(100, 1000)] });
    const a = leaseOf(acquire(l, 0, "a", { load: 10 }), "a");
    put(l, 1, { limits: [tokens(100, 2000)] });
    l.apply({ type: "settle", at: 2, sessionId: "s", leaseId: a, actual: 95 });
    expect(only(acquire(l, 3, "b", { load: 6, timeoutMs: 0 })).type).toBe("timedOut");
    expect(granted(acquire(l, 3, "c", { load: 5 }))).toEqual(["c"]);
  });

  it("a lowered rate limit grants nothing until usage is below the new limit", () => {
    const l = setup({ limits: [rate(10, 1000)] });
    for (let i = 0; i < 5; i++) acquire(l, i, `a${i}`);
    put(l, 10, { limits: [rate(3, 1000)] });
    expect(only(acquire(l, 11, "b")).type).toBe("queued");
    expect(l.nextDeadline()).toBe(1002); // a0..a2 (granted at 0..2) must leave: then a3, a4 and b make 3
    expect(granted(l.apply({ type: "tick", at: 1001 }))).toEqual([]);
    expect(granted(l.apply({ type: "tick", at: 1002 }))).toEqual(["b"]);
  });

  it("a lowered concurrency limit keeps the leases held and grants the next only below the new limit", () => {
    const l = setup({ limits: [concurrency(3)] });
    const leases = ["a", "b", "c"].map((id) => leaseOf(acquire(l, 0, id), id));
    put(l, 1, { limits: [concurrency(1)] });
    expect(l.resource("r")?.leasesHeld).toBe(3);
    expect(only(acquire(l, 2, "d")).type).toBe("queued");
    expect(granted(l.apply({ type: "release", at: 3, sessionId: "s", leaseId: leases[0] as number }))).toEqual([]);
    expect(granted(l.apply({ type: "release", at: 4, sessionId: "s", leaseId: leases[1] as number }))).toEqual([]);
    expect(granted(l.apply({ type: "release", at: 5, sessionId: "s", leaseId: leases[2] as number }))).toEqual(["d"]);
  });

  it("concurrency 3 -> 1 with 3 leases held: the next grant waits for all but none to end, in queue order; raised again, it grants at once", () => {
    const l = setup({ limits: [concurrency(3)] });
    const leases = ["a", "b", "c"].map((id) => leaseOf(acquire(l, 0, id), id));
    put(l, 1, { limits: [concurrency(1)] });
    expect(l.resource("r")?.usage[0]?.used).toBe(3); // over the new limit: kept, not revoked
    expect(only(acquire(l, 2, "low", { priority: 5 })).type).toBe("queued");
    expect(only(acquire(l, 3, "high", { priority: 50 })).type).toBe("queued");
    expect(only(acquire(l, 4, "try", { timeoutMs: 0 })).type).toBe("timedOut"); // tryAcquire too
    expect(granted(l.apply({ type: "release", at: 5, sessionId: "s", leaseId: leases[0] as number }))).toEqual([]); // 2 held > 0 free
    expect(granted(l.apply({ type: "release", at: 6, sessionId: "s", leaseId: leases[1] as number }))).toEqual([]); // 1 held = the limit
    expect(granted(l.apply({ type: "release", at: 7, sessionId: "s", leaseId: leases[2] as number }))).toEqual(["high"]);
    expect(l.resource("r")?.usage[0]?.used).toBe(1);
    // Raised back to 3: the waiter left fits at once, at the change.
    expect(granted(put(l, 8, { limits: [concurrency(3)] }))).toEqual(["low"]);
  });

  it("a merged (bounded) history never under-counts: a window lengthened after 500 grants still counts each of them", () => {
    const l = setup({ limits: [rate(1000, 100)] }, { historyEntries: 8 });
    const at: number[] = [];
    for (let i = 0; i < 500; i++) {
      at.push(i * 2);
      acquire(l, i * 2, `g${i}`);
    }
    put(l, 1000, { limits: [rate(300, 1000)] });
    // Exactly: grants at t > 1000 - 1000 = 0 count, i.e. 499 of them, more than 300; and the window frees one by one.
    for (let t = 1000; t <= 2000; t += 37) {
      const exact = at.filter((g) => g > t - 1000 && g <= t).length;
      const fits = only(acquire(l, t, `probe${t}`, { timeoutMs: 0 })).type === "granted";
      if (fits) at.push(t);
      expect(exact < 300 || !fits, `granted at ${t} with ${exact} grants in the window`).toBe(true);
    }
  });
});

describe("configuration changes", () => {
  it("a lowered limit rejects waiters it makes ungrantable and keeps the usage of unchanged windows", () => {
    const l = setup({ limits: [tokens(1000, 60_000)] });
    acquire(l, 0, "a", { load: 800 });
    acquire(l, 1, "b", { load: 900 });
    acquire(l, 2, "c", { load: 300 });
    const e = l.apply({ type: "putResource", at: 3, name: "r", config: { limits: [tokens(500, 60_000)] } });
    expect(e).toEqual([
      expect.objectContaining({ type: "rejected", requestId: "b", code: "RQ_UNGRANTABLE" }),
      { type: "resourcePut", name: "r", created: false },
    ]);
    expect(l.resource("r")?.usage[0]?.used).toBe(800); // usage kept: "c" still waits
    expect(l.resource("r")?.queued).toEqual({ default: 1 });
  });

  it("a raised concurrency limit grants waiters at once", () => {
    const l = setup({ limits: [concurrency(1)] });
    acquire(l, 0, "a");
    acquire(l, 1, "b");
    const e = l.apply({ type: "putResource", at: 2, name: "r", config: { limits: [concurrency(2)] } });
    expect(granted(e)).toEqual(["b"]);
  });

  it("removing a lane rejects the requests waiting in it; the other lanes keep their place", () => {
    const l = setup({ limits: [concurrency(1)], lanes: { interactive: { weight: 1 }, batch: { weight: 1 } } });
    acquire(l, 0, "hold", { lane: "interactive" });
    acquire(l, 1, "b", { lane: "batch" });
    acquire(l, 2, "i", { lane: "interactive" });
    const e = l.apply({ type: "putResource", at: 3, name: "r", config: { limits: [concurrency(1)], lanes: { interactive: { weight: 1 } } } });
    expect(e[0]).toMatchObject({ type: "rejected", requestId: "b", code: "RQ_UNKNOWN_RESOURCE", message: expect.stringContaining('unknown lane "batch"') });
    expect(l.resource("r")?.queued).toEqual({ interactive: 1 });
    expect(l.resource("r")?.leasesHeld).toBe(1);
  });

  it("deleting a resource rejects its waiters and drops its leases", () => {
    const l = setup({ limits: [concurrency(1)] });
    const a = leaseOf(acquire(l, 0, "a"), "a");
    acquire(l, 1, "b");
    const e = l.apply({ type: "deleteResource", at: 2, name: "r" });
    expect(e).toEqual([
      expect.objectContaining({ type: "rejected", requestId: "b", code: "RQ_UNKNOWN_RESOURCE" }),
      { type: "released", sessionId: "s", leaseId: a, reason: "resourceDeleted" },
      { type: "resourceDeleted", name: "r" },
    ]);
    expect(l.resourceNames()).toEqual([]);
  });

  it("an invalid configuration is refused with every problem and its path", () => {
    const l = new Limiter();
    const e = only(l.apply({ type: "putResource", at: 0, name: "r", config: { limits: [{ kind: "rate", limit: 0, windowMs: 0.5 }], lanes: { a: { weight: 0 } } } }));
    expect(e).toMatchObject({
      type: "error",
      code: "RQ_INVALID",
      details: [
        { path: "lanes/a/weight", message: "must be between 1 and 1000" },
        { path: "limits/0/limit", message: "must be between 1 and 1000000000000" },
        { path: "limits/0/windowMs", message: "must be an integer" },
      ],
    });
    expect(l.resourceNames()).toEqual([]);
  });
});

describe("lanes", () => {
  const laned = (policy: string, extra: object = {}) => ({
    limits: [concurrency(4), ...("limits" in extra ? [] : [])],
    lanes: { interactive: { weight: 3 }, batch: { weight: 1 } },
    lanePolicy: policy,
    ...extra,
  });

  it("shared: under contention lanes are served in proportion to weight", () => {
    const l = setup(laned("shared", { limits: [concurrency(1)] }));
    let lease = leaseOf(acquire(l, 0, "hold"), "hold");
    for (let i = 0; i < 8; i++) {
      acquire(l, 1, `i${i}`, { lane: "interactive" });
      acquire(l, 1, `b${i}`, { lane: "batch" });
    }
    const order: string[] = [];
    for (let t = 2; t < 10; t++) {
      const e = l.apply({ type: "release", at: t, sessionId: "s", leaseId: lease });
      const g = e.find((x) => x.type === "granted");
      if (g?.type !== "granted") throw new Error("expected a grant");
      order.push(g.requestId[0] as string);
      lease = g.leaseId;
    }
    expect(order.join("")).toBe("ibiiibii");
  });

  it("shared is work-conserving: an idle lane's share goes to the busy one", () => {
    const l = setup(laned("shared"));
    const e = [0, 1, 2, 3].flatMap((i) => acquire(l, 0, `b${i}`, { lane: "batch" }));
    expect(granted(e)).toEqual(["b0", "b1", "b2", "b3"]);
  });

  it("shared: a big head in one lane is not starved by a stream of small requests in another", () => {
    const l = setup({ limits: [tokens(1000, 1000)], lanes: { a: { weight: 1 }, b: { weight: 1 } } });
    acquire(l, 0, "b-first", { lane: "b", load: 600 });
    acquire(l, 1, "a-big", { lane: "a", load: 900 });
    let grantedBig = -1;
    for (let t = 2; t < 5000 && grantedBig < 0; t += 50) {
      const e = acquire(l, t, `b${t}`, { lane: "b", load: 100 });
      if (granted(e).includes("a-big")) grantedBig = t;
      const tick = l.apply({ type: "tick", at: t + 25 });
      if (granted(tick).includes("a-big")) grantedBig = t + 25;
    }
    expect(grantedBig).toBeGreaterThan(0);
    expect(grantedBig).toBeLessThan(2500);
  });

  it("shared: weighted sharing follows the limit it shares: under a token limit, tokens (not grants) go by weight", () => {
    // Equal weights; lane "big" asks 1,000 tokens a request, lane "small" 100. By grant count, "big" took 10x the tokens.
    const l = setup({ limits: [tokens(5000, 1000, { deliveryMarginMs: 0 })], lanes: { big: { weight: 1 }, small: { weight: 1 } } });
    l.apply({ type: "cooldown", at: 0, resource: "r", untilMs: 1 });
    for (let i = 0; i < 300; i++) {
      if (i < 100) acquire(l, 0, `b${i}`, { lane: "big", load: 1000 });
      acquire(l, 0, `s${i}`, { lane: "small", load: 100 }); // both lanes stay backlogged to the end
    }
    const served = { b: 0, s: 0 };
    for (let at = l.nextDeadline(); at !== null && at < 5000; at = l.nextDeadline()) {
      for (const e of l.apply({ type: "tick", at })) if (e.type === "granted") served[e.requestId[0] as "b" | "s"] += (e.load.load as number);
    }
    expect(served.b + served.s).toBeGreaterThan(15_000);
    expect(Math.abs(served.b - served.s)).toBeLessThanOrEqual(1000); // within one large request
    // Weights 3:1 give 3:1 of the tokens, whatever the request sizes.
    const w = setup({ limits: [tokens(5000, 1000, { deliveryMarginMs: 0 })], lanes: { big: { weight: 1 }, small: { weight: 3 } } });
    w.apply({ type: "cooldown", at: 0, resource: "r", untilMs: 1 });
    for (let i = 0; i < 300; i++) {
      if (i < 100) acquire(w, 0, `b${i}`, { lane: "big", load: 1000 });
      acquire(w, 0, `s${i}`, { lane: "small", load: 100 });
    }
    const got = { b: 0, s: 0 };
    for (let at = w.nextDeadline(); at !== null && at < 3000; at = w.nextDeadline()) {
      for (const e of w.apply({ type: "tick", at })) if (e.type === "granted") got[e.requestId[0] as "b" | "s"] += (e.load.load as number);
    }
    expect(Math.abs(got.s - 3 * got.b)).toBeLessThanOrEqual(3000);
  });

  it("strict: each lane is capped at its weighted share even when the other lane is idle", () => {
    const l = setup(laned("strict"));
    const e = [0, 1, 2, 3].flatMap((i) => acquire(l, 0, `b${i}`, { lane: "batch" }));
    expect(granted(e)).toEqual(["b0"]); // batch's share: floor(4 * 1/4) = 1
    expect(granted([0, 1, 2, 3].flatMap((i) => acquire(l, 0, `i${i}`, { lane: "interactive" })))).toEqual(["i0", "i1", "i2"]);
  });

  it("a strict lane whose share rounds down to 0 is refused at configuration, with the limit that would do", () => {
    const dead = { limits: [concurrency(1)], lanes: { a: { weight: 1 }, b: { weight: 1 } }, lanePolicy: "strict" };
    const r = validateResourceConfig(dead);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([{ path: "limits/0/limit", message: expect.stringMatching(/strict lane "a" gets floor\(1 \* 1 \/ 2\) = 0 .*at least 2/) }]);
    const l = new Limiter();
    expect(only(l.apply({ type: "putResource", at: 0, name: "r", config: dead }))).toMatchObject({ type: "error", code: "RQ_INVALID" });
    expect(l.resourceNames()).toEqual([]);
    // Weights 3:1 on a rate of 3: the light lane's share is floor(3 / 4) = 0; a rate of 4 gives it 1.
    expect(validateResourceConfig({ limits: [rate(3, 1000)], lanes: { hi: { weight: 3 }, lo: { weight: 1 } }, lanePolicy: "strict" }).ok).toBe(false);
    expect(validateResourceConfig({ limits: [rate(4, 1000)], lanes: { hi: { weight: 3 }, lo: { weight: 1 } }, lanePolicy: "strict" }).ok).toBe(true);
    // Shared lanes split nothing up front: concurrency 1 over two shared lanes is fine.
    expect(validateResourceConfig({ ...dead, lanePolicy: "shared" }).ok).toBe(true);
    // A snapshot written before this rule still restores.
    expect(validateResourceConfig(dead, { allowDeadLanes: true }).ok).toBe(true);
  });

  it("reserved units that leave another lane no capacity are refused at configuration", () => {
    const r = validateResourceConfig({ limits: [{ ...concurrency(2), reserved: { a: 2 } }], lanes: { a: { weight: 1 }, b: { weight: 1 } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]?.message).toMatch(/leaves lane "b" no capacity/);
    expect(validateResourceConfig({ limits: [{ ...concurrency(2), reserved: { a: 1 } }], lanes: { a: { weight: 1 }, b: { weight: 1 } } }).ok).toBe(true);
  });

  it("reserved units are usable only by their lane; a load above what a lane may use is rejected at once", () => {
    const l = setup({
      limits: [{ kind: "load", limit: 1000, windowMs: 60_000, reserved: { interactive: 300 } }],
      lanes: { interactive: { weight: 1 }, batch: { weight: 1 } },
    });
    expect(only(acquire(l, 0, "too-big", { lane: "batch", load: 701 }))).toMatchObject({ code: "RQ_UNGRANTABLE", message: expect.stringContaining("this lane may use 700") });
    expect(granted(acquire(l, 0, "b", { lane: "batch", load: 700 }))).toEqual(["b"]);
    expect(only(acquire(l, 0, "b2", { lane: "batch", load: 1 })).type).toBe("queued");
    expect(granted(acquire(l, 0, "i", { lane: "interactive", load: 300 }))).toEqual(["i"]);
  });

  it("a request without a lane goes to the default lane (the first, unless defaultLane says otherwise)", () => {
    const l = setup({ limits: [concurrency(1)], lanes: { interactive: { weight: 1 }, batch: { weight: 1 } }, defaultLane: "batch" });
    acquire(l, 0, "a");
    acquire(l, 1, "b");
    expect(l.resource("r")?.queued).toEqual({ interactive: 0, batch: 1 });
  });
});

describe("time and snapshots", () => {
  it("a stamp that goes backwards is clamped: time never runs back", () => {
    const l = setup({ limits: [rate(1, 1000)] });
    acquire(l, 5000, "a");
    expect(only(acquire(l, 10, "b")).type).toBe("queued"); // counted at 5000, not at 10
    expect(l.lastAt).toBe(5000);
    expect(l.nextDeadline()).toBe(6000);
  });

  it("a restored machine gives the same effects and the same snapshot bytes", () => {
    const l = setup({ limits: [rate(3, 100), tokens(500, 250, { window: "bucket" }), concurrency(2)], lanes: { x: { weight: 2 }, y: { weight: 1 } } });
    acquire(l, 0, "a", { load: 300 });
    acquire(l, 1, "b", { load: 300, lane: "y", timeoutMs: 500 });
    acquire(l, 2, "c", { load: 10, priority: 20 });
    const copy = Limiter.restore(l.snapshot());
    expect(copy.snapshot()).toEqual(l.snapshot());
    const rest: Command[] = [
      { type: "tick", at: 150 },
      { type: "release", at: 200, sessionId: "s", leaseId: 1 },
      { type: "settle", at: 210, sessionId: "s", leaseId: 2, actual: 5 },
      { type: "acquire", at: 220, sessionId: "s", requestId: "d", resource: "r", load: 100 },
      { type: "tick", at: 2000 },
    ];
    for (const cmd of rest) expect(copy.apply(cmd)).toEqual(l.apply(cmd));
    expect(copy.snapshot()).toEqual(l.snapshot());
    expect(copy.nextDeadline()).toBe(l.nextDeadline());
  });

  it("restore refuses bytes it cannot trust", () => {
    const l = setup({ limits: [rate(3, 100)] });
    acquire(l, 0, "a");
    const bytes = l.snapshot();
    expect(() => Limiter.restore(bytes.subarray(0, bytes.length - 3))).toThrow(/snapshot/);
    expect(() => Limiter.restore(new Uint8Array([1, 2, 3]))).toThrow(/snapshot/);
  });
});
