/**
 * Admission and lanes: whether a request fits a resource's stacked limits
 * now (and when it will), granting (charging every limit and creating the
 * lease), and the waiting lines: one per lane, served in order of priority
 * then arrival, lanes shared by weighted-fair virtual time or capped at
 * their strict shares.
 *
 * Only heads are looked at: a waiter never overtakes one ahead of it in its
 * lane. A resource whose line may have moved (a release, a cancel, a new
 * config, a wake-up) is marked dirty and pumped before the command returns.
 */
import { answer, finish, sessionOf, type Session } from "./exactly-once.js";
import { amountFor, type LaneRuntime, type Lease, type LimitRuntime, type RequestRecord, type Resource, type Waiter } from "./resource.js";
import { errorEffect, unknownSession, type MachineState } from "./state.js";
import { ErrorCode, type Command, type Effect, type Load, type LoadVector } from "./types.js";
import { DEFAULT_PRIORITY } from "./validate.js";
import type { Window } from "./windows/window.js";

export type Ending = Extract<Effect, { type: "rejected" | "timedOut" | "cancelled" }>;

export function acquire(m: MachineState, cmd: Extract<Command, { type: "acquire" }>, at: number, out: Effect[]): void {
  const { sessionId, requestId, resource: name } = cmd;
  const s = m.sessions.get(sessionId);
  if (s === undefined) {
    out.push({ type: "rejected", sessionId, requestId, resource: name, code: ErrorCode.UNKNOWN_SESSION, message: `session "${sessionId}" is not open (closed or expired)` });
    return;
  }
  const existing = s.requests.get(requestId);
  if (existing !== undefined) {
    out.push(answer(existing)); // exactly once: a retry gets the original outcome and changes nothing
    return;
  }
  const r = m.resources.get(name);
  if (r === undefined) return reject(m, s, cmd, ErrorCode.UNKNOWN_RESOURCE, `unknown resource "${name}"`, out);
  const load = toLoadVector(cmd.load);
  const laneRequested = cmd.lane ?? null;
  const laneIdx = laneIndex(r, laneRequested);
  if (laneIdx < 0) return reject(m, s, cmd, ErrorCode.UNKNOWN_RESOURCE, laneProblem(r, laneRequested as string), out);
  const dimProblem = dimensionProblem(r, load, "acquire");
  if (dimProblem !== null) return reject(m, s, cmd, ErrorCode.INVALID, dimProblem, out);
  const never = ungrantable(r, laneIdx, load);
  if (never !== null) return reject(m, s, cmd, ErrorCode.UNGRANTABLE, never, out);

  // Fast path: nobody waits, so nobody can be overtaken. No waiter is built.
  if (r.waiting === 0 && fits(r, laneIdx, load, at)) {
    const granted: RequestRecord = { requestId, state: "waiting", waiter: null, lease: null, outcome: null };
    s.requests.set(requestId, granted);
    grant(m, r, granted, s, laneIdx, load, at, out);
    return;
  }
  const timeoutMs = cmd.timeoutMs;
  const record: RequestRecord = { requestId, state: "waiting", waiter: null, lease: null, outcome: null };
  const w: Waiter = {
    record,
    alive: true,
    seq: ++m.arrivalSeq,
    session: s,
    requestId,
    laneRequested,
    laneIdx,
    priority: cmd.priority ?? DEFAULT_PRIORITY,
    load,
    enqueuedAt: at,
    deadline: timeoutMs === undefined ? Infinity : at + timeoutMs,
    resource: r,
  };
  record.waiter = w;
  s.requests.set(requestId, record);
  enqueue(r, w);
  if (w.deadline !== Infinity) {
    m.timeouts.push(w.deadline, w.seq, w);
    m.liveTimeouts++;
    // Granted and cancelled waiters leave stale entries; purge them before they dominate.
    if (m.timeouts.size > 2 * m.liveTimeouts + 1024) m.timeouts.filter((x) => x.alive);
  }
  pump(m, r, at, out);
  if (!w.alive) return; // granted in line
  if (timeoutMs === 0) {
    // tryAcquire: granted now in line, or never.
    endWaiter(m, w, "timedOut", ErrorCode.TIMEOUT, "no capacity now (timeoutMs: 0)", out);
    pump(m, r, at, out);
    return;
  }
  out.push(answer(record));
}

function reject(m: MachineState, s: Session, cmd: Extract<Command, { type: "acquire" }>, code: ErrorCode, message: string, out: Effect[]): void {
  const outcome: Effect = { type: "rejected", sessionId: s.id, requestId: cmd.requestId, resource: cmd.resource, code, message };
  const record: RequestRecord = { requestId: cmd.requestId, state: "done", waiter: null, lease: null, outcome };
  s.requests.set(cmd.requestId, record);
  finish(m, s, record, null);
  out.push(outcome);
}

