/**
 * Properties of the limiter over random command sequences with random stamps,
 * checked against a deliberately simple reference model and independent
 * checkers (brute force over every grant). Scale with RQ_PROPERTY_RUNS; a
 * failure prints the one-line command that replays it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Limiter } from "./limiter.js";
import { checkProperty } from "@ratequeue/testkit";
import { ReferenceModel, bucketDebtScaled, cost, usage } from "../testing/reference-model.js";
import type { Command, Effect, LimitConfig, Load, LoadVector, ResourceConfig } from "./types.js";
import { validateResourceConfig } from "./validate.js";

const FILE = "packages/limiter/src/limiter.property.test.ts";
const SESSIONS = ["s0", "s1", "s2"];

// ------------------------------------------------------------ arbitraries

const windowArb = fc.constantFrom("sliding", "fixed", "bucket");
const windowMsArb = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 10 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 120 }) });
/** A delivery margin of 0 to the whole window, in quarters of it; null leaves the default. */
const marginArb = fc.option(fc.integer({ min: 0, max: 4 }), { nil: null });
const withMargin = <T extends { windowMs: number; quarters: number | null }>({ quarters, ...l }: T): Omit<T, "quarters"> =>
  quarters === null ? l : { ...l, deliveryMarginMs: Math.floor((l.windowMs * quarters) / 4) };
const limitArb = fc.oneof(
  fc.record({ kind: fc.constant("rate"), limit: fc.integer({ min: 1, max: 6 }), windowMs: windowMsArb, window: windowArb, quarters: marginArb }).map(withMargin),
  fc
    .record({
      kind: fc.constant("load"),
      limit: fc.integer({ min: 1, max: 100 }),
      windowMs: windowMsArb,
      window: windowArb,
      dimension: fc.constantFrom("load", "out"),
      quarters: marginArb,
    })
    .map(withMargin),
  fc.record({ kind: fc.constant("concurrency"), limit: fc.integer({ min: 1, max: 4 }) }),
);

const singleLaneConfigArb = fc.record({ limits: fc.array(limitArb, { minLength: 1, maxLength: 3 }) });

const lanedConfigArb = fc
  .record({
    limits: fc.array(limitArb, { minLength: 1, maxLength: 3 }),
    weights: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
    policy: fc.constantFrom("shared", "strict"),
    reserveFor0: fc.integer({ min: 0, max: 3 }),
  })
  // Only valid resources: a strict lane's share floor(limit * weight / total) must be at least 1 (else it is refused).
  .map(({ limits, weights, policy, reserveFor0 }) => ({
    limits: limits
      .map((l) => (policy === "strict" ? { ...l, limit: Math.max(l.limit, Math.ceil(weights.reduce((a, b) => a + b, 0) / Math.min(...weights))) } : l))
      .map((l) => (weights.length > 1 && reserveFor0 > 0 ? { ...l, reserved: { l0: Math.min(reserveFor0, Math.floor(l.limit / 2)) } } : l)),
    lanes: Object.fromEntries(weights.map((w, i) => [`l${i}`, { weight: w }])),
    lanePolicy: policy,
  }));

type Op =
  | { op: "acquire"; gap: number; session: number; load: number | { load: number; out: number }; shaped: boolean; priority?: number; timeoutMs?: number; lane: number }
  | { op: "release" | "settle" | "cancel" | "repeat"; gap: number; pick: number; actual: number; shaped: boolean }
  | { op: "heartbeat" | "openSession" | "closeSession"; gap: number; session: number }
  | { op: "cooldown"; gap: number; retryAfterMs: number }
  | { op: "tick" | "renewSessions"; gap: number };

