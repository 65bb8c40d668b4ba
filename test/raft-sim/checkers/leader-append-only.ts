import { SafetyViolation, type Checker, type LogWriteEvent } from "./types.js";

/** Leader Append-Only: a leader never overwrites or deletes entries in its log; it only appends. */
export class LeaderAppendOnly implements Checker {
  readonly property = "Leader Append-Only";

  onLogWrite(event: LogWriteEvent): void {
    if (event.role !== "leader") return;
    const { change, before, node, term } = event;
    if (change.type === "installSnapshot") {
      throw new SafetyViolation(this.property, `${node}, leader of term ${term}, installed a snapshot at ${change.snapshot.meta.index} over its log`);
    }
    if (change.type !== "entries" || change.entries.length === 0) return;
    const lastBefore = before.lastIndex();
    const lastAfter = change.entries[change.entries.length - 1]!.index;
    if (lastAfter < lastBefore) {
      throw new SafetyViolation(this.property, `${node}, leader of term ${term}, dropped entries ${lastAfter + 1}..${lastBefore}`);
    }
    for (const e of change.entries) {
      const old = before.termAt(e.index);
      if (e.index <= lastBefore && old !== e.term) {
        throw new SafetyViolation(this.property, `${node}, leader of term ${term}, overwrote entry ${e.index} (term ${old}) with term ${e.term}`);
      }
    }
  }
}
