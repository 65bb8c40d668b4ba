import type { OpResult } from "@ratequeue/node/testing";
import { DEFAULT_LANE, RESOURCES, reservedForOthers, STRICT_LANES, WORKER_KEY_ID, WORKER_SCOPE } from "../fixtures.js";
import type { LogTime } from "./agreement.js";
import { LimitChecker, specFromConfig } from "./limits.js";
import { OutcomeChecker } from "./outcomes.js";
import { ProviderView, type TrueTimeChecker } from "./true-time.js";

/** What the committed log showed: admin changes applied, scoped acquires checked, effects by type. */
export interface CommittedLogStats {
  adminApplied: number;
  scopedAcquires: number;
  effects: Record<string, number>;
}

/**
 * Every guarantee read from the committed log, as the witness replays it (README, "Checkers"): limits (the
 * contract's windows, strict lanes' shares, reserved capacity), the provider's view on true time, exactly-once
 * outcomes, a grant's time within its entry's log-time interval, waiter deadlines, key scopes, and sessions that
 * end with every lease they held. It knows nothing of the nodes: only the committed entries and their effects.
 */
export class CommittedLogChecker {
  readonly #limits = new LimitChecker(RESOURCES);
  readonly #trueTime: TrueTimeChecker;
  /** Every limit as a provider counting on true time sees it. */
  readonly #provider: ProviderView;
  readonly #strictLaneLimits = new LimitChecker(STRICT_LANES);
  /** The lane of each acquire (session/request), from the entry that first brought it. */
  readonly #lanes = new Map<string, string>();
  readonly #outcomes = new OutcomeChecker();
  readonly #onSessionExpired: (sessionId: string) => void;
  #violation: string | null = null;
  readonly stats: CommittedLogStats = { adminApplied: 0, scopedAcquires: 0, effects: {} };

  constructor(options: { trueTime: TrueTimeChecker; onSessionExpired: (sessionId: string) => void }) {
    this.#trueTime = options.trueTime;
    this.#provider = new ProviderView(RESOURCES, options.trueTime);
    this.#onSessionExpired = options.onSessionExpired;
  }

  /** A client was told "granted": it must match a committed grant (now, or by the end of the run). */
  clientGranted(client: string, sessionId: string, requestId: string, leaseId: number): string | null {
    return this.#outcomes.clientGranted(client, sessionId, requestId, leaseId);
  }

  /** Client-side grants never seen committed, at the end of the run; or null. */
  unverified(): string | null {
    return this.#outcomes.unverified();
  }

  get grantsChecked(): number {
    return this.#limits.grantsChecked;
  }

  get laneGrantsChecked(): number {
    return this.#strictLaneLimits.grantsChecked;
  }

  get providerGrantsChecked(): number {
    return this.#provider.grantsChecked;
  }

  get clientGrantsVerified(): number {
    return this.#outcomes.clientGrantsVerified;
  }

  #fail(message: string | null): void {
    if (message !== null && this.#violation === null) this.#violation = message;
  }

  /** The log time of the last committed entry that applied a limiter command (null before the first). */
  #limiterTimeMs: number | null = null;

  /** The witness applied a committed entry: returns the first violation it shows, or null. */
  committed(results: readonly OpResult[], time: LogTime, index: number): string | null {
    this.#violation = null;
    this.#onCommittedOps(results, time, index);
    // The limiter's time moved if it applied a command: a limiter op, or what a bootstrap or a key revocation
    // applies (they report effects). A malformed command changes nothing, not even the time: an entry whose only
    // effects are RQ_INVALID errors is not counted (a lower bound kept lower only makes the check laxer).
    const moved = results.some((r) => r.effects.some((e) => e.type !== "error" || e.code !== "RQ_INVALID"));
    if (moved) this.#limiterTimeMs = time.atMs;
    return this.#violation;
  }