export function cancel(m: MachineState, sessionId: string, requestId: string, out: Effect[]): void {
  const s = m.sessions.get(sessionId);
  if (s === undefined) {
    out.push(unknownSession("cancel", sessionId));
    return;
  }
  const record = s.requests.get(requestId);
  if (record === undefined) {
    out.push(errorEffect("cancel", ErrorCode.INVALID, `no request "${requestId}" in session "${sessionId}"`));
    return;
  }
  if (record.state === "waiting" && record.waiter) {
    endWaiter(m, record.waiter, "cancelled", ErrorCode.CANCELLED, "cancelled by the client", out);
    return;
  }
  out.push(answer(record)); // too late to cancel: the original outcome stands
}

export function enqueue(r: Resource, w: Waiter): void {
  const lane = r.lanes[w.laneIdx] as LaneRuntime;
  // A lane that becomes busy starts at the current virtual time: idle time earns no credit.
  if (lane.queue.live === 0) lane.vt = Math.max(lane.vt, r.vtFloor);
  lane.queue.push(w);
  r.waiting++;
}

/** Marks a waiter dead (it leaves its lane lazily). */
export function killWaiter(m: MachineState, w: Waiter): void {
  if (!w.alive) throw new Error("invariant: killing a dead waiter");
  w.alive = false;
  const r = w.resource;
  const lane = r.lanes[w.laneIdx] as LaneRuntime;
  lane.queue.dropped();
  r.waiting--;
  if (w.deadline !== Infinity) m.liveTimeouts--;
  // The waiter may have been a blocked head; the ones behind it may fit.
  m.dirty.add(r);
}

export function endWaiter(m: MachineState, w: Waiter, type: Ending["type"], code: ErrorCode, message: string, out: Effect[]): void {
  killWaiter(m, w);
  const s = sessionOf(m, w.session);
  const outcome: Effect = { type, sessionId: s.id, requestId: w.requestId, resource: w.resource.name, code, message };
  finish(m, s, w.record, outcome);
  out.push(outcome);
}

/** Whether a request of lane `l` with this load fits every limit of `r` now. */
function fits(r: Resource, l: number, load: LoadVector, at: number): boolean {
  if (at < r.cooldownUntil) return false;
  const limits = r.limits;
  for (let i = 0; i < limits.length; i++) {
    const lim = limits[i] as LimitRuntime;
    const cap = lim.capByLane[l] as number;
    if (lim.window === null) {
      if (lim.held + 1 > cap) return false;
      if (lim.laneHeld !== null && (lim.laneHeld[l] as number) + 1 > (lim.laneShare as number[])[l]!) return false;
    } else {
      const amount = amountFor(lim.config, load);
      if (!lim.window.fits(at, amount, cap)) return false;
      if (lim.laneWindows !== null && !(lim.laneWindows[l] as Window).fits(at, amount, (lim.laneShare as number[])[l]!)) return false;
    }
  }
  return true;
}

/** The earliest time the waiter fits if nothing else changes; Infinity when only a release can help. */
function fitAt(r: Resource, l: number, load: LoadVector, at: number): number {
  let t = Math.max(at, r.cooldownUntil);
  for (let i = 0; i < r.limits.length; i++) {
    const lim = r.limits[i] as LimitRuntime;
    const cap = lim.capByLane[l] as number;
    if (lim.window === null) {
      if (lim.held + 1 > cap) return Infinity;
      if (lim.laneHeld !== null && (lim.laneHeld[l] as number) + 1 > (lim.laneShare as number[])[l]!) return Infinity;
    } else {
      const amount = amountFor(lim.config, load);
      t = Math.max(t, lim.window.fitAt(at, amount, cap));
      if (lim.laneWindows !== null) t = Math.max(t, (lim.laneWindows[l] as Window).fitAt(at, amount, (lim.laneShare as number[])[l]!));
    }
  }
  return t;
}

/** Charges every limit and creates the lease. The caller checked {@link fits}. */
function grant(m: MachineState, r: Resource, record: RequestRecord, session: Session, l: number, load: LoadVector, at: number, out: Effect[]): void {
  const id = ++m.grantSeq;
  for (let i = 0; i < r.limits.length; i++) {
    const lim = r.limits[i] as LimitRuntime;
    if (lim.window === null) {
      lim.held++;
      if (lim.laneHeld !== null) lim.laneHeld[l]!++;
    } else {
      const amount = amountFor(lim.config, load);
      lim.window.charge(at, amount, id);
      if (lim.laneWindows !== null) (lim.laneWindows[l] as Window).charge(at, amount, id);
    }
  }
  r.history.expire(at);
  r.history.push(at, 1, load);
  const requestId = record.requestId;
  const lease: Lease = {
    record,
    id,
    session,
    requestId,
    laneName: r.implicitLane ? null : (r.lanes[l] as LaneRuntime).name,
    laneIdx: l,
    load,
    grantedAt: at,
    resource: r,
  };
  r.leases.set(id, lease);
  m.leases.set(id, lease);
  record.state = "granted";
  record.waiter = null;
  record.lease = lease;
  record.outcome = { type: "granted", sessionId: session.id, requestId, resource: r.name, leaseId: id, load, grantedAt: at };
  out.push(record.outcome);
}