/** Mostly a load shaped to name exactly the dimensions the resource counts now; now and then the raw load (refused when it misses one). */
const shapedArb = fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });
// Small gaps and small windows make stamps land on window edges, where off-by-one bugs live.
const gapArb = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 40 }) }, { weight: 1, arbitrary: fc.integer({ min: -30, max: -1 }) }, { weight: 1, arbitrary: fc.integer({ min: 100, max: 400 }) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record(
      {
        op: fc.constant("acquire" as const),
        gap: gapArb,
        session: fc.integer({ min: 0, max: 2 }),
        load: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.record({ load: fc.integer({ min: 0, max: 40 }), out: fc.integer({ min: 0, max: 40 }) }), fc.integer({ min: 90, max: 130 })),
        priority: fc.constantFrom(0, 10, 20),
        timeoutMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
        lane: fc.integer({ min: -1, max: 3 }),
        shaped: shapedArb,
      },
      { requiredKeys: ["op", "gap", "session", "load", "lane", "shaped"] },
    ),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom("release" as const, "settle" as const, "cancel" as const, "repeat" as const), gap: gapArb, pick: fc.nat(), actual: fc.integer({ min: 0, max: 80 }), shaped: shapedArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("heartbeat" as const, "openSession" as const, "closeSession" as const), gap: gapArb, session: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("cooldown" as const), gap: gapArb, retryAfterMs: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("tick" as const, "renewSessions" as const), gap: gapArb }) },
);

const opsArb = fc.array(opArb, { minLength: 1, maxLength: 60, size: "max" });

// ------------------------------------------------------------ driver

interface Step {
  readonly command: Command;
  readonly effects: Effect[];
}

/**
 * Turns abstract ops into concrete commands, choosing leases and requests
 * from what the machine has answered so far, and applies them. `onStep` sees
 * every command and its effects (it may apply the command elsewhere too).
 */
function drive(config: unknown, ops: readonly Op[], machine: Limiter, onStep: (step: Step) => void, finale = true): void {
  let at = 0;
  let reqSeq = 0;
  const held: { leaseId: number; sessionId: string }[] = [];
  const requests: Command[] = [];
  const laneNames = Object.keys((config as { lanes?: object }).lanes ?? {});
  /** The load dimensions resource "r" counts now (reconfigurations may change them). */
  const dims = (): string[] => [...new Set((machine.resource("r")?.config.limits ?? []).flatMap((l) => (l.kind === "load" ? [l.dimension] : [])))];
  const shapeLoad = (load: number | { load: number; out: number }): Load => {
    const d = dims();
    if (d.length === 0) return load;
    const v: Record<string, number> = typeof load === "number" ? { load } : load;
    return Object.fromEntries(d.map((k, i) => [k, v[k] ?? (typeof load === "number" ? load : (Object.values(v)[i % 2] as number))]));
  };
  const run = (command: Command): void => {
    const effects = machine.apply(command);
    for (const e of effects) {
      if (e.type === "granted") held.push({ leaseId: e.leaseId, sessionId: e.sessionId });
    }
    onStep({ command, effects });
  };
  run({ type: "putResource", at: 0, name: "r", config });
  for (const s of SESSIONS) run({ type: "openSession", at: 0, sessionId: s, ttlMs: 500 });
  for (const op of ops) {
    at = Math.max(0, at + op.gap);
    const stamp = at;
    switch (op.op) {
      case "acquire": {
        const cmd: Command = {
          type: "acquire",
          at: stamp,
          sessionId: SESSIONS[op.session] as string,
          requestId: `q${++reqSeq}`,
          resource: "r",
          load: op.shaped ? shapeLoad(op.load) : op.load,
          ...(op.priority === undefined ? {} : { priority: op.priority }),
          ...(op.timeoutMs === undefined ? {} : { timeoutMs: op.timeoutMs }),
          ...(op.lane < 0 || laneNames.length === 0 ? {} : { lane: laneNames[op.lane % (laneNames.length + 1)] ?? "nope" }),
        };
        requests.push(cmd);
        run(cmd);
        break;
      }
      case "release":
      case "settle": {
        const h = held[op.pick % Math.max(1, held.length)];
        if (h === undefined) break;
        run(op.op === "release" ? { type: "release", at: stamp, sessionId: h.sessionId, leaseId: h.leaseId } : { type: "settle", at: stamp, sessionId: h.sessionId, leaseId: h.leaseId, actual: op.shaped ? { [dims()[op.pick % Math.max(1, dims().length)] ?? "load"]: op.actual } : op.actual });
        break;
      }
      case "cancel": {
        const q = requests[op.pick % Math.max(1, requests.length)];
        if (q === undefined || q.type !== "acquire") break;
        run({ type: "cancel", at: stamp, sessionId: q.sessionId, requestId: q.requestId });
        break;
      }
      case "repeat": {
        const q = requests[op.pick % Math.max(1, requests.length)];
        if (q !== undefined) run(q); // its old stamp is clamped to the current time
        break;
      }
      case "heartbeat":
      case "closeSession":
        run({ type: op.op, at: stamp, sessionId: SESSIONS[op.session] as string });
        break;
      case "openSession":
        run({ type: "openSession", at: stamp, sessionId: SESSIONS[op.session] as string, ttlMs: 500 });
        break;
      case "cooldown":
        run({ type: "cooldown", at: stamp, resource: "r", retryAfterMs: op.retryAfterMs });
        break;
      case "tick":
      case "renewSessions":
        run({ type: op.op, at: stamp });
        break;
    }
  }
  if (!finale) return;
  run({ type: "renewSessions", at: at + 1 });
  for (const s of SESSIONS) run({ type: "closeSession", at: at + 2, sessionId: s });
}

