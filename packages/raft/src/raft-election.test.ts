/**
 * Leader election, in the words of the Raft paper (section 5.2 and 5.4.1),
 * plus pre-vote (thesis 9.6), check-quorum (thesis 6.2) and leader stickiness
 * (thesis 4.2.3).
 */
import { describe, expect, test } from "vitest";
import { createRng } from "./rng.js";
import { RawNode } from "./raw-node.js";
import { MemoryStorage, bootstrapSnapshot } from "./storage.js";
import { TestCluster } from "./test-cluster.js";
import type { Message } from "./types.js";

const VOTERS = ["n1", "n2", "n3"];

function node(id: string, options: { preVote?: boolean; checkQuorum?: boolean; seed?: number } = {}): RawNode {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot({ voters: VOTERS }));
  return new RawNode({ id, storage, rng: createRng(options.seed ?? 1), ...options });
}

function drain(n: RawNode): Message[] {
  if (!n.hasReady()) return [];
  const rd = n.ready();
  n.advance();
  return [...rd.messagesNow, ...rd.messagesAfterPersist];
}

describe("5.2 leader election", () => {
  test("if a follower receives no communication over an election timeout, it begins an election", () => {
    const n1 = node("n1", { preVote: false });
    const before = n1.status().term;
    for (let i = 0; i < 20 && n1.status().role === "follower"; i++) n1.tick();
    const status = n1.status();
    expect(status.role).toBe("candidate");
    expect(status.term).toBe(before + 1);
    const rd = n1.ready();
    // "votes for itself and issues RequestVote RPCs in parallel to each of the other servers"
    expect(rd.hardState).toMatchObject({ term: before + 1, vote: "n1" });
    expect(rd.messagesAfterPersist.filter((m) => m.type === "vote").map((m) => m.to).sort()).toEqual(["n2", "n3"]);
  });

  test("election timeouts are chosen randomly from [electionTicks, 2 * electionTicks)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const n = node("n1", { preVote: false, seed });
      let ticks = 0;
      while (n.status().role === "follower") {
        n.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  test("a candidate wins an election if it receives votes from a majority of the servers", () => {
    const c = new TestCluster({ voters: ["n1", "n2", "n3", "n4", "n5"] });
    c.isolate("n4");
    c.isolate("n5");
    c.elect("n1");
    expect(c.leaders()).toEqual(["n1"]);
    for (const id of ["n2", "n3"]) expect(c.get(id).node.status().leader).toBe("n1");
  });

  test("a candidate without a majority does not become leader", () => {
    const c = new TestCluster({ voters: ["n1", "n2", "n3", "n4", "n5"], config: { preVote: false } });
    c.isolate("n3");
    c.isolate("n4");
    c.isolate("n5");
    c.campaign("n1");
    expect(c.get("n1").node.status().role).toBe("candidate");
  });

  test("each server will vote for at most one candidate in a given term, on a first-come-first-served basis", () => {
    const n3 = node("n3");
    const vote = (from: string): Message => ({ type: "vote", from, to: "n3", term: 5, lastIndex: 1, lastTerm: 1, transfer: false });
    n3.step(vote("n1"));
    n3.step(vote("n2"));
    n3.step(vote("n1"));
    const responses = drain(n3).filter((m) => m.type === "voteResponse");
    expect(responses.map((m) => [m.to, m.type === "voteResponse" && m.reject])).toEqual([
      ["n1", false],
      ["n2", true],
      ["n1", false],
    ]);
    expect(n3.status().term).toBe(5);
  });

  test("while waiting for votes, a candidate that receives AppendEntries from a leader of its term returns to follower", () => {
    const n1 = node("n1", { preVote: false });
    while (n1.status().role !== "candidate") n1.tick();
    const term = n1.status().term;
    n1.step({ type: "append", from: "n2", to: "n1", term, prevIndex: 1, prevTerm: 1, entries: [], commit: 1 });
    expect(n1.status()).toMatchObject({ role: "follower", leader: "n2", term });
  });

  test("figure 2: a follower that refuses a vote does not restart its election timer", () => {
    const ticksToCampaign = (interrupt: boolean): number => {
      const n1 = node("n1", { preVote: false, seed: 11 });
      let ticks = 0;
      while (n1.status().role === "follower") {
        if (interrupt && ticks === 8) {
          // A campaign at a higher term from a candidate with a stale log: refused.
          n1.step({ type: "vote", from: "n3", to: "n1", term: 9, lastIndex: 0, lastTerm: 0, transfer: false });
          expect(n1.status().term).toBe(9);
        }
        n1.tick();
        ticks++;
      }
      return ticks;
    };
    expect(ticksToCampaign(true)).toBe(ticksToCampaign(false));
  });

  test("a candidate that learns of a split vote starts a new election after another timeout", () => {
    const c = new TestCluster({ voters: VOTERS, config: { preVote: false } });
    c.isolate("n1");
    c.campaign("n1");
    const term = c.get("n1").node.status().term;
    c.tick("n1", 19);
    c.stabilize();
    expect(c.get("n1").node.status()).toMatchObject({ role: "candidate", term: term + 1 });
  });
});

describe("5.1 terms", () => {
  test("if a server's current term is smaller than a message's, it updates its term; a leader reverts to follower", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    const n1 = c.get("n1").node;
    const term = n1.status().term;
    n1.step({ type: "appendResponse", from: "n2", to: "n1", term: term + 3, reject: true, index: 0, hintIndex: 0, hintTerm: 0 });
    expect(n1.status()).toMatchObject({ role: "follower", term: term + 3, leader: null });
  });

  test("a server rejects a request with a stale term and tells the sender the current term", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    const n2 = c.get("n2").node;
    const term = n2.status().term;
    const lastIndex = n2.status().lastIndex;
    n2.step({
      type: "append",
      from: "n3",
      to: "n2",
      term: term - 1,
      prevIndex: lastIndex,
      prevTerm: 1,
      entries: [{ index: lastIndex + 1, term: term - 1, type: "normal", data: new Uint8Array([1]) }],
      commit: 0,
    });
    expect(n2.status()).toMatchObject({ term, lastIndex, leader: "n1" });
    const answers = drain(n2);
    expect(answers).toEqual([expect.objectContaining({ to: "n3", term })]);
  });
});

