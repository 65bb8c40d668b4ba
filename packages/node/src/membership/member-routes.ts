import type { IncomingMessage, ServerResponse } from "node:http";
import type { NodeId, ProposeResult, Status } from "@ratequeue/raft";
import { ErrorCode, HttpErrorCode } from "@ratequeue/protocol/codes";
import { HttpError, readJsonBody, sendJson } from "../http/json.js";
import { allow, decodeSegment, forward, isCaughtUpLeader, requireAdmin, type HttpContext } from "../http/routes.js";
import { CLUSTER_MISMATCH, isClusterId } from "../peer/handshake.js";
import type { Membership } from "./membership.js";

export const MEMBERS_PATH = /^\/v1\/members(?:\/([^/]+))?$/;

const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
/** How long an added learner may take to catch up before the request gives up (it stays a learner; retry resumes). */
const CATCH_UP_TIMEOUT_MS_DEFAULT = 60_000;
const CATCH_UP_TIMEOUT_MS_MAX = 3_600_000;
/** How long a conf change may take to apply, or a hand-over to end, before the request gives up. */
const APPLY_TIMEOUT_MS = 10_000;

/** One membership change at a time on this node (Raft also refuses a second pending change). */
let changing: string | null = null;

/**
 * `/v1/members` (admin):
 * - `GET /v1/members`: the membership in force, with each member's address and, on the leader, replication.
 * - `POST /v1/members { id, address, timeoutMs?, clusterId? }`: adds `id` as a learner, waits until it has caught up
 *   with the log, then promotes it to voter. Retrying on a member that is still a learner resumes at the catch-up.
 *   A joining node sends the cluster id it holds: one of another cluster is refused (409 RQ_CLUSTER_MISMATCH).
 * - `DELETE /v1/members/{id}`: removes a member; the leader hands leadership over before removing itself.
 * A change is refused while another is in progress, and when it would leave too few reachable voters for a quorum.
 */
export async function handleMembers(
  ctx: HttpContext,
  membership: Membership,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  path: string,
): Promise<void> {
  if (!(await requireAdmin(ctx, req, res))) return;
  const target = MEMBERS_PATH.exec(path)![1];
  if (target === undefined) {
    allow(method, ["GET", "POST"]);
    if (method === "GET") return sendJson(res, 200, listJson(ctx, membership));
    const body = await readJsonBody(req);
    const add = checkAddBody(body);
    if (!(await isCaughtUpLeader(ctx.core))) return forward(ctx, req, res, body);
    await exclusive(`add ${add.id}`, () => addMember(ctx, membership, add));
    return sendJson(res, 200, listJson(ctx, membership));
  }
  allow(method, ["DELETE"]);
  const id = decodeSegment(target);
  if (!(await isCaughtUpLeader(ctx.core))) return forward(ctx, req, res, null);
  if (id === ctx.core.id) {
    const heir = await exclusive(`hand over before removing ${id}`, () => handOver(ctx, id));
    ctx.logger.info({ heir }, "leadership handed over before removing this node; forwarding the removal");
    return forward(ctx, req, res, null, true);
  }
  await exclusive(`remove ${id}`, () => removeMember(ctx, membership, id));
  return sendJson(res, 200, listJson(ctx, membership));
}

interface AddRequest {
  readonly id: NodeId;
  readonly address: string;
  readonly timeoutMs: number;
  /** The cluster id the joining node holds, or null (an operator's `members add` sends none). */
  readonly clusterId: string | null;
}

