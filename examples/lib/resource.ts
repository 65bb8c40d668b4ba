/**
 * How the examples describe a provider's limits to RateQueue.
 *
 * RateQueue stamps a grant with the leader's clock when it decides; the
 * provider counts the request when it arrives, a little later. If one
 * request's delay is shorter than the one before it, the provider has seen a
 * little less refill than RateQueue assumed, and a bucket that RateQueue ran
 * to exactly empty would answer 429. So each bucket limit is the provider's
 * minus `marginMs` of refill: the same refill rate (the sustained throughput
 * is the provider's), a capacity smaller by what refills in `marginMs`. Delays
 * that vary by less than `marginMs` can never cause a 429.
 */
export interface BucketLimit {
  readonly kind: "rate" | "load";
  readonly limit: number;
  readonly windowMs: number;
  readonly window: "bucket";
  readonly dimension?: string;
}

/** A resource body as the examples send it to `PUT /v1/resources/{name}`. */
export interface ResourceConfig {
  readonly limits: readonly (BucketLimit | { readonly kind: "concurrency"; readonly limit: number })[];
}

export function bucketLimit(options: {
  kind: "rate" | "load";
  /** The provider's limit per `windowMs` (e.g. its TPM for 60 000 ms). */
  providerLimit: number;
  windowMs: number;
  marginMs: number;
  dimension?: string;
}): BucketLimit {
  const { providerLimit, windowMs, marginMs } = options;
  if (!(marginMs >= 0 && marginMs < windowMs)) throw new RangeError(`marginMs must be from 0 to below windowMs ${windowMs}, got ${marginMs}`);
  const limit = providerLimit - Math.ceil((providerLimit * marginMs) / windowMs);
  if (limit < 1) {
    throw new RangeError(`a limit of ${providerLimit} per ${windowMs} ms leaves nothing after a ${marginMs} ms margin; raise the limit or lower the margin`);
  }
  // Rounded up, so the refill rate limit / window never exceeds the provider's.
  const ourWindowMs = Math.ceil((limit * windowMs) / providerLimit);
  if (limit * windowMs > providerLimit * ourWindowMs) throw new Error("invariant: our refill rate exceeds the provider's");
  return {
    kind: options.kind,
    limit,
    windowMs: ourWindowMs,
    window: "bucket",
    ...(options.dimension === undefined ? {} : { dimension: options.dimension }),
  };
}

/** One line for the logs, e.g. "590 per 59000 ms (bucket)". */
export function describeLimit(l: { kind: string; limit: number; windowMs?: number; dimension?: string }): string {
  const what = l.kind === "rate" ? "requests" : l.kind === "load" ? l.dimension === undefined ? "tokens" : `${l.dimension} tokens` : "in flight";
  return l.windowMs === undefined ? `${l.limit} ${what}` : `${l.limit} ${what} per ${l.windowMs} ms`;
}
