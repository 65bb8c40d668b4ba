import type { Entry, HardState, Snapshot } from "@ratequeue/raft";

/** What a node finds on its disk at start. */
export interface PersistedState {
  /** The latest durable snapshot, or null if none was ever taken or installed. */
  readonly snapshot: Snapshot | null;
  /** The latest durable hard state, or null on a brand-new data folder. */
  readonly hardState: HardState | null;
  /** Every durable entry after the snapshot, in index order, without gaps. */
  readonly entries: readonly Entry[];
}

/** One Ready's worth of writes, applied atomically and in this order. */
export interface LogWrite {
  /**
   * A snapshot installed from the leader: it replaces the whole stored log
   * (every stored entry is dropped), as Raft does when a follower installs one.
   */
  readonly snapshot?: Snapshot | null;
  /** Entries to append; any stored entry at or after `entries[0].index` is dropped first. */
  readonly entries?: readonly Entry[];
  readonly hardState?: HardState | null;
  /** When true, the write is durable (fsync) before the returned promise resolves. */
  readonly sync: boolean;
}

/**
 * The Raft log on disk: the node's write-ahead log, hard state and snapshots.
 *
 * Writes are applied in call order; each resolves only once it (and every
 * earlier write) is on disk, synced if asked. Nothing may be acknowledged to a
 * peer or a client before the write it depends on has resolved.
 */
export interface LogStore {
  load(): Promise<PersistedState>;
  write(write: LogWrite): Promise<void>;
  /**
   * Saves a snapshot the application took at `snapshot.meta.index` and drops
   * every entry up to and including that index, atomically and durably.
   */
  compact(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}

/** Thrown when stored data is inconsistent (a gap, a foreign data folder). */
export class StorageError extends Error {
  override readonly name = "StorageError";
  constructor(
    readonly code: "RQ_STORAGE_CORRUPT" | "RQ_STORAGE_FOREIGN" | "RQ_STORAGE_CLOSED",
    message: string,
  ) {
    super(message);
  }
}
