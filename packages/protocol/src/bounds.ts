/**
 * The one table of the bounds of RateQueue's domain values: what a resource,
 * a request and a session may hold. The limiter validates against it (so
 * every sum stays an exact float64 integer), the node refuses a request out
 * of these bounds before it reaches the Raft log, the admin API refuses a
 * resource body out of them, and the SDK checks its arguments with it.
 *
 * The decoders' own caps (limits.ts) are frame-sanity caps, never stricter
 * than this table: a value the table refuses is answered `RQ_INVALID` for
 * that request alone, not by closing the connection.
 *
 * Dependency-free; also importable alone as `@ratequeue/protocol/bounds`.
 */
export const Bounds = {
  /** Resource, lane, dimension, session and request names: 1 to 128 characters of `A-Z a-z 0-9 . _ : / -`. */
  nameLengthMax: 128,
  /** Limits on one resource. */
  limitsMax: 32,
  /** Lanes on one resource. */
  lanesMax: 32,
  /** Dimensions in one load (`{ input, output, ... }`). */
  dimensionsMax: 16,
  /** Limits, reserved units and loads are whole numbers up to 1e12 (a trillion tokens). */
  unitsMax: 1e12,
  /** Window length of `rate` and `load` limits: 1 ms to 31 days (monthly budgets), on every algorithm. */
  windowMsMax: 31 * 86_400_000,
  /** Lane weights: integers 1 to 1000. */
  weightMax: 1000,
  /** Priorities: integers 0 to 1000, higher first (default 10). */
  priorityMax: 1000,
  /** Longest queue wait an acquire may ask for (2^31 ms, about 24.8 days; 0 = tryAcquire). */
  timeoutMsMax: 2 ** 31,
  /** Longest cooldown a worker may report after a provider 429 (2^31 ms). */
  retryAfterMsMax: 2 ** 31,
  /** Session TTLs: 1 ms to one day. */
  ttlMsMax: 86_400_000,
  /** Log stamps are integer ms; 2^52 leaves room to add any bounded duration. */
  atMax: 2 ** 52,
} as const;

/** The characters of every name (resource, lane, dimension, session, request). */
export const NAME_PATTERN = /^[A-Za-z0-9._:/-]{1,128}$/;
