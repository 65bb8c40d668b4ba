import type { ReadState } from "@ratequeue/raft";
import type { NodeEnv, TimerHandle } from "./env.js";
import { ProposalLostError } from "./proposals.js";

interface Read {
  /** The read index Raft confirmed, or null while the heartbeat round runs. */
  index: number | null;
  resolve(index: number): void;
  reject(err: Error): void;
  readonly timer: TimerHandle;
}

/**
 * Waiters for linearizable reads (Raft's ReadIndex, thesis 6.4), by context: a read is confirmed when Raft hands
 * out its ReadState, and answered once this node has applied up to its index. Every waiter is answered once: by
 * the applied index, a failure or its timeout.
 */
export class ReadWaiters {
  readonly #env: NodeEnv;
  readonly #nonce: string;
  #seq = 0;
  readonly #reads = new Map<string, Read>();

  /** `nonce` makes this process's read contexts unique (the proposals' nonce). */
  constructor(env: NodeEnv, nonce: string) {
    this.#env = env;
    this.#nonce = nonce;
  }

  /** A fresh context for `RawNode.readIndex`. */
  nextContext(): string {
    return `${this.#nonce}:read:${++this.#seq}`;
  }

  /** Waits for the read started under `context`; rejects with ProposalLostError after `timeoutMs`. */
  wait(context: string, timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const timer = this.#env.setTimer(() => {
        if (this.#reads.delete(context)) reject(new ProposalLostError("the read was not confirmed in time; retry"));
      }, timeoutMs);
      this.#reads.set(context, { index: null, resolve, reject, timer });
    });
  }

  /** Records the read indexes Raft confirmed. */
  confirmed(states: readonly ReadState[]): void {
    for (const state of states) {
      const read = this.#reads.get(new TextDecoder().decode(state.context));
      if (read !== undefined) read.index = state.index;
    }
  }

  /** Answers every confirmed read whose index is at or below `applied`. */
  release(applied: number): void {
    if (this.#reads.size === 0) return;
    for (const [context, read] of this.#reads) {
      if (read.index === null || read.index > applied) continue;
      this.#reads.delete(context);
      this.#env.clearTimer(read.timer);
      read.resolve(applied);
    }
  }

  failAll(err: Error): void {
    for (const [context, read] of this.#reads) {
      this.#env.clearTimer(read.timer);
      this.#reads.delete(context);
      read.reject(err);
    }
  }
}
