/**
 * A tiny deterministic in-memory cluster of RawNodes for the package's own
 * tests: messages wait in a queue until the test delivers them, links can be
 * cut, nodes crash and restart from their storage. Every Ready is processed
 * in the documented order and checked against the persistence contract, so
 * every test also checks that contract.
 *
 * Test support only: not exported from index.ts. The fault-injecting cluster
 * simulator lives in test/raft-sim.
 */
import { createRng } from "./rng.js";
import { RawNode } from "./raw-node.js";
import type { RaftConfig } from "./config.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import type { Entry, Message, NodeId, ReadState, Ready, Snapshot } from "./types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type NodeOptions = Partial<Omit<RaftConfig, "id" | "storage" | "rng">>;

export interface TestNode {
  readonly id: NodeId;
  node: RawNode;
  readonly storage: MemoryStorage;
  /** The application state: payloads of applied normal entries, in order. */
  state: string[];
  appliedIndex: number;
  readStates: ReadState[];
  /** Every Ready this node handed out, for tests that inspect them. */
  readies: Ready[];
  up: boolean;
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Directed links that drop everything: "a->b". */
  private readonly cut = new Set<string>();
  private seed: number;

  constructor(options: { voters: readonly NodeId[]; seed?: number; config?: NodeOptions }) {
    this.seed = options.seed ?? 1;
    for (const id of options.voters) {
      const storage = new MemoryStorage();
      storage.applySnapshot(bootstrapSnapshot({ voters: options.voters }));
      this.addNode(id, storage, options.config);
    }
  }

