/**
 * SPEC guarantee 6 (Time), judged against the simulation's true time, the
 * way a provider judges: it counts requests on its own clock, which no node's
 * clock can bend. The world tells this checker the true time at which each
 * entry was stamped (NodeCore's onPropose) and when each leader was elected;
 * it reads everything else from the committed log, in order.
 *
 * - Never fast: between two committed entries, log time advances no more than
 *   true time. Equivalently each entry's lag (true time of stamping minus its
 *   stamp) never decreases along the log, so a window of W log-ms is at least
 *   W true ms long, and a grant at log time g happened at true time
 *   g + lag(entry) (`trueTimeOf`).
 * - Never frozen: within one leader's term log time advances at least at
 *   TERM_RATE_MIN of true time; across a change of leader it loses at most
 *   the true time from the previous stamp to the new leader's election, plus
 *   what the rate allows after it.
 */

import { LimitChecker, type LimitSpec, type ResourceSpec } from "./limits.js";

/** Within a term, log time advances at least this fast: 0.999 of a monotonic clock that may run 0.1% slow. */
export const TERM_RATE_MIN = 0.998;

interface Stamped {
  readonly index: number;
  readonly term: number;
  readonly stampMs: number;
  readonly trueMs: number;
}

export class TrueTimeChecker {
  /** True time of each proposal, by `term:index` (the only entry a term's leader put at that index). */
  readonly #proposedAt = new Map<string, number>();
  /** True time at which each term's leader took office (NodeCore reported the role change). */
  readonly #electedAt = new Map<number, number>();
  #last: Stamped | null = null;
  entriesChecked = 0;
  /** Largest amount by which log time fell behind true time across one change of leader (ms). */
  failoverLagMaxMs = 0;

