import type { Entry, HardState, Snapshot, SnapshotMeta } from "@ratequeue/raft";

/** A read-only view of one node's log, the only way checkers see a log. */
export interface LogView {
  /** The snapshot's meta, or null when the log starts at index 1. */
  readonly snapshotMeta: SnapshotMeta | null;
  readonly hardState: HardState | null;
  /** The index of the last entry (or of the snapshot when no entry follows it). */
  lastIndex(): number;
  /** The term at `index`: an entry's, the snapshot's at its own index, 0 at index 0, undefined otherwise. */
  termAt(index: number): number | undefined;
  /** The entry at `index`, or undefined if compacted or beyond the end. */
  entryAt(index: number): Entry | undefined;
}

/** What a record may do to a stored log. */
export type LogChange =
  /** Entries to append; every stored entry at or after entries[0].index is dropped first. */
  | { readonly type: "entries"; readonly entries: readonly Entry[] }
  | { readonly type: "hardState"; readonly hardState: HardState }
  /** A snapshot installed from the leader: it replaces the whole stored log. */
  | { readonly type: "installSnapshot"; readonly snapshot: Snapshot }
  /** A snapshot this node took: entries up to its index are dropped, later ones kept. */
  | { readonly type: "compact"; readonly snapshot: Snapshot };

export class LogStateError extends Error {
  override readonly name = "LogStateError";
}

/**
 * The log a sequence of changes describes: used for a node's WAL recovery,
 * and as the simulator's mirror of what each node stored (volatile) and what
 * would survive a crash (durable). Throws on a gap: a log that loses entries
 * must never be replayed.
 */
export class LogState implements LogView {
  #snapshot: Snapshot | null = null;
  #hardState: HardState | null = null;
  /** entries[k] has index snapshotIndex + 1 + k. */
  #entries: Entry[] = [];

  get snapshot(): Snapshot | null {
    return this.#snapshot;
  }

  get snapshotMeta(): SnapshotMeta | null {
    return this.#snapshot?.meta ?? null;
  }

  get hardState(): HardState | null {
    return this.#hardState;
  }

  get entries(): readonly Entry[] {
    return this.#entries;
  }

  lastIndex(): number {
    return this.#offset() + this.#entries.length;
  }

  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    const offset = this.#offset();
    if (index === offset) return this.#snapshot?.meta.term;
    return this.#entries[index - offset - 1]?.term;
  }

  entryAt(index: number): Entry | undefined {
    return index > this.#offset() ? this.#entries[index - this.#offset() - 1] : undefined;
  }

  apply(change: LogChange): void {
    switch (change.type) {
      case "hardState":
        this.#hardState = change.hardState;
        return;
      case "installSnapshot":
        this.#snapshot = change.snapshot;
        this.#entries = [];
        return;
      case "compact": {
        const index = change.snapshot.meta.index;
        if (index < this.#offset()) throw new LogStateError(`compact to ${index} behind snapshot ${this.#offset()}`);
        if (index > this.lastIndex()) throw new LogStateError(`compact to ${index} beyond last index ${this.lastIndex()}`);
        this.#entries.splice(0, index - this.#offset());
        this.#snapshot = change.snapshot;
        return;
      }
      case "entries": {
        const offset = this.#offset();
        // Entries the snapshot already covers are skipped, as Raft storage does.
        const entries = change.entries[0] !== undefined && change.entries[0].index <= offset ? change.entries.filter((e) => e.index > offset) : change.entries;
        const head = entries[0];
        if (head === undefined) return;
        if (head.index > this.lastIndex() + 1) {
          throw new LogStateError(`entries at ${head.index} leave a gap (stored ${offset + 1}..${this.lastIndex()})`);
        }
        entries.forEach((e, i) => {
          if (e.index !== head.index + i) throw new LogStateError(`entries not contiguous at ${e.index}`);
        });
        this.#entries.length = head.index - offset - 1;
        for (const e of entries) this.#entries.push(e);
        return;
      }
    }
  }

  #offset(): number {
    return this.#snapshot?.meta.index ?? 0;
  }
}
