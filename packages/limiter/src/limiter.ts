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
 *
 * This file composes the concepts, each in its own module over one
 * MachineState (state.ts): sessions.ts (session lifecycle), exactly-once.ts
 * (remembered answers), admission.ts (fit, grant, lanes and their lines),
 * leases.ts (release, settle), reconfigure.ts (resources and config
 * changes), snapshot.ts (the snapshot codec).
 */
import { acquire, cancel, dimensionProblem, endWaiter, pumpDirty, toLoadVector } from "./admission.js";
import type { Session } from "./exactly-once.js";
import { HISTORY_ENTRIES_DEFAULT } from "./history.js";
import { release, settle } from "./leases.js";
import { deleteResource, putResource } from "./reconfigure.js";
import type { Resource, Waiter } from "./resource.js";
import { closeSession, endSession, heartbeat, isLiveExpiry, openSession, renewSessions } from "./sessions.js";
import { decodeSnapshot, encodeSnapshot } from "./snapshot.js";
import { FINISHED_PER_SESSION_DEFAULT, errorEffect, newMachineState, type MachineState } from "./state.js";
import { ErrorCode, type Command, type Effect, type Load, type ResourceView } from "./types.js";
import { DEFAULT_TTL_MS, commandProblem } from "./validate.js";

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

/**
 * @example
 * const limiter = new Limiter();
 * limiter.apply({ type: "putResource", at: 0, name: "gpt", config: { limits: [{ kind: "rate", limit: 2, windowMs: 1000 }] } });
 * limiter.apply({ type: "openSession", at: 0, sessionId: "s1" });
 * limiter.apply({ type: "acquire", at: 5, sessionId: "s1", requestId: "r1", resource: "gpt" }); // [{ type: "granted", ... }]
 */
export class Limiter {
  #m: MachineState;

  constructor(options: LimiterOptions = {}) {
    this.#m = newMachineState(options.finishedPerSession ?? FINISHED_PER_SESSION_DEFAULT, options.historyEntries ?? HISTORY_ENTRIES_DEFAULT);
  }

  // ---------------------------------------------------------------- queries

  /** The log time of the latest command (stamps are clamped to never go back). */
  get lastAt(): number {
    return this.#m.now;
  }