function checkAddBody(body: unknown): AddRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, ErrorCode.RQ_INVALID, "body must be a JSON object");
  const { id, address, timeoutMs, clusterId, ...rest } = body as Record<string, unknown>;
  const problems = Object.keys(rest).map((k) => `unknown field "${k}" (known: id, address, timeoutMs, clusterId)`);
  if (clusterId !== undefined && !isClusterId(clusterId)) problems.push("clusterId must be 16 lowercase hex digits (as /v1/status shows it)");
  if (typeof id !== "string" || !NODE_ID.test(id)) problems.push("id must be 1-64 of A-Z a-z 0-9 _ -");
  const m = typeof address === "string" ? ADDRESS.exec(address) : null;
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65_535) problems.push("address must be host:port, where the node serves peers and clients (e.g. 10.0.0.4:7401)");
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || (timeoutMs as number) < 1 || (timeoutMs as number) > CATCH_UP_TIMEOUT_MS_MAX)) {
    problems.push(`timeoutMs must be an integer from 1 to ${CATCH_UP_TIMEOUT_MS_MAX}`);
  }
  if (problems.length > 0) throw new HttpError(400, ErrorCode.RQ_INVALID, "invalid member body", problems);
  return {
    id: id as string,
    address: address as string,
    timeoutMs: (timeoutMs as number | undefined) ?? CATCH_UP_TIMEOUT_MS_DEFAULT,
    clusterId: (clusterId as string | undefined) ?? null,
  };
}

async function exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
  if (changing !== null) throw new HttpError(409, HttpErrorCode.RQ_CHANGE_IN_PROGRESS, `a membership change is in progress (${changing}); retry once it ends`);
  changing = what;
  try {
    return await fn();
  } finally {
    changing = null;
  }
}

