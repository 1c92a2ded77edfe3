/**
 * The event loop: per-descriptor handlers, timers, and two ways to run on the same code.
 *
 * - run() blocks its thread until stop() (a CLI server, a worker thread).
 * - attach() lives inside Node's event loop and never blocks JavaScript: Node's own loop watches
 *   the epoll descriptor ('uv-poll'), or a helper thread waits in the selector's own mechanism
 *   ('wait-thread': select, poll, WSAPoll), and calls back when something is ready; the reactor
 *   then does a non-blocking select and dispatches (lib/attachment.ts). Idle, it costs no CPU;
 *   unref() lets the process exit while it is attached, like a Node handle.
 *
 * Handlers run with the ready events (EVENT_READ | EVENT_WRITE). A handler may add, modify or
 * remove any descriptor: a descriptor removed during dispatch gets no further event from the
 * batch in flight, even if its number is reused at once (keys, not numbers, are dispatched).
 * Remove a descriptor from the reactor before closing it.
 */
import { AttachedVia, Attachment, AttachOptions, createAttachment } from './attachment';
import { systemError } from './errors';
import { DefaultSelector } from './selectors/default';
import { Selector, SelectorKey } from './selectors/selector';
import { Timer, TimerQueue } from './timer-queue';

export type IoHandler = (events: number, fd: number) => void;
export type { AttachedVia, AttachOptions } from './attachment';

export interface ReactorStats {
  /** Waits that returned (each select call). */
  wakeups: number;
  /** Handler calls made for ready descriptors. */
  events: number;
  timers: number;
}

export class Reactor {
  readonly selector: Selector<IoHandler>;
  readonly stats: ReactorStats = { wakeups: 0, events: 0, timers: 0 };
  private readonly timers = new TimerQueue();
  private running = false;
  private stopRequested = false;
  private dispatching = false;
  private attachment: Attachment | null = null;
  private referenced = true;
  /** Called with an error a handler threw in attached mode (default: rethrow, as Node does). */
  onError: (err: unknown) => void = (err) => {
    throw err;
  };

  constructor(selector?: Selector<IoHandler>) {
    this.selector = selector ?? new DefaultSelector<IoHandler>();
  }

  /** Watches `fd` for `events`, calling `handler(readyEvents, fd)`. */
  add(fd: number, events: number, handler: IoHandler): SelectorKey<IoHandler> {
    if (typeof handler !== 'function') throw new TypeError('The handler must be a function');
    const key = this.selector.register(fd, events, handler);
    this.interestChanged();
    return key;
  }

  modify(fd: number, events: number, handler?: IoHandler): SelectorKey<IoHandler> {
    const key = this.selector.modify(fd, events, handler);
    this.interestChanged();
    return key;
  }

  remove(fd: number): void {
    this.selector.unregister(fd);
    this.interestChanged();
  }

  has(fd: number): boolean {
    return this.selector.getKey(fd) !== undefined;
  }

  setTimeout(callback: () => void, delayMs: number): Timer {
    const timer = this.timers.add(delayMs, callback);
    this.timerAdded(timer);
    return timer;
  }

  setInterval(callback: () => void, periodMs: number): Timer {
    if (!(periodMs > 0)) throw new RangeError('The interval must be > 0 ms');
    const timer = this.timers.add(periodMs, callback, periodMs);
    this.timerAdded(timer);
    return timer;
  }

  clearTimer(timer: Timer): void {
    this.timers.cancel(timer);
  }

  /**
   * One turn: wait up to `timeoutMs` (null: until the next timer or forever), dispatch what is
   * ready, run due timers. Returns how many handlers ran.
   */
  runOnce(timeoutMs: number | null = null): number {
    const next = this.timers.nextTimeout();
    const wait = next === null ? timeoutMs : timeoutMs === null ? next : Math.min(next, timeoutMs);
    const ready = this.selector.select(wait);
    this.stats.wakeups++;
    const dispatched = this.dispatch(ready);
    this.stats.timers += this.timers.runDue();
    return dispatched;
  }

