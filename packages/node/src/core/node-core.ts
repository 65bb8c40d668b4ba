import type { Logger } from "pino";
import {
  bootstrapSnapshot,
  createRng,
  MemoryStorage,
  RawNode,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ConfChange,
  type ConfState,
  type ProposeResult,
  type Ready,
  type Role,
  type Snapshot,
  type Status,
} from "@ratequeue/raft";
import type { LogStore } from "../storage/types.js";
import type { StoredKey } from "../state/keys.js";
import { ClusterState, type OpResult } from "./cluster-state.js";
import type { NodeEnv, TimerHandle } from "./env.js";
import { decodePayload, encodePayload, type Op } from "./ops.js";
import { StampClock } from "./stamp-clock.js";
import { DeadlineTimer } from "./deadlines.js";
import { NotLeaderError, ProposalLostError, Proposals } from "./proposals.js";
import { ReadWaiters } from "./reads.js";

export { checkResourceBody } from "./resource-body.js";
export { NotLeaderError, ProposalLostError } from "./proposals.js";

export interface NodeCoreOptions {
  readonly id: NodeId;
  /**
   * The initial voters (used only to bootstrap a brand-new data folder). Empty: a joining node, which starts with
   * an empty log and waits for a leader to add it and send it a snapshot.
   */
  readonly voters: readonly NodeId[];
  readonly store: LogStore;
  readonly env: NodeEnv;
  readonly logger: Logger;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Snapshot and compact after this many entries. */
  readonly snapshotEntries: number;
  /** Operations the first leader applies once, when the cluster is new (config-file resources and keys). */
  readonly bootstrapOps: readonly Op[];
  /**
   * The bootstrap admin key (`--admin-key`), stored form. A leader proposes it when its table holds no admin key;
   * it is added only if the table still holds none when it applies (adminSeed). Null: this node has no flag.
   */
  readonly adminSeed?: StoredKey | null;
}

interface HandOver {
  readonly waiters: ((heir: NodeId | null) => void)[];
  /** Voters already asked to take over in this handover. */
  readonly tried: Set<NodeId>;
  readonly deadline: TimerHandle;
  retry: TimerHandle | null;
}

/** Listener for applied operations: every node calls it for every op, in log order. */
/** `at` is the log time after the entry; `index` the entry's log index. */
export type ApplyListener = (results: readonly OpResult[], at: number, index: number) => void;

/** Listener for each entry this leader proposes, with the stamp it carries (the node simulator notes when each stamp was made). */
export type ProposeListener = (entry: { readonly index: number; readonly term: number; readonly at: number }) => void;

/**
 * The loop takes a new Ready only while fewer writes than this are in flight. What arrives meanwhile (proposals,
 * appends) waits in Raft and goes out in one Ready, one append per peer and one write, when a write completes.
 */
const MAX_WRITES_IN_FLIGHT = 1;

/** A peer's queued messages go out at once beyond this much entry and snapshot payload (the peer frame limit is 64 MiB). */
const OUTBOX_FLUSH_BYTES = 4 * 1024 * 1024;

/** Most entries kept in memory behind a snapshot, so a briefly lagging follower catches up from the log. */
const CATCH_UP_ENTRIES = 1_000;

/**
 * The node's logic: the Raft driver loop (persist, send, apply), leader
 * stamps, tick proposals at the limiter's next deadline, session renewal on
 * a new leader, batching of proposals, snapshots. Deterministic given its
 * `NodeEnv`, so the simulator can run it.
 */
export class NodeCore {
  readonly id: NodeId;
  readonly #o: NodeCoreOptions;
  readonly #log: Logger;
  #raw!: RawNode;
  #mem!: MemoryStorage;
  #state = new ClusterState();
  #role: Role = "follower";
  #leader: NodeId | null = null;
  #stopped = false;
  #fatal: Error | null = null;

  /** Log time as this node would stamp it (SPEC guarantee 6): monotonic time since the last stamp in its log. */
  readonly #clock = new StampClock();
  /** Index of the entry that carries the clock's last stamp, and the term of this node's own latest proposal. */
  #stampIndex = 0;
  #ownTerm = -1;
  #appliedIndex = 0;
  #lastAt = 0;
  #snapshotIndex = 0;

  /**
   * Index of the entry this node appended on becoming leader, then of its first batch of the term (session renewal,
   * bootstrap, admin seed): its state is the cluster's, with this leader's own seed, once that is applied.
   */
  #termStartIndex = Infinity;
  #firstBatchOfTerm = false;
  /** Whether this node's --admin-key was found missing from the key table (logged once per change). */
  #adminFlagIgnored = false;
  #caughtUpWaiters: (() => void)[] = [];

