/**
 * Resources: creation, reconfiguration and deletion. The rule (README,
 * "Config changes"): a limit whose key (kind, dimension, algorithm,
 * windowMs, margin, a bucket's size) is unchanged keeps its window; any other
 * is rebuilt from the resource's usage history, so it counts everything
 * already charged as if it had always been defined that way. Waiting
 * requests are checked again; a deleted resource's history stays as a
 * tombstone until it ages out, so deleting and re-creating resets nothing.
 */
import { dimensionProblem, endWaiter, enqueue, laneIndex, laneProblem, leaseLaneIndex, ungrantable } from "./admission.js";
import { finish, sessionOf } from "./exactly-once.js";
import { History } from "./history.js";
import { LaneQueue } from "./lane-queue.js";
import { dropLease } from "./leases.js";
import {
  IMPLICIT_LANE,
  capsByLane,
  limitKey,
  newWindow,
  replayedWindow,
  shareOf,
  type LaneRuntime,
  type LimitRuntime,
  type Resource,
  type Waiter,
} from "./resource.js";
import { errorEffect, type MachineState } from "./state.js";
import { ErrorCode, type Effect, type ResourceConfig } from "./types.js";
import { Bounds, validateResourceConfig } from "./validate.js";
import { BucketWindow } from "./windows/bucket.js";
import type { Window } from "./windows/window.js";

export function putResource(m: MachineState, name: string, body: unknown, at: number, out: Effect[]): void {
  const result = validateResourceConfig(body);
  if (!result.ok) {
    out.push({ ...errorEffect("putResource", ErrorCode.INVALID, `invalid configuration for "${name}": ${result.errors.map((e) => `${e.path || "(body)"}: ${e.message}`).join("; ")}`), details: result.errors });
    return;
  }
  pruneTombstones(m, at);
  const existing = m.resources.get(name);
  if (existing === undefined) {
    const history = m.tombstones.get(name) ?? new History(Bounds.windowMsMax, m.historyEntries);
    m.tombstones.delete(name);
    const r = buildResource(m, name, ++m.resourceSeq, result.config, null, history);
    m.resources.set(name, r);
    out.push({ type: "resourcePut", name, created: true });
    return;
  }
  reconfigure(m, existing, result.config, out);
  out.push({ type: "resourcePut", name, created: false });
}

/**
 * Builds a resource's runtime for `config`. A limit with the same key as
 * one of `previous` (kind, dimension, algorithm, windowMs, and a bucket's
 * size) keeps its window; any other is built from `history`, so it counts
 * everything already charged as if it had always been defined this way.
 */
export function buildResource(m: MachineState, name: string, seq: number, config: ResourceConfig, previous: Resource | null, history: History): Resource {
  const laneNames = config.lanes.map((l) => l.name);
  const strict = config.lanePolicy === "strict" && config.lanes.length > 0;
  const totalWeight = config.lanes.reduce((sum, l) => sum + l.weight, 0);
  const unused = previous ? [...previous.limits] : [];
  const limits = config.limits.map((lc): LimitRuntime => {
    const key = limitKey(lc);
    const shares = strict ? config.lanes.map((l) => shareOf(lc.limit, l.weight, totalWeight)) : null;
    const oldIdx = unused.findIndex((o) => o.key === key);
    const old = oldIdx >= 0 ? (unused.splice(oldIdx, 1)[0] as LimitRuntime) : null;
    const window = old !== null ? old.window : replayedWindow(lc, lc.limit, history);
    const at = m.now;
    let laneWindows: Window[] | null = null;
    if (strict && lc.kind !== "concurrency") {
      laneWindows = config.lanes.map((lane, i) => {
        const oldLane = previous && old?.laneWindows ? old.laneWindows[previous.lanes.findIndex((p) => p.name === lane.name)] : undefined;
        const w = oldLane ?? (newWindow(lc, shares?.[i] ?? 0) as Window);
        if (w instanceof BucketWindow) w.setLimit(at, shares?.[i] ?? 0);
        return w;
      });
    }
    return {
      config: lc,
      key,
      window,
      laneWindows,
      sinceSeq: old?.sinceSeq ?? m.grantSeq + 1,
      held: 0,
      laneHeld: strict && lc.kind === "concurrency" ? config.lanes.map(() => 0) : null,
      capByLane: capsByLane(lc, laneNames),
      laneShare: shares,
    };
  });
  const lanes: LaneRuntime[] = (config.lanes.length > 0 ? config.lanes : [{ name: IMPLICIT_LANE, weight: 1 }]).map((l) => ({
    name: l.name,
    weight: l.weight,
    queue: new LaneQueue<Waiter>(),
    vt: previous?.lanes.find((p) => p.name === l.name)?.vt ?? previous?.vtFloor ?? 0,
  }));
  const dimensions = new Set<string>();
  for (const lc of config.limits) if (lc.kind === "load") dimensions.add(lc.dimension);
  return {
    name,
    seq,
    config,
    limits,
    lanes,
    implicitLane: config.lanes.length === 0,
    strict,
    defaultLaneIdx: config.defaultLane === null ? 0 : laneNames.indexOf(config.defaultLane),
    dimensions,
    cooldownUntil: previous?.cooldownUntil ?? 0,
    leases: previous?.leases ?? new Map(),
    waiting: 0,
    wakeAt: null,
    vtFloor: previous?.vtFloor ?? 0,
    history,
  };
}

