/**
 * A deliberately simple reference model of the limiter, for property tests.
 * It shares no code with the implementation except input validation and the
 * types: it keeps every grant forever, checks every window by brute force,
 * steps time one millisecond at a time, and keeps waiters in a plain array
 * it sorts on every use. Scope: one resource without lanes (where its
 * answers are exact), sessions, timeouts, cancel, cooldown, settle, release.
 * It never forgets finished requests, so compare it with an implementation
 * whose `finishedPerSession` exceeds the number of requests.
 */
import type { Command, Effect, LimitConfig, LoadVector, ResourceConfig } from "../src/types.js";
import { DEFAULT_PRIORITY, DEFAULT_TTL_MS, commandProblem, normalizeLoad, validateResourceConfig } from "../src/validate.js";

interface Grant {
  id: number;
  at: number;
  load: Record<string, number>;
  released: boolean;
  sessionId: string;
  requestId: string;
}

interface Waiter {
  seq: number;
  sessionId: string;
  requestId: string;
  priority: number;
  load: LoadVector;
  deadline: number;
}

interface Rec {
  state: "waiting" | "granted" | "done";
  outcome: Effect;
  grant?: Grant;
}

interface Session {
  id: string;
  seq: number;
  ttlMs: number;
  expiresAt: number;
  records: Map<string, Rec>;
}

export class ReferenceModel {
  #now = 0;
  #grantSeq = 0;
  #arrivalSeq = 0;
  #sessionSeq = 0;
  #name: string | null = null;
  #config: ResourceConfig | null = null;
  #cooldownUntil = 0;
  #grants: Grant[] = [];
  #waiters: Waiter[] = [];
  /** Per bucket limit index: every change to its debt, in order (grants and settles). */
  #bucketEvents = new Map<number, { at: number; units: number }[]>();
  #sessions = new Map<string, Session>();

