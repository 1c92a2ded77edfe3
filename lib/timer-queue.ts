/**
 * The reactor's timers: a binary min-heap on deadline (ms, monotonic), ties in insertion order.
 * The heap is indexed (each entry knows its position), so cancel() takes the entry out at once
 * and reschedule() moves it in place: the heap holds live timers only, O(log n) per operation.
 */
export interface Timer {
  /** When it is due (ms on the performance.now() clock). */
  readonly deadline: number;
  /** Repeat period for intervals, 0 for one-shot timers. */
  readonly interval: number;
  readonly callback: () => void;
  /** False once it has fired (one-shot) or was cleared. */
  readonly active: boolean;
}

class TimerEntry implements Timer {
  /** Position in the owner's heap; -1 when not in it (fired or cleared). */
  index = -1;

  constructor(
    readonly queue: TimerQueue,
    public deadline: number,
    readonly interval: number,
    readonly callback: () => void,
    public sequence: number,
  ) {}

  get active(): boolean {
    return this.index >= 0;
  }
}

export class TimerQueue {
  private readonly heap: TimerEntry[] = [];
  private sequence = 0;

  /** Timers still to fire. */
  get size(): number {
    return this.heap.length;
  }

  add(delayMs: number, callback: () => void, interval = 0, now = performance.now()): Timer {
    if (typeof callback !== 'function') throw new TypeError('The timer callback must be a function');
    const entry = new TimerEntry(this, now + clampDelay(delayMs), interval, callback, this.sequence++);
    this.insert(entry);
    return entry;
  }

  /** Takes `timer` out of the queue; anything not pending here (fired, cleared, foreign, junk) is ignored. */
  cancel(timer: Timer): void {
    if (!(timer instanceof TimerEntry) || timer.queue !== this || timer.index < 0) return;
    this.removeAt(timer.index);
  }

  /**
   * Makes `timer` due `delayMs` from `now`, as if it had just been added (an interval keeps its
   * period); a timer that has fired or was cleared becomes pending again. O(log n).
   */
  reschedule(timer: Timer, delayMs: number, now = performance.now()): void {
    if (!(timer instanceof TimerEntry) || timer.queue !== this) throw new TypeError('reschedule() takes a timer of this queue');
    timer.deadline = now + clampDelay(delayMs);
    timer.sequence = this.sequence++;
    if (timer.index < 0) {
      this.insert(timer);
    } else {
      this.siftDown(this.siftUp(timer.index));
    }
  }

  /** Milliseconds until the next timer (0 if due), or null when there is none. */
  nextTimeout(now = performance.now()): number | null {
    const top = this.heap[0];
    return top === undefined ? null : Math.max(0, top.deadline - now);
  }

  /** The deadline of the next timer, Infinity when there is none. */
  get nextDeadline(): number {
    const top = this.heap[0];
    return top === undefined ? Infinity : top.deadline;
  }

  /**
   * Runs every timer due by `now` and returns how many ran. With `failures`, a callback that
   * throws does not stop the others: its error is appended there. Without it, the error
   * propagates at once; the queue is consistent either way (a timer is taken out or rescheduled
   * before its callback runs), and the timers still due run on the next call.
   * An interval is next due one period after its deadline, or, if that has passed too (it is
   * late), one period after `now`: a late interval fires once, never in a burst.
   */
  runDue(now = performance.now(), failures?: unknown[]): number {
    const heap = this.heap;
    let ran = 0;
    while (heap.length > 0 && heap[0].deadline <= now) {
      const top = heap[0];
      if (top.interval > 0) {
        const next = top.deadline + top.interval;
        top.deadline = next > now ? next : now + top.interval;
        top.sequence = this.sequence++;
        this.siftDown(0);
      } else {
        this.removeAt(0);
      }
      ran++;
      if (failures === undefined) {
        top.callback();
        continue;
      }
      try {
        top.callback();
      } catch (err) {
        failures.push(err);
      }
    }
    return ran;
  }

  private insert(entry: TimerEntry): void {
    entry.index = this.heap.length;
    this.heap.push(entry);
    this.siftUp(entry.index);
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const removed = heap[i];
    const last = heap.pop()!;
    removed.index = -1;
    if (last === removed) return;
    heap[i] = last;
    last.index = i;
    this.siftDown(this.siftUp(i));
  }

  private less(a: TimerEntry, b: TimerEntry): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.sequence < b.sequence);
  }

  /** Moves the entry at `i` up to its place; returns where it ended. */
  private siftUp(i: number): number {
    const heap = this.heap;
    const entry = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(entry, heap[parent])) break;
      this.place(heap[parent], i);
      i = parent;
    }
    this.place(entry, i);
    return i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const entry = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const child = r < heap.length && this.less(heap[r], heap[l]) ? r : l;
      if (!this.less(heap[child], entry)) break;
      this.place(heap[child], i);
      i = child;
    }
    this.place(entry, i);
  }

  private place(entry: TimerEntry, i: number): void {
    this.heap[i] = entry;
    entry.index = i;
  }
}

function clampDelay(delayMs: number): number {
  return delayMs >= 0 ? delayMs : 0; // NaN and negatives: due now.
}