function withoutMessages(effects: Effect[]): unknown[] {
  return effects.map((e) => {
    if (!("message" in e)) return e;
    const { message: _m, ...rest } = e as Effect & { message: string; details?: unknown };
    delete (rest as { details?: unknown }).details;
    return rest;
  });
}

// ------------------------------------------------------------ checkers

/**
 * Independent checks over the command/effect log, knowing nothing of the
 * implementation: every grant leaves every limit (and its lane's cap) within
 * bounds by brute force over all grants; within a lane no request overtakes
 * an earlier one of higher or equal priority; nothing is granted after it
 * ended (timeout, cancel, session end) or at/after its deadline.
 */
type CheckerGrant = { at: number; load: LoadVector; released: boolean; lane: number; leaseId: number };

class Checker {
  readonly #config: ResourceConfig;
  readonly #laneNames: string[];
  #now = 0;
  readonly #grants: CheckerGrant[] = [];
  readonly #bucketEvents: { at: number; units: number }[][];
  readonly #laneBucketEvents: { at: number; units: number }[][][];
  readonly #waiting = new Map<string, { arrival: number; lane: number; priority: number; deadline: number }>();
  readonly #pending = new Map<string, { arrival: number; lane: number; priority: number; deadline: number }>();
  readonly #ended = new Set<string>();
  #arrival = 0;

  constructor(input: unknown) {
    const v = validateResourceConfig(input);
    if (!v.ok) throw new Error("checker needs a valid config");
    this.#config = v.config;
    this.#laneNames = v.config.lanes.map((l) => l.name);
    this.#bucketEvents = v.config.limits.map(() => []);
    this.#laneBucketEvents = v.config.limits.map(() => v.config.lanes.map(() => []));
  }

