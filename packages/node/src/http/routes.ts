import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ErrorCode, HttpErrorCode } from "@ratequeue/protocol/codes";
import { bearerSecret, type StatusBody, type StatusPeer } from "@ratequeue/protocol/http";
import { isValidName, type ResourceView } from "@ratequeue/limiter";
import type { OpResult } from "../core/cluster-state.js";
import { NotLeaderError, ProposalLostError, checkResourceBody, type NodeCore } from "../core/node-core.js";

import { LAST_ADMIN_KEY_MESSAGE } from "../core/cluster-state.js";
import { checkKey, readAccess, type KeyCheck } from "../state/auth.js";
import { hashSecret, newKeySecret, validateKeyBody } from "../state/keys.js";
import { BACKUP_PATH, handleBackup } from "../backup/backup-route.js";
import { handleMembers, MEMBERS_PATH } from "../membership/member-routes.js";
import type { MemberChanges } from "../membership/changes.js";
import type { Membership } from "../membership/membership.js";
import type { ClockOffset } from "../peer/clock-offset.js";
import type { GrantLog } from "./grant-log.js";
import type { DeliveryStats } from "./delivery-stats.js";
import { HttpError, readJsonBody, sendError, sendJson } from "./json.js";
import { filterMetrics } from "./metrics.js";

export interface HttpContext {
  readonly core: NodeCore;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Serve every resource's series in /metrics without a key (--public-metrics); otherwise a key decides. */
  readonly publicMetrics?: boolean;
  /** Every node's HTTP base URL (http:// or https://), to forward admin writes to the leader. */
  readonly httpUrls: ReadonlyMap<string, string>;
  /** Client connections open on this node. */
  readonly connections: () => number;
  /** The web dashboard, if served. */
  readonly dashboard?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Recent applied grant history, for GET /v1/debug/grants. */
  readonly grantLog?: GrantLog;
  /** Whether this node's link to a peer is open now (shown in /v1/status). */
  readonly peerConnected?: (id: string) => boolean;
  /** This node's estimate of a peer's wall-clock offset (peer minus this node), or null (shown in /v1/status). */
  readonly peerClock?: (id: string) => ClockOffset | null;
  /** Grant-to-send delays clients reported to this node (summed up in /v1/status). */
  readonly delivery?: DeliveryStats;
  /** Members and their addresses, for /v1/members. */
  readonly membership?: Membership;
  /** The membership procedures of this node (`/v1/members` add, remove, hand-over). */
  readonly memberChanges?: MemberChanges;
  /** The cluster id this node holds (membership/cluster-id.ts); absent: the replicated one. */
  readonly clusterId?: () => string | null;
}

const FORWARDED_HEADER = "x-ratequeue-forwarded";
const READ_ONLY_PATHS = new Set(["/healthz", "/readyz", "/metrics", "/v1/status"]);
const RESOURCE_PATH = /^\/v1\/resources\/([^/]+)$/;
const KEY_PATH = /^\/v1\/keys\/([^/]+)$/;

/** Routes one HTTP request. Every failure is a JSON error with a stable code; nothing throws out of here. */
export async function handleHttp(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    await route(ctx, req, res);
  } catch (err) {
    if (err instanceof HttpError) return sendError(res, err);
    if (err instanceof NotLeaderError) return sendError(res, new HttpError(503, ErrorCode.RQ_UNAVAILABLE, err.message));
    if (err instanceof ProposalLostError) return sendError(res, new HttpError(503, ErrorCode.RQ_UNAVAILABLE, err.message));
    ctx.logger.error({ err, method: req.method, url: req.url }, "HTTP handler failed");
    if (!res.headersSent) sendError(res, new HttpError(500, HttpErrorCode.RQ_INTERNAL, "internal error (see the node's log)"));
    else res.destroy();
  }
}

