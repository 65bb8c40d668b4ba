/**
 * The whole mutable state of one limiter machine, as one plain object that
 * the concept modules (sessions, admission, leases, reconfiguration, the
 * snapshot codec) read and change. Only `Limiter` (limiter.ts) holds one;
 * nothing outside this package sees it.
 *
 * Every field is part of the replicated state: two machines that applied the
 * same commands hold equal states and write equal snapshot bytes.
 */
import type { Session } from "./exactly-once.js";
import type { History } from "./history.js";
import { MinHeap } from "./min-heap.js";
import type { Lease, Resource, Waiter } from "./resource.js";
import { ErrorCode, type Effect } from "./types.js";

export interface MachineState {
  /** The log time of the latest command (stamps are clamped to never go back). */
  now: number;
  /** The last lease id given out; lease ids order window logs. */
  grantSeq: number;
  /** The last waiter arrival number (orders waiters across lanes). */
  arrivalSeq: number;
  sessionSeq: number;
  resourceSeq: number;
  /** Finished requests each session remembers for exactly-once answers. */
  readonly finishedPerSession: number;
  /** The bound of each resource's usage history. */
  readonly historyEntries: number;
  readonly resources: Map<string, Resource>;
  /** The usage history of deleted resources, until it ages out: a re-created resource counts it. */
  readonly tombstones: Map<string, History>;
  readonly sessions: Map<string, Session>;
  readonly leases: Map<number, Lease>;
  // Lazy-deletion heaps; entries are checked against live state when they surface.
  readonly timeouts: MinHeap<Waiter>;
  readonly expiries: MinHeap<Session>;
  readonly wakes: MinHeap<Resource>;
  /** Waiters with a finite deadline that are still alive (bounds the stale entries of `timeouts`). */
  liveTimeouts: number;
  /** Resources whose waiters may be grantable after the current step. */
  readonly dirty: Set<Resource>;
}

export const FINISHED_PER_SESSION_DEFAULT = 64;

/** An empty machine. Throws RangeError on options out of range. */
export function newMachineState(finishedPerSession: number, historyEntries: number): MachineState {
  if (!Number.isInteger(finishedPerSession) || finishedPerSession < 0 || finishedPerSession > 100_000) {
    throw new RangeError("finishedPerSession must be an integer 0..100000");
  }
  if (!Number.isInteger(historyEntries) || historyEntries < 4 || historyEntries > 1_000_000) {
    throw new RangeError("historyEntries must be an integer 4..1000000");
  }
  return {
    now: 0,
    grantSeq: 0,
    arrivalSeq: 0,
    sessionSeq: 0,
    resourceSeq: 0,
    finishedPerSession,
    historyEntries,
    resources: new Map(),
    tombstones: new Map(),
    sessions: new Map(),
    leases: new Map(),
    timeouts: new MinHeap(),
    expiries: new MinHeap(),
    wakes: new MinHeap(),
    liveTimeouts: 0,
    dirty: new Set(),
  };
}

export function errorEffect(command: string, code: ErrorCode, message: string): Effect & { type: "error" } {
  return { type: "error", command, code, message };
}

export function unknownSession(command: string, sessionId: string): Effect {
  return errorEffect(command, ErrorCode.UNKNOWN_SESSION, `session "${sessionId}" is not open (closed or expired)`);
}