describe("5.4.1 election restriction", () => {
  test("the voter denies its vote if its own log is more up-to-date than that of the candidate", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.propose("n1", "a");
    c.stabilize();
    const n2 = c.get("n2").node;
    const { term, lastIndex } = n2.status();
    // Same last term, shorter log: denied. Higher last term: granted.
    n2.step({ type: "vote", from: "n3", to: "n2", term: term + 10, lastIndex: lastIndex - 1, lastTerm: term, transfer: true });
    n2.step({ type: "vote", from: "n1", to: "n2", term: term + 10, lastIndex: 2, lastTerm: term + 1, transfer: true });
    const answers = drain(n2).map((m) => [m.to, m.type === "voteResponse" && m.reject]);
    expect(answers).toEqual([
      ["n3", true],
      ["n1", false],
    ]);
  });

  test("an elected leader holds every committed entry (leader completeness)", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.isolate("n3");
    c.propose("n1", "committed-on-n1-n2");
    c.stabilize();
    expect(c.get("n1").state).toEqual(["committed-on-n1-n2"]);
    c.heal();
    c.isolate("n1");
    // n3 lacks the entry: n2 will not vote for it, so only n2 can win.
    c.campaign("n3");
    expect(c.get("n3").node.status().role).not.toBe("leader");
    c.elect("n2");
    c.tickAll();
    c.stabilize();
    expect(c.get("n3").state).toEqual(["committed-on-n1-n2"]);
  });
});

