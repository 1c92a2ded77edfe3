/**
 * The Selector contract, in the spirit of Python's `selectors`: register descriptors with an
 * interest (READ, WRITE or both) and some data, then wait for the ready ones. The bookkeeping
 * (the fd -> key map, rollback, validation) is written once here; each mechanism adds only the
 * system calls that differ.
 */
import { systemError } from '../errors';
import { constants, WaitMechanism, WaitThread } from '../native';

/** Interest and readiness bits, as Python's selectors.EVENT_READ / EVENT_WRITE. */
export const EVENT_READ = 1;
export const EVENT_WRITE = 2;
const ALL_EVENTS = EVENT_READ | EVENT_WRITE;

/** One registration. `readyEvents` is filled by select(); `registered` turns false on unregister. */
export class SelectorKey<T = unknown> {
  /** What the last select() found ready on this descriptor (a subset of `events`). */
  readyEvents = 0;
  /** False once unregistered: a ready key from an earlier batch must then be skipped. */
  registered = true;
  /** Mechanism-private position (the pollfd slot for select/poll). */
  slot = -1;

  constructor(readonly fd: number, public events: number, public data: T) {}
}

export interface Selector<T = unknown> {
  /** The mechanism's name: 'select', 'poll', 'epoll' or 'wsapoll'. */
  readonly mechanism: string;
  register(fd: number, events: number, data?: T): SelectorKey<T>;
  /** Changes the interest (and data); returns the key. */
  modify(fd: number, events: number, data?: T): SelectorKey<T>;
  /** Forgets `fd`; tolerates a descriptor that was already closed. */
  unregister(fd: number): SelectorKey<T>;
  /**
   * Waits up to `timeoutMs` (null/undefined: forever; <= 0: do not block; fractions round up)
   * and returns the ready keys, each with `readyEvents` set. The array is reused: it is valid
   * until the next call. A signal does not cut the wait short.
   */
  select(timeoutMs?: number | null): readonly SelectorKey<T>[];
  getKey(fd: number): SelectorKey<T> | undefined;
  readonly keys: ReadonlyMap<number, SelectorKey<T>>;
  /** Starts a wait on `thread` equivalent to select(timeoutMs), for the attached reactor. */
  armWait(thread: WaitThread, timeoutMs: number | null): void;
  /** True when interest changes are seen by an armed wait without re-arming (epoll). */
  readonly liveInterest: boolean;
  close(): void;
  readonly closed: boolean;
}

/** Python's convention: null/undefined blocks; zero or negative polls. */
export function nativeTimeout(timeoutMs: number | null | undefined): number {
  if (timeoutMs === null || timeoutMs === undefined) return -1;
  return timeoutMs > 0 ? timeoutMs : 0;
}

export abstract class BaseSelector<T = unknown> implements Selector<T> {
  abstract readonly mechanism: string;
  readonly liveInterest: boolean = false;
  protected readonly map = new Map<number, SelectorKey<T>>();
  protected readonly ready: SelectorKey<T>[] = [];
  private isClosed = false;

  get keys(): ReadonlyMap<number, SelectorKey<T>> {
    return this.map;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  getKey(fd: number): SelectorKey<T> | undefined {
    return this.map.get(fd);
  }

  register(fd: number, events: number, data?: T): SelectorKey<T> {
    this.checkOpen();
    checkDescriptor(fd);
    checkEvents(events);
    if (this.map.has(fd)) throw systemError(constants.errno.EEXIST, 'register', `(fd ${fd} is already registered)`);
    const key = new SelectorKey<T>(fd, events, data as T);
    this.map.set(fd, key);
    try {
      this.add(key);
    } catch (err) {
      // Roll back: a failed registration leaves no trace.
      this.map.delete(fd);
      key.registered = false;
      throw err;
    }
    return key;
  }

  modify(fd: number, events: number, data?: T): SelectorKey<T> {
    this.checkOpen();
    checkEvents(events);
    const key = this.mustGet(fd, 'modify');
    if (events !== key.events || this.rearmsOnModify()) {
      const previous = key.events;
      key.events = events;
      try {
        this.update(key, previous);
      } catch (err) {
        key.events = previous;
        throw err;
      }
    }
    if (data !== undefined) key.data = data;
    return key;
  }

  unregister(fd: number): SelectorKey<T> {
    this.checkOpen();
    const key = this.mustGet(fd, 'unregister');
    this.map.delete(fd);
    key.registered = false;
    this.remove(key);
    return key;
  }

  select(timeoutMs?: number | null): readonly SelectorKey<T>[] {
    this.checkOpen();
    this.ready.length = 0;
    this.wait(nativeTimeout(timeoutMs));
    return this.ready;
  }

  close(): void {
    if (this.isClosed) return;
    for (const key of this.map.values()) key.registered = false;
    this.map.clear();
    this.ready.length = 0;
    this.isClosed = true;
    this.release();
  }

  abstract armWait(thread: WaitThread, timeoutMs: number | null): void;

  /** The mechanism's registration call; throw to refuse (the key is rolled back). */
  protected abstract add(key: SelectorKey<T>): void;
  /** The interest of `key` changed from `previous` to `key.events`. */
  protected abstract update(key: SelectorKey<T>, previous: number): void;
  /** `key` was unregistered; its descriptor may already be closed. */
  protected abstract remove(key: SelectorKey<T>): void;
  /** Waits (native timeout convention: -1 forever) and pushes ready keys onto `this.ready`. */
  protected abstract wait(timeoutMs: number): void;
  /** Frees the mechanism's own resources. */
  protected abstract release(): void;
  /** Whether modify() must reach the kernel even with unchanged events (epoll one-shot re-arm). */
  protected rearmsOnModify(): boolean {
    return false;
  }

  private mustGet(fd: number, syscall: string): SelectorKey<T> {
    const key = this.map.get(fd);
    if (!key) throw systemError(constants.errno.ENOENT, syscall, `(fd ${fd} is not registered)`);
    return key;
  }

  private checkOpen(): void {
    if (this.isClosed) throw new Error(`This ${this.mechanism} selector is closed`);
  }
}

export function checkDescriptor(fd: number): void {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) throw new TypeError(`A descriptor must be an integer; got ${String(fd)}`);
  if (fd < 0) throw new RangeError(`A descriptor must be >= 0; got ${fd}`);
}

function checkEvents(events: number): void {
  if (typeof events !== 'number' || !Number.isInteger(events)) throw new TypeError('events must be EVENT_READ, EVENT_WRITE or both');
  if (events <= 0 || (events & ~ALL_EVENTS) !== 0) {
    throw new RangeError(`events must be EVENT_READ (1), EVENT_WRITE (2) or both (3); got ${events}`);
  }
}

export { WaitMechanism };
