/**
 * A binary min-heap ordered by (key, tie), both numbers, so the pop order is
 * fully determined by the entries and never by insertion history. Used with
 * lazy deletion: the owner checks a popped entry against live state.
 */
export class MinHeap<T> {
  private keys: number[] = [];
  private ties: number[] = [];
  private items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  private less(a: number, b: number): boolean {
    const ka = this.keys[a] as number;
    const kb = this.keys[b] as number;
    return ka < kb || (ka === kb && (this.ties[a] as number) < (this.ties[b] as number));
  }

  private swap(a: number, b: number): void {
    const k = this.keys[a] as number;
    this.keys[a] = this.keys[b] as number;
    this.keys[b] = k;
    const t = this.ties[a] as number;
    this.ties[a] = this.ties[b] as number;
    this.ties[b] = t;
    const it = this.items[a] as T;
    this.items[a] = this.items[b] as T;
    this.items[b] = it;
  }

  push(key: number, tie: number, item: T): void {
    this.keys.push(key);
    this.ties.push(tie);
    this.items.push(item);
    let i = this.items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peekKey(): number | undefined {
    return this.keys[0];
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const top = this.items[0] as T;
    this.swap(0, n - 1);
    this.keys.pop();
    this.ties.pop();
    this.items.pop();
    let i = 0;
    const size = n - 1;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && this.less(l, m)) m = l;
      if (r < size && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }

  /** Keeps only entries for which `keep` holds (to bound garbage from lazy deletion). */
  filter(keep: (item: T, key: number) => boolean): void {
    const entries: [number, number, T][] = [];
    for (let i = 0; i < this.items.length; i++) {
      if (keep(this.items[i] as T, this.keys[i] as number)) entries.push([this.keys[i] as number, this.ties[i] as number, this.items[i] as T]);
    }
    this.keys = [];
    this.ties = [];
    this.items = [];
    for (const [k, t, it] of entries) this.push(k, t, it);
  }
}
