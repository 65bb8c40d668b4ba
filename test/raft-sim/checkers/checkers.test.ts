import type { Entry, Role } from "@ratequeue/raft";
import { describe, expect, it } from "vitest";
import { LogState } from "../log-state.js";
import type { StateMachineImage } from "../state-machine.js";
import {
  Acknowledged,
  ElectionSafety,
  LeaderAppendOnly,
  LeaderCompleteness,
  LogMatching,
  StateMachineSafety,
  type ClusterView,
  type NodeView,
} from "./index.js";

// Each checker is fed a hand-made history: a legal one must pass, the same
// history with one violation must be caught (so no checker passes vacuously).

const enc = new TextEncoder();
const conf = { voters: ["a", "b", "c"], learners: [], removed: [] };

function e(index: number, term: number, text = ""): Entry {
  return { index, term, type: "normal", data: enc.encode(text) };
}

function logOf(...entries: Entry[]): LogState {
  const log = new LogState();
  log.apply({ type: "entries", entries });
  return log;
}

function node(id: string, role: Role, term: number, commit: number, log: LogState, durable: LogState = log): NodeView {
  return { id, up: true, status: { id, role, term, leader: role === "leader" ? id : null, commit, applied: commit, lastIndex: log.lastIndex(), voters: ["a", "b", "c"] }, log, durableLog: durable };
}

function view(nodes: NodeView[], durableStateShrank = false): ClusterView {
  return { nowMs: 0, nodes, voters: ["a", "b", "c"], durableStateShrank };
}

function image(index: number, term: number, chainHash: number): StateMachineImage {
  return { index, term, chainHash, confState: conf };
}

describe("ElectionSafety", () => {
  it("allows one leader per term and catches a second", () => {
    const c = new ElectionSafety();
    const log = logOf(e(1, 1));
    c.afterStep(view([node("a", "leader", 1, 0, log), node("b", "follower", 1, 0, log)]));
    c.afterStep(view([node("a", "follower", 2, 0, log), node("b", "leader", 2, 0, log)]));
    expect(() => c.afterStep(view([node("a", "leader", 2, 0, log)]))).toThrow(/Election Safety: b and a are both leaders of term 2/);
  });
});

describe("LeaderAppendOnly", () => {
  it("lets followers overwrite and catches a leader that does", () => {
    const c = new LeaderAppendOnly();
    const before = logOf(e(1, 1), e(2, 1), e(3, 1));
    c.onLogWrite({ node: "a", role: "follower", term: 2, change: { type: "entries", entries: [e(2, 2)] }, before });
    c.onLogWrite({ node: "a", role: "leader", term: 1, change: { type: "entries", entries: [e(4, 1)] }, before });
    c.onLogWrite({ node: "a", role: "leader", term: 1, change: { type: "entries", entries: [e(3, 1), e(4, 1)] }, before });
    expect(() => c.onLogWrite({ node: "a", role: "leader", term: 2, change: { type: "entries", entries: [e(3, 2)] }, before })).toThrow(
      /overwrote entry 3/,
    );
    expect(() => c.onLogWrite({ node: "a", role: "leader", term: 1, change: { type: "entries", entries: [e(2, 1)] }, before })).toThrow(/dropped entries 3..3/);
  });
});

describe("LogMatching", () => {
  it("accepts agreeing logs and catches the same (index, term) with different data or history", () => {
    const c = new LogMatching();
    const empty = new LogState();
    c.onLogWrite({ node: "a", role: "leader", term: 1, change: { type: "entries", entries: [e(1, 1, "x"), e(2, 1, "y")] }, before: empty });
    c.onLogWrite({ node: "b", role: "follower", term: 1, change: { type: "entries", entries: [e(1, 1, "x")] }, before: empty });
    expect(() =>
      c.onLogWrite({ node: "c", role: "follower", term: 1, change: { type: "entries", entries: [e(1, 1, "z")] }, before: empty }),
    ).toThrow(/entry 1:1 differs/);
    expect(() =>
      c.onLogWrite({ node: "c", role: "follower", term: 2, change: { type: "entries", entries: [e(2, 1, "y")] }, before: logOf(e(1, 2)) }),
    ).toThrow(/term 1 after one of term 2/);
  });
});

