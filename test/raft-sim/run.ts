import { decodeConfChange, type NodeId } from "@ratequeue/raft";
import { SafetyViolation } from "./checkers/types.js";
import { LivenessFailure, SimCluster, type ClusterOptions } from "./cluster.js";
import { Prng } from "@ratequeue/testkit";
import { changeConf } from "./state-machine.js";
import { describeFaults, replayCommand, type Fault, type Scenario } from "./scenario.js";

/** Raft timing of every randomized run: a tick is 10 simulated ms, elections time out after 100-200 ms. */
export const TICK_MS = 10;
export const ELECTION_TICKS = 10;
/**
 * The liveness bound: once a majority is healed it must elect a leader and
 * commit every pending proposal within this much simulated time (60 election
 * timeouts: generous, since randomized timeouts may split votes a few times,
 * but finite, so a livelock fails).
 */
export const LIVENESS_BOUND_MS = 60 * ELECTION_TICKS * TICK_MS;

export interface RunStats {
  steps: number;
  simulatedMs: number;
  acked: number;
  issued: number;
  attempts: number;
  crashes: number;
  leadersElected: number;
  snapshotsInstalled: number;
  snapshotsTaken: number;
  messagesDelivered: number;
  /** Simulated ms the healed majority took to elect a leader and commit every pending proposal. */
  livenessMs: number;
  /** ReadIndex answers checked against what was acknowledged before each read. */
  readsAnswered: number;
}

export type RunResult =
  | { readonly ok: true; readonly stats: RunStats }
  | {
      readonly ok: false;
      readonly stats: RunStats;
      /** "safety", "liveness", or "crash" (the core or the simulator threw). */
      readonly failure: "safety" | "liveness" | "crash";
      readonly message: string;
      readonly replay: string;
      readonly schedule: string;
      readonly transcript: readonly string[];
    };

export function clusterOptions(scenario: Scenario): ClusterOptions {
  const k = scenario.knobs;
  return {
    seed: scenario.seed,
    nodeCount: k.nodes,
    raft: {
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 1,
      preVote: k.preVote === 1,
      checkQuorum: k.checkQuorum === 1,
      maxSizePerMsgBytes: k.msgBytes,
      maxInflightMsgs: 64,
      snapshotChunkBytes: k.chunkBytes,
    },
    tickMs: TICK_MS,
    tickDriftMs: k.driftMs,
    network: {
      dropRate: k.dropPermille / 1000,
      duplicateRate: k.dupPermille / 1000,
      reorderRate: k.reorderPermille / 1000,
      minDelayMs: 1,
      maxDelayMs: k.maxDelayMs,
      lateRate: k.latePermille / 1000,
      lateMaxMs: 600,
    },
    disk: { flushRate: k.flushPermille / 1000, tornWriteRate: k.tornPermille / 1000 },
    syncMinMs: 1,
    syncMaxMs: k.syncMaxMs,
    snapshotEveryEntries: k.snapshotEvery,
    snapshotKeepEntries: 2,
    workload: { clients: k.clients, thinkMinMs: 5, thinkMaxMs: 60, retryAfterMs: 300 },
    membershipChanges: scenario.faults.some((f) => f.kind === "addNode" || f.kind === "removeNode"),
    stepDuringSync: k.asyncSync === 1,
    asyncWrites: k.asyncSync === 2,
    electionCrashRate: k.electionCrashPermille / 1000,
    leaderCutRate: k.leaderCutPermille / 1000,
    readers: k.readers,
    tickJitterMs: k.jitterMs,
  };
}

/**
 * One run: a safety phase with every fault of the scenario, then a liveness
 * phase on a healed majority. Safety checkers run after every step of both.
 */
