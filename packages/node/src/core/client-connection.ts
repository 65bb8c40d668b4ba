import type { ClientMessage } from "@ratequeue/protocol";
import type { KeyScope } from "../state/keys.js";
import type { ClientLink } from "./env.js";

/** hello: nothing received yet; opening: hello accepted, session being opened; ready: welcomed; closed. */
export type ConnState = "hello" | "opening" | "ready" | "closed";

/**
 * Most acquires one connection may have unanswered (queued or in flight).
 * The limiter keeps every waiter in memory, so a runaway client must hit a
 * wall here rather than grow the replicated state without bound.
 */
export const PENDING_ACQUIRES_MAX = 10_000;

/**
 * Most requests a client may send after its hello and before its welcome (docs/protocol.md, section 6): a
 * reconnecting client resends its unanswered requests and cancels right behind its hello, one round trip sooner.
 */
export const EARLY_REQUESTS_MAX = 2 * PENDING_ACQUIRES_MAX;

/** One client connection's state, owned by ClientSessions. */
export class ClientConnection {
  state: ConnState = "hello";
  scope: KeyScope | null = null;
  /** The id of the stored key that authenticated this connection. */
  keyId: string | null = null;
  /** The hello's clientName, if it gave one: the dashboard names a cooldown's reporter with it. */
  clientName: string | null = null;
  sessionId: string | null = null;
  /** The session's TTL in ms, from the welcome. */
  ttlMs = 0;
  /** Request ids of tryAcquire calls still unanswered: their time-outs are reported as RQ_WOULD_WAIT. */
  readonly tryRequests = new Set<string>();
  /** Acquires sent and not yet granted or rejected. */
  readonly pendingAcquires = new Set<string>();
  /** Requests received after the hello, before the welcome: handled in order once welcomed (at most EARLY_REQUESTS_MAX). */
  early: ClientMessage[] = [];

  constructor(
    readonly link: ClientLink,
    readonly remote: string,
  ) {}
}
