/**
 * Stable error codes of the Raft core. Callers switch on `code`, never on the
 * message text.
 */
export const RaftErrorCode = {
  /** A `RaftConfig` field is missing, of the wrong type or out of range. */
  CONFIG_INVALID: "RAFT_CONFIG_INVALID",
  /** Storage: the requested index is below the first available index (compacted into a snapshot). */
  COMPACTED: "RAFT_COMPACTED",
  /** Storage: the requested index is above the last index. */
  UNAVAILABLE: "RAFT_UNAVAILABLE",
  /** Storage: no snapshot is available right now; the leader retries later. */
  SNAPSHOT_UNAVAILABLE: "RAFT_SNAPSHOT_UNAVAILABLE",
  /** Storage: a snapshot or compaction older than what is already stored. */
  SNAPSHOT_OUT_OF_DATE: "RAFT_SNAPSHOT_OUT_OF_DATE",
  /** The caller broke the API contract (bad argument, `ready()` twice without `advance()`, ...). */
  MISUSE: "RAFT_MISUSE",
  /** An encoded conf change could not be decoded. */
  BAD_CONF_CHANGE: "RAFT_BAD_CONF_CHANGE",
  /** An internal invariant does not hold: a bug, or corrupted storage. The node must stop. */
  INVARIANT: "RAFT_INVARIANT",
} as const;

export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];

/** The one error class of the Raft core. */
export class RaftError extends Error {
  override readonly name: string = "RaftError";
  readonly code: RaftErrorCode;

  constructor(code: RaftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Thrown by `new RawNode(config)` for a nonsensical config; `code` is `RAFT_CONFIG_INVALID`. */
export class RaftConfigError extends RaftError {
  override readonly name = "RaftConfigError";

  constructor(message: string) {
    super(RaftErrorCode.CONFIG_INVALID, message);
  }
}

/** Throws a `RAFT_INVARIANT` error when `condition` is false. Kept on in production. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftError(RaftErrorCode.INVARIANT, `invariant violated: ${message}`);
}
