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
 *
 * A turn: run what was deferred, wait, read the clock once (`now`), call the handler of every ready
 * descriptor, run the due timers, run what was deferred, then hand the errors of the turn to `onError`.
 *
 * Deferred callbacks (`defer()`) are how a layer above reports something from the reactor's turn
 * rather than from inside the call that caused it (the stream layer's onError, onClose, onDrain...):
 * they run before the reactor waits again. While any is queued the reactor does not sleep in a
 * wait: run() waits with a zero timeout, and an attached reactor is woken (a zero-delay libuv timer
 * or the helper thread's wake-up) when one is queued from outside a turn.
 *
 * Errors. A handler or timer callback that throws does not end its turn: every other ready
 * descriptor still gets its event (under edge-triggered epoll a skipped event would never come
 * back) and every due timer still runs. Once the turn is complete, each error is passed to
 * `onError(err)`, in the order they were thrown. The default onError rethrows, so:
 * - run() and runOnce() throw after the turn completed: nothing is lost, the state is
 *   consistent, and calling run() again carries on. They throw what onError threw: the error
 *   itself by default, or an AggregateError of them all when onError threw for several errors
 *   of one turn.
 * - attached, what onError throws becomes an uncaught exception, raised from a tick of its own
 *   (process.on('uncaughtException') sees it; unhandled, it ends the process, as any Node
 *   callback's would). The reactor stays attached and serving. A failed wait of the helper
 *   thread is passed to onError too.
 * An onError that does not throw keeps run() turning (log, close the offending connection...).
 * A failing wait is not a handler's error and skips onError: run() and runOnce() throw it
 * (attached, a failing non-blocking wait after the helper's report is raised as uncaught).
 *
 * A Reactor is Disposable: `using reactor = new Reactor()` closes it.
 */
import { AttachedVia, Attachment, AttachOptions, createAttachment } from './attachment';
import { systemError } from './errors';
import { availableMechanisms, createSelector } from './selectors/default';
import { RegisterOptions, Selector, SelectorKey } from './selectors/selector';
import { Timer, TimerQueue } from './timer-queue';

export type IoHandler = (events: number, fd: number) => void;

/**
 * Reactors given a descriptor that have not yet turned, run, attached or closed. A program whose
 * event loop runs dry with one of them holding registrations forgot to run() or attach() it (it
 * printed "listening" and exited 0): 'beforeExit' says so, once. A process.exit() is deliberate and
 * skips 'beforeExit', so tools that exit on purpose are not warned.
 */
const neverRun = new Set<Reactor>();
let exitCheckInstalled = false;

function warnIfNeverRun(): void {
  let descriptors = 0;
  for (const reactor of neverRun) {
    if (!reactor.selector.closed) descriptors += reactor.selector.keys.size;
  }
  neverRun.clear();
  exitCheckInstalled = false; // A later reactor that never runs is told of at a later exit too.
  if (descriptors === 0) return;
  process.emitWarning(`A Reactor holding ${descriptors} registered descriptor(s) was never run() or attach()ed, and the ` +
    'process is exiting: call reactor.attach() (inside Node\'s event loop) or reactor.run() (blocking) to serve them',
  { code: 'IOMUX_REACTOR_NEVER_RUN' });
}

export type { AttachedVia, AttachOptions } from './attachment';

export interface ReactorStats {
  /** Waits that returned (each select call). */
  wakeups: number;
  /** Handler calls made for ready descriptors. */
  events: number;
  timers: number;
}

export class Reactor implements Disposable {
  readonly selector: Selector<IoHandler>;
  readonly stats: ReactorStats = { wakeups: 0, events: 0, timers: 0 };
  private readonly timers = new TimerQueue();
  /** Errors thrown during the turn in flight, for onError once the turn is complete. */
  private readonly failures: unknown[] = [];
  private turnTime = performance.now();
  /** Dispatching or running timers: interest changes may wait for the turn's end. */
  private inTurn = false;
  private running = false;
  private stopRequested = false;
  private attachment: Attachment | null = null;
  private referenced = true;
  /** Callbacks for the reactor's turn (defer()); items before deferredHead have run. */
  private readonly deferred: (() => void)[] = [];
  private deferredHead = 0;
  private draining = false;
  /** A drain from Node's loop is scheduled for what was deferred after close(). */
  private afterCloseScheduled = false;
  /** close() was called from a deferred callback: the running drain goes on until the queue is empty. */
  private drainAll = false;
  /**
   * Called, once a turn is complete, with each error a handler or timer callback threw during it
   * (and, attached, with a failed wait). Default: rethrow (see the class comment for where to).
   */
  onError: (err: unknown) => void = (err) => {
    throw err;
  };

  constructor(selector?: Selector<IoHandler>) {
    // The best mechanism here; on epoll, interest changes wait for the turn's end (batchInterest).
    this.selector = selector ?? createSelector<IoHandler>(availableMechanisms()[0], { batchInterest: true });
  }

  /**
   * Monotonic milliseconds (performance.now()'s clock), read once per turn, right after the wait
   * returns: every handler and timer of a turn sees the same value, so it can stamp activity
   * (last read, idle deadlines) without a clock call of its own. Between turns it holds the last
   * turn's time (before the first, the construction time): outside a turn, call performance.now().
   */
  get now(): number {
    return this.turnTime;
  }

  /** Timers still to fire (the timer heap holds exactly these: a cleared timer leaves it at once). */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Watches `fd` for `events`, calling `handler(readyEvents, fd)`. `options.exclusive`: EPOLLEXCLUSIVE
   * for this descriptor (epoll only), as several reactors sharing one listening socket want.
   */
  add(fd: number, events: number, handler: IoHandler, options?: RegisterOptions): SelectorKey<IoHandler> {
    if (typeof handler !== 'function') throw new TypeError('The handler must be a function');
    const key = this.selector.register(fd, events, handler, options);
    if (this.stats.wakeups === 0 && this.attachment === null && !this.running && !neverRun.has(this)) {
      neverRun.add(this);
      if (!exitCheckInstalled) {
        exitCheckInstalled = true;
        process.once('beforeExit', warnIfNeverRun);
      }
    }
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

  /** Whether `fd` is registered; false once closed (so cleanup code can ask in any order). */
  has(fd: number): boolean {
    return !this.selector.closed && this.selector.getKey(fd) !== undefined;
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

  /**
   * Runs `callback` from the reactor's turn, before its next wait (never from inside the caller's
   * own call). Callbacks run in the order they were deferred; one that throws is reported like a
   * handler's error. One deferred while deferred callbacks run waits for the next turn (which then
   * does not block). Meant for rare events: it allocates a queue slot, not for the hot path.
   * Once the reactor is closed nothing turns again: Node's loop runs the callback instead (a
   * connection destroyed after its reactor still hears onClose, and still not inside the call).
   */
  defer(callback: () => void): void {
    if (typeof callback !== 'function') throw new TypeError('The callback must be a function');
    this.deferred.push(callback);
    if (this.selector.closed) {
      this.scheduleAfterClose();
      return;
    }
    if (this.stats.wakeups === 0) neverRun.delete(this);
    // Outside a turn, an attached reactor may be asleep in its wait: make it turn now.
    if (!this.inTurn && this.deferred.length - this.deferredHead === 1) this.attachment?.timerAdded(0);
  }

  /** Deferred callbacks waiting for the next turn. */
  get pendingDeferred(): number {
    return this.deferred.length - this.deferredHead;
  }

  /** Cancels `timer`; a timer that already fired or was cleared is ignored. */
  clearTimer(timer: Timer): void {
    this.timers.cancel(timer);
  }

  /**
   * Makes `timer` due `delayMs` from now, in O(log n) — an idle timeout pushed back on every
   * read costs no cancel-and-add. A timer that fired or was cleared becomes pending again.
   */
  rescheduleTimer(timer: Timer, delayMs: number): void {
    this.timers.reschedule(timer, delayMs);
    this.timerAdded(timer);
  }

  /**
   * One turn: wait up to `timeoutMs` (null: until the next timer or forever), dispatch what is
   * ready, run due timers, report errors (see the class comment). Returns how many handlers ran.
   */
  runOnce(timeoutMs: number | null = null): number {
    if (this.stats.wakeups === 0) neverRun.delete(this);
    if (this.deferred.length > 0) {
      this.runDeferred();
      if (this.selector.closed || (this.running && this.stopRequested)) {
        // A deferred callback closed the reactor, or stopped run(): no wait follows.
        if (this.failures.length > 0) this.reportFailures();
        return 0;
      }
    }
    const count = this.selector.waitReady(this.waitTimeout(timeoutMs));
    this.turnTime = performance.now();
    this.stats.wakeups++;
    this.inTurn = true;
    let dispatched: number;
    try {
      dispatched = this.dispatch(count);
      this.stats.timers += this.timers.runDue(this.turnTime, this.failures);
    } finally {
      this.inTurn = false;
    }
    if (this.deferred.length > 0) this.runDeferred();
    if (this.failures.length > 0) this.reportFailures();
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
      while (!this.stopRequested) {
        if (this.deferred.length > 0) {
          // Deferred work first: what it leaves (nothing registered, no timer) decides whether to wait at all.
          this.runDeferred();
          if (this.failures.length > 0) this.reportFailures();
          if (this.stopRequested) break;
        }
        if (this.selector.closed || (this.selector.keys.size === 0 && this.timers.size === 0 && this.pendingDeferred === 0)) break;
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
    neverRun.delete(this);
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

  /**
   * Detaches and closes the selector. Descriptors registered stay open: they are the caller's.
   * What is deferred runs first (the onClose of connections destroyed just before is not lost).
   */
  close(): void {
    neverRun.delete(this);
    this.detach();
    this.stopRequested = true;
    if (!this.selector.closed && this.deferred.length > 0) this.runDeferred(true);
    this.selector.close();
    if (this.pendingDeferred > 0) this.scheduleAfterClose();
    if (this.failures.length > 0) this.reportFailures();
  }

  /** True while run() blocks this thread (a callback of its turn is asking). */
  get isRunning(): boolean {
    return this.running;
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** How long the wait may block: no clock read unless a timer is pending and blocking is allowed. */
  private waitTimeout(timeoutMs: number | null): number | null {
    if (this.deferred.length > this.deferredHead) return 0;
    if (this.timers.size === 0 || (timeoutMs !== null && timeoutMs <= 0)) return timeoutMs;
    const next = Math.max(0, this.timers.nextDeadline - performance.now());
    return timeoutMs === null ? next : Math.min(next, timeoutMs);
  }

  private dispatch(count: number): number {
    const ready = this.selector.readyKeys;
    let dispatched = 0;
    for (let i = 0; i < count; i++) {
      const key = ready[i];
      // Removed by an earlier handler of this batch: its event is stale.
      if (!key.registered) continue;
      dispatched++;
      try {
        key.data(key.readyEvents, key.fd);
      } catch (err) {
        this.failures.push(err);
      }
    }
    this.stats.events += dispatched;
    return dispatched;
  }

  /**
   * Runs the callbacks deferred so far; those they defer wait for the next turn, unless `all`
   * (close(): nothing will turn again). Re-entered from a callback (one that closes the reactor),
   * it leaves the work to the loop already running.
   */
  private runDeferred(all = false): void {
    if (this.draining) {
      if (all) this.drainAll = true;
      return;
    }
    this.draining = true;
    const wasInTurn = this.inTurn;
    this.inTurn = true;
    const queue = this.deferred;
    try {
      let rounds = 0;
      do {
        const end = queue.length;
        while (this.deferredHead < end) {
          const callback = queue[this.deferredHead];
          queue[this.deferredHead++] = undefined as unknown as () => void;
          try {
            callback();
          } catch (err) {
            this.failures.push(err);
          }
        }
      } while ((all || this.drainAll) && this.deferredHead < queue.length && ++rounds < 16);
    } finally {
      this.draining = false;
      this.drainAll = false;
      this.inTurn = wasInTurn;
      if (this.deferredHead === queue.length) {
        queue.length = 0;
        this.deferredHead = 0;
      }
    }
  }

  /** What is deferred after close() (or left by its bounded drain) runs from Node's loop, once per batch. */
  private scheduleAfterClose(): void {
    if (this.afterCloseScheduled) return;
    this.afterCloseScheduled = true;
    setImmediate(() => {
      this.afterCloseScheduled = false;
      try {
        this.runDeferred(true);
        if (this.failures.length > 0) this.reportFailures();
      } catch (err) {
        throwUncaught(err); // What onError threw: uncaught, as from an attached turn.
      } finally {
        if (this.pendingDeferred > 0) this.scheduleAfterClose();
      }
    });
  }

  /** Gives each error of the turn to onError; then throws what onError threw, if anything. */
  private reportFailures(): void {
    const failures = this.failures.splice(0);
    const thrown: unknown[] = [];
    for (const err of failures) {
      try {
        this.onError(err);
      } catch (rethrown) {
        thrown.push(rethrown);
      }
    }
    if (thrown.length === 1) throw thrown[0];
    if (thrown.length > 1) throw new AggregateError(thrown, `${thrown.length} errors in one reactor turn`);
  }

  /** One attached turn, called by the attachment (never by a closed one): select(0), dispatch, timers, re-arm. */
  private turn(errno: number): void {
    try {
      // runOnce() gives handler and timer errors to onError itself.
      if (errno !== 0) this.onError(systemError(errno, this.selector.mechanism));
      else this.runOnce(0);
    } catch (err) {
      // What onError threw. Thrown back into the addon, Node would only print a warning (DEP0168).
      process.nextTick(throwUncaught, err);
    } finally {
      // A handler may have detached (nothing to arm), or detached and attached again (armed already).
      if (!this.selector.closed) this.arm();
    }
  }

  private arm(): void {
    if (this.attachment === null) return;
    // Node's loop watches the epoll descriptor itself: what the turn deferred must reach the kernel now.
    this.selector.applyChanges();
    // Deferred callbacks waiting: turn again at once. No timer, no clock read.
    if (this.deferred.length > this.deferredHead) this.attachment.arm(0);
    else this.attachment.arm(this.timers.size > 0 ? this.timers.nextTimeout() : null);
  }

  /**
   * A change made outside a turn, while attached: a deferred one (epoll's batchInterest) is applied
   * at once, since no wait of ours comes first; a helper thread waiting on a snapshot (select/poll)
   * must start over; epoll sees applied changes live.
   */
  private interestChanged(): void {
    if (this.attachment === null) return;
    if (!this.inTurn) this.selector.applyChanges();
    this.attachment.interestChanged();
  }

  private timerAdded(timer: Timer): void {
    this.attachment?.timerAdded(timer.deadline);
  }
}

/** Raises `err` as an uncaught exception, from a tick of its own as Node's callbacks do. */
function throwUncaught(err: unknown): never {
  throw err;
}
