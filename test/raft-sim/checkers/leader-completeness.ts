import type { NodeId } from "@ratequeue/raft";
import type { LogView } from "../log-state.js";
import { SafetyViolation, type Checker, type ClusterView, type NodeView } from "./types.js";

interface Committed {
  /** The entry's own term. */
  readonly term: number;
  /**
   * A term at or after the one in which it was committed: the term of the
   * first node seen reporting a commit index past it (a node learns a commit
   * only from a leader of its own term or later).
   */
  readonly commitTerm: number;
  readonly by: NodeId;
}

/**
 * Leader Completeness: if an entry is committed in a given term, it is
 * present in the logs of the leaders of all higher terms.
 *
 * An entry counts as committed once any node reports a commit index at or
 * past it; its term is read from that node's log. A leader is checked when
 * first seen in its term, and every current leader again when a new commit
 * is learned (leaders only append afterwards, which Leader Append-Only checks).
 */
export class LeaderCompleteness implements Checker {
  readonly property = "Leader Completeness";
  readonly #committed = new Map<number, Committed>();
  readonly #checkedLeaders = new Set<string>();

  afterStep(view: ClusterView): void {
    const fresh: number[] = [];
    for (const node of view.nodes) {
      if (node.status !== null) this.#learnCommitted(node.id, node.status.commit, node.status.term, node.log, fresh);
    }
    for (const node of view.nodes) {
      const s = node.status;
      if (s === null || s.role !== "leader") continue;
      const key = `${s.term}:${s.id}`;
      if (!this.#checkedLeaders.has(key)) {
        this.#checkedLeaders.add(key);
        for (const index of this.#committed.keys()) this.#checkLeader(node, index);
      } else {
        for (const index of fresh) this.#checkLeader(node, index);
      }
    }
  }

  #checkLeader(node: NodeView, index: number): void {
    const s = node.status!;
    const c = this.#committed.get(index)!;
    if (s.term <= c.commitTerm || index <= (node.log.snapshotMeta?.index ?? 0)) return;
    const term = node.log.termAt(index);
    if (term !== c.term) {
      throw new SafetyViolation(
        this.property,
        `${s.id} is leader of term ${s.term} with ${term === undefined ? "no entry" : `term ${term}`} at ${index}, where ${c.by} committed term ${c.term} by term ${c.commitTerm}`,
      );
    }
  }

  #learnCommitted(node: NodeId, commit: number, nodeTerm: number, log: LogView, fresh: number[]): void {
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
      this.#committed.set(index, { term, commitTerm: nodeTerm, by: node });
      fresh.push(index);
    }
  }
}
