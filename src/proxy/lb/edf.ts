/**
 * Earliest deadline first, the scheduler Envoy's weighted ROUND_ROBIN and
 * LEAST_REQUEST use: each host has a deadline, the host with the earliest
 * one is picked, and it is scheduled again at (that deadline + 1 / its
 * weight now). A host's share is its weight's share; the weight is read
 * again each time the host is picked, so it may change (requests in
 * flight, slow start) without rebuilding anything. A binary heap over
 * typed arrays: O(log n) a pick, nothing allocated.
 */

export class EdfScheduler {
  readonly #deadline: Float64Array;
  /** Ties go to the host scheduled first (FIFO), so equal weights take turns. */
  readonly #order: Float64Array;
  readonly #heap: Uint32Array;
  #seq = 0;

  /** `weightOf(i)` is host i's weight now (> 0; anything else counts as a very small weight). */
  constructor(readonly size: number, readonly weightOf: (i: number) => number) {
    this.#deadline = new Float64Array(size);
    this.#order = new Float64Array(size);
    this.#heap = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      // First deadlines staggered over each host's own interval (a golden-ratio sequence), so that hosts of equal
      // weight are not scheduled together and a heavy host's turns come between theirs rather than in bursts.
      this.#deadline[i] = (((i + 1) * 0.6180339887498949) % 1) * this.#interval(i);
      this.#order[i] = this.#seq++;
      this.#heap[i] = i;
    }
    for (let i = (size >> 1) - 1; i >= 0; i--) this.#down(i);
    // Start at a random point of the schedule, so that many proxies do not all begin with the same host.
    for (let k = Math.floor(Math.random() * size); k > 0; k--) this.pick();
  }

  /** The host with the earliest deadline, scheduled again; -1 when there are none. */
  pick(): number {
    if (this.size === 0) return -1;
    const top = this.#heap[0]!;
    this.#deadline[top] = this.#deadline[top]! + this.#interval(top);
    this.#order[top] = this.#seq++;
    this.#down(0);
    return top;
  }

  #interval(i: number): number {
    const w = this.weightOf(i);
    return w > 1e-9 ? 1 / w : 1e9;
  }

  #before(a: number, b: number): boolean {
    const da = this.#deadline[a]!;
    const db = this.#deadline[b]!;
    return da < db || (da === db && this.#order[a]! < this.#order[b]!);
  }

  #down(at: number): void {
    const heap = this.#heap;
    const n = this.size;
    const item = heap[at]!;
    for (;;) {
      const l = 2 * at + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#before(heap[r]!, heap[l]!) ? r : l;
      if (!this.#before(heap[c]!, item)) break;
      heap[at] = heap[c]!;
      at = c;
    }
    heap[at] = item;
  }
}
