import { Packr } from "msgpackr";
import type { Command } from "@ratequeue/limiter";
import type { StoredKey } from "../state/keys.js";

/** A limiter command as it travels in the log: the entry's stamp supplies `at`. */
export type LimiterCommand = Command extends infer C ? (C extends Command ? Omit<C, "at"> : never) : never;

/**
 * One operation in a log entry. `pid` (proposal id) lets the node that
 * proposed it recognise it when applied and answer whoever is waiting.
 */
export type Op =
  | {
      readonly t: "limiter";
      readonly cmd: LimiterCommand;
      readonly pid?: string;
      /** With openSession: the id of the API key that owns the session. */
      readonly owner?: string;
    }
  | { readonly t: "keyAdd"; readonly key: StoredKey; readonly pid?: string }
  /**
   * Revokes a key: the sessions it opened end (their leases are released, their waiting requests dropped). Refused
   * (an error effect, nothing changes) when it would remove the table's last admin key.
   */
  | { readonly t: "keyRemove"; readonly id: string; readonly pid?: string }
  /**
   * The bootstrap admin key (`--admin-key`), proposed by a leader that holds one. Added only if the table holds no
   * admin key, so it seeds the table once; after that the table is the only authority (a node whose flag differs
   * warns, its flag grants nothing).
   */
  | { readonly t: "adminSeed"; readonly key: StoredKey; readonly pid?: string }
  /**
   * A member's address (host:port, where peers and clients reach it). Proposed before the member is added, so
   * every node can dial it once the conf change applies; a node restarted without flags finds it in its state.
   */
  | { readonly t: "memberAddress"; readonly id: string; readonly address: string; readonly pid?: string }
  /**
   * The cluster's identity, proposed by a leader whose state holds none (a new cluster's first leader, or the
   * first leader after a restore or a force-recover). Applied only while the state holds none, so the first one
   * committed is the cluster's id for good.
   */
  | { readonly t: "clusterId"; readonly id: string; readonly pid?: string }
  /**
   * The config file's resources and keys, applied by the first leader of a
   * new cluster. Applied only if the cluster was never bootstrapped, so a
   * later leader proposing it again changes nothing.
   */
  | { readonly t: "bootstrap"; readonly ops: readonly Op[]; readonly pid?: string };

/** A normal Raft entry's payload: the leader's stamp and the operations it batches. */
export interface EntryPayload {
  /** The proposing leader's clock in ms (never lower than its previous stamp). */
  readonly at: number;
  readonly ops: readonly Op[];
}

/** Plain MessagePack: replicated bytes (log entries, state snapshots) must not depend on any per-process encoder state. */
const packr = new Packr({ useRecords: false, moreTypes: false });

/**
 * `value` as plain MessagePack, in a buffer of its own. msgpackr packs every value, for every Packr in the process
 * (client frames, peer frames, snapshots), into one shared buffer and returns a view of it; once a large frame has
 * grown that buffer (a slow reader's answers: about 1.7 MB), every view keeps the whole buffer alive. Entries stay in
 * the in-memory log until compaction and a snapshot until the next one, so as views they held megabytes each: the
 * leader retained 25-37 MB of buffers per fuzz-live round for about 1 MB of entries (test/fuzz-live, README
 * "Memory"). A copy costs one small allocation.
 */
export function packPlain(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value));
}

/** The inverse of packPlain. */
export function unpackPlain(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

export function encodePayload(payload: EntryPayload): Uint8Array {
  return packPlain(payload);
}

/**
 * Decodes an entry payload. Entries were validated before they were
 * proposed, so a payload that fails here means a corrupt log: the caller
 * must stop the node rather than guess.
 */
export function decodePayload(bytes: Uint8Array): EntryPayload {
  const value = unpackPlain(bytes) as EntryPayload;
  if (typeof value !== "object" || value === null || typeof value.at !== "number" || !Array.isArray(value.ops)) {
    throw new Error("corrupt log entry payload");
  }
  return value;
}
