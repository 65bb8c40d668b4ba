import { bootstrapSnapshot, type ConfChange, type Entry, type Message, type NodeId, type ProposeResult } from "@ratequeue/raft";
import { createCheckers, type ClusterView, type NodeView } from "./checkers/index.js";
import { EventQueue } from "./event-queue.js";
import { NodeDriver, type SimRaftSettings } from "./node-driver.js";
import { Prng } from "@ratequeue/testkit";
import { SimDisk, type DiskFaults } from "./sim-disk.js";
import { SimNetwork, type NetworkFaults } from "./sim-network.js";
import { Workload, type ProposeAnswer, type WorkloadOptions } from "./workload.js";

export interface ClusterOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly raft: SimRaftSettings;
  /** Simulated ms between two ticks of a node's clock, before drift. */
  readonly tickMs: number;
  /** Each node's tick period differs from tickMs by up to this many ms (clock drift). */
  readonly tickDriftMs: number;
  readonly network: NetworkFaults;
  readonly disk: DiskFaults;
  /** Simulated fsync latency, uniform in [min, max] ms. */
  readonly syncMinMs: number;
  readonly syncMaxMs: number;
  readonly snapshotEveryEntries: number;
  readonly snapshotKeepEntries: number;
  readonly workload: WorkloadOptions;
  /** True when the run may change membership (the durable-majority check then stands down). */
  readonly membershipChanges: boolean;
  /**
   * Deliberately break the driver, to prove the checkers catch it:
   * "sendBeforeSync" sends votes and append acks before their fsync.
   */
  readonly sabotage?: "sendBeforeSync";
  /** Drivers step messages and ticks while an fsync is in flight (see NodeDriver). */
  readonly stepDuringSync?: boolean;
  /** Drivers use asynchronous storage writes: several writes in flight, the loop never waits for the disk (see NodeDriver). */
  readonly asyncWrites?: boolean;
  /** Chance that a node is crashed right after a Ready that votes, raises its term or wins, around its fsync. */
  readonly electionCrashRate?: number;
  /** Chance that a new leader is cut off (alone or with one follower) or crashed soon after it wins. */
  readonly leaderCutRate?: number;
  /** Clients that issue ReadIndex reads at random nodes. */
  readonly readers?: number;
  /** Each tick of each node comes up to this many ms early or late, on top of its drift. */
  readonly tickJitterMs?: number;
}

/** Bounds on the faults the nemesis adds by itself, so that a run keeps making progress. */
const NEMESIS_FAULTS_MAX = 24;

/**
 * N real RawNodes in one process on a simulated network, disks and clock,
 * all driven from one seed. Every step is one event (a tick, a message, a
 * finished fsync, a client action, a fault); after each one every safety
 * checker runs. Scenario tests script it through the methods below; the
 * randomized runner drives it from a fault schedule.
 */
export class SimCluster {
  readonly options: ClusterOptions;
  readonly network: SimNetwork<Message>;
  readonly workload: Workload;
  readonly checkers = createCheckers();
  readonly #queue = new EventQueue<() => void>();
  readonly #drivers = new Map<NodeId, NodeDriver>();
  readonly #prng: Prng;
  /** Seeds for each RawNode (re)start, a stream of their own. */
  readonly #nodeSeeds: Prng;
  #nowMs = 0;
  #steps = 0;
  #durableShrank = false;
  #durableShrinksSeen = 0;
  #nextNodeNumber: number;
  /** Set when a test freezes a node's clock (it stops ticking until thawed). */
  readonly #frozenClocks = new Set<NodeId>();
  readonly #transcript: string[] = [];
  /** A script's hook, called after a node has handled a delivered message (e.g. to crash it right then). */
  onDelivered: ((message: Message) => void) | null = null;
  /** A script's hook, called for every entry any node applies. */
  onApplied: ((node: NodeId, entry: Entry) => void) | null = null;
  /** While true, the nemesis options (electionCrashRate, leaderCutRate) add faults; the liveness phase turns it off. */
  nemesisOn = true;
  #nemesisFaults = 0;
  readonly #nemesisPrng: Prng;
  #readSeq = 0;
  readonly #readsIssued = new Map<string, number>();
  readsAnswered = 0;
  readonly #acceptedConfChanges: { node: NodeId; index: number; change: ConfChange }[] = [];

