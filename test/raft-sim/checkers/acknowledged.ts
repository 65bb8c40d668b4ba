import type { LogView } from "../log-state.js";
import { SafetyViolation, type AckEvent, type Checker, type ClusterView } from "./types.js";

/**
 * No acknowledged entry is ever lost. A client is told "committed" when the
 * node it proposed to applies its entry; from then on that (index, term)
 * must stay durable on a majority of the voters (in their synced log or
 * covered by their synced snapshot), across crashes, torn writes and
 * overwrites. Checked whenever some durable state may have shrunk. While the
 * membership may change a "majority" is not one fixed set (a new voter is
 * briefly behind), so then only the agreement of acknowledgements is checked
 * here; Leader Completeness and State Machine Safety still cover them.
 */
export class Acknowledged implements Checker {
  readonly property = "Acknowledged entries are never lost";
  readonly #acks = new Map<string, AckEvent>();
  /** index -> term of some acknowledged entry there (two acks at one index must agree). */
  readonly #ackedTermByIndex = new Map<number, AckEvent>();

  get count(): number {
    return this.#acks.size;
  }

  acks(): Iterable<AckEvent> {
    return this.#acks.values();
  }

  onAck(event: AckEvent): void {
    if (this.#acks.has(event.payloadId)) return; // a retry applied again: the first ack stands
    const other = this.#ackedTermByIndex.get(event.index);
    if (other !== undefined && other.term !== event.term) {
      throw new SafetyViolation(
        this.property,
        `${event.payloadId} acknowledged at ${event.index} term ${event.term}, where ${other.payloadId} was acknowledged with term ${other.term}`,
      );
    }
    this.#acks.set(event.payloadId, event);
    this.#ackedTermByIndex.set(event.index, event);
  }

  afterStep(view: ClusterView): void {
    if (!view.durableStateShrank) return;
    this.checkDurable(view);
  }

  /** Every acknowledged entry is on a majority of voters' disks. */
  checkDurable(view: ClusterView): void {
    if (view.voters === null) return;
    const voterIds = view.voters;
    const voters = view.nodes.filter((n) => voterIds.includes(n.id));
    const needed = Math.floor(voterIds.length / 2) + 1;
    for (const [index, ack] of this.#ackedTermByIndex) {
      const holders = voters.filter((n) => holds(n.durableLog, index, ack.term)).map((n) => n.id);
      if (holders.length < needed) {
        throw new SafetyViolation(
          this.property,
          `${ack.payloadId} (index ${index}, term ${ack.term}, acknowledged by ${ack.node}) is durable only on [${holders.join(",")}] of voters [${voterIds.join(",")}]`,
        );
      }
    }
  }
}

function holds(log: LogView, index: number, term: number): boolean {
  const snapshotIndex = log.snapshotMeta?.index ?? 0;
  // A snapshot past the index contains it: State Machine Safety checked the snapshot's history matches.
  return index < snapshotIndex || log.termAt(index) === term;
}