  /** The latest commit-only hard state, not yet written: it goes to disk with the next synced write. */
  #unwrittenHardState: HardState | null = null;
  /**
   * Settles once every write handed to the store so far is durable and its Ready's `messagesAfterPersist` went out
   * (Raft's asynchronous storage writes: the loop does not wait for it, except to install a snapshot).
   */
  #persistTail: Promise<void> = Promise.resolve();
  /** Messages queued per peer this turn (see #send). */
  #outbox = new Map<NodeId, { messages: Message[]; bytes: number }>();

  #tickTimer: TimerHandle | null = null;
  #driving = false;
  #kickScheduled = false;

  /** Proposal batching and waiters (leader only); created at start, when the node draws its nonce. */
  #proposals!: Proposals;
  /** Deadline ticks (leader only). */
  readonly #deadlines: DeadlineTimer;

  // Handover (leader only): proposals are held while Raft transfers leadership, since it refuses them meanwhile.
  #handOver: HandOver | null = null;
  /** Ticks since the last message from the leader this node follows (what Raft's election timer counts). */
  #ticksSinceLeader = 0;

  /** Linearizable reads (leader only): ReadIndex rounds by context, then waiters for their index to apply. */
  #reads!: ReadWaiters;

  readonly #applyListeners: ApplyListener[] = [];
  readonly #membershipListeners: ((conf: ConfState) => void)[] = [];
  #startedEmpty = false;
  readonly #proposeListeners: ProposeListener[] = [];
  readonly #roleListeners: ((role: Role, leader: NodeId | null) => void)[] = [];