async function addMember(ctx: HttpContext, membership: Membership, add: AddRequest): Promise<void> {
  const { core, logger } = ctx;
  const conf = core.status().confState;
  const own = core.state.clusterId;
  if (add.clusterId !== null && own !== null && add.clusterId !== own) {
    const message = `${CLUSTER_MISMATCH}: "${add.id}" holds data of cluster ${add.clusterId}, this is cluster ${own}: start it with an empty data folder`;
    logger.error({ code: CLUSTER_MISMATCH, member: add.id, clusterId: own, joinerClusterId: add.clusterId }, message);
    throw new HttpError(409, HttpErrorCode.RQ_CLUSTER_MISMATCH, message);
  }
  if (conf.removed.includes(add.id)) {
    throw new HttpError(409, HttpErrorCode.RQ_CONFLICT, `"${add.id}" was removed from this cluster, and ids are never reused: give the new node a new id`);
  }
  const recorded = membership.addressOf(add.id);
  const isMember = conf.voters.includes(add.id) || conf.learners.includes(add.id);
  if (isMember && recorded !== add.address) {
    throw new HttpError(409, HttpErrorCode.RQ_CONFLICT, `"${add.id}" is already a member at ${recorded ?? "an unknown address"}; to move it, add a new node and remove this one`);
  }
  if (conf.voters.includes(add.id)) return; // already done: adding is idempotent
  if (!conf.learners.includes(add.id)) {
    if (core.state.memberAddresses.get(add.id) !== add.address) await core.propose({ t: "memberAddress", id: add.id, address: add.address });
    accepted(core.proposeConfChange({ type: "addLearner", nodeId: add.id }));
    await waitUntil(ctx, APPLY_TIMEOUT_MS, () => core.status().confState.learners.includes(add.id), `the addition of learner ${add.id} to apply`);
    logger.info({ member: add.id, address: add.address }, "learner added; waiting for it to catch up");
  }
  // Caught up: its log holds everything committed when we started looking, and then everything committed since.
  for (let round = 0; round < 2; round++) {
    const commit = core.status().commit;
    await waitUntil(
      ctx,
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
  const voters = [...status.confState.voters, add.id];
  checkQuorum(ctx, status, voters, new Set([add.id]), `promoting ${add.id}`);
  accepted(core.proposeConfChange({ type: "promote", nodeId: add.id }));
  await waitUntil(ctx, APPLY_TIMEOUT_MS, () => core.status().confState.voters.includes(add.id), `the promotion of ${add.id} to apply`);
  logger.info({ member: add.id }, "learner caught up and promoted to voter");
}

async function removeMember(ctx: HttpContext, membership: Membership, id: NodeId): Promise<void> {
  const { core, logger } = ctx;
  const status = core.status();
  const { voters, learners } = status.confState;
  if (!voters.includes(id) && !learners.includes(id)) throw new HttpError(404, HttpErrorCode.RQ_NOT_FOUND, `"${id}" is not a member (members: ${membership.members().join(", ")})`);
  if (voters.includes(id)) {
    const remaining = voters.filter((v) => v !== id);
    if (remaining.length === 0) throw new HttpError(409, HttpErrorCode.RQ_QUORUM, "cannot remove the last voter");
    checkQuorum(ctx, status, remaining, new Set(), `removing ${id}`);
  }
  accepted(core.proposeConfChange({ type: "remove", nodeId: id }));
  await waitUntil(ctx, APPLY_TIMEOUT_MS, () => !membership.members().includes(id), `the removal of ${id} to apply`);
  logger.info({ member: id }, "member removed");
}

/**
 * Hands leadership over (core.handOver: to the most caught-up voter) before this leader removes itself; resolves
 * with the new leader. Refused first if the other voters could not make a quorum without this one.
 */
async function handOver(ctx: HttpContext, leaving: NodeId): Promise<NodeId> {
  const { core } = ctx;
  const status = core.status();
  const others = status.confState.voters.filter((v) => v !== leaving);
  if (others.length === 0) throw new HttpError(409, HttpErrorCode.RQ_QUORUM, "cannot remove the last voter");
  checkQuorum(ctx, status, others, new Set(), `removing ${leaving}`);
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
function checkQuorum(ctx: HttpContext, status: Status, voters: readonly NodeId[], assumeHealthy: ReadonlySet<NodeId>, what: string): void {
  const healthy = voters.filter((v) => assumeHealthy.has(v) || isHealthy(ctx, status, v));
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
function isHealthy(ctx: HttpContext, status: Status, id: NodeId): boolean {
  if (id === status.id) return true;
  const p = status.progress?.[id];
  return p !== undefined && p.state === "replicate" && (ctx.peerConnected?.(id) ?? true);
}

function accepted(result: ProposeResult): void {
  if (result.outcome === "accepted") return;
  if (result.outcome === "forwarded") throw new HttpError(503, ErrorCode.RQ_UNAVAILABLE, "this node lost leadership; retry");
  const code = result.code === "CONF_CHANGE_PENDING" ? HttpErrorCode.RQ_CHANGE_IN_PROGRESS : result.code === "NODE_ID_REMOVED" ? HttpErrorCode.RQ_CONFLICT : ErrorCode.RQ_UNAVAILABLE;
  const status = code === ErrorCode.RQ_UNAVAILABLE ? 503 : 409;
  throw new HttpError(status, code, `Raft refused the change (${result.code}): ${result.message}`);
}

/** Polls `done` every tick while this node stays the leader; throws 503 if leadership moves, 504 on timeout. */
async function waitUntil(
  ctx: HttpContext,
  timeoutMs: number,
  done: () => boolean,
  what: string,
  timeoutMessage?: () => string,
  leadershipMayMove = false,
): Promise<void> {
  const everyMs = ctx.tickMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return;
    if (!leadershipMayMove && !ctx.core.isLeader) {
      throw new HttpError(503, ErrorCode.RQ_UNAVAILABLE, `leadership moved while waiting for ${what}; check \`ratequeue members list\` and retry`);
    }
    if (Date.now() > deadline) throw new HttpError(504, ErrorCode.RQ_TIMEOUT, timeoutMessage?.() ?? `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function listJson(ctx: HttpContext, membership: Membership): Record<string, unknown> {
  const status = ctx.core.status();
  const { voters, learners } = status.confState;
  const member = (id: NodeId, voter: boolean): Record<string, unknown> => {
    const p = status.progress?.[id];
    return {
      id,
      address: membership.addressOf(id),
      voter,
      ...(p === undefined ? {} : { match: p.match, lag: Math.max(0, status.lastIndex - p.match), state: p.state }),
      ...(id === status.id || ctx.peerConnected === undefined ? {} : { connected: ctx.peerConnected(id) }),
    };
  };
  return { leader: status.leader, members: [...voters.map((v) => member(v, true)), ...learners.map((l) => member(l, false))] };
}