  constructor(options: ClusterOptions) {
    if (!Number.isInteger(options.nodeCount) || options.nodeCount < 1 || options.nodeCount > 9) {
      throw new RangeError(`nodeCount must be 1..9, got ${options.nodeCount}`);
    }
    if (!Number.isInteger(options.tickMs) || options.tickMs < 1 || options.tickDriftMs < 0 || options.tickDriftMs >= options.tickMs) {
      throw new RangeError(`tickMs must be a positive integer above tickDriftMs, got ${options.tickMs} / ${options.tickDriftMs}`);
    }
    this.options = options;
    const root = new Prng(options.seed);
    this.#prng = root.fork();
    this.#nodeSeeds = root.fork();
    this.network = new SimNetwork<Message>({ prng: root.fork(), faults: options.network });
    this.workload = new Workload({
      prng: root.fork(),
      workload: options.workload,
      host: {
        nowMs: () => this.#nowMs,
        after: (delayMs, fn) => this.after(delayMs, fn),
        reachableNodes: () => this.nodeIds().filter((id) => this.driver(id).up && !this.driver(id).paused),
        propose: (node, data) => this.#propose(node, data),
        checkers: this.checkers.all,
      },
    });
    this.#nemesisPrng = root.fork();
    const founders = Array.from({ length: options.nodeCount }, (_, i) => `n${i + 1}`);
    this.#nextNodeNumber = options.nodeCount + 1;
    const bootstrap = bootstrapSnapshot({ voters: founders });
    for (const id of founders) {
      const driver = this.#createDriver(id);
      driver.bootstrap(bootstrap);
    }
    for (const id of founders) this.#startNode(id);
    for (let r = 0; r < (options.readers ?? 0); r++) this.#scheduleRead();
    this.#checkAll();
  }

  get nowMs(): number {
    return this.#nowMs;
  }

  get steps(): number {
    return this.#steps;
  }

