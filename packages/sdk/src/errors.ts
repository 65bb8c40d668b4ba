/** The stable error codes of SPEC.md. */
export const ErrorCode = {
  TIMEOUT: "RQ_TIMEOUT",
  CANCELLED: "RQ_CANCELLED",
  UNKNOWN_RESOURCE: "RQ_UNKNOWN_RESOURCE",
  UNGRANTABLE: "RQ_UNGRANTABLE",
  INVALID: "RQ_INVALID",
  UNAUTHORIZED: "RQ_UNAUTHORIZED",
  FORBIDDEN: "RQ_FORBIDDEN",
  UNAVAILABLE: "RQ_UNAVAILABLE",
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

/** The request waited `timeoutMs` in the queue without a grant. Retry later or raise the timeout. */
export class TimeoutError extends RateQueueError {
  override readonly name = "TimeoutError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.TIMEOUT, message, options);
  }
}

/** The request was cancelled through its AbortSignal before it was granted. */
export class CancelledError extends RateQueueError {
  override readonly name = "CancelledError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.CANCELLED, message, options);
  }
}

/** No resource (or lane) of that name: create it with the admin API (PUT /v1/resources/{name}) or fix the name. */
export class UnknownResourceError extends RateQueueError {
  override readonly name = "UnknownResourceError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.UNKNOWN_RESOURCE, message, options);
  }
}

/** The request can never be granted (its load exceeds a limit's whole capacity): split it or raise the limit. */
export class UngrantableError extends RateQueueError {
  override readonly name = "UngrantableError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.UNGRANTABLE, message, options);
  }
}

/** The request or an option is malformed (e.g. a negative load): fix the call. */
export class InvalidError extends RateQueueError {
  override readonly name = "InvalidError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.INVALID, message, options);
  }
}

/** The API key is unknown or revoked: check RATEQUEUE_API_KEY. */
export class UnauthorizedError extends RateQueueError {
  override readonly name = "UnauthorizedError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.UNAUTHORIZED, message, options);
  }
}

/** The API key may not use this resource: use a key whose scope covers it. */
export class ForbiddenError extends RateQueueError {
  override readonly name = "ForbiddenError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.FORBIDDEN, message, options);
  }
}

/** No RateQueue node could be reached in time (or the client was closed). Check the URLs and the cluster's health. */
export class UnavailableError extends RateQueueError {
  override readonly name = "UnavailableError";
  constructor(message: string, options?: RateQueueErrorOptions) {
    super(ErrorCode.UNAVAILABLE, message, options);
  }
}

/** The error class for a code received from a node. */
export function errorFor(code: string, message: string, options?: RateQueueErrorOptions): RateQueueError {
  switch (code) {
    case ErrorCode.TIMEOUT:
      return new TimeoutError(`${message}: no capacity within the timeout; retry later or raise timeoutMs`, options);
    case ErrorCode.CANCELLED:
      return new CancelledError(message, options);
    case ErrorCode.UNKNOWN_RESOURCE:
      return new UnknownResourceError(`${message}: create the resource with the admin API or fix its name`, options);
    case ErrorCode.UNGRANTABLE:
      return new UngrantableError(`${message}: this request can never fit; split it or raise the limit`, options);
    case ErrorCode.UNAUTHORIZED:
      return new UnauthorizedError(`${message}: check the apiKey (RATEQUEUE_API_KEY)`, options);
    case ErrorCode.FORBIDDEN:
      return new ForbiddenError(`${message}: use a key whose scope covers this resource`, options);
    case ErrorCode.UNAVAILABLE:
      return new UnavailableError(message, options);
    case "RQ_SESSION_EXPIRED":
      // The client handles it (a new session); a caller only sees it as the cluster being unreachable.
      return new UnavailableError(`${message}: the session expired; the client opens a new one`, options);
    default:
      return new InvalidError(message, options);
  }
}
