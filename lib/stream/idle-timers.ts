/**
 * Idle timeouts at O(1) per refresh, the way Node's own timers keep them: one list per duration,
 * ordered by last activity. A refresh stamps the entry and moves it to the tail; one reactor timer
 * per list is due when its head goes idle. A timeout refreshed on every message therefore touches
 * two pointers and a number, never the reactor's timer heap.
 */
import { Reactor } from '../reactor';
import { Timer } from '../timer-queue';

/** One watched thing (a connection). Allocated once; re-tracked as often as needed. */
export class IdleEntry {
  prev: IdleEntry | null = null;
  next: IdleEntry | null = null;
  lastActive = 0;
  list: IdleList | null = null;

  constructor(readonly onIdle: () => void) {}
}

class IdleList {
  head: IdleEntry | null = null;
  tail: IdleEntry | null = null;
  timer: Timer | null = null;

  constructor(readonly ms: number) {}
}

/**
 * A fresh reading, not the reactor's per-turn `now`: activity can come from outside a turn (an
 * attached reactor's application code), where the turn's time may be long past. It is a vDSO
 * clock read, tens of nanoseconds.
 */
function now(): number {
  return performance.now();
}

export class IdleTimers {
  private readonly lists = new Map<number, IdleList>();

  constructor(private readonly reactor: Reactor) {}

  /** Durations with at least one entry watched (a list with none is deleted, with its timer). */
  get listCount(): number {
    return this.lists.size;
  }

  /** Starts (or restarts) watching `entry` for `ms` of inactivity. */
  track(entry: IdleEntry, ms: number): void {
    if (entry.list !== null) this.untrack(entry);
    let list = this.lists.get(ms);
    if (list === undefined) {
      list = new IdleList(ms);
      this.lists.set(ms, list);
    }
    entry.list = list;
    entry.lastActive = now();
    append(list, entry);
    if (list.timer === null) this.arm(list, ms);
  }

  /** Activity: the entry's idle period starts over. */
  refresh(entry: IdleEntry): void {
    touchEntry(entry);
  }

  untrack(entry: IdleEntry): void {
    const list = entry.list;
    if (list === null) return;
    unlink(list, entry);
    entry.list = null;
    if (list.head === null) {
      if (list.timer !== null) this.reactor.clearTimer(list.timer);
      list.timer = null;
      if (this.lists.get(list.ms) === list) this.lists.delete(list.ms);
    }
  }

  private arm(list: IdleList, delayMs: number): void {
    list.timer = this.reactor.setTimeout(() => this.expire(list), delayMs);
  }

  private expire(list: IdleList): void {
    list.timer = null;
    const t = now();
    // Entries are in order of last activity: stop at the first one still within its period.
    for (let entry = list.head; entry !== null && entry.lastActive + list.ms <= t; entry = list.head) {
      this.untrack(entry);
      entry.onIdle();
    }
    if (list.head !== null && list.timer === null) this.arm(list, list.head.lastActive + list.ms - t);
  }
}

/** Activity on a tracked entry: it moves to its list's tail. The entry knows its list: no timer work, no lookup. */
export function touchEntry(entry: IdleEntry): void {
  const list = entry.list;
  if (list === null) return;
  entry.lastActive = now();
  if (list.tail !== entry) {
    unlink(list, entry);
    append(list, entry);
  }
}

function append(list: IdleList, entry: IdleEntry): void {
  entry.prev = list.tail;
  entry.next = null;
  if (list.tail !== null) list.tail.next = entry;
  else list.head = entry;
  list.tail = entry;
}

function unlink(list: IdleList, entry: IdleEntry): void {
  if (entry.prev !== null) entry.prev.next = entry.next;
  else list.head = entry.next;
  if (entry.next !== null) entry.next.prev = entry.prev;
  else list.tail = entry.prev;
  entry.prev = entry.next = null;
}
