/**
 * Leadership transfer (thesis 3.10), linearizable reads with ReadIndex
 * (thesis 6.4) and what a follower does with requests meant for the leader.
 */
import { describe, expect, test } from "vitest";
import { TestCluster, payload } from "./test-cluster.js";

const VOTERS = ["n1", "n2", "n3"];

function settle(c: TestCluster, rounds = 5): void {
  for (let i = 0; i < rounds; i++) {
    c.tickAll();
    c.stabilize();
  }
}

describe("3.10 leadership transfer", () => {
  test("the leader brings the target up to date and sends TimeoutNow; the target wins at once", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.isolate("n3");
    for (let i = 0; i < 5; i++) c.propose("n1", `e${i}`);
    c.stabilize();
    c.heal();
    const term = c.get("n1").node.status().term;
    expect(c.get("n1").node.transferLeadership("n3")).toEqual({ outcome: "accepted" });
    // "the prior leader stops accepting new client requests"
    expect(c.propose("n1", "during")).toMatchObject({ outcome: "refused", code: "TRANSFERRING", leader: "n1" });
    c.stabilize();
    expect(c.leaders()).toEqual(["n3"]);
    expect(c.get("n3").node.status().term).toBe(term + 1);
    c.propose("n3", "after");
    settle(c, 2);
    expect(c.get("n1").state).toEqual(["e0", "e1", "e2", "e3", "e4", "after"]);
  });

  test("a transfer that cannot finish within an election timeout is abandoned and proposals resume", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.isolate("n3");
    c.get("n1").node.transferLeadership("n3");
    expect(c.propose("n1", "x").outcome).toBe("refused");
    for (let i = 0; i < 12; i++) {
      c.tick("n1");
      c.stabilize();
    }
    expect(c.leaders()).toEqual(["n1"]);
    expect(c.propose("n1", "y").outcome).toBe("accepted");
  });

  test("transfer requests are checked and forwarded", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    expect(c.get("n1").node.transferLeadership("n1")).toMatchObject({ outcome: "refused", code: "INVALID_TRANSFER" });
    expect(c.get("n1").node.transferLeadership("n9")).toMatchObject({ outcome: "refused", code: "INVALID_TRANSFER" });
    expect(c.get("n2").node.transferLeadership("n2")).toEqual({ outcome: "forwarded", leader: "n1" });
    c.stabilize();
    expect(c.leaders()).toEqual(["n2"]);
  });
});

describe("6.4 ReadIndex", () => {
  test("the leader answers a read with its commit index once a quorum confirms it is still leader", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.propose("n1", "a");
    c.stabilize();
    const leader = c.get("n1");
    expect(leader.node.readIndex(payload("r1"))).toEqual({ outcome: "accepted" });
    // No log entry is created for a read.
    const lastIndex = leader.node.status().lastIndex;
    c.stabilize();
    expect(leader.readStates).toEqual([{ index: leader.node.status().commit, context: payload("r1") }]);
    expect(leader.node.status().lastIndex).toBe(lastIndex);
  });

  test("a leader cut off from the quorum never completes a read (it could be stale)", () => {
    const c = new TestCluster({ voters: VOTERS, config: { checkQuorum: false } });
    c.elect("n1");
    c.isolate("n1");
    c.get("n1").node.readIndex(payload("stale?"));
    settle(c, 5);
    expect(c.get("n1").readStates).toEqual([]);
  });

  test("a read waits until the new leader has committed an entry of its own term", () => {
    const c = new TestCluster({ voters: VOTERS });
    const leader = c.get("n1");
    c.tick("n1", 30);
    // Deliver everything but appends: n1 wins, but its no-op cannot commit.
    const noAppends = () => {
      for (let i = 0; i < 20; i++) {
        for (const id of c.ids()) while (c.processReady(id));
        c.deliverAll((m) => m.type !== "append");
      }
    };
    noAppends();
    expect(leader.node.status().role).toBe("leader");
    leader.node.readIndex(payload("r"));
    noAppends();
    expect(leader.readStates).toEqual([]);
    c.stabilize();
    settle(c, 2);
    expect(leader.readStates).toHaveLength(1);
    expect(leader.readStates[0]!.index).toBeGreaterThanOrEqual(2);
  });

  test("a read on a follower is forwarded; the ReadState arrives on the follower", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.propose("n1", "a");
    c.stabilize();
    expect(c.get("n3").node.readIndex(payload("f"))).toEqual({ outcome: "forwarded", leader: "n1" });
    c.stabilize();
    expect(c.get("n3").readStates).toEqual([{ index: c.get("n1").node.status().commit, context: payload("f") }]);
  });

  test("many reads started together share one heartbeat round", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.stabilize();
    const leader = c.get("n1");
    for (let i = 0; i < 10; i++) leader.node.readIndex(payload(`r${i}`));
    const rd = leader.node.ready();
    leader.node.advance();
    expect(rd.messagesNow.filter((m) => m.type === "heartbeat")).toHaveLength(2);
    c.queue.push(...rd.messagesNow);
    c.stabilize();
    expect(leader.readStates.map((r) => new TextDecoder().decode(r.context))).toEqual(
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
  });
});

describe("requests on a follower", () => {
  test("a follower forwards proposals to the leader, batching those made between two Readies", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    expect(c.propose("n2", "a")).toEqual({ outcome: "forwarded", leader: "n1" });
    expect(c.propose("n2", "b")).toEqual({ outcome: "forwarded", leader: "n1" });
    const rd = c.get("n2").node.ready();
    c.get("n2").node.advance();
    expect(rd.messagesNow).toEqual([expect.objectContaining({ type: "propose", to: "n1", data: [payload("a"), payload("b")] })]);
    c.queue.push(...rd.messagesNow);
    settle(c, 2);
    expect(c.get("n2").state).toEqual(["a", "b"]);
  });

  test("with forwarding off, a follower answers NOT_LEADER with the leader's id", () => {
    const c = new TestCluster({ voters: VOTERS, config: { forwardProposals: false } });
    c.elect("n1");
    expect(c.propose("n2", "a")).toMatchObject({ outcome: "refused", code: "NOT_LEADER", leader: "n1" });
  });

  test("without a known leader, proposals and reads are refused with NO_LEADER", () => {
    const c = new TestCluster({ voters: VOTERS });
    expect(c.propose("n2", "a")).toMatchObject({ outcome: "refused", code: "NO_LEADER", leader: null });
    expect(c.get("n2").node.readIndex(payload("r"))).toMatchObject({ outcome: "refused", code: "NO_LEADER" });
    expect(c.get("n2").node.transferLeadership("n1")).toMatchObject({ outcome: "refused", code: "NO_LEADER" });
  });
});
