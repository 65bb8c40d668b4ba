import { ErrorCode } from "@ratequeue/protocol";
import type { NodeId } from "@ratequeue/raft";
import type { OpResult } from "./cluster-state.js";
import type { NodeEnv, TimerHandle } from "./env.js";
import type { Op } from "./ops.js";

/** Thrown to a proposer when this node cannot propose: the caller redirects to `leader`. */
export class NotLeaderError extends Error {
  override readonly name = "NotLeaderError";
  readonly code = ErrorCode.RQ_UNAVAILABLE;
  constructor(readonly leader: NodeId | null) {
    super(leader === null ? "no leader right now; retry shortly" : `not the leader; the leader is ${leader}`);
  }
}

/** A proposal whose fate is unknown (leadership moved before it applied); it may or may not have applied. */
export class ProposalLostError extends Error {
  override readonly name = "ProposalLostError";
  readonly code = ErrorCode.RQ_UNAVAILABLE;
  constructor(message: string) {
    super(message);
  }
}

/** A proposal waits at most this long for its entry to apply before its waiter is told it is lost. */
export const PROPOSAL_TIMEOUT_MS = 10_000;

interface Waiter {
  resolve(result: OpResult): void;
  reject(err: Error): void;
  readonly timer: TimerHandle;
}

/**
 * The leader's proposals: ops collected during one turn of the event loop travel in one log entry (the batch), and
 * each op a caller waits for carries a proposal id (`pid`) whose waiter is answered when the op applies here, or
 * told it is lost. Every waiter is answered exactly once: by its result, a refusal, a failure or its timeout.
 */
export class Proposals {
  readonly #env: NodeEnv;
  readonly #flush: () => void;
  #batch: Op[] = [];
  #scheduled = false;
  readonly #nonce: string;
  #seq = 0;
  readonly #waiters = new Map<string, Waiter>();
  /** When each pid was enqueued (monotonic ms), for the commit latency samples. */
  readonly #enqueuedAt = new Map<string, number>();
  /** Commit latency samples (ms from enqueue to apply on this leader), drained by metrics; at most 10,000 kept. */
  readonly latenciesMs: number[] = [];

  /** `flush` proposes the batch (it calls `take()`); it runs deferred, once per turn with ops enqueued. */
  constructor(env: NodeEnv, flush: () => void) {
    this.#env = env;
    this.#flush = flush;
    this.#nonce = env.randomId();
  }

  /** What makes this process's ids unique (a random id drawn at start). */
  get nonce(): string {
    return this.#nonce;
  }

  /** A fresh proposal id, unique to this node's process (`kind` marks internal ones, e.g. "tick"). */
  nextId(kind?: string): string {
    return kind === undefined ? `${this.#nonce}:${++this.#seq}` : `${this.#nonce}:${kind}:${++this.#seq}`;
  }

  /** Enqueues `op` under a fresh pid and resolves with its result once it applies here (see NodeCore.propose). */
  propose(op: Op): Promise<OpResult> {
    const pid = this.nextId();
    return new Promise<OpResult>((resolve, reject) => {
      const timer = this.#env.setTimer(() => {
        if (this.#waiters.delete(pid)) reject(new ProposalLostError("the proposal did not apply in time; it may still apply"));
      }, PROPOSAL_TIMEOUT_MS);
      this.#waiters.set(pid, { resolve, reject, timer });
      this.enqueue({ ...op, pid } as Op);
    });
  }

  /** Adds `op` to this turn's batch (nobody waits for it unless its pid has a waiter). */
  enqueue(op: Op): void {
    this.#batch.push(op);
    if (op.pid !== undefined) this.#enqueuedAt.set(op.pid, this.#env.monotonicNow());
    this.scheduleFlush();
  }

  /** Schedules a flush of the batch after the current event, unless one is scheduled. */
  scheduleFlush(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#env.defer(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  /** Whether ops wait in the batch. */
  get batched(): boolean {
    return this.#batch.length > 0;
  }

  /** Takes the batch: the caller proposes these ops in one entry. */
  take(): Op[] {
    const ops = this.#batch;
    this.#batch = [];
    return ops;
  }

  /** Drops the batch unproposed (leadership moved; their waiters are failed with `failAll`). */
  dropBatch(): void {
    this.#batch = [];
  }

  /** Answers the waiters of applied ops and takes a latency sample for each op this node enqueued. */
  settle(results: readonly OpResult[]): void {
    for (const r of results) {
      const pid = r.op.pid;
      if (pid === undefined) continue;
      const started = this.#enqueuedAt.get(pid);
      if (started !== undefined) {
        this.#enqueuedAt.delete(pid);
        if (this.latenciesMs.length < 10_000) this.latenciesMs.push(this.#env.monotonicNow() - started);
      }
      const waiter = this.#take(pid);
      if (waiter !== undefined) waiter.resolve(r);
    }
  }

  /** Fails the waiters of `ops`, which were refused and never entered the log. */
  refuse(ops: readonly Op[], err: Error): void {
    for (const op of ops) {
      if (op.pid === undefined) continue;
      this.#take(op.pid)?.reject(err);
    }
  }

  /** Fails every waiter (leadership moved, or the node stops): their ops may or may not apply. */
  failAll(err: Error): void {
    for (const [pid, waiter] of this.#waiters) {
      this.#env.clearTimer(waiter.timer);
      this.#waiters.delete(pid);
      waiter.reject(err);
    }
    this.#enqueuedAt.clear();
  }

  #take(pid: string): Waiter | undefined {
    const waiter = this.#waiters.get(pid);
    if (waiter === undefined) return undefined;
    this.#waiters.delete(pid);
    this.#env.clearTimer(waiter.timer);
    return waiter;
  }
}
