import { DEFAULT_PRIORITY } from "@ratequeue/limiter";
import type { Acquire } from "@ratequeue/protocol";
import { ErrorCode } from "@ratequeue/protocol/codes";
import { acquireRefusal, canSee, type KeyScope, type KeyTable, type StoredKey } from "./keys.js";

/**
 * Key checking, written once for every door a key opens: a client's hello (`session`), the admin API (`admin`),
 * and the readers of `/metrics` and the dashboard (`read`). The key table is the only authority, admin keys
 * included (the bootstrap --admin-key is seeded into it).
 */
export type KeyUse = "session" | "admin" | "read";

export type KeyCheck =
  | { readonly ok: true; readonly key: StoredKey }
  | {
      readonly ok: false;
      /** RQ_UNAUTHORIZED: no such key (unknown or revoked); RQ_FORBIDDEN: a key whose scope does not cover `use`. */
      readonly code: typeof ErrorCode.RQ_UNAUTHORIZED | typeof ErrorCode.RQ_FORBIDDEN;
      readonly message: string;
      /** The key, when there is one (for logs). */
      readonly key: StoredKey | null;
    };

export const UNKNOWN_KEY_MESSAGE = "unknown or revoked API key";

/** Whether `secret` is a key that may be used for `use`, and if not, the refusal to answer with. */
export function checkKey(keys: KeyTable, secret: string, use: KeyUse): KeyCheck {
  const key = keys.verify(secret);
  if (key === null) return { ok: false, code: ErrorCode.RQ_UNAUTHORIZED, message: UNKNOWN_KEY_MESSAGE, key: null };
  const refusal = scopeRefusal(key.scope, use);
  return refusal === null ? { ok: true, key } : { ok: false, code: ErrorCode.RQ_FORBIDDEN, message: refusal, key };
}

/** Why a key of `scope` may not be used for `use`, or null. */
function scopeRefusal(scope: KeyScope, use: KeyUse): string | null {
  switch (use) {
    case "session":
      return scope === "metrics" ? "this key may read metrics only; it cannot open a session" : null;
    case "admin":
      if (scope === "admin") return null;
      return scope === "metrics" ? "this key may read metrics, not administer" : "this key may acquire but not administer";
    case "read":
      return null;
  }
}

/** Which resources a key may read in `/metrics` and the dashboard: every one, or those its scope covers. */
export function readAccess(scope: KeyScope): "all" | ((resource: string) => boolean) {
  return scope === "admin" || scope === "metrics" ? "all" : (resource) => canSee(scope, resource);
}

/**
 * What a dashboard viewer with `secret` may see: everything an admin may ("admin"), the resources its key may
 * read, or nothing (null: no such key).
 */
export function viewerAccess(keys: KeyTable, secret: string): "admin" | { readonly canRead: (resource: string) => boolean } | null {
  const check = checkKey(keys, secret, "read");
  if (!check.ok) return null;
  const scope = check.key.scope;
  return scope === "admin" ? "admin" : { canRead: (resource) => canSee(scope, resource) };
}

/**
 * The priority and lane to propose for an acquire under a key's scope, or why the scope forbids it. A bounded key's
 * omitted priority becomes min(default, priorityMax) and its omitted lane the resource's default lane (from
 * `defaultLane`), named explicitly so the limiter applies exactly what was checked.
 */
export function scopedAcquire(
  scope: KeyScope,
  m: Pick<Acquire, "resource" | "priority" | "lane" | "load">,
  defaultLane: (resource: string) => string | null,
): { priority?: number; lane?: string } | string {
  if (typeof scope === "string" || (scope.priorityMax === undefined && scope.lanes === undefined && scope.loadMax === undefined)) {
    return { ...(m.priority === undefined ? {} : { priority: m.priority }), ...(m.lane === undefined ? {} : { lane: m.lane }) };
  }
  const priority = m.priority ?? Math.min(DEFAULT_PRIORITY, scope.priorityMax ?? DEFAULT_PRIORITY);
  let lane = m.lane ?? null;
  if (lane === null && scope.lanes !== undefined) lane = defaultLane(m.resource);
  const refusal = acquireRefusal(scope, { resource: m.resource, priority, lane, load: m.load });
  if (refusal !== null) return refusal;
  return { priority, ...(lane === null ? {} : { lane }) };
}
