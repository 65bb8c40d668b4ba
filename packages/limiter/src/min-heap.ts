/**
 * A binary min-heap ordered by (key, tie), both numbers, so the pop order is
 * fully determined by the entries and never by insertion history. Used with
 * lazy deletion: the owner checks a popped entry against live state.
 */
export class MinHeap<T> {
  #keys: number[] = [];
  #ties: number[] = [];
  #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** Whether (k1, t1) orders before (k2, t2). */
  static #before(k1: number, t1: number, k2: number, t2: number): boolean {
    return k1 < k2 || (k1 === k2 && t1 < t2);
  }

  push(key: number, tie: number, item: T): void {
    // Sift up by moving a hole, not by swapping: one write per level.
    let i = this.#items.length;
    this.#keys.push(key);
    this.#ties.push(tie);
    this.#items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pk = this.#keys[parent] as number;
      const pt = this.#ties[parent] as number;
      if (!MinHeap.#before(key, tie, pk, pt)) break;
      this.#keys[i] = pk;
      this.#ties[i] = pt;
      this.#items[i] = this.#items[parent] as T;
      i = parent;
    }
    this.#keys[i] = key;
    this.#ties[i] = tie;
    this.#items[i] = item;
  }

  peekKey(): number | undefined {
    return this.#keys[0];
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  pop(): T | undefined {
    const n = this.#items.length;
    if (n === 0) return undefined;
    const top = this.#items[0] as T;
    const key = this.#keys.pop() as number;
    const tie = this.#ties.pop() as number;
    const item = this.#items.pop() as T;
    const size = n - 1;
    if (size === 0) return top;
    // Sift the last entry down from the root through a hole.
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      const r = c + 1;
      if (r < size && MinHeap.#before(this.#keys[r] as number, this.#ties[r] as number, this.#keys[c] as number, this.#ties[c] as number)) c = r;
      const ck = this.#keys[c] as number;
      const ct = this.#ties[c] as number;
      if (!MinHeap.#before(ck, ct, key, tie)) break;
      this.#keys[i] = ck;
      this.#ties[i] = ct;
      this.#items[i] = this.#items[c] as T;
      i = c;
    }
    this.#keys[i] = key;
    this.#ties[i] = tie;
    this.#items[i] = item;
    return top;
  }

  /** Keeps only entries for which `keep` holds (to bound garbage from lazy deletion). */
  filter(keep: (item: T, key: number) => boolean): void {
    const entries: [number, number, T][] = [];
    for (let i = 0; i < this.#items.length; i++) {
      if (keep(this.#items[i] as T, this.#keys[i] as number)) entries.push([this.#keys[i] as number, this.#ties[i] as number, this.#items[i] as T]);
    }
    this.#keys = [];
    this.#ties = [];
    this.#items = [];
    for (const [k, t, it] of entries) this.push(k, t, it);
  }
}
