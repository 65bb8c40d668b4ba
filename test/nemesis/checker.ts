/**
 * The chaos run's independent checker. It knows the node only through what
 * the run collected: each node's committed log (log-dump.ts), the effects of
 * replaying it, every client's history, and admin-view samples. Limits are
 * re-checked here with our own window arithmetic, not the limiter's.
 */
import type { AppliedEffect, NodeLog } from "./log-dump.js";
import { isLocalOutcome, type ClientHistory } from "./history.js";

/** The limits the checker enforces, per resource (sliding windows and concurrency only). */
export interface CheckedLimits {
  readonly rate?: { readonly limit: number; readonly windowMs: number };
  readonly load?: { readonly limit: number; readonly windowMs: number };
  readonly concurrency?: number;
}

export interface AdminSample {
  readonly node: string;
  readonly resource: string;
  readonly leasesHeld: number;
}

/** Failures the limiter decides (so they are in the log), by the SDK code the client saw: the log's ending. */
const LOGGED_FAILURES: Readonly<Record<string, string>> = {
  RQ_TIMEOUT: "timedOut",
  RQ_CANCELLED: "cancelled",
  RQ_UNKNOWN_RESOURCE: "rejected:RQ_UNKNOWN_RESOURCE",
  RQ_UNGRANTABLE: "rejected:RQ_UNGRANTABLE",
};

export interface CheckInput {
  readonly logs: readonly NodeLog[];
  /** Effects of the longest committed log. */
  readonly effects: readonly AppliedEffect[];
  readonly histories: readonly ClientHistory[];
  readonly limits: Readonly<Record<string, CheckedLimits>>;
  readonly samples: readonly AdminSample[];
  /** An acquire must end within its timeoutMs plus this (the SDK's grace and a reconnect). */
  readonly endBoundMs: number;
}

export interface CheckReport {
  readonly violations: string[];
  readonly stats: Record<string, number>;
}

const MAX_LISTED = 20;

export function check(input: CheckInput): CheckReport {
  const violations: string[] = [];
  const fail = (v: string): void => {
    if (violations.length < MAX_LISTED) violations.push(v);
    else if (violations.length === MAX_LISTED) violations.push("... (more violations not listed)");
  };
  const stats: Record<string, number> = {};
  checkPrefixes(input.logs, fail, stats);
  const grants = distinctGrants(input.effects, fail, stats);
  checkLogLimits(input, grants, fail);
  checkClients(input, grants, fail, stats);
  for (const s of input.samples) {
    const max = input.limits[s.resource]?.concurrency;
    if (max !== undefined && s.leasesHeld > max) fail(`admin view on ${s.node}: ${s.resource} holds ${s.leasesHeld} leases > concurrency ${max}`);
  }
  stats.adminSamples = input.samples.length;
  return { violations, stats };
}

/** Agreement: any two nodes' committed logs are equal up to the lower commit index. */
function checkPrefixes(logs: readonly NodeLog[], fail: (v: string) => void, stats: Record<string, number>): void {
  for (const log of logs) stats[`commit_${log.id}`] = log.commit;
  for (let a = 0; a < logs.length; a++) {
    for (let b = a + 1; b < logs.length; b++) {
      const x = logs[a]!;
      const y = logs[b]!;
      const upTo = Math.min(x.commit, y.commit);
      for (let i = Math.max(x.snapshotIndex, y.snapshotIndex) + 1; i <= upTo; i++) {
        const ex = x.entries[i - x.snapshotIndex - 1];
        const ey = y.entries[i - y.snapshotIndex - 1];
        if (ex === undefined || ey === undefined) {
          fail(`${ex === undefined ? x.id : y.id} lacks committed entry ${i}`);
          break;
        }
        if (ex.index !== i || ey.index !== i || ex.term !== ey.term || ex.type !== ey.type || !sameBytes(ex.data, ey.data)) {
          fail(`committed entry ${i} differs: ${x.id} term ${ex.term} vs ${y.id} term ${ey.term}`);
          break;
        }
      }
    }
  }
}