  step({ command, effects }: Step): void {
    this.#now = Math.max(this.#now, command.at);
    if (command.type === "acquire") {
      const key = `${command.sessionId}/${command.requestId}`;
      if (!this.#pending.has(key) && !this.#waiting.has(key) && !this.#ended.has(key)) {
        const lane = command.lane === undefined ? 0 : this.#laneNames.indexOf(command.lane);
        this.#pending.set(key, { arrival: ++this.#arrival, lane, priority: command.priority ?? 10, deadline: command.timeoutMs === undefined ? Infinity : this.#now + Math.max(1, command.timeoutMs) }); // timeoutMs 0: now or never
      }
    }
    for (const e of effects) this.#effect(e, command);
    // What the acquire did not grant or end is now waiting.
    for (const [key, w] of this.#pending) this.#waiting.set(key, w);
    this.#pending.clear();
  }

  #effect(e: Effect, command: Command): void {
    const key = "requestId" in e ? `${e.sessionId}/${e.requestId}` : "";
    switch (e.type) {
      case "granted": {
        if (this.#ended.has(key) && this.#grants.some((g) => g.leaseId === e.leaseId)) return; // a repeat answers the original grant
        expect(this.#ended.has(key), `granted after it ended: ${key}`).toBe(false);
        const w = this.#waiting.get(key) ?? this.#pending.get(key);
        expect(w, `granted an unknown request ${key}`).toBeDefined();
        if (w === undefined) return;
        expect(e.grantedAt, `granted at/after its deadline: ${key}`).toBeLessThan(w.deadline);
        for (const [other, o] of this.#waiting) {
          if (other !== key && o.lane === w.lane && o.arrival < w.arrival && o.priority >= w.priority) {
            throw new Error(`${key} (priority ${w.priority}) overtook ${other} (priority ${o.priority}) in lane ${w.lane}`);
          }
        }
        this.#waiting.delete(key);
        this.#pending.delete(key);
        this.#ended.add(key);
        this.#grant(e.grantedAt, e.load, w.lane, e.leaseId);
        return;
      }
      case "rejected":
      case "timedOut":
      case "cancelled":
        // Without a session nothing is remembered: the same id may come back as a new request.
        if ((this.#waiting.delete(key) || this.#pending.delete(key)) && e.code !== "RQ_UNKNOWN_SESSION") this.#ended.add(key);
        return;
      case "queued":
        return;
      case "sessionEnded":
        for (const id of e.droppedRequests) this.#waiting.delete(`${e.sessionId}/${id}`);
        for (const id of e.releasedLeases) this.#release(id);
        for (const key2 of [...this.#waiting.keys()]) expect(key2.startsWith(`${e.sessionId}/`), `waiter ${key2} survived its session`).toBe(false);
        // The session is forgotten: a reopened session may reuse its request ids for new requests.
        for (const key2 of [...this.#ended]) if (key2.startsWith(`${e.sessionId}/`)) this.#ended.delete(key2);
        return;
      case "released":
        if (e.reason === "released") this.#release(e.leaseId);
        return;
      case "settled": {
        const g = this.#grants.find((x) => x.leaseId === e.leaseId);
        if (g === undefined || command.type !== "settle") throw new Error("settled an unknown lease");
        this.#config.limits.forEach((lim, i) => {
          const diff = cost(lim, e.load) - cost(lim, g.load);
          if (lim.kind !== "concurrency" && lim.window === "bucket" && diff !== 0) {
            this.#bucketEvents[i]?.push({ at: this.#now, units: diff });
            if (g.lane >= 0) this.#laneBucketEvents[i]?.[g.lane]?.push({ at: this.#now, units: diff });
          }
        });
        g.load = e.load;
        return;
      }
      default:
        return;
    }
  }

  #release(leaseId: number): void {
    const g = this.#grants.find((x) => x.leaseId === leaseId);
    if (g) g.released = true;
  }

  #grant(at: number, load: LoadVector, lane: number, leaseId: number): void {
    this.#grants.push({ at, load, released: false, lane, leaseId });
    const strict = this.#config.lanePolicy === "strict" && this.#laneNames.length > 0;
    const totalWeight = this.#config.lanes.reduce((s, l) => s + l.weight, 0);
    this.#config.limits.forEach((lim, i) => {
      if (lim.kind !== "concurrency" && lim.window === "bucket") {
        this.#bucketEvents[i]?.push({ at, units: cost(lim, load) });
        if (lane >= 0) this.#laneBucketEvents[i]?.[lane]?.push({ at, units: cost(lim, load) });
      }
      const reservedOthers = Object.entries(lim.reserved).reduce((s, [name, units]) => s + (name === this.#laneNames[lane] ? 0 : units), 0);
      const cap = lim.limit - reservedOthers;
      expect(this.#used(lim, i, at, this.#grants), `limit #${i} ${JSON.stringify(lim)} exceeded at ${at}`).toBeLessThanOrEqual(cap * scale(lim));
      if (strict) {
        const share = Math.floor((lim.limit * (this.#config.lanes[lane]?.weight ?? 0)) / totalWeight);
        const laneGrants = this.#grants.filter((g) => g.lane === lane);
        expect(this.#used(lim, i, at, laneGrants, lane), `lane ${lane} exceeded its share of limit #${i} at ${at}`).toBeLessThanOrEqual(share * scale(lim));
      }
    });
  }

  /** Usage scaled so buckets compare exactly (their debt is in 1/windowMs units). */
  #used(lim: LimitConfig, i: number, at: number, grants: CheckerGrant[], lane?: number): number {
    if (lim.kind !== "concurrency" && lim.window === "bucket") {
      const events = lane === undefined ? this.#bucketEvents[i] : this.#laneBucketEvents[i]?.[lane];
      const share = lane === undefined ? lim.limit : Math.floor((lim.limit * (this.#config.lanes[lane]?.weight ?? 0)) / this.#config.lanes.reduce((s, l) => s + l.weight, 0));
      return bucketDebtScaled(share, lim.windowMs, at, events ?? []);
    }
    return usage(lim, at, grants, []);
  }
}

function scale(lim: LimitConfig): number {
  return lim.kind !== "concurrency" && lim.window === "bucket" ? lim.windowMs : 1;
}

/**
 * The provider's view across configuration changes (SPEC guarantee 8): it
 * knows every grant ever made on the name (across delete and re-create) and
 * the config in force at each moment, and checks at each grant that every
 * limit in force, counted its own way over all of that usage, holds:
 * sliding and fixed windows by brute force over the grants (settled loads at
 * their grant time); buckets by replaying every charge and settle difference
 * from the start, as if the bucket in force had always been there.
 */
class ProviderChecker {
  #config: ResourceConfig | null;
  readonly #grants: { at: number; load: LoadVector; released: boolean; leaseId: number }[] = [];
  readonly #events: { at: number; count: number; load: LoadVector }[] = [];
  checked = 0;

  constructor(input: unknown) {
    const v = validateResourceConfig(input);
    if (!v.ok) throw new Error("checker needs a valid config");
    this.#config = v.config;
  }

  step({ command, effects }: Step): void {
    if (command.type === "putResource") {
      const v = validateResourceConfig(command.config);
      if (v.ok) this.#config = v.config;
    }
    for (const e of effects) {
      if (e.type === "granted") {
        if (this.#grants.some((g) => g.leaseId === e.leaseId)) continue; // a repeat answers the original grant
        this.#grants.push({ at: e.grantedAt, load: e.load, released: false, leaseId: e.leaseId });
        this.#events.push({ at: e.grantedAt, count: 1, load: e.load });
        this.#check(e.grantedAt, e.leaseId);
      } else if (e.type === "released" && e.reason !== "notHeld") this.#release(e.leaseId);
      else if (e.type === "sessionEnded") for (const id of e.releasedLeases) this.#release(id);
      else if (e.type === "settled") {
        const g = this.#grants.find((x) => x.leaseId === e.leaseId);
        if (g === undefined) throw new Error("settled an unknown lease");
        const diff: Record<string, number> = {};
        for (const k of new Set([...Object.keys(e.load), ...Object.keys(g.load)])) diff[k] = (e.load[k] ?? 0) - (g.load[k] ?? 0);
        this.#events.push({ at: command.at, count: 0, load: diff });
        g.load = e.load;
      }
    }
    if (command.type === "deleteResource" && effects.some((e) => e.type === "resourceDeleted")) this.#config = null;
  }

  #release(leaseId: number): void {
    const g = this.#grants.find((x) => x.leaseId === leaseId);
    if (g) g.released = true;
  }

  #check(at: number, leaseId: number): void {
    if (this.#config === null) throw new Error(`lease ${leaseId} granted on a deleted resource`);
    this.checked++;
    this.#config.limits.forEach((lim, i) => {
      const where = `limit #${i} ${JSON.stringify(lim)} exceeded by lease ${leaseId} at ${at}`;
      if (lim.kind !== "concurrency" && lim.window === "bucket") {
        const units = this.#events.map((e) => ({ at: e.at, units: lim.kind === "rate" ? e.count : (e.load[lim.dimension] ?? 0) }));
        expect(bucketDebtScaled(lim.limit, lim.windowMs, at, units), where).toBeLessThanOrEqual(lim.limit * lim.windowMs);
      } else {
        expect(usage(lim, at, this.#grants, []), where).toBeLessThanOrEqual(lim.limit);
      }
    });
  }
}

// ------------------------------------------------------------ properties

describe("limiter properties", () => {
  it("matches the reference model exactly on single-lane resources", () => {
    checkProperty({ file: FILE, name: "matches the reference model exactly on single-lane resources", runs: 150 }, fc.property(fc.tuple(singleLaneConfigArb, opsArb), ([config, ops]) => {
      const machine = new Limiter({ finishedPerSession: 10_000 });
      const ref = new ReferenceModel();
      const checker = new Checker(config);
      drive(config, ops, machine, (step) => {
        expect(withoutMessages(step.effects), `effects of ${JSON.stringify(step.command)}`).toEqual(withoutMessages(ref.apply(step.command)));
        checker.step(step);
        const next = machine.nextDeadline();
        if (next !== null) expect(next).toBeGreaterThan(machine.lastAt);
      });
    }));
  });

  it("never exceeds a limit or a lane's cap, keeps lane order, and grants nothing after it ended (lanes, reserved, strict)", () => {
    checkProperty({ file: FILE, name: "never exceeds a limit or a lane's cap, keeps lane order, and grants nothing after it ended (lanes, reserved, strict)", runs: 150 }, fc.property(fc.tuple(lanedConfigArb, opsArb), ([config, ops]) => {
      const machine = new Limiter({ finishedPerSession: 10_000 });
      const checker = new Checker(config);
      drive(config, ops, machine, (step) => checker.step(step));
      expect(machine.resource("r")?.queued).toEqual(Object.fromEntries(Object.keys(config.lanes).map((l) => [l, 0])));
    }));
  });

  it("liveness: once every lease is released, every waiter ends (granted or timed out) as the node ticks at nextDeadline", () => {
    checkProperty({ file: FILE, name: "liveness: once every lease is released, every waiter ends (granted or timed out) as the node ticks at nextDeadline", runs: 150 }, fc.property(fc.tuple(fc.oneof(singleLaneConfigArb, lanedConfigArb), opsArb), ([config, ops]) => {
      const machine = new Limiter();
      const held = new Map<number, string>();
      const track = (effects: Effect[]): void => {
        for (const e of effects) {
          if (e.type === "granted") held.set(e.leaseId, e.sessionId);
          if (e.type === "released") held.delete(e.leaseId);
          if (e.type === "sessionEnded") for (const id of e.releasedLeases) held.delete(id);
        }
      };
      drive(config, ops, machine, ({ effects }) => track(effects), false);
      let at = machine.lastAt;
      const releaseAll = (): void => {
        for (const [leaseId, sessionId] of [...held]) track(machine.apply({ type: "release", at, sessionId, leaseId }));
      };
      releaseAll();
      // Like a node: tick at each deadline. renewSessions keeps every session alive while we wait.
      const waiting = (): number => Object.values(machine.resource("r")?.queued ?? {}).reduce((x, y) => x + y, 0);
      for (let i = 0; i < 2_000 && waiting() > 0; i++) {
        const t = machine.nextDeadline();
        if (t === null) break;
        expect(t).toBeGreaterThan(at);
        at = t;
        track(machine.apply({ type: "renewSessions", at }));
        releaseAll();
      }
      const queued = machine.resource("r")?.queued ?? {};
      expect(Object.values(queued).every((n) => n === 0), `still waiting: ${JSON.stringify(queued)}`).toBe(true);
    }));
  });

  it("a repeated command changes nothing and a repeated acquire answers its original outcome", () => {
    checkProperty({ file: FILE, name: "a repeated command changes nothing and a repeated acquire answers its original outcome", runs: 60 }, fc.property(fc.tuple(fc.oneof(singleLaneConfigArb, lanedConfigArb), opsArb), ([config, ops]) => {
      const machine = new Limiter({ finishedPerSession: 10_000 });
      const outcomes = new Map<string, Effect>();
      // A session that ended forgets its requests, so only repeat within one session lifetime.
      const life = new Map<string, number>();
      const bornIn = new Map<string, number>();
      drive(config, ops, machine, ({ command, effects }) => {
        for (const e of effects) {
          if (e.type === "sessionEnded") life.set(e.sessionId, (life.get(e.sessionId) ?? 0) + 1);
          if ("requestId" in e && !(e.type === "rejected" && e.code === "RQ_UNKNOWN_SESSION")) {
            const key = `${e.sessionId}/${e.requestId}`;
            outcomes.set(key, e);
            if (!bornIn.has(key)) bornIn.set(key, life.get(e.sessionId) ?? 0);
          }
        }
        if (!["acquire", "release", "settle", "cancel"].includes(command.type)) return;
        if (command.type === "acquire" || command.type === "cancel") {
          const key = `${command.sessionId}/${command.requestId}`;
          if (bornIn.get(key) !== (life.get(command.sessionId) ?? 0)) return;
        }
        const before = machine.snapshot();
        const again = machine.apply(command);
        expect(machine.snapshot(), `repeat of ${JSON.stringify(command)} changed the state`).toEqual(before);
        if (command.type === "acquire") {
          const original = outcomes.get(`${command.sessionId}/${command.requestId}`);
          if (original !== undefined) expect(again).toEqual([original]);
        }
      });
    })); // snapshots after every command make each run costly
  });

  it("is deterministic, and a machine restored from a snapshot at any point behaves identically", () => {
    checkProperty({ file: FILE, name: "is deterministic, and a machine restored from a snapshot at any point behaves identically", runs: 150 }, fc.property(fc.tuple(fc.oneof(singleLaneConfigArb, lanedConfigArb), opsArb, fc.nat()), ([config, ops, cutSeed]) => {
        const machine = new Limiter({ finishedPerSession: 8 });
        const twin = new Limiter({ finishedPerSession: 8 });
        let copy: Limiter | null = null;
        let n = 0;
        const cut = cutSeed % (ops.length + 5);
        drive(config, ops, machine, ({ command, effects }) => {
          expect(twin.apply(command)).toEqual(effects);
          if (copy !== null) expect(copy.apply(command)).toEqual(effects);
          if (++n === cut) {
            copy = Limiter.restore(machine.snapshot());
            expect(copy.snapshot()).toEqual(machine.snapshot());
          }
        });
        expect(twin.snapshot()).toEqual(machine.snapshot());
        if (copy !== null) {
          expect((copy as Limiter).snapshot()).toEqual(machine.snapshot());
          expect((copy as Limiter).nextDeadline()).toBe(machine.nextDeadline());
        }
      }));
  });

  it("shared lanes share the contested limit by weight, in its units: no backlogged lane gets more than its weight's share of a token limit", () => {
    let grants = 0;
    checkProperty({ file: FILE, name: "shared lanes share the contested limit by weight, in its units: no backlogged lane gets more than its weight's share of a token limit", runs: 45 }, fc.property(fc.record({
        tokens: fc.integer({ min: 20, max: 1000 }),
        rate: fc.option(fc.integer({ min: 1, max: 50 }), { nil: null }),
        windowMs: fc.integer({ min: 2, max: 40 }),
        window: windowArb,
        lanes: fc.array(fc.record({ weight: fc.integer({ min: 1, max: 4 }), size: fc.double({ min: 0, max: 1, noNaN: true }) }), { minLength: 2, maxLength: 3 }),
      }), ({ tokens, rate, windowMs, window, lanes }) => {
        const sizes = lanes.map((l) => Math.max(1, Math.round(l.size * tokens)));
        const limits: object[] = [{ kind: "load", limit: tokens, windowMs, window, deliveryMarginMs: 0 }];
        if (rate !== null) limits.push({ kind: "rate", limit: rate, windowMs, window, deliveryMarginMs: 0 });
        const m = new Limiter();
        m.apply({ type: "putResource", at: 0, name: "r", config: { limits, lanes: Object.fromEntries(lanes.map((l, i) => [`l${i}`, { weight: l.weight }])) } });
        m.apply({ type: "openSession", at: 0, sessionId: "s", ttlMs: 86_400_000 });
        m.apply({ type: "cooldown", at: 0, resource: "r", untilMs: 1 }); // every grant goes through the lanes' queues
        const perLane = 30;
        const laneOf = new Map<string, number>();
        for (let k = 0; k < perLane; k++) {
          lanes.forEach((_, i) => {
            laneOf.set(`l${i}-${k}`, i);
            m.apply({ type: "acquire", at: 0, sessionId: "s", requestId: `l${i}-${k}`, resource: "r", lane: `l${i}`, load: sizes[i] as number });
          });
        }
        // The dominant share of one grant of lane i, per unit of weight (computed here, from the config alone).
        const cost = sizes.map((size, i) => Math.max(size / tokens, rate === null ? 0 : 1 / rate) / (lanes[i]?.weight as number));
        const bound = Math.max(...cost) + 1e-9;
        const served = lanes.map(() => 0);
        const count = lanes.map(() => 0);
        for (let step = 0; step < 5000; step++) {
          const at = m.nextDeadline();
          if (at === null) break;
          for (const e of m.apply({ type: "tick", at })) {
            if (e.type !== "granted") continue;
            const i = laneOf.get(e.requestId) as number;
            served[i]! += cost[i] as number;
            count[i]!++;
            grants++;
          }
          if (count.some((c) => c === perLane)) break; // a lane ran dry: it is no longer backlogged
          for (let i = 0; i < lanes.length; i++) {
            for (let j = 0; j < lanes.length; j++) {
              if ((served[i] as number) - (served[j] as number) > bound) {
                throw new Error(`lane l${i} (weight ${lanes[i]?.weight}, ${sizes[i]} tokens) is ahead of l${j} (weight ${lanes[j]?.weight}, ${sizes[j]} tokens) by ${((served[i] as number) - (served[j] as number)).toFixed(3)} > ${bound.toFixed(3)} dominant shares per weight (grants ${count.join("/")})`);
              }
            }
          }
        }
      }));
    expect(grants).toBeGreaterThan(0);
  });

  it("a change never forgets usage: every limit in force holds over all usage granted, across reconfiguration, delete and re-create", () => {
    const configOrDelete = fc.oneof({ weight: 4, arbitrary: fc.oneof(singleLaneConfigArb, lanedConfigArb) }, { weight: 1, arbitrary: fc.constant(null) });
    let checked = 0;
    checkProperty({ file: FILE, name: "a change never forgets usage: every limit in force holds over all usage granted, across reconfiguration, delete and re-create", runs: 150 }, fc.property(fc.tuple(fc.oneof(singleLaneConfigArb, lanedConfigArb), opsArb, fc.array(fc.tuple(fc.nat(), configOrDelete), { minLength: 1, maxLength: 8 }), fc.constantFrom(4, 2048)), ([config, ops, changes, historyEntries]) => {
        const machine = new Limiter({ historyEntries });
        const checker = new ProviderChecker(config);
        let n = 0;
        drive(config, ops, machine, (step) => {
          checker.step(step);
          n++;
          for (const [when, next] of changes) {
            if (when % (ops.length + 1) !== n) continue;
            const cmd: Command = next === null ? { type: "deleteResource", at: step.command.at, name: "r" } : { type: "putResource", at: step.command.at, name: "r", config: next };
            checker.step({ command: cmd, effects: machine.apply(cmd) });
          }
        });
        checked += checker.checked;
      }));
    expect(checked, "grants checked across all runs").toBeGreaterThan(0);
  });

  it("survives random reconfiguration and deletion: no crash, every effect well-formed, restore stays equivalent", () => {
    const configOrDelete = fc.oneof(singleLaneConfigArb, lanedConfigArb, fc.constant(null));
    checkProperty({ file: FILE, name: "survives random reconfiguration and deletion: no crash, every effect well-formed, restore stays equivalent", runs: 75 }, fc.property(fc.tuple(lanedConfigArb, opsArb, fc.array(fc.tuple(fc.nat(), configOrDelete), { maxLength: 4 })), ([config, ops, changes]) => {
        const machine = new Limiter();
        let copy = Limiter.restore(machine.snapshot());
        let n = 0;
        drive(config, ops, machine, ({ command, effects }) => {
          expect(copy.apply(command)).toEqual(effects);
          n++;
          for (const [when, next] of changes) {
            if (when % (ops.length + 1) !== n) continue;
            const cmd: Command = next === null ? { type: "deleteResource", at: command.at, name: "r" } : { type: "putResource", at: command.at, name: "r", config: next };
            const e = machine.apply(cmd);
            expect(copy.apply(cmd)).toEqual(e);
            expect(e.some((x) => x.type === "error" && x.code !== "RQ_UNKNOWN_RESOURCE")).toBe(false);
            copy = Limiter.restore(machine.snapshot());
          }
        });
        expect(copy.snapshot()).toEqual(machine.snapshot());
      }));
  });
});
