import type { Effect } from "@ratequeue/limiter";
import type { OpResult } from "../core/cluster-state.js";

/** One applied grant-related event, as every node applies it. */
export interface GrantLogRecord {
  /** Log index of the entry that produced it. */
  readonly index: number;
  /** Log time of the entry (ms). */
  readonly at: number;
  readonly effect: Effect;
}

/** Effects that change who holds what: the history an external checker needs. */
const KEPT: ReadonlySet<Effect["type"]> = new Set(["granted", "released", "settled", "rejected", "timedOut", "cancelled", "sessionEnded", "cooldown", "resourcePut", "resourceDeleted"]);

/**
 * The last `capacity` grant-related effects this node applied, for
 * `GET /v1/debug/grants` (admin only): what a history checker compares across
 * nodes. Bounded: older records fall off, and `firstIndex` says where the
 * kept history starts.
 */
export class GrantLog {
  readonly #records: GrantLogRecord[] = [];
  #dropped = 0;

  /** 50,000 records: about 10 MB at most, enough for a checker polling every few seconds. */
  constructor(readonly capacity = 50_000) {}

  record(results: readonly OpResult[], at: number, index: number): void {
    for (const r of results) {
      for (const effect of r.effects) {
        if (!KEPT.has(effect.type)) continue;
        this.#records.push({ index, at, effect });
      }
    }
    // Trim in batches (at half again the capacity): a splice per record would move the whole array every time.
    if (this.#records.length <= this.capacity * 1.5) return;
    const excess = this.#records.length - this.capacity;
    this.#records.splice(0, excess);
    this.#dropped += excess;
  }

  /** Records with log index >= `sinceIndex`, at most `limit` of them. */
  read(sinceIndex: number, limit: number): { dropped: number; records: GrantLogRecord[] } {
    let lo = 0;
    let hi = this.#records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#records[mid]!.index < sinceIndex) lo = mid + 1;
      else hi = mid;
    }
    const excess = Math.max(0, this.#records.length - this.capacity);
    lo = Math.max(lo, excess); // hold at most `capacity` records visible, trimmed or not
    return { dropped: this.#dropped + excess, records: this.#records.slice(lo, lo + limit) };
  }
}