type Grant = Extract<AppliedEffect["effect"], { type: "granted" }>;

/**
 * The log's grants, each once. A repeated acquire (a resend after a reconnect) is answered with the original
 * grant effect again, unchanged and uncharged: that is the exactly-once answer, not a second grant. The same
 * request granted with a different lease, or one lease id granted to two requests, is a double grant.
 */
function distinctGrants(effects: readonly AppliedEffect[], fail: (v: string) => void, stats: Record<string, number>): Map<string, Grant> {
  const byRequest = new Map<string, Grant>();
  const requestOfLease = new Map<string, string>();
  let repeats = 0;
  for (const { effect: e, index } of effects) {
    if (e.type !== "granted") continue;
    const rk = `${e.sessionId}/${e.requestId}`;
    const lk = `${e.sessionId}/${e.leaseId}`;
    const first = byRequest.get(rk);
    if (first !== undefined) {
      if (first.leaseId === e.leaseId && first.grantedAt === e.grantedAt && first.resource === e.resource && loadOf(first.load) === loadOf(e.load)) repeats++;
      else fail(`log entry ${index}: request ${rk} granted twice (lease ${first.leaseId}@${first.grantedAt}, then lease ${e.leaseId}@${e.grantedAt})`);
      continue;
    }
    const other = requestOfLease.get(lk);
    if (other !== undefined) fail(`log entry ${index}: lease ${lk} granted to requests ${other} and ${rk}`);
    requestOfLease.set(lk, rk);
    byRequest.set(rk, e);
  }
  stats.logGrants = byRequest.size;
  stats.logRepeatAnswers = repeats;
  return byRequest;
}

/** Safety on the log: sliding rate and load windows on grant stamps, and leases held at once. */
function checkLogLimits(input: CheckInput, grants: Map<string, Grant>, fail: (v: string) => void): void {
  const counted = new Set(grants.values());
  const byResource = new Map<string, { at: number; load: number }[]>();
  const held = new Map<string, Set<string>>(); // resource -> "session/lease"
  const resourceOfLease = new Map<string, string>();
  for (const { effect: e, index } of input.effects) {
    if (e.type === "granted") {
      if (!counted.delete(e)) continue; // a repeat answer: charged once, at its first grant
      const load = Object.values(e.load).reduce((s, n) => s + n, 0);
      const list = byResource.get(e.resource) ?? [];
      list.push({ at: e.grantedAt, load });
      byResource.set(e.resource, list);
      const key = `${e.sessionId}/${e.leaseId}`;
      resourceOfLease.set(key, e.resource);
      const set = held.get(e.resource) ?? new Set();
      set.add(key);
      held.set(e.resource, set);
      const max = input.limits[e.resource]?.concurrency;
      if (max !== undefined && set.size > max) fail(`log entry ${index}: ${e.resource} holds ${set.size} leases > concurrency ${max}`);
    } else if (e.type === "released" && e.reason !== "notHeld") {
      const key = `${e.sessionId}/${e.leaseId}`;
      held.get(resourceOfLease.get(key) ?? "")?.delete(key);
    } else if (e.type === "sessionEnded") {
      for (const id of e.releasedLeases) {
        const key = `${e.sessionId}/${id}`;
        held.get(resourceOfLease.get(key) ?? "")?.delete(key);
      }
    }
  }
  for (const [resource, list] of byResource) {
    const limits = input.limits[resource];
    if (limits?.rate !== undefined) checkWindow(`log: ${resource} rate`, list.map((g) => ({ at: g.at, load: 1 })), limits.rate, fail);
    if (limits?.load !== undefined) checkWindow(`log: ${resource} load`, list, limits.load, fail);
  }
}