  resourceNames(): string[] {
    return [...this.#m.resources.keys()];
  }

  sessionCount(): number {
    return this.#m.sessions.size;
  }

  /** When a live session expires (a stamp in ms) if nothing renews it, or null if there is no such session. */
  sessionExpiresAt(sessionId: string): number | null {
    return this.#m.sessions.get(sessionId)?.expiresAt ?? null;
  }

  /** One resource's config and live state as of `at` (default: the last stamp), or null. */
  resource(name: string, at: number = this.#m.now): ResourceView | null {
    const r = this.#m.resources.get(name);
    if (r === undefined) return null;
    const t = Math.max(at, this.#m.now);
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
    const r = this.#m.resources.get(resource);
    return r === undefined ? null : dimensionProblem(r, toLoadVector(load), "acquire");
  }

  /** As {@link acquireLoadProblem}, for a settle's `actual` on a lease (null for a lease not held: the settle answers that). */
  settleLoadProblem(leaseId: number, actual: Load): string | null {
    const lease = this.#m.leases.get(leaseId);
    return lease === undefined ? null : dimensionProblem(lease.resource, toLoadVector(actual), "settle");
  }

  /**
   * The earliest log time at which time alone changes something (a timeout,
   * a session expiry, a waiter that becomes grantable, a cooldown's end), or
   * null. The node proposes a `tick` at that time.
   */
  nextDeadline(): number | null {
    const m = this.#m;
    dropStaleTops(m);
    const t = Math.min(m.timeouts.peekKey() ?? Infinity, m.expiries.peekKey() ?? Infinity, m.wakes.peekKey() ?? Infinity);
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
    const m = this.#m;
    const at = Math.max(command.at, m.now);
    const out: Effect[] = [];
    // A new leader renews sessions before its stamp can expire them (SPEC: a leader change never expires a live session).
    if (command.type === "renewSessions") renewSessions(m, at);
    this.#advance(at, out);
    switch (command.type) {
      case "putResource":
        putResource(m, command.name, command.config, at, out);
        break;
      case "deleteResource":
        deleteResource(m, command.name, out);
        break;
      case "openSession":
        openSession(m, command.sessionId, command.ttlMs ?? DEFAULT_TTL_MS, at, out);
        break;
      case "heartbeat":
        heartbeat(m, command.sessionId, at, out);
        break;
      case "closeSession":
        closeSession(m, command.sessionId, out);
        break;
      case "renewSessions":
        out.push({ type: "sessionsRenewed", count: m.sessions.size });
        break;
      case "acquire":
        acquire(m, command, at, out);
        break;
      case "release":
        release(m, command.sessionId, command.leaseId, out);
        break;
      case "settle":
        settle(m, command.sessionId, command.leaseId, command.actual, at, out);
        break;
      case "cancel":
        cancel(m, command.sessionId, command.requestId, out);
        break;
      case "cooldown":
        cooldown(m, command, at, out);
        break;
      case "tick":
        break;
    }
    pumpDirty(m, at, out);
    return out;
  }

  // ---------------------------------------------------------------- snapshot

  /** The whole state as deterministic bytes: equal states give equal bytes. */
  snapshot(): Uint8Array {
    return encodeSnapshot(this.#m);
  }

  /** Rebuilds a machine from {@link snapshot} bytes. Throws SnapshotError on bytes it cannot trust. */
  static restore(bytes: Uint8Array): Limiter {
    const state = decodeSnapshot(bytes);
    const limiter = new Limiter({ finishedPerSession: state.finishedPerSession, historyEntries: state.historyEntries });
    limiter.#m = state;
    return limiter;
  }

  // ---------------------------------------------------------------- time

  /** Applies every time-driven event due at or before `target`, each at its own time. */
  #advance(target: number, out: Effect[]): void {
    const m = this.#m;
    for (;;) {
      const t = this.nextDeadline();
      if (t === null || t > target) break;
      m.now = Math.max(m.now, t);
      const now = m.now;
      // Order within one ms: timeouts, then expiries, then grants. A waiter whose deadline is t is never granted at t.
      while ((m.timeouts.peekKey() ?? Infinity) <= now) {
        const w = m.timeouts.pop() as Waiter;
        if (w.alive) endWaiter(m, w, "timedOut", ErrorCode.TIMEOUT, `no capacity within the timeout (waited ${now - w.enqueuedAt} ms)`, out);
      }
      while ((m.expiries.peekKey() ?? Infinity) <= now) {
        const key = m.expiries.peekKey();
        const s = m.expiries.pop() as Session;
        if (isLiveExpiry(m, s, key)) endSession(m, s, "expired", out);
      }
      while ((m.wakes.peekKey() ?? Infinity) <= now) {
        const key = m.wakes.peekKey();
        const r = m.wakes.pop() as Resource;
        if (m.resources.get(r.name) === r && r.wakeAt === key) m.dirty.add(r);
      }
      pumpDirty(m, now, out);
    }
    m.now = target;
  }
}

/** Pops heap tops that no longer stand for live state, so each heap's top key is a real deadline. */
function dropStaleTops(m: MachineState): void {
  for (let w = m.timeouts.peek(); w !== undefined && !w.alive; w = m.timeouts.peek()) m.timeouts.pop();
  for (let s = m.expiries.peek(); s !== undefined; s = m.expiries.peek()) {
    if (isLiveExpiry(m, s, m.expiries.peekKey())) break;
    m.expiries.pop();
  }
  for (let r = m.wakes.peek(); r !== undefined; r = m.wakes.peek()) {
    if (m.resources.get(r.name) === r && m.wakes.peekKey() === r.wakeAt) break;
    m.wakes.pop();
  }
}

/** A resource grants nothing before `until`; a shorter cooldown never shortens a longer one. */
function cooldown(m: MachineState, cmd: Extract<Command, { type: "cooldown" }>, at: number, out: Effect[]): void {
  const r = m.resources.get(cmd.resource);
  if (r === undefined) {
    out.push(errorEffect("cooldown", ErrorCode.UNKNOWN_RESOURCE, `unknown resource "${cmd.resource}"`));
    return;
  }
  const until = cmd.untilMs ?? at + (cmd.retryAfterMs as number);
  const sets = until >= r.cooldownUntil;
  r.cooldownUntil = Math.max(r.cooldownUntil, until);
  if (r.waiting > 0) m.dirty.add(r);
  out.push({ type: "cooldown", resource: r.name, untilMs: r.cooldownUntil, ...(sets && cmd.by !== undefined ? { by: cmd.by } : {}) });
}
