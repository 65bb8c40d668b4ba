/**
 * Grants per second, per resource, over the last few minutes: one ring of
 * one-second buckets per resource, fed with every applied grant.
 *
 * Seconds are counted on the log's clock (the leader's stamp of the entry),
 * not on the wall clock of the node that applies it: every node then draws the
 * same history, and entries replayed after a restart land in the seconds they
 * were granted in, not in one spike at restart time.
 */

export interface GrantHistoryOptions {
  /** How many one-second buckets each resource keeps (the chart's width). */
  readonly seconds?: number;
  /** Most resources tracked; grants on further resources only count in {@link GrantHistory.untracked}. */
  readonly resourcesMax?: number;
}

export const GRANT_HISTORY_SECONDS = 300;
export const GRANT_HISTORY_RESOURCES_MAX = 1_000;
const SECOND_MS = 1_000;

interface Ring {
  /** The second (log time / 1000, floored) each slot counts, or -1 for a slot never used. */
  readonly seconds: Float64Array;
  readonly counts: Uint32Array;
  /** Every grant recorded for this resource, including those older than the ring. */
  total: number;
}

export class GrantHistory {
  readonly seconds: number;
  readonly resourcesMax: number;
  readonly #rings = new Map<string, Ring>();
  /** The latest reported cooldown per resource (one entry per resource that ever cooled down, dropped on delete). */
  readonly #cooldowns = new Map<string, { readonly untilMs: number; readonly by: string }>();
  #latestMs = 0;
  #untracked = 0;

  constructor(options: GrantHistoryOptions = {}) {
    this.seconds = options.seconds ?? GRANT_HISTORY_SECONDS;
    this.resourcesMax = options.resourcesMax ?? GRANT_HISTORY_RESOURCES_MAX;
    if (!Number.isInteger(this.seconds) || this.seconds < 1 || this.seconds > 86_400) {
      throw new RangeError(`seconds must be an integer 1..86400, got ${this.seconds}`);
    }
    if (!Number.isInteger(this.resourcesMax) || this.resourcesMax < 0) {
      throw new RangeError(`resourcesMax must be a non-negative integer, got ${this.resourcesMax}`);
    }
  }

  /** Counts `count` grants on `resource` at log time `atMs`. */
  record(resource: string, atMs: number, count = 1): void {
    if (!Number.isFinite(atMs) || atMs < 0) throw new RangeError(`atMs must be a finite time >= 0, got ${atMs}`);
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
    this.#latestMs = Math.max(this.#latestMs, atMs);
    const ring = this.#ring(resource);
    if (ring === null) {
      this.#untracked += count;
      return;
    }
    ring.total += count;
    const second = Math.floor(atMs / SECOND_MS);
    const slot = second % this.seconds;
    const held = ring.seconds[slot]!;
    // A slot holding a later second means this grant is older than the ring reaches: it only counts in the total.
    if (held > second) return;
    if (held < second) {
      ring.seconds[slot] = second;
      ring.counts[slot] = 0;
    }
    ring.counts[slot] = ring.counts[slot]! + count;
  }

  /** Drops a resource's history (the resource was deleted). */
  forget(resource: string): void {
    this.#rings.delete(resource);
    this.#cooldowns.delete(resource);
  }

  /**
   * A cooldown effect was applied: its end and, if the command named one, who
   * reported it. An effect without `by` (a shorter report under a longer
   * cooldown, or one from before reporters were recorded) keeps what is known.
   */
  recordCooldown(resource: string, untilMs: number, by: string | undefined): void {
    if (by !== undefined && (this.#cooldowns.has(resource) || this.#cooldowns.size < this.resourcesMax)) this.#cooldowns.set(resource, { untilMs, by });
    else if (this.#cooldowns.get(resource)?.untilMs !== untilMs) this.#cooldowns.delete(resource);
  }

  /** Who reported the cooldown that ends at `untilMs`, if this node applied that report; else null. */
  cooldownBy(resource: string, untilMs: number): string | null {
    const c = this.#cooldowns.get(resource);
    return c !== undefined && c.untilMs === untilMs ? c.by : null;
  }

  /**
   * Grants per second for the `seconds` whole seconds ending with the one that
   * holds `endMs`, oldest first; null for a resource never granted. Exact
   * whenever `endMs` is not before the latest recorded grant, which is how the
   * dashboard asks (see {@link latestMs}).
   */
  series(resource: string, endMs: number): number[] | null {
    if (!Number.isFinite(endMs) || endMs < 0) throw new RangeError(`endMs must be a finite time >= 0, got ${endMs}`);
    const ring = this.#rings.get(resource);
    if (ring === undefined) return null;
    const endSecond = Math.floor(endMs / SECOND_MS);
    const out = new Array<number>(this.seconds);
    for (let i = 0; i < this.seconds; i++) {
      const second = endSecond - this.seconds + 1 + i;
      const slot = ((second % this.seconds) + this.seconds) % this.seconds;
      out[i] = second >= 0 && ring.seconds[slot] === second ? ring.counts[slot]! : 0;
    }
    return out;
  }

  /** All grants recorded on `resource` (0 for one never granted). */
  total(resource: string): number {
    return this.#rings.get(resource)?.total ?? 0;
  }

  /** The latest log time recorded: the right edge of the chart must not be before it. */
  get latestMs(): number {
    return this.#latestMs;
  }

  /** Grants not tracked per resource because {@link resourcesMax} resources already were. */
  get untracked(): number {
    return this.#untracked;
  }

  get resourceCount(): number {
    return this.#rings.size;
  }

  #ring(resource: string): Ring | null {
    const found = this.#rings.get(resource);
    if (found !== undefined) return found;
    if (this.#rings.size >= this.resourcesMax) return null;
    const ring: Ring = { seconds: new Float64Array(this.seconds).fill(-1), counts: new Uint32Array(this.seconds), total: 0 };
    this.#rings.set(resource, ring);
    return ring;
  }
}
