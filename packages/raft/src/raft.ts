import { applyConfChange, confChangeProblem, decodeConfChange } from "./conf-change.js";
import type { ResolvedConfig } from "./config.js";
import { RaftConfigError, RaftError, RaftErrorCode, assert } from "./errors.js";
import { RaftLog } from "./log.js";
import { Progress } from "./progress.js";
import { committedIndex, hasQuorum, voteResult } from "./quorum.js";
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  NodeId,
  ProposeMessage,
  ProposeResult,
  ReadIndexResult,
  ReadState,
  Refused,
  RefusalCode,
  Role,
  Snapshot,
  SnapshotMessage,
  SnapshotResponseMessage,
  SoftState,
  Status,
  TransferResult,
  VoteRequestMessage,
} from "./types.js";
import { ReadIndexQueue } from "./read-index.js";
import { SnapshotAssembler } from "./snapshot-assembler.js";
import { messageProblem } from "./validate-message.js";

type InternalRole = "follower" | "precandidate" | "candidate" | "leader";

/** Message types that promise durable state: they wait until the Ready's writes are persisted. */
const AFTER_PERSIST: ReadonlySet<Message["type"]> = new Set<Message["type"]>([
  "vote",
  "voteResponse",
  "preVoteResponse",
  "appendResponse",
  "heartbeatResponse",
  "snapshotResponse",
]);

/** Re-send an unacknowledged snapshot chunk after this many heartbeat answers. */
const SNAPSHOT_RESEND_HEARTBEATS = 3;

interface OutgoingSnapshot {
  readonly snapshot: Snapshot;
  /** Offset of the chunk last sent and not yet acknowledged. */
  offset: number;
  heartbeatsSinceSend: number;
}

/** What one Ready's write made durable (at `advance()`, or at `persisted()` with asynchronous writes). */
export interface PersistReport {
  readonly lastEntry: { readonly index: number; readonly term: number } | null;
  readonly snapshotIndex: number | null;
  /** The campaign whose own vote was handed out with this Ready (see `Raft.takeSelfVote`), or null. */
  readonly selfVote: number | null;
}

/** What one Ready's apply did (at `advance()`). */
export interface ApplyReport {
  /** The snapshot the caller restored its state machine from, or null. */
  readonly snapshotIndex: number | null;
  readonly committedEntries: readonly Entry[];
}

/** What `advance()` reports as done: the writes and applies of the last Ready. */
export type AdvanceReport = PersistReport & ApplyReport;

