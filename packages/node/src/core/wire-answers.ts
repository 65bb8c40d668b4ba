import type { Effect } from "@ratequeue/limiter";
import { ErrorCode, PROTOCOL_VERSION, wireCodeOf, type Load, type NodeInfo, type ServerMessage } from "@ratequeue/protocol";
import { CloseCode } from "./env.js";
import { NotLeaderError } from "./proposals.js";

/**
 * Everything a node tells a client, as data: the outcome of a hello or a request, whether it came from the applied
 * state machine's effects or from a request that failed before (or without) reaching the log. `answerToWire` turns
 * each into the frame and the close the client sees; `ClientConnection.answer` is the one place that sends them.
 */
export type Answer =
  /**
   * An applied effect naming this connection's session: a grant (`sentAt`: the log time it leaves at), queueing, an
   * end without a grant (rejected, timed out, cancelled), an exactly-once replay of an earlier outcome, the session's
   * end. Effects that answer nothing (a release, a renewal) send nothing.
   */
  | { readonly kind: "applied"; readonly effect: Effect; readonly sentAt: number | null }
  /** The session is open (or resumed). */
  | {
      readonly kind: "welcome";
      readonly sessionId: string;
      readonly ttlMs: number;
      readonly nodeId: string;
      readonly leader: string | null;
      readonly nodes: readonly NodeInfo[];
      readonly resumed: boolean;
    }
  /** Refused before reaching the log (forbidden, out of bounds, too many acquires waiting, unknown resource). */
  | { readonly kind: "refused"; readonly requestId: number; readonly code: ErrorCode; readonly message: string }
  /** The limiter refused the request's command when it applied (an `error` effect; nothing changed). */
  | { readonly kind: "applyRefused"; readonly requestId: number; readonly error: Extract<Effect, { type: "error" }> }
  /** A release, settle, cooldown or report that was done. */
  | { readonly kind: "ack"; readonly requestId: number }
  /** This node does not serve the client: it goes to `url` (null: no leader known, it searches). */
  | { readonly kind: "notLeader"; readonly leader: string | null; readonly url: string | null }
  /**
   * A proposal for this client failed before it applied here: this node is not the leader (NotLeaderError), or
   * leadership moved, the node stops or the entry did not apply in time (RQ_UNAVAILABLE, its fate unknown). The
   * client reconnects and resends under the same ids; exactly-once makes that safe whether or not it applied.
   */
  | { readonly kind: "proposalFailed"; readonly error: Error; readonly leader: string | null; readonly url: string | null }
  /** About the connection, not one request (a refused hello, a bad frame, a revoked key): `error`, then close. */
  | {
      readonly kind: "connectionError";
      readonly code: ErrorCode;
      readonly message: string;
      readonly closeCode: number;
      /** The close reason; default: the message (cut to fit). */
      readonly reason?: string;
    }
  /** Closed without a frame (a goodbye, the session resumed elsewhere, the node stops, no hello in time). */
  | { readonly kind: "closed"; readonly closeCode: number; readonly reason: string };

/** Every kind of Answer (the one-road test drives each through a live node). */
export const ANSWER_KINDS = [
  "applied",
  "welcome",
  "refused",
  "applyRefused",
  "ack",
  "notLeader",
  "proposalFailed",
  "connectionError",
  "closed",
] as const satisfies readonly Answer["kind"][];

/** What the client is sent for one answer: a frame, a close (after the frame), either or both or neither. */
export interface WireAnswer {
  readonly frame: ServerMessage | null;
  readonly close: { readonly code: number; readonly reason: string } | null;
}

const NOTHING: WireAnswer = { frame: null, close: null };

/**
 * The translation of an answer into what the client sees (docs/protocol.md, sections 4, 6, 7 and 9). Pure: the
 * same answer (and the same `wasTry`) gives the same frame on every node. `wasTry`: the answer is an applied effect
 * for a tryAcquire, whose queueing is not reported and whose time-out is RQ_WOULD_WAIT.
 */
