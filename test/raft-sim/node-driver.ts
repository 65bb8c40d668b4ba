import {
  MemoryStorage,
  RawNode,
  createRng,
  decodeConfChange,
  type ConfChange,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type Snapshot,
} from "@ratequeue/raft";
import { SafetyViolation, type Checker, type ObservedStatus } from "./checkers/types.js";
import { LogState, type LogChange } from "./log-state.js";
import type { SimDisk } from "./sim-disk.js";
import { StateMachine } from "./state-machine.js";
import { appendRecord, recover } from "./wal.js";

/** The Raft settings every simulated node runs with (ticks and limits, as in RaftConfig). */
export interface SimRaftSettings {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMsgs: number;
  /** Raft's snapshotChunkBytes (small values send snapshots in many chunks). */
  readonly snapshotChunkBytes?: number;
}

/** What a Ready just handed out did, for fault placement (crash right after a vote or a win). */
export interface ReadyInfo {
  /** The Ready writes a new term or vote. */
  readonly votedOrNewTerm: boolean;
  /** The node has just become leader. */
  readonly becameLeader: boolean;
}

/** What a driver needs from the simulation around it. */
export interface DriverHost {
  nowMs(): number;
  send(message: Message): void;
  /** Calls `fn` after `delayMs` of simulated time. */
  after(delayMs: number, fn: () => void): void;
  /** Simulated fsync latency for this node's next sync. */
  syncLatencyMs(node: NodeId): number;
  readonly checkers: readonly Checker[];
  /** The node applied `entry` (the workload turns this into acknowledgements). */
  onApplied(node: NodeId, entry: Entry): void;
  /** A fresh seed for a (re)started node's RawNode, drawn from the run's generator. */
  nodeSeed(node: NodeId): number;
  /** A Ready was handed out and written (not yet synced). */
  onReady?(node: NodeId, info: ReadyInfo): void;
  /** A ReadIndex answer for a read this node started. */
  onReadState?(node: NodeId, index: number, context: Uint8Array): void;
}

/** A Ready's write in flight (asynchronous writes): what it sends and reports once it and every earlier one is done. */
interface InFlightWrite {
  readonly persistId: number;
  readonly messagesAfterPersist: readonly Message[];
  /** It needs an fsync (its Ready's `mustSync`); otherwise it is done once every earlier write is. */
  readonly sync: boolean;
  /** Its fsync finished (the disk synced it, maybe with later writes' bytes too). */
  synced: boolean;
}

/** Messages a busy or paused node holds before it drops more (a real node's bounded socket buffers). */
const INBOX_MAX = 4096;

/**
 * Runs one RawNode the way a real node's loop would, following the Ready
 * contract exactly: send `messagesNow`, write the snapshot, entries and hard
 * state to the WAL on its SimDisk, wait for the simulated fsync when
 * `mustSync`, send `messagesAfterPersist`, apply, `advance()`. While a sync is
 * in flight (or the process is paused) the loop is blocked: ticks and
 * messages wait, as they would behind a blocked event loop.
 *
 * It restarts from what its disk kept, and snapshots and compacts its log
 * every `snapshotEveryEntries` applied entries so snapshot install is
 * exercised. Everything it observes goes to the checkers.
 */
