import type { NodeId } from "@ratequeue/raft";
import { SafetyViolation, type ApplyEvent, type Checker, type RestoreEvent } from "./types.js";

/**
 * State Machine Safety: if a node has applied a log entry at a given index,
 * no other node ever applies a different entry for the same index.
 *
 * Every apply is compared by (index, term, chain hash): the chain hash covers
 * every entry applied before, so equal hashes mean equal histories. A node
 * must also apply in order without gaps, and a snapshot it installs must
 * match what others applied up to its index.
 */
export class StateMachineSafety implements Checker {
  readonly property = "State Machine Safety";
  readonly #byIndex = new Map<number, { readonly term: number; readonly chainHash: number; readonly by: NodeId }>();
  readonly #nextIndex = new Map<NodeId, number>();

  onApply(event: ApplyEvent): void {
    const { node, entry, image } = event;
    const expected = this.#nextIndex.get(node) ?? 1;
    if (entry.index !== expected) {
      throw new SafetyViolation(this.property, `${node} applied ${entry.index} when its next index to apply was ${expected}`);
    }
    this.#nextIndex.set(node, entry.index + 1);
    this.#record(node, image.index, image.term, image.chainHash, "applied");
  }

  onRestore(event: RestoreEvent): void {
    const { node, image } = event;
    const expected = this.#nextIndex.get(node) ?? 1;
    if (event.cause === "snapshot" && image.index < expected - 1) {
      throw new SafetyViolation(this.property, `${node} installed a snapshot at ${image.index} behind what it applied (${expected - 1})`);
    }
    this.#nextIndex.set(node, image.index + 1);
    if (image.index > 0) this.#record(node, image.index, image.term, image.chainHash, `restored (${event.cause})`);
  }

  #record(node: NodeId, index: number, term: number, chainHash: number, how: string): void {
    const known = this.#byIndex.get(index);
    if (known === undefined) this.#byIndex.set(index, { term, chainHash, by: node });
    else if (known.term !== term || known.chainHash !== chainHash) {
      throw new SafetyViolation(
        this.property,
        `${node} ${how} index ${index} as term ${term} hash ${hex(chainHash)}, but ${known.by} applied term ${known.term} hash ${hex(known.chainHash)}`,
      );
    }
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
