/**
 * Leaders advance log time at this fraction of their monotonic clock. A monotonic clock may run fast (a crystal's
 * error is tens of ppm; NTP slews CLOCK_MONOTONIC by up to 500 ppm): running 0.1% slow on purpose keeps log time
 * from ever outrunning real time as long as the clock is within 0.1%. It costs at most 0.1% of a window's quota.
 */
export const STAMP_RATE = 0.999;

/**
 * The clock a node stamps entries with when it leads (SPEC guarantee 6): log
 * time continues from the last stamp in this node's log, by the monotonic time
 * this process has seen pass since that stamp reached it. No wall clock moves
 * it, so a wall clock that is wrong or jumps can neither speed up nor freeze a
 * window. Counting from the moment a stamp *reached* this node (never from
 * when it was made) errs slow: across a change of leader, log time loses the
 * time the last stamp took to reach the new leader (and any time the new
 * leader was down since), never gains. Within a term it follows the leader's
 * monotonic clock at STAMP_RATE. Stamps never go below the last one in the log.
 *
 * The only wall-clock reading is the origin: the first stamp of a brand-new
 * cluster (no stamp anywhere in its log) is the wall clock, so log times read
 * as dates; every later stamp is elapsed time from there. All inputs are
 * milliseconds passed in: the clock reads nothing itself.
 */
export class StampClock {
  /** The last stamp in this node's log (the floor of every new stamp), or null when its log holds none. */
  #last: number | null = null;
  /** Log time runs from (anchorStamp at anchorMono): anchorStamp + floor((mono - anchorMono) * STAMP_RATE). */
  #anchorStamp = 0;
  #anchorMono = 0;

  /** The stamp `stampMs` became the last in this node's log at monotonic time `monoMs` (from a leader, a snapshot, the disk, or a cut tail). */
  learned(stampMs: number, monoMs: number): void {
    this.#last = stampMs;
    this.#anchorStamp = stampMs;
    this.#anchorMono = monoMs;
  }

  /** What log time reads now by this node's clock; null before it knows any stamp. */
  read(monoMs: number): number | null {
    if (this.#last === null) return null;
    return Math.max(this.#last, this.#anchorStamp + Math.floor((monoMs - this.#anchorMono) * STAMP_RATE));
  }

  /** The stamp for an entry this leader proposes now; it becomes the last stamp (the anchor stays, so no rounding accumulates). */
  stamp(monoMs: number, wallMs: number): number {
    let at = this.read(monoMs);
    if (at === null) {
      at = Math.max(0, Math.floor(wallMs));
      this.#anchorStamp = at;
      this.#anchorMono = monoMs;
    }
    this.#last = at;
    return at;
  }

  /** Monotonic ms from `monoMs` until this clock reads at least `stampMs` (0 if it already does). */
  delayUntil(stampMs: number, monoMs: number): number {
    const now = this.read(monoMs);
    if (now === null || now >= stampMs) return 0;
    return Math.max(0, Math.ceil(this.#anchorMono + (stampMs - this.#anchorStamp) / STAMP_RATE - monoMs));
  }
}
