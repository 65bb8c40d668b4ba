/**
 * The public data types of the Raft core. Everything here is plain data:
 * no classes, no functions, no Maps, so the simulator can deep-copy it and the
 * node can encode it on the wire and on disk.
 *
 * This file is the contract between `packages/raft`, the simulator
 * (`test/raft-sim`) and the node (`packages/node`). Change it deliberately.
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
 *
 * With `asyncStorageWrites` the caller does not wait for the disk:
 *
 * 1. Send `messagesNow` at once.
 * 2. Start the write of `snapshot`, `entries`, `hardState` (as above; synced
 *    when `mustSync`). Writes must become durable in the order they were
 *    started. Do not wait for it, unless the Ready has a `snapshot`: that is
 *    applied only once its write is durable.
 * 3. Apply `snapshot` and `committedEntries` (Raft hands out only entries that
 *    earlier writes made durable locally), serve `readStates`, `advance()`.
 *    The next Ready may be taken now, with this write still in flight.
 * 4. When this Ready's write and every earlier one are durable (at once if
 *    there is nothing to write and nothing in flight): send
 *    `messagesAfterPersist` and call `persisted(persistId)`. A crash loses the
 *    writes in flight; nothing was promised about them.
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
  /**
   * Asynchronous writes (`asyncStorageWrites`): the id to pass to `persisted()` once this Ready's write, and every
   * earlier one, is durable. Every such Ready has one, even with nothing to write: its `messagesAfterPersist`
   * still wait for the writes before it. 0 when writes are synchronous.
   */
  readonly persistId: number;
}

/** Fields every message has. Messages are plain data. */
export interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (0 for local-only and proposal-forwarding messages). */
  readonly term: number;
}

/**
 * Leader -> follower: entries to append after (prevIndex, prevTerm), and the
 * leader's commit index. An empty `entries` carries only the commit index.
 */
