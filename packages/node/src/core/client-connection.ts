import type { ClientMessage } from "@ratequeue/protocol";
import type { KeyScope } from "../state/keys.js";
import type { ClientLink } from "./env.js";
import { answerToWire, endsAcquire, type Answer, type WireAnswer } from "./wire-answers.js";

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

  /** Reached only through `answer`: every frame and close this client gets goes that one road. */
  readonly #link: ClientLink;

  constructor(
    link: ClientLink,
    readonly remote: string,
  ) {
    this.#link = link;
  }

  /**
   * The one road back to this client: translates `a` (wire-answers.ts), keeps the acquire bookkeeping it implies
   * (an acquire's last answer ends it; a tryAcquire's answers read as such), and sends the frame, then the close.
   * Returns what was sent, or null on a closed connection, which is sent nothing. A close leaves `state` to the
   * owner (ClientSessions.disconnected).
   */
  answer(a: Answer): WireAnswer | null {
    if (this.state === "closed") return null;
    let wasTry = false;
    if (a.kind === "applied" && "requestId" in a.effect) {
      const e = a.effect;
      wasTry = this.tryRequests.has(e.requestId);
      if (endsAcquire(e)) this.#endAcquire(e.requestId);
    } else if (a.kind === "applyRefused" && a.error.command === "acquire") {
      this.#endAcquire(String(a.requestId));
    }
    const wire = answerToWire(a, wasTry);
    if (wire.frame !== null) this.#link.send(wire.frame);
    if (wire.close !== null) this.#link.close(wire.close.code, wire.close.reason);
    return wire;
  }

  #endAcquire(requestId: string): void {
    this.tryRequests.delete(requestId);
    this.pendingAcquires.delete(requestId);
  }
}
