import type { Effect } from "@ratequeue/limiter";
import { ErrorCode, wireCodeOf, type Load, type Rejected, type ServerMessage } from "@ratequeue/protocol";

/**
 * The translation of the limiter's answers into client frames, as pure functions: the same effect (and the same
 * `wasTry`) always gives the same frame, on every node.
 */

/**
 * The frame that answers `e` to the client holding its session, or null for an effect a client is not sent.
 * `wasTry`: `e` answers a tryAcquire, whose queueing is not reported and whose time-out is RQ_WOULD_WAIT.
 */
export function effectToWire(e: Effect, wasTry: boolean): ServerMessage | null {
  switch (e.type) {
    case "granted":
      return {
        type: "granted",
        requestId: Number(e.requestId),
        lease: { id: String(e.leaseId), resource: e.resource, load: wireLoad(e.load), grantedAt: e.grantedAt },
      };
    case "queued":
      return wasTry ? null : { type: "queued", requestId: Number(e.requestId) };
    case "rejected":
    case "timedOut":
    case "cancelled": {
      const code = wasTry && e.type === "timedOut" ? ErrorCode.RQ_WOULD_WAIT : wireCodeOf(e.code);
      return { type: "rejected", requestId: Number(e.requestId), code, message: e.message };
    }
    default:
      return null;
  }
}

/** Whether `e` is the last answer to the acquire it names (a grant or an end without one), not a step on the way. */
export function endsAcquire(e: Effect): e is Extract<Effect, { type: "granted" | "rejected" | "timedOut" | "cancelled" }> {
  return e.type === "granted" || e.type === "rejected" || e.type === "timedOut" || e.type === "cancelled";
}

/** The rejection of request `requestId` for a command the limiter refused with an `error` effect. */
export function refusedToWire(requestId: number, err: Extract<Effect, { type: "error" }>): Rejected {
  return { type: "rejected", requestId, code: wireCodeOf(err.code), message: err.message };
}

/** A lease's load on the wire: the per-dimension object, or 0 when nothing was charged. */
export function wireLoad(load: Readonly<Record<string, number>>): Load {
  return Object.keys(load).length === 0 ? 0 : load;
}