  apply(command: Command): Effect[] {
    const problem = commandProblem(command);
    if (problem !== null) return [{ type: "error", command: String((command as { type?: unknown })?.type ?? "unknown"), code: "RQ_INVALID", message: problem }];
    const at = Math.max(command.at, this.#now);
    const out: Effect[] = [];
    if (command.type === "renewSessions") for (const s of this.#sessions.values()) s.expiresAt = at + s.ttlMs;
    for (let t = this.#now + 1; t <= at; t++) this.#step(t, out);
    this.#now = at;
    this.#command(command, at, out);
    this.#pump(at, out);
    return out;
  }

  #step(t: number, out: Effect[]): void {
    const due = this.#waiters.filter((w) => w.deadline <= t).sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
    for (const w of due) this.#endWaiter(w, "timedOut", "RQ_TIMEOUT", out);
    const expired = [...this.#sessions.values()].filter((s) => s.expiresAt <= t).sort((a, b) => a.expiresAt - b.expiresAt || a.seq - b.seq);
    for (const s of expired) this.#endSession(s, "expired", out);
    this.#pump(t, out);
  }

  #command(c: Command, at: number, out: Effect[]): void {
    switch (c.type) {
      case "putResource": {
        const v = validateResourceConfig(c.config);
        if (!v.ok) throw new Error("reference model: give it valid configs only");
        if (this.#name !== null || v.config.lanes.length > 0) throw new Error("reference model: one resource, no lanes");
        this.#name = c.name;
        this.#config = v.config;
        out.push({ type: "resourcePut", name: c.name, created: true });
        return;
      }
      case "openSession": {
        const s = this.#sessions.get(c.sessionId) ?? { id: c.sessionId, seq: ++this.#sessionSeq, ttlMs: 0, expiresAt: 0, records: new Map() };
        this.#sessions.set(s.id, s);
        s.ttlMs = c.ttlMs ?? DEFAULT_TTL_MS;
        s.expiresAt = at + s.ttlMs;
        out.push({ type: "session", sessionId: s.id, expiresAt: s.expiresAt });
        return;
      }
      case "heartbeat": {
        const s = this.#sessions.get(c.sessionId);
        if (!s) return void out.push(err(c.type, "RQ_UNKNOWN_SESSION"));
        s.expiresAt = at + s.ttlMs;
        out.push({ type: "session", sessionId: s.id, expiresAt: s.expiresAt });
        return;
      }
      case "closeSession": {
        const s = this.#sessions.get(c.sessionId);
        if (!s) return void out.push(err(c.type, "RQ_UNKNOWN_SESSION"));
        this.#endSession(s, "closed", out);
        return;
      }
      case "renewSessions":
        out.push({ type: "sessionsRenewed", count: this.#sessions.size });
        return;
      case "acquire":
        this.#acquire(c, at, out);
        return;
      case "release": {
        const g = this.#grants.find((x) => x.id === c.leaseId && !x.released);
        if (g && g.sessionId !== c.sessionId) return void out.push(err(c.type, "RQ_INVALID"));
        if (!g) return void out.push({ type: "released", sessionId: c.sessionId, leaseId: c.leaseId, reason: "notHeld" });
        g.released = true;
        const rec = this.#sessions.get(g.sessionId)?.records.get(g.requestId);
        if (rec) rec.state = "done";
        out.push({ type: "released", sessionId: c.sessionId, leaseId: c.leaseId, reason: "released" });
        return;
      }
      case "settle": {
        const g = this.#grants.find((x) => x.id === c.leaseId && !x.released);
        if (!g || g.sessionId !== c.sessionId) return void out.push(err(c.type, "RQ_UNKNOWN_LEASE"));
        const actual = normalizeLoad(c.actual);
        if (!actual.ok) throw new Error("validated");
        if (this.#dimensionRefused(actual.load, "settle")) return void out.push(err(c.type, "RQ_INVALID"));
        const next = { ...g.load, ...actual.load };
        (this.#config as ResourceConfig).limits.forEach((lim, i) => {
          if (lim.kind !== "load" || lim.window !== "bucket") return;
          const diff = (next[lim.dimension] ?? 0) - (g.load[lim.dimension] ?? 0);
          if (diff !== 0) this.#bucketEvents.get(i)?.push({ at, units: diff });
        });
        g.load = next;
        out.push({ type: "settled", sessionId: c.sessionId, leaseId: c.leaseId, load: next });
        return;
      }
      case "cancel": {
        const s = this.#sessions.get(c.sessionId);
        if (!s) return void out.push(err(c.type, "RQ_UNKNOWN_SESSION"));
        const rec = s.records.get(c.requestId);
        if (!rec) return void out.push(err(c.type, "RQ_INVALID"));
        const w = this.#waiters.find((x) => x.sessionId === c.sessionId && x.requestId === c.requestId);
        if (rec.state === "waiting" && w) return void this.#endWaiter(w, "cancelled", "RQ_CANCELLED", out);
        out.push(rec.outcome);
        return;
      }
      case "cooldown": {
        if (c.resource !== this.#name) return void out.push(err(c.type, "RQ_UNKNOWN_RESOURCE"));
        this.#cooldownUntil = Math.max(this.#cooldownUntil, c.untilMs ?? at + (c.retryAfterMs as number));
        out.push({ type: "cooldown", resource: c.resource, untilMs: this.#cooldownUntil });
        return;
      }
      case "deleteResource":
        throw new Error("reference model: deleteResource is out of scope");
      case "tick":
        return;
    }
  }

  #acquire(c: Extract<Command, { type: "acquire" }>, at: number, out: Effect[]): void {
    const base = { sessionId: c.sessionId, requestId: c.requestId, resource: c.resource };
    const s = this.#sessions.get(c.sessionId);
    if (!s) return void out.push({ type: "rejected", ...base, code: "RQ_UNKNOWN_SESSION", message: "" });
    const existing = s.records.get(c.requestId);
    if (existing) return void out.push(existing.outcome);
    const reject = (code: "RQ_UNKNOWN_RESOURCE" | "RQ_UNGRANTABLE" | "RQ_INVALID"): void => {
      const outcome: Effect = { type: "rejected", ...base, code, message: "" };
      s.records.set(c.requestId, { state: "done", outcome });
      out.push(outcome);
    };
    if (c.resource !== this.#name) return reject("RQ_UNKNOWN_RESOURCE");
    if (c.lane !== undefined) return reject("RQ_UNKNOWN_RESOURCE");
    const parsed = normalizeLoad(c.load);
    if (!parsed.ok) throw new Error("validated");
    const load = parsed.load;
    if (this.#dimensionRefused(load, "acquire")) return reject("RQ_INVALID");
    if ((this.#config as ResourceConfig).limits.some((lim) => cost(lim, load) > capacity(lim))) return reject("RQ_UNGRANTABLE");
    const w: Waiter = { seq: ++this.#arrivalSeq, sessionId: c.sessionId, requestId: c.requestId, priority: c.priority ?? DEFAULT_PRIORITY, load, deadline: c.timeoutMs === undefined ? Infinity : at + c.timeoutMs };
    const queued: Effect = { type: "queued", ...base };
    s.records.set(c.requestId, { state: "waiting", outcome: queued });
    this.#waiters.push(w);
    this.#pump(at, out);
    if (!this.#waiters.includes(w)) return;
    if (c.timeoutMs === 0) {
      this.#endWaiter(w, "timedOut", "RQ_TIMEOUT", out);
      this.#pump(at, out);
      return;
    }
    out.push(queued);
  }

  /** A dimension no limit counts (but "load"); an acquire missing a counted one; a settle naming none. */
  #dimensionRefused(load: LoadVector, use: "acquire" | "settle"): boolean {
    const dims = new Set((this.#config as ResourceConfig).limits.flatMap((l) => (l.kind === "load" ? [l.dimension] : [])));
    if (Object.keys(load).some((k) => k !== "load" && !dims.has(k))) return true;
    if (dims.size === 0) return false;
    const named = [...dims].filter((d) => Object.hasOwn(load, d)).length;
    return use === "acquire" ? named < dims.size : named === 0;
  }

  #endWaiter(w: Waiter, type: "timedOut" | "cancelled", code: "RQ_TIMEOUT" | "RQ_CANCELLED", out: Effect[]): void {
    this.#waiters = this.#waiters.filter((x) => x !== w);
    const rec = this.#sessions.get(w.sessionId)?.records.get(w.requestId) as Rec;
    rec.state = "done";
    rec.outcome = { type, sessionId: w.sessionId, requestId: w.requestId, resource: this.#name as string, code, message: "" };
    out.push(rec.outcome);
  }

  #endSession(s: Session, reason: "closed" | "expired", out: Effect[]): void {
    const releasedLeases: number[] = [];
    const droppedRequests: string[] = [];
    for (const [requestId, rec] of s.records) {
      if (rec.state === "waiting") {
        this.#waiters = this.#waiters.filter((x) => !(x.sessionId === s.id && x.requestId === requestId));
        droppedRequests.push(requestId);
      } else if (rec.state === "granted" && rec.grant) {
        rec.grant.released = true;
        releasedLeases.push(rec.grant.id);
      }
    }
    this.#sessions.delete(s.id);
    out.push({ type: "sessionEnded", sessionId: s.id, reason, releasedLeases, droppedRequests });
  }

  /** Grants the head of the line while it fits; only the head is ever considered. */
  #pump(t: number, out: Effect[]): void {
    for (;;) {
      this.#waiters.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
      const head = this.#waiters[0];
      if (head === undefined || !this.fits(t, head.load)) return;
      this.#waiters.shift();
      const g: Grant = { id: ++this.#grantSeq, at: t, load: { ...head.load }, released: false, sessionId: head.sessionId, requestId: head.requestId };
      this.#grants.push(g);
      (this.#config as ResourceConfig).limits.forEach((lim, i) => {
        if (lim.kind !== "concurrency" && lim.window === "bucket") {
          const list = this.#bucketEvents.get(i) ?? [];
          list.push({ at: t, units: cost(lim, head.load) });
          this.#bucketEvents.set(i, list);
        }
      });
      const rec = this.#sessions.get(head.sessionId)?.records.get(head.requestId) as Rec;
      rec.state = "granted";
      rec.grant = g;
      rec.outcome = { type: "granted", sessionId: head.sessionId, requestId: head.requestId, resource: this.#name as string, leaseId: g.id, load: head.load, grantedAt: t };
      out.push(rec.outcome);
    }
  }

  /** Brute force: would `load` fit under every limit at time t? */
  fits(t: number, load: LoadVector): boolean {
    if (t < this.#cooldownUntil) return false;
    return (this.#config as ResourceConfig).limits.every((lim, i) => {
      if (lim.kind !== "concurrency" && lim.window === "bucket") {
        const fill = lim.limit * lim.windowMs - lim.limit * lim.deliveryMarginMs; // what refills in the margin is held back
        return bucketDebtScaled(lim.limit, lim.windowMs, t, this.#bucketEvents.get(i) ?? []) + cost(lim, load) * lim.windowMs <= fill;
      }
      return usage(lim, t, this.#grants, []) + cost(lim, load) <= lim.limit;
    });
  }
}

function err(command: string, code: "RQ_UNKNOWN_SESSION" | "RQ_INVALID" | "RQ_UNKNOWN_LEASE" | "RQ_UNKNOWN_RESOURCE"): Effect {
  return { type: "error", command, code, message: "" };
}

export function cost(lim: LimitConfig, load: LoadVector): number {
  return lim.kind === "load" ? (Object.hasOwn(load, lim.dimension) ? (load[lim.dimension] as number) : 0) : 1;
}

/** The largest load one request may have under this limit: a bucket holds back what refills in the delivery margin. */
export function capacity(lim: LimitConfig): number {
  if (lim.kind === "concurrency" || lim.window !== "bucket") return lim.limit;
  return Math.floor((lim.limit * lim.windowMs - lim.limit * lim.deliveryMarginMs) / lim.windowMs);
}

/**
 * Usage of one limit at time t by brute force over every grant ever made
 * (`events` feeds bucket limits: each grant's charge and each settle's
 * difference, at the time it happened). With a delivery margin D, a sliding
 * window counts a grant for windowMs + D, and a fixed bucket also counts the
 * grants stamped in the last D ms before it starts.
 */
export function usage(lim: LimitConfig, t: number, grants: readonly { at: number; load: LoadVector; released: boolean }[], events: readonly { at: number; units: number }[]): number {
  if (lim.kind === "concurrency") return grants.filter((g) => !g.released).length;
  const d = lim.deliveryMarginMs;
  if (lim.window === "sliding") return sum(grants.filter((g) => g.at > t - lim.windowMs - d && g.at <= t).map((g) => cost(lim, g.load)));
  if (lim.window === "fixed") {
    const start = Math.floor(t / lim.windowMs) * lim.windowMs;
    return sum(grants.filter((g) => g.at >= start - d && g.at < start + lim.windowMs).map((g) => cost(lim, g.load)));
  }
  return bucketDebtScaled(lim.limit, lim.windowMs, t, events) / lim.windowMs;
}

/** A bucket's debt at t in units of 1/windowMs: replays every event, repaying `limit` per ms, never below zero. */
export function bucketDebtScaled(limit: number, windowMs: number, t: number, events: readonly { at: number; units: number }[]): number {
  let debt = 0;
  let last = 0;
  for (const e of events) {
    debt = Math.max(0, debt - (e.at - last) * limit);
    debt = Math.max(0, debt + e.units * windowMs);
    last = e.at;
  }
  return Math.max(0, debt - (t - last) * limit);
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
