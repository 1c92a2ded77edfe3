/**
 * The Selector contract, in the spirit of Python's `selectors`: register descriptors with an
 * interest (READ, WRITE or both) and some data, then wait for the ready ones. The bookkeeping
 * (the fd -> key map, rollback, validation) is written once here; each mechanism adds only the
 * system calls that differ.
 */
import { systemError } from '../errors';
import { constants, WaitMechanism, WaitThread } from '../native';
import { ReadonlyMapView } from './readonly-map';

/** Interest and readiness bits, as Python's selectors.EVENT_READ / EVENT_WRITE. */
export const EVENT_READ = 1;
export const EVENT_WRITE = 2;
/**
 * Opt-in, with EVENT_READ (epoll only; other selectors accept it and never report it): reported beside
 * EVENT_READ when the event carried more than "data arrived": the peer shut down (RDHUP), hung up (HUP),
 * an error (ERR) or urgent data (PRI). A reader that ends its turn at a short read must read on to EAGAIN
 * when it is set (docs/readiness-lab.md, short-read).
 */
export const EVENT_CONDITION = 4;
const ALL_EVENTS = EVENT_READ | EVENT_WRITE | EVENT_CONDITION;

/** One registration. `readyEvents` is filled by a wait; `registered` turns false on unregister. */
export class SelectorKey<T = unknown> {
  /** What the last wait found ready on this descriptor (a subset of `events`). */
  readyEvents = 0;
  /** False once unregistered: a ready key from an earlier batch must then be skipped. */
  registered = true;
  /** Mechanism-private position (the pollfd slot for select/poll). */
  slot = -1;

  /** `exclusive`: registered with RegisterOptions.exclusive (EPOLLEXCLUSIVE for this descriptor alone). */
  constructor(readonly fd: number, public events: number, public data: T, readonly exclusive = false) {}
}

/** Options of one registration. */
export interface RegisterOptions {
  /**
   * EPOLLEXCLUSIVE for this descriptor alone (epoll only; other mechanisms refuse it with a
   * RangeError): of several epoll instances waiting on it — one per thread on a shared listening
   * socket — the kernel wakes one (or a few) per event instead of all of them. The kernel refuses
   * it with one-shot (EINVAL).
   */
  exclusive?: boolean;
}

/**
 * Once closed, every method throws "selector is closed" except close() (idempotent) and the
 * `keys` view (empty). A selector is Disposable: `using sel = new DefaultSelector()` closes it.
 */
export interface Selector<T = unknown> extends Disposable {
  /** The mechanism's name: 'select', 'poll', 'epoll' or 'wsapoll'. */
  readonly mechanism: string;
  /** Whether register() takes `{ exclusive: true }` (epoll). */
  readonly exclusiveRegistrations: boolean;
  register(fd: number, events: number, data?: T, options?: RegisterOptions): SelectorKey<T>;
  /**
   * Changes the interest (and data); returns the same key. If the mechanism refuses the change
   * (epoll: the descriptor was closed while registered), the descriptor is unregistered and the
   * error thrown, as in Python's selectors: the kernel no longer holds what the key describes.
   */
  modify(fd: number, events: number, data?: T): SelectorKey<T>;
  /** Forgets `fd`; tolerates a descriptor that was already closed. */
  unregister(fd: number): SelectorKey<T>;
  /**
   * The hot-path wait: waits up to `timeoutMs` (null/undefined: forever; <= 0: do not block;
   * fractions round up; a signal does not cut it short) and returns how many keys are ready.
   * They are `readyKeys[0]` to `readyKeys[n - 1]`, each with `readyEvents` set, valid until the
   * next wait. Allocates nothing: `readyKeys` is one array, reused and never shrunk, so entries
   * past `n` are leftovers of earlier waits — never read them.
   */
  waitReady(timeoutMs?: number | null): number;
  /** The ready keys of the last wait, valid up to the count it returned (see waitReady). */
  readonly readyKeys: readonly SelectorKey<T>[];
  /**
   * Python's select(): waits as waitReady() and returns a new array of exactly the ready keys,
   * the caller's to keep. That array is the one allocation per call (n slots); loops that wait
   * thousands of times a second use waitReady().
   */
  select(timeoutMs?: number | null): SelectorKey<T>[];
  /** The key of `fd`, or undefined if it is not registered. */
  getKey(fd: number): SelectorKey<T> | undefined;
  /**
   * A read-only view of the fd -> key map: it follows later registrations, and offers no way to
   * change them (use register/unregister). Empty once the selector is closed.
   */
  readonly keys: ReadonlyMap<number, SelectorKey<T>>;
  /** Starts a wait on `thread` equivalent to select(timeoutMs), for the attached reactor. */
  armWait(thread: WaitThread, timeoutMs: number | null): void;
  /**
   * Hands interest changes the selector deferred (epoll's batchInterest) to the kernel now; every
   * wait does it first. A no-op where changes are never deferred.
   */
  applyChanges(): void;
  /** True when interest changes are seen by an armed wait without re-arming (epoll). */
  readonly liveInterest: boolean;
  close(): void;
  readonly closed: boolean;
  /** close(), for `using`. */
  [Symbol.dispose](): void;
}

