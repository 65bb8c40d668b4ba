import type { ConfChange, Entry } from "@ratequeue/raft";

/** What the checker sees of one node when a conf change is accepted there (read from the simulated process). */
export interface NodeView {
  readonly id: string;
  readonly term: number;
  /** The highest index the node has applied. */
  readonly applied: number;
  /** The entry the node wrote at each index (what it applies there). */
  readonly written: ReadonlyMap<number, Entry>;
}

/**
 * Membership changes as the operator's procedures must make them (node README, "Membership"), checked from outside:
 * - one change at a time: a leader accepts a conf change only once every earlier conf change in its log has
 *   applied there (single-server changes are safe only one at a time);
 * - a learner is promoted only once it has caught up: when the promotion is accepted, the learner's own log
 *   reaches at least the index at which it was added (everything committed when it became a learner).
 * The no-over-grant, no-lost-grant and agreement checks of the other checkers run across the changes too.
 */
export class MembershipChecker {
  /** Per leader and term: the index of the last conf change it accepted. */
  readonly #lastAccepted = new Map<string, number>();
  /** Learner -> the index of the conf change that added it (from the leader that accepted it). */
  readonly #addedAt = new Map<string, number>();
  changesChecked = 0;
  promotionsChecked = 0;

  /**
   * A leader accepted `change` at `index`. `learnerLastIndex` is the promoted learner's own last log index, read
   * from its process (null when it is down). Returns a violation, or null.
   */
  accepted(leader: NodeView, change: ConfChange, index: number, learnerLastIndex: number | null): string | null {
    this.changesChecked++;
    const key = `${leader.id}@${leader.term}`;
    const previous = this.#lastAccepted.get(key);
    this.#lastAccepted.set(key, index);
    if (previous !== undefined && previous > leader.applied) {
      return `${leader.id} accepted ${describe(change)} at index ${index} while its conf change at index ${previous} was not applied yet (applied ${leader.applied}): two membership changes at once`;
    }
    for (let i = leader.applied + 1; i < index; i++) {
      if (leader.written.get(i)?.type === "confChange") {
        return `${leader.id} accepted ${describe(change)} at index ${index} while the conf change at index ${i} in its log was not applied yet (applied ${leader.applied}): two membership changes at once`;
      }
    }
    if (change.type === "addLearner") this.#addedAt.set(change.nodeId, index);
    if (change.type === "promote") {
      this.promotionsChecked++;
      const addedAt = this.#addedAt.get(change.nodeId);
      if (addedAt !== undefined && learnerLastIndex !== null && learnerLastIndex < addedAt) {
        return `${leader.id} promoted ${change.nodeId} whose log ends at index ${learnerLastIndex}, before the index ${addedAt} at which it was added: a learner promoted before it caught up`;
      }
    }
    return null;
  }
}

function describe(change: ConfChange): string {
  return `${change.type} ${change.nodeId}`;
}
