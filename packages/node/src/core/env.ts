import type { Message, NodeId } from "@ratequeue/raft";
import type { ServerMessage } from "@ratequeue/protocol";

/**
 * Everything the node's logic needs from the outside world, behind small
 * interfaces: the real process plugs in the wall clock, timers, ws links and
 * LevelDB; the simulator plugs in its own. The core never reaches past them.
 */
export interface NodeEnv {
  /**
   * Milliseconds of a monotonic clock (performance.now()): no epoch, restarts with the process, never jumps with
   * the wall clock. Log time (the leader's stamps) and every duration the node measures come from it.
   */
  monotonicNow(): number;
  /**
   * Wall-clock milliseconds (Date.now()), for display only: the origin of a brand-new cluster's log time and the
   * clock offsets nodes report to each other. Nothing a window measures depends on it.
   */
  wallNow(): number;
  /** Runs `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /** Runs `fn` soon, after the current event (setImmediate), so one turn's requests batch together. */
  defer(fn: () => void): void;
  /** A fresh random id (sessions, proposal nonces). */
  randomId(): string;
  /** A seed for Raft's election-timeout generator. */
  randomSeed(): number;
  /** Sends Raft messages to one peer (best-effort; Raft retries). */
  sendPeer(to: NodeId, messages: readonly Message[]): void;
}

export type TimerHandle = { readonly __timer: unique symbol } | object;

/** One client connection, as the core sees it. */
export interface ClientLink {
  /** Queues messages for this client; the adapter sends each turn's messages in one frame. */
  send(message: ServerMessage): void;
  /** Closes the connection after what was queued (WebSocket close code and reason). */
  close(code: number, reason: string): void;
}

/** WebSocket close codes the node uses (4000-4999 is the application range). */
export const CloseCode = {
  NORMAL: 1000,
  PROTOCOL: 1002,
  NOT_LEADER: 4001,
  UNAUTHORIZED: 4003,
  SESSION_EXPIRED: 4004,
  SHUTTING_DOWN: 4005,
} as const;