export class NodeDriver {
  readonly id: NodeId;
  readonly disk: SimDisk;
  /** What this node handed to storage (the WAL as the page cache sees it). */
  volatileLog = new LogState();
  /** What would survive a crash right now. */
  durableLog = new LogState();
  readonly #host: DriverHost;
  readonly #settings: SimRaftSettings;
  readonly #snapshotEveryEntries: number;
  readonly #snapshotKeepEntries: number;
  readonly #sendBeforeSync: boolean;
  readonly #stepDuringSync: boolean;
  readonly #asyncWrites: boolean;
  /** Asynchronous writes: the writes in flight, oldest first; they complete in this order. */
  #writes: InFlightWrite[] = [];
  /** Asynchronous writes: simulated time when the latest fsync started will finish (fsyncs finish in order). */
  #lastSyncDoneMs = 0;
  /** Asynchronous writes: a Ready with a snapshot, applied once its write is durable; the loop takes no Ready meanwhile. */
  #snapshotReady: Ready | null = null;
  /** Asynchronous writes: an fsync finished while the process was paused. */
  #writesDoneWhilePaused = false;
  #raft: RawNode | null = null;
  #storage: MemoryStorage | null = null;
  #sm: StateMachine = StateMachine.initial({ voters: [], learners: [], removed: [] });
  #unsynced: LogChange[] = [];
  /** A Ready waiting for its fsync. */
  #pending: Ready | null = null;
  /** The fsync finished while the process was paused. */
  #syncDoneWhilePaused = false;
  #paused = false;
  #inbox: Message[] = [];
  #tickPending = false;
  /** Bumped on every crash, so a stale fsync completion is ignored. */
  #epoch = 0;
  #status: ObservedStatus | null = null;
  restarts = 0;
  droppedWhileBusy = 0;
  /** Synced writes that dropped durable entries (a follower overwriting a divergent suffix, a snapshot install). */
  durableShrinks = 0;
  snapshotsInstalled = 0;
  snapshotsTaken = 0;

  constructor(options: {
    id: NodeId;
    disk: SimDisk;
    host: DriverHost;
    settings: SimRaftSettings;
    snapshotEveryEntries: number;
    snapshotKeepEntries: number;
    /** Sabotage for the simulator's own tests: breaks step 3 of the Ready contract. */
    sendBeforeSync?: boolean;
    /**
     * Step messages and ticks into the RawNode while an fsync is in flight
     * (the contract allows step() and tick() between ready() and advance();
     * their output waits for the next Ready), as a driver with asynchronous
     * writes does. Otherwise they wait behind the fsync.
     */
    stepDuringSync?: boolean;
    /**
     * Asynchronous storage writes (RawNode's `asyncStorageWrites`): the loop takes the next Ready while earlier
     * writes are in flight; fsyncs finish in the order they started; committed entries are applied as they come
     * (Raft hands out only durable ones); `messagesAfterPersist` go out, and `persisted()` is called, as each write
     * and every earlier one is done. A crash loses every write in flight.
     */
    asyncWrites?: boolean;
  }) {
    this.#stepDuringSync = options.stepDuringSync ?? false;
    this.#asyncWrites = options.asyncWrites ?? false;
    this.#sendBeforeSync = options.sendBeforeSync ?? false;
    this.id = options.id;
    this.disk = options.disk;
    this.#host = options.host;
    this.#settings = options.settings;
    this.#snapshotEveryEntries = options.snapshotEveryEntries;
    this.#snapshotKeepEntries = options.snapshotKeepEntries;
  }

  get up(): boolean {
    return this.#raft !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get stateMachine(): StateMachine {
    return this.#sm;
  }

  /** The node's status after its last step, or null while down. */
  get status(): ObservedStatus | null {
    return this.#status;
  }

  /** Writes the bootstrap snapshot a founder starts from, durably. Call once, before `start()`. */
  bootstrap(snapshot: Snapshot): void {
    if (this.disk.durableBytes > 0) throw new Error(`${this.id}: bootstrap on a used disk`);
    appendRecord(this.disk, { type: "installSnapshot", snapshot });
    this.disk.sync();
  }

