import { checkNodeId, encodeConfChange } from "./conf-change.js";
import { resolveConfig, type RaftConfig } from "./config.js";
import { RaftError, RaftErrorCode } from "./errors.js";
import { Raft, type AdvanceReport, type PersistReport } from "./raft.js";
import type {
  ConfChange,
  HardState,
  Message,
  NodeId,
  ProposeResult,
  ReadIndexResult,
  Ready,
  SoftState,
  Status,
  TransferResult,
} from "./types.js";

/**
 * A Raft node with no I/O, no clock and no randomness of its own: the caller
 * drives it with `tick()`, `step()` and the request methods, and collects the
 * work to do with `ready()`, reporting it done with `advance()` (see `Ready`
 * in types.ts for the order of the work).
 *
 * @example
 * const storage = new MemoryStorage();
 * storage.applySnapshot(bootstrapSnapshot({ voters: ["n1", "n2", "n3"] }));
 * const node = new RawNode({ id: "n1", storage, rng: createRng(1) });
 * // every tick interval: node.tick(); on each message: node.step(m); then
 * if (node.hasReady()) {
 *   const rd = node.ready();
 *   // send rd.messagesNow; persist rd.snapshot, rd.entries, rd.hardState;
 *   // send rd.messagesAfterPersist; apply rd.snapshot and rd.committedEntries
 *   node.advance();
 * }
 */
export class RawNode {
  private readonly raft: Raft;
  private readonly async: boolean;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private outstanding: AdvanceReport | null = null;
  /** Asynchronous writes: the writes handed out and not yet reported durable, oldest first. */
  private readonly writes: (PersistReport & { readonly id: number })[] = [];
  private lastPersistId = 0;

  constructor(config: RaftConfig) {
    const resolved = resolveConfig(config);
    this.raft = new Raft(resolved);
    this.async = resolved.asyncStorageWrites;
    this.prevHardState = this.raft.hardState();
    this.prevSoftState = this.raft.softState();
  }

  /** Advances logical time by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /**
   * Feeds a message from a peer. Malformed, misaddressed, stale messages and
   * messages from removed nodes are dropped (counted in `status().droppedMessages`); never throws on them.
   */
  step(message: Message): void {
    this.raft.step(message);
  }

  /** Proposes opaque application data. See `ProposeResult`. */
  propose(data: Uint8Array): ProposeResult {
    if (!(data instanceof Uint8Array)) throw new RaftError(RaftErrorCode.MISUSE, "propose: data must be a Uint8Array");
    return this.raft.propose(data);
  }

  /** Proposes a single-server membership change; refused on a non-leader or while another is pending. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    const data = encodeConfChange(cc);
    return this.raft.proposeConfChange(cc, data);
  }

  /** Asks the leader to hand leadership to voter `to` (forwarded from a follower). */
  transferLeadership(to: NodeId): TransferResult {
    checkNodeId(to, "transferLeadership");
    return this.raft.transferLeadership(to);
  }

  /**
   * Starts a linearizable read without a log entry (thesis 6.4). When the
   * leader has confirmed its leadership, a `ReadState` with this context
   * appears in a Ready; serve the read once applied >= its index.
   */
  readIndex(context: Uint8Array): ReadIndexResult {
    if (!(context instanceof Uint8Array)) throw new RaftError(RaftErrorCode.MISUSE, "readIndex: context must be a Uint8Array");
    return this.raft.readIndex(context);
  }

