/**
 * The independent limit checker: a brute-force recomputation of every
 * window from the committed grant history (grants with their stamps and
 * loads, settles, releases, cooldowns), written from SPEC.md alone. It shares
 * no code with packages/limiter: if the limiter and this file disagree, one
 * of them misreads the contract and the run fails.
 */

export type LimitSpec =
  | { readonly kind: "rate"; readonly limit: number; readonly windowMs: number; readonly window: "sliding" | "fixed" | "bucket"; readonly sinceMs?: number }
  | {
      readonly kind: "load";
      readonly limit: number;
      readonly windowMs: number;
      readonly window: "sliding" | "fixed" | "bucket";
      readonly dimension: string;
      /** Only grants at or after this time count (sliding and fixed); by default all of them. */
      readonly sinceMs?: number;
    }
  | { readonly kind: "concurrency"; readonly limit: number };

export interface ResourceSpec {
  readonly name: string;
  readonly limits: readonly LimitSpec[];
}

/** A token bucket is checked over intervals up to this many windows long (longer spans add nothing in a short run). */
const BUCKET_LOOKBACK_WINDOWS = 20;
/** Refill is fractional: allow for float rounding, nothing more. */
const EPSILON = 1e-6;

interface GrantRecord {
  readonly leaseId: number;
  readonly atMs: number;
  readonly original: Readonly<Record<string, number>>;
  /** The lowest charge the lease ever had per dimension: a settle above the grant may push usage over (SPEC), so only decreases count. */
  readonly effective: Record<string, number>;
}

interface ResourceHistory {
  /** The limits in force (null while the resource is deleted); the history below outlives changes and deletes. */
  spec: ResourceSpec | null;
  readonly grants: GrantRecord[];
  /** Token-bucket charge events: +load at grant time, a settle's refund (negative) at settle time. */
  readonly bucketEvents: { atMs: number; leaseId: number; delta: Record<string, number>; grant: boolean }[];
  readonly held: Set<number>;
  cooldownUntilMs: number;
}

export class LimitChecker {
  readonly #resources = new Map<string, ResourceHistory>();
  readonly #leases = new Map<number, { resource: ResourceHistory; grant: GrantRecord }>();
  grantsChecked = 0;

  constructor(specs: readonly ResourceSpec[]) {
    for (const spec of specs) this.#resources.set(spec.name, { spec, grants: [], bucketEvents: [], held: new Set(), cooldownUntilMs: -Infinity });
  }

  /**
   * A committed change of a resource's limits (SPEC: the admin API changes them through the log), or its delete
   * (`spec` null). From here on every grant is judged against the limits in force, counted over everything the
   * name has ever granted: usage granted before a change stays counted under the new limits (SPEC guarantee 8),
   * and a resource created again under a deleted one's name counts what that one granted.
   */
  configure(name: string, spec: ResourceSpec | null): void {
    const r = this.#resources.get(name);
    if (r !== undefined) r.spec = spec;
    else if (spec !== null) this.#resources.set(name, { spec, grants: [], bucketEvents: [], held: new Set(), cooldownUntilMs: -Infinity });
  }

  /**
   * A committed grant at log time `atMs`. Returns a violation message, or null. `reservedForOthers[i]`: units of
   * limit i reserved for lanes other than this grant's (SPEC: a grant must leave them unused), 0 by default.
   */
  grant(
    g: { resource: string; leaseId: number; load: Readonly<Record<string, number>>; atMs: number },
    reservedForOthers: readonly number[] = [],
  ): string | null {
    const r = this.#resources.get(g.resource);
    if (r === undefined) return `grant on resource "${g.resource}", which the scenario never configured`;
    if (r.spec === null) return `grant on resource "${g.resource}", which was deleted`;
    const spec = r.spec;
    if (this.#leases.has(g.leaseId)) return `lease ${g.leaseId} granted twice`;
    this.grantsChecked++;
    const record: GrantRecord = { leaseId: g.leaseId, atMs: g.atMs, original: { ...g.load }, effective: { ...g.load } };
    r.grants.push(record);
    r.bucketEvents.push({ atMs: g.atMs, leaseId: g.leaseId, delta: { ...g.load }, grant: true });
    r.held.add(g.leaseId);
    this.#leases.set(g.leaseId, { resource: r, grant: record });
    if (g.atMs < r.cooldownUntilMs) return `${g.resource}: lease ${g.leaseId} granted at ${g.atMs}, during a cooldown until ${r.cooldownUntilMs}`;
    for (const [i, limit] of spec.limits.entries()) {
      const reserved = reservedForOthers[i] ?? 0;
      const problem = this.#check(r, limit, g.atMs, reserved);
      if (problem !== null) {
        const kept = reserved > 0 ? `, ${reserved} reserved for other lanes` : "";
        return `${g.resource} limit #${i} (${describe(limit)}${kept}): ${problem} (grant of lease ${g.leaseId} at ${g.atMs})`;
      }
    }
    return null;
  }

  /** A committed settle: the lease's charge becomes `load`. */
  settle(leaseId: number, load: Readonly<Record<string, number>>, atMs: number): void {
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) return;
    const refund: Record<string, number> = {};
    for (const dim of new Set([...Object.keys(lease.grant.effective), ...Object.keys(load)])) {
      const before = lease.grant.effective[dim] ?? 0;
      const after = Math.min(before, load[dim] ?? 0);
      lease.grant.effective[dim] = after;
      if (after < before) refund[dim] = after - before;
    }
    if (Object.keys(refund).length > 0) lease.resource.bucketEvents.push({ atMs, leaseId, delta: refund, grant: false });
  }

