/**
 * How the examples describe a provider's limits to RateQueue: with the
 * provider's own numbers and window algorithm. RateQueue stamps a grant when
 * it decides; the provider counts the request when it arrives, a little
 * later. The resource's delivery margin (`deliveryMarginMs`, the limiter's
 * README, "Fidelity") covers that delay: if each request arrives within it,
 * the provider never sees more than its limit. Left out, RateQueue's default
 * applies (1 s on a one-minute window, at most 1/40 of the window).
 */
import type { ProviderAlgorithm } from "./windows.js";

export interface WindowLimit {
  readonly kind: "rate" | "load";
  readonly limit: number;
  readonly windowMs: number;
  readonly window: ProviderAlgorithm;
  readonly dimension?: string;
}

/** A resource body as the examples send it to `PUT /v1/resources/{name}`. */
export interface ResourceConfig {
  readonly limits: readonly (WindowLimit | { readonly kind: "concurrency"; readonly limit: number })[];
  /** Omitted: RateQueue's default. */
  readonly deliveryMarginMs?: number;
}

/** The provider's limit as RateQueue should count it: same number, same window, same algorithm. */
export function providerLimit(options: { kind: "rate" | "load"; limit: number; windowMs: number; algorithm: ProviderAlgorithm; dimension?: string }): WindowLimit {
  return {
    kind: options.kind,
    limit: options.limit,
    windowMs: options.windowMs,
    window: options.algorithm,
    ...(options.dimension === undefined ? {} : { dimension: options.dimension }),
  };
}

/** `deliveryMarginMs` when given, nothing (RateQueue's default) otherwise. */
export function marginField(marginMs: number | undefined): { deliveryMarginMs?: number } {
  return marginMs === undefined ? {} : { deliveryMarginMs: marginMs };
}

/** One line for the logs, e.g. "590 per 59000 ms (bucket)". */
export function describeLimit(l: { kind: string; limit: number; windowMs?: number; dimension?: string }): string {
  const what = l.kind === "rate" ? "requests" : l.kind === "load" ? l.dimension === undefined ? "tokens" : `${l.dimension} tokens` : "in flight";
  return l.windowMs === undefined ? `${l.limit} ${what}` : `${l.limit} ${what} per ${l.windowMs} ms`;
}