describe("LeaderCompleteness", () => {
  it("catches a new leader missing a committed entry", () => {
    const c = new LeaderCompleteness();
    const full = logOf(e(1, 1), e(2, 1));
    c.afterStep(view([node("a", "leader", 1, 2, full), node("b", "follower", 1, 2, full)]));
    c.afterStep(view([node("b", "leader", 2, 2, logOf(e(1, 1), e(2, 1), e(3, 2)))]));
    expect(() => c.afterStep(view([node("c", "leader", 3, 0, logOf(e(1, 1)))]))).toThrow(/c is leader of term 3 with no entry at 2/);
  });

  it("does not hold a leader of an older term, elected late, to entries committed after its term", () => {
    const c = new LeaderCompleteness();
    c.afterStep(view([node("a", "leader", 4, 3, logOf(e(1, 1), e(2, 1), e(3, 4)))]));
    // c won term 3 with votes cast before term 4 began; its messages were delayed.
    c.afterStep(view([node("c", "leader", 3, 2, logOf(e(1, 1), e(2, 1), e(3, 3)))]));
    // But a leader already in office at a higher term is checked when the commit becomes known.
    const d = node("d", "leader", 6, 0, logOf(e(1, 1), e(2, 1), e(3, 4)));
    c.afterStep(view([d]));
    expect(() => c.afterStep(view([d, node("b", "leader", 5, 4, logOf(e(1, 1), e(2, 1), e(3, 4), e(4, 5)))]))).toThrow(
      /d is leader of term 6 with no entry at 4/,
    );
  });
});

describe("StateMachineSafety", () => {
  it("catches a different entry applied at an index, a gap, and a snapshot with another history", () => {
    const c = new StateMachineSafety();
    c.onApply({ node: "a", entry: e(1, 1), image: image(1, 1, 11) });
    c.onApply({ node: "b", entry: e(1, 1), image: image(1, 1, 11) });
    expect(() => c.onApply({ node: "c", entry: e(1, 2), image: image(1, 2, 12) })).toThrow(/c applied index 1 as term 2/);
    expect(() => c.onApply({ node: "a", entry: e(3, 1), image: image(3, 1, 13) })).toThrow(/a applied 3 when its next index to apply was 2/);
    c.onApply({ node: "a", entry: e(2, 1), image: image(2, 1, 21) });
    expect(() => c.onRestore({ node: "b", image: image(2, 1, 99), cause: "snapshot" })).toThrow(/b restored \(snapshot\) index 2/);
  });
});

describe("Acknowledged", () => {
  it("requires every acknowledged entry on a majority of voters' disks", () => {
    const c = new Acknowledged();
    c.onAck({ payloadId: "c1.1", node: "a", index: 2, term: 1 });
    const has = logOf(e(1, 1), e(2, 1));
    const lacks = logOf(e(1, 1));
    c.afterStep(view([node("a", "leader", 1, 2, has), node("b", "follower", 1, 2, has), node("c", "follower", 1, 0, lacks)], true));
    // Volatile logs do not count: only what would survive a crash.
    const b = node("b", "follower", 1, 2, has, lacks);
    expect(() => c.afterStep(view([node("a", "leader", 1, 2, has), b, node("c", "follower", 1, 0, lacks)], true))).toThrow(
      /c1.1 \(index 2, term 1, acknowledged by a\) is durable only on \[a\]/,
    );
    expect(() => c.onAck({ payloadId: "c2.1", node: "b", index: 2, term: 3 })).toThrow(/acknowledged with term 1/);
  });
});
