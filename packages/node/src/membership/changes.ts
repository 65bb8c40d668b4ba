import type { Logger } from "pino";
import type { ConfChange, NodeId, ProposeResult, Status } from "@ratequeue/raft";
import { ErrorCode, HttpErrorCode } from "@ratequeue/protocol/codes";
import type { NodeEnv } from "../core/env.js";
import type { NodeCore } from "../core/node-core.js";
import { HttpError } from "../http/json.js";

/** How long a conf change may take to apply, or a hand-over to end, before the change gives up. */
export const APPLY_TIMEOUT_MS = 10_000;

/** What a membership change needs of the node: its core and a way to wait. */
export interface MemberChangesOptions {
  readonly core: Pick<NodeCore, "id" | "isLeader" | "status" | "state" | "propose" | "proposeConfChange" | "handOver">;
  readonly logger: Logger;
  /** Timers (simulated ones in the node simulator). */
  readonly env: Pick<NodeEnv, "setTimer" | "monotonicNow">;
  /** How often a change re-checks its progress (the Raft tick). */
  readonly everyMs: number;
  /** Whether this node's link to a peer is open now; absent: links are assumed up. */
  readonly peerConnected?: (id: NodeId) => boolean;
  /** A member's recorded address, or null. */
  readonly addressOf: (id: NodeId) => string | null;
}

export interface AddRequest {
  readonly id: NodeId;
  readonly address: string;
  /** How long the learner may take to catch up before the add gives up (it stays a learner; a retry resumes). */
  readonly timeoutMs: number;
}

/**
 * The membership procedures of one leader, shared by the admin API (`/v1/members`) and the node simulator:
 * - add: record the address, add a learner, wait until it has caught up with the log (twice: everything committed
 *   when we started looking, then everything committed since), then promote it, refused if the promotion would leave
 *   too few reachable, in-sync voters for a quorum;
 * - remove: refused when the remaining voters could not make a quorum;
 * - hand over: before this leader removes itself, leadership goes to the most caught-up voter.
 * One change at a time (`exclusive`; Raft also refuses a second pending change). Refusals are HttpErrors with a
 * stable code (RQ_CHANGE_IN_PROGRESS, RQ_QUORUM, RQ_CONFLICT, RQ_NOT_FOUND, RQ_UNAVAILABLE, RQ_TIMEOUT).
 */
export class MemberChanges {
  readonly #o: MemberChangesOptions;
  /** The change in progress on this node, or null. */
  #changing: string | null = null;

  constructor(options: MemberChangesOptions) {
    this.#o = options;
  }

  /** The change in progress, or null. */
  get changing(): string | null {
    return this.#changing;
  }

