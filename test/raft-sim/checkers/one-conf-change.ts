import { SafetyViolation, type Checker, type LogWriteEvent } from "./types.js";

/**
 * One membership change at a time (thesis 4.1): a leader appends a
 * configuration change only once every earlier one in its log is committed.
 * Two single-server changes in flight together can leave two nodes with
 * configurations whose majorities do not overlap.
 */
export class OneConfChangeAtATime implements Checker {
  readonly property = "One membership change at a time";

  onLogWrite(event: LogWriteEvent): void {
    if (event.role !== "leader" || event.change.type !== "entries" || event.commit === undefined) return;
    const commit = event.commit;
    const written = event.change.entries;
    for (const entry of written) {
      if (entry.type !== "confChange") continue;
      for (let i = commit + 1; i < entry.index; i++) {
        const other = i < (written[0]?.index ?? Infinity) ? event.before.entryAt(i) : written[i - written[0]!.index];
        if (other?.type === "confChange") {
          throw new SafetyViolation(
            this.property,
            `${event.node} (leader of term ${event.term}) appended a conf change at ${entry.index} while the one at ${i} is not committed (commit ${commit})`,
          );
        }
      }
    }
  }
}
