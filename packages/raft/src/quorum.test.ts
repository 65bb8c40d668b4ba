import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { committedIndex, hasQuorum, voteResult } from "./quorum.js";
import { checkProperty } from "@ratequeue/testkit";

/** The dumb definition: the largest index that at least a majority of voters has reached. */
function dumbCommittedIndex(matches: readonly number[]): number {
  if (matches.length === 0) return 0;
  const majority = Math.floor(matches.length / 2) + 1;
  let best = 0;
  for (const candidate of matches) {
    const count = matches.filter((m) => m >= candidate).length;
    if (count >= majority && candidate > best) best = candidate;
  }
  return best;
}

describe("committedIndex", () => {
  test("the fast sort-based index equals the brute-force majority index", () => {
    checkProperty(
      { file: "packages/raft/src/quorum.test.ts", name: "the fast sort-based index", runs: 50_000 },
      fc.property(fc.array(fc.nat({ max: 20 }), { minLength: 0, maxLength: 9 }), (matches) => {
        const voters = matches.map((_, i) => `n${i}`);
        const fast = committedIndex(voters, (id) => matches[Number(id.slice(1))]!);
        expect(fast).toBe(dumbCommittedIndex(matches));
      }),
    );
  });

  test("examples: 3 voters need 2, 4 voters need 3, 5 voters need 3", () => {
    const of = (ms: number[]) => committedIndex(ms.map((_, i) => `n${i}`), (id) => ms[Number(id.slice(1))]!);
    expect(of([5, 3, 1])).toBe(3);
    expect(of([5, 5, 1, 1])).toBe(1);
    expect(of([5, 5, 5, 1])).toBe(5);
    expect(of([9, 8, 7, 2, 1])).toBe(7);
    expect(of([])).toBe(0);
  });
});

describe("voteResult", () => {
  test("won, lost and pending agree with counting", () => {
    checkProperty(
      { file: "packages/raft/src/quorum.test.ts", name: "won, lost and pending", runs: 5_000 },
      fc.property(fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), { minLength: 1, maxLength: 7 }), (vs) => {
        const voters = vs.map((_, i) => `n${i}`);
        const votes = new Map<string, boolean>();
        for (const [i, v] of vs.entries()) if (v !== undefined) votes.set(`n${i}`, v);
        const yes = vs.filter((v) => v === true).length;
        const no = vs.filter((v) => v === false).length;
        const majority = Math.floor(vs.length / 2) + 1;
        const expected = yes >= majority ? "won" : vs.length - no >= majority ? "pending" : "lost";
        expect(voteResult(voters, votes)).toBe(expected);
        expect(hasQuorum(voters, new Set(voters.filter((_, i) => vs[i] === true)))).toBe(yes >= majority);
      }),
    );
  });

  test("votes from non-voters are ignored", () => {
    expect(voteResult(["a", "b", "c"], new Map([["x", true], ["y", true], ["a", true]]))).toBe("pending");
  });
});