/** Forgets deleted resources' histories once nothing in them can be counted. */
function pruneTombstones(m: MachineState, at: number): void {
  for (const [name, h] of m.tombstones) {
    h.expire(at);
    if (h.size === 0) m.tombstones.delete(name);
  }
}

/** Live waiters of every lane of `r`, in arrival order. */
export function waitersByArrival(r: Resource): Waiter[] {
  const waiters: Waiter[] = [];
  for (const lane of r.lanes) waiters.push(...lane.queue.inOrder());
  waiters.sort((a, b) => a.seq - b.seq);
  return waiters;
}

/** Replaces a resource's config in place; waiting requests are re-checked against it. */
function reconfigure(m: MachineState, old: Resource, config: ResourceConfig, out: Effect[]): void {
  const waiters = waitersByArrival(old);
  const next = buildResource(m, old.name, old.seq, config, old, old.history);
  Object.assign(old, next); // keep the object: waiters, leases and heaps point at it
  const r = old;
  for (const lease of r.leases.values()) {
    lease.laneIdx = leaseLaneIndex(r, lease.laneName);
    for (const lim of r.limits) {
      if (lim.window !== null) continue;
      lim.held++;
      if (lim.laneHeld !== null && lease.laneIdx >= 0) lim.laneHeld[lease.laneIdx]!++;
    }
  }
  for (const w of waiters) {
    const laneIdx = laneIndex(r, w.laneRequested);
    const dimProblem = dimensionProblem(r, w.load, "acquire");
    const [code, problem] =
      laneIdx < 0
        ? [ErrorCode.UNKNOWN_RESOURCE, laneProblem(r, w.laneRequested as string)]
        : dimProblem !== null
          ? [ErrorCode.INVALID, dimProblem]
          : [ErrorCode.UNGRANTABLE, ungrantable(r, laneIdx, w.load)];
    if (problem !== null) {
      w.alive = false;
      if (w.deadline !== Infinity) m.liveTimeouts--;
      const s = sessionOf(m, w.session);
      const outcome: Effect = { type: "rejected", sessionId: s.id, requestId: w.requestId, resource: r.name, code, message: `after a configuration change: ${problem}` };
      finish(m, s, w.record, outcome);
      out.push(outcome);
      continue;
    }
    w.laneIdx = laneIdx;
    enqueue(r, w);
  }
  r.wakeAt = null;
  m.dirty.add(r);
}

export function deleteResource(m: MachineState, name: string, out: Effect[]): void {
  const r = m.resources.get(name);
  if (r === undefined) {
    out.push(errorEffect("deleteResource", ErrorCode.UNKNOWN_RESOURCE, `unknown resource "${name}"`));
    return;
  }
  for (const w of waitersByArrival(r)) endWaiter(m, w, "rejected", ErrorCode.UNKNOWN_RESOURCE, `resource "${name}" was deleted`, out);
  for (const lease of [...r.leases.values()]) {
    dropLease(m, lease);
    finish(m, sessionOf(m, lease.session), lease.record, null);
    out.push({ type: "released", sessionId: lease.session.id, leaseId: lease.id, reason: "resourceDeleted" });
  }
  m.resources.delete(name);
  m.dirty.delete(r);
  pruneTombstones(m, m.now);
  r.history.expire(m.now);
  if (r.history.size > 0) m.tombstones.set(name, r.history);
  out.push({ type: "resourceDeleted", name });
}

/** The admin-API form of a normalized config; validating it gives the same config back. */
export function configToInput(config: ResourceConfig): unknown {
  const lanes: Record<string, { weight: number }> = {};
  for (const lane of config.lanes) lanes[lane.name] = { weight: lane.weight };
  return {
    limits: config.limits,
    lanes,
    lanePolicy: config.lanePolicy,
    ...(config.defaultLane === null ? {} : { defaultLane: config.defaultLane }),
  };
}
