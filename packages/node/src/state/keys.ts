import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * What a key may do: everything (`admin`), read `/metrics` and the dashboard for every resource and nothing else
 * (`metrics`, for Prometheus), or acquire on resources whose names match one of the patterns, within bounds.
 */
export type KeyScope = "admin" | "metrics" | AcquireScope;

/**
 * An acquire-only key. Every bound is optional; a request outside one is refused with RQ_FORBIDDEN by the node,
 * before anything reaches the log.
 */
export interface AcquireScope {
  /** Resource-name patterns (`*` matches any run of characters). */
  readonly acquire: readonly string[];
  /** Highest priority an acquire may ask for; an acquire that names none gets min(default 10, priorityMax). */
  readonly priorityMax?: number;
  /** Lanes it may use; an acquire that names none is checked against (and pinned to) the resource's default lane. */
  readonly lanes?: readonly string[];
  /** Longest session TTL a hello may ask for; a hello that names none gets min(node default, ttlMsMax). */
  readonly ttlMsMax?: number;
  /** Largest amount of one request in any load dimension. */
  readonly loadMax?: number;
}

/** A stored key: never the secret, only its SHA-256. */
export interface StoredKey {
  readonly id: string;
  readonly name: string;
  readonly scope: KeyScope;
  /** hex SHA-256 of the secret. */
  readonly hash: string;
  /** Leader stamp (ms) of the entry that created it. */
  readonly createdAt: number;
}

/** Secrets start with this, so they are easy to spot in logs and secret scanners. */
const SECRET_PREFIX = "rq_";
export const KEY_NAME_MAX = 128;
export const KEY_PATTERNS_MAX = 64;

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * The stored form of a key whose secret the operator chose (the bootstrap admin key, config-file keys): its id is
 * derived from the secret, so every node that holds the same secret proposes the same key.
 */
export function keyFromSecret(secret: string, name: string, scope: KeyScope): StoredKey {
  return { id: hashSecret(`id:${secret}`).slice(0, 16), name, scope, hash: hashSecret(secret), createdAt: 0 };
}

/** A new random secret (shown to the user once) and a new key id. */
export function newKeySecret(): { id: string; secret: string } {
  return { id: randomBytes(8).toString("hex"), secret: SECRET_PREFIX + randomBytes(24).toString("base64url") };
}

/**
 * Whether `resource` matches a scope pattern: `*` matches any run of
 * characters (including none); every other character matches itself.
 */
export function matchesPattern(pattern: string, resource: string): boolean {
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === resource;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!resource.startsWith(first) || resource.length < first.length + last.length || !resource.endsWith(last)) return false;
  let at = first.length;
  const end = resource.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = resource.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

export function canAcquire(scope: KeyScope, resource: string): boolean {
  if (scope === "metrics") return false;
  return scope === "admin" || scope.acquire.some((p) => matchesPattern(p, resource));
}

/**
 * Whether a key may see a resource's name and numbers (in `/metrics` and the dashboard): an admin or metrics key
 * sees every resource, an acquire key the resources it may acquire on.
 */
export function canSee(scope: KeyScope, resource: string): boolean {
  return scope === "admin" || scope === "metrics" || canAcquire(scope, resource);
}

/** What an acquire asks for, as far as a key's scope bounds it. `lane` is the lane it will use (null: no lanes). */
export interface ScopedAcquire {
  readonly resource: string;
  readonly priority: number;
  readonly lane: string | null;
  readonly load: number | Readonly<Record<string, number>> | undefined;
}

/** Why `scope` forbids this acquire, or null when it allows it. */
export function acquireRefusal(scope: KeyScope, request: ScopedAcquire): string | null {
  if (!canAcquire(scope, request.resource)) return `this key may not acquire on "${request.resource}"`;
  if (typeof scope === "string") return null;
  if (scope.priorityMax !== undefined && request.priority > scope.priorityMax) {
    return `this key may ask for priority up to ${scope.priorityMax}, not ${request.priority}`;
  }
  if (scope.lanes !== undefined && request.lane !== null && !scope.lanes.includes(request.lane)) {
    return `this key may not use lane "${request.lane}" (allowed: ${scope.lanes.join(", ")})`;
  }
  if (scope.loadMax !== undefined && request.load !== undefined) {
    const amounts = typeof request.load === "number" ? [request.load] : Object.values(request.load);
    const largest = Math.max(0, ...amounts);
    if (largest > scope.loadMax) return `this key may ask for a load of at most ${scope.loadMax} per request, not ${largest}`;
  }
  return null;
}

/** Why `scope` forbids a session TTL of `ttlMs`, or null. */
export function ttlRefusal(scope: KeyScope, ttlMs: number): string | null {
  if (typeof scope === "string" || scope.ttlMsMax === undefined || ttlMs <= scope.ttlMsMax) return null;
  return `this key may hold sessions of at most ${scope.ttlMsMax} ms, not ${ttlMs}`;
}

const PRIORITY_MAX = 1_000;
const TTL_MS_MAX = 24 * 3_600_000;
const LANE_NAME = /^[A-Za-z0-9._:/-]{1,64}$/;

