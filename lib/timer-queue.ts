/** The reactor's timers: a binary min-heap on deadline (ms, monotonic), ties in insertion order. */
export interface Timer {
  readonly deadline: number;
  /** Repeat period for intervals, 0 for one-shot timers. */
  readonly interval: number;
  readonly callback: () => void;
  /** False once it has fired (one-shot) or was cleared. */
  active: boolean;
}

interface Entry extends Timer {
  deadline: number;
  sequence: number;
}

export class TimerQueue {
  private readonly heap: Entry[] = [];
  private sequence = 0;
  private live = 0;

  /** Timers still to fire (cancelled ones excluded, even while they wait in the heap). */
  get size(): number {
    return this.live;
  }

  add(delayMs: number, callback: () => void, interval = 0, now = performance.now()): Timer {
    if (typeof callback !== 'function') throw new TypeError('The timer callback must be a function');
    if (!(delayMs >= 0)) delayMs = 0;
    const entry: Entry = { deadline: now + delayMs, interval, callback, active: true, sequence: this.sequence++ };
    this.push(entry);
    this.live++;
    return entry;
  }

  /** Cancelled timers stay in the heap until they reach the top (cheap cancel). */
  cancel(timer: Timer): void {
    if (!timer.active) return;
    timer.active = false;
    this.live--;
  }

  /** Milliseconds until the next live timer (0 if due), or null when there is none. */
  nextTimeout(now = performance.now()): number | null {
    this.dropCancelled();
    if (this.heap.length === 0) return null;
    return Math.max(0, this.heap[0].deadline - now);
  }

  /** Runs every timer due by `now`; returns how many ran. */
  runDue(now = performance.now()): number {
    let ran = 0;
    for (;;) {
      this.dropCancelled();
      const top = this.heap[0];
      if (top === undefined || top.deadline > now) return ran;
      this.pop();
      if (top.interval > 0) {
        top.deadline = Math.max(top.deadline + top.interval, now);
        top.sequence = this.sequence++;
        this.push(top);
      } else {
        top.active = false;
        this.live--;
      }
      ran++;
      top.callback();
    }
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && !this.heap[0].active) this.pop();
  }

  private less(a: Entry, b: Entry): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.sequence < b.sequence);
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  private pop(): Entry | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.less(heap[l], heap[m])) m = l;
        if (r < heap.length && this.less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  }
}
