import type { Message, NodeId } from "@ratequeue/raft";
import { SimCluster, type ClusterOptions } from "./cluster.js";
import { decodePayload, encodePayload } from "./payload.js";
import { ELECTION_TICKS, TICK_MS } from "./run.js";
import { RELIABLE_DISK } from "./sim-disk.js";
import { CALM_NETWORK } from "./sim-network.js";

/**
 * Helpers for scenario tests: a calm cluster (no random faults, no random
 * clients) that a test script drives step by step. Every safety checker
 * still runs after every step.
 */
export function scriptedCluster(overrides: Partial<ClusterOptions> = {}): SimCluster {
  return new SimCluster({
    seed: 1,
    nodeCount: 3,
    raft: { electionTicks: ELECTION_TICKS, heartbeatTicks: 1, preVote: true, checkQuorum: true, maxSizePerMsgBytes: 4096, maxInflightMsgs: 64 },
    tickMs: TICK_MS,
    tickDriftMs: 1,
    network: CALM_NETWORK,
    disk: RELIABLE_DISK,
    syncMinMs: 1,
    syncMaxMs: 2,
    snapshotEveryEntries: 1_000_000,
    snapshotKeepEntries: 2,
    workload: { clients: 0, thinkMinMs: 5, thinkMaxMs: 60, retryAfterMs: 300 },
    membershipChanges: false,
    ...overrides,
  });
}

/** Simulated ms within which a healthy cluster must elect a leader. */
export const ELECTION_BOUND_MS = 20 * ELECTION_TICKS * TICK_MS;

export function waitForLeader(c: SimCluster, among?: readonly NodeId[]): NodeId {
  c.runUntil(
    () => {
      const l = c.leader();
      return l !== null && (among === undefined || among.includes(l));
    },
    { maxMs: ELECTION_BOUND_MS, what: `a leader${among === undefined ? "" : ` among [${among.join(",")}]`}` },
  );
  return c.leader()!;
}

function isVoteRequest(m: Message): boolean {
  return m.type === "vote" || m.type === "preVote";
}

/** Makes `id` the leader: only its vote requests get through until it wins. */
export function elect(c: SimCluster, id: NodeId): number {
  c.note(`elect ${id}`);
  const stop = c.network.dropWhere((m) => isVoteRequest(m) && m.from !== id);
  c.runUntil(() => c.leader() === id && c.driver(id).status!.role === "leader", { maxMs: ELECTION_BOUND_MS, what: `${id} elected` });
  stop();
  return c.driver(id).status!.term;
}

/** Records what every node applied, by index. */
export class ApplyRecorder {
  readonly byNode = new Map<NodeId, Map<number, { term: number; text: string }>>();

  constructor(c: SimCluster) {
    c.onApplied = (node, entry) => {
      let m = this.byNode.get(node);
      if (m === undefined) {
        m = new Map();
        this.byNode.set(node, m);
      }
      m.set(entry.index, { term: entry.term, text: decodePayload(entry.data)?.id ?? (entry.type === "confChange" ? "conf" : "") });
    };
  }

  /** The index at which `node` applied payload `id`, or undefined. */
  indexOf(node: NodeId, id: string): number | undefined {
    for (const [index, e] of this.byNode.get(node) ?? []) if (e.text === id) return index;
    return undefined;
  }
}

let scriptSeq = 0;

/** Proposes a payload at `node` and runs until `node` applies it; returns its index. */
export function proposeAndCommit(c: SimCluster, recorder: ApplyRecorder, node: NodeId): { id: string; index: number } {
  const id = `s${++scriptSeq}`;
  const answer = c.propose(node, encodePayload({ id, attempt: 1 }));
  if (answer.kind !== "taken") throw new Error(`proposal at ${node} not taken: ${JSON.stringify(answer)}`);
  c.runUntil(() => recorder.indexOf(node, id) !== undefined, { maxMs: ELECTION_BOUND_MS, what: `${id} applied at ${node}` });
  return { id, index: recorder.indexOf(node, id)! };
}

/** Proposes a payload at `node` without waiting; returns its id. */
export function proposeOnly(c: SimCluster, node: NodeId): string {
  const id = `s${++scriptSeq}`;
  c.propose(node, encodePayload({ id, attempt: 1 }));
  return id;
}
