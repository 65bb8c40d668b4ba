import { RaftError, RaftErrorCode, assert } from "./errors.js";
import { limitSize, type Storage } from "./storage.js";
import type { Entry, Snapshot } from "./types.js";

/**
 * The node's view of the Raft log: the durable part read from `Storage`, plus
 * the unstable tail (and possibly an unstable snapshot) not yet handed out for
 * persistence or not yet reported durable by `advance()`.
 *
 * Invariants: committed <= lastIndex(); applied <= committed;
 * unstable[i].index === unstableOffset + i.
 */
export class RaftLog {
  /** A snapshot received from the leader, not yet durable. */
  unstableSnapshot: Snapshot | null = null;
  /** Entries not yet durable; unstable[0] has index `unstableOffset`. */
  unstable: Entry[] = [];
  unstableOffset: number;
  /**
   * Asynchronous writes: unstable entries below this index were handed out for writing (and are in flight); a
   * Ready hands out only those at or above it. Always in [unstableOffset, lastIndex() + 1] when no snapshot is
   * unstable.
   */
  offsetInProgress: number;
  /** Asynchronous writes: the unstable snapshot was handed out for writing. */
  snapshotInProgress = false;
  committed: number;
  /** Highest index the application has applied (reported through `advance()`). */
  applied: number;
  /** Highest index handed out for apply (committed entries or a snapshot). */
  applying: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    this.unstableOffset = storage.lastIndex() + 1;
    this.offsetInProgress = this.unstableOffset;
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1;
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Last index durable locally (handed out and reported by `advance()`). */
  lastStableIndex(): number {
    return this.unstableOffset - 1;
  }

