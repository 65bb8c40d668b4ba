import { ClassicLevel } from "classic-level";
import { Packr } from "msgpackr";
import type { Entry, HardState, Snapshot } from "@ratequeue/raft";
import { StorageError, type LogStore, type LogWrite, type PersistedState } from "./types.js";

/** Plain msgpack (no record structures): what is on disk must not depend on process state. */
const packr = new Packr({ useRecords: false, moreTypes: false });

const KEY_META = "meta";
const KEY_HARD_STATE = "hs";
const KEY_SNAPSHOT = "snap";
const ENTRY_PREFIX = "e/";
/** 16 hex digits keep lexicographic order equal to numeric order for every safe integer. */
const entryKey = (index: number): string => ENTRY_PREFIX + index.toString(16).padStart(16, "0");
const ENTRY_RANGE = { gte: ENTRY_PREFIX, lt: "e0" } as const;

type Op = { type: "put"; key: string; value: Uint8Array } | { type: "del"; key: string };

export interface LevelStoreOptions {
  /** The data folder. */
  readonly path: string;
  /** This node's id: a data folder written by another node is refused. */
  readonly nodeId: string;
}

/** Writes that go to LevelDB in one batch (group commit), and the promise every one of them gets. */
interface Group {
  readonly ops: Op[];
  sync: boolean;
  done: Promise<void>;
}

/**
 * The Raft log on LevelDB (classic-level). Writes are atomic batches, written
 * with `sync: true` when the caller asks for durability. One batch is in
 * flight at a time; the writes called meanwhile wait and then go together in
 * the next batch (group commit: one fsync for all of them, synced if any asked
 * for it), so a node that keeps handing out Readies while its disk works pays
 * one fsync per disk round trip, not one per Ready.
 */
export class LevelStore implements LogStore {
  readonly #db: ClassicLevel<string, Uint8Array>;
  readonly #nodeId: string;
  /** Stored entry range, kept in memory so appends and compaction know what to delete. */
  #firstIndex = 1;
  #lastIndex = 0;
  #tail: Promise<void> = Promise.resolve();
  /** The batch that writes called now join; it starts once the batch before it is done. */
  #next: Group | null = null;
  #closed = false;
  #clusterId: string | null = null;

  constructor(options: LevelStoreOptions) {
    this.#db = new ClassicLevel<string, Uint8Array>(options.path, { keyEncoding: "utf8", valueEncoding: "view" });
    this.#nodeId = options.nodeId;
  }