  constructor(options: NodeCoreOptions) {
    this.id = options.id;
    this.#o = options;
    this.#log = options.logger;
    this.#deadlines = new DeadlineTimer(options.env, () => {
      if (this.#role !== "leader" || this.#stopped) return;
      this.#deadlines.tickInFlight = true;
      this.#proposals.enqueue({ t: "limiter", cmd: { type: "tick" }, pid: this.#proposals.nextId("tick") });
    });
  }

  /** Commit latency samples (ms from propose to apply on this leader), drained by metrics. */
  get commitLatenciesMs(): number[] {
    return this.#proposals === undefined ? [] : this.#proposals.latenciesMs;
  }

  /** Loads the log from disk, restores state and starts ticking. */
  async start(): Promise<void> {
    const { store, env } = this.#o;
    const persisted = await store.load();
    this.#mem = new MemoryStorage();
    let snapshot: Snapshot | null = persisted.snapshot;
    this.#startedEmpty = snapshot === null && persisted.hardState === null && persisted.entries.length === 0;
    if (this.#startedEmpty && this.#o.voters.length > 0) {
      snapshot = bootstrapSnapshot({ voters: this.#o.voters });
      await store.write({ snapshot, sync: true });
      this.#log.info({ voters: this.#o.voters }, "bootstrapped a new data folder");
    }
    if (snapshot !== null) this.#mem.applySnapshot(snapshot);
    if (persisted.hardState !== null) this.#mem.setHardState(persisted.hardState);
    if (persisted.entries.length > 0) this.#mem.append(persisted.entries);
    this.#state = ClusterState.restore(snapshot?.data ?? new Uint8Array(0));
    this.#appliedIndex = snapshot?.meta.index ?? 0;
    this.#snapshotIndex = this.#appliedIndex;
    this.#lastAt = this.#state.limiter.lastAt;
    this.#learnLastStamp(Infinity);
    this.#raw = new RawNode({
      id: this.id,
      storage: this.#mem,
      rng: createRng(env.randomSeed()),
      electionTicks: this.#o.electionTicks,
      heartbeatTicks: this.#o.heartbeatTicks,
      applied: this.#appliedIndex,
      forwardProposals: false,
      asyncStorageWrites: true,
    });
    this.#proposals = new Proposals(env, () => this.#flushBatch());
    this.#reads = new ReadWaiters(env, this.#proposals.nonce);
    this.#membershipChanged();
    this.#log.info(
      { applied: this.#appliedIndex, entries: persisted.entries.length, term: persisted.hardState?.term ?? 0 },
      "recovered from disk",
    );
    this.#scheduleTick();
    this.#kick();
  }

  /** Stops timers and fails every waiting proposal. The store is the caller's to close. */
  stop(): void {
    this.#stopped = true;
    this.#caughtUpWaiters = [];
    this.#endHandOver(null);
    if (this.#tickTimer !== null) this.#o.env.clearTimer(this.#tickTimer);
    this.#deadlines.clear();
    this.#proposals?.failAll(new ProposalLostError("the node is shutting down"));
    this.#reads?.failAll(new ProposalLostError("the node is shutting down"));
  }

  // ---------------------------------------------------------------------------
  // Inputs

  /** Raft messages from a peer (already decoded and checked to come from `from`). */
  stepPeer(from: NodeId, messages: readonly Message[]): void {
    if (this.#stopped) return;
    for (const m of messages) {
      if (m.from !== from) continue; // a peer may speak only for itself
      if (from === this.#leader) this.#ticksSinceLeader = 0;
      this.#raw.step(m);
    }
    this.#kick();
  }

  reportUnreachable(peer: NodeId): void {
    if (!this.#stopped) this.#raw.reportUnreachable(peer);
  }

  /**
   * This node's link to `peer` closed (the peer's process exited, or the connection broke). If `peer` is the
   * leader this node follows, the leader may be dead: rather than wait out a whole election timeout of silence,
   * the follower ends the leader's lease now (it grants pre-votes). One follower, the first of the remaining voters
   * by id, then campaigns one tick later (once the others have seen the link close too); the others keep only the random part of their timeout (0 to `electionTicks`
   * ticks), so that they vote for it rather than split the vote by campaigning at the same moment (which cost a
   * second election timeout and a spurious term). Should the first one be down or behind, another follower's
   * timeout elects someone as before. Pre-vote keeps this from disturbing a live leader: a campaign wins only if a
   * majority also stopped hearing from it. A stopped (SIGSTOP) or partitioned leader whose connections stay open
   * is found by the election timeout as before.
   */
  leaderLinkLost(peer: NodeId): void {
    if (this.#stopped || this.#role !== "follower" || this.#leader !== peer) return;
    const et = this.#o.electionTicks;
    const first = this.#raw.status().confState.voters.filter((v) => v !== peer).sort()[0] === this.id;
    this.#log.info({ leader: peer, term: this.#raw.status().term, campaign: first }, "link to the leader closed: its lease is given up early");
    // Every follower ticks to the end of the lease (Raft counts ticks since the leader's last message, as
    // #ticksSinceLeader does), so that it grants pre-votes.
    const leaseTicks = Math.max(0, et - this.#ticksSinceLeader);
    for (let i = 0; i < leaseTicks && this.#raw.status().role === "follower"; i++) this.#raw.tick();
    this.#kick();
    if (!first) return;
    // The first campaigns one tick later, within its randomized timeout (< 2 election timeouts of ticks): a
    // follower still inside the lease ignores a pre-vote without answering, and the others see the link close a
    // few ms apart, so a campaign at once often went unanswered and waited a whole timeout.
    this.#o.env.setTimer(() => {
      if (this.#stopped || this.#raw.status().role !== "follower" || this.#raw.status().leader !== peer) return;
      for (let i = 0; i < 2 * et && this.#raw.status().role === "follower"; i++) this.#raw.tick();
      this.#kick();
    }, this.#o.tickMs);
  }

  /**
   * Hands leadership to the most caught-up voter (Raft's leadership transfer, thesis 3.10) and resolves with the
   * new leader's id once this node follows it, or with null after `timeoutMs` (this node then goes on leading, or
   * knows no leader). Meant for a planned stop or removal: the clients of this node learn where the new leader is
   * (ClientSessions redirects them on the role change) before it goes. While it runs, proposals are held rather
   * than refused: they are proposed if this node is still the leader at the end, and fail as ProposalLostError
   * (the client resends to the new leader) if not. A transfer that stalls (its target is down) is retried with
   * the next voter every election timeout. On a node that is not the leader it resolves at once with the leader
   * it knows.
   *
   * @example const heir = await core.handOver(1_000); // then stop: clients are already on their way to `heir`
   */
  handOver(timeoutMs: number): Promise<NodeId | null> {
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`handOver: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
    if (this.#stopped) return Promise.resolve(null);
    if (this.#role !== "leader") return Promise.resolve(this.#leader === this.id ? null : this.#leader);
    return new Promise<NodeId | null>((resolve) => {
      if (this.#handOver !== null) return void this.#handOver.waiters.push(resolve);
      const env = this.#o.env;
      const handOver: HandOver = {
        waiters: [resolve],
        tried: new Set(),
        deadline: env.setTimer(() => this.#endHandOver(null), timeoutMs),
        retry: null,
      };
      this.#handOver = handOver;
      const attempt = (): void => {
        if (this.#handOver !== handOver || this.#role !== "leader") return;
        this.#transferToBestVoter(handOver.tried);
        this.#kick();
        handOver.retry = env.setTimer(attempt, this.#o.electionTicks * this.#o.tickMs);
      };
      attempt();
    });
  }

  /** Whether a handover is running (proposals are held meanwhile). */
  get handingOver(): boolean {
    return this.#handOver !== null;
  }

  /**
   * Proposes one operation and resolves with its result once its entry is
   * applied here. Rejects with NotLeaderError at once on a non-leader, and
   * with ProposalLostError when leadership moves before it applies.
   */
  propose(op: Op): Promise<OpResult> {
    if (this.#stopped) return Promise.reject(new ProposalLostError("the node is shutting down"));
    if (this.#role !== "leader") return Promise.reject(new NotLeaderError(this.#leader));
    return this.#proposals.propose(op);
  }

  /** Proposes an operation nobody waits for (heartbeats, cancels). Dropped on a non-leader. */
  proposeQuietly(op: Op): boolean {
    if (this.#stopped || this.#role !== "leader") return false;
    this.#proposals.enqueue(op);
    return true;
  }

  /**
   * A linearizable read point (Raft's ReadIndex, thesis 6.4): resolves with an applied index once a heartbeat round
   * has confirmed that this node still leads and it has applied everything committed when the read began. State read
   * synchronously then reflects every write acknowledged before the call. Rejects with NotLeaderError on a follower,
   * and with ProposalLostError if leadership moves or the round does not finish within `timeoutMs`.
   *
   * @example const index = await core.readBarrier(5_000); const bytes = core.state.snapshot(); // both at `index` or later
   */
  readBarrier(timeoutMs: number): Promise<number> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`readBarrier: timeoutMs must be a finite number > 0, got ${timeoutMs}`);
    if (this.#stopped) return Promise.reject(new ProposalLostError("the node is shutting down"));
    if (this.#role !== "leader") return Promise.reject(new NotLeaderError(this.#leader));
    const context = this.#reads.nextContext();
    const result = this.#raw.readIndex(new TextEncoder().encode(context));
    if (result.outcome !== "accepted") return Promise.reject(new NotLeaderError(this.#leader));
    const read = this.#reads.wait(context, timeoutMs);
    this.#kick();
    return read;
  }

  onApply(listener: ApplyListener): void {
    this.#applyListeners.push(listener);
  }

  onPropose(listener: ProposeListener): void {
    this.#proposeListeners.push(listener);
  }

  onRoleChange(listener: (role: Role, leader: NodeId | null) => void): void {
    this.#roleListeners.push(listener);
  }

  // ---------------------------------------------------------------------------
  // Reads

  get state(): ClusterState {
    return this.#state;
  }

  get role(): Role {
    return this.#role;
  }

  get leader(): NodeId | null {
    return this.#leader;
  }

  get isLeader(): boolean {
    return this.#role === "leader";
  }

  /**
   * True on a leader that has applied every entry earlier leaders committed and its own first batch of the term
   * (session renewal, bootstrap, admin seed). Only then does its state hold every key, resource and session the
   * cluster agreed on, and the bootstrap admin key of a new cluster.
   */
  get isCaughtUpLeader(): boolean {
    return this.#role === "leader" && !this.#firstBatchOfTerm && this.#appliedIndex >= this.#termStartIndex;
  }

  /**
   * Runs `fn` once this node is a caught-up leader, or at once if it is not the leader at all (or already caught
   * up): `fn` checks the role itself. Waiters are dropped when the node stops.
   */
  whenCaughtUp(fn: () => void): void {
    if (this.#role !== "leader" || this.isCaughtUpLeader) return fn();
    this.#caughtUpWaiters.push(fn);
  }

  /** The index of the last entry applied to `state` (or of the snapshot it was restored from). */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** The last log time applied (the limiter's clock). */
  get logTime(): number {
    return this.#lastAt;
  }

  /** Log time by this node's clock now: what a stamp would read (the dashboard and admin views use it). */
  clusterNow(): number {
    return this.#clock.read(this.#o.env.monotonicNow()) ?? this.#lastAt;
  }

  /** Set when the node hit an error it cannot continue from (a disk failure, a corrupt entry). */
  get fatalError(): Error | null {
    return this.#fatal;
  }

  status(): Status {
    return this.#raw.status();
  }

  // ---------------------------------------------------------------------------
  // Membership (the admin routes in src/membership/ drive these)

  /** True when start() found no log at all: a brand-new founder (bootstrapped) or a node waiting to be added. */
  get startedEmpty(): boolean {
    return this.#startedEmpty;
  }

  /** Proposes one membership change (leader only; one at a time). It takes effect where and when it applies. */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.#stopped) return { outcome: "refused", code: "NOT_LEADER", leader: null, message: "the node is shutting down" };
    const result = this.#raw.proposeConfChange(change);
    this.#kick();
    return result;
  }

  /** Called with the membership in force after every applied conf change, and once at start. */
  onMembershipChange(listener: (conf: ConfState) => void): void {
    this.#membershipListeners.push(listener);
  }

  /** Ready when there is a leader and this node has applied everything it knows committed. */
  isReady(): boolean {
    const s = this.#raw.status();
    return s.leader !== null && this.#appliedIndex >= s.commit;
  }

  // ---------------------------------------------------------------------------
  // Driver loop

  #scheduleTick(): void {
    if (this.#stopped) return;
    this.#tickTimer = this.#o.env.setTimer(() => {
      this.#ticksSinceLeader++;
      this.#raw.tick();
      this.#kick();
      this.#scheduleTick();
    }, this.#o.tickMs);
  }

  #kick(): void {
    if (this.#kickScheduled || this.#stopped) return;
    this.#kickScheduled = true;
    this.#o.env.defer(() => {
      this.#kickScheduled = false;
      void this.#drive();
    });
  }

  async #drive(): Promise<void> {
    if (this.#driving || this.#stopped) return;
    this.#driving = true;
    try {
      while (!this.#stopped && this.#raw.writesInFlight < MAX_WRITES_IN_FLIGHT && this.#raw.hasReady()) {
        const wait = this.#handleReady(this.#raw.ready());
        if (wait === null) continue;
        this.#flushOutbox();
        await wait;
      }
      this.#flushOutbox();
    } catch (err) {
      this.#die(err as Error);
    } finally {
      this.#driving = false;
    }
  }

  /**
   * One Ready, with asynchronous storage writes: send `messagesNow`, hand the writes to the store (synced when
   * `mustSync`) without waiting, apply the committed entries Raft handed out (only durable ones, so clients are
   * answered for entries a majority holds durably), and `advance()`. When the write (and every earlier one) is
   * durable, `messagesAfterPersist` go out and Raft hears `persisted()`: votes and append answers promise durable
   * state, and the leader counts its own log only then. Returns a promise only when the loop must wait: a snapshot
   * is installed once its write is durable. The loop takes the next Ready once fewer than MAX_WRITES_IN_FLIGHT
   * writes are in flight.
   */
  #handleReady(rd: Ready): Promise<void> | null {
    // Raft may hand back entries at or below the store's snapshot: when a conflict truncates its unstable tail
    // between ready() and advance(), advance() cannot mark that tail stable and the next Ready resends it from
    // its start (as etcd's raft does). Those entries are committed and inside the snapshot; the store refuses
    // rewrites below it, so skip them here as MemoryStorage.append does. Found by test/node-sim (seed 80380).
    const entries = rd.snapshot === null && rd.entries.length > 0 && rd.entries[0]!.index <= this.#snapshotIndex
      ? rd.entries.filter((e) => e.index > this.#snapshotIndex)
      : rd.entries;
    // Before anything that could propose (a new leader's first batch is deferred, and may flush during the write).
    const snapshotState = rd.snapshot === null ? null : ClusterState.restore(rd.snapshot.data);
    this.#learnStamps(rd.snapshot, snapshotState, entries);
    if (rd.softState !== null) this.#onSoftState(rd.softState.role, rd.softState.leader);
    this.#send(rd.messagesNow);
    let write: Promise<void> | null = null;
    if (rd.snapshot !== null || rd.entries.length > 0 || rd.hardState !== null) {
      if (rd.mustSync) {
        // A commit index held back from an earlier Ready rides along, unless this Ready has a newer hard state.
        write = this.#o.store.write({ snapshot: rd.snapshot, entries, hardState: rd.hardState ?? this.#unwrittenHardState, sync: true });
        this.#unwrittenHardState = null;
      } else {
        // Only the commit index moved (entries, snapshots, terms and votes all set mustSync). It need not be on disk:
        // after a crash it is learned again from the leader, and an older one on disk is still true. So it is not
        // written on its own: it rides along with the next synced write.
        this.#unwrittenHardState = rd.hardState;
      }
      // Raft reads its log from #mem; what is in flight is still in its unstable tail, which it reads first, and
      // it marks entries stable only at persisted(), after the store made them durable.
      if (rd.snapshot !== null) this.#mem.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) this.#mem.append(rd.entries);
      if (rd.hardState !== null) this.#mem.setHardState(rd.hardState);
    }
    this.#afterWrite(rd, write);
    if (rd.snapshot === null) {
      this.#apply(rd, null);
      return null;
    }
    // A snapshot replaces the state machine: install it only once it is durable.
    return this.#persistTail.then(() => {
      if (!this.#stopped) this.#apply(rd, snapshotState);
    });
  }

  /**
   * Once `write` (null: nothing to write) and every earlier write are durable: sends the Ready's
   * `messagesAfterPersist` and reports the write to Raft. At once when nothing is in flight.
   */
  #afterWrite(rd: Ready, write: Promise<void> | null): void {
    const done = (): void => {
      if (this.#stopped) return;
      this.#send(rd.messagesAfterPersist);
      this.#raw.persisted(rd.persistId);
      this.#flushOutbox();
      // What the write made possible (commits, applies, answers) goes now, not a turn later; inside the loop
      // (a write with nothing to wait for) the loop itself picks it up.
      void this.#drive();
    };
    // writesInFlight counts this Ready's own write: 1 means no earlier one is pending.
    if (write === null && this.#raw.writesInFlight === 1) return done();
    const previous = this.#persistTail;
    this.#persistTail = (write === null ? previous : Promise.all([previous, write])).then(done).catch((err: Error) => this.#die(err));
  }

  /** Applies what `rd` hands out (its snapshot, then its committed entries), answers reads, and advances Raft. */
  #apply(rd: Ready, snapshotState: ClusterState | null): void {
    if (rd.snapshot !== null) this.#installSnapshot(rd.snapshot, snapshotState!);
    for (const entry of rd.committedEntries) this.#applyEntry(entry);
    this.#reads.confirmed(rd.readStates);
    this.#reads.release(this.#appliedIndex);
    this.#raw.advance();
    // Raft applies conf changes at advance(): only now does status().confState show them.
    if (rd.snapshot !== null || rd.committedEntries.some((e) => e.type === "confChange")) this.#membershipChanged();
    if (this.#caughtUpWaiters.length > 0 && (this.#role !== "leader" || this.isCaughtUpLeader)) this.#releaseCaughtUpWaiters();
    if (this.#role === "leader") this.#armDeadline();
    this.#maybeSnapshot();
  }

  /**
   * Queues messages for their peers. The outbox goes out (one frame per peer) when the Ready loop stops for this
   * turn, or when a write's messages were queued, so the Readies of one turn share one frame per peer; a peer's
   * batch goes out at once when it holds OUTBOX_FLUSH_BYTES of payload (frames stay far below the peer limit).
   */
  #send(messages: readonly Message[]): void {
    for (const m of messages) {
      let box = this.#outbox.get(m.to);
      if (box === undefined) {
        box = { messages: [], bytes: 0 };
        this.#outbox.set(m.to, box);
      }
      box.messages.push(m);
      box.bytes += payloadBytes(m);
      if (box.bytes >= OUTBOX_FLUSH_BYTES) {
        this.#outbox.delete(m.to);
        this.#o.env.sendPeer(m.to, box.messages);
      }
    }
  }

  #flushOutbox(): void {
    if (this.#outbox.size === 0) return;
    const outbox = this.#outbox;
    this.#outbox = new Map();
    for (const [to, box] of outbox) this.#o.env.sendPeer(to, box.messages);
  }

  #onSoftState(role: Role, leader: NodeId | null): void {
    const wasLeader = this.#role === "leader";
    const leaderChanged = leader !== this.#leader;
    this.#role = role;
    this.#leader = leader;
    if (leaderChanged || wasLeader !== (role === "leader")) {
      this.#log.info({ role, leader, term: this.#raw.status().term }, "leadership changed");
    }
    if (!wasLeader && role === "leader") this.#termStartIndex = this.#raw.status().lastIndex; // the new term's no-op
    if (wasLeader && role !== "leader") {
      this.#termStartIndex = Infinity;
      this.#firstBatchOfTerm = false;
      this.#proposals.failAll(new ProposalLostError("leadership moved before the proposal applied; it may still apply"));
      this.#reads.failAll(new NotLeaderError(leader));
      this.#proposals.dropBatch();
      this.#deadlines.reset();
    }
    if (!wasLeader && role === "leader") {
      // A new leader gives every session a fresh TTL: a leader change never expires a live session.
      this.#firstBatchOfTerm = true;
      this.#proposals.enqueue({ t: "limiter", cmd: { type: "renewSessions" } });
      if (!this.#state.bootstrapped) this.#proposals.enqueue({ t: "bootstrap", ops: this.#o.bootstrapOps });
      const seed = this.#o.adminSeed ?? null;
      // The state may lag what earlier leaders committed: the seed is checked again when it applies.
      if (seed !== null && this.#state.keys.adminCount === 0) this.#proposals.enqueue({ t: "adminSeed", key: seed });
      this.whenCaughtUp(() => this.#checkAdminKeys());
    }
    for (const l of this.#roleListeners) l(role, leader);
    if (role !== "leader" && this.#caughtUpWaiters.length > 0) this.#releaseCaughtUpWaiters();
    // Ends a handover after the listeners ran, so that clients were already told of the new leader.
    if (this.#handOver !== null && role !== "leader" && leader !== null) this.#endHandOver(leader);
  }

  /**
   * Asks Raft to transfer leadership to the voter with the longest log, preferring voters not tried yet (a
   * stalled transfer's target may be down). Logs the choice.
   */
  #transferToBestVoter(tried: Set<NodeId>): void {
    const s = this.#raw.status();
    const candidates = s.confState.voters
      .filter((v) => v !== this.id)
      .map((id) => ({ id, match: s.progress?.[id]?.match ?? 0 }))
      .sort((a, b) => b.match - a.match || (a.id < b.id ? -1 : 1));
    if (candidates.length === 0) return void this.#log.warn("no other voter to hand leadership to");
    if (candidates.every((c) => tried.has(c.id))) tried.clear();
    const target = candidates.find((c) => !tried.has(c.id))!;
    tried.add(target.id);
    const result = this.#raw.transferLeadership(target.id);
    this.#log.info({ to: target.id, match: target.match, lastIndex: s.lastIndex, term: s.term, outcome: result.outcome }, "handing leadership over");
  }

  /** Resolves the handover's waiters; proposals held meanwhile go out if this node still leads. */
  #endHandOver(heir: NodeId | null): void {
    const handOver = this.#handOver;
    if (handOver === null) return;
    this.#handOver = null;
    this.#o.env.clearTimer(handOver.deadline);
    if (handOver.retry !== null) this.#o.env.clearTimer(handOver.retry);
    if (heir !== null) this.#log.info({ to: heir, term: this.#raw.status().term }, "leadership handed over");
    else if (!this.#stopped) this.#log.warn({ role: this.#role }, "leadership handover did not finish in time");
    if (this.#role === "leader" && this.#proposals.batched) this.#proposals.scheduleFlush();
    for (const resolve of handOver.waiters) resolve(heir);
  }

  #membershipChanged(): void {
    const conf = this.#raw.status().confState;
    for (const l of this.#membershipListeners) l(conf);
  }

  #releaseCaughtUpWaiters(): void {
    const waiters = this.#caughtUpWaiters;
    this.#caughtUpWaiters = [];
    for (const fn of waiters) fn();
  }

  #installSnapshot(snapshot: Snapshot, state: ClusterState): void {
    this.#state = state;
    this.#appliedIndex = snapshot.meta.index;
    this.#snapshotIndex = snapshot.meta.index;
    this.#lastAt = this.#state.limiter.lastAt;
    this.#log.info({ index: snapshot.meta.index, bytes: snapshot.data.length }, "installed snapshot from the leader");
    this.#checkAdminFlag();
  }

  /**
   * The key table is the only authority on admin keys. A node whose --admin-key is not an admin key in it (another
   * node seeded the table with a different key, or the key was revoked) says so once: its flag grants nothing.
   */
  #checkAdminFlag(): void {
    const seed = this.#o.adminSeed ?? null;
    if (seed === null) return;
    const held = this.#state.keys.get(seed.id);
    const ignored = this.#state.keys.adminCount > 0 && !(held !== undefined && held.hash === seed.hash && held.scope === "admin");
    if (ignored && !this.#adminFlagIgnored) {
      this.#log.warn(
        { adminKeys: this.#state.keys.adminCount },
        "--admin-key is not an admin key in the cluster's key table, which wins: this node's flag grants nothing. " +
          "Use an admin key the table holds (ratequeue keys list), or drop the flag",
      );
    }
    this.#adminFlagIgnored = ignored;
  }

  /** A caught-up leader whose table holds no admin key and which has no --admin-key to seed it says how to recover. */
  #checkAdminKeys(): void {
    if (!this.isCaughtUpLeader || this.#state.keys.adminCount > 0 || (this.#o.adminSeed ?? null) !== null) return;
    this.#log.error(
      "the key table holds no admin key, so nobody can administer this cluster. To recover, restart the nodes one " +
        "at a time, this leader last, with --admin-key <a new secret of 16+ characters> (RATEQUEUE_ADMIN_KEY): the " +
        "next leader adds that key to the table as an admin key",
    );
  }

  #applyEntry(entry: Entry): void {
    this.#appliedIndex = entry.index;
    if (entry.type !== "normal" || entry.data.length === 0) return; // conf changes: Raft applies them; no-ops: nothing
    const payload = decodePayload(entry.data);
    const results = this.#state.apply(payload);
    this.#lastAt = this.#state.limiter.lastAt;
    if (results.some((r) => r.op.t !== "limiter" && r.op.t !== "memberAddress")) this.#checkAdminFlag();
    for (const listener of this.#applyListeners) listener(results, this.#lastAt, entry.index);
    for (const r of results) if (r.op.pid !== undefined && r.op.t === "limiter" && r.op.cmd.type === "tick") this.#deadlines.tickInFlight = false;
    this.#proposals.settle(results);
  }

  #maybeSnapshot(): void {
    if (this.#appliedIndex - this.#snapshotIndex < this.#o.snapshotEntries) return;
    const index = this.#appliedIndex;
    const data = this.#state.snapshot();
    const snapshot = this.#mem.createSnapshot(index, this.#raw.status().confState, data);
    this.#snapshotIndex = index;
    // Keep a tail behind the snapshot for briefly lagging followers, but never more than the snapshot interval
    // (an operator who snapshots every n entries asked for a log of about n). Compact only when that moves the
    // start: compacting to an index already compacted is an error (the first snapshots of a young log).
    const compactTo = index - Math.min(CATCH_UP_ENTRIES, this.#o.snapshotEntries);
    if (compactTo > this.#mem.firstIndex() - 1) this.#mem.compact(compactTo);
    // Not awaited: the store keeps call order, and a failure stops the node.
    this.#o.store.compact(snapshot).then(
      () => this.#log.info({ index, bytes: data.length }, "snapshot taken, log compacted"),
      (err: Error) => this.#die(err),
    );
  }

  // ---------------------------------------------------------------------------
  // Proposals (leader)

  #flushBatch(): void {
    if (this.#handOver !== null && this.#role === "leader") return; // held: Raft refuses proposals during a transfer
    const ops = this.#proposals.take();
    if (ops.length === 0 || this.#stopped) return;
    const at = this.#clock.stamp(this.#o.env.monotonicNow(), this.#o.env.wallNow());
    const result = this.#raw.propose(encodePayload({ at, ops }));
    if (result.outcome === "accepted") {
      if (this.#firstBatchOfTerm) {
        this.#firstBatchOfTerm = false;
        this.#termStartIndex = Math.max(this.#termStartIndex, result.index);
      }
      this.#stampIndex = result.index;
      this.#ownTerm = result.term;
      for (const l of this.#proposeListeners) l({ index: result.index, term: result.term, at });
    } else {
      this.#firstBatchOfTerm = false; // its ops are lost with it: the term's no-op is the mark, as before
      this.#proposals.refuse(ops, new NotLeaderError(this.#leader));
      if (ops.some((op) => op.t === "limiter" && op.cmd.type === "tick")) this.#deadlines.tickInFlight = false;
    }
    this.#kick();
  }

  /**
   * Feeds the stamp clock what a Ready brings into this node's log: a snapshot, or entries from another leader
   * (this node's own proposals were counted when it stamped them). The clock counts from now, when they reached
   * this node, never from when they were stamped: across a change of leader log time may run slow, never fast.
   */
  #learnStamps(snapshot: Snapshot | null, snapshotState: ClusterState | null, entries: readonly Entry[]): void {
    const monoMs = this.#o.env.monotonicNow();
    if (snapshot !== null && snapshotState !== null && snapshotState.limiter.lastAt > 0) {
      this.#clock.learned(snapshotState.limiter.lastAt, monoMs);
      this.#stampIndex = snapshot.meta.index;
    }
    if (entries.length === 0 || entries.every((e) => e.term === this.#ownTerm)) return;
    for (let i = entries.length - 1; i >= 0; i--) {
      const at = stampOf(entries[i]!);
      if (at === null) continue;
      this.#clock.learned(at, monoMs);
      this.#stampIndex = entries[i]!.index;
      return;
    }
    // No stamp among them: if they replace the entry holding the last stamp, the last stamp is an earlier one.
    if (entries[0]!.index <= this.#stampIndex) this.#learnLastStamp(entries[0]!.index);
  }

  /** The clock learns the last stamp in this node's log below index `end` (at start, or when a tail was cut). */
  #learnLastStamp(end: number): void {
    const monoMs = this.#o.env.monotonicNow();
    const lo = this.#mem.firstIndex();
    for (let i = Math.min(end, this.#mem.lastIndex() + 1) - 1; i >= lo; i--) {
      const entry = this.#mem.entries(i, i + 1, Infinity)[0];
      const at = entry === undefined ? null : stampOf(entry);
      if (at === null) continue;
      this.#clock.learned(at, monoMs);
      this.#stampIndex = i;
      return;
    }
    // Everything below is applied: the limiter's log time is the last stamp there (none yet in a new cluster).
    if (this.#lastAt > 0) this.#clock.learned(this.#lastAt, monoMs);
    this.#stampIndex = lo - 1;
  }

  /** Arms a timer for the limiter's next deadline, when a tick entry will make time-driven changes happen. */
  #armDeadline(): void {
    this.#deadlines.arm(this.#state.limiter.nextDeadline(), (deadline) => this.#clock.delayUntil(deadline, this.#o.env.monotonicNow()));
  }

  #die(err: Error): void {
    if (this.#fatal !== null) return;
    this.#fatal = err;
    this.#log.fatal({ err }, "the node cannot continue");
    this.stop();
  }
}

/** The stamp a log entry carries, or null for entries without one (Raft's empty entries, configuration changes). */
function stampOf(entry: Entry): number | null {
  return entry.type === "normal" && entry.data.length > 0 ? decodePayload(entry.data).at : null;
}

/** The payload bytes a message carries (entries of an append, the data of a snapshot chunk). */
function payloadBytes(m: Message): number {
  if (m.type === "append") {
    let bytes = 0;
    for (const e of m.entries) bytes += e.data.byteLength;
    return bytes;
  }
  return m.type === "snapshot" ? m.data.byteLength : 0;
}
