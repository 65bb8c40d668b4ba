import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../http/json.js";
import { allow, forward, isCaughtUpLeader, requireAdmin, type HttpContext } from "../http/routes.js";
import { makeBackup } from "./backup-file.js";

export const BACKUP_PATH = "/v1/backup";

/** How long the read point may take to be confirmed (one heartbeat round to a majority) before the request fails. */
const READ_TIMEOUT_MS = 10_000;

/**
 * `GET /v1/backup` (admin): the replicated state as a backup file (backup-file.ts). Served by the leader (a
 * follower forwards) at a linearizable read point: a ReadIndex round confirms it still leads, and the state is
 * taken once everything committed before the request has applied, so every write acknowledged before the request
 * is in the backup. The state is serialised synchronously: it is one consistent cut of the log.
 */
export async function handleBackup(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
  if (!(await requireAdmin(ctx, req, res))) return;
  allow(method, ["GET"]);
  const { core } = ctx;
  if (!(await isCaughtUpLeader(core))) return forward(ctx, req, res, null);
  await core.readBarrier(READ_TIMEOUT_MS);
  const backup = makeBackup({ state: core.state, node: core.id, index: core.appliedIndex, term: core.status().term, createdAt: new Date() });
  ctx.logger.info({ index: backup.index, bytes: backup.state.length, counts: backup.counts }, "backup served");
  sendJson(res, 200, backup);
}
