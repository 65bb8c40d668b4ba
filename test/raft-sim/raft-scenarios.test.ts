import { RaftError, RaftErrorCode, type Message, type NodeId } from "@ratequeue/raft";
import { describe, expect, it } from "vitest";
import {
  ApplyRecorder,
  ELECTION_BOUND_MS,
  SafetyViolation,
  elect,
  proposeAndCommit,
  proposeOnly,
  scriptedCluster,
  waitForLeader,
  type Checker,
  type ClusterView,
  type SimCluster,
} from "./index.js";

// Named scenarios, each a short script against real RawNodes on the simulated
// network and disks. Every safety checker runs after every step of each one,
// so "nothing went wrong" is checked continuously, not only at the end.

function status(c: SimCluster, id: NodeId) {
  const s = c.driver(id).status;
  if (s === null) throw new Error(`${id} is down`);
  return s;
}

describe("raft scenarios", () => {
  it("an old-term entry is never committed by counting replicas (Raft paper, figure 8)", () => {
    // One entry per append message, so a script can lose one entry and not the next.
    const c = scriptedCluster({ nodeCount: 5, raft: { ...scriptedCluster().options.raft, maxSizePerMsgBytes: 1 } });
    const rec = new ApplyRecorder(c);
    const carries = (m: Message, pred: (term: number) => boolean): boolean => m.type === "append" && m.entries.some((e) => pred(e.term));
    const t1 = elect(c, "n1");
    proposeAndCommit(c, rec, "n1");

    // (a) n1 appends X in term t1; only n2 receives it.
    let stop = c.network.dropWhere((m) => m.from === "n1" && m.to !== "n2" && m.type === "append" && m.entries.length > 0);
    const xId = proposeOnly(c, "n1");
    c.runUntil(() => c.driver("n2").volatileLog.lastIndex() > c.driver("n3").volatileLog.lastIndex(), { maxMs: 500, what: "X on n2" });
    const x = c.driver("n2").volatileLog.lastIndex();
    stop();
    c.crash("n1");

    // (b) n5 wins term t2 with n3 and n4; its own entry at X's index stays on n5 alone.
    c.isolate("n2");
    stop = c.network.dropWhere((m) => m.from === "n5" && m.type === "append" && m.entries.length > 0);
    const t2 = elect(c, "n5");
    c.runUntil(() => c.driver("n5").durableLog.termAt(x) === t2, { maxMs: 500, what: "n5's entry at X's index, on disk" });
    c.reconnect("n2");
    c.crash("n5");
    stop();

    // (c) n1 restarts and wins a later term. It copies X (term t1) to n3, so X sits on a majority
    // (n1, n2, n3), but no entry of its new term reaches a majority: X must not be committed.
    c.restart("n1");
    // (n3 must first see a probe it rejects, so the rule starts once n3 holds X.)
    const n3HasX = (): boolean => c.driver("n3").volatileLog.termAt(x) === t1;
    stop = c.network.dropWhere((m) => m.from === "n1" && (m.to === "n4" || (m.to === "n3" && n3HasX() && carries(m, (t) => t > t1))));
    const t3 = elect(c, "n1");
    expect(t3).toBeGreaterThan(t2);
    c.runUntil(() => c.driver("n3").volatileLog.termAt(x) === t1, { maxMs: 1000, what: "X copied to n3" });
    c.runForMs(500);
    for (const id of ["n1", "n2", "n3"]) expect(status(c, id).commit).toBeLessThan(x);
    expect(rec.indexOf("n1", xId)).toBeUndefined();

    // (d) Which is what makes it safe for n5 to win again (votes of n3 and n4) and overwrite X.
    // Had X been reported committed, the checkers would fail this step.
    c.crash("n1");
    stop();
    c.restart("n5");
    elect(c, "n5");
    c.runUntil(() => c.driver("n3").volatileLog.termAt(x) === t2, { maxMs: 1000, what: "n5 overwrites X on n3" });
    proposeAndCommit(c, rec, "n5");
    expect(rec.indexOf("n5", xId)).toBeUndefined();
  });

  it("a rejoining partitioned node does not depose a healthy leader (pre-vote)", () => {
    const c = scriptedCluster();
    const leader = waitForLeader(c);
    const term = status(c, leader).term;
    const outsider = c.nodeIds().find((id) => id !== leader)!;
    c.isolate(outsider);
    c.runForMs(30 * 10 * 10); // thirty election timeouts alone
    // With pre-vote it never even raised its term: it could not win a pre-vote.
    expect(status(c, outsider).term).toBe(term);
    c.reconnect(outsider);
    c.runForMs(1000);
    expect(c.leader()).toBe(leader);
    expect(status(c, leader).term).toBe(term);
    expect(status(c, outsider).leader).toBe(leader);
  });

  it("an isolated leader steps down (check quorum) and the majority elects another", () => {
    const c = scriptedCluster();
    const old = waitForLeader(c);
    const term = status(c, old).term;
    c.isolate(old);
    const others = c.nodeIds().filter((id) => id !== old);
    c.runUntil(() => status(c, old).role !== "leader", { maxMs: 3 * 10 * 10, what: `${old} steps down` });
    const next = waitForLeader(c, others);
    expect(status(c, next).term).toBeGreaterThan(term);
    c.reconnect(old);
    c.runForMs(500);
    expect(status(c, old).leader).toBe(next);
  });

  it("dueling candidates resolve with one leader per term", () => {
    // Slow links make concurrent candidacies likely; a probe records them.
    const c = scriptedCluster({ nodeCount: 5, network: { dropRate: 0, duplicateRate: 0, reorderRate: 0, minDelayMs: 5, maxDelayMs: 40 } });
    let duels = 0;
    const probe: Checker = {
      property: "probe",
      afterStep(view: ClusterView) {
        const byTerm = new Map<number, number>();
        for (const n of view.nodes) if (n.status?.role === "candidate") byTerm.set(n.status.term, (byTerm.get(n.status.term) ?? 0) + 1);
        if ([...byTerm.values()].some((count) => count > 1)) duels++;
      },
    };
    (c.checkers.all as Checker[]).push(probe);
    for (let round = 0; round < 12; round++) {
      const leader = waitForLeader(c);
      c.crash(leader);
      waitForLeader(c, c.nodeIds().filter((id) => id !== leader));
      c.restart(leader);
    }
    expect(duels).toBeGreaterThan(0);
    // Election Safety ran after every step; every term had at most one leader.
    expect(c.checkers.electionSafety.leaders().size).toBeGreaterThanOrEqual(13);
  });

  it("a vote survives a crash: no second vote in the same term after restart", () => {
    const c = scriptedCluster();
    const oldLeader = waitForLeader(c);
    c.crash(oldLeader);
    // n3 campaigns; n2 grants its vote, then crashes the moment that vote is sent.
    const live = c.nodeIds().filter((id) => c.driver(id).up);
    const [voter, candidate] = live as [NodeId, NodeId];
    let granted: Message | null = null;
    const stopVotes = c.network.dropWhere((m) => {
      if (m.type === "vote" && m.from !== candidate) return true;
      if (m.type === "voteResponse" && m.from === voter && !m.reject) {
        granted = m;
        c.after(0, () => c.crash(voter));
        return true; // lost: the candidate never hears it
      }
      return false;
    });
    c.runUntil(() => granted !== null, { maxMs: ELECTION_BOUND_MS, what: `${voter} votes for ${candidate}` });
    stopVotes();
    c.runForMs(1);
    const term = (granted as unknown as Message).term;
    expect(c.driver(voter).durableLog.hardState).toMatchObject({ term, vote: candidate });
    c.restart(voter);
    // Another candidate asks for the same term: the restarted voter must refuse.
    const answers: Message[] = [];
    c.network.dropWhere((m) => {
      if (m.from === voter && m.type === "voteResponse") answers.push(m);
      return false;
    });
    // (transfer: true, so no leader lease can be the reason for a refusal; the log is more up to date.)
    c.driver(voter).receive({ type: "vote", from: oldLeader, to: voter, term, lastIndex: 1000, lastTerm: term, transfer: true });
    c.runForMs(5);
    expect(answers).toHaveLength(1);
    expect(answers[0]).toMatchObject({ type: "voteResponse", reject: true });
  });

  it("reordered and duplicated appends leave logs consistent", () => {
    const c = scriptedCluster({
      nodeCount: 5,
      seed: 7,
      network: { dropRate: 0.05, duplicateRate: 0.3, reorderRate: 0.5, minDelayMs: 1, maxDelayMs: 25 },
    });
    const rec = new ApplyRecorder(c);
    const leader = waitForLeader(c);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(proposeOnly(c, leader));
      c.runForMs(3);
    }
    c.runUntil(() => c.nodeIds().every((n) => ids.every((id) => rec.indexOf(n, id) !== undefined)), { maxMs: 5000, what: "all applied everywhere" });
    expect(c.network.stats.duplicated).toBeGreaterThan(50);
    const logs = c.nodeIds().map((n) => ids.map((id) => rec.indexOf(n, id)));
    for (const log of logs) expect(log).toEqual(logs[0]);
  });

  it("a slow follower behind the compaction point catches up by snapshot", () => {
    const c = scriptedCluster({ snapshotEveryEntries: 5, snapshotKeepEntries: 1 });
    const rec = new ApplyRecorder(c);
    const leader = waitForLeader(c);
    const slow = c.nodeIds().find((id) => id !== leader)!;
    c.isolate(slow);
    let last = { id: "", index: 0 };
    for (let i = 0; i < 30; i++) last = proposeAndCommit(c, rec, leader);
    expect(c.driver(leader).volatileLog.snapshotMeta!.index).toBeGreaterThan(c.driver(slow).volatileLog.lastIndex());
    c.reconnect(slow);
    c.runUntil(() => c.driver(slow).stateMachine.image.index >= last.index, { maxMs: 2000, what: `${slow} catches up` });
    expect(c.driver(slow).snapshotsInstalled).toBeGreaterThanOrEqual(1);
    // Same history, hence the same hash chain, as the leader at the same index.
    c.runForMs(200);
    expect(c.driver(slow).stateMachine.image).toEqual(c.driver(leader).stateMachine.image);
  });

  it("a crash in the middle of installing a snapshot leaves no gap", () => {
    const c = scriptedCluster({ snapshotEveryEntries: 5, snapshotKeepEntries: 1, disk: { flushRate: 0, tornWriteRate: 1 }, syncMinMs: 5, syncMaxMs: 5 });
    const rec = new ApplyRecorder(c);
    const leader = waitForLeader(c);
    const slow = c.nodeIds().find((id) => id !== leader)!;
    c.isolate(slow);
    let last = { id: "", index: 0 };
    for (let i = 0; i < 20; i++) last = proposeAndCommit(c, rec, leader);
    const before = c.driver(slow).durableLog.lastIndex();
    let crashedMidInstall = false;
    c.onDelivered = (m) => {
      // The snapshot is written but its fsync has not finished: power fails now, tearing the write.
      if (m.to === slow && m.type === "snapshot" && m.last && !crashedMidInstall) {
        crashedMidInstall = true;
        expect(c.driver(slow).disk.unsyncedWrites).toBeGreaterThan(0);
        c.crash(slow);
      }
    };
    c.reconnect(slow);
    c.runUntil(() => crashedMidInstall, { maxMs: 2000, what: "the snapshot reaches the slow follower" });
    // Recovery cut the torn record: the old log is intact, without a gap or a half snapshot.
    expect(c.driver(slow).durableLog.lastIndex()).toBe(before);
    expect(c.driver(slow).durableLog.snapshotMeta?.index ?? 0).toBeLessThan(last.index);
    c.onDelivered = null;
    c.restart(slow);
    c.runUntil(() => c.driver(slow).stateMachine.image.index >= last.index, { maxMs: 3000, what: `${slow} catches up after the crash` });
  });

  it("leadership transfer under writes loses nothing", () => {
    const c = scriptedCluster({ workload: { clients: 3, thinkMinMs: 1, thinkMaxMs: 10, retryAfterMs: 200 } });
    c.workload.start();
    waitForLeader(c);
    for (let round = 0; round < 6; round++) {
      const from = c.leader()!;
      const to = c.nodeIds()[(c.nodeIds().indexOf(from) + 1) % 3]!;
      c.transferLeadership(from, to);
      c.runUntil(() => c.leader() === to, { maxMs: 1000, what: `leadership moves ${from} -> ${to}` });
      c.runForMs(100);
    }
    c.workload.stopIssuing();
    c.runUntil(() => c.workload.pending().length === 0, { maxMs: 3000, what: "every proposal acknowledged" });
    expect(c.workload.ackedCount).toBeGreaterThan(50);
    c.checkAcknowledgedDurable();
  });

  it("removing the leader elects a new one", () => {
    const c = scriptedCluster({ membershipChanges: true });
    const rec = new ApplyRecorder(c);
    const old = waitForLeader(c);
    proposeAndCommit(c, rec, old);
    expect(c.proposeConfChange(old, { type: "remove", nodeId: old }).kind).toBe("taken");
    const rest = c.nodeIds().filter((id) => id !== old);
    const next = waitForLeader(c, rest);
    c.runUntil(() => !c.driver(next).stateMachine.image.confState.voters.includes(old), { maxMs: 1000, what: "removal applied" });
    expect(c.driver(next).stateMachine.image.confState.voters).toEqual(rest);
    // The two remaining voters keep committing, with the old leader gone for good.
    c.crash(old);
    proposeAndCommit(c, rec, next);
  });

  // packages/raft/README.md, What must hold #1.
  it("a leader that removes itself from a two-voter cluster leaves the other able to lead", () => {
    const c = scriptedCluster({ membershipChanges: true });
    const rec = new ApplyRecorder(c);
    const leader = waitForLeader(c);
    const [other, third] = c.nodeIds().filter((id) => id !== leader) as [NodeId, NodeId];
    proposeAndCommit(c, rec, leader);
    c.proposeConfChange(leader, { type: "remove", nodeId: third });
    c.runUntil(() => c.nodeIds().every((id) => id === third || !c.driver(id).stateMachine.image.confState.voters.includes(third)), {
      maxMs: 1000,
      what: `${third} removed everywhere`,
    });
    c.crash(third);
    // Voters are {leader, other}. The leader removes itself and takes one more proposal; the other
    // receives the removal but (messages lost) not the news that it committed, nor the next entry.
    const removal = c.driver(leader).volatileLog.lastIndex() + 1;
    expect(c.proposeConfChange(leader, { type: "remove", nodeId: leader }).kind).toBe("taken");
    proposeOnly(c, leader);
    const stop = c.network.dropWhere(
      (m) =>
        m.from === leader &&
        m.to === other &&
        ((m.type === "append" && (m.commit >= removal || m.entries.some((e) => e.index > removal))) || (m.type === "heartbeat" && m.commit >= removal)),
    );
    c.runUntil(() => status(c, leader).role !== "leader", { maxMs: 2000, what: "the removed leader steps down" });
    stop();
    // From here the network is perfect and both processes are up: the remaining voter must lead.
    waitForLeader(c, [other]);
  });

  it("a full-cluster restart loses nothing acknowledged", () => {
    const c = scriptedCluster({
      seed: 3,
      disk: { flushRate: 0.5, tornWriteRate: 1 },
      syncMinMs: 1,
      syncMaxMs: 8,
      snapshotEveryEntries: 7,
      workload: { clients: 4, thinkMinMs: 1, thinkMaxMs: 5, retryAfterMs: 200 },
    });
    c.workload.start();
    waitForLeader(c);
    c.runForMs(700);
    const acked = [...c.checkers.acknowledged.acks()];
    expect(acked.length).toBeGreaterThan(20);
    // Power fails everywhere at once, mid-write.
    for (const id of c.nodeIds()) c.crash(id);
    c.checkAcknowledgedDurable();
    for (const id of c.nodeIds()) c.restart(id);
    c.workload.stopIssuing();
    waitForLeader(c);
    c.runUntil(() => c.workload.pending().length === 0, { maxMs: 3000, what: "pending proposals acknowledged" });
    const maxIndex = Math.max(...acked.map((a) => a.index));
    c.runUntil(() => c.nodeIds().every((id) => c.driver(id).stateMachine.image.index >= maxIndex), { maxMs: 2000, what: "all re-applied" });
  });

  it("the checkers fail a driver that breaks the Ready contract (sending votes and acks before the fsync)", () => {
    // A sanity check of the simulator itself: a driver that acknowledges appends before they are
    // durable must be caught once crashes lose those writes. If this stops failing, the simulator
    // has gone blind. (Some seeds trip the core's own invariants first; we look for a checker.)
    let caught: SafetyViolation | null = null;
    let coreAsserts = 0;
    for (let seed = 1; seed <= 60 && caught === null; seed++) {
      const c = scriptedCluster({
        seed,
        sabotage: "sendBeforeSync",
        disk: { flushRate: 0, tornWriteRate: 0.5 },
        syncMinMs: 5,
        syncMaxMs: 20,
        workload: { clients: 3, thinkMinMs: 1, thinkMaxMs: 5, retryAfterMs: 200 },
      });
      try {
        c.workload.start();
        for (let round = 0; round < 10; round++) {
          c.runForMs(150);
          const l = c.leader();
          const victims = c.nodeIds().filter((id) => id !== l);
          for (const v of victims) c.crash(v);
          c.checkAcknowledgedDurable();
          for (const v of victims) c.restart(v);
        }
      } catch (error) {
        if (error instanceof SafetyViolation) caught = error;
        else if (error instanceof RaftError && error.code === RaftErrorCode.INVARIANT) coreAsserts++;
        else if (!(error instanceof Error && error.name === "LivenessFailure")) throw error;
      }
    }
    expect(caught?.message, `no checker caught it (core invariants tripped in ${coreAsserts} seeds)`).toMatch(/./);
  });
});
