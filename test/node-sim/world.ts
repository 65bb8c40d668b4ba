import type { ConfChange, Entry, Message } from "@ratequeue/raft";
import {
  decodeClientFrame,
  decodePeerFrame,
  encodePeerFrame,
  encodeServerFrame,
  MAX_HELLO_FRAME_BYTES,
  type NodeInfo,
} from "@ratequeue/protocol";
import {
  checkResourceBody,
  type ClientConnection,
  type ClientLink,
  ClientSessions,
  keyFromSecret,
  MemberChanges,
  NodeCore,
  type NodeCoreOptions,
  type NodeEnv,
  type Op,
  type OpResult,
  type TimerHandle,
} from "@ratequeue/node/testing";
import { EventQueue } from "../raft-sim/event-queue.js";
import { Prng } from "@ratequeue/testkit";
import { SimDisk } from "../raft-sim/sim-disk.js";
import { SimNetwork, type NetworkFaults } from "../raft-sim/sim-network.js";
import { Agreement, type LogTime } from "./checkers/agreement.js";
import { TrueTimeChecker } from "./checkers/true-time.js";
import { replayCommand, type Scenario } from "./scenario.js";
import { SimClient, type ClientConn, type ClientWorkload, type ClientWorld } from "./sim-client.js";
import { SimLogStore } from "./sim-log-store.js";
import { EXTRA_RESOURCE, Operator } from "./operator.js";
import { CommittedLogChecker } from "./checkers/committed-log.js";
import { ADMIN_KEY, RESOURCES, WORKER_KEY, WORKER_SCOPE, WORKLOAD_RESOURCES } from "./fixtures.js";
import { MembershipChecker } from "./checkers/membership.js";
import { History } from "@ratequeue/limiter/testing";
import { NodeClocks } from "./clocks.js";

/** Raft timing of every run: a tick is 10 simulated ms, elections time out after 100-200 ms. */
export const TICK_MS = 10;
const ELECTION_TICKS = 10;
/** Clients' session TTL (simulated ms). */
export const SESSION_TTL_MS = 2_000;
/**
 * Once the cluster is healed (every node up, network calm) every request a
 * live client made must end within this much simulated time: a proposal lost
 * with an isolated leader is given up after NodeCore's 10 s, a client then
 * resends; a waiter waits for leases held at most 400 ms and windows of 2 s.
 */
export const LIVENESS_BOUND_MS = 30_000;
/** After a full power loss and restart, every node must re-apply everything committed before it within this. */
export const RESTART_BOUND_MS = 10_000;

export interface RunStats {
  steps: number;
  simulatedMs: number;
  wallMs: number;
  grantsChecked: number;
  /** Grants on strict lanes also checked against their lane's share. */
  laneGrantsChecked: number;
  /** Admin changes the operator proposed, and those committed and applied (resource put/delete, key add/revoke). */
  adminProposed: number;
  adminApplied: number;
  /** Grants checked again on true time, as a provider counts (SPEC 6). */
  providerGrantsChecked: number;
  /** Most log time fell behind true time across one change of leader (ms). */
  failoverLagMaxMs: number;
  clientGrantsVerified: number;
  statesCompared: number;
  committedIndex: number;
  crashes: number;
  leaderChanges: number;
  acquires: number;
  reconnects: number;
  livenessMs: number;
  /** Sessions that expired while their client was alive (it was cut off or reconnecting for a whole TTL). */
  liveSessionsExpired: number;
  /** Committed effects by type (granted, queued, timedOut, cancelled, rejected, sessionEnded, ...): what the run exercised. */
  effects: Record<string, number>;
  /** Committed acquires of worker-key sessions, each checked against the key's scope (issue #15). */
  scopedAcquires: number;
  /** Membership changes: nodes added as voters, members removed, conf changes and promotions checked. */
  membersAdded: number;
  membersRemoved: number;
  confChangesChecked: number;
  promotionsChecked: number;
  /** A second change tried while one was in progress, and refused. */
  concurrentChangesRefused: number;
}

export type RunResult =
  | { readonly ok: true; readonly stats: RunStats; readonly transcript: readonly string[] }
  | {
      readonly ok: false;
      readonly stats: RunStats;
      readonly failure: "safety" | "liveness" | "crash";
      readonly message: string;
      readonly replay: string;
      readonly transcript: readonly string[];
    };

interface Owner {
  readonly alive: boolean;
}

interface TimerBox {
  cancelled: boolean;
}

/** One process lifetime of a node: everything it runs dies with it. */
interface Incarnation {
  alive: boolean;
  /** NodeCore.start() resolved (it loads the log and builds Raft asynchronously). */
  started: boolean;
  /** While the process is stalled: nothing of it runs and nothing reaches it before this time. */
  pausedUntilMs: number;
  readonly core: NodeCore;
  readonly sessions: ClientSessions;
  readonly conns: Set<Conn>;
  /** The admin API's membership procedures on this process (one change at a time per process, as in production). */
  readonly changes: MemberChanges;
}

interface SimNode {
  readonly id: string;
  readonly disk: SimDisk;
  readonly prng: Prng;
  /** The latest entry this node wrote at each index (what it applies there). */
  readonly written: Map<number, Entry>;
  readonly clocks: NodeClocks;
  inc: Incarnation | null;
  lastApplied: number;
  /** A founding member (bootstrapped with the first voters); a node added later starts empty and joins. */
  readonly founder: boolean;
  /** Removed from the cluster and stopped for good: never restarted. */
  retired: boolean;
}

interface Conn extends ClientConn {
  readonly client: SimClient;
  inc: Incarnation | null;
  server: ClientConnection | null;
  serverOpen: boolean;
  framesSeen: number;
}

