/**
 * The limiter state machine. Pure: no clock, no randomness, no I/O. Every
 * command carries the leader's timestamp `at`; `apply` returns the effects the
 * caller must deliver. Two machines that apply the same commands produce the
 * same effects and the same snapshot bytes.
 *
 * Time-driven events (timeouts, session expiries, a waiting head that fits
 * once a window slides or a bucket refills, a cooldown's end) are applied at
 * their own time, in time order, before the command that moves time past
 * them. So the outcome never depends on how often the node ticks: ticks only
 * make those events visible sooner.
 */
import { Reader, SnapshotError, Writer } from "./codec.js";
import { LaneQueue } from "./lane-queue.js";
import { History, HISTORY_ENTRIES_DEFAULT } from "./history.js";
import { MinHeap } from "./min-heap.js";
import {
  IMPLICIT_LANE,
  amountFor,
  capsByLane,
  limitKey,
  newWindow,
  replayedWindow,
  shareOf,
  type LaneRuntime,
  type Lease,
  type LimitRuntime,
  type RequestRecord,
  type Resource,
  type Waiter,
} from "./resource.js";
import {
  ErrorCode,
  type Command,
  type Effect,
  type LimitConfig,
  type Load,
  type LoadVector,
  type ResourceConfig,
  type ResourceView,
} from "./types.js";
import { Bounds, DEFAULT_PRIORITY, DEFAULT_TTL_MS, commandProblem, validateResourceConfig } from "./validate.js";
import { BucketWindow } from "./windows/bucket.js";
import { FixedWindow } from "./windows/fixed.js";
import { SlidingWindow } from "./windows/sliding.js";
import type { Window } from "./windows/window.js";

export interface LimiterOptions {
  /**
   * Finished requests remembered per session for exactly-once answers to
   * retries (live waiters and leases are always remembered). Default 64.
   */
  readonly finishedPerSession?: number;
  /**
   * Most entries each resource's usage history keeps (see history.ts): past
   * it, older charges are merged, which only ever over-counts. Default 2048.
   */
  readonly historyEntries?: number;
}

interface Session {
  readonly id: string;
  readonly seq: number;
  ttlMs: number;
  expiresAt: number;
  readonly requests: Map<string, RequestRecord>;
  /** Finished request ids: a ring of `finishedPerSession` slots, oldest at `finishedStart`. */
  readonly finished: string[];
  finishedStart: number;
  finishedCount: number;
}

type Ending = Extract<Effect, { type: "rejected" | "timedOut" | "cancelled" }>;


const MAGIC = "RQL2";

/**
 * @example
 * const limiter = new Limiter();
 * limiter.apply({ type: "putResource", at: 0, name: "gpt", config: { limits: [{ kind: "rate", limit: 2, windowMs: 1000 }] } });
 * limiter.apply({ type: "openSession", at: 0, sessionId: "s1" });
 * limiter.apply({ type: "acquire", at: 5, sessionId: "s1", requestId: "r1", resource: "gpt" }); // [{ type: "granted", ... }]
 */
export class Limiter {
  private now = 0;
  private grantSeq = 0;
  private arrivalSeq = 0;
  private sessionSeq = 0;
  private resourceSeq = 0;
  private readonly finishedPerSession: number;
  private readonly historyEntries: number;
  private readonly resources = new Map<string, Resource>();
  /** The usage history of deleted resources, until it ages out: a re-created resource counts it. */
  private readonly tombstones = new Map<string, History>();
  private readonly sessions = new Map<string, Session>();
  private readonly leases = new Map<number, Lease>();
  // Lazy-deletion heaps; entries are checked against live state when they surface.
  private readonly timeouts = new MinHeap<Waiter>();
  private readonly expiries = new MinHeap<Session>();
  private readonly wakes = new MinHeap<Resource>();
  private liveTimeouts = 0;
  /** Resources whose waiters may be grantable after the current step. */
  private readonly dirty = new Set<Resource>();

  constructor(options: LimiterOptions = {}) {
    const n = options.finishedPerSession ?? 64;
    if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new RangeError("finishedPerSession must be an integer 0..100000");
    this.finishedPerSession = n;
    const h = options.historyEntries ?? HISTORY_ENTRIES_DEFAULT;
    if (!Number.isInteger(h) || h < 4 || h > 1_000_000) throw new RangeError("historyEntries must be an integer 4..1000000");
    this.historyEntries = h;
  }

  // ---------------------------------------------------------------- queries

  /** The log time of the latest command (stamps are clamped to never go back). */
  get lastAt(): number {
    return this.now;
  }