  /** The term of entry `index`, or undefined when it is compacted or beyond the log. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    const snap = this.unstableSnapshot;
    if (snap !== null) {
      if (index === snap.meta.index) return snap.meta.term;
      if (index < snap.meta.index) return undefined;
    }
    if (index >= this.unstableOffset) return this.unstable[index - this.unstableOffset]?.term;
    if (snap !== null) return undefined;
    if (index < this.storage.firstIndex() - 1) return undefined;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (isUnavailable(error)) return undefined;
      throw error;
    }
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "the last entry always has a term");
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft 5.4.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends `entries` received after (prevIndex, prevTerm) when the log
   * matches there. Returns the index of the last new entry, or null on a
   * mismatch (the leader must back off).
   */
  maybeAppend(options: { prevIndex: number; prevTerm: number; commit: number; entries: readonly Entry[] }): number | null {
    const { prevIndex, prevTerm, commit, entries } = options;
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      // Log Matching: a conflicting entry can only be an uncommitted one.
      assert(conflict > this.committed, `conflict at ${conflict} is at or below commit ${this.committed}`);
      this.append(entries.slice(conflict - prevIndex - 1));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /**
   * The index of the first entry of `entries` that is not in the log, or
   * whose term differs from the log's (a divergent tail); 0 when all are present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * For fast back-off: the largest index <= `index` whose term is <= `term`
   * (or the first index whose term is unknown). Entries above it cannot match
   * a log whose entry at `index` has term `term`.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) break;
    }
    return i;
  }

  /** Appends to the unstable tail, overwriting any entries at or after entries[0].index. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index > this.committed, `append at ${first.index} would overwrite committed ${this.committed}`);
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    if (first.index === this.unstableOffset + this.unstable.length) {
      for (const entry of entries) this.unstable.push(entry);
    } else if (first.index <= this.unstableOffset) {
      // The new entries replace part of the durable log: it is rewritten from here.
      this.unstableOffset = first.index;
      this.unstable = [...entries];
    } else {
      this.unstable.length = first.index - this.unstableOffset;
      for (const entry of entries) this.unstable.push(entry);
    }
    // Entries from first.index on are new: they need writing even if older ones at those indexes are in flight.
    this.offsetInProgress = Math.max(this.unstableOffset, Math.min(this.offsetInProgress, first.index));
  }

  /** Asynchronous writes: the unstable entries not yet handed out for writing. */
  entriesToPersist(): Entry[] {
    return this.unstable.slice(this.offsetInProgress - this.unstableOffset);
  }

  /** Asynchronous writes: everything unstable has been handed out for writing. */
  acceptInProgress(): void {
    this.offsetInProgress = this.unstableOffset + this.unstable.length;
    this.snapshotInProgress = this.unstableSnapshot !== null;
  }

  /** Asynchronous writes: something unstable was not handed out for writing yet. */
  hasUnhandedWrites(): boolean {
    return this.offsetInProgress < this.unstableOffset + this.unstable.length || (this.unstableSnapshot !== null && !this.snapshotInProgress);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} is beyond the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /**
   * Entries [lo, hi) with at most `maxBytes` of data (but at least one).
   * Throws `RAFT_COMPACTED` when lo is below the first index.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new RaftError(RaftErrorCode.COMPACTED, `slice(${lo}): compacted`);
    assert(hi <= this.lastIndex() + 1, `slice(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    let out: Entry[] = [];
    if (lo < this.unstableOffset) {
      const stored = this.storage.entries(lo, Math.min(hi, this.unstableOffset), maxBytes);
      out = [...stored];
      if (out.length < Math.min(hi, this.unstableOffset) - lo) return out;
    }
    if (hi > this.unstableOffset) {
      const from = Math.max(lo, this.unstableOffset) - this.unstableOffset;
      let bytes = 0;
      for (const entry of out) bytes += entry.data.byteLength;
      const rest = limitSize(this.unstable, from, hi - this.unstableOffset, Math.max(0, maxBytes - bytes));
      if (out.length === 0) return rest;
      // limitSize always keeps one entry; drop it when the stored part already filled the budget.
      for (const entry of rest) {
        bytes += entry.data.byteLength;
        if (bytes > maxBytes) break;
        out.push(entry);
      }
    }
    return out;
  }

  /**
   * The highest index that may be handed out for apply. With `durableOnly` (asynchronous writes) only what is
   * durable locally: a write in flight may still be lost in a crash. Otherwise every committed entry (the caller
   * writes a Ready's entries before it applies its committed ones).
   */
  maxAppliable(durableOnly: boolean): number {
    return durableOnly ? Math.min(this.committed, this.lastStableIndex()) : this.committed;
  }

  /** Entries committed (and, with `durableOnly`, durable locally) and not yet handed out for apply. */
  hasNextCommittedEntries(durableOnly = false): boolean {
    return this.maxAppliable(durableOnly) > this.applying;
  }

  nextCommittedEntries(maxBytes: number, durableOnly = false): Entry[] {
    if (!this.hasNextCommittedEntries(durableOnly)) return [];
    return this.slice(this.applying + 1, this.maxAppliable(durableOnly) + 1, maxBytes);
  }

  /** The entries up to (index, term) are durable. Ignored when the tail was rewritten meanwhile. */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset) return;
    const entry = this.unstable[index - this.unstableOffset];
    if (entry === undefined || entry.term !== term) return;
    this.unstable = this.unstable.slice(index - this.unstableOffset + 1);
    this.unstableOffset = index + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.unstableOffset);
  }

  stableSnapTo(index: number): void {
    if (this.unstableSnapshot !== null && this.unstableSnapshot.meta.index === index) {
      this.unstableSnapshot = null;
      this.snapshotInProgress = false;
    }
  }

  /** Replaces the log by a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, "restore: snapshot must be ahead of commit");
    this.unstableSnapshot = snapshot;
    this.unstable = [];
    this.unstableOffset = snapshot.meta.index + 1;
    this.offsetInProgress = this.unstableOffset;
    this.snapshotInProgress = false;
    this.committed = snapshot.meta.index;
    this.applying = snapshot.meta.index;
  }
}

function isUnavailable(error: unknown): boolean {
  return error instanceof RaftError && (error.code === RaftErrorCode.COMPACTED || error.code === RaftErrorCode.UNAVAILABLE);
}
