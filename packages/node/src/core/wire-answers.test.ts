import type { Effect } from "@ratequeue/limiter";
import { describe, expect, it } from "vitest";
import { effectToWire, endsAcquire, refusedToWire } from "./wire-answers.js";

const base = { sessionId: "s", requestId: "7", resource: "r" } as const;

describe("effectToWire", () => {
  it("answers a grant with the lease, its load 0 when nothing was charged", () => {
    const e: Effect = { type: "granted", ...base, leaseId: 3, load: {}, grantedAt: 100 };
    expect(effectToWire(e, false)).toEqual({ type: "granted", requestId: 7, lease: { id: "3", resource: "r", load: 0, grantedAt: 100 } });
    expect(effectToWire({ ...e, load: { input: 5 } }, true)).toMatchObject({ lease: { load: { input: 5 } } });
    expect(endsAcquire(e)).toBe(true);
  });

  it("reports queueing except for a tryAcquire", () => {
    const e: Effect = { type: "queued", ...base };
    expect(effectToWire(e, false)).toEqual({ type: "queued", requestId: 7 });
    expect(effectToWire(e, true)).toBeNull();
    expect(endsAcquire(e)).toBe(false);
  });

  it("turns a tryAcquire's time-out into RQ_WOULD_WAIT and limiter-only codes into wire codes", () => {
    const timedOut: Effect = { type: "timedOut", ...base, code: "RQ_TIMEOUT", message: "m" };
    expect(effectToWire(timedOut, false)).toEqual({ type: "rejected", requestId: 7, code: "RQ_TIMEOUT", message: "m" });
    expect(effectToWire(timedOut, true)).toEqual({ type: "rejected", requestId: 7, code: "RQ_WOULD_WAIT", message: "m" });
    const noSession: Effect = { type: "rejected", ...base, code: "RQ_UNKNOWN_SESSION", message: "m" };
    expect(effectToWire(noSession, false)).toMatchObject({ code: "RQ_SESSION_EXPIRED" });
    expect(refusedToWire(9, { type: "error", command: "settle", code: "RQ_UNKNOWN_LEASE", message: "m" })).toEqual({
      type: "rejected",
      requestId: 9,
      code: "RQ_INVALID",
      message: "m",
    });
  });

  it("sends clients nothing for effects that answer no request", () => {
    expect(effectToWire({ type: "session", sessionId: "s", expiresAt: 1 }, false)).toBeNull();
    expect(effectToWire({ type: "released", sessionId: "s", leaseId: 1, reason: "released" }, false)).toBeNull();
  });
});
