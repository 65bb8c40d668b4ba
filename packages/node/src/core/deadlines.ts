import type { NodeEnv, TimerHandle } from "./env.js";

/**
 * The leader's deadline timer. Time moves forward only by log entries, so the leader proposes a tick entry when the
 * limiter's next deadline (a window edge, a timeout, a session expiry) comes, and every node expires the same things
 * at the same log time. At most one tick proposal is outstanding: the timer is not armed again until it applied
 * (or was refused, or leadership moved).
 */
export class DeadlineTimer {
  readonly #env: NodeEnv;
  readonly #fire: () => void;
  #timer: TimerHandle | null = null;
  #at: number | null = null;
  /** A tick entry was proposed and has not applied yet. */
  tickInFlight = false;

  /** `fire` proposes the tick entry (it runs only while armed; it sets nothing here but `tickInFlight`). */
  constructor(env: NodeEnv, fire: () => void) {
    this.#env = env;
    this.#fire = fire;
  }

  /**
   * Arms the timer for `deadline` (log time; null: nothing is due), `delayMs` from now, unless a tick is in flight
   * or the timer is already armed for that deadline or an earlier one.
   */
  arm(deadline: number | null, delayMs: (deadline: number) => number): void {
    if (this.tickInFlight) return;
    if (deadline === null) return this.clear();
    if (this.#at !== null && this.#at <= deadline) return;
    this.clear();
    this.#at = deadline;
    this.#timer = this.#env.setTimer(() => {
      this.#timer = null;
      this.#at = null;
      this.#fire();
    }, delayMs(deadline));
  }

  clear(): void {
    if (this.#timer !== null) this.#env.clearTimer(this.#timer);
    this.#timer = null;
    this.#at = null;
  }

  /** Leadership moved: nothing is armed and no tick of this node's is in flight any more. */
  reset(): void {
    this.tickInFlight = false;
    this.clear();
  }
}
