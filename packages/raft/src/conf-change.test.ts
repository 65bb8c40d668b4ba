import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { applyConfChange, confChangeProblem, decodeConfChange, encodeConfChange } from "./conf-change.js";
import { RaftErrorCode } from "./errors.js";
import { checkProperty } from "@ratequeue/testkit";
import type { ConfChange, ConfState } from "./types.js";

describe("encodeConfChange / decodeConfChange", () => {
  test("round-trips every change type and any non-empty id", () => {
    checkProperty(
      { file: "packages/raft/src/conf-change.test.ts", name: "round-trips", runs: 1000 },
      fc.property(fc.constantFrom("addLearner", "promote", "remove"), fc.string({ minLength: 1, maxLength: 60 }), (type, nodeId) => {
        const cc = { type, nodeId } as ConfChange;
        expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
      }),
    );
  });

  test("rejects garbage with RAFT_BAD_CONF_CHANGE", () => {
    for (const bad of [new Uint8Array(), new Uint8Array([9, 65]), new Uint8Array([1]), new Uint8Array([1, 0xff, 0xfe])]) {
      expect(() => decodeConfChange(bad)).toThrow(expect.objectContaining({ code: RaftErrorCode.BAD_CONF_CHANGE }));
    }
  });
});

describe("confChangeProblem / applyConfChange", () => {
  const conf: ConfState = { voters: ["a", "b"], learners: ["c"], removed: ["z"] };

  test("valid changes apply", () => {
    expect(applyConfChange(conf, { type: "addLearner", nodeId: "d" })).toEqual({ voters: ["a", "b"], learners: ["c", "d"], removed: ["z"] });
    expect(applyConfChange(conf, { type: "promote", nodeId: "c" })).toEqual({ voters: ["a", "b", "c"], learners: [], removed: ["z"] });
    expect(applyConfChange(conf, { type: "remove", nodeId: "a" })).toEqual({ voters: ["b"], learners: ["c"], removed: ["z", "a"] });
  });

  test("invalid changes are explained", () => {
    expect(confChangeProblem(conf, { type: "addLearner", nodeId: "z" })).toMatch(/never reused/);
    expect(confChangeProblem(conf, { type: "addLearner", nodeId: "a" })).toMatch(/already a member/);
    expect(confChangeProblem(conf, { type: "promote", nodeId: "a" })).toMatch(/not a learner/);
    expect(confChangeProblem(conf, { type: "remove", nodeId: "q" })).toMatch(/not a member/);
    expect(confChangeProblem({ voters: ["a"], learners: [], removed: [] }, { type: "remove", nodeId: "a" })).toMatch(/last voter/);
  });
});
