import type { Entry } from "@ratequeue/raft";
import { StorageError, type LogStore, type LogWrite, type PersistedState } from "@ratequeue/node/testing";
import { LogState, LogStateError } from "../raft-sim/log-state.js";
import type { SimDisk } from "../raft-sim/sim-disk.js";
import { appendRecord, recover } from "../raft-sim/wal.js";

/**
 * When a store operation completes: `delayMs` of simulated time, then `done`.
 * The simulator puts it on its event queue (so an fsync takes simulated time
 * and a crash in between loses it); the conformance test resolves at once.
 */
export type DiskScheduler = (delayMs: number, done: () => void) => void;

export interface SimLogStoreOptions {
  readonly disk: SimDisk;
  readonly schedule: DiskScheduler;
  /** Simulated fsync latency, drawn per synced write (ms). */
  readonly syncLatencyMs: () => number;
  /**
   * The simulator's record of what each node stored: every append as it is written (the stored suffix from
   * its first index is replaced), and `null` when an installed snapshot replaced the whole log.
   */
  readonly onEntries?: (entries: readonly Entry[] | null) => void;
  /** Sabotage for the simulator's own tests: report synced writes as durable without syncing them. */
  readonly lieAboutSync?: boolean;
}

/**
 * The node's {@link LogStore} on a simulated disk: the simulator's WAL
 * (checksummed frames; recovery cuts a torn tail) behind the same interface
 * LevelStore implements, so NodeCore runs unchanged. Writes are buffered on
 * the disk and become durable only when synced; a crash of the SimDisk loses
 * what was not, exactly the failure the real store must survive.
 *
 * Completions keep call order: a write resolves only after every earlier one.
 */
export class SimLogStore implements LogStore {
  readonly #o: SimLogStoreOptions;
  /** The log as written so far (volatile view), to refuse a gap before it reaches the disk. */
  #mirror = new LogState();
  #closed = true;
  /** Completion order: each operation resolves after the previous one. */
  #tail: Promise<void> = Promise.resolve();

  constructor(options: SimLogStoreOptions) {
    this.#o = options;
  }

  async load(): Promise<PersistedState> {
    const { log } = recover(this.#o.disk);
    this.#mirror = log;
    this.#closed = false;
    // After a crash the log is what the disk kept, not what was last written.
    this.#o.onEntries?.(null);
    if (log.entries.length > 0) this.#o.onEntries?.(log.entries);
    return { snapshot: log.snapshot, hardState: log.hardState, entries: [...log.entries] };
  }

  write(write: LogWrite): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("RQ_STORAGE_CLOSED", "store is closed"));
    const entries = write.entries ?? [];
    try {
      // Check first: a refused write must change nothing, on disk or in the mirror.
      if (entries.length > 0) this.#checkAppend(entries, write.snapshot?.meta.index ?? null);
    } catch (err) {
      return Promise.reject(err);
    }
    const disk = this.#o.disk;
    if (write.snapshot) {
      this.#o.onEntries?.(null);
      this.#mirror.apply({ type: "installSnapshot", snapshot: write.snapshot });
      appendRecord(disk, { type: "installSnapshot", snapshot: write.snapshot });
    }
    if (entries.length > 0) {
      this.#mirror.apply({ type: "entries", entries });
      appendRecord(disk, { type: "entries", entries });
      this.#o.onEntries?.(entries);
    }
    if (write.hardState) {
      this.#mirror.apply({ type: "hardState", hardState: write.hardState });
      appendRecord(disk, { type: "hardState", hardState: write.hardState });
    }
    return write.sync ? this.#complete(this.#o.syncLatencyMs(), true) : this.#complete(0, false);
  }

  compact(snapshot: Parameters<LogStore["compact"]>[0]): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("RQ_STORAGE_CLOSED", "store is closed"));
    try {
      this.#mirror.apply({ type: "compact", snapshot });
    } catch (err) {
      return Promise.reject(toStorageError(err));
    }
    appendRecord(this.#o.disk, { type: "compact", snapshot });
    return this.#complete(this.#o.syncLatencyMs(), true);
  }

  /** A clean close: the OS keeps the page cache, so nothing written is lost (only a crash of the disk loses data). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#o.disk.sync();
  }

  /** `snapshotIndex`: a snapshot installed by the same write, which replaces the stored log first. */
  #checkAppend(entries: readonly Entry[], snapshotIndex: number | null): void {
    const first = entries[0]!;
    const firstIndex = (snapshotIndex ?? this.#mirror.snapshotMeta?.index ?? 0) + 1;
    const lastIndex = snapshotIndex ?? this.#mirror.lastIndex();
    if (first.index > lastIndex + 1 || first.index < firstIndex) {
      throw new StorageError("RQ_STORAGE_CORRUPT", `append at ${first.index} leaves a gap or rewrites compacted entries (stored ${firstIndex}..${lastIndex})`);
    }
    entries.forEach((e, i) => {
      if (e.index !== first.index + i) throw new StorageError("RQ_STORAGE_CORRUPT", "entries to append are not contiguous");
    });
  }

  /**
   * The write is durable when the fsync completes, `delayMs` later: the disk syncs then, not at the call, so a
   * crash in between loses it (unless the OS flushed it anyway: SimDisk's flush fault).
   */
  #complete(delayMs: number, sync: boolean): Promise<void> {
    const previous = this.#tail;
    const done = new Promise<void>((resolve) =>
      this.#o.schedule(delayMs, () => {
        if (sync && this.#o.lieAboutSync !== true) this.#o.disk.sync();
        resolve();
      }),
    );
    this.#tail = Promise.all([previous, done]).then(() => undefined);
    return this.#tail;
  }
}

function toStorageError(err: unknown): unknown {
  return err instanceof LogStateError ? new StorageError("RQ_STORAGE_CORRUPT", err.message) : err;
}