  resourceNames(): string[] {
    return [...this.resources.keys()];
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  /** When a live session expires (a stamp in ms) if nothing renews it, or null if there is no such session. */
  sessionExpiresAt(sessionId: string): number | null {
    return this.sessions.get(sessionId)?.expiresAt ?? null;
  }

  /** One resource's config and live state as of `at` (default: the last stamp), or null. */
  resource(name: string, at: number = this.now): ResourceView | null {
    const r = this.resources.get(name);
    if (r === undefined) return null;
    const t = Math.max(at, this.now);
    const queued: Record<string, number> = {};
    for (const lane of r.lanes) queued[lane.name] = lane.queue.live;
    return {
      name: r.name,
      config: r.config,
      usage: r.limits.map((lim) => ({ config: lim.config, used: lim.window ? lim.window.usedAt(t) : lim.held })),
      leasesHeld: r.leases.size,
      queued,
      cooldownUntil: r.cooldownUntil > t ? r.cooldownUntil : null,
    };
  }

  /**
   * Why an acquire of `load` on `resource` would be refused for its load
   * dimensions by the config in force now (see the README, "Load
   * dimensions"), or null (also for an unknown resource: the acquire
   * answers that). The node asks before proposing, so such a request never
   * reaches the log; the acquire itself checks again. `load` must already
   * be valid (commandProblem).
   */
  acquireLoadProblem(resource: string, load: Load | undefined): string | null {
    const r = this.resources.get(resource);
    return r === undefined ? null : dimensionProblem(r, toLoadVector(load), "acquire");
  }

  /** As {@link acquireLoadProblem}, for a settle's `actual` on a lease (null for a lease not held: the settle answers that). */
  settleLoadProblem(leaseId: number, actual: Load): string | null {
    const lease = this.leases.get(leaseId);
    return lease === undefined ? null : dimensionProblem(lease.resource, toLoadVector(actual), "settle");
  }

  /**
   * The earliest log time at which time alone changes something (a timeout,
   * a session expiry, a waiter that becomes grantable, a cooldown's end), or
   * null. The node proposes a `tick` at that time.
   */
  nextDeadline(): number | null {
    this.dropStaleTops();
    const t = Math.min(this.timeouts.peekKey() ?? Infinity, this.expiries.peekKey() ?? Infinity, this.wakes.peekKey() ?? Infinity);
    return t === Infinity ? null : t;
  }

  // ---------------------------------------------------------------- apply

  /** Applies one command. A malformed command gets an `error` effect and changes nothing. */
  apply(command: Command): Effect[] {
    const problem = commandProblem(command);
    if (problem !== null) {
      const type = (command as { type?: unknown } | null)?.type;
      return [errorEffect(typeof type === "string" ? type : "unknown", ErrorCode.INVALID, problem)];
    }
    const at = Math.max(command.at, this.now);
    const out: Effect[] = [];
    // A new leader renews sessions before its stamp can expire them (SPEC: a leader change never expires a live session).
    if (command.type === "renewSessions") this.renewSessions(at);
    this.advance(at, out);
    switch (command.type) {
      case "putResource":
        this.putResource(command.name, command.config, at, out);
        break;
      case "deleteResource":
        this.deleteResource(command.name, out);
        break;
      case "openSession":
        this.openSession(command.sessionId, command.ttlMs ?? DEFAULT_TTL_MS, at, out);
        break;
      case "heartbeat":
        this.heartbeat(command.sessionId, at, out);
        break;
      case "closeSession": {
        const s = this.sessions.get(command.sessionId);
        if (s === undefined) out.push(unknownSession("closeSession", command.sessionId));
        else this.endSession(s, "closed", out);
        break;
      }
      case "renewSessions":
        out.push({ type: "sessionsRenewed", count: this.sessions.size });
        break;
      case "acquire":
        this.acquire(command, at, out);
        break;
      case "release":
        this.release(command.sessionId, command.leaseId, out);
        break;
      case "settle":
        this.settle(command.sessionId, command.leaseId, command.actual, at, out);
        break;
      case "cancel":
        this.cancel(command.sessionId, command.requestId, out);
        break;
      case "cooldown":
        this.cooldown(command, at, out);
        break;
      case "tick":
        break;
    }
    this.pumpDirty(at, out);
    return out;
  }

  // ---------------------------------------------------------------- time

  private dropStaleTops(): void {
    for (let w = this.timeouts.peek(); w !== undefined && !w.alive; w = this.timeouts.peek()) this.timeouts.pop();
    for (let s = this.expiries.peek(); s !== undefined; s = this.expiries.peek()) {
      if (this.sessions.get(s.id) === s && this.expiries.peekKey() === s.expiresAt) break;
      this.expiries.pop();
    }
    for (let r = this.wakes.peek(); r !== undefined; r = this.wakes.peek()) {
      if (this.resources.get(r.name) === r && this.wakes.peekKey() === r.wakeAt) break;
      this.wakes.pop();
    }
  }

  /** Applies every time-driven event due at or before `target`, each at its own time. */
  private advance(target: number, out: Effect[]): void {
    for (;;) {
      const t = this.nextDeadline();
      if (t === null || t > target) break;
      this.now = Math.max(this.now, t);
      const now = this.now;
      // Order within one ms: timeouts, then expiries, then grants. A waiter whose deadline is t is never granted at t.
      while ((this.timeouts.peekKey() ?? Infinity) <= now) {
        const w = this.timeouts.pop() as Waiter;
        if (w.alive) this.endWaiter(w, "timedOut", ErrorCode.TIMEOUT, `no capacity within the timeout (waited ${now - w.enqueuedAt} ms)`, out);
      }
      while ((this.expiries.peekKey() ?? Infinity) <= now) {
        const key = this.expiries.peekKey();
        const s = this.expiries.pop() as Session;
        if (this.sessions.get(s.id) === s && s.expiresAt === key) this.endSession(s, "expired", out);
      }
      while ((this.wakes.peekKey() ?? Infinity) <= now) {
        const key = this.wakes.peekKey();
        const r = this.wakes.pop() as Resource;
        if (this.resources.get(r.name) === r && r.wakeAt === key) this.dirty.add(r);
      }
      this.pumpDirty(now, out);
    }
    this.now = target;
  }

  // ---------------------------------------------------------------- sessions

  private openSession(sessionId: string, ttlMs: number, at: number, out: Effect[]): void {
    let s = this.sessions.get(sessionId);
    if (s === undefined) {
      s = { id: sessionId, seq: ++this.sessionSeq, ttlMs, expiresAt: 0, requests: new Map(), finished: [], finishedStart: 0, finishedCount: 0 };
      this.sessions.set(sessionId, s);
    }
    s.ttlMs = ttlMs;
    this.touch(s, at);
    out.push({ type: "session", sessionId, expiresAt: s.expiresAt });
  }

  private heartbeat(sessionId: string, at: number, out: Effect[]): void {
    const s = this.sessions.get(sessionId);
    if (s === undefined) {
      out.push(unknownSession("heartbeat", sessionId));
      return;
    }
    this.touch(s, at);
    out.push({ type: "session", sessionId, expiresAt: s.expiresAt });
  }

  private touch(s: Session, at: number): void {
    s.expiresAt = at + s.ttlMs;
    this.expiries.push(s.expiresAt, s.seq, s);
    // Each heartbeat leaves a stale entry; purge them before they outnumber the sessions.
    if (this.expiries.size > 2 * this.sessions.size + 1024) {
      this.expiries.filter((x, key) => this.sessions.get(x.id) === x && x.expiresAt === key);
    }
  }

  private renewSessions(at: number): void {
    for (const s of this.sessions.values()) s.expiresAt = at + s.ttlMs;
    this.expiries.filter(() => false);
    for (const s of this.sessions.values()) this.expiries.push(s.expiresAt, s.seq, s);
  }

  private endSession(s: Session, reason: "closed" | "expired", out: Effect[]): void {
    const releasedLeases: number[] = [];
    const droppedRequests: string[] = [];
    for (const record of s.requests.values()) {
      if (record.state === "waiting" && record.waiter) {
        this.killWaiter(record.waiter);
        droppedRequests.push(record.requestId);
      } else if (record.state === "granted" && record.lease) {
        this.dropLease(record.lease);
        releasedLeases.push(record.lease.id);
      }
    }
    this.sessions.delete(s.id);
    out.push({ type: "sessionEnded", sessionId: s.id, reason, releasedLeases, droppedRequests });
  }

  private finish(s: Session, record: RequestRecord, outcome: Effect | null): void {
    record.state = "done";
    record.waiter = null;
    record.lease = null;
    if (outcome !== null) record.outcome = outcome;
    const n = this.finishedPerSession;
    if (n === 0) {
      s.requests.delete(record.requestId);
    } else if (s.finishedCount < n) {
      s.finished[(s.finishedStart + s.finishedCount++) % n] = record.requestId;
    } else {
      // Full: forget the oldest finished request and reuse its slot.
      s.requests.delete(s.finished[s.finishedStart] as string);
      s.finished[s.finishedStart] = record.requestId;
      s.finishedStart = (s.finishedStart + 1) % n;
    }
  }

  private sessionOf(ref: { id: string }): Session {
    const s = this.sessions.get(ref.id);
    if (s === undefined) throw new Error(`invariant: live request of unknown session ${ref.id}`);
    return s;
  }

  // ---------------------------------------------------------------- acquire

  private acquire(cmd: Extract<Command, { type: "acquire" }>, at: number, out: Effect[]): void {
    const { sessionId, requestId, resource: name } = cmd;
    const s = this.sessions.get(sessionId);
    if (s === undefined) {
      out.push({ type: "rejected", sessionId, requestId, resource: name, code: ErrorCode.UNKNOWN_SESSION, message: `session "${sessionId}" is not open (closed or expired)` });
      return;
    }
    const existing = s.requests.get(requestId);
    if (existing !== undefined) {
      out.push(answer(existing)); // exactly once: a retry gets the original outcome and changes nothing
      return;
    }
    const r = this.resources.get(name);
    if (r === undefined) return this.reject(s, cmd, ErrorCode.UNKNOWN_RESOURCE, `unknown resource "${name}"`, out);
    const load = toLoadVector(cmd.load);
    const laneRequested = cmd.lane ?? null;
    const laneIdx = laneIndex(r, laneRequested);
    if (laneIdx < 0) return this.reject(s, cmd, ErrorCode.UNKNOWN_RESOURCE, laneProblem(r, laneRequested as string), out);
    const dimProblem = dimensionProblem(r, load, "acquire");
    if (dimProblem !== null) return this.reject(s, cmd, ErrorCode.INVALID, dimProblem, out);
    const never = ungrantable(r, laneIdx, load);
    if (never !== null) return this.reject(s, cmd, ErrorCode.UNGRANTABLE, never, out);

    // Fast path: nobody waits, so nobody can be overtaken. No waiter is built.
    if (r.waiting === 0 && this.fits(r, laneIdx, load, at)) {
      const granted: RequestRecord = { requestId, state: "waiting", waiter: null, lease: null, outcome: null };
      s.requests.set(requestId, granted);
      this.grant(r, granted, s, laneIdx, load, at, out);
      return;
    }
    const timeoutMs = cmd.timeoutMs;
    const record: RequestRecord = { requestId, state: "waiting", waiter: null, lease: null, outcome: null };
    const w: Waiter = {
      record,
      alive: true,
      seq: ++this.arrivalSeq,
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
    this.enqueue(r, w);
    if (w.deadline !== Infinity) {
      this.timeouts.push(w.deadline, w.seq, w);
      this.liveTimeouts++;
      // Granted and cancelled waiters leave stale entries; purge them before they dominate.
      if (this.timeouts.size > 2 * this.liveTimeouts + 1024) this.timeouts.filter((x) => x.alive);
    }
    this.pump(r, at, out);
    if (!w.alive) return; // granted in line
    if (timeoutMs === 0) {
      // tryAcquire: granted now in line, or never.
      this.endWaiter(w, "timedOut", ErrorCode.TIMEOUT, "no capacity now (timeoutMs: 0)", out);
      this.pump(r, at, out);
      return;
    }
    out.push(answer(record));
  }

  private reject(s: Session, cmd: Extract<Command, { type: "acquire" }>, code: ErrorCode, message: string, out: Effect[]): void {
    const outcome: Effect = { type: "rejected", sessionId: s.id, requestId: cmd.requestId, resource: cmd.resource, code, message };
    const record: RequestRecord = { requestId: cmd.requestId, state: "done", waiter: null, lease: null, outcome };
    s.requests.set(cmd.requestId, record);
    this.finish(s, record, null);
    out.push(outcome);
  }

  private enqueue(r: Resource, w: Waiter): void {
    const lane = r.lanes[w.laneIdx] as LaneRuntime;
    // A lane that becomes busy starts at the current virtual time: idle time earns no credit.
    if (lane.queue.live === 0) lane.vt = Math.max(lane.vt, r.vtFloor);
    lane.queue.push(w);
    r.waiting++;
  }

  /** Marks a waiter dead (it leaves its lane lazily). */
  private killWaiter(w: Waiter): void {
    if (!w.alive) throw new Error("invariant: killing a dead waiter");
    w.alive = false;
    const r = w.resource;
    const lane = r.lanes[w.laneIdx] as LaneRuntime;
    lane.queue.dropped();
    r.waiting--;
    if (w.deadline !== Infinity) this.liveTimeouts--;
    // The waiter may have been a blocked head; the ones behind it may fit.
    this.dirty.add(r);
  }

  private endWaiter(w: Waiter, type: Ending["type"], code: ErrorCode, message: string, out: Effect[]): void {
    this.killWaiter(w);
    const s = this.sessionOf(w.session);
    const record = w.record;
    const outcome: Effect = { type, sessionId: s.id, requestId: w.requestId, resource: w.resource.name, code, message };
    this.finish(s, record, outcome);
    out.push(outcome);
  }

  private cancel(sessionId: string, requestId: string, out: Effect[]): void {
    const s = this.sessions.get(sessionId);
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
      this.endWaiter(record.waiter, "cancelled", ErrorCode.CANCELLED, "cancelled by the client", out);
      return;
    }
    out.push(answer(record)); // too late to cancel: the original outcome stands
  }

  // ---------------------------------------------------------------- admission

  /** Whether a request of lane `l` with this load fits every limit of `r` now. */
  private fits(r: Resource, l: number, load: LoadVector, at: number): boolean {
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
  private fitAt(r: Resource, l: number, load: LoadVector, at: number): number {
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
  private grant(r: Resource, record: RequestRecord, session: Session, l: number, load: LoadVector, at: number, out: Effect[]): void {
    const id = ++this.grantSeq;
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
    this.leases.set(id, lease);
    record.state = "granted";
    record.waiter = null;
    record.lease = lease;
    record.outcome = { type: "granted", sessionId: session.id, requestId, resource: r.name, leaseId: id, load, grantedAt: at };
    out.push(record.outcome);
  }

  private pumpDirty(at: number, out: Effect[]): void {
    for (const r of this.dirty) {
      this.dirty.delete(r);
      if (this.resources.get(r.name) === r) this.pump(r, at, out);
    }
  }

  /** Grants waiting heads while they fit, then schedules the next wake-up. Looks at heads only. */
  private pump(r: Resource, at: number, out: Effect[]): void {
    this.dirty.delete(r);
    let wakeAt: number | null = null;
    if (r.waiting > 0) {
      if (at < r.cooldownUntil) wakeAt = r.cooldownUntil;
      else wakeAt = r.lanes.length === 1 || r.strict ? this.pumpEach(r, at, out) : this.pumpShared(r, at, out);
    }
    if (wakeAt !== null && wakeAt <= at) throw new Error("invariant: a grantable head was left waiting");
    if (wakeAt !== r.wakeAt) {
      r.wakeAt = wakeAt;
      if (wakeAt !== null) this.wakes.push(wakeAt, r.seq, r);
      // A wake-up that moved leaves a stale entry; purge them before they outnumber the resources.
      if (this.wakes.size > 2 * this.resources.size + 1024) this.wakes.filter((x, key) => this.resources.get(x.name) === x && x.wakeAt === key);
    }
  }

  /** One lane, or strict lanes (each capped at its own share, so independent): serve each lane's line in order. */
  private pumpEach(r: Resource, at: number, out: Effect[]): number | null {
    let wakeAt = Infinity;
    for (const lane of r.lanes) {
      for (let head = lane.queue.head(); head !== undefined; head = lane.queue.head()) {
        if (!this.fits(r, head.laneIdx, head.load, at)) {
          wakeAt = Math.min(wakeAt, this.fitAt(r, head.laneIdx, head.load, at));
          break;
        }
        this.take(r, lane, head, at, out);
      }
    }
    return wakeAt === Infinity ? null : wakeAt;
  }

  /**
   * Shared lanes, weighted fair and work-conserving: the lane with the lowest
   * virtual time goes first. If its head does not fit, other lanes may use
   * the idle capacity, but only until they are OVERTAKE_VT ahead of it; then
   * they wait too, so capacity builds up for the blocked head and it cannot
   * starve.
   */
  private pumpShared(r: Resource, at: number, out: Effect[]): number | null {
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
        if (this.fits(r, head.laneIdx, head.load, at)) {
          [chosen, chosenCost] = [lane, cost];
          break;
        }
        wakeAt = Math.min(wakeAt, this.fitAt(r, head.laneIdx, head.load, at));
        if (turn === null) [turn, turnCost] = [lane, cost];
      }
      if (chosen === null) return wakeAt === Infinity ? null : wakeAt;
      r.vtFloor = Math.max(r.vtFloor, chosen.vt);
      this.take(r, chosen, chosen.queue.head() as Waiter, at, out);
      chosen.vt += chosenCost;
    }
  }

  private take(r: Resource, lane: LaneRuntime, head: Waiter, at: number, out: Effect[]): void {
    lane.queue.shift(head);
    head.alive = false;
    r.waiting--;
    if (head.deadline !== Infinity) this.liveTimeouts--;
    this.grant(r, head.record, this.sessionOf(head.session), head.laneIdx, head.load, at, out);
  }

  // ---------------------------------------------------------------- leases

  private release(sessionId: string, leaseId: number, out: Effect[]): void {
    const lease = this.leases.get(leaseId);
    if (lease !== undefined && lease.session.id !== sessionId) {
      out.push(errorEffect("release", ErrorCode.INVALID, `lease ${leaseId} belongs to another session`));
      return;
    }
    if (lease === undefined) {
      // Idempotent: a lease already released (or dropped with its session or resource) stays released.
      out.push({ type: "released", sessionId, leaseId, reason: "notHeld" });
      return;
    }
    this.dropLease(lease);
    this.finish(this.sessionOf(lease.session), lease.record, null);
    out.push({ type: "released", sessionId, leaseId, reason: "released" });
  }

  /** Frees a lease's concurrency slots; rate and load stay charged (providers count them at grant). */
  private dropLease(lease: Lease): void {
    const r = lease.resource;
    for (const lim of r.limits) {
      if (lim.window !== null) continue;
      lim.held--;
      if (lim.laneHeld !== null && lease.laneIdx >= 0) lim.laneHeld[lease.laneIdx]!--;
      if (lim.held < 0) throw new Error("invariant: negative concurrency");
    }
    r.leases.delete(lease.id);
    this.leases.delete(lease.id);
    if (r.waiting > 0) this.dirty.add(r);
  }

  private settle(sessionId: string, leaseId: number, actual: Load, at: number, out: Effect[]): void {
    const lease = this.leases.get(leaseId);
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
    if (r.waiting > 0) this.dirty.add(r);
    out.push({ type: "settled", sessionId, leaseId, load: next });
  }

  private cooldown(cmd: Extract<Command, { type: "cooldown" }>, at: number, out: Effect[]): void {
    const r = this.resources.get(cmd.resource);
    if (r === undefined) {
      out.push(errorEffect("cooldown", ErrorCode.UNKNOWN_RESOURCE, `unknown resource "${cmd.resource}"`));
      return;
    }
    const until = cmd.untilMs ?? at + (cmd.retryAfterMs as number);
    const sets = until >= r.cooldownUntil;
    r.cooldownUntil = Math.max(r.cooldownUntil, until);
    if (r.waiting > 0) this.dirty.add(r);
    out.push({ type: "cooldown", resource: r.name, untilMs: r.cooldownUntil, ...(sets && cmd.by !== undefined ? { by: cmd.by } : {}) });
  }

  // ---------------------------------------------------------------- configuration

  private putResource(name: string, body: unknown, at: number, out: Effect[]): void {
    const result = validateResourceConfig(body);
    if (!result.ok) {
      out.push({ ...errorEffect("putResource", ErrorCode.INVALID, `invalid configuration for "${name}": ${result.errors.map((e) => `${e.path || "(body)"}: ${e.message}`).join("; ")}`), details: result.errors });
      return;
    }
    this.pruneTombstones(at);
    const existing = this.resources.get(name);
    if (existing === undefined) {
      const history = this.tombstones.get(name) ?? new History(Bounds.windowMsMax, this.historyEntries);
      this.tombstones.delete(name);
      const r = this.buildResource(name, ++this.resourceSeq, result.config, null, history);
      this.resources.set(name, r);
      out.push({ type: "resourcePut", name, created: true });
      return;
    }
    this.reconfigure(existing, result.config, out);
    out.push({ type: "resourcePut", name, created: false });
  }

  /**
   * Builds a resource's runtime for `config`. A limit with the same key as
   * one of `previous` (kind, dimension, algorithm, windowMs, and a bucket's
   * size) keeps its window; any other is built from `history`, so it counts
   * everything already charged as if it had always been defined this way.
   */
  private buildResource(name: string, seq: number, config: ResourceConfig, previous: Resource | null, history: History): Resource {
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
      const at = this.now;
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
        sinceSeq: old?.sinceSeq ?? this.grantSeq + 1,
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
  private pruneTombstones(at: number): void {
    for (const [name, h] of this.tombstones) {
      h.expire(at);
      if (h.size === 0) this.tombstones.delete(name);
    }
  }

  /** Replaces a resource's config in place; waiting requests are re-checked against it. */
  private reconfigure(old: Resource, config: ResourceConfig, out: Effect[]): void {
    const waiters: Waiter[] = [];
    for (const lane of old.lanes) waiters.push(...lane.queue.inOrder());
    waiters.sort((a, b) => a.seq - b.seq);
    const next = this.buildResource(old.name, old.seq, config, old, old.history);
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
        if (w.deadline !== Infinity) this.liveTimeouts--;
        const s = this.sessionOf(w.session);
        const outcome: Effect = { type: "rejected", sessionId: s.id, requestId: w.requestId, resource: r.name, code, message: `after a configuration change: ${problem}` };
        this.finish(s, w.record, outcome);
        out.push(outcome);
        continue;
      }
      w.laneIdx = laneIdx;
      this.enqueue(r, w);
    }
    r.wakeAt = null;
    this.dirty.add(r);
  }

