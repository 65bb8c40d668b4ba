/**
 * Every RQ_* code of RateQueue has its one definition in this file:
 * `ErrorCode` (codes on the client wire), `LimiterErrorCode` (codes on the
 * limiter's effects, and the wire code each becomes) and `HttpErrorCode`
 * (codes only the HTTP APIs answer with). Dependency-free; also importable
 * alone as `@ratequeue/protocol/codes`.
 *
 * Every error code that travels on the client wire. The first group is
 * SPEC.md's public codes (the SDK's error classes carry them); the second is
 * this package's own protocol codes.
 */
export const ErrorCode = {
  /** The request waited `timeoutMs` in the queue and was removed. */
  RQ_TIMEOUT: "RQ_TIMEOUT",
  /** The client cancelled the request before it was granted. */
  RQ_CANCELLED: "RQ_CANCELLED",
  /** No resource (or lane) of that name. */
  RQ_UNKNOWN_RESOURCE: "RQ_UNKNOWN_RESOURCE",
  /** The request can never be granted (e.g. its load exceeds a limit's whole capacity). */
  RQ_UNGRANTABLE: "RQ_UNGRANTABLE",
  /** A well-formed message whose content the state machine refuses. */
  RQ_INVALID: "RQ_INVALID",
  /** Unknown or revoked API key, or a peer without the cluster secret. */
  RQ_UNAUTHORIZED: "RQ_UNAUTHORIZED",
  /** The key has no scope for this resource. */
  RQ_FORBIDDEN: "RQ_FORBIDDEN",
  /** No quorum, or the node is shutting down: try again (the SDK retries). */
  RQ_UNAVAILABLE: "RQ_UNAVAILABLE",
  /** An `acquire` with `try: true` found no capacity now (the SDK's tryAcquire returns null). */
  RQ_WOULD_WAIT: "RQ_WOULD_WAIT",
  /** The session expired (or was never known); the client must open a new one. */
  RQ_SESSION_EXPIRED: "RQ_SESSION_EXPIRED",

  /** A frame that cannot be decoded: not MessagePack, wrong shape, unknown type, a bad field. */
  RQ_PROTOCOL: "RQ_PROTOCOL",
  /** A frame over the byte cap (refused before any decoding work). */
  RQ_FRAME_TOO_LARGE: "RQ_FRAME_TOO_LARGE",
  /** The other side speaks a protocol version this side does not. */
  RQ_PROTOCOL_VERSION: "RQ_PROTOCOL_VERSION",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The codes on the limiter state machine's effects (`packages/limiter`). All
 * but two are wire codes; `LIMITER_WIRE_CODE` says what a client sees for each.
 */
export const LimiterErrorCode = {
  TIMEOUT: ErrorCode.RQ_TIMEOUT,
  CANCELLED: ErrorCode.RQ_CANCELLED,
  UNKNOWN_RESOURCE: ErrorCode.RQ_UNKNOWN_RESOURCE,
  UNGRANTABLE: ErrorCode.RQ_UNGRANTABLE,
  INVALID: ErrorCode.RQ_INVALID,
  /** The session does not exist (never opened, closed or expired). */
  UNKNOWN_SESSION: "RQ_UNKNOWN_SESSION",
  /** settle on a lease that is not held (released, dropped, or never granted). */
  UNKNOWN_LEASE: "RQ_UNKNOWN_LEASE",
} as const;

export type LimiterErrorCode = (typeof LimiterErrorCode)[keyof typeof LimiterErrorCode];

/** The wire code a client is answered with for each limiter code. */
export const LIMITER_WIRE_CODE: Readonly<Record<LimiterErrorCode, ErrorCode>> = {
  RQ_TIMEOUT: ErrorCode.RQ_TIMEOUT,
  RQ_CANCELLED: ErrorCode.RQ_CANCELLED,
  RQ_UNKNOWN_RESOURCE: ErrorCode.RQ_UNKNOWN_RESOURCE,
  RQ_UNGRANTABLE: ErrorCode.RQ_UNGRANTABLE,
  RQ_INVALID: ErrorCode.RQ_INVALID,
  /** The client opens a new session, as for any session the cluster no longer knows. */
  RQ_UNKNOWN_SESSION: ErrorCode.RQ_SESSION_EXPIRED,
  RQ_UNKNOWN_LEASE: ErrorCode.RQ_INVALID,
};

/** The wire code for a code on a limiter effect; a code the table does not know is `RQ_INVALID`. */
export function wireCodeOf(code: string): ErrorCode {
  return Object.hasOwn(LIMITER_WIRE_CODE, code) ? LIMITER_WIRE_CODE[code as LimiterErrorCode] : ErrorCode.RQ_INVALID;
}

/**
 * Codes that only the HTTP APIs (admin API, dashboard) answer with, in
 * `{ "error": { "code", "message" } }` bodies; they also use the wire codes.
 */
export const HttpErrorCode = {
  /** No such route, key, member or dashboard file. */
  RQ_NOT_FOUND: "RQ_NOT_FOUND",
  /** The body contradicts the cluster's state (a reused node id, a member already present). */
  RQ_CONFLICT: "RQ_CONFLICT",
  /** The change would leave the cluster without a voter. */
  RQ_QUORUM: "RQ_QUORUM",
  /** A membership change is in progress; retry once it ends. */
  RQ_CHANGE_IN_PROGRESS: "RQ_CHANGE_IN_PROGRESS",
  /**
   * A node holding data of another cluster (another cluster id): its add request is refused, and peer links
   * between the two are refused with this code as their close reason.
   */
  RQ_CLUSTER_MISMATCH: "RQ_CLUSTER_MISMATCH",
  /** Removing the last admin key is refused. */
  RQ_LAST_ADMIN_KEY: "RQ_LAST_ADMIN_KEY",
  /** A bug: the node's log has the details. */
  RQ_INTERNAL: "RQ_INTERNAL",
} as const;

export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/** The codes a decoder returns; any of them means "close the connection with this reason". */
export type ProtocolErrorCode = "RQ_PROTOCOL" | "RQ_FRAME_TOO_LARGE" | "RQ_PROTOCOL_VERSION";

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && ERROR_CODES.has(value);
}

/** Why a frame could not be decoded (or a message could not be encoded). Plain data. */
export interface ProtocolError {
  readonly code: ProtocolErrorCode;
  /** One line, for logs and WebSocket close reasons; names the field when there is one. */
  readonly message: string;
  /** Where in the frame, e.g. `messages[2].load.input`; absent for whole-frame problems. */
  readonly path?: string;
}

/**
 * Thrown by the encoders when asked to encode a message that the other side
 * would refuse: a caller bug, so it is an exception, unlike decoding problems,
 * which are returned.
 */
export class ProtocolEncodeError extends Error {
  readonly code: ProtocolErrorCode;
  readonly path: string | undefined;

  constructor(error: ProtocolError) {
    super(error.message);
    this.name = "ProtocolEncodeError";
    this.code = error.code;
    this.path = error.path;
  }
}
