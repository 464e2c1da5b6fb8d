// A binary min-heap of small integers (node indexes) under a caller-given
// order that may change for the top element only (the scheduler bumps the
// counters of the node it just chose, then sifts it down).
export class IndexHeap {
  private readonly a: number[];

  constructor(
    items: readonly number[],
    private readonly less: (x: number, y: number) => boolean,
  ) {
    this.a = [...items];
    for (let i = (this.a.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  get size(): number {
    return this.a.length;
  }

  peek(): number | undefined {
    return this.a[0];
  }

  pop(): number | undefined {
    const top = this.a[0];
    const last = this.a.pop();
    if (this.a.length && last !== undefined) {
      this.a[0] = last;
      this.down(0);
    }
    return top;
  }

  /** The top element's key grew: restore the order. */
  topChanged(): void {
    this.down(0);
  }

  private down(i: number): void {
    const a = this.a;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const c = r < n && this.less(a[r], a[l]) ? r : l;
      if (!this.less(a[c], a[i])) return;
      const tmp = a[c];
      a[c] = a[i];
      a[i] = tmp;
      i = c;
    }
  }
}