export function runScenario(scenario: Scenario, testing: { sabotage?: ClusterOptions["sabotage"] } = {}): RunResult {
  let cluster: SimCluster | null = null;
  const phase = { safety: true };
  try {
    cluster = new SimCluster({ ...clusterOptions(scenario), ...(testing.sabotage === undefined ? {} : { sabotage: testing.sabotage }) });
    const c = cluster;
    for (const fault of scenario.faults) c.after(fault.atMs, () => phase.safety && injectFault(c, fault, phase));
    c.workload.start();
    c.runForMs(scenario.knobs.safetyMs);
    phase.safety = false;
    c.nemesisOn = false;
    const livenessMs = livenessPhase(c, new Prng(scenario.seed).fork());
    c.checkAcknowledgedDurable();
    return { ok: true, stats: statsOf(c, livenessMs) };
  } catch (error) {
    const failure = error instanceof SafetyViolation ? "safety" : error instanceof LivenessFailure ? "liveness" : "crash";
    const message = error instanceof Error ? (failure === "crash" ? (error.stack ?? error.message) : error.message) : String(error);
    return {
      ok: false,
      stats: cluster === null ? emptyStats() : statsOf(cluster, 0),
      failure,
      message,
      replay: replayCommand(scenario),
      schedule: describeFaults(scenario.faults),
      transcript: [...(cluster?.transcript() ?? []), ...(cluster?.describeNodes().map((l) => `  end: ${l}`) ?? [])],
    };
  }
}

function injectFault(c: SimCluster, fault: Fault, phase: { safety: boolean }): void {
  const ids = c.nodeIds();
  // Node 0 is whoever leads when the fault strikes (a random node when nobody does).
  const leaderNow = c.leader() ?? ids[c.nowMs % ids.length];
  const id = (n: number): NodeId | undefined => (n === 0 ? leaderNow : ids[(n - 1) % ids.length]);
  const later = (ms: number, fn: () => void): void => c.after(ms, () => phase.safety && fn());
  switch (fault.kind) {
    case "crash": {
      const n = id(fault.node)!;
      if (!c.driver(n).up) return;
      c.crash(n);
      later(fault.downMs, () => c.restart(n));
      return;
    }
    case "pause": {
      const n = id(fault.node)!;
      c.pause(n);
      later(fault.forMs, () => c.resume(n));
      return;
    }
    case "isolate": {
      const n = id(fault.node)!;
      c.isolate(n);
      later(fault.forMs, () => c.reconnect(n));
      return;
    }
    case "partition": {
      const side = [...new Set(fault.side.map((n) => id(n)!))];
      c.partition(side);
      later(fault.forMs, () => c.healPartition(side));
      return;
    }
    case "oneWay": {
      const from = id(fault.from)!;
      const to = id(fault.to)!;
      if (from === to) return;
      c.cutOneWay(from, to);
      later(fault.forMs, () => {
        c.note(`heal ${from}->${to}`);
        c.network.heal(from, to);
      });
      return;
    }
    case "transfer": {
      const leader = c.leader();
      const to = id(fault.to)!;
      if (leader !== null && leader !== to) c.transferLeadership(leader, to);
      return;
    }
    case "addNode": {
      const leader = c.leader();
      if (leader === null) return;
      const n = c.addNodeProcess();
      c.proposeConfChange(leader, { type: "addLearner", nodeId: n });
      // Promote once it had time to catch up; refused harmlessly if it never became a learner.
      later(400, () => {
        const l = c.leader();
        if (l !== null) c.proposeConfChange(l, { type: "promote", nodeId: n });
      });
      return;
    }
    case "removeNode": {
      const leader = c.leader();
      if (leader !== null) c.proposeConfChange(leader, { type: "remove", nodeId: id(fault.node)! });
      return;
    }
  }
}

/**
 * Heals a majority: restarts, resumes and reconnects a set of nodes that is
 * a majority of every configuration that may be in force (the applied ones
 * and the ones waiting in any node's log: a conf change may commit during
 * this phase), on a network that no longer drops. The others stay as the
 * faults left them, but cut off. Then a leader must emerge and every pending
 * proposal must commit within LIVENESS_BOUND_MS.
 */
