import { RaftError, RaftErrorCode, assert } from "./errors.js";
import type { ConfState, Entry, HardState, NodeId, Snapshot } from "./types.js";

/**
 * What the core reads of the durable log. Synchronous: the node keeps its log
 * in memory, backed by its own disk (like etcd's MemoryStorage + WAL).
 *
 * Errors: a method that cannot answer throws a `RaftError` with code
 * - `RAFT_COMPACTED` when an index is below `firstIndex() - 1` (only a snapshot has it),
 * - `RAFT_UNAVAILABLE` when an index is above `lastIndex()`,
 * - `RAFT_SNAPSHOT_UNAVAILABLE` from `snapshot()` when none can be produced now.
 * Any other error is a storage failure and propagates out of the core.
 *
 * Ownership: returned arrays and entries are read only; the core never
 * mutates them, and the storage must not mutate them after returning them.
 */
export interface Storage {
  /**
   * The durable hard state and the membership as of `snapshot().meta.index`.
   * On start the core re-applies the conf change entries after that index up
   * to `RaftConfig.applied`.
   */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries [lo, hi), at most `maxBytes` of data but always at least one entry
   * when lo < hi. Throws COMPACTED if lo < firstIndex(), UNAVAILABLE if hi > lastIndex() + 1.
   */
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[];
  /** The term of entry `index`; valid for firstIndex() - 1 (the snapshot's index) to lastIndex(). */
  term(index: number): number;
  /** The first index still held as an entry (snapshot index + 1). */
  firstIndex(): number;
  /** The last index held (the snapshot's index when there are no entries). */
  lastIndex(): number;
  /** The most recent snapshot, to send to a follower behind the compaction point. */
  snapshot(): Snapshot;
}

const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [], removed: [] };
const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

/** The size of an entry as counted by every byte limit of the core. */
export function entrySizeBytes(entry: Entry): number {
  return entry.data.byteLength;
}

/**
 * The snapshot every founding member of a brand-new cluster starts from:
 * index 1, term 1, the initial voters, empty application data. Apply it to
 * each founder's empty storage before creating its `RawNode`; a node that
 * joins later starts from empty storage and receives a snapshot from the
 * leader.
 *
 * @example
 * const storage = new MemoryStorage();
 * storage.applySnapshot(bootstrapSnapshot({ voters: ["n1", "n2", "n3"] }));
 */
export function bootstrapSnapshot(options: { voters: readonly NodeId[] }): Snapshot {
  const voters = [...options.voters];
  if (voters.length === 0) throw new RaftError(RaftErrorCode.MISUSE, "bootstrapSnapshot: at least one voter is required");
  if (new Set(voters).size !== voters.length) {
    throw new RaftError(RaftErrorCode.MISUSE, "bootstrapSnapshot: voters must be distinct");
  }
  for (const id of voters) {
    if (typeof id !== "string" || id.length === 0) {
      throw new RaftError(RaftErrorCode.MISUSE, "bootstrapSnapshot: a voter id must be a non-empty string");
    }
  }
  return { meta: { index: 1, term: 1, confState: { voters, learners: [], removed: [] } }, data: new Uint8Array(0) };
}