  private deleteResource(name: string, out: Effect[]): void {
    const r = this.resources.get(name);
    if (r === undefined) {
      out.push(errorEffect("deleteResource", ErrorCode.UNKNOWN_RESOURCE, `unknown resource "${name}"`));
      return;
    }
    const waiters: Waiter[] = [];
    for (const lane of r.lanes) waiters.push(...lane.queue.inOrder());
    waiters.sort((a, b) => a.seq - b.seq);
    for (const w of waiters) this.endWaiter(w, "rejected", ErrorCode.UNKNOWN_RESOURCE, `resource "${name}" was deleted`, out);
    for (const lease of [...r.leases.values()]) {
      this.dropLease(lease);
      this.finish(this.sessionOf(lease.session), lease.record, null);
      out.push({ type: "released", sessionId: lease.session.id, leaseId: lease.id, reason: "resourceDeleted" });
    }
    this.resources.delete(name);
    this.dirty.delete(r);
    this.pruneTombstones(this.now);
    r.history.expire(this.now);
    if (r.history.size > 0) this.tombstones.set(name, r.history);
    out.push({ type: "resourceDeleted", name });
  }

  // ---------------------------------------------------------------- snapshot

  /** The whole state as deterministic bytes: equal states give equal bytes. */
  snapshot(): Uint8Array {
    const w = new Writer();
    w.str(MAGIC);
    for (const n of [this.now, this.grantSeq, this.arrivalSeq, this.sessionSeq, this.resourceSeq, this.finishedPerSession, this.historyEntries]) w.uint(n);
    w.uint(this.sessions.size);
    for (const s of this.sessions.values()) {
      w.str(s.id);
      w.uint(s.seq);
      w.uint(s.ttlMs);
      w.uint(s.expiresAt);
      w.uint(s.requests.size);
      for (const rec of s.requests.values()) {
        w.str(rec.requestId);
        w.uint(rec.state === "waiting" ? 0 : rec.state === "granted" ? 1 : 2);
        w.str(JSON.stringify(rec.outcome));
      }
      w.uint(s.finishedCount);
      for (let i = 0; i < s.finishedCount; i++) w.str(s.finished[(s.finishedStart + i) % this.finishedPerSession] as string);
    }
    w.uint(this.resources.size);
    for (const r of this.resources.values()) {
      w.str(r.name);
      w.uint(r.seq);
      w.str(JSON.stringify(configToInput(r.config)));
      w.uint(r.cooldownUntil);
      w.optUint(r.wakeAt);
      w.f64le(r.vtFloor);
      for (const lim of r.limits) {
        w.uint(lim.sinceSeq);
        lim.window?.encode(w);
        for (const lw of lim.laneWindows ?? []) lw.encode(w);
      }
      for (const lane of r.lanes) w.f64le(lane.vt);
      const waiters: Waiter[] = [];
      for (const lane of r.lanes) waiters.push(...lane.queue.inOrder());
      waiters.sort((a, b) => a.seq - b.seq);
      w.uint(waiters.length);
      for (const x of waiters) {
        w.uint(x.seq);
        w.str(x.session.id);
        w.str(x.requestId);
        w.str(x.laneRequested ?? "");
        w.uint(x.priority);
        writeLoad(w, x.load);
        w.uint(x.enqueuedAt);
        w.optUint(x.deadline === Infinity ? null : x.deadline);
      }
      w.uint(r.leases.size);
      for (const lease of r.leases.values()) {
        w.uint(lease.id);
        w.str(lease.session.id);
        w.str(lease.requestId);
        w.str(lease.laneName ?? "");
        writeLoad(w, lease.load);
        w.uint(lease.grantedAt);
      }
      r.history.encode(w, writeLoad);
    }
    w.uint(this.tombstones.size);
    for (const [name, h] of this.tombstones) {
      w.str(name);
      h.encode(w, writeLoad);
    }
    return w.bytes();
  }