export function answerToWire(a: Answer, wasTry: boolean): WireAnswer {
  switch (a.kind) {
    case "applied":
      return appliedToWire(a.effect, wasTry, a.sentAt);
    case "welcome":
      return {
        frame: {
          type: "welcome",
          protocolVersion: PROTOCOL_VERSION,
          sessionId: a.sessionId,
          ttlMs: a.ttlMs,
          nodeId: a.nodeId,
          leader: a.leader,
          nodes: a.nodes,
          resumed: a.resumed,
        },
        close: null,
      };
    case "refused":
      return { frame: { type: "rejected", requestId: a.requestId, code: a.code, message: a.message }, close: null };
    case "applyRefused":
      return { frame: { type: "rejected", requestId: a.requestId, code: wireCodeOf(a.error.code), message: a.error.message }, close: null };
    case "ack":
      return { frame: { type: "ack", requestId: a.requestId }, close: null };
    case "notLeader":
      return notLeader(a.leader, a.url);
    case "proposalFailed":
      return a.error instanceof NotLeaderError ? notLeader(a.leader, a.url) : { frame: null, close: { code: CloseCode.NOT_LEADER, reason: reason(a.error.message) } };
    case "connectionError":
      return { frame: { type: "error", code: a.code, message: a.message }, close: { code: a.closeCode, reason: a.reason ?? reason(a.message) } };
    case "closed":
      return { frame: null, close: { code: a.closeCode, reason: a.reason } };
  }
}

function appliedToWire(e: Effect, wasTry: boolean, sentAt: number | null): WireAnswer {
  switch (e.type) {
    case "granted": {
      const lease = { id: String(e.leaseId), resource: e.resource, load: wireLoad(e.load), grantedAt: e.grantedAt };
      const requestId = Number(e.requestId);
      const frame: ServerMessage =
        sentAt === null ? { type: "granted", requestId, lease } : { type: "granted", requestId, lease, sentAt: Math.max(sentAt, e.grantedAt) };
      return { frame, close: null };
    }
    case "queued":
      return wasTry ? NOTHING : { frame: { type: "queued", requestId: Number(e.requestId) }, close: null };
    case "rejected":
    case "timedOut":
    case "cancelled": {
      const code = wasTry && e.type === "timedOut" ? ErrorCode.RQ_WOULD_WAIT : wireCodeOf(e.code);
      return { frame: { type: "rejected", requestId: Number(e.requestId), code, message: e.message }, close: null };
    }
    case "sessionEnded":
      return e.reason === "expired"
        ? {
            frame: { type: "error", code: ErrorCode.RQ_SESSION_EXPIRED, message: "the session expired: its leases were released" },
            close: { code: CloseCode.SESSION_EXPIRED, reason: "session expired" },
          }
        : { frame: null, close: { code: CloseCode.NORMAL, reason: `session ${e.reason}` } };
    default:
      return NOTHING;
  }
}

function notLeader(leader: string | null, url: string | null): WireAnswer {
  return { frame: { type: "notLeader", leader, url }, close: { code: CloseCode.NOT_LEADER, reason: "not the leader" } };
}

/** A WebSocket close reason is at most 123 bytes. */
function reason(message: string): string {
  return message.slice(0, 120);
}

/** Whether `e` is the last answer to the acquire it names (a grant or an end without one), not a step on the way. */
export function endsAcquire(e: Effect): e is Extract<Effect, { type: "granted" | "rejected" | "timedOut" | "cancelled" }> {
  return e.type === "granted" || e.type === "rejected" || e.type === "timedOut" || e.type === "cancelled";
}

/** A lease's load on the wire: the per-dimension object, or 0 when nothing was charged. */
export function wireLoad(load: Readonly<Record<string, number>>): Load {
  return Object.keys(load).length === 0 ? 0 : load;
}
