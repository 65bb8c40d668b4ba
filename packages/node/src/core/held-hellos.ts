import type { Hello } from "@ratequeue/protocol";
import type { ClientConnection } from "./client-connection.js";
import type { NodeEnv, TimerHandle } from "./env.js";

/**
 * Connections held while no leader is known (answered when an election ends, or after `waitMs`): hellos that
 * reached this node while it knew no leader (`hello` set), and clients of this node when it lost leadership with
 * no successor known yet (`hello` null), so that they are sent straight to the new leader rather than away to
 * search with back-off. Each connection is held at most once, and its timer always cleared when it leaves.
 */
export class HeldHellos {
  readonly #held = new Map<ClientConnection, { hello: Hello | null; timer: TimerHandle }>();
  readonly #env: NodeEnv;
  readonly #waitMs: number;
  readonly #onTimeout: (conn: ClientConnection) => void;

  /** `onTimeout(conn)` answers a connection still held after `waitMs` (it has left the set by then). */
  constructor(env: NodeEnv, waitMs: number, onTimeout: (conn: ClientConnection) => void) {
    this.#env = env;
    this.#waitMs = waitMs;
    this.#onTimeout = onTimeout;
  }

  get size(): number {
    return this.#held.size;
  }

  has(conn: ClientConnection): boolean {
    return this.#held.has(conn);
  }

  /** Holds `conn` until `take` or `drop`, or `waitMs`; a connection already held keeps its first hold. */
  hold(conn: ClientConnection, hello: Hello | null): void {
    if (this.#held.has(conn)) return;
    const timer = this.#env.setTimer(() => {
      if (this.#held.delete(conn)) this.#onTimeout(conn);
    }, this.#waitMs);
    this.#held.set(conn, { hello, timer });
  }

  /** Lets `conn` go unanswered (it closed, or was answered another way). */
  drop(conn: ClientConnection): void {
    const held = this.#held.get(conn);
    if (held === undefined) return;
    this.#env.clearTimer(held.timer);
    this.#held.delete(conn);
  }

  /** Every held connection with its hello, in the order held; none is held afterwards. */
  takeAll(): [ClientConnection, Hello | null][] {
    const all = [...this.#held].map(([conn, { hello, timer }]): [ClientConnection, Hello | null] => {
      this.#env.clearTimer(timer);
      return [conn, hello];
    });
    this.#held.clear();
    return all;
  }
}