  /** True when `ready()` has work to hand out; false while a Ready awaits `advance()`. */
  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    const r = this.raft;
    const log = r.log;
    if (r.hasPendingWork() || r.msgsNow.length > 0 || r.msgsAfterPersist.length > 0 || r.readStates.length > 0) return true;
    if (this.async) {
      if (log.hasUnhandedWrites() || log.hasNextCommittedEntries(true)) return true;
    } else if (log.unstable.length > 0 || log.unstableSnapshot !== null || log.hasNextCommittedEntries()) return true;
    if (!sameHardState(r.hardState(), this.prevHardState)) return true;
    const soft = r.softState();
    return soft.leader !== this.prevSoftState.leader || soft.role !== this.prevSoftState.role;
  }

  /** Hands out the work accumulated since the last Ready. Call `advance()` before the next `ready()`. */
  ready(): Ready {
    if (this.outstanding !== null) throw new RaftError(RaftErrorCode.MISUSE, "ready: the previous Ready was not advanced");
    const r = this.raft;
    const log = r.log;
    r.flush();
    const entries = this.async ? log.entriesToPersist() : log.unstable.slice();
    const snapshot = this.async && log.snapshotInProgress ? null : log.unstableSnapshot;
    if (this.async) log.acceptInProgress();
    const committedEntries = log.nextCommittedEntries(Number.MAX_SAFE_INTEGER, this.async);
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) log.applying = lastCommitted.index;

    const hard = r.hardState();
    const hardChanged = !sameHardState(hard, this.prevHardState);
    const termOrVoteChanged = hard.term !== this.prevHardState.term || hard.vote !== this.prevHardState.vote;
    const soft = r.softState();
    const softChanged = soft.leader !== this.prevSoftState.leader || soft.role !== this.prevSoftState.role;

    const rd: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      entries,
      snapshot,
      committedEntries,
      messagesNow: r.msgsNow,
      messagesAfterPersist: r.msgsAfterPersist,
      readStates: r.readStates,
      // A commit index alone may be lost in a crash (it is learned again); terms, votes and entries may not.
      mustSync: entries.length > 0 || snapshot !== null || termOrVoteChanged,
      persistId: this.async ? this.lastPersistId + 1 : 0,
    };
    r.msgsNow = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    this.prevHardState = hard;
    this.prevSoftState = soft;
    const lastEntry = entries[entries.length - 1];
    const written: PersistReport = {
      lastEntry: lastEntry === undefined ? null : { index: lastEntry.index, term: lastEntry.term },
      snapshotIndex: snapshot === null ? null : snapshot.meta.index,
      selfVote: r.takeSelfVote(),
    };
    if (this.async) {
      this.writes.push({ ...written, id: ++this.lastPersistId });
      this.outstanding = { lastEntry: null, snapshotIndex: written.snapshotIndex, committedEntries, selfVote: null };
    } else {
      this.outstanding = { ...written, committedEntries };
    }
    return rd;
  }

  /**
   * Asynchronous writes only: the write of the Ready whose `persistId` is `id` is durable (synced when it had
   * `mustSync`), and so is every earlier one. Writes complete in the order their Readies were handed out: `id` must
   * be the oldest write not yet reported. The leader counts its own log towards a quorum only from here, and a
   * candidate its own vote. Call it once the write is done, whether or not `advance()` was called for that Ready.
   */
  persisted(id: number): void {
    if (!this.async) throw new RaftError(RaftErrorCode.MISUSE, "persisted: asyncStorageWrites is off (advance() reports writes)");
    const oldest = this.writes[0];
    if (oldest === undefined || oldest.id !== id) {
      throw new RaftError(RaftErrorCode.MISUSE, `persisted(${id}): writes complete in order; the oldest in flight is ${oldest?.id ?? "none"}`);
    }
    this.writes.shift();
    this.raft.persisted(oldest);
  }

  /** Asynchronous writes: the number of Readies handed out whose write was not reported durable yet. */
  get writesInFlight(): number {
    return this.writes.length;
  }

  /**
   * Reports that everything in the last Ready is done: written (and synced if
   * `mustSync`), sent, and applied (or queued for apply in order). Conf
   * changes among its committed entries take effect now. With asynchronous
   * writes it reports only the apply (and `messagesNow` sent): the write may
   * still be in flight; `persisted()` reports it.
   */
  advance(): void {
    const report = this.outstanding;
    if (report === null) throw new RaftError(RaftErrorCode.MISUSE, "advance: no Ready is outstanding");
    this.outstanding = null;
    if (this.async) this.raft.applied(report);
    else this.raft.advance(report);
  }

  status(): Status {
    return this.raft.status();
  }

  /** The transport could not deliver to `id`: the leader stops pipelining to it and probes. */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /**
   * The transport's verdict on a snapshot sent to `id`: on failure the leader
   * starts over; on success it probes after the snapshot.
   */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
