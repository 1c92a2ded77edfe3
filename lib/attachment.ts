/**
 * How an attached reactor hears, inside Node's event loop, that its selector has something ready
 * or that its next timer is due. Two routes behind one interface:
 *
 * - 'uv-poll' (epoll and io_uring, in builds that reach libuv): Node's own loop watches the epoll
 *   descriptor, readable while any of its events is pending (or the io_uring's, readable while a
 *   completion waits in its ring), and a libuv timer stands for the
 *   reactor's next timer (native/loop_watcher.cc). No thread, no hop: the wake-up is Node's own.
 * - 'wait-thread' (select, poll, WSAPoll; epoll where there is no libuv): a helper thread blocks in
 *   the selector's own mechanism, and a thread-safe function calls back (native/wait_thread.cc).
 *
 * Either calls `turn(errno)` on the JavaScript thread, and never once closed: a wake-up a closed
 * attachment had already queued is dropped, so detach() then attach() cannot see the old one's.
 */
import { binding, LoopWatcher, WaitThread } from './native';
import { EpollSelector } from './selectors/epoll';
import { IoUringSelector } from './selectors/io-uring';
import type { Selector } from './selectors/selector';

export type AttachedVia = 'uv-poll' | 'wait-thread';

export interface AttachOptions {
  /** Which route to take (default: 'uv-poll' where it exists, else 'wait-thread'). */
  via?: AttachedVia;
}

export interface Attachment {
  readonly via: AttachedVia;
  /** Starts waiting for the next readiness, for at most `timeoutMs` (null: no limit). A no-op while a wait is armed. */
  arm(timeoutMs: number | null): void;
  /** The interest set changed outside a turn. */
  interestChanged(): void;
  /** A timer was added outside a turn, due at `deadline` (performance.now() time). */
  timerAdded(deadline: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/**
 * The descriptor Node's loop can watch for the whole selector: epoll's, or io_uring's ring (readable
 * while a completion waits in it); null for select, poll and WSAPoll.
 */
function pollableDescriptor(selector: Selector<unknown>): number | null {
  if (selector instanceof EpollSelector) return selector.epfd;
  if (selector instanceof IoUringSelector) return selector.fd;
  return null;
}

/** The routes a selector can attach by, the preferred one first. */
export function attachRoutes(selector: Selector<unknown>): AttachedVia[] {
  return pollableDescriptor(selector) !== null && binding.LoopWatcher ? ['uv-poll', 'wait-thread'] : ['wait-thread'];
}

function invalidVia(message: string): Error {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
}

export function createAttachment(selector: Selector<unknown>, via: AttachedVia | undefined,
  turn: (errno: number) => void): Attachment {
  if (via !== undefined && via !== 'uv-poll' && via !== 'wait-thread') {
    throw invalidVia(`via must be 'uv-poll' or 'wait-thread'; got ${String(via)}`);
  }
  const routes = attachRoutes(selector);
  const chosen = via ?? routes[0];
  // Either route waits outside the selector, which a DEFER_TASKRUN ring would never wake.
  if (selector instanceof IoUringSelector && routes.includes(chosen)) selector.prepareToAttach();
  if (!routes.includes(chosen)) {
    throw invalidVia(`A ${selector.mechanism} reactor cannot attach via 'uv-poll': it needs an epoll or io_uring selector and an addon built ` +
      'with libuv\'s headers (node-gyp); see docs/ARCHITECTURE.md');
  }
  return chosen === 'uv-poll' ? new UvPollAttachment(pollableDescriptor(selector) as number, turn) : new ThreadAttachment(selector, turn);
}

/** One wait at a time on a helper thread; select and poll wait on a snapshot of the interest set. */
class ThreadAttachment implements Attachment {
  readonly via = 'wait-thread';
  private readonly thread: WaitThread;
  private inFlight = false;
  /** The interest set changed while the wait in flight watched a snapshot of it. */
  private stale = false;
  private deadline = Infinity;
  private closed = false;

  constructor(private readonly selector: Selector<unknown>, private readonly turn: (errno: number) => void) {
    this.thread = new binding.WaitThread((errno) => this.waitEnded(errno));
  }

  arm(timeoutMs: number | null): void {
    if (this.inFlight || this.closed) return;
    this.deadline = timeoutMs === null ? Infinity : performance.now() + timeoutMs;
    this.selector.armWait(this.thread, timeoutMs);
    this.inFlight = true;
    this.stale = false;
  }

  interestChanged(): void {
    // epoll's wait sees interest changes live; select and poll must start over on a new snapshot.
    if (this.inFlight && !this.selector.liveInterest) {
      this.stale = true;
      this.thread.wake();
    }
  }

  timerAdded(deadline: number): void {
    if (this.inFlight && deadline < this.deadline) this.thread.wake();
  }

  ref(): void {
    this.thread.ref();
  }

  unref(): void {
    this.thread.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inFlight = false;
    this.thread.close();
  }

  private waitEnded(errno: number): void {
    if (this.closed) return; // Queued before close(): stale.
    this.inFlight = false;
    // A descriptor removed and closed during the wait was still in its snapshot: select fails with
    // EBADF (ENOTSOCK on Windows) rescanning it. That is the snapshot's failure, not the interest
    // set's; the turn's own select on the live set reports any real one.
    this.turn(this.stale ? 0 : errno);
  }
}

/** Node's loop watches the epoll (or io_uring) descriptor (always) and a timer (while a reactor timer is pending). */
class UvPollAttachment implements Attachment {
  readonly via = 'uv-poll';
  private readonly watcher: LoopWatcher;
  /** When the libuv timer is due (performance.now() time), Infinity when it is stopped. */
  private deadline = Infinity;
  private turning = false;
  private closed = false;

  constructor(fd: number, private readonly turn: (errno: number) => void) {
    this.watcher = new binding.LoopWatcher!(fd, (errno, timedOut) => this.woke(errno, timedOut));
  }

  arm(timeoutMs: number | null): void {
    if (this.closed) return;
    if (timeoutMs === null) {
      if (this.deadline !== Infinity) this.watcher.setTimer(null);
      this.deadline = Infinity;
      return;
    }
    const deadline = performance.now() + timeoutMs;
    // The poll needs no re-arming, and an unchanged deadline (libuv counts whole milliseconds)
    // needs no new timer: most turns cross into the addon not at all here.
    if (Math.abs(deadline - this.deadline) < 1) return;
    this.watcher.setTimer(timeoutMs);
    this.deadline = deadline;
  }

  interestChanged(): void {
    // Node's loop watches the epoll descriptor itself, which sees every change live.
  }

  timerAdded(deadline: number): void {
    if (!this.turning && deadline < this.deadline) this.arm(Math.max(0, deadline - performance.now()));
  }

  ref(): void {
    this.watcher.ref();
  }

  unref(): void {
    this.watcher.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
  }

  private woke(errno: number, timedOut: boolean): void {
    if (this.closed) return;
    if (timedOut) this.deadline = Infinity; // A libuv timer fires once.
    this.turning = true;
    try {
      this.turn(errno);
    } finally {
      this.turning = false;
    }
  }
}