/** No interval [t, t + windowMs) holds more than `limit` of charged usage. Stamps are whole ms. */
export function checkWindow(
  what: string,
  grants: readonly { at: number; load: number }[],
  window: { limit: number; windowMs: number },
  fail: (v: string) => void,
): number {
  const sorted = [...grants].sort((a, b) => a.at - b.at);
  let start = 0;
  let sum = 0;
  let peak = 0;
  for (const g of sorted) {
    sum += g.load;
    while (sorted[start]!.at <= g.at - window.windowMs) sum -= sorted[start++]!.load;
    peak = Math.max(peak, sum);
    if (sum > window.limit) {
      fail(`${what}: ${sum} charged in the ${window.windowMs} ms ending at ${g.at} > limit ${window.limit}`);
      return peak;
    }
  }
  return peak;
}

function checkClients(
  input: CheckInput,
  grants: Map<string, Grant>,
  fail: (v: string) => void,
  stats: Record<string, number>,
): void {
  const logByLease = new Map<string, Grant[]>();
  for (const g of grants.values()) {
    const key = `${g.sessionId}/${g.leaseId}`;
    logByLease.set(key, [...(logByLease.get(key) ?? []), g]);
  }

  // Every effect that ended a request, by session/request id: what the log decided for each failure a client saw.
  const endings = new Map<string, string[]>();
  for (const { effect: e } of input.effects) {
    if (e.type !== "granted" && e.type !== "rejected" && e.type !== "timedOut" && e.type !== "cancelled") continue;
    const key = `${e.sessionId}/${e.requestId}`;
    endings.set(key, [...(endings.get(key) ?? []), e.type === "rejected" ? `rejected:${e.code}` : e.type]);
  }

  const seen = new Set<string>();
  const clientGrants: { resource: string; at: number; load: number }[] = [];
  let ops = 0;
  let granted = 0;
  let local = 0;
  let serverFailures = 0;
  let matchedFailures = 0;
  let maxEndMs = 0;
  for (const h of input.histories) {
    for (const r of h.records) {
      ops++;
      const tag = `${r.client}#${r.op}`;
      if (r.endMs === null || r.outcome === null) {
        fail(`${tag}: acquire on ${r.resource} started at ${r.startMs} never ended (hang)`);
        continue;
      }
      maxEndMs = Math.max(maxEndMs, r.endMs - r.startMs);
      if (r.endMs - r.startMs > r.timeoutMs + input.endBoundMs) {
        fail(`${tag}: acquire took ${r.endMs - r.startMs} ms > timeoutMs ${r.timeoutMs} + ${input.endBoundMs}`);
      }
      if (r.outcome === "failed") {
        if (isLocalOutcome(r)) local++;
        else serverFailures++;
        const expected = LOGGED_FAILURES[r.code ?? ""];
        if (r.failedRequest !== undefined && expected !== undefined) {
          // The limiter decided this failure, in the log: the log must say the same, and never grant that request.
          const key = `${r.failedRequest.sessionId}/${r.failedRequest.requestId}`;
          const logged = endings.get(key) ?? [];
          if (!logged.includes(expected) || logged.includes("granted")) {
            fail(`${tag}: the client failed with ${r.code} for ${key}, the log ended it with [${logged.join(", ")}]`);
          } else matchedFailures++;
        }
        continue;
      }
      granted++;
      const key = `${r.sessionId}/${r.leaseId}`;
      if (seen.has(key)) fail(`${tag}: lease ${key} seen twice by clients`);
      seen.add(key);
      if (r.releaseEndMs === null) fail(`${tag}: release of ${key} never ended (hang)`);
      const match = logByLease.get(key) ?? [];
      const g = match[0];
      if (match.length !== 1 || g === undefined) fail(`${tag}: client holds lease ${key} that the log grants ${match.length} times`);
      else if (g.resource !== r.resource || g.grantedAt !== r.grantedAt || loadOf(g.load) !== r.load) {
        fail(`${tag}: lease ${key} differs from the log: client ${r.resource}@${r.grantedAt} load ${r.load}, log ${g.resource}@${g.grantedAt} load ${loadOf(g.load)}`);
      }
      clientGrants.push({ resource: r.resource, at: r.grantedAt!, load: r.load });
    }
  }
  // The clients' view is a subset of the log, so an excess they saw is real whatever the replay says.
  for (const [resource, limits] of Object.entries(input.limits)) {
    const mine = clientGrants.filter((g) => g.resource === resource);
    if (limits.rate !== undefined) {
      stats[`peakRate_${resource}`] = checkWindow(`clients: ${resource} rate`, mine.map((g) => ({ at: g.at, load: 1 })), limits.rate, fail);
    }
    if (limits.load !== undefined) stats[`peakLoad_${resource}`] = checkWindow(`clients: ${resource} load`, mine, limits.load, fail);
  }
  // Grants the log made that no client heard of: a session that expired (its worker was cut off), or a request the
  // SDK had already failed locally (it then releases the late grant). Any other unseen grant is a lost answer.
  const expiredLeases = new Set<string>();
  for (const { effect: e } of input.effects) {
    if (e.type === "sessionEnded" && e.reason === "expired") for (const id of e.releasedLeases) expiredLeases.add(`${e.sessionId}/${id}`);
  }
  checkClientHolds(input, expiredLeases, fail, stats);
  let unseen = 0;
  let unseenExpired = 0;
  for (const key of logByLease.keys()) {
    if (seen.has(key)) continue;
    if (expiredLeases.has(key)) unseenExpired++;
    else unseen++;
  }
  if (unseen > local) fail(`log has ${unseen} grants no client heard of (outside expired sessions), more than the ${local} requests the SDK failed locally`);
  Object.assign(stats, { ops, granted, serverFailures, failuresMatchedToLog: matchedFailures, localFailures: local, unseenGrants: unseen, unseenGrantsExpiredSessions: unseenExpired, maxAcquireMs: maxEndMs });
}

