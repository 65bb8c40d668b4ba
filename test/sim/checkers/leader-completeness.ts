import type { NodeId } from "@ratequeue/raft";
import type { LogView } from "../log-state.js";
import { SafetyViolation, type Checker, type ClusterView } from "./types.js";

/**
 * Leader Completeness: if an entry is committed in a given term, it is
 * present in the logs of the leaders of all higher terms.
 *
 * An entry counts as committed once any node reports a commit index at or
 * past it; its term is read from that node's log. Each leader is checked
 * when first seen in its term (it can only append afterwards, which Leader
 * Append-Only checks).
 */
export class LeaderCompleteness implements Checker {
  readonly property = "Leader Completeness";
  /** index -> term of the committed entry there. */
  readonly #committed = new Map<number, { readonly term: number; readonly by: NodeId }>();
  readonly #checkedLeaders = new Set<string>();

  afterStep(view: ClusterView): void {
    for (const node of view.nodes) {
      if (node.status !== null) this.#learnCommitted(node.id, node.status.commit, node.log);
    }
    for (const node of view.nodes) {
      const s = node.status;
      if (s === null || s.role !== "leader") continue;
      const key = `${s.term}:${s.id}`;
      if (this.#checkedLeaders.has(key)) continue;
      this.#checkedLeaders.add(key);
      const covered = node.log.snapshotMeta?.index ?? 0;
      for (const [index, c] of this.#committed) {
        if (index <= covered) continue;
        const term = node.log.termAt(index);
        if (term !== c.term) {
          throw new SafetyViolation(
            this.property,
            `${s.id} became leader of term ${s.term} with ${term === undefined ? "no entry" : `term ${term}`} at ${index}, where ${c.by} committed term ${c.term}`,
          );
        }
      }
    }
  }

  #learnCommitted(node: NodeId, commit: number, log: LogView): void {
    for (let index = commit; index > 0; index--) {
      const term = log.termAt(index);
      if (term === undefined) continue;
      const known = this.#committed.get(index);
      if (known !== undefined) {
        if (known.term !== term) {
          throw new SafetyViolation(this.property, `index ${index} committed with term ${known.term} by ${known.by} and term ${term} by ${node}`);
        }
        // Everything below a known committed index was learned when it was.
        if (index < commit) return;
        continue;
      }
      this.#committed.set(index, { term, by: node });
    }
  }
}
