/**
 * A resource's usage history: what it has charged, when, for up to the
 * longest window any limit may have (Bounds.windowMsMax). A limit whose
 * definition changes (a new window length, algorithm, dimension, or a
 * bucket's size) is rebuilt by replaying this history into a fresh window,
 * so a change never forgets usage already granted (SPEC guarantee 8).
 *
 * Each entry is a charge: a grant (its charged load and `count` 1) or the
 * increase a settle reported (`count` 0, charged at the settle's time).
 * Refunds are not recorded, so a replay never counts less than was charged.
 *
 * Memory is bounded by `maxEntries`: past it, the older half is merged in
 * pairs, each pair becoming one entry at the later time with the sums of
 * both. Moving a charge later in time only keeps it counted longer, in every
 * algorithm, so a merged history still never under-counts; it may hold a
 * rebuilt limit back a little longer than the exact grants would.
 */
import type { Reader, Writer } from "./codec.js";
import { SnapshotError } from "./codec.js";
import type { LoadVector } from "./types.js";

export interface HistoryEntry {
  readonly at: number;
  /** Grants in this entry (0 for a settle's increase). */
  readonly count: number;
  readonly load: LoadVector;
}

export const HISTORY_ENTRIES_DEFAULT = 2048;

export class History {
  #entries: HistoryEntry[] = [];
  #head = 0;

  constructor(
    /** How long a charge may matter: the longest window any limit may have. */
    readonly retentionMs: number,
    readonly maxEntries: number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 4) throw new RangeError("history: maxEntries must be an integer >= 4");
  }

  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** Records a charge at `at` (non-decreasing). */
  push(at: number, count: number, load: LoadVector): void {
    this.#entries.push({ at, count, load });
    if (this.size > this.maxEntries) this.#compact();
  }

  /** Drops what no window can count at `at` or later. */
  expire(at: number): void {
    const cutoff = at - this.retentionMs;
    while (this.#head < this.#entries.length && (this.#entries[this.#head] as HistoryEntry).at <= cutoff) this.#head++;
    if (this.#head >= 1024 && this.#head * 2 >= this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The live entries, oldest first. */
  *[Symbol.iterator](): Iterator<HistoryEntry> {
    for (let i = this.#head; i < this.#entries.length; i++) yield this.#entries[i] as HistoryEntry;
  }

  /** Merges the older half in pairs (each pair at its later time): about a quarter fewer entries. */
  #compact(): void {
    const live = this.#entries.slice(this.#head);
    const half = Math.floor(live.length / 2) & ~1;
    const out: HistoryEntry[] = [];
    for (let i = 0; i < half; i += 2) {
      const a = live[i] as HistoryEntry;
      const b = live[i + 1] as HistoryEntry;
      const load: Record<string, number> = { ...a.load };
      for (const k in b.load) load[k] = (Object.hasOwn(load, k) ? (load[k] as number) : 0) + (b.load[k] as number);
      out.push({ at: b.at, count: a.count + b.count, load });
    }
    for (let i = half; i < live.length; i++) out.push(live[i] as HistoryEntry);
    this.#entries = out;
    this.#head = 0;
  }

  encode(w: Writer, writeLoad: (w: Writer, load: LoadVector) => void): void {
    w.uint(this.size);
    for (const e of this) {
      w.uint(e.at);
      w.uint(e.count);
      writeLoad(w, e.load);
    }
  }

  static decode(r: Reader, retentionMs: number, maxEntries: number, readLoad: (r: Reader) => LoadVector): History {
    const h = new History(retentionMs, maxEntries);
    let last = 0;
    for (let n = r.count(); n > 0; n--) {
      const at = r.uint();
      if (at < last) throw new SnapshotError("history out of order");
      last = at;
      h.#entries.push({ at, count: r.uint(), load: readLoad(r) });
    }
    if (h.size > maxEntries) throw new SnapshotError("history longer than its bound");
    return h;
  }
}