  nodeIds(): NodeId[] {
    return [...this.#drivers.keys()];
  }

  driver(id: NodeId): NodeDriver {
    const d = this.#drivers.get(id);
    if (d === undefined) throw new Error(`no node ${id}`);
    return d;
  }

  /** The leader with the highest term among running nodes, or null. */
  leader(): NodeId | null {
    let best: { id: NodeId; term: number } | null = null;
    for (const d of this.#drivers.values()) {
      const s = d.status;
      if (s !== null && s.role === "leader" && (best === null || s.term > best.term)) best = { id: s.id, term: s.term };
    }
    return best?.id ?? null;
  }

  /** Runs `fn` after `delayMs` of simulated time, as one step. */
  after(delayMs: number, fn: () => void): void {
    if (!Number.isInteger(delayMs) || delayMs < 0) throw new RangeError(`delayMs must be an integer >= 0, got ${delayMs}`);
    this.#queue.push(this.#nowMs + delayMs, fn);
  }

  /** Processes the next event; returns false when nothing is left to do. */
  step(): boolean {
    const netMs = this.network.nextDeliveryMs();
    const queueMs = this.#queue.peekTimeMs();
    if (netMs === Infinity && queueMs === Infinity) return false;
    if (netMs < queueMs) {
      this.#nowMs = netMs;
      const message = this.network.takeDue(netMs);
      if (message !== undefined) {
        this.#drivers.get(message.to)?.receive(message);
        this.onDelivered?.(message);
      }
    } else {
      const event = this.#queue.pop()!;
      this.#nowMs = event.atMs;
      event.item();
    }
    this.#steps++;
    this.#checkAll();
    return true;
  }

  runForMs(durationMs: number): void {
    const endMs = this.#nowMs + durationMs;
    while (Math.min(this.network.nextDeliveryMs(), this.#queue.peekTimeMs()) <= endMs) this.step();
    this.#nowMs = endMs;
  }

  /** Steps until `done()` holds; returns the simulated ms it took, or throws after `maxMs`. */
  runUntil(done: () => boolean, options: { maxMs: number; what: string }): number {
    const startMs = this.#nowMs;
    while (!done()) {
      if (this.#nowMs - startMs > options.maxMs || !this.step()) {
        throw new LivenessFailure(`${options.what}: not reached within ${options.maxMs} ms (at ${this.#nowMs} ms)`);
      }
    }
    return this.#nowMs - startMs;
  }

  view(): ClusterView {
    const nodes: NodeView[] = [];
    for (const d of this.#drivers.values()) {
      nodes.push({ id: d.id, up: d.up, status: d.status, log: d.volatileLog, durableLog: d.durableLog });
    }
    const voters = this.options.membershipChanges ? null : this.nodeIds();
    return { nowMs: this.#nowMs, nodes, voters, durableStateShrank: this.#durableShrank };
  }

  // ---- Faults -------------------------------------------------------------

  crash(id: NodeId): void {
    this.note(`crash ${id}`);
    this.driver(id).crash();
    this.#durableShrank = true;
  }

  restart(id: NodeId): void {
    const d = this.driver(id);
    if (d.up) return;
    this.note(`restart ${id}`);
    this.#startNode(id);
  }

  pause(id: NodeId): void {
    this.note(`pause ${id}`);
    this.driver(id).pause();
  }

  resume(id: NodeId): void {
    this.note(`resume ${id}`);
    this.driver(id).resume();
  }

  /** Cuts `id` off from every other node, both ways. */
  isolate(id: NodeId): void {
    this.note(`isolate ${id}`);
    this.network.isolate(id, this.nodeIds());
  }

  reconnect(id: NodeId): void {
    this.note(`reconnect ${id}`);
    this.network.reconnect(id, this.nodeIds());
  }

  partition(side: readonly NodeId[]): void {
    const rest = this.nodeIds().filter((id) => !side.includes(id));
    this.note(`partition [${side.join(",")}] from [${rest.join(",")}]`);
    this.network.partition(side, rest);
  }

  healPartition(side: readonly NodeId[]): void {
    this.note(`heal partition [${side.join(",")}]`);
    for (const a of side) for (const b of this.nodeIds()) if (!side.includes(b)) {
      this.network.heal(a, b);
      this.network.heal(b, a);
    }
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.note(`cut ${from}->${to}`);
    this.network.cut(from, to);
  }

  healNetwork(): void {
    this.note("heal network");
    this.network.healAll();
  }

  /** Stops (or restarts) `id`'s clock: a frozen node never times out, so a script chooses who campaigns. */
  freezeClock(id: NodeId, frozen: boolean): void {
    if (frozen) this.#frozenClocks.add(id);
    else this.#frozenClocks.delete(id);
  }

  // ---- Client and admin actions ------------------------------------------

  /** A client proposal at `node`, outside the random workload. */
  propose(node: NodeId, data: Uint8Array): ProposeAnswer {
    return this.#propose(node, data);
  }

  proposeConfChange(node: NodeId, change: ConfChange): ProposeAnswer {
    this.note(`propose ${change.type} ${change.nodeId} at ${node}`);
    const result = this.driver(node).proposeConfChange(change);
    if (result !== null && result.outcome === "accepted") this.#acceptedConfChanges.push({ node, index: result.index, change });
    return result === null ? { kind: "unreachable" } : toAnswer(result);
  }

  transferLeadership(from: NodeId, to: NodeId): void {
    this.note(`transfer leadership ${from} -> ${to}`);
    this.driver(from).transferLeadership(to);
  }

  /** Starts a brand-new node with an empty disk (it learns the cluster from a snapshot once added). */
  addNodeProcess(): NodeId {
    const id = `n${this.#nextNodeNumber++}`;
    this.note(`start new node ${id}`);
    this.#createDriver(id);
    this.#startNode(id);
    return id;
  }

  /** Conf changes a leader accepted (it may not have written them yet), in proposal order. */
  acceptedConfChanges(): readonly { node: NodeId; index: number; change: ConfChange }[] {
    return this.#acceptedConfChanges;
  }

  /** A line for the run's transcript (faults, membership, phases). */
  note(line: string): void {
    this.#transcript.push(`${String(this.#nowMs).padStart(6)} ms  ${line}`);
  }

  transcript(): readonly string[] {
    return this.#transcript;
  }

  /** One line per node: what it reports, for failure reports. */
  describeNodes(): string[] {
    return [...this.#drivers.values()].map((d) => {
      const s = d.status;
      const sm = d.stateMachine.image;
      const state = !d.up ? "down" : d.paused ? "paused" : "up";
      const st = s === null ? "" : ` ${s.role} term ${s.term} leader ${s.leader} commit ${s.commit} applied ${s.applied} last ${s.lastIndex}`;
      return `${d.id} ${state}${st}; state machine at ${sm.index} voters [${sm.confState.voters.join(",")}] learners [${sm.confState.learners.join(",")}]`;
    });
  }

  /** Every acknowledged entry is still durable on a majority (run at the end, beyond the per-step checks). */
  checkAcknowledgedDurable(): void {
    this.checkers.acknowledged.checkDurable({ ...this.view(), durableStateShrank: true });
  }

  #createDriver(id: NodeId): NodeDriver {
    const driver = new NodeDriver({
      id,
      disk: new SimDisk({ prng: this.#prng.fork(), faults: this.options.disk }),
      settings: this.options.raft,
      snapshotEveryEntries: this.options.snapshotEveryEntries,
      snapshotKeepEntries: this.options.snapshotKeepEntries,
      sendBeforeSync: this.options.sabotage === "sendBeforeSync",
      stepDuringSync: this.options.stepDuringSync ?? false,
      asyncWrites: this.options.asyncWrites ?? false,
      host: {
        nowMs: () => this.#nowMs,
        send: (message) => this.network.send(message, this.#nowMs),
        after: (delayMs, fn) => this.after(delayMs, fn),
        syncLatencyMs: () => this.#prng.int(this.options.syncMinMs, this.options.syncMaxMs),
        checkers: this.checkers.all,
        onApplied: (node, entry) => {
          this.workload.onApplied(node, entry);
          this.onApplied?.(node, entry);
        },
        nodeSeed: () => this.#nodeSeeds.u32(),
        onReady: (node, info) => this.#nemesisOnReady(node, info),
        onReadState: (node, index, context) => this.#onReadState(node, index, context),
      },
    });
    this.#drivers.set(id, driver);
    const periodMs = this.options.tickMs + this.#prng.int(-this.options.tickDriftMs, this.options.tickDriftMs);
    const jitterMs = this.options.tickJitterMs ?? 0;
    const tick = (): void => {
      if (!this.#frozenClocks.has(id)) driver.tick();
      this.after(Math.max(1, periodMs + (jitterMs === 0 ? 0 : this.#nemesisPrng.int(-jitterMs, jitterMs))), tick);
    };
    // Nodes start their clocks out of phase, as real processes do.
    this.after(this.#prng.int(1, periodMs), tick);
    return driver;
  }

  /**
   * Crashes placed where they hurt: right after a node voted, raised its term
   * or won, before or just after its fsync; and a new leader cut off (alone or
   * with one follower) or crashed soon after it wins, mid-replication (the
   * shapes of the paper's figure 8).
   */
  #nemesisOnReady(node: NodeId, info: { votedOrNewTerm: boolean; becameLeader: boolean }): void {
    if (!this.nemesisOn || this.#nemesisFaults >= NEMESIS_FAULTS_MAX) return;
    const p = this.#nemesisPrng;
    const crashRate = this.options.electionCrashRate ?? 0;
    if ((info.votedOrNewTerm || info.becameLeader) && crashRate > 0 && p.chance(crashRate)) {
      this.#nemesisFaults++;
      const downMs = p.int(10, 400);
      this.after(p.int(0, this.options.syncMaxMs + 2), () => {
        if (!this.nemesisOn || !this.driver(node).up) return;
        this.crash(node);
        this.after(downMs, () => this.restart(node));
      });
      return;
    }
    const cutRate = this.options.leaderCutRate ?? 0;
    if (info.becameLeader && cutRate > 0 && p.chance(cutRate)) {
      this.#nemesisFaults++;
      const forMs = p.int(30, 600);
      const others = this.nodeIds().filter((id) => id !== node);
      const shape = p.int(0, 2);
      this.after(p.int(0, 25), () => {
        if (!this.nemesisOn) return;
        if (shape === 0 || others.length === 0) {
          this.isolate(node);
          this.after(forMs, () => this.nemesisOn && this.reconnect(node));
        } else if (shape === 1) {
          const side = [node, p.pick(others)];
          this.partition(side);
          this.after(forMs, () => this.nemesisOn && this.healPartition(side));
        } else if (this.driver(node).up) {
          this.crash(node);
          this.after(forMs, () => this.restart(node));
        }
      });
    }
  }

  /** One read client: a ReadIndex at a random running node now and then. */
  #scheduleRead(): void {
    this.after(this.#nemesisPrng.int(20, 150), () => {
      const running = this.nodeIds().filter((id) => this.driver(id).up && !this.driver(id).paused);
      if (running.length > 0) {
        const readId = `r${++this.#readSeq}`;
        let acked = 0;
        for (const a of this.checkers.acknowledged.acks()) acked = Math.max(acked, a.index);
        this.#readsIssued.set(readId, acked);
        this.driver(this.#nemesisPrng.pick(running)).readIndex(new TextEncoder().encode(readId));
      }
      this.#scheduleRead();
    });
  }

  #onReadState(node: NodeId, index: number, context: Uint8Array): void {
    const readId = new TextDecoder().decode(context);
    const ackedBeforeIssue = this.#readsIssued.get(readId);
    if (ackedBeforeIssue === undefined) return;
    this.readsAnswered++;
    for (const c of this.checkers.all) c.onRead?.({ node, index, ackedBeforeIssue, readId });
  }

  #startNode(id: NodeId): void {
    this.driver(id).start();
  }

  #propose(node: NodeId, data: Uint8Array): ProposeAnswer {
    const result = this.driver(node).propose(data);
    return result === null ? { kind: "unreachable" } : toAnswer(result);
  }

  #checkAll(): void {
    let shrinks = 0;
    for (const d of this.#drivers.values()) shrinks += d.durableShrinks;
    if (shrinks !== this.#durableShrinksSeen) {
      this.#durableShrinksSeen = shrinks;
      this.#durableShrank = true;
    }
    const view = this.view();
    for (const c of this.checkers.all) c.afterStep?.(view);
    this.#durableShrank = false;
  }
}

/** A liveness requirement was not met in time (distinct from a safety violation). */
export class LivenessFailure extends Error {
  override readonly name = "LivenessFailure";
}

function toAnswer(result: ProposeResult): ProposeAnswer {
  // Accepted and forwarded proposals may still commit: the client waits for an apply.
  return result.outcome === "refused" ? { kind: "refused", leader: result.leader } : { kind: "taken" };
}
