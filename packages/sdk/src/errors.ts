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
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The request waited `timeoutMs` in the queue without a grant. Retry later or raise the timeout. */
export class TimeoutError extends RateQueueError {
  override readonly name = "TimeoutError";
  constructor(message: string) {
    super(ErrorCode.TIMEOUT, message);
  }
}

/** The request was cancelled through its AbortSignal before it was granted. */
export class CancelledError extends RateQueueError {
  override readonly name = "CancelledError";
  constructor(message: string) {
    super(ErrorCode.CANCELLED, message);
  }
}

/** No resource (or lane) of that name: create it with the admin API (PUT /v1/resources/{name}) or fix the name. */
export class UnknownResourceError extends RateQueueError {
  override readonly name = "UnknownResourceError";
  constructor(message: string) {
    super(ErrorCode.UNKNOWN_RESOURCE, message);
  }
}

/** The request can never be granted (its load exceeds a limit's whole capacity): split it or raise the limit. */
export class UngrantableError extends RateQueueError {
  override readonly name = "UngrantableError";
  constructor(message: string) {
    super(ErrorCode.UNGRANTABLE, message);
  }
}

/** The request or an option is malformed (e.g. a negative load): fix the call. */
export class InvalidError extends RateQueueError {
  override readonly name = "InvalidError";
  constructor(message: string) {
    super(ErrorCode.INVALID, message);
  }
}

/** The API key is unknown or revoked: check RATEQUEUE_API_KEY. */
export class UnauthorizedError extends RateQueueError {
  override readonly name = "UnauthorizedError";
  constructor(message: string) {
    super(ErrorCode.UNAUTHORIZED, message);
  }
}

/** The API key may not use this resource: use a key whose scope covers it. */
export class ForbiddenError extends RateQueueError {
  override readonly name = "ForbiddenError";
  constructor(message: string) {
    super(ErrorCode.FORBIDDEN, message);
  }
}

/** No RateQueue node could be reached in time (or the client was closed). Check the URLs and the cluster's health. */
export class UnavailableError extends RateQueueError {
  override readonly name = "UnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.UNAVAILABLE, message, options);
  }
}

/** The error class for a code received from a node. */
export function errorFor(code: string, message: string): RateQueueError {
  switch (code) {
    case ErrorCode.TIMEOUT:
      return new TimeoutError(`${message}: no capacity within the timeout; retry later or raise timeoutMs`);
    case ErrorCode.CANCELLED:
      return new CancelledError(message);
    case ErrorCode.UNKNOWN_RESOURCE:
      return new UnknownResourceError(`${message}: create the resource with the admin API or fix its name`);
    case ErrorCode.UNGRANTABLE:
      return new UngrantableError(`${message}: this request can never fit; split it or raise the limit`);
    case ErrorCode.UNAUTHORIZED:
      return new UnauthorizedError(`${message}: check the apiKey (RATEQUEUE_API_KEY)`);
    case ErrorCode.FORBIDDEN:
      return new ForbiddenError(`${message}: use a key whose scope covers this resource`);
    case ErrorCode.UNAVAILABLE:
      return new UnavailableError(message);
    default:
      return new InvalidError(message);
  }
}
