import type { ErrorCode, ProtocolError } from "./codes.js";

/**
 * A request's load: a plain number (one dimension called `load`, per SPEC.md)
 * or one amount per named dimension, e.g. `{ input: 1200, output: 1024 }`.
 * Amounts are finite, >= 0 and <= MAX_LOAD.
 */
export type Load = number | Readonly<Record<string, number>>;

// ---------------------------------------------------------------------------
// Client -> node (/v1/client)
// ---------------------------------------------------------------------------

/** First message on every client connection. Answered by `welcome` or `error`. */
export interface Hello {
  readonly type: "hello";
  /** Must equal the node's PROTOCOL_VERSION, or the node answers RQ_PROTOCOL_VERSION. */
  readonly protocolVersion: number;
  readonly apiKey: string;
  readonly clientName?: string;
  readonly clientVersion?: string;
  /** Reattach to this session after a reconnect (its leases and waiters survive if it has not expired). */
  readonly resume?: string;
  /** Requested session TTL; the node's default when absent. */
  readonly ttlMs?: number;
  /**
   * How the node writes every frame to this client: `records` (msgpackr records, the default) or `plain`
   * (MessagePack maps, for clients without msgpackr). The client may write either; the node reads both.
   */
  readonly encoding?: "records" | "plain";
}

/** Ask for capacity. Answered by `granted`, or `queued` then `granted`, or `rejected`. */
export interface Acquire {
  readonly type: "acquire";
  /** Client-chosen, unique per session; a resend after reconnect reuses it (exactly-once). */
  readonly requestId: number;
  readonly resource: string;
  /** Absent: the limiter's default load. */
  readonly load?: Load;
  /** Higher first; the limiter's default (10) when absent. */
  readonly priority?: number;
  readonly lane?: string;
  /** Longest wait in the queue; the node's default (no limit) when absent. */
  readonly timeoutMs?: number;
  /** tryAcquire: grant now or answer RQ_WOULD_WAIT, never queue. */
  readonly try?: boolean;
}

/** Free a lease's concurrency slot (idempotent). Answered by `ack`. */
export interface Release {
  readonly type: "release";
  readonly requestId: number;
  readonly leaseId: string;
}

/** Report a lease's real usage. Answered by `ack` or `rejected`. */
export interface Settle {
  readonly type: "settle";
  readonly requestId: number;
  readonly leaseId: string;
  readonly actual: Load;
}

/**
 * Withdraw a waiting acquire, named by its own request id. Not answered by
 * itself: the acquire ends `rejected` with RQ_CANCELLED (or `granted` if the
 * grant won the race).
 */
export interface Cancel {
  readonly type: "cancel";
  readonly requestId: number;
}

/** Report a provider 429: the resource grants nothing for `retryAfterMs`. Answered by `ack`. */
export interface Cooldown {
  readonly type: "cooldown";
  readonly requestId: number;
  readonly resource: string;
  readonly retryAfterMs: number;
}

/**
 * The grant-to-send delays this client observed on `resource` since its last report (docs/protocol.md, section
 * "Delivery reports"): how many grants, the sum and the largest delay in whole ms, and a histogram over
 * DELIVERY_BUCKETS_MS (one count per bound, then one for longer delays). Answered by `ack`, or `rejected`.
 */
export interface Report {
  readonly type: "report";
  readonly requestId: number;
  readonly resource: string;
  readonly count: number;
  readonly sumMs: number;
  readonly maxMs: number;
  readonly buckets: readonly number[];
}

/** Keeps the session alive. Not answered (WebSocket ping/pong detects dead links). */
export interface Heartbeat {
  readonly type: "heartbeat";
}

/** Close the session now: its leases are released, its waiters dropped. The node then closes the socket. */
export interface Goodbye {
  readonly type: "goodbye";
}

export type ClientMessage = Hello | Acquire | Release | Settle | Cancel | Cooldown | Heartbeat | Goodbye | Report;

// ---------------------------------------------------------------------------
// Node -> client
// ---------------------------------------------------------------------------

export interface NodeInfo {
  readonly id: string;
  /** Where clients reach this node (ws:// or wss://), or null when unknown. */
  readonly url: string | null;
}

/** The answer to a good hello. */
export interface Welcome {
  readonly type: "welcome";
  readonly protocolVersion: number;
  readonly sessionId: string;
  readonly ttlMs: number;
  /** The node that answered. */
  readonly nodeId: string;
  /** The current leader's id, or null when there is none right now. */
  readonly leader: string | null;
  /** Every node the client may use (may be empty). */
  readonly nodes: readonly NodeInfo[];
  /** True when `resume` named a live session that was reattached; false for a new session. */
  readonly resumed: boolean;
}

export interface Lease {
  readonly id: string;
  readonly resource: string;
  /** The load charged (as requested; `settle` may change it later). */
  readonly load: Load;
  /** The leader's log time of the grant, in ms. */
  readonly grantedAt: number;
}

export interface Granted {
  readonly type: "granted";
  readonly requestId: number;
  readonly lease: Lease;
  /**
   * The node's log time as it sent this grant, in ms: a client compares it with its own clock to read log time,
   * and so measures how long after `lease.grantedAt` it could send (docs/protocol.md, "Delivery reports").
   * Absent from nodes that do not send it.
   */
  readonly sentAt?: number;
}

/** The acquire waits in the queue; `granted` or `rejected` follows. */
export interface Queued {
  readonly type: "queued";
  readonly requestId: number;
}

/** The request ended without a grant (or a release/settle/cooldown failed). */
export interface Rejected {
  readonly type: "rejected";
  readonly requestId: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/** A release, settle or cooldown is done (committed). */
export interface Ack {
  readonly type: "ack";
  readonly requestId: number;
}

/** This node will not serve requests: go to the leader (both null when no leader is known yet). */
export interface NotLeader {
  readonly type: "notLeader";
  readonly leader: string | null;
  readonly url: string | null;
}

/** A connection-level error (a refused hello, an expired session, a bad frame); the node then closes. */
export interface ErrorMessage {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
}

export type ServerMessage = Welcome | Granted | Queued | Rejected | Ack | NotLeader | ErrorMessage;

/** What every decoder returns. Decoders never throw. */
export type DecodeResult<M> =
  | { readonly ok: true; readonly messages: M[] }
  | { readonly ok: false; readonly error: ProtocolError };