  async load(): Promise<PersistedState> {
    await this.#db.open();
    const meta = await this.#db.get(KEY_META);
    if (meta === undefined) {
      await this.#db.put(KEY_META, packr.pack({ nodeId: this.#nodeId }), { sync: true });
    } else {
      const { nodeId, clusterId } = packr.unpack(meta) as { nodeId: string; clusterId?: string };
      if (nodeId !== this.#nodeId) {
        throw new StorageError("RQ_STORAGE_FOREIGN", `data folder belongs to node ${nodeId}, not ${this.#nodeId}`);
      }
      this.#clusterId = clusterId ?? null;
    }
    const hsBytes = await this.#db.get(KEY_HARD_STATE);
    const hardState = hsBytes === undefined ? null : (packr.unpack(hsBytes) as HardState);
    const snapBytes = await this.#db.get(KEY_SNAPSHOT);
    const snapshot = snapBytes === undefined ? null : decodeSnapshot(snapBytes);
    const entries: Entry[] = [];
    for await (const [, value] of this.#db.iterator(ENTRY_RANGE)) entries.push(decodeEntry(value));
    const expectedFirst = snapshot === null ? (entries[0]?.index ?? 1) : snapshot.meta.index + 1;
    entries.forEach((e, i) => {
      if (e.index !== expectedFirst + i) {
        throw new StorageError("RQ_STORAGE_CORRUPT", `log gap: expected entry ${expectedFirst + i}, found ${e.index}`);
      }
    });
    this.#firstIndex = expectedFirst;
    this.#lastIndex = expectedFirst + entries.length - 1;
    return { snapshot, hardState, entries };
  }

  /**
   * The id of the cluster this data folder belongs to, as last recorded (read by `load()`), or null when it was
   * never recorded: a new folder, or a cluster that has not committed its id yet.
   */
  get clusterId(): string | null {
    return this.#clusterId;
  }

  /**
   * Records (durably, in order with the log writes) the cluster this folder belongs to, or forgets it (null: an
   * offline rewrite that makes a new cluster). The peer handshake announces it from the next start on, before the
   * log is replayed.
   */
  recordClusterId(clusterId: string | null): Promise<void> {
    this.#clusterId = clusterId;
    const meta = clusterId === null ? { nodeId: this.#nodeId } : { nodeId: this.#nodeId, clusterId };
    return this.#enqueue([{ type: "put", key: KEY_META, value: packr.pack(meta) }], true);
  }

  async write(write: LogWrite): Promise<void> {
    const ops: Op[] = [];
    if (write.snapshot) {
      this.#deleteRange(ops, this.#firstIndex, this.#lastIndex);
      ops.push({ type: "put", key: KEY_SNAPSHOT, value: encodeSnapshot(write.snapshot) });
      this.#firstIndex = write.snapshot.meta.index + 1;
      this.#lastIndex = write.snapshot.meta.index;
    }
    const entries = write.entries ?? [];
    const first = entries[0];
    if (first !== undefined) {
      if (first.index > this.#lastIndex + 1 || first.index < this.#firstIndex) {
        throw new StorageError(
          "RQ_STORAGE_CORRUPT",
          `append at ${first.index} leaves a gap or rewrites compacted entries (stored ${this.#firstIndex}..${this.#lastIndex})`,
        );
      }
      this.#deleteRange(ops, first.index, this.#lastIndex);
      entries.forEach((e, i) => {
        if (e.index !== first.index + i) throw new StorageError("RQ_STORAGE_CORRUPT", "entries to append are not contiguous");
        ops.push({ type: "put", key: entryKey(e.index), value: encodeEntry(e) });
      });
      this.#lastIndex = first.index + entries.length - 1;
    }
    if (write.hardState) ops.push({ type: "put", key: KEY_HARD_STATE, value: packr.pack(write.hardState) });
    await this.#enqueue(ops, write.sync);
  }

  compact(snapshot: Snapshot): Promise<void> {
    const ops: Op[] = [{ type: "put", key: KEY_SNAPSHOT, value: encodeSnapshot(snapshot) }];
    const upTo = Math.min(snapshot.meta.index, this.#lastIndex);
    this.#deleteRange(ops, this.#firstIndex, upTo);
    this.#firstIndex = Math.max(this.#firstIndex, snapshot.meta.index + 1);
    if (this.#lastIndex < snapshot.meta.index) this.#lastIndex = snapshot.meta.index;
    return this.#enqueue(ops, true);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail.catch(() => undefined);
    await this.#db.close();
  }

  #deleteRange(ops: Op[], from: number, to: number): void {
    for (let i = from; i <= to; i++) ops.push({ type: "del", key: entryKey(i) });
  }

  /**
   * Batches run strictly in call order, one at a time; a write resolves when the batch holding it is on disk.
   * A failed batch fails every later write (the node must stop).
   */
  #enqueue(ops: Op[], sync: boolean): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageError("RQ_STORAGE_CLOSED", "store is closed"));
    let group = this.#next;
    if (group === null) {
      const created: Group = { ops: [], sync: false, done: Promise.resolve() };
      created.done = this.#tail.then(() => {
        // From here on, writes join the next group.
        if (this.#next === created) this.#next = null;
        return created.ops.length === 0 ? undefined : this.#db.batch(created.ops, { sync: created.sync });
      });
      this.#tail = created.done;
      this.#next = created;
      group = created;
    }
    for (const op of ops) group.ops.push(op);
    group.sync ||= sync;
    return group.done;
  }
}

function encodeEntry(e: Entry): Uint8Array {
  return packr.pack([e.index, e.term, e.type === "normal" ? 0 : 1, e.data]);
}

function decodeEntry(bytes: Uint8Array): Entry {
  const [index, term, type, data] = packr.unpack(bytes) as [number, number, number, Uint8Array];
  return { index, term, type: type === 0 ? "normal" : "confChange", data: new Uint8Array(data) };
}

function encodeSnapshot(s: Snapshot): Uint8Array {
  return packr.pack({ meta: s.meta, data: s.data });
}

function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const s = packr.unpack(bytes) as { meta: Snapshot["meta"]; data: Uint8Array };
  return { meta: s.meta, data: new Uint8Array(s.data) };
}