/** Python's convention: null/undefined blocks; zero or negative polls. */
export function nativeTimeout(timeoutMs: number | null | undefined): number {
  if (timeoutMs === null || timeoutMs === undefined) return -1;
  return timeoutMs > 0 ? timeoutMs : 0;
}

export abstract class BaseSelector<T = unknown> implements Selector<T> {
  abstract readonly mechanism: string;
  readonly liveInterest: boolean = false;
  readonly exclusiveRegistrations: boolean = false;
  protected readonly map = new Map<number, SelectorKey<T>>();
  readonly keys: ReadonlyMap<number, SelectorKey<T>> = new ReadonlyMapView(this.map);
  /** Grows to the largest batch seen and stays: `length = 0` would free V8's backing store. */
  private readonly ready: SelectorKey<T>[] = [];
  private readyCount = 0;
  private isClosed = false;

  get readyKeys(): readonly SelectorKey<T>[] {
    return this.ready;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  getKey(fd: number): SelectorKey<T> | undefined {
    this.checkOpen();
    return this.map.get(fd);
  }

  register(fd: number, events: number, data?: T, options?: RegisterOptions): SelectorKey<T> {
    this.checkOpen();
    checkDescriptor(fd);
    checkEvents(events);
    const exclusive = options?.exclusive === true;
    if (exclusive && !this.exclusiveRegistrations) {
      throw new RangeError(`${this.mechanism} has no exclusive registration: every watcher of a shared descriptor wakes (EPOLLEXCLUSIVE is epoll's)`);
    }
    if (this.map.has(fd)) throw systemError(constants.errno.EEXIST, 'register', `(fd ${fd} is already registered)`);
    const key = new SelectorKey<T>(fd, events, data as T, exclusive);
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
        this.map.delete(fd);
        key.registered = false;
        try {
          this.remove(key);
        } catch {
          // The update's error is the one that explains what happened.
        }
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

  waitReady(timeoutMs?: number | null): number {
    this.checkOpen();
    this.readyCount = 0;
    this.wait(nativeTimeout(timeoutMs));
    return this.readyCount;
  }

  select(timeoutMs?: number | null): SelectorKey<T>[] {
    return this.ready.slice(0, this.waitReady(timeoutMs));
  }

  /**
   * The ready keys are left in place: a reactor may be dispatching them when a handler closes
   * the selector, and it skips them because they are no longer registered.
   */
  close(): void {
    if (this.isClosed) return;
    for (const key of this.map.values()) key.registered = false;
    this.map.clear();
    this.isClosed = true;
    this.release();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  abstract armWait(thread: WaitThread, timeoutMs: number | null): void;

  applyChanges(): void {
    // Nothing is deferred unless a mechanism says otherwise.
  }

  /** Drops `key` without a system call: its descriptor is already gone from the kernel's set. */
  protected forget(key: SelectorKey<T>): void {
    if (this.map.get(key.fd) === key) this.map.delete(key.fd);
    key.registered = false;
  }

  /** The mechanism's registration call; throw to refuse (the key is rolled back). */
  protected abstract add(key: SelectorKey<T>): void;
  /** The interest of `key` changed from `previous` to `key.events`. */
  protected abstract update(key: SelectorKey<T>, previous: number): void;
  /** `key` was unregistered; its descriptor may already be closed. */
  protected abstract remove(key: SelectorKey<T>): void;
  /** Waits (native timeout convention: -1 forever) and reports each ready key with pushReady(). */
  protected abstract wait(timeoutMs: number): void;
  /** Frees the mechanism's own resources. */
  protected abstract release(): void;
  /** Whether modify() must reach the kernel even with unchanged events (epoll one-shot re-arm). */
  protected rearmsOnModify(): boolean {
    return false;
  }

  /** Adds `key` (its readyEvents set) to this wait's ready keys. */
  protected pushReady(key: SelectorKey<T>): void {
    this.ready[this.readyCount++] = key;
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
  if ((events & (EVENT_READ | EVENT_WRITE)) === 0 || (events & ~ALL_EVENTS) !== 0) {
    throw new RangeError(`events must be EVENT_READ (1), EVENT_WRITE (2) or both (3), with or without EVENT_CONDITION (4); got ${events}`);
  }
}

export { WaitMechanism };
