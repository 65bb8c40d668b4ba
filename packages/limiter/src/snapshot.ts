/**
 * The snapshot codec: a machine's whole state as deterministic bytes (equal
 * states give equal bytes) and back. Fields are written in a fixed order with
 * the byte codec of codec.ts; restoring rebuilds the derived structures
 * (heaps, lane queues, concurrency counts) and checks that requests, queues
 * and leases agree, throwing SnapshotError on bytes it cannot trust.
 *
 * The format is "RQL2"; any change to what is written here changes snapshot
 * bytes and needs a new magic.
 */
import { enqueue, laneIndex, leaseLaneIndex } from "./admission.js";
import { Reader, SnapshotError, Writer } from "./codec.js";
import { finishedInOrder, newSession, type Session } from "./exactly-once.js";
import { History } from "./history.js";
import { buildResource, configToInput, waitersByArrival } from "./reconfigure.js";
import type { Lease, RequestRecord, Waiter } from "./resource.js";
import { newMachineState, type MachineState } from "./state.js";
import type { Effect, LimitConfig, LoadVector } from "./types.js";
import { Bounds, validateResourceConfig } from "./validate.js";
import { BucketWindow } from "./windows/bucket.js";
import { FixedWindow } from "./windows/fixed.js";
import { SlidingWindow } from "./windows/sliding.js";
import type { Window } from "./windows/window.js";

const MAGIC = "RQL2";

export function encodeSnapshot(m: MachineState): Uint8Array {
  const w = new Writer();
  w.str(MAGIC);
  for (const n of [m.now, m.grantSeq, m.arrivalSeq, m.sessionSeq, m.resourceSeq, m.finishedPerSession, m.historyEntries]) w.uint(n);
  w.uint(m.sessions.size);
  for (const s of m.sessions.values()) {
    w.str(s.id);
    w.uint(s.seq);
    w.uint(s.ttlMs);
    w.uint(s.expiresAt);
    w.uint(s.requests.size);
    for (const rec of s.requests.values()) {
      w.str(rec.requestId);
      w.uint(rec.state === "waiting" ? 0 : rec.state === "granted" ? 1 : 2);
      w.str(JSON.stringify(rec.outcome));
    }
    const finished = finishedInOrder(m, s);
    w.uint(finished.length);
    for (const requestId of finished) w.str(requestId);
  }
  w.uint(m.resources.size);
  for (const r of m.resources.values()) {
    w.str(r.name);
    w.uint(r.seq);
    w.str(JSON.stringify(configToInput(r.config)));
    w.uint(r.cooldownUntil);
    w.optUint(r.wakeAt);
    w.f64le(r.vtFloor);
    for (const lim of r.limits) {
      w.uint(lim.sinceSeq);
      lim.window?.encode(w);
      for (const lw of lim.laneWindows ?? []) lw.encode(w);
    }
    for (const lane of r.lanes) w.f64le(lane.vt);
    const waiters = waitersByArrival(r);
    w.uint(waiters.length);
    for (const x of waiters) {
      w.uint(x.seq);
      w.str(x.session.id);
      w.str(x.requestId);
      w.str(x.laneRequested ?? "");
      w.uint(x.priority);
      writeLoad(w, x.load);
      w.uint(x.enqueuedAt);
      w.optUint(x.deadline === Infinity ? null : x.deadline);
    }
    w.uint(r.leases.size);
    for (const lease of r.leases.values()) {
      w.uint(lease.id);
      w.str(lease.session.id);
      w.str(lease.requestId);
      w.str(lease.laneName ?? "");
      writeLoad(w, lease.load);
      w.uint(lease.grantedAt);
    }
    r.history.encode(w, writeLoad);
  }
  w.uint(m.tombstones.size);
  for (const [name, h] of m.tombstones) {
    w.str(name);
    h.encode(w, writeLoad);
  }
  return w.bytes();
}

/** The state {@link encodeSnapshot} wrote. Throws SnapshotError on bytes it cannot trust. */
export function decodeSnapshot(bytes: Uint8Array): MachineState {
  try {
    return decode(new Reader(bytes));
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`corrupt snapshot: ${(err as Error).message}`, { cause: err });
  }
}