  /** Rebuilds a machine from {@link snapshot} bytes. Throws SnapshotError on bytes it cannot trust. */
  static restore(bytes: Uint8Array): Limiter {
    try {
      return Limiter.decode(new Reader(bytes));
    } catch (err) {
      if (err instanceof SnapshotError) throw err;
      throw new SnapshotError(`corrupt snapshot: ${(err as Error).message}`, { cause: err });
    }
  }

  private static decode(rd: Reader): Limiter {
    if (rd.str() !== MAGIC) throw new SnapshotError("not a limiter snapshot");
    const [now, grantSeq, arrivalSeq, sessionSeq, resourceSeq, finishedPerSession, historyEntries] = [rd.uint(), rd.uint(), rd.uint(), rd.uint(), rd.uint(), rd.uint(), rd.uint()];
    const m = new Limiter({ finishedPerSession: finishedPerSession as number, historyEntries: historyEntries as number });
    Object.assign(m, { now, grantSeq, arrivalSeq, sessionSeq, resourceSeq });
    for (let n = rd.count(); n > 0; n--) {
      const s: Session = { id: rd.str(), seq: rd.uint(), ttlMs: rd.uint(), expiresAt: rd.uint(), requests: new Map(), finished: [], finishedStart: 0, finishedCount: 0 };
      for (let k = rd.count(); k > 0; k--) {
        const requestId = rd.str();
        const state = (["waiting", "granted", "done"] as const)[rd.uint()];
        if (state === undefined) throw new SnapshotError("bad request state");
        s.requests.set(requestId, { requestId, state, waiter: null, lease: null, outcome: JSON.parse(rd.str()) as Effect | null });
      }
      for (let k = rd.count(); k > 0; k--) s.finished.push(rd.str());
      s.finishedCount = s.finished.length;
      if (s.finishedCount > m.finishedPerSession) throw new SnapshotError("more finished requests than finishedPerSession");
      m.sessions.set(s.id, s);
      m.expiries.push(s.expiresAt, s.seq, s);
    }
    const recordOf = (sessionId: string, requestId: string): [Session, RequestRecord] => {
      const s = m.sessions.get(sessionId);
      const rec = s?.requests.get(requestId);
      if (s === undefined || rec === undefined) throw new SnapshotError(`dangling request ${sessionId}/${requestId}`);
      return [s, rec];
    };
    for (let n = rd.count(); n > 0; n--) {
      const name = rd.str();
      const seq = rd.uint();
      const parsed = validateResourceConfig(JSON.parse(rd.str()), { allowDeadLanes: true });
      if (!parsed.ok) throw new SnapshotError(`bad config for ${name}`);
      const r = m.buildResource(name, seq, parsed.config, null, new History(Bounds.windowMsMax, m.historyEntries));
      r.cooldownUntil = rd.uint();
      const wakeAt = rd.optUint();
      r.vtFloor = rd.f64le();
      r.limits = r.limits.map((lim) => {
        const sinceSeq = rd.uint();
        const window = lim.window === null ? null : decodeWindow(rd, lim.config, lim.config.limit);
        const laneWindows = lim.laneWindows === null ? null : lim.laneWindows.map((_, i) => decodeWindow(rd, lim.config, lim.laneShare?.[i] ?? 0));
        return { ...lim, sinceSeq, window, laneWindows };
      });
      const vts = r.lanes.map(() => rd.f64le());
      for (let k = rd.count(); k > 0; k--) {
        const seqW = rd.uint();
        const [s, rec] = recordOf(rd.str(), rd.str());
        const laneRequested = rd.str() || null;
        const priority = rd.uint();
        const load = readLoad(rd);
        const enqueuedAt = rd.uint();
        const deadline = rd.optUint() ?? Infinity;
        const laneIdx = laneIndex(r, laneRequested);
        if (laneIdx < 0) throw new SnapshotError("waiter in an unknown lane");
        const w: Waiter = { record: rec, alive: true, seq: seqW, session: s, requestId: rec.requestId, laneRequested, laneIdx, priority, load, enqueuedAt, deadline, resource: r };
        rec.waiter = w;
        m.enqueue(r, w);
        if (deadline !== Infinity) {
          m.timeouts.push(deadline, seqW, w);
          m.liveTimeouts++;
        }
      }
      for (let k = rd.count(); k > 0; k--) {
        const id = rd.uint();
        const [s, rec] = recordOf(rd.str(), rd.str());
        const laneName = rd.str() || null;
        const load = readLoad(rd);
        const grantedAt = rd.uint();
        const laneIdx = leaseLaneIndex(r, laneName);
        const lease: Lease = { record: rec, id, session: s, requestId: rec.requestId, laneName, laneIdx, load, grantedAt, resource: r };
        rec.lease = lease;
        r.leases.set(id, lease);
        m.leases.set(id, lease);
        for (const lim of r.limits) {
          if (lim.window !== null) continue;
          lim.held++;
          if (lim.laneHeld !== null && laneIdx >= 0) lim.laneHeld[laneIdx]!++;
        }
      }
      r.history = History.decode(rd, Bounds.windowMsMax, m.historyEntries, readLoad);
      // After the waiters: enqueue() lifts an idle lane's virtual time, which must not happen on restore.
      r.lanes.forEach((lane, i) => (lane.vt = vts[i] as number));
      r.wakeAt = wakeAt;
      if (wakeAt !== null) m.wakes.push(wakeAt, r.seq, r);
      m.resources.set(name, r);
    }
    for (let n = rd.count(); n > 0; n--) {
      const name = rd.str();
      if (m.resources.has(name) || m.tombstones.has(name)) throw new SnapshotError(`tombstone for a live or repeated name ${name}`);
      m.tombstones.set(name, History.decode(rd, Bounds.windowMsMax, m.historyEntries, readLoad));
    }
    if (!rd.done()) throw new SnapshotError("trailing bytes after snapshot");
    for (const s of m.sessions.values()) {
      for (const rec of s.requests.values()) {
        if ((rec.state === "waiting") !== (rec.waiter !== null) || (rec.state === "granted") !== (rec.lease !== null) || (rec.state === "waiting") !== (rec.outcome === null)) {
          throw new SnapshotError(`request ${s.id}/${rec.requestId} does not match the queues and leases`);
        }
      }
    }
    return m;
  }
}

