/**
 * A min-heap of timed items. Items due at the same time come out in the order
 * they were pushed, so a run never depends on heap layout.
 */
export class EventQueue<T> {
  readonly #heap: { atMs: number; seq: number; item: T }[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(atMs: number, item: T): void {
    if (!Number.isFinite(atMs)) throw new RangeError(`event time must be finite, got ${atMs}`);
    const heap = this.#heap;
    heap.push({ atMs, seq: this.#seq++, item });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** The time of the earliest item, or Infinity when empty. */
  peekTimeMs(): number {
    return this.#heap[0]?.atMs ?? Infinity;
  }

  /** Removes and returns the earliest item. */
  pop(): { atMs: number; item: T } | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return { atMs: top.atMs, item: top.item };
  }

  /** Removes every item for which `drop` is true (e.g. a crashed node's timers). */
  removeWhere(drop: (item: T) => boolean): void {
    const kept = this.#heap.filter((e) => !drop(e.item));
    this.#heap.length = 0;
    for (const e of kept.sort((a, b) => (before(a, b) ? -1 : 1))) this.#heap.push(e);
  }
}

function before(a: { atMs: number; seq: number }, b: { atMs: number; seq: number }): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
