/**
 * Session lifecycle: open (or refresh), heartbeat, close, expiry at the end
 * of the TTL, and the renewal a new leader applies before its first stamp
 * (SPEC: a leader change never expires a live session). A session's end
 * drops its waiting requests and releases its leases.
 */
import { killWaiter } from "./admission.js";
import { newSession, type Session } from "./exactly-once.js";
import { dropLease } from "./leases.js";
import { unknownSession, type MachineState } from "./state.js";
import type { Effect } from "./types.js";

export function openSession(m: MachineState, sessionId: string, ttlMs: number, at: number, out: Effect[]): void {
  let s = m.sessions.get(sessionId);
  if (s === undefined) {
    s = newSession(sessionId, ++m.sessionSeq, ttlMs, 0);
    m.sessions.set(sessionId, s);
  }
  s.ttlMs = ttlMs;
  touch(m, s, at);
  out.push({ type: "session", sessionId, expiresAt: s.expiresAt });
}

export function heartbeat(m: MachineState, sessionId: string, at: number, out: Effect[]): void {
  const s = m.sessions.get(sessionId);
  if (s === undefined) {
    out.push(unknownSession("heartbeat", sessionId));
    return;
  }
  touch(m, s, at);
  out.push({ type: "session", sessionId, expiresAt: s.expiresAt });
}

export function closeSession(m: MachineState, sessionId: string, out: Effect[]): void {
  const s = m.sessions.get(sessionId);
  if (s === undefined) out.push(unknownSession("closeSession", sessionId));
  else endSession(m, s, "closed", out);
}

function touch(m: MachineState, s: Session, at: number): void {
  s.expiresAt = at + s.ttlMs;
  m.expiries.push(s.expiresAt, s.seq, s);
  // Each heartbeat leaves a stale entry; purge them before they outnumber the sessions.
  if (m.expiries.size > 2 * m.sessions.size + 1024) {
    m.expiries.filter((x, key) => m.sessions.get(x.id) === x && x.expiresAt === key);
  }
}

/** Every session gets a fresh TTL from `at`. */
export function renewSessions(m: MachineState, at: number): void {
  for (const s of m.sessions.values()) s.expiresAt = at + s.ttlMs;
  m.expiries.filter(() => false);
  for (const s of m.sessions.values()) m.expiries.push(s.expiresAt, s.seq, s);
}

/** Whether the heap entry (`s`, `key`) is the live expiry of a live session (the heap keeps stale entries). */
export function isLiveExpiry(m: MachineState, s: Session, key: number | undefined): boolean {
  return m.sessions.get(s.id) === s && s.expiresAt === key;
}

export function endSession(m: MachineState, s: Session, reason: "closed" | "expired", out: Effect[]): void {
  const releasedLeases: number[] = [];
  const droppedRequests: string[] = [];
  for (const record of s.requests.values()) {
    if (record.state === "waiting" && record.waiter) {
      killWaiter(m, record.waiter);
      droppedRequests.push(record.requestId);
    } else if (record.state === "granted" && record.lease) {
      dropLease(m, record.lease);
      releasedLeases.push(record.lease.id);
    }
  }
  m.sessions.delete(s.id);
  out.push({ type: "sessionEnded", sessionId: s.id, reason, releasedLeases, droppedRequests });
}