/**
 * An in-memory `Storage` that also takes the writes a `Ready` asks for. The
 * simulator and tests use it directly; a node puts its disk log behind the
 * same interface.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = { meta: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) };
  /** The index and term of the last entry dropped by compaction (or covered by an installed snapshot). */
  private offsetIndex = 0;
  private offsetTerm = 0;
  /** ents[i] has index offsetIndex + 1 + i. */
  private ents: Entry[] = [];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.meta.confState };
  }

  firstIndex(): number {
    return this.offsetIndex + 1;
  }

  lastIndex(): number {
    return this.offsetIndex + this.ents.length;
  }

  term(index: number): number {
    const offset = this.offsetIndex;
    if (index < offset) throw new RaftError(RaftErrorCode.COMPACTED, `term(${index}): compacted (first index ${offset + 1})`);
    if (index === offset) return this.offsetTerm;
    const entry = this.ents[index - offset - 1];
    if (entry === undefined) {
      throw new RaftError(RaftErrorCode.UNAVAILABLE, `term(${index}): unavailable (last index ${this.lastIndex()})`);
    }
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    const offset = this.offsetIndex;
    if (lo <= offset) throw new RaftError(RaftErrorCode.COMPACTED, `entries(${lo}, ${hi}): compacted (first index ${offset + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftError(RaftErrorCode.UNAVAILABLE, `entries(${lo}, ${hi}): unavailable (last index ${this.lastIndex()})`);
    }
    if (lo >= hi) return [];
    return limitSize(this.ents, lo - offset - 1, hi - offset - 1, maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /**
   * Appends entries, first dropping every stored entry at or after
   * `entries[0].index` (a divergent suffix being overwritten). Entries already
   * compacted are ignored.
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i]!.index === first.index + i, "MemoryStorage.append: entries must be contiguous");
    }
    const offset = this.offsetIndex;
    const last = first.index + entries.length - 1;
    if (last <= offset) return;
    assert(first.index <= this.lastIndex() + 1, `MemoryStorage.append: gap (last ${this.lastIndex()}, got ${first.index})`);
    const skip = Math.max(0, offset + 1 - first.index);
    this.ents.length = first.index + skip - offset - 1;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]!);
  }

  /** Replaces the whole log by `snapshot` (one installed from the leader, or the bootstrap one). */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index < this.snap.meta.index) {
      throw new RaftError(
        RaftErrorCode.SNAPSHOT_OUT_OF_DATE,
        `applySnapshot: index ${snapshot.meta.index} is older than the stored snapshot ${this.snap.meta.index}`,
      );
    }
    this.snap = snapshot;
    this.offsetIndex = snapshot.meta.index;
    this.offsetTerm = snapshot.meta.term;
    this.ents = [];
    const hs = this.hardState;
    if (hs.commit < snapshot.meta.index || hs.term < snapshot.meta.term) {
      this.hardState = {
        term: Math.max(hs.term, snapshot.meta.term),
        vote: hs.term < snapshot.meta.term ? null : hs.vote,
        commit: Math.max(hs.commit, snapshot.meta.index),
      };
    }
  }

  /**
   * Records a snapshot the application took of its state at `index` (which it
   * has applied, so `confState` is the membership as of `index`). Entries are
   * kept; `compact` drops them.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) {
      throw new RaftError(RaftErrorCode.SNAPSHOT_OUT_OF_DATE, `createSnapshot: index ${index} is not after ${this.snap.meta.index}`);
    }
    if (index > this.lastIndex()) {
      throw new RaftError(RaftErrorCode.UNAVAILABLE, `createSnapshot: index ${index} is after the last index ${this.lastIndex()}`);
    }
    this.snap = { meta: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /**
   * Drops every entry up to and including `index`. `index` may not pass the
   * latest snapshot: a follower that needs a dropped entry gets the snapshot.
   */
  compact(index: number): void {
    if (index <= this.offsetIndex) {
      throw new RaftError(RaftErrorCode.SNAPSHOT_OUT_OF_DATE, `compact: index ${index} is already compacted`);
    }
    if (index > this.snap.meta.index) {
      throw new RaftError(
        RaftErrorCode.UNAVAILABLE,
        `compact: index ${index} is after the latest snapshot ${this.snap.meta.index}; createSnapshot first`,
      );
    }
    this.offsetTerm = this.term(index);
    this.ents = this.ents.slice(index - this.offsetIndex);
    this.offsetIndex = index;
  }
}

/** Returns list[lo, hi) cut to `maxBytes` of data, but never fewer than one entry. */
export function limitSize(list: readonly Entry[], lo: number, hi: number, maxBytes: number): Entry[] {
  const out: Entry[] = [];
  let bytes = 0;
  for (let i = lo; i < hi; i++) {
    const entry = list[i]!;
    bytes += entrySizeBytes(entry);
    if (out.length > 0 && bytes > maxBytes) break;
    out.push(entry);
  }
  return out;
}
