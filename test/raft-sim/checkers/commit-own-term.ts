import type { NodeId } from "@ratequeue/raft";
import { SafetyViolation, type Checker, type ClusterView } from "./types.js";

/**
 * Raft 5.4.2 (figure 8): a leader commits by counting replicas only entries
 * of its own term; earlier entries are committed indirectly, with them. So
 * whenever a leader's commit index moves while it leads, it lands on an
 * entry of the leader's term, unless some node had already committed that
 * far (a late vote answer may tell the leader so).
 */
export class CommitOwnTerm implements Checker {
  readonly property = "Leaders count replicas only for entries of their own term";
  readonly #seen = new Map<NodeId, { term: number; commit: number }>();
  /** The highest commit index any node reported before this step. */
  #highestCommit = 0;

  afterStep(view: ClusterView): void {
    const highestBefore = this.#highestCommit;
    for (const node of view.nodes) this.#highestCommit = Math.max(this.#highestCommit, node.status?.commit ?? 0);
    for (const node of view.nodes) {
      const s = node.status;
      if (s === null || s.role !== "leader") continue;
      const last = this.#seen.get(s.id);
      this.#seen.set(s.id, { term: s.term, commit: s.commit });
      if (last === undefined || last.term !== s.term || last.commit >= s.commit || s.commit <= highestBefore) continue;
      const term = node.log.termAt(s.commit);
      if (term !== undefined && term !== s.term) {
        throw new SafetyViolation(this.property, `${s.id} (leader of term ${s.term}) moved its commit index from ${last.commit} to ${s.commit}, an entry of term ${term}`);
      }
    }
  }
}