interface PeerPacket {
  readonly from: string;
  readonly to: string;
  readonly frame: Uint8Array;
}

interface ClientPacket {
  readonly from: string;
  readonly to: string;
  readonly conn: Conn;
  readonly kind: "open" | "data" | "close";
  readonly frame?: Uint8Array;
}

/**
 * Deliberate bugs, for the simulator's own tests (a checker that never fires proves nothing):
 * `lyingDisk` acknowledges fsyncs it never did; `looseLimits` configures the cluster with every limit doubled
 * while the checker holds it to the real ones; `phantomGrant` has nodes tell a client "granted" where the
 * cluster only queued the request (a grant the cluster never committed); `looseScope` gives the worker key no
 * priority bound in the cluster while the scope checker holds it to `priorityMax`.
 */
export type Sabotage = "lyingDisk" | "looseLimits" | "phantomGrant" | "fastMonotonic" | "slowMonotonic" | "forgetfulChanges" | "looseScope";

/** `fastMonotonic` and `slowMonotonic`: every node's monotonic clock runs 3% off, far beyond what stamps allow for. */
function monotonicRateOf(sabotage: Sabotage | null): number | undefined {
  return sabotage === "fastMonotonic" ? 1.03 : sabotage === "slowMonotonic" ? 0.97 : undefined;
}

class Violation extends Error {
  constructor(
    readonly failure: "safety" | "liveness" | "crash",
    message: string,
  ) {
    super(message);
  }
}

const TRANSCRIPT_LINES = 80;

/** A run of full nodes (NodeCore + ClientSessions) and simulated SDK clients; see README.md. */
export class NodeSimWorld implements ClientWorld {
  nowMs = 0;
  /** The nodes clients may dial: founders and added nodes, less retired ones. */
  readonly nodeIds: string[];
  readonly #founders: readonly string[];
  readonly #scenario: Scenario;
  readonly #prng: Prng;
  readonly #events = new EventQueue<{ owner: Owner | null; fn: () => void }>();
  readonly #peerNet: SimNetwork<PeerPacket>;
  readonly #clientNet: SimNetwork<ClientPacket>;
  readonly #nodes = new Map<string, SimNode>();
  readonly #clients: SimClient[] = [];
  /** SPEC 6 on the simulation's true time (stamps and elections as they happen). */
  readonly #trueTime = new TrueTimeChecker();
  /** Every guarantee read from the committed log (checkers/committed-log.ts). */
  readonly #log = new CommittedLogChecker({ trueTime: this.#trueTime, onSessionExpired: (sessionId) => this.#sessionExpired(sessionId) });
  readonly #agreement: Agreement;
  readonly #transcript: string[] = [];
  #violation: Violation | null = null;
  #connSeq = 0;
  readonly stats: RunStats = {
    steps: 0,
    simulatedMs: 0,
    wallMs: 0,
    grantsChecked: 0,
    scopedAcquires: 0,
    membersAdded: 0,
    membersRemoved: 0,
    confChangesChecked: 0,
    promotionsChecked: 0,
    concurrentChangesRefused: 0,
    laneGrantsChecked: 0,
    adminProposed: 0,
    adminApplied: 0,
    providerGrantsChecked: 0,
    failoverLagMaxMs: 0,
    clientGrantsVerified: 0,
    statesCompared: 0,
    committedIndex: 0,
    crashes: 0,
    leaderChanges: 0,
    acquires: 0,
    reconnects: 0,
    livenessMs: 0,
    liveSessionsExpired: 0,
    effects: {},
  };

  readonly #sabotage: Sabotage | null;

