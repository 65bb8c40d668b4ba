import { SafetyViolation, type Checker, type LogWriteEvent } from "./types.js";

/**
 * Log Matching: if two logs contain an entry with the same index and term,
 * the logs are identical in all entries up through that index.
 *
 * Checked incrementally, by induction: every (index, term) ever written, by
 * any node, must carry the same data and follow the same previous term. Two
 * logs agreeing at (i, t) then agree at (i - 1, prevTerm), and so on down.
 */
export class LogMatching implements Checker {
  readonly property = "Log Matching";
  /** `${index}:${term}` -> the entry's identity and its predecessor's term. */
  readonly #seen = new Map<string, { readonly prevTerm: number; readonly data: string; readonly by: string }>();

  onLogWrite(event: LogWriteEvent): void {
    if (event.change.type !== "entries") return;
    const entries = event.change.entries;
    let prevTerm = entries[0] === undefined ? undefined : event.before.termAt(entries[0].index - 1);
    for (const e of entries) {
      if (prevTerm === undefined) {
        throw new SafetyViolation(this.property, `${event.node} wrote entry ${e.index} without the entry before it`);
      }
      if (e.term < prevTerm) {
        throw new SafetyViolation(this.property, `${event.node} wrote entry ${e.index} of term ${e.term} after one of term ${prevTerm}`);
      }
      const key = `${e.index}:${e.term}`;
      const data = `${e.type}/${Buffer.from(e.data).toString("base64")}`;
      const known = this.#seen.get(key);
      if (known === undefined) this.#seen.set(key, { prevTerm, data, by: event.node });
      else if (known.prevTerm !== prevTerm || known.data !== data) {
        throw new SafetyViolation(
          this.property,
          `entry ${key} differs between ${known.by} (prev term ${known.prevTerm}, ${known.data}) and ${event.node} (prev term ${prevTerm}, ${data})`,
        );
      }
      prevTerm = e.term;
    }
  }
}
