import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** What a key may do: everything, or acquire on resources whose names match one of the patterns. */
export type KeyScope = "admin" | { readonly acquire: readonly string[] };

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
  return scope === "admin" || scope.acquire.some((p) => matchesPattern(p, resource));
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
  let parsed: KeyScope | null = null;
  if (scope === "admin") parsed = "admin";
  else if (typeof scope === "object" && scope !== null && !Array.isArray(scope)) {
    const { acquire, ...other } = scope as Record<string, unknown>;
    for (const k of Object.keys(other)) errors.push(`scope: unknown field "${k}"`);
    if (
      Array.isArray(acquire) &&
      acquire.length >= 1 &&
      acquire.length <= KEY_PATTERNS_MAX &&
      acquire.every((p) => typeof p === "string" && /^[A-Za-z0-9._:/*-]{1,128}$/.test(p))
    ) {
      parsed = { acquire: [...(acquire as string[])] };
    } else {
      errors.push(`scope.acquire must be 1-${KEY_PATTERNS_MAX} patterns of 1-128 of A-Z a-z 0-9 . _ : / - and * (wildcard)`);
    }
  } else errors.push('scope must be "admin" or { "acquire": ["pattern", ...] }');
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