/**
 * The Raft protocol state machine. It only computes: time is `tick()`,
 * input is `step()` and the local calls; output accumulates in `msgsNow`,
 * `msgsAfterPersist` and `readStates` and in the log, and `RawNode` hands it
 * out as a Ready. Section numbers refer to the Raft paper (Ongaro and
 * Ousterhout 2014) and the thesis (Ongaro 2014).
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  role: InternalRole = "follower";
  leader: NodeId | null = null;
  readonly log: RaftLog;
  conf: ConfState;

  msgsNow: Message[] = [];
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  droppedMessages = 0;

  /** Leader only: the replication state of every member, this node included. */
  private prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId | null = null;
  /** Leader only: index of the latest conf change that may not be applied yet. */
  private pendingConfIndex = 0;
  private uncommittedBytes = 0;
  /** Leader only: proposals arrived since the last Ready; one append per follower carries them all. */
  private needsBroadcast = false;
  private needsReadHeartbeat = false;
  /**
   * Leader only: this leader applied its own removal. It keeps leading (without
   * counting itself, refusing proposals) until a remaining voter holds its
   * whole log, then hands over. Leaving earlier can deadlock a cluster whose
   * remaining voters have not learned that the removal committed (README, What must hold #1).
   */
  private leaving = false;
  private readonly reads = new ReadIndexQueue();
  /** Reads waiting for the leader's first commit in its term (thesis 6.4: the no-op must commit first). */
  private readsBeforeCommit: { context: Uint8Array; requester: NodeId }[] = [];
  private outgoingSnapshots = new Map<NodeId, OutgoingSnapshot>();
  private readonly incomingSnapshot = new SnapshotAssembler();
  /**
   * Numbers campaigns; any role change starts a new number, so a self-vote
   * from an earlier campaign is never counted.
   */
  private campaignSeq = 0;
  /** A follower told to campaign (timeoutNow) in this term while a conf change was unapplied. */
  private transferCampaignTerm = 0;
  /** The current campaign's own vote, not yet handed out in a Ready. */
  private selfVoteUnissued: number | null = null;

  constructor(private readonly cfg: ResolvedConfig) {
    this.id = cfg.id;
    const storage = cfg.storage;
    this.log = new RaftLog(storage);
    const { hardState, confState } = storage.initialState();
    this.conf = confState;
    this.term = hardState.term;
    this.vote = hardState.vote;
    if (hardState.commit > this.log.lastIndex()) {
      throw new RaftError(RaftErrorCode.INVARIANT, `stored commit ${hardState.commit} is beyond the last index ${this.log.lastIndex()}`);
    }
    this.log.commitTo(hardState.commit);
    // The application's state starts from the storage's snapshot, so that is the least it has applied.
    const snapshotIndex = Math.max(this.log.firstIndex() - 1, this.storageSnapshotIndex());
    this.log.commitTo(snapshotIndex);
    const applied = cfg.applied === 0 ? snapshotIndex : cfg.applied;
    if (applied < snapshotIndex) {
      throw new RaftConfigError(
        `applied (${applied}) is below the storage snapshot (${snapshotIndex}): restore the application from the snapshot`,
      );
    }
    if (applied > this.log.committed) {
      throw new RaftConfigError(`applied (${applied}) is beyond the stored commit index (${this.log.committed})`);
    }
    this.replayConfChanges({ fromIndex: snapshotIndex + 1, toIndex: applied });
    this.log.applied = applied;
    this.log.applying = applied;
    this.becomeFollower(this.term, null);
  }

  private storageSnapshotIndex(): number {
    try {
      return this.cfg.storage.snapshot().meta.index;
    } catch (error) {
      if (error instanceof RaftError && error.code === RaftErrorCode.SNAPSHOT_UNAVAILABLE) return 0;
      throw error;
    }
  }

  // ---------------------------------------------------------------- status

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leader: this.leader, role: this.publicRole() };
  }

  status(): Status {
    let progress: Record<NodeId, { match: number; next: number; state: "probe" | "replicate" | "snapshot" }> | null = null;
    if (this.role === "leader") {
      progress = {};
      for (const [id, pr] of this.prs) progress[id] = { match: pr.match, next: pr.next, state: pr.state };
    }
    return {
      id: this.id,
      role: this.publicRole(),
      term: this.term,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      confState: this.conf,
      progress,
      droppedMessages: this.droppedMessages,
    };
  }

  hasPendingWork(): boolean {
    return this.needsBroadcast || this.needsReadHeartbeat || this.selfVoteUnissued !== null;
  }

  /** Hands the current campaign's own vote to a Ready; counted at its advance(). */
  takeSelfVote(): number | null {
    const seq = this.selfVoteUnissued;
    this.selfVoteUnissued = null;
    return seq;
  }

  private countSelfVote(seq: number): void {
    if (seq !== this.campaignSeq || (this.role !== "candidate" && this.role !== "precandidate")) return;
    this.votes.set(this.id, true);
    this.tally();
  }

  private publicRole(): Role {
    if (this.role === "follower" && this.conf.learners.includes(this.id)) return "learner";
    return this.role;
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  // ---------------------------------------------------------------- time

  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      if (this.hasUnappliedConfChange()) return;
      this.campaign(this.cfg.preVote ? "preVote" : "vote", false);
    } else if (!this.promotable() && this.leader !== null && this.electionElapsed >= this.cfg.electionTicks) {
      // A learner (or a node removed without hearing of it) that has not heard from its leader in
      // an election timeout stops naming it: proposals are refused, not forwarded into silence.
      this.leader = null;
    }
  }

  /**
   * True when a committed conf change is not applied yet. A node must not
   * campaign then (as etcd): it would count votes with a membership the
   * cluster has already moved past. The RawNode contract lets ticks and
   * messages arrive between ready() and advance(), so this can happen.
   */
  private hasUnappliedConfChange(): boolean {
    for (let lo = this.log.applied + 1; lo <= this.log.committed; ) {
      const batch = this.log.slice(lo, this.log.committed + 1, this.cfg.maxSizePerMsgBytes);
      if (batch.some((e) => e.type === "confChange")) return true;
      lo += batch.length;
    }
    return false;
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      // Check-quorum (thesis 6.2): a leader that has not heard from a quorum
      // in an election timeout may be partitioned away; it steps down so that
      // clients look for the real leader instead of waiting on it.
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned (thesis 3.10).
      this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** True if a quorum of voters was heard from since the last call; resets the marks. */
  private quorumActive(): boolean {
    const active = new Set<NodeId>([this.id]);
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      if (pr.recentActive) active.add(id);
      pr.recentActive = false;
    }
    return hasQuorum(this.conf.voters, active);
  }

  // ---------------------------------------------------------------- role changes

  private becomeFollower(term: number, leader: NodeId | null, options?: { keepElectionTimer: boolean }): void {
    if (term !== this.term) {
      assert(term > this.term, `term must not go backwards (${this.term} -> ${term})`);
      this.term = term;
      this.vote = null;
    }
    this.role = "follower";
    this.leader = leader;
    const elapsed = this.electionElapsed;
    const timeout = this.randomizedElectionTimeout;
    this.resetVolatile();
    if (options?.keepElectionTimer === true) {
      this.electionElapsed = elapsed;
      this.randomizedElectionTimeout = timeout;
    }
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a pre-candidate");
    // Pre-vote (thesis 9.6) leaves term and vote untouched: a node that cannot
    // win does not disturb the cluster by raising its term.
    this.role = "precandidate";
    this.leader = null;
    this.resetVolatile();
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a candidate");
    this.term += 1;
    this.vote = this.id;
    this.role = "candidate";
    this.leader = null;
    this.resetVolatile();
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.role = "leader";
    this.leader = this.id;
    this.resetVolatile();
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.conf.voters, ...this.conf.learners]) this.addProgress(id, next);
    const self = this.prs.get(this.id);
    // The leader counts only what is durable; the unstable tail is counted at advance().
    if (self !== undefined) {
      self.match = this.log.lastStableIndex();
      self.becomeReplicate();
    }
    // Any unapplied entry may be a conf change: no new one until all are applied.
    this.pendingConfIndex = this.log.lastIndex();
    // Raft 5.4.2 / 8: a no-op of the new term lets the leader commit entries of earlier terms.
    this.appendEntries([new Uint8Array(0)], "normal");
  }

  private addProgress(id: NodeId, next: number): void {
    const pr = new Progress({ next, maxInflightMsgs: this.cfg.maxInflightMsgs, maxInflightBytes: this.cfg.maxInflightBytes });
    // A new member counts as active so that check-quorum gives it a full round.
    pr.recentActive = true;
    this.prs.set(id, pr);
  }

  private resetVolatile(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTicks + this.cfg.rng.nextInt(this.cfg.electionTicks);
    this.votes.clear();
    this.prs.clear();
    this.leadTransferee = null;
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.needsBroadcast = false;
    this.needsReadHeartbeat = false;
    this.leaving = false;
    // Reads in flight are lost with leadership; their callers retry after a timeout, as in etcd.
    this.reads.clear();
    this.readsBeforeCommit = [];
    this.outgoingSnapshots.clear();
    this.campaignSeq++;
    this.selfVoteUnissued = null;
  }

  private campaign(kind: "preVote" | "vote", transfer: boolean): void {
    if (kind === "preVote") this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = kind === "preVote" ? this.term + 1 : this.term;
    // A new campaign supersedes requests of an earlier one that were not handed out yet.
    this.msgsNow = this.msgsNow.filter((m) => m.type !== "preVote");
    this.msgsAfterPersist = this.msgsAfterPersist.filter((m) => m.type !== "vote");
    // The candidate's own vote counts only once the Ready carrying its new
    // term and vote is durable (at advance()), as any other voter's does: a
    // sole voter that won before then could send entries of a term it may
    // forget in a crash, and then fill the same index differently.
    this.selfVoteUnissued = this.campaignSeq;
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      this.send({ from: this.id, type: kind, to: id, term: voteTerm, lastIndex, lastTerm, transfer });
    }
  }

  /** Counts the votes of the current campaign and acts on a decided outcome. */
  private tally(): "won" | "lost" | "pending" {
    const outcome = voteResult(this.conf.voters, this.votes);
    if (outcome === "won") {
      if (this.role === "precandidate") this.campaign("vote", false);
      else this.becomeLeader();
    } else if (outcome === "lost") {
      this.becomeFollower(this.term, null);
    }
    return outcome;
  }

  // ---------------------------------------------------------------- messages in

  step(m: Message): void {
    const problem = messageProblem(m);
    if (problem !== null || m.to !== this.id || m.from === this.id || this.conf.removed.includes(m.from)) {
      this.droppedMessages++;
      return;
    }
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        // A node that hears from a live leader ignores campaigns (thesis 4.2.3),
        // unless the leader itself asked for it (leadership transfer).
        const inLease = this.cfg.checkQuorum && this.leader !== null && this.electionElapsed < this.cfg.electionTicks;
        if (inLease && !m.transfer) return;
      }
      if (m.type === "preVote") {
        // A pre-vote does not change our term.
      } else if (m.type === "preVoteResponse" && !m.reject) {
        // A granted pre-vote is for the term we would campaign in; our term stays.
      } else {
        const fromLeader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot";
        // Raft figure 2: the election timer restarts on hearing from a leader or on granting a
        // vote, not on every campaign: a candidate with a stale log, campaigning again and again
        // with ever higher terms, must not hold off forever the election that could succeed.
        this.becomeFollower(m.term, fromLeader ? m.from : null, { keepElectionTimer: m.type === "vote" });
      }
    } else if (m.term !== 0 && m.term < this.term) {
      if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot") {
        // A stale leader learns of the newer term from our answer and steps down.
        this.send({ from: this.id, type: "heartbeatResponse", to: m.from, term: this.term, readSeq: 0 });
      } else if (m.type === "preVote") {
        this.send({ from: this.id, type: "preVoteResponse", to: m.from, term: this.term, reject: true, ...this.commitHint() });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.handleVoteRequest(m);
      return;
    }
    if (m.type === "voteResponse" || m.type === "preVoteResponse") this.learnCommit(m.commit, m.commitTerm);
    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        return;
      case "candidate":
      case "precandidate":
        this.stepCandidate(m);
        return;
      case "follower":
        this.stepFollower(m);
        return;
    }
  }

  private handleVoteRequest(m: VoteRequestMessage): void {
    const responseType = m.type === "vote" ? "voteResponse" : "preVoteResponse";
    // Raft 5.2: at most one vote per term; 5.4.1: only for a log at least as up-to-date as ours.
    const canVote =
      this.vote === m.from || (this.vote === null && this.leader === null) || (m.type === "preVote" && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ from: this.id, type: responseType, to: m.from, term: m.term, reject: false, ...this.commitHint() });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ from: this.id, type: responseType, to: m.from, term: this.term, reject: true, ...this.commitHint() });
    }
  }

  private commitHint(): { commit: number; commitTerm: number } {
    const commitTerm = this.log.term(this.log.committed);
    assert(commitTerm !== undefined, "the committed entry always has a known term");
    return { commit: this.log.committed, commitTerm };
  }

  /** Commits up to a voter's commit index when our log holds that same entry (see VoteResponseMessage). */
  private learnCommit(commit: number, commitTerm: number): void {
    if (commit > this.log.committed && commit <= this.log.lastIndex() && this.log.term(commit) === commitTerm) {
      this.log.commitTo(commit);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "propose":
        if (this.leadTransferee === null && !this.leaving) this.appendEntries(m.data, "normal");
        return;
      case "readIndex":
        this.handleReadIndex(m.context, m.from);
        return;
      case "transferLeader":
        this.transferLeadership(m.transferee);
        return;
      case "appendResponse":
        this.handleAppendResponse(m);
        return;
      case "heartbeatResponse":
        this.handleHeartbeatResponse(m);
        return;
      case "snapshotResponse":
        this.handleSnapshotResponse(m);
        return;
      default:
        // Stale vote answers, or another leader's messages in our term (impossible): ignored.
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "snapshot":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case "voteResponse":
      case "preVoteResponse": {
        const expected = this.role === "candidate" ? "voteResponse" : "preVoteResponse";
        if (m.type !== expected) return;
        this.votes.set(m.from, !m.reject);
        this.tally();
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case "snapshot":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        return;
      case "timeoutNow":
        // Leadership transfer (thesis 3.10): campaign at once, skipping pre-vote.
        if (!this.promotable()) return;
        // Asked to campaign with a conf change still to apply: do it once it is applied.
        if (this.hasUnappliedConfChange()) this.transferCampaignTerm = this.term;
        else this.campaign("vote", true);
        return;
      case "readIndexResponse":
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        // Forwarded proposals or reads that reached a non-leader are dropped
        // rather than forwarded again, so that they can never loop.
        return;
    }
  }

  // ---------------------------------------------------------------- follower side

  private handleAppend(m: AppendMessage): void {
    if (m.prevIndex < this.log.committed) {
      this.sendAppendResponse(m.from, { reject: false, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend({ prevIndex: m.prevIndex, prevTerm: m.prevTerm, commit: m.commit, entries: m.entries });
    if (lastNew !== null) {
      this.sendAppendResponse(m.from, { reject: false, index: lastNew });
      return;
    }
    // Fast back-off (thesis 5.3 optimisation): tell the leader where our logs may agree.
    const hintIndex = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    const hintTerm = this.log.term(hintIndex) ?? 0;
    this.send({ from: this.id, type: "appendResponse", to: m.from, term: this.term, reject: true, index: m.prevIndex, hintIndex, hintTerm });
  }

  private sendAppendResponse(to: NodeId, r: { reject: false; index: number }): void {
    this.send({ from: this.id, type: "appendResponse", to, term: this.term, reject: r.reject, index: r.index, hintIndex: 0, hintTerm: 0 });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit);
    this.send({ from: this.id, type: "heartbeatResponse", to: m.from, term: this.term, readSeq: m.readSeq });
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const meta = m.meta;
    if (meta.index <= this.log.committed) {
      this.incomingSnapshot.reset();
      this.sendAppendResponse(m.from, { reject: false, index: this.log.committed });
      return;
    }
    const outcome = this.incomingSnapshot.accept(m);
    if (outcome.kind === "next") {
      this.send({ from: this.id, type: "snapshotResponse", to: m.from, term: this.term, index: meta.index, nextOffset: outcome.nextOffset });
      return;
    }
    const restored = this.restore(outcome.snapshot);
    // After a fast-forward only the prefix up to the commit index is known to match the leader.
    this.sendAppendResponse(m.from, { reject: false, index: restored ? this.log.lastIndex() : this.log.committed });
  }

  /** Installs a snapshot from the leader; false when the log already covered it (only commit moved). */
  private restore(snapshot: Snapshot): boolean {
    const { index, term } = snapshot.meta;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry: the log matches up to it, so only commit moves.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.conf = snapshot.meta.confState;
    return true;
  }

  // ---------------------------------------------------------------- leader side

  /** Appends new entries of the current term; returns the first index, or null when over the uncommitted limit. */
  private appendEntries(data: readonly Uint8Array[], type: EntryType): number | null {
    let bytes = 0;
    for (const d of data) bytes += d.byteLength;
    // Always admit something when nothing is uncommitted, so a large entry cannot block forever.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.cfg.maxUncommittedEntriesBytes) return null;
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = data.map((d, i) => ({ index: first + i, term: this.term, type, data: d }));
    this.log.append(entries);
    this.uncommittedBytes += bytes;
    this.needsBroadcast = true;
    return first;
  }

  /** Sends what proposals and reads accumulated since the last Ready: one append / heartbeat per member. */
  flush(): void {
    if (this.role !== "leader") return;
    if (this.needsBroadcast) {
      this.needsBroadcast = false;
      this.bcastAppend();
    }
    if (this.needsReadHeartbeat) {
      this.needsReadHeartbeat = false;
      this.bcastHeartbeat();
    }
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private bcastHeartbeat(): void {
    const readSeq = this.reads.latestSeq();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Only commit what the member is known to hold, so that it never commits an entry it lacks.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ from: this.id, type: "heartbeat", to: id, term: this.term, commit, readSeq });
    }
  }

  /**
   * Sends the next append to `to` if its progress allows one. Falls back to a
   * snapshot when the entries it needs are compacted. Returns true if sent.
   */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let entries: Entry[] | null = null;
    if (prevTerm !== undefined) {
      try {
        entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.cfg.maxSizePerMsgBytes);
      } catch (error) {
        if (!(error instanceof RaftError && error.code === RaftErrorCode.COMPACTED)) throw error;
      }
    }
    if (prevTerm === undefined || entries === null) return this.sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += e.data.byteLength;
    this.send({ from: this.id, type: "append", to, term: this.term, prevIndex, prevTerm, entries, commit: this.log.committed });
    pr.sentEntries({ lastIndex: prevIndex + entries.length, count: entries.length, bytes });
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    let snapshot: Snapshot;
    try {
      snapshot = this.cfg.storage.snapshot();
    } catch (error) {
      if (error instanceof RaftError && error.code === RaftErrorCode.SNAPSHOT_UNAVAILABLE) return false;
      throw error;
    }
    assert(
      snapshot.meta.index >= this.log.firstIndex() - 1 && snapshot.meta.index > 0,
      `storage snapshot ${snapshot.meta.index} does not cover the compacted log (first index ${this.log.firstIndex()})`,
    );
    pr.becomeSnapshot(snapshot.meta.index);
    this.outgoingSnapshots.set(to, { snapshot, offset: 0, heartbeatsSinceSend: 0 });
    this.sendSnapshotChunk(to);
    return true;
  }

  private sendSnapshotChunk(to: NodeId): void {
    const out = this.outgoingSnapshots.get(to);
    assert(out !== undefined, "sendSnapshotChunk without a snapshot in flight");
    const data = out.snapshot.data;
    const end = Math.min(out.offset + this.cfg.snapshotChunkBytes, data.byteLength);
    out.heartbeatsSinceSend = 0;
    this.send({
      from: this.id,
      type: "snapshot",
      to,
      term: this.term,
      meta: out.snapshot.meta,
      offset: out.offset,
      totalBytes: data.byteLength,
      data: data.subarray(out.offset, end),
      last: end === data.byteLength,
    });
  }

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      if (pr.state === "snapshot") return;
      let nextProbe = m.hintIndex;
      if (m.hintTerm > 0) nextProbe = this.log.findConflictByTerm(m.hintIndex, m.hintTerm);
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    if (!updated && !(pr.state === "probe" && pr.match === m.index)) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot") {
      if (pr.match >= pr.pendingSnapshot || pr.match + 1 >= this.log.firstIndex()) {
        this.outgoingSnapshots.delete(m.from);
        pr.becomeProbe();
        pr.becomeReplicate();
      }
    } else {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from, true);
    }
    // Pipelining: keep sending while the in-flight window has room.
    while (this.sendAppend(m.from, false)) {
      // Each round sends at least one entry, so this ends at the last index or when the window is full.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ from: this.id, type: "timeoutNow", to: m.from, term: this.term });
    }
    if (this.leaving) this.maybeHandOver();
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    const out = this.outgoingSnapshots.get(m.from);
    if (pr.state === "snapshot" && out !== undefined) {
      out.heartbeatsSinceSend++;
      // The chunk or its answer was lost: send it again.
      if (out.heartbeatsSinceSend >= SNAPSHOT_RESEND_HEARTBEATS) this.sendSnapshotChunk(m.from);
    } else if (pr.match < this.log.lastIndex()) {
      // The follower is alive but the window is full: an answer was probably lost, so make room
      // for one append; the follower's answer to it acknowledges (or rejects) everything before.
      if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
      this.sendAppend(m.from, true);
    }
    if (m.readSeq > 0) {
      this.reads.ack(m.from, m.readSeq);
      this.releaseReads();
    }
  }

  private handleSnapshotResponse(m: SnapshotResponseMessage): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    const out = this.outgoingSnapshots.get(m.from);
    if (pr.state !== "snapshot" || out === undefined || out.snapshot.meta.index !== m.index) return;
    if (m.nextOffset === out.offset) return;
    out.offset = Math.min(m.nextOffset, out.snapshot.data.byteLength);
    this.sendSnapshotChunk(m.from);
  }

  /** Raft 5.3 and 5.4.2: commit the highest index a majority holds, if it is of the current term. */
  private maybeCommit(): boolean {
    const index = committedIndex(this.conf.voters, (id) => this.prs.get(id)?.match ?? 0);
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    if (this.readsBeforeCommit.length > 0) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const r of waiting) this.handleReadIndex(r.context, r.requester);
    }
    return true;
  }

  // ---------------------------------------------------------------- reads

  private handleReadIndex(context: Uint8Array, requester: NodeId): void {
    // Thesis 6.4: the read index is only valid once this leader has committed an entry of its
    // term. A sole voter too: after a restart its stored commit index may be behind entries it
    // had committed (and acknowledged) before, which it learns again only by committing one.
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsBeforeCommit.push({ context, requester });
      return;
    }
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.deliverRead({ index: this.log.committed, context, requester });
      return;
    }
    this.reads.add({ index: this.log.committed, context, requester, leader: this.id });
    // One heartbeat round, sent at the next Ready, confirms every read started since the last one.
    this.needsReadHeartbeat = true;
  }

  private releaseReads(): void {
    for (const read of this.reads.takeConfirmed(this.conf.voters)) this.deliverRead(read);
  }

  private deliverRead(read: { index: number; context: Uint8Array; requester: NodeId }): void {
    if (read.requester === this.id) {
      this.readStates.push({ index: read.index, context: read.context });
    } else {
      this.send({ from: this.id, type: "readIndexResponse", to: read.requester, term: this.term, index: read.index, context: read.context });
    }
  }

  // ---------------------------------------------------------------- local requests

  /** A refusal for a node that applied its own removal: it can never take part again. */
  private refuseIfRemoved(): Refused | null {
    // A removed leader that is handing over keeps its own refusal (TRANSFERRING).
    if (this.role === "leader" || !this.conf.removed.includes(this.id)) return null;
    return this.refuse("NODE_ID_REMOVED", `${this.id} was removed from the cluster`);
  }

  propose(data: Uint8Array): ProposeResult {
    const removed = this.refuseIfRemoved();
    if (removed !== null) return removed;
    if (this.role === "leader") {
      if (this.leadTransferee !== null || this.leaving) return this.refuse("TRANSFERRING", "a leadership transfer is in progress");
      const index = this.appendEntries([data], "normal");
      if (index === null) return this.refuse("TOO_MANY_UNCOMMITTED", "too many uncommitted entries; retry after some commit");
      return { outcome: "accepted", index, term: this.term };
    }
    if (this.leader === null) return this.refuse("NO_LEADER", "no leader is known");
    if (!this.cfg.forwardProposals) return this.refuse("NOT_LEADER", `not the leader; try ${this.leader}`);
    // Batch with a forward still waiting in this Ready: one message per Ready per leader.
    const last = this.msgsNow[this.msgsNow.length - 1];
    if (last !== undefined && last.type === "propose" && last.to === this.leader) {
      (last.data as Uint8Array[]).push(data);
    } else {
      const forward: ProposeMessage = { type: "propose", from: this.id, to: this.leader, term: 0, data: [data] };
      this.msgsNow.push(forward);
    }
    return { outcome: "forwarded", leader: this.leader };
  }

  proposeConfChange(cc: ConfChange, data: Uint8Array): ProposeResult {
    if (this.role !== "leader") {
      return this.leader === null
        ? this.refuse("NO_LEADER", "no leader is known")
        : this.refuse("NOT_LEADER", `conf changes are proposed on the leader; try ${this.leader}`);
    }
    if (this.leadTransferee !== null || this.leaving) return this.refuse("TRANSFERRING", "a leadership transfer is in progress");
    if (this.pendingConfIndex > this.log.applied) {
      return this.refuse("CONF_CHANGE_PENDING", `conf change at index ${this.pendingConfIndex} is not applied yet`);
    }
    const problem = confChangeProblem(this.conf, cc);
    if (problem !== null) {
      return this.refuse(this.conf.removed.includes(cc.nodeId) ? "NODE_ID_REMOVED" : "INVALID_CONF_CHANGE", problem);
    }
    const index = this.appendEntries([data], "confChange");
    if (index === null) return this.refuse("TOO_MANY_UNCOMMITTED", "too many uncommitted entries; retry after some commit");
    this.pendingConfIndex = index;
    return { outcome: "accepted", index, term: this.term };
  }

  readIndex(context: Uint8Array): ReadIndexResult {
    const removed = this.refuseIfRemoved();
    if (removed !== null) return removed;
    if (this.role === "leader") {
      this.handleReadIndex(context, this.id);
      return { outcome: "accepted" };
    }
    if (this.leader === null) return this.refuse("NO_LEADER", "no leader is known");
    this.send({ from: this.id, type: "readIndex", to: this.leader, term: 0, context });
    return { outcome: "forwarded", leader: this.leader };
  }

  transferLeadership(to: NodeId): TransferResult {
    const removed = this.refuseIfRemoved();
    if (removed !== null) return removed;
    if (this.role !== "leader") {
      if (this.leader === null) return this.refuse("NO_LEADER", "no leader is known");
      this.send({ from: this.id, type: "transferLeader", to: this.leader, term: 0, transferee: to });
      return { outcome: "forwarded", leader: this.leader };
    }
    if (to === this.id) return this.refuse("INVALID_TRANSFER", "this node is already the leader");
    if (this.leaving) return this.refuse("TRANSFERRING", "this leader was removed and is handing over");
    const pr = this.prs.get(to);
    if (pr === undefined || !this.conf.voters.includes(to)) return this.refuse("INVALID_TRANSFER", `${to} is not a voter`);
    if (this.leadTransferee === to) return { outcome: "accepted" };
    // Thesis 3.10: stop taking proposals, bring the target up to date, then tell it to campaign.
    this.leadTransferee = to;
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send({ from: this.id, type: "timeoutNow", to, term: this.term });
    else this.sendAppend(to, true);
    return { outcome: "accepted" };
  }

  reportUnreachable(id: NodeId): void {
    const pr = this.role === "leader" ? this.prs.get(id) : undefined;
    // Appends in flight were probably lost: fall back to one probe at a time.
    if (pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.role === "leader" ? this.prs.get(id) : undefined;
    if (pr === undefined || pr.state !== "snapshot") return;
    this.outgoingSnapshots.delete(id);
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the next heartbeat answer before probing, as after any snapshot.
    pr.probeSent = true;
  }

  private refuse(code: RefusalCode, message: string): Refused {
    return { outcome: "refused", code, leader: this.leader, message };
  }

  // ---------------------------------------------------------------- Ready / advance

  /** Everything in the last Ready is durable and applied. */
  advance(report: AdvanceReport): void {
    this.markDurable(report);
    this.markApplied(report);
    if (report.selfVote !== null) this.countSelfVote(report.selfVote);
    this.maybeCampaignAfterTransfer();
  }

  /** Asynchronous writes: one Ready's write (and every earlier one) is durable. */
  persisted(report: PersistReport): void {
    this.markDurable(report);
    if (report.selfVote !== null) this.countSelfVote(report.selfVote);
  }

  /** Asynchronous writes: the last Ready's committed entries (and snapshot) are applied. */
  applied(report: ApplyReport): void {
    this.markApplied(report);
    this.maybeCampaignAfterTransfer();
  }

  private markDurable(report: PersistReport): void {
    if (report.snapshotIndex !== null) this.log.stableSnapTo(report.snapshotIndex);
    if (report.lastEntry !== null) this.log.stableTo(report.lastEntry.index, report.lastEntry.term);
    if (this.role === "leader") {
      // Thesis 10.2.1: the leader wrote its log in parallel with sending it; it
      // counts itself towards a quorum only now that the write is durable.
      const self = this.prs.get(this.id);
      if (self?.maybeUpdate(this.log.lastStableIndex()) && this.maybeCommit()) this.bcastAppend();
    }
  }

  private markApplied(report: ApplyReport): void {
    let applied = this.log.applied;
    if (report.snapshotIndex !== null) applied = Math.max(applied, report.snapshotIndex);
    const restoredSince = this.log.unstableSnapshot?.meta.index ?? 0;
    for (const entry of report.committedEntries) {
      applied = Math.max(applied, entry.index);
      if (this.role === "leader") this.uncommittedBytes = Math.max(0, this.uncommittedBytes - entry.data.byteLength);
      // A snapshot installed after the Ready was handed out supersedes these entries.
      if (entry.type === "confChange" && entry.index > restoredSince) this.applyConfChangeEntry(entry);
    }
    this.log.applied = Math.max(this.log.applied, Math.min(applied, this.log.applying));
  }

  private maybeCampaignAfterTransfer(): void {
    if (this.transferCampaignTerm !== 0 && !this.hasUnappliedConfChange()) {
      const asked = this.transferCampaignTerm === this.term && this.role === "follower" && this.promotable();
      this.transferCampaignTerm = 0;
      if (asked) this.campaign("vote", true);
    }
  }

  private applyConfChangeEntry(entry: Entry): void {
    let cc: ConfChange;
    try {
      cc = decodeConfChange(entry.data);
    } catch {
      // Every member decodes the same bytes, so every member skips the same entry.
      return;
    }
    if (confChangeProblem(this.conf, cc) !== null) return;
    this.conf = applyConfChange(this.conf, cc);
    if (this.role !== "leader") return;
    const id = cc.nodeId;
    if (cc.type === "addLearner") {
      this.addProgress(id, this.log.lastIndex() + 1);
    } else if (cc.type === "remove") {
      this.prs.delete(id);
      this.outgoingSnapshots.delete(id);
      if (this.leadTransferee === id) this.leadTransferee = null;
      if (id === this.id) {
        this.leaving = true;
        this.maybeHandOver();
        if (this.role !== "leader") return;
      }
    }
    // The quorum changed: entries or reads may now be confirmed. A leaving
    // leader also pushes its tail to the remaining voters, to find an heir.
    if (this.maybeCommit() || this.leaving) this.bcastAppend();
    this.releaseReads();
  }

  /**
   * A leader that applied its own removal hands leadership to a voter that
   * holds its whole log: that voter's campaign gets this node's vote (its log
   * is at least as up-to-date) in whichever configuration the voter still
   * uses, so the cluster can always elect a leader. Until then it keeps
   * replicating.
   */
  private maybeHandOver(): void {
    const last = this.log.lastIndex();
    const heir = this.conf.voters.find((v) => v !== this.id && this.prs.get(v)?.match === last);
    if (heir === undefined) return;
    this.send({ from: this.id, type: "timeoutNow", to: heir, term: this.term });
    this.becomeFollower(this.term, null);
  }

  /** On restart: membership as of `applied` = stored snapshot's conf state + the conf changes after it. */
  private replayConfChanges(range: { fromIndex: number; toIndex: number }): void {
    const applied = range.toIndex;
    const from = range.fromIndex;
    for (let lo = from; lo <= applied; ) {
      const batch = this.log.slice(lo, applied + 1, this.cfg.maxSizePerMsgBytes);
      for (const entry of batch) {
        if (entry.type !== "confChange") continue;
        try {
          const cc = decodeConfChange(entry.data);
          if (confChangeProblem(this.conf, cc) === null) this.conf = applyConfChange(this.conf, cc);
        } catch {
          // Skipped on every member alike.
        }
      }
      lo += batch.length;
    }
  }

  // ---------------------------------------------------------------- messages out

  private send(m: Message): void {
    assert(m.from === this.id, "messages are sent from this node");
    if (AFTER_PERSIST.has(m.type)) this.msgsAfterPersist.push(m);
    else this.msgsNow.push(m);
  }
}