  /**
   * Blocks this thread, turning until stop() is called, or until nothing is left to wait for
   * (no descriptor and no timer).
   */
  run(): void {
    if (this.attachment) throw new Error('This reactor is attached to the event loop; detach() it before run()');
    if (this.running) throw new Error('The reactor is already running');
    this.running = true;
    this.stopRequested = false;
    try {
      while (!this.stopRequested && (this.selector.keys.size > 0 || this.timers.size > 0)) {
        this.runOnce(null);
      }
    } finally {
      this.running = false;
    }
  }

  /** Ends run() after the current turn; in attached mode, detaches. */
  stop(): void {
    this.stopRequested = true;
    if (this.attachment) this.detach();
  }

  get isAttached(): boolean {
    return this.attachment !== null;
  }

  /** How the attached reactor hears from Node's loop ('uv-poll' or 'wait-thread'); null when detached. */
  get attachedVia(): AttachedVia | null {
    return this.attachment?.via ?? null;
  }

  /**
   * Starts serving inside Node's event loop; returns at once. By default an epoll reactor lets
   * Node's own loop watch its epoll descriptor ('uv-poll') where the addon can, and every other
   * one waits on a helper thread ('wait-thread'); `via` chooses.
   */
  attach(options: AttachOptions = {}): this {
    if (this.running) throw new Error('The reactor is running (blocking); it cannot also attach');
    if (this.attachment) {
      if (options.via === undefined || options.via === this.attachment.via) return this;
      const err = new Error(`This reactor is already attached via '${this.attachment.via}'; detach() it first`);
      throw Object.assign(err, { code: 'ERR_INVALID_STATE' });
    }
    this.attachment = createAttachment(this.selector, options.via, (errno) => this.turn(errno));
    if (!this.referenced) this.attachment.unref();
    try {
      this.arm();
    } catch (err) {
      // E.g. select with a descriptor past FD_SETSIZE: leave no thread behind, stay detached.
      this.detach();
      throw err;
    }
    return this;
  }

  /** Leaves Node's event loop; descriptors and timers stay registered. */
  detach(): void {
    const attachment = this.attachment;
    if (!attachment) return;
    this.attachment = null;
    attachment.close();
  }

  /** While attached, keep the process alive (the default). */
  ref(): this {
    this.referenced = true;
    this.attachment?.ref();
    return this;
  }

  /** While attached, do not keep the process alive on this reactor's account. */
  unref(): this {
    this.referenced = false;
    this.attachment?.unref();
    return this;
  }

  /** Detaches and closes the selector. Descriptors registered stay open: they are the caller's. */
  close(): void {
    this.detach();
    this.stopRequested = true;
    this.selector.close();
  }

  private dispatch(ready: readonly SelectorKey<IoHandler>[]): number {
    let dispatched = 0;
    this.dispatching = true;
    try {
      for (let i = 0; i < ready.length; i++) {
        const key = ready[i];
        // Removed by an earlier handler of this batch: its event is stale.
        if (!key.registered) continue;
        dispatched++;
        key.data(key.readyEvents, key.fd);
      }
    } finally {
      this.dispatching = false;
      this.stats.events += dispatched;
    }
    return dispatched;
  }

  /** One attached turn, called by the attachment (never by a closed one): select(0), dispatch, timers, re-arm. */
  private turn(errno: number): void {
    try {
      if (errno !== 0) throw systemError(errno, this.selector.mechanism);
      this.runOnce(0);
    } catch (err) {
      this.onError(err);
    } finally {
      // A handler may have detached (nothing to arm), or detached and attached again (armed already).
      if (!this.selector.closed) this.arm();
    }
  }

  private arm(): void {
    // No timer, no clock read.
    this.attachment?.arm(this.timers.size > 0 ? this.timers.nextTimeout() : null);
  }

  /** A helper thread waiting on a snapshot (select/poll) must start over; epoll sees changes live. */
  private interestChanged(): void {
    this.attachment?.interestChanged();
  }

  private timerAdded(timer: Timer): void {
    this.attachment?.timerAdded(timer.deadline);
  }
}