  constructor(scenario: Scenario, options: { sabotage?: Sabotage } = {}) {
    this.#scenario = scenario;
    this.#sabotage = options.sabotage ?? null;
    const k = scenario.knobs;
    this.#prng = new Prng(scenario.seed);
    this.nodeIds = Array.from({ length: k.nodes }, (_, i) => `n${i + 1}`);
    this.#founders = [...this.nodeIds];
    this.#peerNet = new SimNetwork({ prng: this.#prng.fork(), faults: this.#peerFaults(true) });
    // Client links are TCP: ordered, no loss or duplicates; they break instead (faults below).
    this.#clientNet = new SimNetwork({
      prng: this.#prng.fork(),
      faults: { dropRate: 0, duplicateRate: 0, reorderRate: 0, minDelayMs: 1, maxDelayMs: k.maxDelayMs },
    });
    for (const id of this.nodeIds) this.#nodes.set(id, this.#newNode(id, this.#prng.fork(), true));
    this.#agreement = new Agreement({ startIndex: 1, onApply: (results, time, index) => this.#onCommitted(results, time, index) });
    const workload: ClientWorkload = {
      // The operator's resource only when it runs: a run without admin changes draws as it always did.
      resources: k.adminChanges > 0 ? WORKLOAD_RESOURCES : WORKLOAD_RESOURCES.filter((r) => r.name !== EXTRA_RESOURCE),
      sessionTtlMs: SESSION_TTL_MS,
      apiKey: ADMIN_KEY,
      breakRate: k.breakPermille / 1000,
    };
    for (let i = 1; i <= k.clients; i++) {
      this.#clients.push(new SimClient(`c${i}`, this.#prng.fork(), this, i % 2 === 0 ? { ...workload, apiKey: WORKER_KEY } : workload));
    }
    this.#operator = k.adminChanges > 0 ? new Operator(this.#prng.fork()) : null;
    // Forked last and only when used, so a run without membership changes draws exactly as before.
    this.#memberPrng = k.memberChanges > 0 ? this.#prng.fork() : null;
  }

  readonly #operator: Operator | null;
  readonly #memberPrng: Prng | null;
  readonly #membership = new MembershipChecker();

  #newNode(id: string, prng: Prng, founder: boolean): SimNode {
    const k = this.#scenario.knobs;
    return {
      id,
      disk: new SimDisk({ prng: prng.fork(), faults: { flushRate: k.flushPermille / 1000, tornWriteRate: k.tornPermille / 1000 } }),
      prng,
      written: new Map(),
      clocks: new NodeClocks({ prng: prng.fork(), skewMs: k.skewMs, driftPermille: k.driftPermille, monoRate: monotonicRateOf(this.#sabotage) }),
      inc: null,
      lastApplied: founder ? 1 : 0,
      founder,
      retired: false,
    };
  }

  // ---------------------------------------------------------------------------
  // The run

  async run(): Promise<RunResult> {
    const started = performance.now();
    const k = this.#scenario.knobs;
    try {
      for (const id of this.nodeIds) this.#startNode(this.#nodes.get(id)!);
      for (const c of this.#clients) c.start();
      this.#scheduleFaults();
      this.#scheduleAdmin();
      this.#scheduleMembers();
      await this.#runUntil(k.safetyMs, () => false);
      // Liveness: heal everything, stop new work, and wait for every request to end.
      this.#note("heal: every node up, network calm; clients stop issuing");
      this.#heal();
      const healedAt = this.nowMs;
      this.#healedAtMs = healedAt;
      const done = (): boolean => this.#clients.every((c) => !c.alive || c.idle) && !this.#memberBusy && this.#nodesCaughtUp();
      await this.#runUntil(healedAt + LIVENESS_BOUND_MS, done);
      if (!done()) throw new Violation("liveness", this.#livenessReport(healedAt));
      this.stats.livenessMs = this.nowMs - healedAt;
      // Durability: power loss on every node at once, then a restart; everything committed must come back.
      const committed = this.#agreement.highestCommitted;
      this.#note(`full restart: power loss on every node (committed index ${committed})`);
      for (const node of this.#nodes.values()) this.#crash(node);
      for (const node of this.#nodes.values()) if (!node.retired) this.#startNode(node);
      const restartedAt = this.nowMs;
      const back = (): boolean => this.#memberNodes().every((n) => n.lastApplied >= committed) && this.#nodesCaughtUp();
      await this.#runUntil(restartedAt + RESTART_BOUND_MS, back);
      if (!back()) {
        const applied = [...this.#nodes.values()].map((n) => `${n.id}@${n.lastApplied}`).join(" ");
        throw new Violation("liveness", `after a full restart the nodes did not re-apply index ${committed} within ${RESTART_BOUND_MS} ms (${applied})`);
      }
      const unverified = this.#log.unverified();
      if (unverified !== null) throw new Violation("safety", unverified);
    } catch (err) {
      const v = err instanceof Violation ? err : new Violation("crash", err instanceof Error ? (err.stack ?? err.message) : String(err));
      return this.#result(started, v);
    }
    return this.#result(started, null);
  }

  async #runUntil(endMs: number, done: () => boolean): Promise<void> {
    while (!done()) {
      const t = Math.min(this.#events.peekTimeMs(), this.#peerNet.nextDeliveryMs(), this.#clientNet.nextDeliveryMs());
      if (t > endMs) {
        this.nowMs = Math.max(this.nowMs, endMs);
        return;
      }
      this.nowMs = Math.max(this.nowMs, t);
      this.stats.steps++;
      if (this.#events.peekTimeMs() <= this.nowMs) {
        const { item } = this.#events.pop()!;
        const pausedUntilMs = (item.owner as Partial<Incarnation> | null)?.pausedUntilMs ?? 0;
        // A stalled process runs its timers and continuations when it resumes, in their order.
        if (pausedUntilMs > this.nowMs) this.#events.push(pausedUntilMs, item);
        else if (item.owner === null || item.owner.alive) item.fn();
      } else if (this.#peerNet.nextDeliveryMs() <= this.nowMs) {
        const packet = this.#peerNet.takeDue(this.nowMs);
        if (packet !== undefined) this.#whenRunning(packet.to, () => this.#deliverPeer(packet));
      } else {
        const packet = this.#clientNet.takeDue(this.nowMs);
        if (packet !== undefined) {
          // A connection the stalled process had not accepted yet dies with it if it crashes meanwhile (reset).
          const reset = (): void => this.#clientNet.send({ from: packet.to, to: packet.conn.id, conn: packet.conn, kind: "close" }, this.nowMs);
          this.#whenRunning(packet.to, () => this.#deliverClient(packet), reset);
        }
      }
      // Let every promise continuation the step started run (store writes resolving, proposals settling)
      // before the next event: microtasks run in a fixed order, so the run stays deterministic.
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.#check();
      if (this.#violation !== null) throw this.#violation;
    }
  }

  // ---------------------------------------------------------------------------
  // ClientWorld

  at(atMs: number, owner: Owner | null, fn: () => void): void {
    this.#events.push(Math.max(atMs, this.nowMs), { owner, fn });
  }

  connect(client: SimClient, nodeId: string): ClientConn {
    const conn: Conn = { id: `${client.name}/k${++this.#connSeq}`, nodeId, clientOpen: true, client, inc: null, server: null, serverOpen: false, framesSeen: 0 };
    this.#clientNet.send({ from: conn.id, to: nodeId, conn, kind: "open" }, this.nowMs);
    return conn;
  }

  sendFrame(conn: ClientConn, frame: Uint8Array): void {
    if (!conn.clientOpen) return;
    this.#clientNet.send({ from: conn.id, to: conn.nodeId, conn: conn as Conn, kind: "data", frame }, this.nowMs);
  }

  closeFromClient(conn: ClientConn): void {
    if (!conn.clientOpen) return;
    conn.clientOpen = false;
    this.#clientNet.send({ from: conn.id, to: conn.nodeId, conn: conn as Conn, kind: "close" }, this.nowMs);
  }

  clientGranted(client: string, sessionId: string, requestId: number, leaseId: string): void {
    this.#fail("safety", this.#log.clientGranted(client, sessionId, String(requestId), Number(leaseId)));
  }

  violation(message: string): void {
    this.#fail("safety", message);
  }

  // ---------------------------------------------------------------------------
  // Nodes

  #startNode(node: SimNode): void {
    if (node.inc?.alive === true || node.retired) return;
    const inc: Incarnation = { alive: true, started: false, pausedUntilMs: 0 } as Incarnation;
    node.clocks.restart(this.nowMs, node.prng);
    const env: NodeEnv = {
      monotonicNow: () => node.clocks.monotonicNow(this.nowMs),
      wallNow: () => node.clocks.wallNow(this.nowMs),
      setTimer: (fn, ms) => {
        const box: TimerBox = { cancelled: false };
        this.at(this.nowMs + node.clocks.timerDelayMs(ms), inc, () => box.cancelled || fn());
        return box as TimerHandle;
      },
      clearTimer: (handle) => {
        (handle as TimerBox).cancelled = true;
      },
      defer: (fn) => this.at(this.nowMs, inc, fn),
      randomId: () => [node.prng.u32(), node.prng.u32(), node.prng.u32()].map((x) => x.toString(36)).join(""),
      randomSeed: () => node.prng.u32(),
      sendPeer: (to, messages) => {
        let frame: Uint8Array;
        try {
          frame = encodePeerFrame(messages);
        } catch (err) {
          return this.#fail("crash", `${node.id} could not encode a Raft message: ${(err as Error).message}`);
        }
        this.#peerNet.send({ from: node.id, to, frame }, this.nowMs);
      },
    };
    const store = new SimLogStore({
      disk: node.disk,
      schedule: (delayMs, done) => this.at(this.nowMs + delayMs, inc, done),
      syncLatencyMs: () => node.prng.int(1, this.#scenario.knobs.syncMaxMs),
      lieAboutSync: this.#sabotage === "lyingDisk",
      onEntries: (entries) => {
        if (entries === null) return node.written.clear();
        for (const e of entries) node.written.set(e.index, e);
        // An append replaces the stored suffix: nothing after its last entry is in the log any more.
        const last = entries[entries.length - 1];
        if (last !== undefined) for (let i = last.index + 1; node.written.delete(i); i++);
      },
    });
    const options: NodeCoreOptions = {
      id: node.id,
      // A node added later starts empty, with no voters: it waits for the leader to add it (production's --join).
      voters: node.founder ? this.#founders : [],
      store,
      env,
      logger: SILENT_LOGGER,
      tickMs: TICK_MS,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 1,
      snapshotEntries: this.#scenario.knobs.snapshotEvery,
      bootstrapOps: RESOURCES.map((r): Op => {
        const limits = this.#sabotage === "looseLimits" ? r.limits.map((l) => ({ ...l, limit: l.limit * 2 })) : r.limits;
        const config = {
          limits: limits.map((l) => {
            const reserved = r.reserved?.[l.kind];
            return reserved === undefined ? l : { ...l, reserved };
          }),
          ...(r.lanes === undefined ? {} : { lanes: r.lanes, lanePolicy: r.lanePolicy }),
        };
        return { t: "limiter", cmd: { type: "putResource", name: r.name, config } };
      }).concat([{ t: "keyAdd", key: keyFromSecret(WORKER_KEY, "sim worker", this.#sabotage === "looseScope" ? { acquire: ["*"] } : WORKER_SCOPE) }]),
      adminSeed: keyFromSecret(ADMIN_KEY, "sim admin", "admin"),
    };
    const core = new NodeCore(options);
    const nodes: NodeInfo[] = this.nodeIds.map((id) => ({ id, url: `ws://${id}.sim:7400` }));
    const sessions = new ClientSessions({ core, env, logger: SILENT_LOGGER, sessionTtlMs: SESSION_TTL_MS, nodes });
    const changes = new MemberChanges({
      core: this.#watchedCore(node, core),
      logger: SILENT_LOGGER,
      env,
      everyMs: TICK_MS,
      addressOf: (id) => core.state.memberAddresses.get(id) ?? null,
    });
    Object.assign(inc, { core, sessions, conns: new Set<Conn>(), changes });
    core.onPropose((e) => this.#trueTime.proposed(e.term, e.index, this.nowMs));
    core.onRoleChange((role) => {
      if (role === "leader") {
        this.stats.leaderChanges++;
        this.#trueTime.elected(core.status().term, this.nowMs);
        this.#note(`${node.id} leads term ${core.status().term}`);
      }
    });
    node.inc = inc;
    node.lastApplied = 0;
    core.start().then(
      () => {
        inc.started = true;
      },
      (err: Error) => this.#fail("crash", `${node.id} failed to start: ${err.stack ?? err.message}`),
    );
  }

  /** Power loss: the process dies at once, unsynced writes may be lost or torn, open connections break. */
  #crash(node: SimNode): void {
    const inc = node.inc;
    if (inc === null || !inc.alive) return;
    inc.alive = false;
    node.inc = null;
    const outcome = node.disk.crash();
    this.stats.crashes++;
    this.#note(`${node.id} crashes (lost ${outcome.lostWrites} unsynced writes${outcome.torn ? ", one torn" : ""})`);
    for (const conn of inc.conns) this.#closeFromServer(conn);
  }

  /**
   * Runs `deliver` now, or when node `to` resumes if it is stalled (the kernel buffers what arrives meanwhile).
   * If that process crashed before it resumed, what waited for it is lost with it: `lost` runs instead.
   */
  #whenRunning(to: string, deliver: () => void, lost: () => void = () => undefined): void {
    const inc = this.#nodes.get(to)?.inc ?? null;
    if (inc === null || inc.pausedUntilMs <= this.nowMs) return deliver();
    this.#events.push(inc.pausedUntilMs, { owner: null, fn: () => (inc.alive ? deliver() : lost()) });
  }

  #deliverPeer(packet: PeerPacket): void {
    const inc = this.#nodes.get(packet.to)!.inc;
    // run.ts listens only once NodeCore.start() resolved: until then a peer's link is refused.
    if (inc === null || !inc.alive || !inc.started) return;
    const decoded = decodePeerFrame(packet.frame);
    if (!decoded.ok) return this.#fail("crash", `${packet.to} could not decode a frame from ${packet.from}: ${decoded.error.message}`);
    const raft = decoded.messages.filter((m): m is Message => m.type !== "peerHello");
    if (raft.length > 0) inc.core.stepPeer(packet.from, raft);
  }

  #deliverClient(packet: ClientPacket): void {
    const conn = packet.conn;
    if (packet.to === conn.id) {
      // Node -> client.
      if (!conn.clientOpen) return;
      if (packet.kind === "close") {
        conn.clientOpen = false;
        return conn.client.closed(conn);
      }
      return conn.client.frame(conn, packet.frame!);
    }
    const node = this.#nodes.get(packet.to)!;
    if (packet.kind === "open") {
      const inc = node.inc;
      if (inc === null || !inc.alive || !inc.started) return this.#clientNet.send({ from: node.id, to: conn.id, conn, kind: "close" }, this.nowMs);
      conn.inc = inc;
      conn.serverOpen = true;
      inc.conns.add(conn);
      const link: ClientLink = {
        send: (message) => {
          if (!conn.serverOpen || !inc.alive) return;
          const sent =
            this.#sabotage === "phantomGrant" && message.type === "queued"
              ? { type: "granted" as const, requestId: message.requestId, lease: { id: "999999", resource: "chat", load: 1, grantedAt: 0 } }
              : message;
          this.#clientNet.send({ from: node.id, to: conn.id, conn, kind: "data", frame: encodeServerFrame([sent]) }, this.nowMs);
        },
        close: () => {
          if (!inc.alive) return;
          this.#closeFromServer(conn);
        },
      };
      conn.server = inc.sessions.connect(link, conn.id);
      return;
    }
    const inc = conn.inc;
    if (inc === null || !inc.alive || !conn.serverOpen || conn.server === null) return;
    if (packet.kind === "close") {
      conn.serverOpen = false;
      inc.conns.delete(conn);
      return inc.sessions.disconnected(conn.server);
    }
    const decoded = decodeClientFrame(packet.frame!, conn.framesSeen++ === 0 ? { maxFrameBytes: MAX_HELLO_FRAME_BYTES } : {});
    if (!decoded.ok) return this.#fail("safety", `${node.id} refused a frame from ${conn.id}: ${decoded.error.message}`);
    inc.sessions.receive(conn.server, decoded.messages);
  }

  /** The node's side closes `conn` (or its process died): the client learns after a delay. */
  #closeFromServer(conn: Conn): void {
    if (!conn.serverOpen) return;
    conn.serverOpen = false;
    conn.inc?.conns.delete(conn);
    this.#clientNet.send({ from: conn.nodeId, to: conn.id, conn, kind: "close" }, this.nowMs);
  }

  // ---------------------------------------------------------------------------
  // Faults

  #peerFaults(faulty: boolean): NetworkFaults {
    const k = this.#scenario.knobs;
    return faulty
      ? { dropRate: k.dropPermille / 1000, duplicateRate: k.dupPermille / 1000, reorderRate: k.reorderPermille / 1000, minDelayMs: 1, maxDelayMs: k.maxDelayMs }
      : { dropRate: 0, duplicateRate: 0, reorderRate: 0, minDelayMs: 1, maxDelayMs: k.maxDelayMs };
  }

  #scheduleFaults(): void {
    const k = this.#scenario.knobs;
    const r = this.#prng.fork();
    const when = (): number => r.int(100, Math.max(100, k.safetyMs - 100));
    for (let i = 0; i < k.crashes; i++) {
      const node = this.#nodes.get(r.pick(this.nodeIds))!;
      const atMs = when();
      const downMs = r.int(50, 1500);
      this.at(atMs, null, () => this.#crash(node));
      this.at(atMs + downMs, null, () => {
        if (node.inc === null && !node.retired) {
          this.#note(`${node.id} restarts`);
          this.#startNode(node);
        }
      });
    }
    for (let i = 0; i < k.partitions; i++) {
      const atMs = when();
      const forMs = r.int(100, 1500);
      const minority = k.nodes === 5 && r.chance(0.5) ? [r.pick(this.nodeIds.slice(0, 2)), r.pick(this.nodeIds.slice(2))] : [r.pick(this.nodeIds)];
      this.at(atMs, null, () => {
        if (minority.some((id) => this.#nodes.get(id)!.retired)) return;
        this.#note(`partition: {${minority.join(",")}} cut off`);
        this.#peerNet.partition(minority, this.nodeIds);
      });
      this.at(atMs + forMs, null, () => {
        this.#note(`partition of {${minority.join(",")}} heals`);
        for (const id of minority) this.#peerNet.reconnect(id, this.nodeIds);
      });
    }
    if (k.skewMs > 0) {
      // Wall clocks jump forward and back while the nodes run (NTP steps, an operator); stamps must not notice.
      for (const node of this.#nodes.values()) {
        for (let jumps = r.int(0, 3); jumps > 0; jumps--) {
          const jumpMs = r.int(-k.skewMs, k.skewMs);
          this.at(when(), null, () => {
            node.clocks.jump(jumpMs);
            this.#note(`${node.id}'s wall clock jumps ${jumpMs} ms`);
          });
        }
      }
    }
    for (let i = 0; i < k.pauses; i++) {
      const node = this.#nodes.get(r.pick(this.nodeIds))!;
      const atMs = when();
      const forMs = r.int(50, 2500);
      this.at(atMs, null, () => {
        if (node.inc === null) return;
        this.#note(`${node.id} stalls for ${forMs} ms`);
        // A stall never shortens one in progress: what waits for the process keeps its order.
        node.inc.pausedUntilMs = Math.max(node.inc.pausedUntilMs, this.nowMs + forMs);
      });
    }
    const victims = [...this.#clients];
    for (let i = 0; i < k.deaths && victims.length > 0; i++) {
      const client = victims.splice(r.int(0, victims.length - 1), 1)[0]!;
      this.at(when(), null, () => {
        this.#note(`${client.name} dies`);
        client.die();
      });
    }
  }

  /**
   * The operator's admin changes, at random times of the faulty phase, each proposed to whichever node leads
   * then, as the admin API does (a resource body is checked before it is proposed). No leader: it tries again
   * 100 ms later (an HTTP client retrying another node). A proposal lost to a crash or a deposed leader is not
   * retried: the change is in the log or it is not, and the checkers learn which from the committed log alone.
   */
  #scheduleAdmin(): void {
    const operator = this.#operator;
    if (operator === null) return;
    const k = this.#scenario.knobs;
    const times = Array.from({ length: k.adminChanges }, () => operator.prng.int(50, Math.max(50, k.safetyMs - 50))).sort((a, b) => a - b);
    for (const atMs of times) {
      const { op, what } = operator.next();
      const attempt = (tries: number): void => {
        const leader = [...this.#nodes.values()].find((n) => n.inc?.started === true && n.inc.alive && n.inc.pausedUntilMs <= this.nowMs && n.inc.core.isLeader);
        if (leader === undefined) {
          if (tries < 20) this.at(this.nowMs + 100, null, () => attempt(tries + 1));
          return;
        }
        if (op.t === "limiter" && op.cmd.type === "putResource") {
          const checked = checkResourceBody(op.cmd.config);
          if (!checked.ok) return this.#fail("crash", `the operator built an invalid resource body: ${checked.details.join("; ")}`);
        }
        this.stats.adminProposed++;
        this.#note(`operator via ${leader.id}: ${what}`);
        leader.inc!.core.propose(op).catch(() => undefined);
      };
      this.at(atMs, null, () => attempt(0));
    }
  }

  // ---------------------------------------------------------------------------
  // Membership changes

  #membersIssuing = true;
  #memberBusy = false;
  #memberQueued = 0;
  #nextNodeNumber = 0;

  /**
   * The operator's membership changes, at random times of the faulty phase, one at a time (a change that comes due
   * while another runs waits for it), each through the admin API's own procedures (MemberChanges) on whichever
   * node leads then: add a node (it starts empty, is added as a learner, catches up and is promoted), remove a
   * member (the leader hands over first; the removed node is then stopped for good), or replace one (both). The
   * cluster stays between 3 and 5 voters. A refused or failed step is retried on the then leader, as an operator
   * would; an add that never completes is undone.
   */
  #scheduleMembers(): void {
    const r = this.#memberPrng;
    if (r === null) return;
    const k = this.#scenario.knobs;
    this.#nextNodeNumber = k.nodes;
    for (let i = 0; i < k.memberChanges; i++) {
      this.at(r.int(100, Math.max(100, k.safetyMs - 100)), null, () => {
        this.#memberQueued++;
        this.#nextMemberChange();
      });
    }
  }

  #nextMemberChange(): void {
    if (this.#memberBusy || this.#memberQueued === 0 || !this.#membersIssuing) return;
    this.#memberQueued--;
    this.#memberBusy = true;
    this.#memberChange().then(
      () => {
        this.#memberBusy = false;
        this.#nextMemberChange();
      },
      (err: Error) => this.#fail("crash", `membership change failed unexpectedly: ${err.stack ?? err.message}`),
    );
  }

  async #memberChange(): Promise<void> {
    const r = this.#memberPrng!;
    const leader = await this.#leaderFor(40);
    if (leader === null) return this.#note("membership change skipped: no leader");
    const { voters } = leader.inc!.core.status().confState;
    const kind = voters.length <= 3 ? "add" : voters.length >= 5 ? "remove" : r.pick(["add", "remove", "replace"] as const);
    if (kind === "remove" || kind === "replace") {
      // The leader too, now and then: it hands leadership over first.
      const target = r.chance(0.3) ? leader.id : r.pick(voters.filter((v) => v !== leader.id));
      await this.#removeMember(target);
    }
    if (kind === "add" || kind === "replace") await this.#addMember();
  }

  /** The node leading now (alive, started, not stalled), waiting up to `tries` x 50 ms for one. */
  async #leaderFor(tries: number): Promise<SimNode | null> {
    for (let i = 0; i < tries; i++) {
      const leader = [...this.#nodes.values()].find((n) => n.inc?.started === true && n.inc.alive && n.inc.pausedUntilMs <= this.nowMs && n.inc.core.isLeader);
      if (leader !== undefined) return leader;
      await this.#sleep(50);
    }
    return null;
  }

  /** Rejects once `inc` has died (checked every 50 ms); never resolves. */
  async #death(inc: Incarnation): Promise<never> {
    while (inc.alive) await this.#sleep(50);
    throw Object.assign(new Error("the node died during the request"), { code: "CONNECTION_RESET" });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.at(this.nowMs + ms, null, resolve));
  }

  /** Runs `step` on the then leader's procedures until it succeeds (true) or `tries` attempts failed (false). */
  async #onLeader(what: string, tries: number, step: (leader: SimNode) => Promise<void>): Promise<boolean> {
    for (let i = 0; i < tries; i++) {
      const leader = await this.#leaderFor(40);
      if (leader === null) continue;
      const inc = leader.inc!;
      try {
        // A request to a process that dies is answered by a broken connection: what it awaited never settles.
        await Promise.race([inc.changes.exclusive(what, () => step(leader)), this.#death(inc)]);
        return true;
      } catch (err) {
        this.#note(`operator: ${what} via ${leader.id} refused: ${(err as { code?: string }).code ?? ""} ${(err as Error).message.slice(0, 120)}`);
        await this.#sleep(100);
      }
    }
    return false;
  }

  async #addMember(): Promise<void> {
    const id = `n${++this.#nextNodeNumber}`;
    const node = this.#newNode(id, this.#memberPrng!.fork(), false);
    this.#nodes.set(id, node);
    this.nodeIds.push(id);
    this.#note(`operator: start ${id} (empty) and add it`);
    this.#startNode(node);
    const added = await this.#onLeader(`add ${id}`, 15, (leader) => leader.inc!.changes.add({ id, address: `${id}.sim:7400`, timeoutMs: 3_000 }));
    if (added) {
      this.stats.membersAdded++;
      return this.#note(`operator: ${id} is a voter`);
    }
    this.#note(`operator: giving up on adding ${id}; undoing it`);
    await this.#removeMember(id);
  }

  /** Removes `id` (a leader hands over first), then stops it for good; a removal that keeps failing is left as is. */
  async #removeMember(id: string): Promise<void> {
    const removed = await this.#onLeader(`remove ${id}`, 30, async (leader) => {
      const conf = leader.inc!.core.status().confState;
      if (!conf.voters.includes(id) && !conf.learners.includes(id)) return; // already removed, or never added
      if (leader.id === id) {
        const heir = await leader.inc!.changes.handOver(id);
        this.#note(`operator: ${id} handed leadership to ${heir} before its removal`);
        throw Object.assign(new Error("handed over; the removal goes to the new leader"), { code: "HANDED_OVER" });
      }
      await leader.inc!.changes.remove(id);
    });
    if (!removed) return this.#note(`operator: could not remove ${id}; it stays a member`);
    const node = this.#nodes.get(id)!;
    this.#crash(node);
    node.retired = true;
    this.nodeIds.splice(this.nodeIds.indexOf(id), 1);
    this.stats.membersRemoved++;
    this.#note(`operator: ${id} removed and stopped for good`);
  }

  /**
   * The core the procedures drive, seen from outside: every conf change the node accepts is checked by the
   * membership checker against what the simulator sees of the leader's log and of the learner's own log. Now and
   * then, right after an accepted change, an impatient operator asks the same node for another one (a second
   * `/v1/members` request), which must be refused while the first is in progress.
   */
  #watchedCore(node: SimNode, core: NodeCore): ConstructorParameters<typeof MemberChanges>[0]["core"] {
    return {
      id: core.id,
      get isLeader() {
        return core.isLeader;
      },
      get state() {
        return core.state;
      },
      status: () => core.status(),
      propose: (op) => core.propose(op),
      handOver: (timeoutMs) => core.handOver(timeoutMs),
      proposeConfChange: (change: ConfChange) => {
        const result = core.proposeConfChange(change);
        if (result.outcome === "accepted") {
          const status = core.status();
          const learner = this.#nodes.get(change.nodeId)?.inc;
          const learnerLastIndex = learner?.alive === true && learner.started ? learner.core.status().lastIndex : null;
          this.#fail(
            "safety",
            this.#membership.accepted({ id: node.id, term: status.term, applied: status.applied, written: node.written }, change, result.index, learnerLastIndex),
          );
          this.#note(`${node.id} accepted ${change.type} ${change.nodeId} at index ${result.index}`);
          if (this.#memberPrng?.chance(0.5) === true) this.#impatient(node, change);
        }
        return result;
      },
    };
  }

  /** A second change asked of `node` while `change` is in progress: removing that same node again. */
  #impatient(node: SimNode, change: ConfChange): void {
    const changes = node.inc?.changes;
    if (changes === undefined) return;
    const what = `impatient remove ${change.nodeId}`;
    changes.exclusive(what, () => changes.remove(change.nodeId)).then(
      () => this.#note(`operator: ${what} was accepted`),
      (err: { code?: string }) => {
        if (err.code === "RQ_CHANGE_IN_PROGRESS") this.stats.concurrentChangesRefused++;
      },
    );
  }

  #heal(): void {
    this.#peerNet.healAll();
    this.#peerNet.setFaults(this.#peerFaults(false));
    for (const node of this.#nodes.values()) if (node.inc === null) this.#startNode(node);
    for (const c of this.#clients) c.issuing = false;
    this.#membersIssuing = false;
  }

  // ---------------------------------------------------------------------------
  // Checks

  #check(): void {
    for (const node of this.#nodes.values()) {
      const inc = node.inc;
      if (inc === null || !inc.alive || !inc.started) continue;
      if (inc.core.fatalError !== null) return this.#fail("crash", `${node.id} stopped on a fatal error: ${inc.core.fatalError.stack ?? inc.core.fatalError.message}`);
      const applied = inc.core.status().applied;
      if (applied === node.lastApplied) continue;
      // The node's state first, so the witness compares with it when it replays up to this index.
      this.#fail("safety", this.#agreement.nodeState(node.id, applied, inc.core.state.snapshot()));
      if (applied > node.lastApplied) this.#fail("safety", this.#agreement.applied(node.id, node.lastApplied, applied, (i) => node.written.get(i)));
      node.lastApplied = applied;
    }
  }

  /** The witness applied a committed entry: feed the independent checkers. */
  #onCommitted(results: readonly OpResult[], time: LogTime, index: number): void {
    this.#fail("safety", this.#log.committed(results, time, index));
  }

  /**
   * A session of a live client expired. During the faults that happens (a client cut off for a whole TTL);
   * once the cluster is healed a client that heartbeats must never lose its session (SPEC: a leader change
   * never expires a live session), so after a grace period of two TTLs it is a violation.
   */
  #sessionExpired(sessionId: string): void {
    const client = this.#clients.find((c) => c.alive && c.sessionId === sessionId);
    if (client === undefined) return;
    this.stats.liveSessionsExpired++;
    if (this.#healedAtMs !== null && this.nowMs > this.#healedAtMs + 2 * SESSION_TTL_MS) {
      this.#fail("liveness", `${client.name}'s session ${sessionId} expired ${this.nowMs - this.#healedAtMs} ms after healing, while the client was alive`);
    }
  }

  #healedAtMs: number | null = null;
  #nodesCaughtUp(): boolean {
    let leader: NodeCore | null = null;
    for (const n of this.#nodes.values()) if (n.inc?.started === true && n.inc.core.isLeader) leader = n.inc.core;
    if (leader === null) return false;
    const commit = leader.status().commit;
    const { voters, learners } = leader.status().confState;
    return this.#memberNodes().every((n) => !(voters.includes(n.id) || learners.includes(n.id)) || n.lastApplied >= commit);
  }

  /** Nodes that may hold the cluster's log: every node but retired ones. */
  #memberNodes(): SimNode[] {
    return [...this.#nodes.values()].filter((n) => !n.retired);
  }

  #livenessReport(healedAt: number): string {
    const stuck = this.#clients.filter((c) => c.alive && !c.idle);
    const parts = stuck.map((c) => {
      const p = c.oldestPending();
      return `${c.name}: ${c.pending.size} pending, ${c.leases.size} leases held${p === null ? "" : `, oldest ${p.msg.type} #${p.msg.requestId} since ${p.issuedAtMs} ms`}`;
    });
    const nodes = [...this.#nodes.values()].map((n) => `${n.id}:${n.inc?.core.role ?? "down"}@${n.lastApplied}`).join(" ");
    return `not done ${LIVENESS_BOUND_MS} ms after healing at ${healedAt} ms: ${parts.join("; ") || "clients idle"}; nodes ${nodes}`;
  }

  #fail(failure: Violation["failure"], message: string | null): void {
    if (message === null || this.#violation !== null) return;
    this.#violation = new Violation(failure, `at ${this.nowMs} ms: ${message}`);
  }

  #note(line: string): void {
    this.#transcript.push(`${String(this.nowMs).padStart(6)} ms  ${line}`);
    if (this.#transcript.length > TRANSCRIPT_LINES) this.#transcript.shift();
  }

  #result(startedWallMs: number, v: Violation | null): RunResult {
    const s = this.stats;
    s.simulatedMs = this.nowMs;
    s.wallMs = performance.now() - startedWallMs;
    s.grantsChecked = this.#log.grantsChecked;
    s.laneGrantsChecked = this.#log.laneGrantsChecked;
    s.providerGrantsChecked = this.#log.providerGrantsChecked;
    s.failoverLagMaxMs = this.#trueTime.failoverLagMaxMs;
    s.clientGrantsVerified = this.#log.clientGrantsVerified;
    s.adminApplied = this.#log.stats.adminApplied;
    s.scopedAcquires = this.#log.stats.scopedAcquires;
    s.effects = this.#log.stats.effects;
    s.statesCompared = this.#agreement.statesCompared;
    s.committedIndex = this.#agreement.witnessIndex;
    s.acquires = this.#clients.reduce((n, c) => n + c.stats.acquires, 0);
    s.reconnects = this.#clients.reduce((n, c) => n + c.stats.reconnects, 0);
    s.confChangesChecked = this.#membership.changesChecked;
    s.promotionsChecked = this.#membership.promotionsChecked;
    if (v === null) return { ok: true, stats: s, transcript: [...this.#transcript] };
    return { ok: false, stats: s, failure: v.failure, message: v.message, replay: replayCommand(this.#scenario), transcript: [...this.#transcript] };
  }
}

/** NodeCore and ClientSessions log through pino; the simulator keeps them quiet (failures carry their own report). */
const SILENT_LOGGER = (() => {
  const noop = (): void => undefined;
  const logger = { info: noop, warn: noop, error: noop, fatal: noop, debug: noop, trace: noop, child: () => logger };
  return logger as unknown as NodeCoreOptions["logger"];
})();

/** Runs one scenario. */
export async function runNodeSim(scenario: Scenario, options: { sabotage?: Sabotage } = {}): Promise<RunResult> {
  if (options.sabotage !== "forgetfulChanges") return new NodeSimWorld(scenario, options).run();
  // The bug of #11: a changed limit forgets the usage already granted. Every node's limiter records no usage
  // history, so a limit whose definition changes is rebuilt empty.
  const push = History.prototype.push;
  History.prototype.push = () => {};
  try {
    return await new NodeSimWorld(scenario, options).run();
  } finally {
    History.prototype.push = push;
  }
}