  /** The leader of `term` stamped the entry at `index` with `stampMs` at true time `trueMs`. */
  proposed(term: number, index: number, trueMs: number): void {
    const key = `${term}:${index}`;
    if (!this.#proposedAt.has(key)) this.#proposedAt.set(key, trueMs);
  }

  elected(term: number, trueMs: number): void {
    if (!this.#electedAt.has(term)) this.#electedAt.set(term, trueMs);
  }

  /** The next committed stamped entry, in log order. Returns a violation, or null. */
  committed(index: number, term: number, stampMs: number): string | null {
    const trueMs = this.#proposedAt.get(`${term}:${index}`);
    if (trueMs === undefined) return `entry ${index} (term ${term}) was committed but no leader of term ${term} proposed it`;
    const e: Stamped = { index, term, stampMs, trueMs };
    const prev = this.#last;
    this.#last = e;
    this.entriesChecked++;
    if (prev === null) return null;
    const logMs = e.stampMs - prev.stampMs;
    const realMs = e.trueMs - prev.trueMs;
    if (logMs > realMs) {
      return `log time ran ahead of true time: entries ${prev.index} (term ${prev.term}) and ${e.index} (term ${e.term}) are stamped ${logMs} ms apart but were stamped ${realMs} true ms apart (SPEC 6: never fast)`;
    }
    if (e.term === prev.term) {
      const floorMs = Math.floor(realMs * TERM_RATE_MIN) - 1;
      if (logMs < floorMs) {
        return `log time froze within term ${e.term}: entries ${prev.index} and ${e.index} are stamped ${logMs} ms apart, ${realMs} true ms apart (at least ${floorMs} expected)`;
      }
      return null;
    }
    const electedMs = this.#electedAt.get(e.term);
    if (electedMs === undefined) return `entry ${e.index} of term ${e.term} committed, but no leader of term ${e.term} was seen taking office`;
    const lostMs = Math.max(0, electedMs - prev.trueMs);
    const floorMs = prev.trueMs > electedMs ? Math.floor(realMs * TERM_RATE_MIN) - 1 : Math.floor((e.trueMs - electedMs) * TERM_RATE_MIN) - 1;
    this.failoverLagMaxMs = Math.max(this.failoverLagMaxMs, realMs - logMs);
    if (logMs < floorMs) {
      return `log time froze across a change of leader: entry ${prev.index} (term ${prev.term}) stamped at true ${prev.trueMs} ms, the leader of term ${e.term} elected at ${electedMs} ms, its entry ${e.index} stamped ${logMs} ms later at true ${e.trueMs} ms (at least ${floorMs} expected: ${lostMs} ms may be lost to the election)`;
    }
    return null;
  }

  /** The true time of log time `atMs` in the last committed entry (a grant, a settle or a cooldown it brought). */
  trueTimeOf(atMs: number): number {
    const last = this.#last;
    if (last === null) throw new Error("trueTimeOf before any committed entry");
    return atMs + (last.trueMs - last.stampMs);
  }
}

/**
 * The provider's view: every limit recomputed on true time by a LimitChecker of its own, each grant, settle and
 * cooldown placed at the true time the committed log says it happened (`TrueTimeChecker.trueTimeOf`). A provider
 * aligns fixed windows to its own clock, not to the cluster's log time, so a `fixed` limit is held there to what
 * SPEC says fixed windows allow: at most twice the limit in any interval of its window's length.
 */
export class ProviderView {
  readonly #limits: LimitChecker;

  constructor(
    specs: readonly ResourceSpec[],
    readonly time: TrueTimeChecker,
  ) {
    this.#limits = new LimitChecker(specs.map((r) => ({ name: r.name, limits: r.limits.map(providerLimit) })));
    for (const r of specs) this.#inForce.set(r.name, r.limits.map((def) => ({ def, checked: providerLimit(def) })));
  }

  get grantsChecked(): number {
    return this.#limits.grantsChecked;
  }

  /** A grant at log time `g.atMs` in the last committed entry. Returns a violation, or null. */
  grant(g: { resource: string; leaseId: number; load: Readonly<Record<string, number>>; atMs: number }): string | null {
    const problem = this.#limits.grant({ ...g, atMs: this.time.trueTimeOf(g.atMs) });
    return problem === null ? null : `provider's view (true time): ${problem}`;
  }

  /** Per resource, each limit in force as configured and as this view checks it. */
  readonly #inForce = new Map<string, readonly { readonly def: LimitSpec; readonly checked: LimitSpec }[]>();

  /**
   * The limits in force from log time `atMs` on (an admin change through the log), or null for a delete.
   *
   * A `fixed` limit whose definition changed is held to twice its limit per interval only over the grants made
   * since the change: RateQueue counts the usage already granted in its own aligned buckets (the log-time
   * checker checks exactly that), but grants made under a looser earlier definition near the end of a bucket
   * and the new limit's bucket after it can together exceed twice the new limit in an interval that straddles
   * the change, for a provider whose buckets are not aligned with the log's. (Found by this simulator; see
   * README, "What it found".) Every other limit is checked over all usage, as the log-time checker does.
   */
  configure(name: string, spec: ResourceSpec | null, atMs: number): void {
    if (spec === null) {
      this.#inForce.delete(name);
      return this.#limits.configure(name, null);
    }
    const before = this.#inForce.get(name) ?? [];
    const sinceMs = this.time.trueTimeOf(atMs);
    const now = spec.limits.map((def) => {
      const kept = before.find((b) => JSON.stringify(b.def) === JSON.stringify(def));
      if (kept !== undefined) return kept;
      return { def, checked: def.kind !== "concurrency" && def.window === "fixed" ? { ...providerLimit(def), sinceMs } : providerLimit(def) };
    });
    this.#inForce.set(name, now);
    this.#limits.configure(name, { name, limits: now.map((l) => l.checked) });
  }

  settle(leaseId: number, load: Readonly<Record<string, number>>, atMs: number): void {
    this.#limits.settle(leaseId, load, this.time.trueTimeOf(atMs));
  }

  release(leaseId: number): void {
    this.#limits.release(leaseId);
  }

  cooldown(resource: string, untilMs: number): void {
    this.#limits.cooldown(resource, this.time.trueTimeOf(untilMs));
  }
}

function providerLimit(l: LimitSpec): LimitSpec {
  return l.kind !== "concurrency" && l.window === "fixed" ? { ...l, limit: 2 * l.limit, window: "sliding" } : l;
}