  release(leaseId: number): void {
    this.#leases.get(leaseId)?.resource.held.delete(leaseId);
  }

  cooldown(resource: string, untilMs: number): void {
    const r = this.#resources.get(resource);
    if (r !== undefined) r.cooldownUntilMs = Math.max(r.cooldownUntilMs, untilMs);
  }

  /** Whether the history breaks `limit` at `nowMs`, when `reserved` of it had to stay unused. */
  #check(r: ResourceHistory, limit: LimitSpec, nowMs: number, reserved: number): string | null {
    const cap = limit.limit - reserved;
    if (limit.kind === "concurrency") {
      return r.held.size > cap ? `${r.held.size} leases held at once` : null;
    }
    const amount = (load: Readonly<Record<string, number>>): number => (limit.kind === "rate" ? 1 : (load[limit.dimension] ?? 0));
    const W = limit.windowMs;
    if (limit.window === "sliding" || limit.window === "fixed") {
      // Sliding: a grant at t counts in every interval of W ms that holds t, i.e. through t + W - 1.
      // Fixed: clock-aligned buckets floor(t / W).
      const inWindow =
        limit.window === "sliding" ? (t: number) => t > nowMs - W && t <= nowMs : (t: number) => Math.floor(t / W) === Math.floor(nowMs / W);
      let used = 0;
      for (let i = r.grants.length - 1; i >= 0; i--) {
        const g = r.grants[i]!;
        if (g.atMs <= nowMs - W || g.atMs < (limit.sinceMs ?? -Infinity)) break; // stamps never go down: everything earlier is out
        if (inWindow(g.atMs)) used += amount(g.effective);
      }
      return used > cap + EPSILON ? `${used} charged in one ${limit.window} window of ${W} ms` : null;
    }
    // Token bucket of capacity L refilled at L / W: over any interval [s, now] the net charge is at most
    // L + (now - s) * L / W (the bucket starts at most full and refills no faster). Checked for every s that is
    // the time of a charge event, walking back from now.
    let net = 0;
    const events = r.bucketEvents;
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i]!;
      if (nowMs - e.atMs > BUCKET_LOOKBACK_WINDOWS * W) break;
      net += e.grant && limit.kind === "rate" ? 1 : limit.kind === "rate" ? 0 : (e.delta[limit.dimension] ?? 0);
      const allowed = cap + ((nowMs - e.atMs) * limit.limit) / W;
      if (net > allowed + EPSILON) return `${net} charged in [${e.atMs}, ${nowMs}], a token bucket allows ${allowed}`;
    }
    return null;
  }
}

function describe(limit: LimitSpec): string {
  if (limit.kind === "concurrency") return `concurrency ${limit.limit}`;
  return `${limit.kind}${limit.kind === "load" ? `[${limit.dimension}]` : ""} ${limit.limit}/${limit.windowMs}ms ${limit.window}`;
}

/**
 * The limits of an admin resource body (`PUT /v1/resources/{name}`), read from SPEC's defaults alone: window
 * `sliding`, dimension `load`. Lanes, reserved units and delivery margins are not limits a provider sees; a
 * delivery margin only makes RateQueue stricter than these windows.
 */
export function specFromConfig(name: string, body: unknown): ResourceSpec {
  const limits = (body as { limits: readonly Record<string, unknown>[] }).limits.map((l): LimitSpec => {
    const limit = l.limit as number;
    if (l.kind === "concurrency") return { kind: "concurrency", limit };
    const windowMs = l.windowMs as number;
    const window = (l.window ?? "sliding") as "sliding" | "fixed" | "bucket";
    return l.kind === "rate" ? { kind: "rate", limit, windowMs, window } : { kind: "load", limit, windowMs, window, dimension: (l.dimension ?? "load") as string };
  });
  return { name, limits };
}