/** What a repeated acquire (or a late cancel) answers for this request. */
function answer(record: RequestRecord): Effect {
  if (record.outcome !== null) return record.outcome;
  const w = record.waiter;
  if (record.state !== "waiting" || w === null) throw new Error(`invariant: request ${record.requestId} has no outcome`);
  // Built on demand rather than stored: one object less per waiting request.
  return { type: "queued", sessionId: w.session.id, requestId: record.requestId, resource: w.resource.name };
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

function decodeWindow(rd: Reader, config: LimitConfig, limit: number): Window {
  if (config.kind === "concurrency") throw new SnapshotError("concurrency limits have no window");
  switch (config.window) {
    case "sliding":
      return SlidingWindow.decode(rd, config.windowMs, config.deliveryMarginMs);
    case "fixed":
      return FixedWindow.decode(rd, config.windowMs, config.deliveryMarginMs);
    case "bucket":
      return BucketWindow.decode(rd, config.windowMs, limit, config.deliveryMarginMs);
  }
}

function writeLoad(w: Writer, load: LoadVector): void {
  const keys = Object.keys(load);
  w.uint(keys.length);
  for (const k of keys) {
    w.str(k);
    w.uint(load[k] as number);
  }
}

function readLoad(rd: Reader): LoadVector {
  const out: Record<string, number> = {};
  for (let n = rd.count(); n > 0; n--) {
    const k = rd.str();
    out[k] = rd.uint();
  }
  return out;
}

function errorEffect(command: string, code: ErrorCode, message: string): Effect & { type: "error" } {
  return { type: "error", command, code, message };
}

function unknownSession(command: string, sessionId: string): Effect {
  return errorEffect(command, ErrorCode.UNKNOWN_SESSION, `session "${sessionId}" is not open (closed or expired)`);
}

/** A validated load as a vector (a copy: the caller's object may change later). */
function toLoadVector(load: Load | undefined): LoadVector {
  if (load === undefined) return {};
  if (typeof load === "number") return { load };
  const out: Record<string, number> = {};
  for (const k in load) out[k] = load[k] as number;
  return out;
}

/** The lane index for a request, or -1 when the lane does not exist. */
function laneIndex(r: Resource, lane: string | null): number {
  if (lane === null) return r.defaultLaneIdx;
  if (r.implicitLane) return -1;
  return r.lanes.findIndex((l) => l.name === lane);
}

/** The lane a lease counts against after config changes: -1 when its lane no longer exists. */
function leaseLaneIndex(r: Resource, laneName: string | null): number {
  if (r.implicitLane) return laneName === null ? 0 : -1;
  return laneName === null ? -1 : r.lanes.findIndex((l) => l.name === laneName);
}

function laneProblem(r: Resource, lane: string): string {
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
function dimensionProblem(r: Resource, load: LoadVector, use: "acquire" | "settle"): string | null {
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
function ungrantable(r: Resource, laneIdx: number, load: LoadVector): string | null {
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
