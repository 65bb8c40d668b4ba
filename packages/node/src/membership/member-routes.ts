import type { IncomingMessage, ServerResponse } from "node:http";
import type { NodeId } from "@ratequeue/raft";
import { ErrorCode, HttpErrorCode } from "@ratequeue/protocol/codes";
import { HttpError, readJsonBody, sendJson } from "../http/json.js";
import { allow, decodeSegment, forward, isCaughtUpLeader, requireAdmin, type HttpContext } from "../http/routes.js";
import { CLUSTER_MISMATCH, isClusterId } from "../peer/handshake.js";
import type { AddRequest, MemberChanges } from "./changes.js";
import type { Membership } from "./membership.js";

export const MEMBERS_PATH = /^\/v1\/members(?:\/([^/]+))?$/;

const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
/** How long an added learner may take to catch up before the request gives up (it stays a learner; retry resumes). */
const CATCH_UP_TIMEOUT_MS_DEFAULT = 60_000;
const CATCH_UP_TIMEOUT_MS_MAX = 3_600_000;

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
  changes: MemberChanges,
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
    checkClusterId(ctx, add);
    await changes.exclusive(`add ${add.id}`, () => changes.add(add));
    return sendJson(res, 200, listJson(ctx, membership));
  }
  allow(method, ["DELETE"]);
  const id = decodeSegment(target);
  if (!(await isCaughtUpLeader(ctx.core))) return forward(ctx, req, res, null);
  if (id === ctx.core.id) {
    const heir = await changes.exclusive(`hand over before removing ${id}`, () => changes.handOver(id));
    ctx.logger.info({ heir }, "leadership handed over before removing this node; forwarding the removal");
    return forward(ctx, req, res, null, true);
  }
  await changes.exclusive(`remove ${id}`, () => changes.remove(id));
  return sendJson(res, 200, listJson(ctx, membership));
}

interface AddBody extends AddRequest {
  /** The cluster id the joining node holds, or null (an operator's `members add` sends none). */
  readonly clusterId: string | null;
}

/** Refuses (409 RQ_CLUSTER_MISMATCH, naming both ids) a joiner that holds data of another cluster. */
function checkClusterId(ctx: HttpContext, add: AddBody): void {
  const own = ctx.core.state.clusterId;
  if (add.clusterId === null || own === null || add.clusterId === own) return;
  const message = `${CLUSTER_MISMATCH}: "${add.id}" holds data of cluster ${add.clusterId}, this is cluster ${own}: start it with an empty data folder`;
  ctx.logger.error({ code: CLUSTER_MISMATCH, member: add.id, clusterId: own, joinerClusterId: add.clusterId }, message);
  throw new HttpError(409, HttpErrorCode.RQ_CLUSTER_MISMATCH, message);
}

function checkAddBody(body: unknown): AddBody {
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