/**
 * Concurrency as the clients lived it: a client holds a lease at least from when it received the grant until it
 * called release() (the cluster grants before the client hears and frees after it sends), all on this machine's one
 * clock. So more overlapping holds than a concurrency limit means the cluster let a slot go while its holder still
 * had it: a double grant of the slot, or a lease freed behind its holder's back. Leases of sessions that expired are
 * left out (expiry does free a slot its cut-off holder still believes it has).
 */
function checkClientHolds(input: CheckInput, expiredLeases: ReadonlySet<string>, fail: (v: string) => void, stats: Record<string, number>): void {
  for (const [resource, limits] of Object.entries(input.limits)) {
    if (limits.concurrency === undefined) continue;
    const events: { atMs: number; delta: number; tag: string }[] = [];
    for (const h of input.histories) {
      for (const r of h.records) {
        if (r.resource !== resource || r.outcome !== "granted" || r.endMs === null || expiredLeases.has(`${r.sessionId}/${r.leaseId}`)) continue;
        events.push({ atMs: r.endMs, delta: 1, tag: `${r.client}#${r.op}` });
        events.push({ atMs: r.releaseStartMs ?? Number.POSITIVE_INFINITY, delta: -1, tag: `${r.client}#${r.op}` });
      }
    }
    // At the same ms a release comes first: the cluster freed that slot before it granted the next.
    events.sort((a, b) => a.atMs - b.atMs || a.delta - b.delta);
    let held = 0;
    let peak = 0;
    for (const e of events) {
      held += e.delta;
      peak = Math.max(peak, held);
      if (held > limits.concurrency) {
        fail(`clients: ${held} leases on ${resource} held at once at ${e.atMs} (${e.tag} just granted) > concurrency ${limits.concurrency}`);
        break;
      }
    }
    stats[`peakClientHolds_${resource}`] = peak;
  }
}

function loadOf(load: Readonly<Record<string, number>>): number {
  return Object.values(load).reduce((s, n) => s + n, 0);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