  /** Adds a node with empty storage (a joiner) or the given storage. */
  addNode(id: NodeId, storage = new MemoryStorage(), config: NodeOptions = {}): TestNode {
    const node = new RawNode({ ...config, id, storage, rng: createRng(this.seed++) });
    const tn: TestNode = { id, node, storage, state: [], appliedIndex: 0, readStates: [], readies: [], up: true };
    tn.appliedIndex = storage.firstIndex() - 1;
    tn.state = decodeState(storage.snapshot().data);
    this.nodes.set(id, tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const tn = this.nodes.get(id);
    if (tn === undefined) throw new Error(`no node ${id}`);
    return tn;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  /** Handles one Ready of `id` in the documented order; returns false if it had none. */
  processReady(id: NodeId): boolean {
    const tn = this.get(id);
    if (!tn.up || !tn.node.hasReady()) return false;
    const rd = tn.node.ready();
    tn.readies.push(rd);
    checkReadyShape(id, rd);
    // 1. Leader appends may go before persistence.
    this.queue.push(...rd.messagesNow.map(clone));
    // 2. Persist.
    if (rd.snapshot !== null) tn.storage.applySnapshot(rd.snapshot);
    tn.storage.append(rd.entries);
    if (rd.hardState !== null) tn.storage.setHardState(rd.hardState);
    // 3. Messages that promise durable state, checked against what is durable now.
    for (const m of rd.messagesAfterPersist) checkDurable(tn, m);
    this.queue.push(...rd.messagesAfterPersist.map(clone));
    // 4. Apply.
    if (rd.snapshot !== null) {
      tn.state = decodeState(rd.snapshot.data);
      tn.appliedIndex = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== tn.appliedIndex + 1) throw new Error(`${id}: applied ${e.index} after ${tn.appliedIndex}`);
      if (tn.storage.term(e.index) !== e.term) throw new Error(`${id}: committed entry ${e.index} is not durable`);
      tn.appliedIndex = e.index;
      if (e.type === "normal" && e.data.byteLength > 0) tn.state.push(decoder.decode(e.data));
    }
    tn.readStates.push(...rd.readStates);
    tn.node.advance();
    return true;
  }

  /** Delivers every queued message once (messages sent meanwhile wait for the next call). */
  deliverAll(filter: (m: Message) => boolean = () => true): number {
    const batch = this.queue;
    this.queue = [];
    let delivered = 0;
    for (const m of batch) {
      if (!filter(m)) {
        this.queue.push(m);
        continue;
      }
      const to = this.nodes.get(m.to);
      if (to === undefined || !to.up || this.cut.has(`${m.from}->${m.to}`)) continue;
      to.node.step(m);
      delivered++;
    }
    return delivered;
  }

  /** Processes Readies and delivers messages until the cluster is quiet. */
  stabilize(maxRounds = 500): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const id of this.nodes.keys()) while (this.processReady(id)) busy = true;
      if (this.deliverAll() > 0) busy = true;
      if (!busy && this.queue.length === 0) return;
    }
    throw new Error(`cluster did not stabilize in ${maxRounds} rounds`);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).node.tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const tn of this.nodes.values()) if (tn.up) tn.node.tick();
  }

  /** Ticks `id` alone until it starts a campaign (pre-vote or vote), then runs the cluster until quiet. */
  campaign(id: NodeId): void {
    const tn = this.get(id);
    for (let i = 0; i < 1000; i++) {
      tn.node.tick();
      const role = tn.node.status().role;
      if (role === "precandidate" || role === "candidate" || role === "leader") break;
    }
    this.stabilize();
  }

  /** Makes `id` the leader by letting it time out first; throws if it does not win. */
  elect(id: NodeId): void {
    this.campaign(id);
    const status = this.get(id).node.status();
    if (status.role !== "leader") throw new Error(`${id} did not become leader: ${status.role} term ${status.term}`);
  }

  leaders(): NodeId[] {
    return this.ids().filter((id) => this.get(id).up && this.get(id).node.status().role === "leader");
  }

  propose(id: NodeId, payload: string) {
    return this.get(id).node.propose(encoder.encode(payload));
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Stops `id`: its volatile state and undelivered messages to it are lost; storage survives. */
  crash(id: NodeId): void {
    const tn = this.get(id);
    tn.up = false;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Restarts `id` from its storage, rebuilding the application state from the stored snapshot. */
  restart(id: NodeId, config: NodeOptions = {}): void {
    const tn = this.get(id);
    tn.node = new RawNode({ ...config, id, storage: tn.storage, rng: createRng(this.seed++) });
    tn.state = decodeState(tn.storage.snapshot().data);
    tn.appliedIndex = tn.storage.snapshot().meta.index;
    tn.up = true;
  }

  /** Takes a snapshot of `id`'s applied state and compacts its log up to `index` (default: applied). */
  compact(id: NodeId, index?: number): Snapshot {
    const tn = this.get(id);
    const at = index ?? tn.appliedIndex;
    if (at !== tn.appliedIndex) throw new Error("compact: the harness snapshots only at the applied index");
    const snap = tn.storage.createSnapshot(at, tn.node.status().confState, encodeState(tn.state));
    tn.storage.compact(at);
    return snap;
  }
}

export function payload(text: string): Uint8Array {
  return encoder.encode(text);
}

function encodeState(state: readonly string[]): Uint8Array {
  return encoder.encode(JSON.stringify(state));
}

function decodeState(data: Uint8Array): string[] {
  return data.byteLength === 0 ? [] : (JSON.parse(decoder.decode(data)) as string[]);
}

/** Messages cross a network: the receiver must not share mutable state with the sender. */
function clone(m: Message): Message {
  return structuredClone(m);
}

const NOW_TYPES = new Set([
  "append",
  "heartbeat",
  "snapshot",
  "timeoutNow",
  "preVote",
  "propose",
  "readIndex",
  "readIndexResponse",
  "transferLeader",
]);

function checkReadyShape(id: NodeId, rd: Ready): void {
  for (const m of rd.messagesNow) {
    if (!NOW_TYPES.has(m.type)) throw new Error(`${id}: ${m.type} must wait for persistence`);
  }
  for (const m of rd.messagesAfterPersist) {
    if (NOW_TYPES.has(m.type)) throw new Error(`${id}: ${m.type} in messagesAfterPersist`);
  }
  for (const m of [...rd.messagesNow, ...rd.messagesAfterPersist]) {
    if (m.from !== id) throw new Error(`${id}: message from ${m.from}`);
  }
  if (rd.entries.length > 0 && !rd.mustSync) throw new Error(`${id}: entries without mustSync`);
}

/** The persistence contract: what a message promises must be durable before it is sent. */
function checkDurable(tn: TestNode, m: Message): void {
  const hs = tn.storage.initialState().hardState;
  const fail = (why: string): never => {
    throw new Error(`${tn.id}: ${m.type} to ${m.to} sent before its state was durable: ${why}`);
  };
  if (m.term > hs.term && !(m.type === "preVoteResponse")) fail(`term ${m.term} > durable ${hs.term}`);
  switch (m.type) {
    // A vote promises "I will not vote for anyone else in this term": a durable
    // vote for the same node in that term keeps it, and so does a higher durable term.
    case "vote":
      if (hs.term === m.term && hs.vote !== tn.id) fail(`durable vote ${hs.vote} in term ${hs.term}`);
      break;
    case "voteResponse":
      if (!m.reject && hs.term === m.term && hs.vote !== m.to) fail(`durable vote ${hs.vote} in term ${hs.term}`);
      break;
    case "appendResponse":
      if (!m.reject) {
        if (tn.storage.lastIndex() < m.index) fail(`durable last index ${tn.storage.lastIndex()} < ${m.index}`);
      }
      break;
    default:
      break;
  }
}

export type { Entry };
