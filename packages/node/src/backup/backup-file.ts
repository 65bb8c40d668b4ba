import { createHash } from "node:crypto";
import { ClusterState } from "../core/cluster-state.js";

/** What the first field of every backup file says. */
export const BACKUP_FORMAT = "ratequeue-backup";
/** The file version this code writes and the only one it reads. */
export const BACKUP_VERSION = 1;

/** A backup file that cannot be used, with a stable code: the CLI prints `code: message` and exits 2. */
export class BackupError extends Error {
  override readonly name = "BackupError";
  constructor(
    readonly code: "RQ_BACKUP_FORMAT" | "RQ_BACKUP_VERSION" | "RQ_BACKUP_CHECKSUM" | "RQ_BACKUP_STATE",
    message: string,
  ) {
    super(message);
  }
}

/**
 * A backup file (JSON): a header an operator can read with `jq`, then the replicated state (the same bytes every
 * node snapshots: resources with their usage windows, leases, sessions and queues, API key hashes, session owners,
 * member addresses) in base64, with its SHA-256.
 */
export interface BackupFile {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: typeof BACKUP_VERSION;
  /** The serving leader's wall clock when it took the backup (informational only). */
  readonly createdAt: string;
  /** The leader that served it. */
  readonly node: string;
  /** The applied log index the state is at (a linearizable read point: every write acknowledged before is in it). */
  readonly index: number;
  /** The leader's term then. */
  readonly term: number;
  /** The cluster's log time at `index`, in ms: windows resume from here in a restored cluster. */
  readonly logTime: number;
  /** What the state holds, for a reader of the file (not used by restore). */
  readonly counts: { readonly resources: number; readonly keys: number; readonly sessions: number; readonly leases: number };
  /** Member addresses of the backed-up cluster (not restored: a restored cluster has the members it is given). */
  readonly members: Readonly<Record<string, string>>;
  /** SHA-256 (hex) of the decoded `state` bytes. */
  readonly sha256: string;
  /** The state snapshot, base64. */
  readonly state: string;
}

/** The header of a backup taken from `state` at `index`. */
export function makeBackup(options: {
  state: ClusterState;
  node: string;
  index: number;
  term: number;
  createdAt: Date;
}): BackupFile {
  const { state } = options;
  const bytes = state.snapshot();
  const limiter = state.limiter;
  const names = limiter.resourceNames();
  const leases = names.reduce((sum, name) => sum + (limiter.resource(name)?.leasesHeld ?? 0), 0);
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    createdAt: options.createdAt.toISOString(),
    node: options.node,
    index: options.index,
    term: options.term,
    logTime: limiter.lastAt,
    counts: { resources: names.length, keys: state.keys.list().length, sessions: limiter.sessionCount(), leases },
    members: Object.fromEntries([...state.memberAddresses].sort(([a], [b]) => (a < b ? -1 : 1))),
    sha256: sha256Hex(bytes),
    state: Buffer.from(bytes).toString("base64"),
  };
}

/** A checked backup: its header, and the state it restores (already decoded, so a bad state fails here). */
export interface CheckedBackup {
  readonly header: Omit<BackupFile, "state">;
  readonly bytes: Uint8Array;
  readonly state: ClusterState;
}

/**
 * Checks a backup file's text: the format, the version, every header field, the checksum of the state, and that
 * the state decodes. Throws BackupError naming what is wrong; `source` (a file name) prefixes every message.
 */
export function parseBackup(text: string, source: string): CheckedBackup {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BackupError("RQ_BACKUP_FORMAT", `${source} is not a RateQueue backup (not JSON; was it cut short?)`);
  }
  const v = value as Partial<Record<keyof BackupFile, unknown>>;
  if (typeof value !== "object" || value === null || Array.isArray(value) || v.format !== BACKUP_FORMAT) {
    throw new BackupError("RQ_BACKUP_FORMAT", `${source} is not a RateQueue backup (its "format" is not "${BACKUP_FORMAT}")`);
  }
  if (v.version !== BACKUP_VERSION) {
    const newer = typeof v.version === "number" && v.version > BACKUP_VERSION;
    throw new BackupError(
      "RQ_BACKUP_VERSION",
      `${source} is backup version ${JSON.stringify(v.version)}; this ratequeue reads version ${BACKUP_VERSION}${newer ? " (the file is from a newer ratequeue: restore with that version)" : ""}`,
    );
  }
  const problems: string[] = [];
  const count = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;
  if (typeof v.createdAt !== "string") problems.push("createdAt must be a string");
  if (typeof v.node !== "string") problems.push("node must be a string");
  if (!count(v.index)) problems.push("index must be an integer >= 0");
  if (!count(v.term)) problems.push("term must be an integer >= 0");
  if (typeof v.logTime !== "number" || !Number.isFinite(v.logTime) || v.logTime < 0) problems.push("logTime must be a number >= 0");
  if (typeof v.counts !== "object" || v.counts === null) problems.push("counts must be an object");
  if (typeof v.members !== "object" || v.members === null || Array.isArray(v.members)) problems.push("members must be an object");
  if (typeof v.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(v.sha256)) problems.push("sha256 must be 64 hex digits");
  if (typeof v.state !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.state)) problems.push("state must be base64");
  if (problems.length > 0) throw new BackupError("RQ_BACKUP_FORMAT", `${source} has a damaged header: ${problems.join("; ")}`);
  const bytes = new Uint8Array(Buffer.from(v.state as string, "base64"));
  const actual = sha256Hex(bytes);
  if (actual !== v.sha256) {
    throw new BackupError("RQ_BACKUP_CHECKSUM", `${source} is damaged: its state has SHA-256 ${actual}, the header says ${v.sha256 as string}`);
  }
  let state: ClusterState;
  try {
    state = ClusterState.restore(bytes);
  } catch (err) {
    throw new BackupError("RQ_BACKUP_STATE", `${source}: the state does not decode (${(err as Error).message})`);
  }
  if (state.limiter.lastAt !== v.logTime) {
    throw new BackupError("RQ_BACKUP_STATE", `${source}: the state is at log time ${state.limiter.lastAt}, the header says ${v.logTime as number}`);
  }
  const { state: _omit, ...header } = v as BackupFile;
  return { header, bytes, state };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