async function route(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://node");
  const path = url.pathname;
  const method = req.method ?? "GET";
  const { core } = ctx;

  // The read-only endpoints answer GET (and HEAD); anything else there is a client mistake, not a read.
  if (READ_ONLY_PATHS.has(path)) allow(method, ["GET", "HEAD"]);
  if (path === "/healthz") {
    const fatal = core.fatalError;
    return fatal === null ? sendJson(res, 200, { ok: true }) : sendJson(res, 500, { ok: false, error: fatal.message });
  }
  if (path === "/readyz") {
    const ready = core.isReady();
    const s = core.status();
    return sendJson(res, ready ? 200 : 503, { ready, leader: s.leader, commitIndex: s.commit, appliedIndex: s.applied });
  }
  if (path === "/metrics") {
    // Node-level series for anyone (like /v1/status); resource and lane names only for a key that may see them.
    const visible = metricsAccess(ctx, req);
    const text = await ctx.registry.metrics();
    res.writeHead(200, { "content-type": ctx.registry.contentType });
    return void res.end(visible === "all" ? text : filterMetrics(text, visible));
  }
  if (path === "/v1/status") return sendJson(res, 200, statusJson(ctx));
  if (ctx.dashboard?.(req, res) === true) return;

  if (path === "/v1/debug/grants" && ctx.grantLog !== undefined) {
    // The applied grant history (admin only): what an external checker compares across nodes. This node's own
    // history, so a key it does not know yet is not sent on to the leader.
    await requireAdmin(ctx, req, res, { forwardUnknown: false });
    allow(method, ["GET"]);
    const since = intParam(url, "since", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = intParam(url, "limit", 10_000, 1, 100_000);
    const { dropped, records } = ctx.grantLog.read(since, limit);
    return sendJson(res, 200, { node: core.id, appliedIndex: core.status().applied, dropped, records });
  }

  if (MEMBERS_PATH.test(path) && ctx.membership !== undefined && ctx.memberChanges !== undefined) {
    return handleMembers(ctx, ctx.membership, ctx.memberChanges, req, res, method, path);
  }
  if (path === BACKUP_PATH) return handleBackup(ctx, req, res, method);

  if (path === "/v1/resources" || RESOURCE_PATH.test(path) || path === "/v1/keys" || KEY_PATH.test(path)) {
    if (!(await requireAdmin(ctx, req, res))) return;
    if (path === "/v1/resources") {
      allow(method, ["GET"]);
      const limiter = core.state.limiter;
      const views = limiter.resourceNames().map((n) => limiter.resource(n)).filter((v): v is ResourceView => v !== null);
      return sendJson(res, 200, { resources: views.map(viewJson) });
    }
    const resourceMatch = RESOURCE_PATH.exec(path);
    if (resourceMatch !== null) return resource(ctx, req, res, method, decodeSegment(resourceMatch[1]!));
    if (path === "/v1/keys") {
      allow(method, ["GET", "POST"]);
      if (method === "GET") {
        const keys = core.state.keys.list().map(({ id, name, scope, createdAt }) => ({ id, name, scope, createdAt }));
        return sendJson(res, 200, { keys });
      }
      const body = await readJsonBody(req);
      const checked = validateKeyBody(body);
      if (!checked.ok) throw new HttpError(400, ErrorCode.RQ_INVALID, "invalid key body", checked.errors);
      if (!(await isCaughtUpLeader(core))) return forward(ctx, req, res, body);
      const { id, secret } = newKeySecret();
      await core.propose({ t: "keyAdd", key: { id, name: checked.name, scope: checked.scope, hash: hashSecret(secret), createdAt: 0 } });
      ctx.logger.info({ key: id, name: checked.name }, "API key created");
      return sendJson(res, 201, { id, name: checked.name, scope: checked.scope, secret });
    }
    const keyMatch = KEY_PATH.exec(path)!;
    allow(method, ["DELETE"]);
    const id = decodeSegment(keyMatch[1]!);
    // The leader decides whether the key exists: a follower may not have applied its creation yet.
    if (!(await isCaughtUpLeader(core))) return forward(ctx, req, res, null);
    const key = core.state.keys.get(id);
    if (key === undefined) throw new HttpError(404, HttpErrorCode.RQ_NOT_FOUND, `no key with id "${id}"`);
    if (key.scope === "admin" && core.state.keys.adminCount === 1) throw new HttpError(409, HttpErrorCode.RQ_LAST_ADMIN_KEY, LAST_ADMIN_KEY_MESSAGE);
    const removed = await core.propose({ t: "keyRemove", id });
    // Two revocations racing for the last two admin keys: the state machine refuses the second.
    if (removed.effects.some((e) => e.type === "error")) throw new HttpError(409, HttpErrorCode.RQ_LAST_ADMIN_KEY, LAST_ADMIN_KEY_MESSAGE);
    const ended = removed.effects.filter((e) => e.type === "sessionEnded").length;
    ctx.logger.info({ key: id, name: key.name, sessionsEnded: ended }, "API key revoked");
    res.writeHead(204);
    return void res.end();
  }
  throw new HttpError(404, HttpErrorCode.RQ_NOT_FOUND, `no route for ${method} ${path}`);
}

async function resource(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  name: string,
): Promise<void> {
  const { core } = ctx;
  allow(method, ["GET", "PUT", "DELETE"]);
  if (!isValidName(name)) {
    throw new HttpError(400, ErrorCode.RQ_INVALID, "a resource name is 1 to 128 characters of A-Z a-z 0-9 . _ : / -");
  }
  if (method === "GET") {
    const view = core.state.limiter.resource(name);
    if (view === null) throw new HttpError(404, ErrorCode.RQ_UNKNOWN_RESOURCE, `no resource named "${name}"`);
    return sendJson(res, 200, viewJson(view));
  }
  if (method === "PUT") {
    const body = await readJsonBody(req);
    const checked = checkResourceBody(body);
    if (!checked.ok) throw new HttpError(400, ErrorCode.RQ_INVALID, "invalid resource body", checked.details);
    if (!(await isCaughtUpLeader(core))) return forward(ctx, req, res, body);
    const r = await core.propose({ t: "limiter", cmd: { type: "putResource", name, config: body } });
    failOnError(r);
    const created = r.effects.some((e) => e.type === "resourcePut" && e.created);
    ctx.logger.info({ resource: name, created }, created ? "resource created" : "resource replaced");
    const view = core.state.limiter.resource(name);
    return sendJson(res, created ? 201 : 200, view === null ? { name } : viewJson(view));
  }
  // The leader decides whether the resource exists: a follower may not have applied its creation yet.
  if (!(await isCaughtUpLeader(core))) return forward(ctx, req, res, null);
  if (core.state.limiter.resource(name) === null) throw new HttpError(404, ErrorCode.RQ_UNKNOWN_RESOURCE, `no resource named "${name}"`);
  const r = await core.propose({ t: "limiter", cmd: { type: "deleteResource", name } });
  failOnError(r);
  ctx.logger.info({ resource: name }, "resource deleted");
  res.writeHead(204);
  res.end();
}

/**
 * True once this node is the leader and has applied what earlier leaders committed (so its state has every key
 * and resource the cluster agreed on); false, at once or after that wait, if it is not the leader.
 */
export async function isCaughtUpLeader(core: NodeCore): Promise<boolean> {
  await new Promise<void>((resolve) => core.whenCaughtUp(resolve));
  return core.isLeader;
}

function failOnError(r: OpResult): void {
  const err = r.effects.find((e) => e.type === "error");
  if (err?.type !== "error") return;
  const status = err.code === ErrorCode.RQ_UNKNOWN_RESOURCE ? 404 : 400;
  throw new HttpError(status, err.code, err.message, err.details?.map((d) => (d.path === "" ? d.message : `${d.path}: ${d.message}`)));
}

/**
 * Lets an admin request through (true), answers it (false), or throws its refusal. The key table is the only
 * authority. A key this node does not know may be one the cluster created a moment ago that this follower has not
 * applied yet (or the bootstrap admin key of a young cluster): unless `forwardUnknown` is false, the request goes
 * to the leader, which decides once it has applied everything committed before it led.
 */
export async function requireAdmin(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  options: { forwardUnknown?: boolean } = {},
): Promise<boolean> {
  const secret = bearer(req, "send the admin key as Authorization: Bearer <key>");
  let check = checkKey(ctx.core.state.keys, secret, "admin");
  if (!check.ok && check.key === null) {
    if (await isCaughtUpLeader(ctx.core)) check = checkKey(ctx.core.state.keys, secret, "admin");
    else if (options.forwardUnknown !== false && req.headers[FORWARDED_HEADER] === undefined && ctx.core.leader !== null) {
      const body = req.method === "POST" || req.method === "PUT" ? await readJsonBody(req) : null;
      await forward(ctx, req, res, body);
      return false;
    }
  }
  if (!check.ok) throw refusal(check);
  return true;
}

/** The HTTP answer to a refused key: 401 for no such key, 403 for a key whose scope does not cover the request. */
function refusal(check: Extract<KeyCheck, { ok: false }>): HttpError {
  return new HttpError(check.code === ErrorCode.RQ_UNAUTHORIZED ? 401 : 403, check.code, check.message);
}

/** The secret of an `Authorization: Bearer <key>` header; a missing or malformed header is a 401 saying `hint`. */
function bearer(req: IncomingMessage, hint: string): string {
  const secret = bearerSecret(req.headers.authorization);
  if (secret === null) throw new HttpError(401, ErrorCode.RQ_UNAUTHORIZED, hint);
  return secret;
}

/**
 * Which resources a /metrics reader may see: all of them for an admin or metrics key (or anyone, with
 * --public-metrics); an acquire key's resources; none without a key. An unknown key is refused, not served less.
 */
function metricsAccess(ctx: HttpContext, req: IncomingMessage): "all" | ((resource: string) => boolean) {
  if (req.headers.authorization === undefined) return ctx.publicMetrics === true ? "all" : () => false;
  const check = checkKey(ctx.core.state.keys, bearer(req, "send a key as Authorization: Bearer <key>, or no header"), "read");
  if (!check.ok) throw refusal(check);
  return readAccess(check.key.scope);
}

export function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new HttpError(405, ErrorCode.RQ_INVALID, `method ${method} not allowed here (allowed: ${methods.join(", ")})`);
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, ErrorCode.RQ_INVALID, `${name} must be an integer from ${min} to ${max}`);
  return n;
}