  #onCommittedOps(results: readonly OpResult[], time: LogTime, index: number): void {
    const atMs = time.atMs;
    this.#fail(this.#trueTime.committed(index, time.term, time.stampMs));
    for (const r of results) {
      if (r.op.t === "keyAdd" || r.op.t === "keyRemove") this.stats.adminApplied++;
      // A waiter's deadline, from the entry that first brought its acquire (SPEC: a waiter that timed out is
      // never granted afterwards). Read from the log, not from the limiter.
      if (r.op.t === "limiter" && r.op.cmd.type === "acquire" && r.op.cmd.timeoutMs !== undefined) {
        const key = `${r.op.cmd.sessionId}/${r.op.cmd.requestId}`;
        if (!this.#deadlines.has(key)) this.#deadlines.set(key, atMs + r.op.cmd.timeoutMs);
      }
      // Key scopes (issue #15), from the log alone: who opened each session, and what its acquires asked for.
      if (r.op.t === "limiter" && r.op.cmd.type === "openSession" && r.op.owner !== undefined) this.#owners.set(r.op.cmd.sessionId, r.op.owner);
      if (r.op.t === "limiter" && r.op.cmd.type === "acquire" && this.#owners.get(r.op.cmd.sessionId) === WORKER_KEY_ID) {
        const priority = r.op.cmd.priority;
        if (priority === undefined || priority > WORKER_SCOPE.priorityMax) {
          this.#fail(`scope: an acquire of a worker-key session reached the log with priority ${priority} (priorityMax ${WORKER_SCOPE.priorityMax}): ${r.op.cmd.sessionId}/${r.op.cmd.requestId}`);
        }
        this.stats.scopedAcquires++;
      }
      if (r.op.t === "limiter" && r.op.cmd.type === "acquire") {
        const key = `${r.op.cmd.sessionId}/${r.op.cmd.requestId}`;
        const lane = r.op.cmd.lane ?? DEFAULT_LANE.get(r.op.cmd.resource);
        if (lane !== undefined && !this.#lanes.has(key)) this.#lanes.set(key, lane);
      }
      for (const e of r.effects) {
        const name = e.type === "sessionEnded" ? `sessionEnded:${e.reason}` : e.type === "error" ? `error:${e.code}` : e.type;
        this.stats.effects[name] = (this.stats.effects[name] ?? 0) + 1;
        switch (e.type) {
          case "granted":
            this.#fail(this.#outcomes.committed(e.sessionId, e.requestId, "granted", e.leaseId));
            // A retried acquire is answered with its original grant: only a new lease is charged. Its time must
            // lie between the previous entry's log time and this one's (a waiter is granted at the moment it
            // fits, which the entry that moved time past it reveals); windows are measured on that time.
            if (!this.#isRepeat(e.leaseId)) {
              // The lower bound is the last entry that moved the limiter's time: an entry without limiter work (a
              // key created, or revoked with no session open) leaves it where it was.
              const sinceMs = this.#limiterTimeMs ?? time.previousMs;
              if (e.grantedAt < sinceMs || e.grantedAt > time.atMs) {
                this.#fail(`lease ${e.leaseId} granted at ${e.grantedAt}, outside the log time since the limiter last moved (${sinceMs}, ${time.atMs}]`);
              }
              const lane = this.#lanes.get(`${e.sessionId}/${e.requestId}`);
              this.#fail(this.#limits.grant({ resource: e.resource, leaseId: e.leaseId, load: e.load, atMs: e.grantedAt }, reservedForOthers(e.resource, lane)));
              this.#fail(this.#provider.grant({ resource: e.resource, leaseId: e.leaseId, load: e.load, atMs: e.grantedAt }));
              const laneResource = `${e.resource}#${lane}`;
              if (STRICT_LANES.some((l) => l.name === laneResource)) {
                this.#fail(this.#strictLaneLimits.grant({ resource: laneResource, leaseId: e.leaseId, load: e.load, atMs: e.grantedAt }));
              }
              if (this.#endedSessions.has(e.sessionId)) this.#fail(`lease ${e.leaseId} granted to session ${e.sessionId}, which had ended`);
              this.#heldBySession(e.sessionId).add(e.leaseId);
              const deadlineMs = this.#deadlines.get(`${e.sessionId}/${e.requestId}`);
              if (deadlineMs !== undefined && e.grantedAt > deadlineMs) {
                this.#fail(`${e.sessionId}/${e.requestId} granted at ${e.grantedAt}, after its timeout at ${deadlineMs}`);
              }
            }
            break;
          case "rejected":
          case "timedOut":
          case "cancelled":
            this.#fail(this.#outcomes.committed(e.sessionId, e.requestId, e.type, null));
            break;
          case "settled":
            this.#limits.settle(e.leaseId, e.load, atMs);
            this.#provider.settle(e.leaseId, e.load, atMs);
            this.#strictLaneLimits.settle(e.leaseId, e.load, atMs);
            break;
          case "released":
            if (e.reason !== "notHeld") {
              this.#limits.release(e.leaseId);
              this.#provider.release(e.leaseId);
              this.#strictLaneLimits.release(e.leaseId);
              this.#heldBySession(e.sessionId).delete(e.leaseId);
            }
            break;
          case "sessionEnded": {
            // SPEC: an ended session's leases are released and its waiters dropped: every lease it still held
            // (by the grant history, not the limiter's word) must be in the release list, and nothing is
            // granted to it afterwards.
            const held = this.#heldBySession(e.sessionId);
            const missing = [...held].filter((id) => !e.releasedLeases.includes(id));
            if (missing.length > 0) this.#fail(`session ${e.sessionId} ended (${e.reason}) without releasing lease ${missing[0]}`);
            held.clear();
            this.#endedSessions.add(e.sessionId);
            for (const id of e.releasedLeases) {
              this.#limits.release(id);
              this.#provider.release(id);
              this.#strictLaneLimits.release(id);
            }
            if (e.reason === "expired") this.#onSessionExpired(e.sessionId);
            break;
          }
          case "resourcePut":
            // The limits in force change here: grants before this effect were made under the old ones, after it
            // under the new ones. Bootstrap resources are the checker's own specs (and stay so under looseLimits).
            if (r.op.t === "limiter" && r.op.cmd.type === "putResource") {
              const spec = specFromConfig(e.name, r.op.cmd.config);
              this.#limits.configure(e.name, spec);
              this.#provider.configure(e.name, spec, atMs);
              this.stats.adminApplied++;
            }
            break;
          case "resourceDeleted":
            this.#limits.configure(e.name, null);
            this.#provider.configure(e.name, null, atMs);
            this.stats.adminApplied++;
            break;
          case "cooldown":
            this.#limits.cooldown(e.resource, e.untilMs);
            this.#provider.cooldown(e.resource, e.untilMs);
            for (const l of STRICT_LANES) if (l.name.startsWith(`${e.resource}#`)) this.#strictLaneLimits.cooldown(l.name, e.untilMs);
            break;
          default:
            break;
        }
      }
    }
  }

  readonly #endedSessions = new Set<string>();
  readonly #leasesBySession = new Map<string, Set<number>>();

  #heldBySession(sessionId: string): Set<number> {
    let held = this.#leasesBySession.get(sessionId);
    if (held === undefined) {
      held = new Set();
      this.#leasesBySession.set(sessionId, held);
    }
    return held;
  }

  /** Log-time deadline of every acquire that carried timeoutMs, by session/request. */
  readonly #deadlines = new Map<string, number>();
  /** Session id -> the id of the key that opened it, from committed openSession entries. */
  readonly #owners = new Map<string, string>();
  readonly #grantedLeases = new Set<number>();

  /** A granted effect repeats an earlier one when a retried acquire is answered with its original outcome. */
  #isRepeat(leaseId: number): boolean {
    if (this.#grantedLeases.has(leaseId)) return true;
    this.#grantedLeases.add(leaseId);
    return false;
  }
}