function livenessPhase(c: SimCluster, prng: Prng): number {
  const core = chooseCore(c, prng);
  c.note(`liveness phase: heal [${core.join(",")}]`);
  c.workload.stopIssuing();
  c.network.setFaults({ ...c.network.faults, dropRate: 0, duplicateRate: 0, reorderRate: 0, lateRate: 0 });
  c.network.healAll();
  for (const id of c.nodeIds()) if (!core.includes(id)) c.network.isolate(id, c.nodeIds());
  for (const id of core) {
    c.restart(id);
    c.resume(id);
  }
  const startMs = c.nowMs;
  c.runUntil(() => coreLeader(c, core) !== null, { maxMs: LIVENESS_BOUND_MS, what: `a leader among the healed majority [${core.join(",")}]` });
  c.runUntil(() => c.workload.pending().length === 0, {
    maxMs: LIVENESS_BOUND_MS - (c.nowMs - startMs),
    what: `commit of every pending proposal (${c.workload.pending().map((p) => p.id).join(",")})`,
  });
  // Every healed node still a member catches up on everything acknowledged (a removed one never will).
  let maxAck = 0;
  for (const ack of c.checkers.acknowledged.acks()) maxAck = Math.max(maxAck, ack.index);
  const members = (): NodeId[] => {
    const leader = coreLeader(c, core);
    const conf = leader === null ? null : c.driver(leader).stateMachine.image.confState;
    return conf === null ? core : core.filter((id) => conf.voters.includes(id) || conf.learners.includes(id));
  };
  c.runUntil(() => members().every((id) => c.driver(id).stateMachine.image.index >= maxAck), {
    maxMs: LIVENESS_BOUND_MS,
    what: `every healed member applying up to ${maxAck}`,
  });
  return c.nowMs - startMs;
}

/** The smallest set (up nodes first, then at random) that is a majority of every configuration that may take effect. */
function chooseCore(c: SimCluster, prng: Prng): NodeId[] {
  const configs = possibleConfigs(c);
  const candidates = [...new Set(configs.flat())]
    .map((id) => ({ id, key: -10 * configs.filter((v) => v.includes(id)).length + (c.driver(id).up ? 0 : 2) + prng.float() }))
    .sort((a, b) => a.key - b.key)
    .map((x) => x.id);
  const core: NodeId[] = [];
  const satisfied = (): boolean => configs.every((v) => v.filter((id) => core.includes(id)).length > v.length / 2);
  for (const id of candidates) {
    if (satisfied()) break;
    core.push(id);
  }
  return core;
}

/** Voters of each node's applied configuration and of its log's latest configuration. */
export function possibleConfigs(c: SimCluster): NodeId[][] {
  const out = new Map<string, NodeId[]>();
  for (const id of c.nodeIds()) {
    const d = c.driver(id);
    let conf = d.stateMachine.image.confState;
    if (conf.voters.length === 0) continue; // a joining node that knows nothing yet
    out.set(conf.voters.join(","), [...conf.voters]);
    for (let i = d.stateMachine.image.index + 1; i <= d.volatileLog.lastIndex(); i++) {
      const entry = d.volatileLog.entryAt(i);
      if (entry?.type === "confChange") conf = changeConf(conf, decodeConfChange(entry.data));
    }
    out.set(conf.voters.join(","), [...conf.voters]);
    // A change the leader accepted but has not written yet (its driver was busy) may still commit.
    for (const accepted of c.acceptedConfChanges()) {
      if (accepted.node !== id || accepted.index <= d.volatileLog.lastIndex()) continue;
      conf = changeConf(conf, accepted.change);
      out.set(conf.voters.join(","), [...conf.voters]);
    }
  }
  return [...out.values()];
}

function coreLeader(c: SimCluster, core: readonly NodeId[]): NodeId | null {
  const leader = c.leader();
  return leader !== null && core.includes(leader) ? leader : null;
}

function statsOf(c: SimCluster, livenessMs: number): RunStats {
  let snapshotsInstalled = 0;
  let snapshotsTaken = 0;
  let crashes = 0;
  for (const id of c.nodeIds()) {
    const d = c.driver(id);
    snapshotsInstalled += d.snapshotsInstalled;
    snapshotsTaken += d.snapshotsTaken;
    crashes += d.restarts;
  }
  return {
    steps: c.steps,
    simulatedMs: c.nowMs,
    acked: c.workload.ackedCount,
    issued: c.workload.issuedCount,
    attempts: c.workload.attempts,
    crashes,
    leadersElected: c.checkers.electionSafety.leaders().size,
    snapshotsInstalled,
    snapshotsTaken,
    messagesDelivered: c.network.stats.delivered,
    livenessMs,
    readsAnswered: c.readsAnswered,
  };
}

function emptyStats(): RunStats {
  return {
    steps: 0,
    simulatedMs: 0,
    acked: 0,
    issued: 0,
    attempts: 0,
    crashes: 0,
    leadersElected: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    messagesDelivered: 0,
    livenessMs: 0,
    readsAnswered: 0,
  };
}
