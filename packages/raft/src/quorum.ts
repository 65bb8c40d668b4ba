import type { NodeId } from "./types.js";

/**
 * The largest log index that a majority of `voters` has acknowledged, given
 * each voter's match index. Sorting and picking the median-from-the-top is
 * O(n log n) on a tiny n; `quorum.test.ts` checks it against a brute force.
 * Returns 0 for an empty voter set (nothing can commit without voters).
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  const matches = new Array<number>(n);
  for (let i = 0; i < n; i++) matches[i] = matchOf(voters[i]!);
  matches.sort((a, b) => b - a);
  // With matches sorted high to low, the (majority)th value is acknowledged by a majority.
  return matches[n >> 1]!;
}

export type VoteOutcome = "won" | "lost" | "pending";

/**
 * Tallies a vote: "won" once a majority of voters granted, "lost" once a
 * majority can no longer be reached, else "pending". Votes from non-voters are
 * ignored.
 */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  const majority = (voters.length >> 1) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === undefined) missing++;
  }
  if (granted >= majority) return "won";
  if (granted + missing >= majority) return "pending";
  return "lost";
}

/** True when the ids in `acks` include a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], acks: ReadonlySet<NodeId>): boolean {
  let count = 0;
  for (const id of voters) if (acks.has(id)) count++;
  return count >= (voters.length >> 1) + 1;
}
