import { SafetyViolation, type Checker, type LogWriteEvent, type SendEvent } from "./types.js";

/**
 * Terms are raised only by elections: a node may persist term T only once
 * some candidate has stood in T (persisted T with a vote for itself, or
 * asked for votes in T). Pre-vote (thesis 9.6) exists so that a node that
 * cannot win never raises anyone's term; a pre-vote that did would show
 * here as a term persisted before anyone stood in it.
 */
export class TermsFromElections implements Checker {
  readonly property = "Terms are raised only by elections";
  readonly #stood = new Set<number>([0, 1]);

  onSend(event: SendEvent): void {
    if (event.message.type === "vote") this.#stood.add(event.message.term);
  }

  onLogWrite(event: LogWriteEvent): void {
    if (event.change.type !== "hardState") return;
    const { term, vote } = event.change.hardState;
    if (vote === event.node) this.#stood.add(term);
    if (!this.#stood.has(term)) {
      throw new SafetyViolation(this.property, `${event.node} persisted term ${term} before any candidate stood in it`);
    }
  }
}