/** Pumps every resource marked dirty that still exists. */
export function pumpDirty(m: MachineState, at: number, out: Effect[]): void {
  for (const r of m.dirty) {
    m.dirty.delete(r);
    if (m.resources.get(r.name) === r) pump(m, r, at, out);
  }
}

/** Grants waiting heads while they fit, then schedules the next wake-up. Looks at heads only. */
function pump(m: MachineState, r: Resource, at: number, out: Effect[]): void {
  m.dirty.delete(r);
  let wakeAt: number | null = null;
  if (r.waiting > 0) {
    if (at < r.cooldownUntil) wakeAt = r.cooldownUntil;
    else wakeAt = r.lanes.length === 1 || r.strict ? pumpEach(m, r, at, out) : pumpShared(m, r, at, out);
  }
  if (wakeAt !== null && wakeAt <= at) throw new Error("invariant: a grantable head was left waiting");
  if (wakeAt !== r.wakeAt) {
    r.wakeAt = wakeAt;
    if (wakeAt !== null) m.wakes.push(wakeAt, r.seq, r);
    // A wake-up that moved leaves a stale entry; purge them before they outnumber the resources.
    if (m.wakes.size > 2 * m.resources.size + 1024) m.wakes.filter((x, key) => m.resources.get(x.name) === x && x.wakeAt === key);
  }
}

/** One lane, or strict lanes (each capped at its own share, so independent): serve each lane's line in order. */
function pumpEach(m: MachineState, r: Resource, at: number, out: Effect[]): number | null {
  let wakeAt = Infinity;
  for (const lane of r.lanes) {
    for (let head = lane.queue.head(); head !== undefined; head = lane.queue.head()) {
      if (!fits(r, head.laneIdx, head.load, at)) {
        wakeAt = Math.min(wakeAt, fitAt(r, head.laneIdx, head.load, at));
        break;
      }
      take(m, r, lane, head, at, out);
    }
  }
  return wakeAt === Infinity ? null : wakeAt;
}

/**
 * Shared lanes, weighted fair and work-conserving: the lane with the lowest
 * virtual time goes first. If its head does not fit, other lanes may use
 * the idle capacity, but only until they are ahead of it by more than the
 * larger of the two requests; then they wait too, so capacity builds up for
 * the blocked head and it cannot starve.
 */
function pumpShared(m: MachineState, r: Resource, at: number, out: Effect[]): number | null {
  for (;;) {
    const busy = r.lanes.filter((lane) => lane.queue.head() !== undefined);
    busy.sort((a, b) => a.vt - b.vt || r.lanes.indexOf(a) - r.lanes.indexOf(b));
    let turn: LaneRuntime | null = null;
    let turnCost = 0;
    let chosen: LaneRuntime | null = null;
    let chosenCost = 0;
    let wakeAt = Infinity;
    for (const lane of busy) {
      const head = lane.queue.head() as Waiter;
      const cost = shareCost(r, head.load) / lane.weight;
      // Held back for fairness: ahead of the blocked lane by more than the larger of the two requests.
      if (turn !== null && lane.vt + cost > turn.vt + Math.max(turnCost, cost)) continue;
      if (fits(r, head.laneIdx, head.load, at)) {
        [chosen, chosenCost] = [lane, cost];
        break;
      }
      wakeAt = Math.min(wakeAt, fitAt(r, head.laneIdx, head.load, at));
      if (turn === null) [turn, turnCost] = [lane, cost];
    }
    if (chosen === null) return wakeAt === Infinity ? null : wakeAt;
    r.vtFloor = Math.max(r.vtFloor, chosen.vt);
    take(m, r, chosen, chosen.queue.head() as Waiter, at, out);
    chosen.vt += chosenCost;
  }
}

function take(m: MachineState, r: Resource, lane: LaneRuntime, head: Waiter, at: number, out: Effect[]): void {
  lane.queue.shift(head);
  head.alive = false;
  r.waiting--;
  if (head.deadline !== Infinity) m.liveTimeouts--;
  grant(m, r, head.record, sessionOf(m, head.session), head.laneIdx, head.load, at, out);
}

