import type { Entry, HardState, Snapshot } from "@ratequeue/raft";
import { StorageError, type LogStore, type LogWrite, type PersistedState } from "./types.js";

/**
 * An in-memory {@link LogStore} with the same semantics as the LevelDB one.
 * It survives `close()`/`load()` cycles within one process (the state lives
 * in the object), which is what tests and the simulator need.
 */
export class MemoryStore implements LogStore {
  #snapshot: Snapshot | null = null;
  #hardState: HardState | null = null;
  #entries: Entry[] = [];
  #closed = false;

  async load(): Promise<PersistedState> {
    this.#closed = false;
    return { snapshot: this.#snapshot, hardState: this.#hardState, entries: [...this.#entries] };
  }

  async write(write: LogWrite): Promise<void> {
    this.#assertOpen();
    if (write.snapshot) {
      this.#snapshot = write.snapshot;
      this.#entries = [];
    }
    const entries = write.entries ?? [];
    const first = entries[0];
    if (first !== undefined) {
      const firstIndex = this.#firstIndex();
      const lastIndex = firstIndex + this.#entries.length - 1;
      if (first.index > lastIndex + 1 || first.index < firstIndex) {
        throw new StorageError(
          "RQ_STORAGE_CORRUPT",
          `append at ${first.index} leaves a gap or rewrites compacted entries (stored ${firstIndex}..${lastIndex})`,
        );
      }
      entries.forEach((e, i) => {
        if (e.index !== first.index + i) throw new StorageError("RQ_STORAGE_CORRUPT", "entries to append are not contiguous");
      });
      this.#entries = [...this.#entries.slice(0, first.index - firstIndex), ...entries];
    }
    if (write.hardState) this.#hardState = write.hardState;
  }

  async compact(snapshot: Snapshot): Promise<void> {
    this.#assertOpen();
    const firstIndex = this.#firstIndex();
    this.#entries = this.#entries.slice(Math.max(0, snapshot.meta.index + 1 - firstIndex));
    this.#snapshot = snapshot;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #firstIndex(): number {
    return this.#snapshot === null ? (this.#entries[0]?.index ?? 1) : this.#snapshot.meta.index + 1;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError("RQ_STORAGE_CLOSED", "store is closed");
  }
}
