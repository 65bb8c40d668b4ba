/**
 * The public data types of the limiter state machine: resource configuration,
 * commands (inputs, each stamped with the leader's time) and effects (outputs
 * the node must deliver). Everything here is plain data so the node can encode
 * it on the wire and in the Raft log.
 */

import { LimiterErrorCode } from "@ratequeue/protocol/codes";

/**
 * Stable error codes on the limiter's effects. The table is the protocol
 * package's (`LimiterErrorCode` in packages/protocol/src/codes.ts, pure data),
 * so the limiter, the node and the SDKs spell every code the same way.
 */
export const ErrorCode = LimiterErrorCode;
export type ErrorCode = LimiterErrorCode;

export type WindowAlgorithm = "sliding" | "fixed" | "bucket";
export type LanePolicy = "shared" | "strict";

/** Units reserved for named lanes: other lanes may use only `limit - reserved`. */
export type Reserved = Readonly<Record<string, number>>;

export type LimitConfig =
  | {
      readonly kind: "rate";
      readonly limit: number;
      readonly windowMs: number;
      readonly window: WindowAlgorithm;
      /** How late after its grant a request may reach the provider with the provider still under the limit (README, "Fidelity"). */
      readonly deliveryMarginMs: number;
      readonly reserved: Reserved;
    }
  | {
      readonly kind: "load";
      readonly limit: number;
      readonly windowMs: number;
      readonly window: WindowAlgorithm;
      readonly deliveryMarginMs: number;
      readonly dimension: string;
      readonly reserved: Reserved;
    }
  | { readonly kind: "concurrency"; readonly limit: number; readonly reserved: Reserved };

export interface LaneConfig {
  readonly name: string;
  readonly weight: number;
}

/** A validated, normalized resource configuration (defaults filled in). */
export interface ResourceConfig {
  readonly limits: readonly LimitConfig[];
  /** In declaration order; empty when the resource has no lanes. */
  readonly lanes: readonly LaneConfig[];
  readonly lanePolicy: LanePolicy;
  /** Lane for requests that name none; null when the resource has no lanes. */
  readonly defaultLane: string | null;
}

/** A request's load: a plain number is `{ load: n }`. */
export type Load = number | Readonly<Record<string, number>>;

interface Stamped {
  /** The leader's timestamp in ms. Clamped to be non-decreasing. */
  readonly at: number;
}

export type Command =
  | (Stamped & { readonly type: "putResource"; readonly name: string; readonly config: unknown })
  | (Stamped & { readonly type: "deleteResource"; readonly name: string })
  | (Stamped & { readonly type: "openSession"; readonly sessionId: string; readonly ttlMs?: number })
  | (Stamped & { readonly type: "heartbeat"; readonly sessionId: string })
  | (Stamped & { readonly type: "closeSession"; readonly sessionId: string })
  | (Stamped & { readonly type: "renewSessions" })
  | (Stamped & {
      readonly type: "acquire";
      readonly sessionId: string;
      readonly requestId: string;
      readonly resource: string;
      readonly load?: Load;
      readonly priority?: number;
      readonly lane?: string;
      /** Longest wait in the queue; 0 means "grant now or time out now" (tryAcquire). */
      readonly timeoutMs?: number;
    })
  | (Stamped & { readonly type: "release"; readonly sessionId: string; readonly leaseId: number })
  | (Stamped & {
      readonly type: "settle";
      readonly sessionId: string;
      readonly leaseId: number;
      readonly actual: Load;
    })
  | (Stamped & { readonly type: "cancel"; readonly sessionId: string; readonly requestId: string })
  | (Stamped & {
      readonly type: "cooldown";
      readonly resource: string;
      /** Exactly one of untilMs (absolute, log time) and retryAfterMs (relative to `at`). */
      readonly untilMs?: number;
      readonly retryAfterMs?: number;
      /** Who reported the 429 (the node puts the client's name here), for operators; it changes no outcome. */
      readonly by?: string;
    })
  | (Stamped & { readonly type: "tick" });

export type CommandType = Command["type"];

/** The load charged to a lease, always in object form (dimension -> units). */
export type LoadVector = Readonly<Record<string, number>>;

export type Effect =
  | {
      readonly type: "granted";
      readonly sessionId: string;
      readonly requestId: string;
      readonly resource: string;
      readonly leaseId: number;
      readonly load: LoadVector;
      readonly grantedAt: number;
    }
  | {
      readonly type: "queued";
      readonly sessionId: string;
      readonly requestId: string;
      readonly resource: string;
    }
  | {
      /** An acquire that ended without a grant: rejected, timed out or cancelled. */
      readonly type: "rejected" | "timedOut" | "cancelled";
      readonly sessionId: string;
      readonly requestId: string;
      readonly resource: string;
      readonly code: ErrorCode;
      readonly message: string;
    }
  | {
      readonly type: "released";
      readonly sessionId: string;
      readonly leaseId: number;
      /** Why the lease ended; "notHeld" answers a release of a lease that is already gone. */
      readonly reason: "released" | "resourceDeleted" | "notHeld";
    }
  | { readonly type: "settled"; readonly sessionId: string; readonly leaseId: number; readonly load: LoadVector }
  | { readonly type: "session"; readonly sessionId: string; readonly expiresAt: number }
  | {
      readonly type: "sessionEnded";
      readonly sessionId: string;
      readonly reason: "closed" | "expired";
      readonly releasedLeases: readonly number[];
      readonly droppedRequests: readonly string[];
    }
  | { readonly type: "sessionsRenewed"; readonly count: number }
  | { readonly type: "resourcePut"; readonly name: string; readonly created: boolean }
  | { readonly type: "resourceDeleted"; readonly name: string }
  | {
      readonly type: "cooldown";
      readonly resource: string;
      /** The resource's cooldown end after the command (a shorter cooldown never shortens a longer one). */
      readonly untilMs: number;
      /** The command's `by`, when this command set `untilMs` (not when a longer cooldown already covered it). */
      readonly by?: string;
    }
  | {
      /** The command was refused; nothing changed (except log time, see README). */
      readonly type: "error";
      readonly command: string;
      readonly code: ErrorCode;
      readonly message: string;
      readonly details?: readonly ValidationIssue[];
    };

export interface ValidationIssue {
  /** JSON-pointer-like path into the input, e.g. "limits/0/windowMs". */
  readonly path: string;
  readonly message: string;
}

/** Live view of one limit, for the admin API and metrics. */
export interface LimitUsage {
  readonly config: LimitConfig;
  /** Charged usage counted now (a bucket's debt may be fractional). */
  readonly used: number;
}

export interface ResourceView {
  readonly name: string;
  readonly config: ResourceConfig;
  readonly usage: readonly LimitUsage[];
  readonly leasesHeld: number;
  /** Waiting requests per lane ("default" when the resource has no lanes). */
  readonly queued: Readonly<Record<string, number>>;
  readonly cooldownUntil: number | null;
}