export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, ErrorCode.RQ_INVALID, "malformed percent-encoding in the path");
  }
}

/** Admin writes on a follower go to the leader's HTTP endpoint; the leader's answer is relayed as is. */
export async function forward(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  /** Forward even a request that was itself forwarded here (this leader just handed over to the new one). */
  again = false,
): Promise<void> {
  const leader = ctx.core.leader;
  const base = leader === null ? undefined : ctx.httpUrls.get(leader);
  if ((req.headers[FORWARDED_HEADER] !== undefined && !again) || base === undefined) {
    throw new HttpError(503, ErrorCode.RQ_UNAVAILABLE, "no leader is reachable right now; retry shortly");
  }
  const target = new URL(req.url ?? "/", base);
  const payload = body === null ? undefined : JSON.stringify(body);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  await new Promise<void>((resolve, reject) => {
    const out = send(
      target,
      {
        method: req.method,
        headers: {
          ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
          ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
          [FORWARDED_HEADER]: ctx.core.id,
        },
        timeout: 15_000,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, {
          ...(answer.headers["content-type"] === undefined ? {} : { "content-type": answer.headers["content-type"] }),
        });
        answer.pipe(res);
        answer.on("end", resolve);
        answer.on("error", reject);
      },
    );
    out.on("timeout", () => out.destroy(new Error("leader did not answer in time")));
    out.on("error", () => reject(new HttpError(503, ErrorCode.RQ_UNAVAILABLE, "the leader could not be reached; retry shortly")));
    out.end(payload);
  });
}

