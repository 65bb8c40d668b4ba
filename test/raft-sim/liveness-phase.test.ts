import { describe, expect, it } from "vitest";
import { encodePayload } from "./payload.js";
import { possibleConfigs } from "./run.js";
import { scriptedCluster, waitForLeader } from "./scripted.js";

// The liveness phase heals a majority of every configuration that may take
// effect. A conf change the leader accepted while its driver waited for an
// fsync is in no written log yet, but may still commit: it must count.
describe("liveness phase: which configurations may take effect", () => {
  it("counts a conf change the leader accepted but has not written yet", () => {
    const c = scriptedCluster();
    const leader = waitForLeader(c);
    const n4 = c.addNodeProcess();
    expect(c.proposeConfChange(leader, { type: "addLearner", nodeId: n4 }).kind).toBe("taken");
    c.runUntil(() => c.driver(leader).stateMachine.image.confState.learners.includes(n4), { maxMs: 2000, what: "n4 a learner" });

    // A proposal makes the leader's driver wait for an fsync; the promote accepted meanwhile stays unwritten.
    c.propose(leader, encodePayload({ id: "busy", attempt: 1 }));
    const lastWritten = c.driver(leader).volatileLog.lastIndex();
    expect(c.proposeConfChange(leader, { type: "promote", nodeId: n4 }).kind).toBe("taken");
    expect(c.driver(leader).volatileLog.lastIndex()).toBe(lastWritten);

    const configs = possibleConfigs(c).map((v) => [...v].sort().join(","));
    expect(configs).toContain(["n1", "n2", "n3", n4].sort().join(","));
  });
});
