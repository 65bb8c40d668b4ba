/**
 * The public data types of the Raft core. Everything here is plain data:
 * no classes, no functions, no Maps, so the simulator can deep-copy it and the
 * node can encode it on the wire and on disk.
 *
 * This file is the contract between `packages/raft`, the simulator
 * (`test/sim`) and the node (`packages/node`). Change it deliberately.
 */

/** A node's id, e.g. "n1". Never reused once a node has been removed. */
export type NodeId = string;

export type Role = "follower" | "candidate" | "precandidate" | "leader" | "learner";

/** What an entry carries. `normal` data is opaque to Raft. */
export type EntryType = "normal" | "confChange";

export interface Entry {
  /** 1-based log position. */
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /**
   * Opaque application bytes for `normal` entries (empty for the no-op a new
   * leader appends); an encoded {@link ConfChange} for `confChange` entries
   * (see `encodeConfChange` / `decodeConfChange`).
   */
  readonly data: Uint8Array;
}

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  /** Who this node voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Cluster membership. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Every id ever removed; such an id can never be added again. */
  readonly removed: readonly NodeId[];
}

/**
 * A single-server membership change. Only one may be pending (proposed but
 * not yet applied) at a time; a second is refused.
 */
export type ConfChange =
  | { readonly type: "addLearner"; readonly nodeId: NodeId }
  | { readonly type: "promote"; readonly nodeId: NodeId }
  | { readonly type: "remove"; readonly nodeId: NodeId };

export interface SnapshotMeta {
  /** The last log index the snapshot covers. */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's state machine bytes as of `meta.index`. */
  readonly data: Uint8Array;
}

/** A completed linearizable read: the caller may serve a read once `applied >= index`. */
export interface ReadState {
  readonly index: number;
  /** The caller's request context, as given to `readIndex`. */
  readonly context: Uint8Array;
}

/** Volatile state; reported in a Ready only when it changed. */
export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

/**
 * Everything the caller must do after a step. Obtain with `RawNode.ready()`,
 * then, in this order:
 *
 * 1. Send `messagesNow` at once. These are the leader's appends, heartbeats
 *    and snapshot chunks: the leader may write its own log in parallel with
 *    replicating it (Raft thesis 10.2.1) because it counts itself towards a
 *    quorum only after `advance()` reports its write durable.
 * 2. Persist `snapshot` (if any), then `entries` (which may overwrite a
 *    divergent suffix of the stored log: drop every stored entry with index
 *    >= entries[0].index first), then `hardState` (if any). When `mustSync`
 *    is true these writes must be durable (fsync) before step 3.
 * 3. Send `messagesAfterPersist`: votes, vote and append responses. They
 *    promise things about durable state, so they wait for step 2.
 * 4. Apply `snapshot` (if any) and then `committedEntries`, in order, to the
 *    state machine. Committed entries are always already durable locally.
 * 5. Call `advance()`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messagesNow: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/** Fields every message has. Messages are plain data. */
export interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (0 for local-only and proposal-forwarding messages). */
  readonly term: number;
}

// `Message` (the discriminated union of every message type, each extending
// MessageBase with a `type` field) is defined below by the core's author.
