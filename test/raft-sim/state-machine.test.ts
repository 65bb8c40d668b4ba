import { encodeConfChange, type ConfChange, type ConfState, decodeConfChange } from "@ratequeue/raft";
import { describe, expect, it } from "vitest";
import { StateMachine, changeConf } from "./state-machine.js";

const conf: ConfState = { voters: ["a", "b"], learners: [], removed: [] };
const enc = new TextEncoder();

describe("StateMachine", () => {
  it("gives equal chain hashes to equal histories and different ones otherwise", () => {
    const run = (texts: string[]) => {
      const sm = StateMachine.initial(conf);
      for (const [i, t] of texts.entries()) sm.apply({ index: i + 1, term: 1, type: "normal", data: enc.encode(t) }, decodeConfChange);
      return sm.image.chainHash;
    };
    expect(run(["x", "y"])).toBe(run(["x", "y"]));
    expect(run(["x", "y"])).not.toBe(run(["y", "x"]));
    expect(run(["x", "y"])).not.toBe(run(["x", "z"]));
  });

  it("round-trips through snapshot data, and starts from the bootstrap snapshot", () => {
    const sm = StateMachine.initial(conf);
    sm.apply({ index: 1, term: 2, type: "confChange", data: encodeConfChange({ type: "addLearner", nodeId: "c" }) }, decodeConfChange);
    const snap = { meta: { index: 1, term: 2, confState: sm.image.confState }, data: sm.snapshotData() };
    expect(StateMachine.fromSnapshot(snap).image).toEqual(sm.image);
    expect(sm.image.confState.learners).toEqual(["c"]);
    const boot = StateMachine.fromSnapshot({ meta: { index: 1, term: 1, confState: conf }, data: new Uint8Array(0) });
    expect(boot.image).toMatchObject({ index: 1, term: 1, confState: conf });
    expect(() => StateMachine.fromSnapshot({ ...snap, meta: { ...snap.meta, index: 5 } })).toThrow(/disagrees/);
  });

  it("refuses to apply out of order", () => {
    const sm = StateMachine.initial(conf);
    expect(() => sm.apply({ index: 2, term: 1, type: "normal", data: new Uint8Array(0) }, decodeConfChange)).toThrow(/apply 2 after 0/);
  });
});

describe("changeConf", () => {
  it("follows the single-server rules and skips invalid changes unchanged", () => {
    const steps: [ConfChange, ConfState][] = [
      [{ type: "addLearner", nodeId: "c" }, { voters: ["a", "b"], learners: ["c"], removed: [] }],
      [{ type: "addLearner", nodeId: "c" }, { voters: ["a", "b"], learners: ["c"], removed: [] }],
      [{ type: "promote", nodeId: "c" }, { voters: ["a", "b", "c"], learners: [], removed: [] }],
      [{ type: "promote", nodeId: "a" }, { voters: ["a", "b", "c"], learners: [], removed: [] }],
      [{ type: "remove", nodeId: "a" }, { voters: ["b", "c"], learners: [], removed: ["a"] }],
      [{ type: "addLearner", nodeId: "a" }, { voters: ["b", "c"], learners: [], removed: ["a"] }],
      [{ type: "remove", nodeId: "b" }, { voters: ["c"], learners: [], removed: ["a", "b"] }],
      [{ type: "remove", nodeId: "c" }, { voters: ["c"], learners: [], removed: ["a", "b"] }],
    ];
    let c = conf;
    for (const [change, expected] of steps) {
      c = changeConf(c, change);
      expect(c).toEqual(expected);
    }
  });
});
