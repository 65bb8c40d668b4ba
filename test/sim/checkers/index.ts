import { Acknowledged } from "./acknowledged.js";
import { ElectionSafety } from "./election-safety.js";
import { LeaderAppendOnly } from "./leader-append-only.js";
import { LeaderCompleteness } from "./leader-completeness.js";
import { LogMatching } from "./log-matching.js";
import { StateMachineSafety } from "./state-machine-safety.js";

export { Acknowledged, ElectionSafety, LeaderAppendOnly, LeaderCompleteness, LogMatching, StateMachineSafety };
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
    all: [electionSafety, new LeaderAppendOnly(), new LogMatching(), new LeaderCompleteness(), new StateMachineSafety(), acknowledged],
    acknowledged,
    electionSafety,
  };
}
