/**
 * Exactly-once answers. A session remembers each request id it has used: a
 * live request (waiting or granted) always, and the last `finishedPerSession`
 * finished ones in a ring. A repeated acquire or a late cancel of a
 * remembered request id gets the request's original answer and changes
 * nothing; a request id that has left the ring is new again.
 */
import type { RequestRecord } from "./resource.js";
import type { MachineState } from "./state.js";
import type { Effect } from "./types.js";

export interface Session {
  readonly id: string;
  /** Opening order, unique: breaks ties in the expiry heap. */
  readonly seq: number;
  ttlMs: number;
  expiresAt: number;
  readonly requests: Map<string, RequestRecord>;
  /** Finished request ids: a ring of `finishedPerSession` slots, oldest at `finishedStart`. */
  readonly finished: string[];
  finishedStart: number;
  finishedCount: number;
}

export function newSession(id: string, seq: number, ttlMs: number, expiresAt: number): Session {
  return { id, seq, ttlMs, expiresAt, requests: new Map(), finished: [], finishedStart: 0, finishedCount: 0 };
}

/**
 * Marks a request finished (its answer, if given, becomes what repeats get)
 * and puts it in the session's ring, forgetting the oldest finished request
 * when the ring is full.
 */
export function finish(m: MachineState, s: Session, record: RequestRecord, outcome: Effect | null): void {
  record.state = "done";
  record.waiter = null;
  record.lease = null;
  if (outcome !== null) record.outcome = outcome;
  const n = m.finishedPerSession;
  if (n === 0) {
    s.requests.delete(record.requestId);
  } else if (s.finishedCount < n) {
    s.finished[(s.finishedStart + s.finishedCount++) % n] = record.requestId;
  } else {
    // Full: forget the oldest finished request and reuse its slot.
    s.requests.delete(s.finished[s.finishedStart] as string);
    s.finished[s.finishedStart] = record.requestId;
    s.finishedStart = (s.finishedStart + 1) % n;
  }
}

/** The finished request ids of `s`, oldest first. */
export function finishedInOrder(m: MachineState, s: Session): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.finishedCount; i++) out.push(s.finished[(s.finishedStart + i) % m.finishedPerSession] as string);
  return out;
}

/** What a repeated acquire (or a late cancel) answers for this request. */
export function answer(record: RequestRecord): Effect {
  if (record.outcome !== null) return record.outcome;
  const w = record.waiter;
  if (record.state !== "waiting" || w === null) throw new Error(`invariant: request ${record.requestId} has no outcome`);
  // Built on demand rather than stored: one object less per waiting request.
  return { type: "queued", sessionId: w.session.id, requestId: record.requestId, resource: w.resource.name };
}

/** The live session a live request belongs to (a session's end ends its requests first). */
export function sessionOf(m: MachineState, ref: { id: string }): Session {
  const s = m.sessions.get(ref.id);
  if (s === undefined) throw new Error(`invariant: live request of unknown session ${ref.id}`);
  return s;
}