function decode(rd: Reader): MachineState {
  if (rd.str() !== MAGIC) throw new SnapshotError("not a limiter snapshot");
  const [now, grantSeq, arrivalSeq, sessionSeq, resourceSeq, finishedPerSession, historyEntries] = [rd.uint(), rd.uint(), rd.uint(), rd.uint(), rd.uint(), rd.uint(), rd.uint()];
  const m = newMachineState(finishedPerSession as number, historyEntries as number);
  Object.assign(m, { now, grantSeq, arrivalSeq, sessionSeq, resourceSeq });
  for (let n = rd.count(); n > 0; n--) {
    const s = newSession(rd.str(), rd.uint(), rd.uint(), rd.uint());
    for (let k = rd.count(); k > 0; k--) {
      const requestId = rd.str();
      const state = (["waiting", "granted", "done"] as const)[rd.uint()];
      if (state === undefined) throw new SnapshotError("bad request state");
      s.requests.set(requestId, { requestId, state, waiter: null, lease: null, outcome: JSON.parse(rd.str()) as Effect | null });
    }
    for (let k = rd.count(); k > 0; k--) s.finished.push(rd.str());
    s.finishedCount = s.finished.length;
    if (s.finishedCount > m.finishedPerSession) throw new SnapshotError("more finished requests than finishedPerSession");
    m.sessions.set(s.id, s);
    m.expiries.push(s.expiresAt, s.seq, s);
  }
  const recordOf = (sessionId: string, requestId: string): [Session, RequestRecord] => {
    const s = m.sessions.get(sessionId);
    const rec = s?.requests.get(requestId);
    if (s === undefined || rec === undefined) throw new SnapshotError(`dangling request ${sessionId}/${requestId}`);
    return [s, rec];
  };
  for (let n = rd.count(); n > 0; n--) {
    const name = rd.str();
    const seq = rd.uint();
    const parsed = validateResourceConfig(JSON.parse(rd.str()), { allowDeadLanes: true });
    if (!parsed.ok) throw new SnapshotError(`bad config for ${name}`);
    const r = buildResource(m, name, seq, parsed.config, null, new History(Bounds.windowMsMax, m.historyEntries));
    r.cooldownUntil = rd.uint();
    const wakeAt = rd.optUint();
    r.vtFloor = rd.f64le();
    r.limits = r.limits.map((lim) => {
      const sinceSeq = rd.uint();
      const window = lim.window === null ? null : decodeWindow(rd, lim.config, lim.config.limit);
      const laneWindows = lim.laneWindows === null ? null : lim.laneWindows.map((_, i) => decodeWindow(rd, lim.config, lim.laneShare?.[i] ?? 0));
      return { ...lim, sinceSeq, window, laneWindows };
    });
    const vts = r.lanes.map(() => rd.f64le());
    for (let k = rd.count(); k > 0; k--) {
      const seqW = rd.uint();
      const [s, rec] = recordOf(rd.str(), rd.str());
      const laneRequested = rd.str() || null;
      const priority = rd.uint();
      const load = readLoad(rd);
      const enqueuedAt = rd.uint();
      const deadline = rd.optUint() ?? Infinity;
      const laneIdx = laneIndex(r, laneRequested);
      if (laneIdx < 0) throw new SnapshotError("waiter in an unknown lane");
      const w: Waiter = { record: rec, alive: true, seq: seqW, session: s, requestId: rec.requestId, laneRequested, laneIdx, priority, load, enqueuedAt, deadline, resource: r };
      rec.waiter = w;
      enqueue(r, w);
      if (deadline !== Infinity) {
        m.timeouts.push(deadline, seqW, w);
        m.liveTimeouts++;
      }
    }
    for (let k = rd.count(); k > 0; k--) {
      const id = rd.uint();
      const [s, rec] = recordOf(rd.str(), rd.str());
      const laneName = rd.str() || null;
      const load = readLoad(rd);
      const grantedAt = rd.uint();
      const laneIdx = leaseLaneIndex(r, laneName);
      const lease: Lease = { record: rec, id, session: s, requestId: rec.requestId, laneName, laneIdx, load, grantedAt, resource: r };
      rec.lease = lease;
      r.leases.set(id, lease);
      m.leases.set(id, lease);
      for (const lim of r.limits) {
        if (lim.window !== null) continue;
        lim.held++;
        if (lim.laneHeld !== null && laneIdx >= 0) lim.laneHeld[laneIdx]!++;
      }
    }
    r.history = History.decode(rd, Bounds.windowMsMax, m.historyEntries, readLoad);
    // After the waiters: enqueue() lifts an idle lane's virtual time, which must not happen on restore.
    r.lanes.forEach((lane, i) => (lane.vt = vts[i] as number));
    r.wakeAt = wakeAt;
    if (wakeAt !== null) m.wakes.push(wakeAt, r.seq, r);
    m.resources.set(name, r);
  }
  for (let n = rd.count(); n > 0; n--) {
    const name = rd.str();
    if (m.resources.has(name) || m.tombstones.has(name)) throw new SnapshotError(`tombstone for a live or repeated name ${name}`);
    m.tombstones.set(name, History.decode(rd, Bounds.windowMsMax, m.historyEntries, readLoad));
  }
  if (!rd.done()) throw new SnapshotError("trailing bytes after snapshot");
  for (const s of m.sessions.values()) {
    for (const rec of s.requests.values()) {
      if ((rec.state === "waiting") !== (rec.waiter !== null) || (rec.state === "granted") !== (rec.lease !== null) || (rec.state === "waiting") !== (rec.outcome === null)) {
        throw new SnapshotError(`request ${s.id}/${rec.requestId} does not match the queues and leases`);
      }
    }
  }
  return m;
}

function decodeWindow(rd: Reader, config: LimitConfig, limit: number): Window {
  if (config.kind === "concurrency") throw new SnapshotError("concurrency limits have no window");
  switch (config.window) {
    case "sliding":
      return SlidingWindow.decode(rd, config.windowMs, config.deliveryMarginMs);
    case "fixed":
      return FixedWindow.decode(rd, config.windowMs, config.deliveryMarginMs);
    case "bucket":
      return BucketWindow.decode(rd, config.windowMs, limit, config.deliveryMarginMs);
  }
}

function writeLoad(w: Writer, load: LoadVector): void {
  const keys = Object.keys(load);
  w.uint(keys.length);
  for (const k of keys) {
    w.str(k);
    w.uint(load[k] as number);
  }
}

function readLoad(rd: Reader): LoadVector {
  const out: Record<string, number> = {};
  for (let n = rd.count(); n > 0; n--) {
    const k = rd.str();
    out[k] = rd.uint();
  }
  return out;
}
