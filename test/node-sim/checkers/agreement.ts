import { createHash } from "node:crypto";
import type { Entry } from "@ratequeue/raft";
import { ClusterState, decodePayload, type OpResult } from "@ratequeue/node/testing";

/**
 * Agreement and the committed history. The checker learns the committed log
 * from what nodes apply (an entry a node applied is committed): every index
 * must carry the same entry wherever it is applied, across crashes, leader
 * changes and full restarts, so an acknowledged entry that a restart lost and
 * the cluster overwrote fails here. A witness replica applies the committed
 * log in order; every node's state at an applied index must hash the same
 * (ClusterState.snapshot() bytes) as the witness's and every other node's there.
 */
/**
 * An entry's log time (its stamp, clamped to never go down) and the log time before it. Time-driven events
 * the entry brings about (a waiter granted when a window slid, a timeout) happen at their own time, within
 * (previousMs, atMs].
 */
export interface LogTime {
  readonly previousMs: number;
  readonly atMs: number;
  /** The entry's term and its stamp as the leader wrote it. */
  readonly term: number;
  readonly stampMs: number;
}

export class Agreement {
  readonly #committed = new Map<number, { term: number; type: Entry["type"]; data: Uint8Array }>();
  readonly #witness = new ClusterState();
  #witnessIndex: number;
  /** Snapshot hash per applied index, from the witness or from the first node to report it. */
  readonly #hashes = new Map<number, { hash: string; by: string }>();
  readonly #onApply: (results: readonly OpResult[], time: LogTime, index: number) => void;
  statesCompared = 0;
  #logTimeMs = 0;

  constructor(options: { startIndex: number; onApply: (results: readonly OpResult[], time: LogTime, index: number) => void }) {
    this.#witnessIndex = options.startIndex;
    this.#onApply = options.onApply;
    this.#hashes.set(options.startIndex, { hash: hashOf(this.#witness.snapshot()), by: "witness" });
  }

  /** The highest index of the committed history replayed so far. */
  get witnessIndex(): number {
    return this.#witnessIndex;
  }

  get highestCommitted(): number {
    let max = this.#witnessIndex;
    for (const i of this.#committed.keys()) max = Math.max(max, i);
    return max;
  }

  /** Node `node` applied (from, to]; `entryAt` is what it stored at each index (undefined under an installed snapshot). */
  applied(node: string, fromIndex: number, toIndex: number, entryAt: (index: number) => Entry | undefined): string | null {
    for (let i = fromIndex + 1; i <= toIndex; i++) {
      const e = entryAt(i);
      if (e === undefined) continue;
      const known = this.#committed.get(i);
      if (known === undefined) {
        this.#committed.set(i, { term: e.term, type: e.type, data: e.data });
        continue;
      }
      if (known.term !== e.term || !sameBytes(known.data, e.data)) {
        return `${node} applied a different entry at index ${i} (term ${e.term}) than was applied before (term ${known.term})`;
      }
    }
    return this.#replay();
  }

  /** Node `node`'s whole state at its applied index. */
  nodeState(node: string, index: number, snapshotBytes: Uint8Array): string | null {
    const hash = hashOf(snapshotBytes);
    const known = this.#hashes.get(index);
    if (known === undefined) {
      this.#hashes.set(index, { hash, by: node });
      return null;
    }
    this.statesCompared++;
    return known.hash === hash ? null : `${node}'s state at applied index ${index} differs from ${known.by}'s`;
  }

  #replay(): string | null {
    for (;;) {
      const next = this.#committed.get(this.#witnessIndex + 1);
      if (next === undefined) return null;
      const index = ++this.#witnessIndex;
      // As NodeCore does: conf changes and the leader's empty entries leave the state machine alone.
      if (next.type === "normal" && next.data.length > 0) {
        const payload = decodePayload(next.data);
        // Log time as SPEC guarantee 6 defines it, computed here rather than asked of the limiter: the entry's
        // stamp, never lower than any stamp before it.
        const previousMs = this.#logTimeMs;
        if (payload.at < previousMs) return `entry ${index} is stamped ${payload.at}, below an earlier entry's ${previousMs} (SPEC 6: a leader never stamps lower than the last stamp)`;
        this.#logTimeMs = Math.max(this.#logTimeMs, payload.at);
        this.#onApply(this.#witness.apply(payload), { previousMs, atMs: this.#logTimeMs, term: next.term, stampMs: payload.at }, index);
      }
      // Snapshots cost: the witness hashes only the indexes a node has reported (nodes report first, see
      // World#check); nodes that reach an index later compare with the first report there.
      const known = this.#hashes.get(index);
      if (known !== undefined) {
        this.statesCompared++;
        if (known.hash !== hashOf(this.#witness.snapshot())) return `${known.by}'s state at applied index ${index} differs from the witness replaying the committed log`;
      }
    }
  }
}

function hashOf(bytes: Uint8Array): string {
  return createHash("sha1").update(bytes).digest("base64");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
