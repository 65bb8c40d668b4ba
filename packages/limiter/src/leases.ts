/**
 * Leases after their grant: release (idempotent; frees concurrency slots,
 * while rate and load stay charged, as providers count them at grant) and
 * settle (the actual load replaces the estimate in every window).
 */
import { dimensionProblem, toLoadVector } from "./admission.js";
import { finish, sessionOf } from "./exactly-once.js";
import { amountFor, type Lease, type LimitRuntime } from "./resource.js";
import { errorEffect, type MachineState } from "./state.js";
import { ErrorCode, type Effect, type Load, type LoadVector } from "./types.js";
import type { Window } from "./windows/window.js";

export function release(m: MachineState, sessionId: string, leaseId: number, out: Effect[]): void {
  const lease = m.leases.get(leaseId);
  if (lease !== undefined && lease.session.id !== sessionId) {
    out.push(errorEffect("release", ErrorCode.INVALID, `lease ${leaseId} belongs to another session`));
    return;
  }
  if (lease === undefined) {
    // Idempotent: a lease already released (or dropped with its session or resource) stays released.
    out.push({ type: "released", sessionId, leaseId, reason: "notHeld" });
    return;
  }
  dropLease(m, lease);
  finish(m, sessionOf(m, lease.session), lease.record, null);
  out.push({ type: "released", sessionId, leaseId, reason: "released" });
}

/** Frees a lease's concurrency slots; rate and load stay charged (providers count them at grant). */
export function dropLease(m: MachineState, lease: Lease): void {
  const r = lease.resource;
  for (const lim of r.limits) {
    if (lim.window !== null) continue;
    lim.held--;
    if (lim.laneHeld !== null && lease.laneIdx >= 0) lim.laneHeld[lease.laneIdx]!--;
    if (lim.held < 0) throw new Error("invariant: negative concurrency");
  }
  r.leases.delete(lease.id);
  m.leases.delete(lease.id);
  if (r.waiting > 0) m.dirty.add(r);
}

export function settle(m: MachineState, sessionId: string, leaseId: number, actual: Load, at: number, out: Effect[]): void {
  const lease = m.leases.get(leaseId);
  if (lease === undefined || lease.session.id !== sessionId) {
    out.push(errorEffect("settle", ErrorCode.UNKNOWN_LEASE, `lease ${leaseId} is not held by session "${sessionId}" (settle before release)`));
    return;
  }
  const actualLoad = toLoadVector(actual);
  const r = lease.resource;
  const dimProblem = dimensionProblem(r, actualLoad, "settle");
  if (dimProblem !== null) {
    out.push(errorEffect("settle", ErrorCode.INVALID, dimProblem));
    return;
  }
  const next: LoadVector = { ...lease.load, ...actualLoad };
  const diffs = r.limits.map((lim) => (lim.config.kind === "load" ? amountFor(lim.config, next) - amountFor(lim.config, lease.load) : 0));
  // Check first, then change: a settle that would overflow exact arithmetic changes nothing.
  for (let i = 0; i < r.limits.length; i++) {
    const lim = r.limits[i] as LimitRuntime;
    const diff = diffs[i] as number;
    if (diff > 0 && lim.window && (lim.window.wouldOverflow(diff) || (lim.laneWindows?.[lease.laneIdx]?.wouldOverflow(diff) ?? false))) {
      out.push(errorEffect("settle", ErrorCode.INVALID, "actual load is too large to count exactly"));
      return;
    }
  }
  for (let i = 0; i < r.limits.length; i++) {
    const lim = r.limits[i] as LimitRuntime;
    const diff = diffs[i] as number;
    if (diff === 0 || lim.window === null) continue;
    const laneWindow = lim.laneWindows !== null && lease.laneIdx >= 0 ? (lim.laneWindows[lease.laneIdx] as Window) : null;
    if (lease.id >= lim.sinceSeq) {
      lim.window.adjust(at, lease.id, lease.grantedAt, diff);
      laneWindow?.adjust(at, lease.id, lease.grantedAt, diff);
    } else if (diff > 0) {
      // Granted before this window was built from the history: the increase is charged now, a refund is kept.
      lim.window.chargeExtra(at, diff);
      laneWindow?.chargeExtra(at, diff);
    }
  }
  const increase: Record<string, number> = {};
  let increased = false;
  for (const k in next) {
    const up = (next[k] as number) - (Object.hasOwn(lease.load, k) ? (lease.load[k] as number) : 0);
    if (up > 0) [increase[k], increased] = [up, true];
  }
  if (increased) {
    r.history.expire(at);
    r.history.push(at, 0, increase);
  }
  lease.load = next;
  if (r.waiting > 0) m.dirty.add(r);
  out.push({ type: "settled", sessionId, leaseId, load: next });
}