  /** Starts (or restarts) the process from what its disk holds. */
  start(): void {
    if (this.up) throw new Error(`${this.id}: start while running`);
    const { log } = recover(this.disk);
    this.volatileLog = log;
    this.durableLog = cloneLog(log);
    const storage = new MemoryStorage();
    if (log.snapshot !== null) storage.applySnapshot(log.snapshot);
    if (log.hardState !== null) storage.setHardState(log.hardState);
    storage.append(log.entries);
    this.#sm = log.snapshot !== null ? StateMachine.fromSnapshot(log.snapshot) : StateMachine.initial({ voters: [], learners: [], removed: [] });
    this.#storage = storage;
    this.#raft = new RawNode({
      id: this.id,
      storage,
      rng: createRng(this.#host.nodeSeed(this.id)),
      electionTicks: this.#settings.electionTicks,
      heartbeatTicks: this.#settings.heartbeatTicks,
      preVote: this.#settings.preVote,
      checkQuorum: this.#settings.checkQuorum,
      maxSizePerMsgBytes: this.#settings.maxSizePerMsgBytes,
      maxInflightMsgs: this.#settings.maxInflightMsgs,
      ...(this.#settings.snapshotChunkBytes === undefined ? {} : { snapshotChunkBytes: this.#settings.snapshotChunkBytes }),
      applied: this.#sm.image.index,
      asyncStorageWrites: this.#asyncWrites,
    });
    this.#writes = [];
    this.#snapshotReady = null;
    this.#writesDoneWhilePaused = false;
    this.#paused = false;
    this.#inbox = [];
    this.#tickPending = false;
    this.#pending = null;
    this.#syncDoneWhilePaused = false;
    for (const c of this.#host.checkers) c.onRestore?.({ node: this.id, image: this.#sm.image, cause: "restart" });
    this.#refreshStatus();
    this.#drive();
  }

  /** Power loss: the process stops and the disk keeps only what it had synced (maybe with a torn tail). */
  crash(): void {
    if (!this.up) return;
    this.#raft = null;
    this.#storage = null;
    this.#status = null;
    this.#epoch++;
    this.#pending = null;
    this.#syncDoneWhilePaused = false;
    this.#writes = [];
    this.#snapshotReady = null;
    this.#writesDoneWhilePaused = false;
    this.#paused = false;
    this.#tickPending = false;
    this.#unsynced = [];
    this.#inbox = [];
    this.disk.crash();
    // What a restart will find, torn tail already cut.
    this.volatileLog = recover(this.disk).log;
    this.durableLog = cloneLog(this.volatileLog);
    this.restarts++;
  }

  pause(): void {
    if (this.up) this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#syncDoneWhilePaused) {
      this.#syncDoneWhilePaused = false;
      this.#finishSync();
    }
    if (this.#writesDoneWhilePaused) {
      this.#writesDoneWhilePaused = false;
      this.#completeWrites();
    }
    this.#flushBuffered();
    if (this.#asyncWrites) this.#drive();
  }

  tick(): void {
    if (this.#raft === null) return;
    if (this.#stepsDuringSync()) {
      this.#raft.tick();
      this.#refreshStatus();
      return;
    }
    if (this.#busy()) {
      // A blocked loop coalesces missed ticks into one, like a timer that fires late.
      this.#tickPending = true;
      return;
    }
    this.#raft.tick();
    this.#drive();
  }

  receive(message: Message): void {
    if (this.#raft === null) return;
    if (this.#stepsDuringSync()) {
      this.#raft.step(message);
      this.#refreshStatus();
      return;
    }
    if (this.#busy()) {
      if (this.#inbox.length < INBOX_MAX) this.#inbox.push(message);
      else this.droppedWhileBusy++;
      return;
    }
    this.#raft.step(message);
    this.#drive();
  }

  /** Proposes `data` here; returns the core's answer, or null when the node is down or paused. */
  propose(data: Uint8Array): ReturnType<RawNode["propose"]> | null {
    if (this.#raft === null || this.#paused) return null;
    const result = this.#raft.propose(data);
    this.#drive();
    return result;
  }

  proposeConfChange(change: ConfChange): ReturnType<RawNode["proposeConfChange"]> | null {
    if (this.#raft === null || this.#paused) return null;
    const result = this.#raft.proposeConfChange(change);
    this.#drive();
    return result;
  }

  transferLeadership(to: NodeId): void {
    if (this.#raft === null || this.#paused) return;
    this.#raft.transferLeadership(to);
    this.#drive();
  }

  /** Starts a ReadIndex read; false when the node is down, paused or refused it. */
  readIndex(context: Uint8Array): boolean {
    if (this.#raft === null || this.#paused) return false;
    const result = this.#raft.readIndex(context);
    this.#drive();
    return result.outcome !== "refused";
  }

  #busy(): boolean {
    return this.#paused || this.#pending !== null;
  }

  /** The loop takes no Ready now (paused, waiting for an fsync, or for a snapshot's write). */
  #blocked(): boolean {
    return this.#busy() || this.#snapshotReady !== null;
  }

  #stepsDuringSync(): boolean {
    if (this.#asyncWrites) return !this.#paused && this.#snapshotReady !== null;
    return this.#stepDuringSync && !this.#paused && this.#pending !== null;
  }

  #flushBuffered(): void {
    while (this.#raft !== null && !this.#busy()) {
      if (this.#tickPending) {
        this.#tickPending = false;
        this.#raft.tick();
      } else {
        const message = this.#inbox.shift();
        if (message === undefined) break;
        this.#raft.step(message);
      }
      this.#drive();
    }
  }

  #drive(): void {
    while (this.#raft !== null && !this.#blocked() && this.#raft.hasReady()) {
      const ready = this.#raft.ready();
      if (this.#asyncWrites) this.#handleReadyAsync(ready);
      else this.#handleReady(ready);
    }
    this.#refreshStatus();
  }

  /** Writes what `ready` holds to the WAL (volatile until an fsync) and to the in-memory storage Raft reads. */
  #writeReady(ready: Ready, role: ObservedStatus["role"], term: number): void {
    if (ready.snapshot !== null) {
      this.#storage!.applySnapshot(ready.snapshot);
      this.#write({ type: "installSnapshot", snapshot: ready.snapshot }, role, term);
    }
    if (ready.entries.length > 0) {
      this.#storage!.append(ready.entries);
      this.#write({ type: "entries", entries: ready.entries }, role, term);
    }
    if (ready.hardState !== null) {
      this.#storage!.setHardState(ready.hardState);
      this.#write({ type: "hardState", hardState: ready.hardState }, role, term);
    }
  }

  /**
   * The Ready loop with asynchronous writes: send `messagesNow`, start the write (its fsync finishes after the
   * simulated latency, never before an earlier one), apply the committed entries Raft handed out (durable ones
   * only), `advance()`, and take the next Ready without waiting. A snapshot is applied only once its write is done.
   */
  #handleReadyAsync(ready: Ready): void {
    const raft = this.#raft!;
    const { role, term } = raft.status();
    const before = this.volatileLog.hardState;
    const hard = ready.hardState;
    const votedOrNewTerm = hard !== null && (before === null || before.term !== hard.term || before.vote !== hard.vote);
    for (const m of ready.messagesNow) this.#send(m);
    this.#writeReady(ready, role, term);
    this.#host.onReady?.(this.id, { votedOrNewTerm, becameLeader: ready.softState?.role === "leader" });
    // Sabotage (sendBeforeSync): the messages that promise durable state go out before their write is done.
    if (this.#sendBeforeSync) for (const m of ready.messagesAfterPersist) this.#send(m);
    const messagesAfterPersist = this.#sendBeforeSync ? [] : ready.messagesAfterPersist;
    const write: InFlightWrite = { persistId: ready.persistId, messagesAfterPersist, sync: ready.mustSync, synced: false };
    this.#writes.push(write);
    if (write.sync) {
      const epoch = this.#epoch;
      const doneMs = Math.max(this.#host.nowMs() + this.#host.syncLatencyMs(this.id), this.#lastSyncDoneMs);
      this.#lastSyncDoneMs = doneMs;
      this.#host.after(doneMs - this.#host.nowMs(), () => {
        if (epoch !== this.#epoch) return; // the node crashed meanwhile: that write never finished
        write.synced = true;
        if (this.#paused) this.#writesDoneWhilePaused = true;
        else {
          this.#completeWrites();
          this.#drive();
        }
      });
    }
    if (ready.snapshot !== null) this.#snapshotReady = ready;
    // A write with nothing to sync is done as soon as every earlier one is.
    this.#completeWrites();
    if (ready.snapshot === null) this.#applyReady(ready);
  }

  /** Asynchronous writes: finishes, in order, every write whose fsync is done (or that needed none). */
  #completeWrites(): void {
    let first = true;
    while (this.#raft !== null && this.#writes.length > 0) {
      const write = this.#writes[0]!;
      if (write.sync && !write.synced) break;
      if (write.sync && first) {
        // One fsync makes every byte written so far durable, later writes' too.
        this.disk.sync();
        this.#markUnsyncedDurable();
        first = false;
      }
      this.#writes.shift();
      for (const m of write.messagesAfterPersist) this.#send(m);
      this.#raft.persisted(write.persistId);
      const held = this.#snapshotReady;
      if (held !== null && held.persistId === write.persistId) {
        this.#snapshotReady = null;
        this.#applyReady(held);
      }
    }
  }

  /** Steps 4 and 5 of the Ready contract with asynchronous writes: apply, then `advance()`. */
  #applyReady(ready: Ready): void {
    if (ready.snapshot !== null) {
      this.#sm = StateMachine.fromSnapshot(ready.snapshot);
      this.snapshotsInstalled++;
      for (const c of this.#host.checkers) c.onRestore?.({ node: this.id, image: this.#sm.image, cause: "snapshot" });
    }
    for (const entry of ready.committedEntries) this.#apply(entry);
    for (const rs of ready.readStates) this.#host.onReadState?.(this.id, rs.index, rs.context);
    this.#raft!.advance();
    this.#maybeSnapshot();
  }

  #markUnsyncedDurable(): void {
    for (const change of this.#unsynced) {
      const head = change.type === "entries" ? change.entries[0] : undefined;
      if (change.type === "installSnapshot" || (head !== undefined && head.index <= this.durableLog.lastIndex())) this.durableShrinks++;
      this.durableLog.apply(change);
    }
    this.#unsynced = [];
  }

  #handleReady(ready: Ready): void {
    const raft = this.#raft!;
    const { role, term } = raft.status();
    const before = this.volatileLog.hardState;
    const hard = ready.hardState;
    const votedOrNewTerm = hard !== null && (before === null || before.term !== hard.term || before.vote !== hard.vote);
    for (const m of ready.messagesNow) this.#send(m);
    if (ready.snapshot !== null) {
      this.#storage!.applySnapshot(ready.snapshot);
      this.#write({ type: "installSnapshot", snapshot: ready.snapshot }, role, term);
    }
    if (ready.entries.length > 0) {
      this.#storage!.append(ready.entries);
      this.#write({ type: "entries", entries: ready.entries }, role, term);
    }
    if (ready.hardState !== null) {
      this.#storage!.setHardState(ready.hardState);
      this.#write({ type: "hardState", hardState: ready.hardState }, role, term);
    }
    this.#host.onReady?.(this.id, {
      votedOrNewTerm,
      becameLeader: ready.softState?.role === "leader",
    });
    if (ready.mustSync) {
      if (this.#sendBeforeSync) for (const m of ready.messagesAfterPersist) this.#send(m);
      this.#pending = ready;
      const epoch = this.#epoch;
      this.#host.after(this.#host.syncLatencyMs(this.id), () => {
        if (epoch !== this.#epoch) return; // the node crashed meanwhile: that fsync never finished
        if (this.#paused) this.#syncDoneWhilePaused = true;
        else {
          this.#finishSync();
          this.#drive();
          this.#flushBuffered();
        }
      });
      return;
    }
    this.#afterPersist(ready);
  }

  #finishSync(): void {
    this.disk.sync();
    this.#markUnsyncedDurable();
    const ready = this.#pending;
    if (ready === null) throw new Error(`${this.id}: fsync finished with no Ready waiting`);
    this.#pending = null;
    this.#afterPersist(ready, this.#sendBeforeSync);
  }

