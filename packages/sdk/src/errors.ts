import { ErrorCode as WireCode } from "@ratequeue/protocol/codes";

/** The stable error codes of SPEC.md (the protocol package's table, packages/protocol/src/codes.ts). */
export const ErrorCode = {
  TIMEOUT: WireCode.RQ_TIMEOUT,
  CANCELLED: WireCode.RQ_CANCELLED,
  UNKNOWN_RESOURCE: WireCode.RQ_UNKNOWN_RESOURCE,
  UNGRANTABLE: WireCode.RQ_UNGRANTABLE,
  INVALID: WireCode.RQ_INVALID,
  UNAUTHORIZED: WireCode.RQ_UNAUTHORIZED,
  FORBIDDEN: WireCode.RQ_FORBIDDEN,
  UNAVAILABLE: WireCode.RQ_UNAVAILABLE,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Every error the SDK throws. `code` is stable (safe to switch on); the
 * message says what happened and what to do about it.
 *
 * @example
 * try { await rq.acquire("openai-gpt4o", { timeoutMs: 5000 }, run); }
 * catch (err) { if (err instanceof RateQueueError && err.code === "RQ_TIMEOUT") retryLater(); }
 */
export class RateQueueError extends Error {
  override readonly name: string = "RateQueueError";
  /**
   * The request this error answers, as the cluster knows it (its session and request id, the ids in the nodes'
   * logs and in `/v1/debug/grants`), when the cluster decided the failure; null when the SDK did (no node
   * reachable, the caller's AbortSignal, an invalid argument).
   */
  readonly request: RequestRef | null;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: RateQueueErrorOptions,
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.request = options?.request ?? null;
  }
}

/** A request as the cluster identifies it. */
export interface RequestRef {
  readonly sessionId: string;
  readonly requestId: number;
}

export interface RateQueueErrorOptions {
  readonly cause?: unknown;
  readonly request?: RequestRef;
}

/** The class of every `RateQueueError` subclass: one per code, each with the same constructor. */
export type RateQueueErrorClass = new (message: string, options?: RateQueueErrorOptions) => RateQueueError;

/**
 * The one map of the SDK's errors: per code, its class name and the advice `errorFor` appends to a node's
 * message (none where the message says it all).
 */
const ERRORS = {
  [ErrorCode.TIMEOUT]: { name: "TimeoutError", hint: "no capacity within the timeout; retry later or raise timeoutMs" },
  [ErrorCode.CANCELLED]: { name: "CancelledError", hint: null },
  [ErrorCode.UNKNOWN_RESOURCE]: { name: "UnknownResourceError", hint: "create the resource with the admin API or fix its name" },
  [ErrorCode.UNGRANTABLE]: { name: "UngrantableError", hint: "this request can never fit; split it or raise the limit" },
  [ErrorCode.INVALID]: { name: "InvalidError", hint: null },
  [ErrorCode.UNAUTHORIZED]: { name: "UnauthorizedError", hint: "check the apiKey (RATEQUEUE_API_KEY)" },
  [ErrorCode.FORBIDDEN]: { name: "ForbiddenError", hint: "use a key whose scope covers this resource" },
  [ErrorCode.UNAVAILABLE]: { name: "UnavailableError", hint: null },
} as const satisfies Record<ErrorCode, { readonly name: string; readonly hint: string | null }>;

const classes = new Map<string, RateQueueErrorClass>();

/** The subclass for `code`, named after ERRORS; `instanceof` it and `err.name` work as for a declared class. */
function errorClass(code: ErrorCode): RateQueueErrorClass {
  const { name } = ERRORS[code];
  const cls = class extends RateQueueError {
    override readonly name: string = name;
    constructor(message: string, options?: RateQueueErrorOptions) {
      super(code, message, options);
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  classes.set(code, cls);
  return cls;
}

/** The request waited `timeoutMs` in the queue without a grant. Retry later or raise the timeout. */
export const TimeoutError = errorClass(ErrorCode.TIMEOUT);
export type TimeoutError = InstanceType<typeof TimeoutError>;

/** The request was cancelled through its AbortSignal before it was granted. */
export const CancelledError = errorClass(ErrorCode.CANCELLED);
export type CancelledError = InstanceType<typeof CancelledError>;

/** No resource (or lane) of that name: create it with the admin API (PUT /v1/resources/{name}) or fix the name. */
export const UnknownResourceError = errorClass(ErrorCode.UNKNOWN_RESOURCE);
export type UnknownResourceError = InstanceType<typeof UnknownResourceError>;

/** The request can never be granted (its load exceeds a limit's whole capacity): split it or raise the limit. */
export const UngrantableError = errorClass(ErrorCode.UNGRANTABLE);
export type UngrantableError = InstanceType<typeof UngrantableError>;

/** The request or an option is malformed (e.g. a negative load): fix the call. */
export const InvalidError = errorClass(ErrorCode.INVALID);
export type InvalidError = InstanceType<typeof InvalidError>;

/** The API key is unknown or revoked: check RATEQUEUE_API_KEY. */
export const UnauthorizedError = errorClass(ErrorCode.UNAUTHORIZED);
export type UnauthorizedError = InstanceType<typeof UnauthorizedError>;

/** The API key may not use this resource: use a key whose scope covers it. */
export const ForbiddenError = errorClass(ErrorCode.FORBIDDEN);
export type ForbiddenError = InstanceType<typeof ForbiddenError>;

/** No RateQueue node could be reached in time (or the client was closed). Check the URLs and the cluster's health. */
export const UnavailableError = errorClass(ErrorCode.UNAVAILABLE);
export type UnavailableError = InstanceType<typeof UnavailableError>;

/** The error class for a code received from a node; a code the SDK has no class for is an `InvalidError`. */
export function errorFor(code: string, message: string, options?: RateQueueErrorOptions): RateQueueError {
  if (code === WireCode.RQ_SESSION_EXPIRED) {
    // The client handles it (a new session); a caller only sees it as the cluster being unreachable.
    return new UnavailableError(`${message}: the session expired; the client opens a new one`, options);
  }
  const cls = classes.get(code);
  if (cls === undefined) return new InvalidError(message, options);
  const { hint } = ERRORS[code as ErrorCode];
  return new cls(hint === null ? message : `${message}: ${hint}`, options);
}