function statusJson(ctx: HttpContext): StatusBody {
  const s = ctx.core.status();
  const peers = [...s.confState.voters.map((id) => ({ id, voter: true })), ...s.confState.learners.map((id) => ({ id, voter: false }))].map(
    (p): StatusPeer => {
      const progress = s.progress?.[p.id];
      return {
        ...p,
        url: ctx.httpUrls.get(p.id) ?? null,
        ...(p.id === s.id || ctx.peerConnected === undefined ? {} : { connected: ctx.peerConnected(p.id) }),
        ...(p.id === s.id || ctx.peerClock === undefined ? {} : clockJson(ctx.peerClock(p.id))),
        ...(progress === undefined ? {} : { match: progress.match, lag: Math.max(0, s.lastIndex - progress.match), state: progress.state }),
      };
    },
  );
  return {
    id: s.id,
    clusterId: ctx.clusterId?.() ?? ctx.core.state.clusterId,
    role: s.role === "precandidate" ? "candidate" : s.role,
    term: s.term,
    leader: s.leader,
    commitIndex: s.commit,
    appliedIndex: s.applied,
    lastIndex: s.lastIndex,
    logTime: ctx.core.logTime,
    sessions: ctx.core.state.limiter.sessionCount(),
    clientConnections: ctx.connections(),
    ...(ctx.delivery === undefined ? {} : { grantDelivery: ctx.delivery.summary() }),
    peers,
  };
}

/** A peer's clock offset as /v1/status shows it: whole ms, null before the first estimate (or after a long silence). */
function clockJson(clock: ClockOffset | null): { clockOffsetMs: number | null; clockRttMs: number | null } {
  if (clock === null) return { clockOffsetMs: null, clockRttMs: null };
  return { clockOffsetMs: Math.round(clock.offsetMs), clockRttMs: Math.round(clock.rttMs * 10) / 10 };
}

function viewJson(v: ResourceView): Record<string, unknown> {
  return {
    name: v.name,
    limits: v.config.limits,
    lanes: Object.fromEntries(v.config.lanes.map((l) => [l.name, { weight: l.weight }])),
    lanePolicy: v.config.lanePolicy,
    usage: v.usage.map((u) => ({ ...u.config, used: u.used })),
    leasesHeld: v.leasesHeld,
    queued: v.queued,
    cooldownUntil: v.cooldownUntil,
  };
}