describe("pre-vote (thesis 9.6)", () => {
  test("a partitioned node does not raise its term, so it cannot disrupt the leader when it returns", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    const term = c.get("n1").node.status().term;
    c.isolate("n3");
    for (let i = 0; i < 100; i++) {
      c.tick("n3");
      c.stabilize();
    }
    expect(c.get("n3").node.status().term).toBe(term);
    c.heal();
    c.tickAll();
    c.stabilize();
    expect(c.leaders()).toEqual(["n1"]);
    expect(c.get("n1").node.status().term).toBe(term);
  });

  test("without pre-vote the same partition raises the term and deposes the leader", () => {
    const c = new TestCluster({ voters: VOTERS, config: { preVote: false, checkQuorum: false } });
    c.elect("n1");
    const term = c.get("n1").node.status().term;
    c.isolate("n3");
    for (let i = 0; i < 100; i++) c.tick("n3");
    c.stabilize();
    expect(c.get("n3").node.status().term).toBeGreaterThan(term + 3);
    c.heal();
    c.tickAll();
    c.stabilize();
    expect(c.get("n1").node.status().term).toBeGreaterThan(term);
  });

  test("a pre-candidate that wins the pre-vote campaigns for real and becomes leader", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.tick("n2", 30);
    expect(c.get("n2").node.status().role).toBe("precandidate");
    c.stabilize();
    expect(c.leaders()).toEqual(["n2"]);
  });
});

describe("check-quorum and leader stickiness", () => {
  test("a leader that does not hear from a quorum within an election timeout steps down (thesis 6.2)", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.isolate("n1");
    for (let i = 0; i < 25; i++) {
      c.tick("n1");
      c.stabilize();
    }
    expect(c.get("n1").node.status()).toMatchObject({ role: "follower", leader: null });
  });

  test("a leader that hears from a quorum stays leader", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    c.isolate("n3");
    for (let i = 0; i < 50; i++) {
      c.tick("n1");
      c.stabilize();
    }
    expect(c.leaders()).toEqual(["n1"]);
  });

  test("a node that hears from a live leader rejects (ignores) votes (thesis 4.2.3)", () => {
    const c = new TestCluster({ voters: VOTERS });
    c.elect("n1");
    const n2 = c.get("n2").node;
    const { term, lastIndex } = n2.status();
    n2.step({ type: "vote", from: "n3", to: "n2", term: term + 1, lastIndex, lastTerm: term, transfer: false });
    n2.step({ type: "preVote", from: "n3", to: "n2", term: term + 1, lastIndex, lastTerm: term, transfer: false });
    expect(n2.status()).toMatchObject({ term, leader: "n1" });
    expect(drain(n2).filter((m) => m.type === "voteResponse" || m.type === "preVoteResponse")).toEqual([]);
  });
});

describe("restart", () => {
  test("a restarted node keeps its term and vote and does not vote twice in a term", () => {
    const c = new TestCluster({ voters: VOTERS, config: { preVote: false } });
    const n3 = c.get("n3");
    n3.node.step({ type: "vote", from: "n1", to: "n3", term: 7, lastIndex: 1, lastTerm: 1, transfer: false });
    c.processReady("n3");
    c.queue = [];
    c.crash("n3");
    c.restart("n3");
    expect(c.get("n3").node.status().term).toBe(7);
    c.get("n3").node.step({ type: "vote", from: "n2", to: "n3", term: 7, lastIndex: 1, lastTerm: 1, transfer: false });
    c.processReady("n3");
    expect(c.queue).toEqual([expect.objectContaining({ type: "voteResponse", to: "n2", reject: true })]);
  });

  test("a single-node cluster elects itself and commits", () => {
    const c = new TestCluster({ voters: ["solo"] });
    c.elect("solo");
    c.propose("solo", "x");
    c.stabilize();
    expect(c.get("solo").state).toEqual(["x"]);
  });
});
