/** One acquire (and, when granted, its release) as a client process saw it. Times are the client's wall clock. */
export interface AcquireRecord {
  readonly client: string;
  /** Sequence number within the client. */
  readonly op: number;
  readonly resource: string;
  readonly load: number;
  readonly timeoutMs: number;
  readonly startMs: number;
  /** When the acquire ended (granted or failed); null if it never ended (a hang). */
  endMs: number | null;
  outcome: "granted" | "failed" | null;
  /** Failed: the SDK error code and message, and the request as the cluster knows it when the cluster decided. */
  code?: string;
  message?: string;
  failedRequest?: { sessionId: string; requestId: number };
  /** Granted: what the cluster answered. */
  sessionId?: string;
  leaseId?: string;
  grantedAt?: number;
  /** Granted: when the caller called release() (the lease was surely held until then). */
  releaseStartMs?: number;
  /** Granted: when the release resolved (null if it never did) and whether it threw. */
  releaseEndMs?: number | null;
  releaseError?: string;
}

export interface ClientHistory {
  readonly client: string;
  readonly records: AcquireRecord[];
}

/**
 * Whether the SDK decided a failure itself, without an answer from the
 * cluster: no node reachable, no answer within timeoutMs plus grace, the
 * caller's AbortSignal (the SDK fails the call at once and sends a cancel
 * that may come too late), or the client closed. The cluster may still have granted such a request (the SDK
 * then releases the late grant at once), so the checker cannot hold the log
 * to these outcomes.
 */
export function isLocalOutcome(r: AcquireRecord): boolean {
  if (r.outcome !== "failed") return false;
  if (r.code === "RQ_UNAVAILABLE" || r.code === "RQ_CANCELLED") return true;
  return r.code === "RQ_TIMEOUT" && (r.message ?? "").startsWith("no answer from the cluster within timeoutMs");
}
