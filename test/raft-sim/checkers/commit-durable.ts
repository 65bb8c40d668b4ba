import type { NodeId } from "@ratequeue/raft";
import { SafetyViolation, type Checker, type ClusterView } from "./types.js";

/**
 * An entry is committed only once a majority of the leader's voters hold it
 * on disk: whenever a leader's commit index moves, its entry there must be
 * durable (in the synced log, or under the synced snapshot) on a majority of
 * the voters the leader counts.
 */
export class CommitDurable implements Checker {
  readonly property = "Committed entries are durable on a majority";
  readonly #seen = new Map<NodeId, { term: number; commit: number; voters: readonly NodeId[] }>();

  afterStep(view: ClusterView): void {
    for (const node of view.nodes) {
      const s = node.status;
      if (s === null || s.role !== "leader") continue;
      const last = this.#seen.get(s.id);
      this.#seen.set(s.id, { term: s.term, commit: s.commit, voters: s.voters });
      // A new leader's commit index was counted by earlier leaders (checked then); watch it move from here.
      if (last === undefined || last.term !== s.term || last.commit >= s.commit) continue;
      const term = node.log.termAt(s.commit);
      if (term === undefined || s.commit <= (node.log.snapshotMeta?.index ?? 0)) continue;
      const holders = view.nodes
        .filter((n) => s.commit <= (n.durableLog.snapshotMeta?.index ?? 0) || n.durableLog.termAt(s.commit) === term)
        .map((n) => n.id);
      // One step may commit and then apply a conf change: the commit was counted with the voters
      // of the step before or of this one (a second change cannot be pending meanwhile).
      const majorityOf = (voters: readonly NodeId[]): boolean => holders.filter((id) => voters.includes(id)).length > voters.length / 2;
      if (!majorityOf(s.voters) && !majorityOf(last.voters)) {
        throw new SafetyViolation(
          this.property,
          `${s.id} (leader of term ${s.term}) committed ${s.commit} (term ${term}), durable only on [${holders.join(",")}] of voters [${s.voters.join(",")}]`,
        );
      }
    }
  }
}