/** Parses a key scope from JSON (admin API body or config file): "admin", "metrics" or { acquire, ...bounds }. */
export function parseKeyScope(scope: unknown): { ok: true; scope: KeyScope } | { ok: false; errors: string[] } {
  if (scope === "admin" || scope === "metrics") return { ok: true, scope };
  if (typeof scope !== "object" || scope === null || Array.isArray(scope)) {
    return { ok: false, errors: ['scope must be "admin", "metrics" or { "acquire": ["pattern", ...] }'] };
  }
  const errors: string[] = [];
  const { acquire, priorityMax, lanes, ttlMsMax, loadMax, ...other } = scope as Record<string, unknown>;
  for (const k of Object.keys(other)) errors.push(`scope: unknown field "${k}" (known: acquire, priorityMax, lanes, ttlMsMax, loadMax)`);
  const okPatterns =
    Array.isArray(acquire) &&
    acquire.length >= 1 &&
    acquire.length <= KEY_PATTERNS_MAX &&
    acquire.every((p) => typeof p === "string" && /^[A-Za-z0-9._:/*-]{1,128}$/.test(p));
  if (!okPatterns) errors.push(`scope.acquire must be 1-${KEY_PATTERNS_MAX} patterns of 1-128 of A-Z a-z 0-9 . _ : / - and * (wildcard)`);
  const int = (name: string, v: unknown, min: number, max: number): void => {
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max)) {
      errors.push(`scope.${name} must be an integer from ${min} to ${max}`);
    }
  };
  int("priorityMax", priorityMax, 0, PRIORITY_MAX);
  int("ttlMsMax", ttlMsMax, 100, TTL_MS_MAX);
  if (loadMax !== undefined && !(typeof loadMax === "number" && Number.isFinite(loadMax) && loadMax >= 0)) {
    errors.push("scope.loadMax must be a finite number >= 0");
  }
  const okLanes =
    lanes === undefined ||
    (Array.isArray(lanes) && lanes.length >= 1 && lanes.length <= 64 && lanes.every((l) => typeof l === "string" && LANE_NAME.test(l)));
  if (!okLanes) errors.push("scope.lanes must be 1-64 lane names");
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    scope: {
      acquire: [...(acquire as string[])],
      ...(priorityMax === undefined ? {} : { priorityMax: priorityMax as number }),
      ...(lanes === undefined ? {} : { lanes: [...(lanes as string[])] }),
      ...(ttlMsMax === undefined ? {} : { ttlMsMax: ttlMsMax as number }),
      ...(loadMax === undefined ? {} : { loadMax: loadMax as number }),
    },
  };
}

/** Validates an admin API body for POST /v1/keys: { name, scope }. */
export function validateKeyBody(body: unknown): { ok: true; name: string; scope: KeyScope } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, errors: ["body must be a JSON object"] };
  const { name, scope, ...rest } = body as Record<string, unknown>;
  for (const k of Object.keys(rest)) errors.push(`unknown field "${k}"`);
  if (typeof name !== "string" || name.length < 1 || name.length > KEY_NAME_MAX) {
    errors.push(`name must be a string of 1-${KEY_NAME_MAX} characters`);
  }
  const parsedScope = parseKeyScope(scope);
  if (!parsedScope.ok) errors.push(...parsedScope.errors);
  const parsed = parsedScope.ok ? parsedScope.scope : null;
  if (errors.length > 0 || parsed === null || typeof name !== "string") return { ok: false, errors };
  return { ok: true, name, scope: parsed };
}

/** The replicated table of API keys. Deterministic: ids and hashes come in with the command. */
export class KeyTable {
  readonly #byId = new Map<string, StoredKey>();
  readonly #byHash = new Map<string, StoredKey>();

  add(key: StoredKey): void {
    if (this.#byId.has(key.id) || this.#byHash.has(key.hash)) return;
    this.#byId.set(key.id, key);
    this.#byHash.set(key.hash, key);
  }

  remove(id: string): boolean {
    const key = this.#byId.get(id);
    if (key === undefined) return false;
    this.#byId.delete(id);
    this.#byHash.delete(key.hash);
    return true;
  }

  /** The key a secret belongs to, or null. Compares hashes in constant time. */
  verify(secret: string): StoredKey | null {
    const hash = hashSecret(secret);
    const key = this.#byHash.get(hash);
    if (key === undefined) return null;
    return timingSafeEqual(Buffer.from(key.hash, "hex"), Buffer.from(hash, "hex")) ? key : null;
  }

  /** The key with this id, or undefined. */
  get(id: string): StoredKey | undefined {
    return this.#byId.get(id);
  }

  /** How many admin keys the table holds (never 0 once seeded: the last one cannot be revoked). */
  get adminCount(): number {
    let n = 0;
    for (const k of this.#byId.values()) if (k.scope === "admin") n++;
    return n;
  }

  list(): StoredKey[] {
    return [...this.#byId.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Plain data, in a stable order, for snapshots. */
  toJSON(): StoredKey[] {
    return this.list();
  }

  static fromJSON(keys: readonly StoredKey[]): KeyTable {
    const table = new KeyTable();
    for (const k of keys) table.add(k);
    return table;
  }
}
