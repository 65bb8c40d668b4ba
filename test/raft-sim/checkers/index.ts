import { Acknowledged } from "./acknowledged.js";
import { ElectionSafety } from "./election-safety.js";
import { LeaderAppendOnly } from "./leader-append-only.js";
import { LeaderCompleteness } from "./leader-completeness.js";
import { LogMatching } from "./log-matching.js";
import { StateMachineSafety } from "./state-machine-safety.js";
import { CommitDurable } from "./commit-durable.js";
import { CommitOwnTerm } from "./commit-own-term.js";
import { DurableBeforeSent } from "./durable-before-sent.js";
import { LinearizableReads } from "./linearizable-reads.js";
import { OneConfChangeAtATime } from "./one-conf-change.js";
import { TermsFromElections } from "./terms-from-elections.js";

export {
  Acknowledged,
  CommitDurable,
  CommitOwnTerm,
  DurableBeforeSent,
  ElectionSafety,
  LeaderAppendOnly,
  LeaderCompleteness,
  LinearizableReads,
  LogMatching,
  OneConfChangeAtATime,
  StateMachineSafety,
  TermsFromElections,
};
export * from "./types.js";

/** One fresh instance of every safety checker. */
export function createCheckers(): {
  readonly all: readonly import("./types.js").Checker[];
  readonly acknowledged: Acknowledged;
  readonly electionSafety: ElectionSafety;
} {
  const acknowledged = new Acknowledged();
  const electionSafety = new ElectionSafety();
  return {
    all: [
      electionSafety,
      new LeaderAppendOnly(),
      new LogMatching(),
      new LeaderCompleteness(),
      new StateMachineSafety(),
      acknowledged,
      new CommitDurable(),
      new CommitOwnTerm(),
      new DurableBeforeSent(),
      new TermsFromElections(),
      new LinearizableReads(),
      new OneConfChangeAtATime(),
    ],
    acknowledged,
    electionSafety,
  };
}