  /** Runs one change; refused (409 RQ_CHANGE_IN_PROGRESS) while another runs on this node. */
  async exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#changing !== null) {
      throw new HttpError(409, HttpErrorCode.RQ_CHANGE_IN_PROGRESS, `a membership change is in progress (${this.#changing}); retry once it ends`);
    }
    this.#changing = what;
    try {
      return await fn();
    } finally {
      this.#changing = null;
    }
  }

  async add(add: AddRequest): Promise<void> {
    const { core, logger } = this.#o;
    const conf = core.status().confState;
    if (conf.removed.includes(add.id)) {
      throw new HttpError(409, HttpErrorCode.RQ_CONFLICT, `"${add.id}" was removed from this cluster, and ids are never reused: give the new node a new id`);
    }
    const recorded = this.#o.addressOf(add.id);
    const isMember = conf.voters.includes(add.id) || conf.learners.includes(add.id);
    if (isMember && recorded !== add.address) {
      throw new HttpError(409, HttpErrorCode.RQ_CONFLICT, `"${add.id}" is already a member at ${recorded ?? "an unknown address"}; to move it, add a new node and remove this one`);
    }
    if (conf.voters.includes(add.id)) return; // already done: adding is idempotent
    if (!conf.learners.includes(add.id)) {
      if (core.state.memberAddresses.get(add.id) !== add.address) await core.propose({ t: "memberAddress", id: add.id, address: add.address });
      this.#propose({ type: "addLearner", nodeId: add.id });
      await this.#waitUntil(APPLY_TIMEOUT_MS, () => core.status().confState.learners.includes(add.id), `the addition of learner ${add.id} to apply`);
      logger.info({ member: add.id, address: add.address }, "learner added; waiting for it to catch up");
    }
    for (let round = 0; round < 2; round++) {
      const commit = core.status().commit;
      await this.#waitUntil(
        add.timeoutMs,
        () => {
          const p = core.status().progress?.[add.id];
          return p !== undefined && p.match >= commit && p.state === "replicate";
        },
        `learner ${add.id} to catch up`,
        () => {
          const p = core.status().progress?.[add.id];
          return `"${add.id}" is a learner that has not caught up (it holds the log up to ${p?.match ?? 0} of ${commit}): check that it runs at ${add.address} with the cluster secret; retrying the add resumes here`;
        },
      );
    }
    const status = core.status();
    this.#checkQuorum(status, [...status.confState.voters, add.id], new Set([add.id]), `promoting ${add.id}`);
    this.#propose({ type: "promote", nodeId: add.id });
    await this.#waitUntil(APPLY_TIMEOUT_MS, () => core.status().confState.voters.includes(add.id), `the promotion of ${add.id} to apply`);
    logger.info({ member: add.id }, "learner caught up and promoted to voter");
  }

  async remove(id: NodeId): Promise<void> {
    const { core, logger } = this.#o;
    const status = core.status();
    const { voters, learners } = status.confState;
    if (!voters.includes(id) && !learners.includes(id)) {
      throw new HttpError(404, HttpErrorCode.RQ_NOT_FOUND, `"${id}" is not a member (members: ${[...voters, ...learners].join(", ")})`);
    }
    if (voters.includes(id)) {
      const remaining = voters.filter((v) => v !== id);
      if (remaining.length === 0) throw new HttpError(409, HttpErrorCode.RQ_QUORUM, "cannot remove the last voter");
      this.#checkQuorum(status, remaining, new Set(), `removing ${id}`);
    }
    this.#propose({ type: "remove", nodeId: id });
    await this.#waitUntil(APPLY_TIMEOUT_MS, () => {
      const conf = core.status().confState;
      return !conf.voters.includes(id) && !conf.learners.includes(id);
    }, `the removal of ${id} to apply`);
    logger.info({ member: id }, "member removed");
  }

  /**
   * Hands leadership over (core.handOver: to the most caught-up voter) before this leader removes itself; resolves
   * with the new leader. Refused first if the other voters could not make a quorum without this one.
   */
  async handOver(leaving: NodeId): Promise<NodeId> {
    const { core } = this.#o;
    const status = core.status();
    const others = status.confState.voters.filter((v) => v !== leaving);
    if (others.length === 0) throw new HttpError(409, HttpErrorCode.RQ_QUORUM, "cannot remove the last voter");
    this.#checkQuorum(status, others, new Set(), `removing ${leaving}`);
    const heir = await core.handOver(APPLY_TIMEOUT_MS);
    if (heir === null || heir === leaving) {
      throw new HttpError(503, ErrorCode.RQ_UNAVAILABLE, `leadership could not be handed over in time before removing ${leaving}; retry`);
    }
    return heir;
  }

  /**
   * Refuses a change after which the reachable, in-sync voters (this leader counts; `assumeHealthy` too) would not
   * make a majority of `voters`: the cluster would stop granting until a node came back.
   */
  #checkQuorum(status: Status, voters: readonly NodeId[], assumeHealthy: ReadonlySet<NodeId>, what: string): void {
    const healthy = voters.filter((v) => assumeHealthy.has(v) || this.#isHealthy(status, v));
    const quorum = Math.floor(voters.length / 2) + 1;
    if (healthy.length < quorum) {
      const down = voters.filter((v) => !healthy.includes(v));
      throw new HttpError(
        409,
        HttpErrorCode.RQ_QUORUM,
        `${what} would leave ${healthy.length} reachable voter(s) of ${voters.length} (a quorum is ${quorum}; not reachable or behind: ${down.join(", ")}): bring them back first`,
      );
    }
  }

  /** This leader itself, or a voter whose link is up and that takes appends as they come (Raft's `replicate` state). */
  #isHealthy(status: Status, id: NodeId): boolean {
    if (id === status.id) return true;
    const p = status.progress?.[id];
    return p !== undefined && p.state === "replicate" && (this.#o.peerConnected?.(id) ?? true);
  }

  #propose(change: ConfChange): void {
    accepted(this.#o.core.proposeConfChange(change));
  }

  /** Polls `done` every tick while this node stays the leader; throws 503 if leadership moves, 504 on timeout. */
  async #waitUntil(timeoutMs: number, done: () => boolean, what: string, timeoutMessage?: () => string): Promise<void> {
    const { core, env, everyMs } = this.#o;
    const deadline = env.monotonicNow() + timeoutMs;
    for (;;) {
      if (done()) return;
      if (!core.isLeader) {
        throw new HttpError(503, ErrorCode.RQ_UNAVAILABLE, `leadership moved while waiting for ${what}; check \`ratequeue members list\` and retry`);
      }
      if (env.monotonicNow() > deadline) throw new HttpError(504, ErrorCode.RQ_TIMEOUT, timeoutMessage?.() ?? `timed out waiting for ${what}`);
      await new Promise<void>((resolve) => env.setTimer(resolve, everyMs));
    }
  }
}

function accepted(result: ProposeResult): void {
  if (result.outcome === "accepted") return;
  if (result.outcome === "forwarded") throw new HttpError(503, ErrorCode.RQ_UNAVAILABLE, "this node lost leadership; retry");
  const code = result.code === "CONF_CHANGE_PENDING" ? HttpErrorCode.RQ_CHANGE_IN_PROGRESS : result.code === "NODE_ID_REMOVED" ? HttpErrorCode.RQ_CONFLICT : ErrorCode.RQ_UNAVAILABLE;
  const status = code === ErrorCode.RQ_UNAVAILABLE ? 503 : 409;
  throw new HttpError(status, code, `Raft refused the change (${result.code}): ${result.message}`);
}
