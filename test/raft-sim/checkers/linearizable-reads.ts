import { SafetyViolation, type Checker, type ReadEvent } from "./types.js";

/**
 * ReadIndex reads are linearizable: a read issued after a write was
 * acknowledged is answered with an index at or past that write, so serving
 * it once applied >= index shows the write.
 */
export class LinearizableReads implements Checker {
  readonly property = "Linearizable reads";
  answered = 0;

  onRead(event: ReadEvent): void {
    this.answered++;
    if (event.index < event.ackedBeforeIssue) {
      throw new SafetyViolation(
        this.property,
        `read ${event.readId} at ${event.node} was answered with index ${event.index}, but index ${event.ackedBeforeIssue} was acknowledged before it was issued`,
      );
    }
  }
}