  /** Steps 3 to 5 of the Ready contract. */
  #afterPersist(ready: Ready, alreadySent = false): void {
    if (!alreadySent) for (const m of ready.messagesAfterPersist) this.#send(m);
    if (ready.snapshot !== null) {
      this.#sm = StateMachine.fromSnapshot(ready.snapshot);
      this.snapshotsInstalled++;
      for (const c of this.#host.checkers) c.onRestore?.({ node: this.id, image: this.#sm.image, cause: "snapshot" });
    }
    for (const entry of ready.committedEntries) this.#apply(entry);
    for (const rs of ready.readStates) this.#host.onReadState?.(this.id, rs.index, rs.context);
    this.#raft!.advance();
    this.#maybeSnapshot();
  }

  #apply(entry: Entry): void {
    // The Ready contract promises committed entries are already durable here.
    const durableTerm = this.durableLog.termAt(entry.index);
    const coveredBySnapshot = entry.index <= (this.durableLog.snapshotMeta?.index ?? 0);
    if (!coveredBySnapshot && durableTerm !== entry.term) {
      throw new SafetyViolation(
        "Ready contract",
        `${this.id} was told to apply ${entry.index} (term ${entry.term}) which is not durable locally (durable term ${durableTerm})`,
      );
    }
    if (entry.index <= this.#sm.image.index) return; // already in the state machine (restored from a snapshot)
    this.#sm.apply(entry, decodeConfChange);
    for (const c of this.#host.checkers) c.onApply?.({ node: this.id, entry, image: this.#sm.image });
    this.#host.onApplied(this.id, entry);
  }

  #maybeSnapshot(): void {
    const image = this.#sm.image;
    const storage = this.#storage!;
    const snapshotIndex = storage.snapshot().meta.index;
    if (image.index - snapshotIndex < this.#snapshotEveryEntries) return;
    const snapshot = storage.createSnapshot(image.index, image.confState, this.#sm.snapshotData());
    this.snapshotsTaken++;
    // Written like any record and synced with the next Ready: a crash before
    // then loses or tears it, and recovery must fall back to the older log.
    const status = this.#raft!.status();
    this.#write({ type: "compact", snapshot }, status.role, status.term);
    const compactTo = image.index - this.#snapshotKeepEntries;
    if (compactTo >= storage.firstIndex()) storage.compact(compactTo);
  }

  #write(change: LogChange, role: ObservedStatus["role"], term: number): void {
    const commit = this.#raft?.status().commit ?? 0;
    for (const c of this.#host.checkers) c.onLogWrite?.({ node: this.id, role, term, commit, change, before: this.volatileLog });
    this.volatileLog.apply(change);
    appendRecord(this.disk, change);
    this.#unsynced.push(change);
  }

  #send(message: Message): void {
    if (message.from !== this.id) throw new Error(`${this.id} sent a message from ${message.from}`);
    for (const c of this.#host.checkers) c.onSend?.({ message, durable: this.durableLog, log: this.volatileLog });
    this.#host.send(message);
  }

  #refreshStatus(): void {
    if (this.#raft === null) {
      this.#status = null;
      return;
    }
    const s = this.#raft.status();
    this.#status = {
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commit: s.commit,
      applied: s.applied,
      lastIndex: s.lastIndex,
      voters: s.confState.voters,
    };
  }
}

function cloneLog(log: LogState): LogState {
  const copy = new LogState();
  if (log.snapshot !== null) copy.apply({ type: "installSnapshot", snapshot: log.snapshot });
  if (log.hardState !== null) copy.apply({ type: "hardState", hardState: log.hardState });
  copy.apply({ type: "entries", entries: [...log.entries] });
  return copy;
}