/** A validated load as a vector (a copy: the caller's object may change later). */
export function toLoadVector(load: Load | undefined): LoadVector {
  if (load === undefined) return {};
  if (typeof load === "number") return { load };
  const out: Record<string, number> = {};
  for (const k in load) out[k] = load[k] as number;
  return out;
}

/** The lane index for a request, or -1 when the lane does not exist. */
export function laneIndex(r: Resource, lane: string | null): number {
  if (lane === null) return r.defaultLaneIdx;
  if (r.implicitLane) return -1;
  return r.lanes.findIndex((l) => l.name === lane);
}

/** The lane a lease counts against after config changes: -1 when its lane no longer exists. */
export function leaseLaneIndex(r: Resource, laneName: string | null): number {
  if (r.implicitLane) return laneName === null ? 0 : -1;
  return laneName === null ? -1 : r.lanes.findIndex((l) => l.name === laneName);
}

export function laneProblem(r: Resource, lane: string): string {
  return r.implicitLane
    ? `resource "${r.name}" has no lanes, but the request names lane "${lane}"`
    : `unknown lane "${lane}" on resource "${r.name}" (lanes: ${r.lanes.map((l) => l.name).join(", ")})`;
}

/**
 * Why a load does not fit the resource's dimensions, or null. Refused: a
 * dimension no limit counts (a typo), except the default "load"; and, for an
 * acquire, a dimension some limit counts that the load does not name (a
 * plain number names only "load", no load names none), which would be
 * charged nothing there. A settle must name at least one counted dimension
 * (it merges into the lease's load, which names them all).
 */
export function dimensionProblem(r: Resource, load: LoadVector, use: "acquire" | "settle"): string | null {
  for (const key in load) {
    if (key !== "load" && !r.dimensions.has(key)) {
      return `load dimension "${key}" is not limited by resource "${r.name}" (dimensions: ${[...r.dimensions].join(", ") || "none"})`;
    }
  }
  if (r.dimensions.size === 0) return null;
  const named = [...r.dimensions].filter((d) => Object.hasOwn(load, d));
  if (use === "acquire" ? named.length === r.dimensions.size : named.length > 0) return null;
  const expected = [...r.dimensions].map((d) => `"${d}"`).join(", ");
  const got = Object.keys(load).length === 0 ? "no load" : Object.keys(load).join(", ") === "load" ? "a plain number" : `{ ${Object.keys(load).join(", ")} }`;
  return use === "acquire"
    ? `resource "${r.name}" limits load dimensions ${expected}: the acquire's load must name each of them (0 allowed), got ${got}`
    : `resource "${r.name}" limits load dimensions ${expected}: the settle's actual must name at least one of them, got ${got}`;
}

/**
 * What a grant costs its lane in virtual time (before dividing by the lane's
 * weight): its dominant share, the largest fraction of any limit it takes
 * (1 / limit of a rate or concurrency limit, load / limit of a load limit).
 * So weighted sharing follows the limit being shared: under a token limit a
 * lane of 1,000-token requests advances ten times as fast as a lane of
 * 100-token ones, and both get tokens in proportion to weight.
 */
function shareCost(r: Resource, load: LoadVector): number {
  let cost = 0;
  for (const lim of r.limits) cost = Math.max(cost, amountFor(lim.config, load) / lim.config.limit);
  return cost;
}

/** Why a request can never be granted (its cost exceeds what its lane may ever use), or null. */
export function ungrantable(r: Resource, laneIdx: number, load: LoadVector): string | null {
  for (let i = 0; i < r.limits.length; i++) {
    const lim = r.limits[i] as LimitRuntime;
    const amount = amountFor(lim.config, load);
    const laneCap = lim.capByLane[laneIdx] as number;
    const share = lim.laneShare?.[laneIdx] ?? Infinity;
    // A bucket holds back what refills during the delivery margin.
    const cap =
      lim.window === null
        ? Math.min(laneCap, share)
        : Math.min(lim.window.capacity(laneCap), lim.laneWindows === null ? Infinity : (lim.laneWindows[laneIdx] as Window).capacity(share));
    if (amount > cap) {
      const c = lim.config;
      const what = c.kind === "concurrency" ? "concurrency" : c.kind === "rate" ? `rate per ${c.windowMs} ms` : `load "${c.dimension}" per ${c.windowMs} ms`;
      const held = lim.window !== null && c.kind !== "concurrency" && c.window === "bucket" && c.deliveryMarginMs > 0;
      const of = held
        ? ` (limit ${c.limit} less what refills in its ${c.deliveryMarginMs} ms delivery margin${Math.min(laneCap, share) < c.limit ? ", of the lane's share" : ""})`
        : cap < c.limit
          ? ` (limit ${c.limit}, of which this lane may use ${cap})`
          : "";
      return `needs ${amount} but limit #${i} (${what}) has capacity ${cap}${of}`;
    }
  }
  return null;
}
