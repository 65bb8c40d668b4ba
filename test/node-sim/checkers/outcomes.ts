/**
 * Exactly once, from two sides: in the committed history every request
 * (session, request id) has at most one outcome, however often it was retried;
 * and every grant a client was told of is a grant the cluster committed, with
 * the same lease.
 */
export type Outcome = "granted" | "rejected" | "timedOut" | "cancelled";

export class OutcomeChecker {
  /** `session/request` -> the committed outcome, e.g. "granted:17" or "timedOut". */
  readonly #committed = new Map<string, string>();
  /** Grants clients saw that the committed history has not (yet) shown, by key. */
  readonly #unverified = new Map<string, { client: string; outcome: string }>();
  clientGrantsVerified = 0;

  /** A committed outcome. Returns a violation message, or null. */
  committed(sessionId: string, requestId: string, outcome: Outcome, leaseId: number | null): string | null {
    const key = `${sessionId}/${requestId}`;
    const text = leaseId === null ? outcome : `${outcome}:${leaseId}`;
    const before = this.#committed.get(key);
    if (before !== undefined && before !== text) return `request ${key} ended twice: ${before}, then ${text}`;
    this.#committed.set(key, text);
    const seen = this.#unverified.get(key);
    if (seen !== undefined) {
      this.#unverified.delete(key);
      if (seen.outcome !== text) return `client ${seen.client} was told ${seen.outcome} for ${key}, the cluster committed ${text}`;
      this.clientGrantsVerified++;
    }
    return null;
  }

  /** A client was told its request was granted with `leaseId`. */
  clientGranted(client: string, sessionId: string, requestId: string, leaseId: number): string | null {
    const key = `${sessionId}/${requestId}`;
    const text = `granted:${leaseId}`;
    const committed = this.#committed.get(key);
    if (committed === undefined) {
      // Not committed as far as the checker has seen yet (it learns the log from what nodes applied); a later step settles it.
      const earlier = this.#unverified.get(key);
      if (earlier !== undefined && earlier.outcome !== text) return `client ${client} was told ${earlier.outcome} then ${text} for ${key}`;
      this.#unverified.set(key, { client, outcome: text });
      return null;
    }
    if (committed !== text) return `client ${client} was told ${text} for ${key}, the cluster committed ${committed}`;
    this.clientGrantsVerified++;
    return null;
  }

  /** At the end of a run: every grant a client saw must have been committed. */
  unverified(): string | null {
    const first = this.#unverified.entries().next();
    if (first.done === true) return null;
    const [key, v] = first.value;
    return `client ${v.client} was told ${v.outcome} for ${key}, which the cluster never committed (${this.#unverified.size} such)`;
  }
}
