import type { NodeId } from "@ratequeue/raft";
import { SafetyViolation, type Checker, type ClusterView } from "./types.js";

/** Election Safety: at most one leader can be elected in a given term. */
export class ElectionSafety implements Checker {
  readonly property = "Election Safety";
  readonly #leaderByTerm = new Map<number, NodeId>();

  afterStep(view: ClusterView): void {
    for (const node of view.nodes) {
      const s = node.status;
      if (s === null || s.role !== "leader") continue;
      const known = this.#leaderByTerm.get(s.term);
      if (known === undefined) this.#leaderByTerm.set(s.term, s.id);
      else if (known !== s.id) throw new SafetyViolation(this.property, `${known} and ${s.id} are both leaders of term ${s.term}`);
    }
  }

  /** Leaders seen so far, by term (for transcripts). */
  leaders(): ReadonlyMap<number, NodeId> {
    return this.#leaderByTerm;
  }
}
