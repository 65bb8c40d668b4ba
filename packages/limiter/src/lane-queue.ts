/**
 * One lane's waiting line: ordered by priority (higher first), then arrival.
 * A FIFO per distinct priority plus a sorted list of the priorities present,
 * so enqueue and taking the head are O(1) (O(distinct priorities) when a new
 * priority appears) whatever the number of waiters. Removal (cancel, timeout,
 * session end) is lazy: the caller marks the waiter dead and calls
 * {@link LaneQueue.dropped}; dead waiters are skipped at the head and purged
 * when they outnumber the live ones, so memory stays O(live waiters).
 */
export interface Queued {
  alive: boolean;
  readonly priority: number;
}

interface Fifo<W> {
  items: W[];
  head: number;
}

export class LaneQueue<W extends Queued> {
  readonly #byPriority = new Map<number, Fifo<W>>();
  /** Priorities present, highest first. */
  #priorities: number[] = [];
  #deadCount = 0;
  /** Live waiters in this lane. */
  live = 0;

  push(w: W): void {
    let fifo = this.#byPriority.get(w.priority);
    if (fifo === undefined) {
      fifo = { items: [], head: 0 };
      this.#byPriority.set(w.priority, fifo);
      let i = 0;
      while (i < this.#priorities.length && (this.#priorities[i] as number) > w.priority) i++;
      this.#priorities.splice(i, 0, w.priority);
    }
    fifo.items.push(w);
    this.live++;
  }

  /** The live waiter that is first in line, or undefined. */
  head(): W | undefined {
    while (this.#priorities.length > 0) {
      const p = this.#priorities[0] as number;
      const fifo = this.#byPriority.get(p) as Fifo<W>;
      while (fifo.head < fifo.items.length) {
        const w = fifo.items[fifo.head] as W;
        if (w.alive) return w;
        fifo.head++;
        this.#deadCount--;
      }
      this.#byPriority.delete(p);
      this.#priorities.shift();
    }
    return undefined;
  }

  /** Removes the head returned by {@link head} (it was granted). */
  shift(w: W): void {
    const fifo = this.#byPriority.get(w.priority);
    if (fifo === undefined || fifo.items[fifo.head] !== w) throw new Error("lane queue: shift of a waiter that is not the head");
    fifo.head++;
    this.live--;
    if (fifo.head >= 1024 && fifo.head * 2 >= fifo.items.length) {
      fifo.items = fifo.items.slice(fifo.head);
      fifo.head = 0;
    }
  }

  /** Records that a waiter of this lane was marked dead (alive = false). */
  dropped(): void {
    this.live--;
    this.#deadCount++;
    if (this.live < 0) throw new Error("lane queue: negative live count");
    if (this.#deadCount > 1024 && this.#deadCount > this.live) this.#purge();
  }

  #purge(): void {
    for (const fifo of this.#byPriority.values()) {
      fifo.items = fifo.items.slice(fifo.head).filter((w) => w.alive);
      fifo.head = 0;
    }
    this.#deadCount = 0;
  }

  /** Live waiters in line order (priority desc, arrival asc). O(n): for config changes and snapshots. */
  inOrder(): W[] {
    const out: W[] = [];
    for (const p of this.#priorities) {
      const fifo = this.#byPriority.get(p) as Fifo<W>;
      for (let i = fifo.head; i < fifo.items.length; i++) {
        const w = fifo.items[i] as W;
        if (w.alive) out.push(w);
      }
    }
    return out;
  }
}
