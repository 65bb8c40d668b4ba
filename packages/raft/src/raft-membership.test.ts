/**
 * Single-server membership changes (thesis chapter 4): add a learner, let it
 * catch up, promote it; remove a voter, including the leader; ids are never reused.
 */
import { describe, expect, test } from "vitest";
import { decodeConfChange } from "./conf-change.js";
import { RawNode } from "./raw-node.js";
import { createRng } from "./rng.js";
import { TestCluster } from "./test-cluster.js";

const VOTERS = ["n1", "n2", "n3"];

function settle(c: TestCluster, rounds = 10): void {
  for (let i = 0; i < rounds; i++) {
    c.tickAll();
    c.stabilize();
  }
}

function cluster(): TestCluster {
  const c = new TestCluster({ voters: VOTERS });
  c.elect("n1");
  c.propose("n1", "before");
  settle(c, 2);
  return c;
}

describe("4.1 membership changes, one server at a time", () => {
  test("a learner is added, catches up without voting, then is promoted to voter", () => {
    const c = cluster();
    c.addNode("n4");
    const leader = c.get("n1").node;
    expect(leader.proposeConfChange({ type: "addLearner", nodeId: "n4" })).toMatchObject({ outcome: "accepted" });
    settle(c);
    expect(leader.status().confState).toEqual({ voters: VOTERS, learners: ["n4"], removed: [] });
    expect(c.get("n4").node.status().role).toBe("learner");
    expect(c.get("n4").state).toEqual(["before"]);

    // A learner does not count toward a quorum: with two voters down nothing commits.
    c.isolate("n2");
    c.isolate("n3");
    c.propose("n1", "needs-a-voter");
    settle(c, 2);
    expect(c.get("n1").state).toEqual(["before"]);
    c.heal();
    settle(c, 3);

    expect(leader.proposeConfChange({ type: "promote", nodeId: "n4" })).toMatchObject({ outcome: "accepted" });
    settle(c);
    expect(leader.status().confState.voters).toEqual(["n1", "n2", "n3", "n4"]);
    expect(c.get("n4").node.status().role).toBe("follower");
    // Now four voters: a quorum is three, so n1 + n4 + one more.
    c.isolate("n3");
    c.propose("n1", "with-n4");
    settle(c, 3);
    expect(c.get("n4").state).toEqual(["before", "needs-a-voter", "with-n4"]);
  });

  test("a removed follower stops counting, and its messages are dropped", () => {
    const c = cluster();
    const leader = c.get("n1").node;
    expect(leader.proposeConfChange({ type: "remove", nodeId: "n3" })).toMatchObject({ outcome: "accepted" });
    settle(c);
    expect(leader.status().confState).toEqual({ voters: ["n1", "n2"], learners: [], removed: ["n3"] });
    const dropped = leader.status().droppedMessages;
    leader.step({ type: "vote", from: "n3", to: "n1", term: 99, lastIndex: 99, lastTerm: 99, transfer: true });
    expect(leader.status()).toMatchObject({ role: "leader", droppedMessages: dropped + 1 });
    c.propose("n1", "after");
    settle(c, 3);
    expect(c.get("n2").state).toEqual(["before", "after"]);
  });

  test("removing the leader: it steps down once the removal is applied, and the rest elect a new leader", () => {
    const c = cluster();
    const n1 = c.get("n1").node;
    expect(n1.proposeConfChange({ type: "remove", nodeId: "n1" })).toMatchObject({ outcome: "accepted" });
    settle(c, 30);
    expect(n1.status().role).toBe("follower");
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    expect(["n2", "n3"]).toContain(leaders[0]);
    const newLeader = c.get(leaders[0]!).node;
    expect(newLeader.status().confState).toEqual({ voters: ["n2", "n3"], learners: [], removed: ["n1"] });
    c.propose(leaders[0]!, "after");
    settle(c, 3);
    expect(c.get("n2").state).toEqual(["before", "after"]);
    expect(c.get("n3").state).toEqual(["before", "after"]);
    // The removed node never campaigns again.
    settle(c, 50);
    expect(n1.status().role).toBe("follower");
  });

  test("a leader that removes itself does not strand the last voter (README, What must hold #1)", () => {
    // Voters {n1, n2}: n1 removes itself at R and appends R+1; n2 acknowledges R, then
    // everything from n1 to n2 is lost for a while. n2 still uses config {n1, n2}, its log
    // is shorter than n1's (so n1 refuses its vote), and nobody told it that R committed.
    const c = cluster();
    const n1 = c.get("n1").node;
    n1.proposeConfChange({ type: "remove", nodeId: "n3" });
    settle(c);
    c.crash("n3");
    const r = n1.proposeConfChange({ type: "remove", nodeId: "n1" });
    if (r.outcome !== "accepted") throw new Error(`not accepted: ${JSON.stringify(r)}`);
    c.processReady("n1");
    c.deliverAll();
    c.processReady("n2");
    expect(c.queue).toEqual([expect.objectContaining({ type: "appendResponse", from: "n2", index: r.index })]);
    expect(c.propose("n1", "extra")).toMatchObject({ outcome: "accepted", index: r.index + 1 });
    c.cutLink("n1", "n2");
    c.stabilize();
    expect(n1.status()).toMatchObject({ applied: r.index });
    expect(n1.status().confState.removed).toContain("n1");
    // While it hands over, the removed leader takes no new proposals.
    if (n1.status().role === "leader") expect(c.propose("n1", "refused")).toMatchObject({ code: "TRANSFERRING" });
    // Check-quorum: n1 hears nothing from n2 and steps down, with a longer log than n2's.
    for (let i = 0; i < 30; i++) {
      c.tickAll();
      c.stabilize();
    }
    expect(n1.status().role).toBe("follower");
    expect(c.get("n2").node.status().commit).toBeLessThan(r.index);
    c.heal();
    // n2 campaigns; n1 refuses its vote but tells it that R committed; n2 applies its new
    // config {n2} and elects itself.
    settle(c, 60);
    expect(c.leaders()).toEqual(["n2"]);
    c.propose("n2", "after");
    settle(c, 3);
    expect(c.get("n2").state.at(-1)).toBe("after");
    expect(c.get("n2").node.status().confState).toEqual({ voters: ["n2"], learners: [], removed: ["n3", "n1"] });
  });

  test("a removed leader hands over to a voter that holds its whole log", () => {
    const c = cluster();
    const n1 = c.get("n1").node;
    const term = n1.status().term;
    n1.proposeConfChange({ type: "remove", nodeId: "n1" });
    c.stabilize();
    // Applied on n1: it sent timeoutNow to a caught-up voter, who won without waiting for a timeout.
    expect(n1.status().role).toBe("follower");
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    expect(c.get(leaders[0]!).node.status().term).toBe(term + 1);
  });

  test("a node id is never reused", () => {
    const c = cluster();
    const leader = c.get("n1").node;
    leader.proposeConfChange({ type: "remove", nodeId: "n3" });
    settle(c);
    expect(leader.proposeConfChange({ type: "addLearner", nodeId: "n3" })).toMatchObject({
      outcome: "refused",
      code: "NODE_ID_REMOVED",
    });
  });

  test("only one conf change may be pending; invalid changes are refused with a reason", () => {
    const c = cluster();
    const leader = c.get("n1").node;
    c.addNode("n4");
    expect(leader.proposeConfChange({ type: "addLearner", nodeId: "n4" }).outcome).toBe("accepted");
    expect(leader.proposeConfChange({ type: "addLearner", nodeId: "n5" })).toMatchObject({ code: "CONF_CHANGE_PENDING" });
    settle(c);
    expect(leader.proposeConfChange({ type: "addLearner", nodeId: "n2" })).toMatchObject({ code: "INVALID_CONF_CHANGE" });
    expect(leader.proposeConfChange({ type: "promote", nodeId: "n2" })).toMatchObject({ code: "INVALID_CONF_CHANGE" });
    expect(leader.proposeConfChange({ type: "remove", nodeId: "n9" })).toMatchObject({ code: "INVALID_CONF_CHANGE" });
    expect(() => leader.proposeConfChange({ type: "explode", nodeId: "n2" } as never)).toThrow(/type must be/);
    expect(() => leader.proposeConfChange({ type: "remove", nodeId: "" })).toThrow(/node id/);
  });

  test("conf changes are proposed on the leader: a follower answers NOT_LEADER with the leader's id", () => {
    const c = cluster();
    expect(c.get("n2").node.proposeConfChange({ type: "addLearner", nodeId: "n4" })).toMatchObject({
      outcome: "refused",
      code: "NOT_LEADER",
      leader: "n1",
    });
  });

  test("conf changes take effect when applied, and are rebuilt from the log on restart", () => {
    const c = cluster();
    c.addNode("n4");
    c.get("n1").node.proposeConfChange({ type: "addLearner", nodeId: "n4" });
    settle(c);
    const n2 = c.get("n2");
    expect(n2.node.status().confState.learners).toEqual(["n4"]);
    const confEntries = n2.readies.flatMap((rd) => rd.committedEntries).filter((e) => e.type === "confChange");
    expect(confEntries.map((e) => decodeConfChange(e.data))).toEqual([{ type: "addLearner", nodeId: "n4" }]);
    // Restarted with `applied`: the conf change entries up to it are replayed at once.
    const applied = n2.node.status().applied;
    const replayed = new RawNode({ id: "n2", storage: n2.storage, rng: createRng(5), applied });
    expect(replayed.status().confState.learners).toEqual(["n4"]);
    // Restarted without: they take effect again when handed out and applied.
    c.crash("n2");
    c.restart("n2");
    expect(c.get("n2").node.status().confState.learners).toEqual([]);
    settle(c, 3);
    expect(c.get("n2").node.status().confState.learners).toEqual(["n4"]);
  });
});