export interface AppendMessage extends MessageBase {
  readonly type: "append";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Follower -> leader. On success `index` is the last index now known to match
 * the leader's log (durable, since this message waits for persistence). On
 * rejection `index` is the rejected `prevIndex` and (hintIndex, hintTerm) is
 * the follower's guess for fast back-off: the largest index at or below
 * `prevIndex` whose term is at most the leader's `prevTerm`, and its term.
 */
export interface AppendResponseMessage extends MessageBase {
  readonly type: "appendResponse";
  readonly reject: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/**
 * Candidate -> voter. For `preVote` the term is the term the sender would
 * campaign in (its term + 1); the sender's own term is unchanged. `transfer`
 * is set when the campaign follows a leadership transfer (`timeoutNow`): such
 * a request is answered even by a node that hears from a live leader.
 */
export interface VoteRequestMessage extends MessageBase {
  readonly type: "vote" | "preVote";
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly transfer: boolean;
}

/**
 * Voter -> candidate. `commit` and `commitTerm` are the voter's commit index
 * and the term of that entry: a candidate whose log holds the same entry
 * holds the same committed prefix (Log Matching) and may commit up to it. This
 * lets a node that missed a commit (say, of a conf change removing the old
 * leader) learn it from whoever answers its campaign, instead of waiting for
 * a vote that configuration change made impossible.
 */
export interface VoteResponseMessage extends MessageBase {
  readonly type: "voteResponse" | "preVoteResponse";
  readonly reject: boolean;
  readonly commit: number;
  readonly commitTerm: number;
}

/**
 * Leader -> member. `commit` is at most what the receiver is known to hold.
 * `readSeq` is the leader's latest ReadIndex round (0 when none); the answer
 * echoes it so the leader knows which reads a quorum has confirmed.
 */
export interface HeartbeatMessage extends MessageBase {
  readonly type: "heartbeat";
  readonly commit: number;
  readonly readSeq: number;
}

export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: "heartbeatResponse";
  readonly readSeq: number;
}

/**
 * Leader -> follower behind the compaction point: one chunk of a snapshot.
 * Chunks of one snapshot share `meta` and `totalBytes`; `data` holds bytes
 * [offset, offset + data.length) of the snapshot data; `last` marks the chunk
 * that ends at `totalBytes`.
 */
export interface SnapshotMessage extends MessageBase {
  readonly type: "snapshot";
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly data: Uint8Array;
  readonly last: boolean;
}

/**
 * Follower -> leader after a chunk that did not complete the snapshot: the
 * offset the follower expects next (0 asks for a restart). A completed
 * snapshot is answered with an `appendResponse` instead.
 */
export interface SnapshotResponseMessage extends MessageBase {
  readonly type: "snapshotResponse";
  readonly index: number;
  readonly nextOffset: number;
}

/** Leader -> transferee: campaign now, without waiting for a timeout. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: "timeoutNow";
}

/** Follower -> leader: proposals forwarded by a follower (term 0). */
export interface ProposeMessage extends MessageBase {
  readonly type: "propose";
  readonly data: readonly Uint8Array[];
}

/** Follower -> leader: a linearizable read request (term 0). */
export interface ReadIndexMessage extends MessageBase {
  readonly type: "readIndex";
  readonly context: Uint8Array;
}

/** Leader -> follower: the read index for a forwarded `readIndex`. */
export interface ReadIndexResponseMessage extends MessageBase {
  readonly type: "readIndexResponse";
  readonly index: number;
  readonly context: Uint8Array;
}

/** Follower -> leader: please transfer leadership to `transferee` (term 0). */
export interface TransferLeaderMessage extends MessageBase {
  readonly type: "transferLeader";
  readonly transferee: NodeId;
}

/** Every message the core sends or accepts. Plain data only. */
export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteRequestMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | SnapshotResponseMessage
  | TimeoutNowMessage
  | ProposeMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TransferLeaderMessage;

export type MessageType = Message["type"];

/** Why a proposal, conf change, read or transfer was refused. */
export type RefusalCode =
  /** This node is not the leader; `leader` says who is (forwarding is off, or the request cannot be forwarded). */
  | "NOT_LEADER"
  /** No leader is known right now (an election is under way); retry later. */
  | "NO_LEADER"
  /** A leadership transfer is in progress; proposals wait until it ends. */
  | "TRANSFERRING"
  /** The leader's uncommitted entries exceed `maxUncommittedEntriesBytes`; retry once some commit. */
  | "TOO_MANY_UNCOMMITTED"
  /** Another conf change is proposed and not yet applied; only one at a time. */
  | "CONF_CHANGE_PENDING"
  /** The node id was removed before; ids are never reused. */
  | "NODE_ID_REMOVED"
  /** The conf change does not fit the membership (adding a member twice, promoting a voter, ...). */
  | "INVALID_CONF_CHANGE"
  /** The transfer target is this leader itself or not a voter. */
  | "INVALID_TRANSFER";

export interface Refused {
  readonly outcome: "refused";
  readonly code: RefusalCode;
  /** The leader as far as this node knows, so the caller can retry there. */
  readonly leader: NodeId | null;
  readonly message: string;
}

export interface Forwarded {
  readonly outcome: "forwarded";
  readonly leader: NodeId;
}

/** What `propose` / `proposeConfChange` did. An accepted entry still has to commit. */
export type ProposeResult = { readonly outcome: "accepted"; readonly index: number; readonly term: number } | Forwarded | Refused;

/** What `readIndex` did. When accepted, a `ReadState` with the same context arrives in a later Ready. */
export type ReadIndexResult = { readonly outcome: "accepted" } | Forwarded | Refused;

/** What `transferLeadership` did. */
export type TransferResult = { readonly outcome: "accepted" } | Forwarded | Refused;

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: "probe" | "replicate" | "snapshot";
}

export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** The leader's view of every member's log (its own included); null on other nodes. */
  readonly progress: Readonly<Record<NodeId, ProgressStatus>> | null;
  /** Peer messages dropped as malformed, misaddressed or from a removed node, since start. */
  readonly droppedMessages: number;
}
