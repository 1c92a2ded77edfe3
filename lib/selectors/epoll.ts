/**
 * epoll (Linux): the interest set lives in the kernel, so a wait costs O(ready), not
 * O(registered). Options expose the trigger modes the readiness lab studies.
 */
import { isSystemError } from '../errors';
import { binding, constants, EpollBinding, hasEpoll, WaitMechanism, WaitThread } from '../native';
import { BaseSelector, EVENT_CONDITION, EVENT_READ, EVENT_WRITE, SelectorKey } from './selector';

export interface EpollOptions {
  /** EPOLLET: report transitions, not levels. The user must read/write/accept until EAGAIN. */
  edgeTriggered?: boolean;
  /** EPOLLONESHOT: after one event the descriptor is disabled until modify() re-arms it. */
  oneShot?: boolean;
  /**
   * EPOLLEXCLUSIVE on every registration: with several epoll instances on one descriptor, wake
   * only some. For one descriptor alone (a shared listener), register it with `{ exclusive: true }`.
   */
  exclusive?: boolean;
  /** EPOLLRDHUP: report the peer's half-close as readable. */
  rdhup?: boolean;
  /** How many events one wait can return (the rest wait for the next call). Default 1024. */
  maxEvents?: number;
  /**
   * Apply modify() to the kernel just before the next wait, as libuv does, instead of at once: a
   * change undone before then costs no system call, and several changes of one descriptor cost one.
   * Registration and unregistration still reach the kernel at once (errors are reported where they
   * happen; a closed descriptor must be gone from the set). Level-triggered only: under
   * edge-triggered or one-shot epoll, EPOLL_CTL_MOD re-arms, and skipping one would lose an edge.
   * A deferred change the kernel refuses because the descriptor was closed meanwhile (EBADF,
   * ENOENT) unregisters that key; any other refusal is thrown by the wait that applies it.
   */
  batchInterest?: boolean;
}

/** key.slot bit: a modify() waits to be applied (epoll keeps the kernel's events in the low bits). */
const PENDING = 4;

export class EpollSelector<T = unknown> extends BaseSelector<T> {
  readonly mechanism = 'epoll';
  override readonly liveInterest = true;
  override readonly exclusiveRegistrations = true;
  readonly epfd: number;
  private readonly epoll: EpollBinding;
  private readonly flags: number;
  private readonly exclusive: boolean;
  private readonly oneShot: boolean;
  private readonly events: Int32Array;
  private readonly maxEvents: number;
  private readonly batch: boolean;
  /** Keys with a deferred modify(), in order; entries past `pendingCount` are leftovers. */
  private readonly pending: SelectorKey<T>[] = [];
  private pendingCount = 0;
  private readonly IN: number;
  private readonly OUT: number;
  private readonly READ_BITS: number;
  private readonly WRITE_BITS: number;
  /** Asked for with EVENT_CONDITION, and what reports it. */
  private readonly CONDITION_ASK: number;
  private readonly CONDITION_BITS: number;
  private readonly ADD: number;
  private readonly MOD: number;
  private readonly DEL: number;

  constructor(readonly options: EpollOptions = {}) {
    super();
    if (!hasEpoll(binding)) throw new Error(`epoll is not available on this platform (${binding.platform}); use DefaultSelector`);
    this.epoll = binding;
    const c = constants as Required<typeof constants>;
    this.IN = c.EPOLLIN;
    this.OUT = c.EPOLLOUT;
    this.READ_BITS = c.EPOLLIN | c.EPOLLPRI | c.EPOLLRDHUP | c.EPOLLHUP | c.EPOLLERR;
    this.WRITE_BITS = c.EPOLLOUT | c.EPOLLHUP | c.EPOLLERR;
    this.CONDITION_ASK = c.EPOLLRDHUP | c.EPOLLPRI;
    this.CONDITION_BITS = c.EPOLLRDHUP | c.EPOLLPRI | c.EPOLLHUP | c.EPOLLERR;
    this.ADD = c.EPOLL_CTL_ADD;
    this.MOD = c.EPOLL_CTL_MOD;
    this.DEL = c.EPOLL_CTL_DEL;
    this.flags = (options.edgeTriggered ? c.EPOLLET : 0) | (options.oneShot ? c.EPOLLONESHOT : 0) |
      (options.rdhup ? c.EPOLLRDHUP : 0);
    this.exclusive = options.exclusive === true;
    this.oneShot = options.oneShot === true;
    this.maxEvents = options.maxEvents ?? 1024;
    if (!Number.isInteger(this.maxEvents) || this.maxEvents < 1) throw new RangeError('maxEvents must be an integer >= 1');
    this.events = new Int32Array(2 * this.maxEvents);
    this.batch = options.batchInterest === true && !options.edgeTriggered && !this.oneShot && !this.exclusive;
    this.epfd = this.epoll.epoll_create1(0);
  }

  armWait(thread: WaitThread, timeoutMs: number | null): void {
    this.applyChanges();
    thread.arm(WaitMechanism.Epoll, null, 0, this.epfd, timeoutMs);
  }

  /** Hands the deferred modify() calls to the kernel (batchInterest); the wait does it too. */
  override applyChanges(): void {
    const count = this.pendingCount;
    if (count === 0) return;
    this.pendingCount = 0;
    let failure: unknown = null;
    for (let i = 0; i < count; i++) {
      const key = this.pending[i];
      key.slot &= ~PENDING;
      if (!key.registered || key.slot === key.events) continue;
      try {
        this.epoll.epoll_ctl(this.epfd, this.MOD, key.fd, this.toEpoll(key.events));
        key.slot = key.events;
      } catch (err) {
        // Closed without being unregistered: the kernel forgot it already, so must we.
        this.forget(key);
        if (!isSystemError(err, 'EBADF') && !isSystemError(err, 'ENOENT')) failure ??= err;
      }
    }
    if (failure !== null) throw failure;
  }

  protected add(key: SelectorKey<T>): void {
    const exclusive = this.exclusive || key.exclusive ? (constants.EPOLLEXCLUSIVE as number) : 0;
    this.epoll.epoll_ctl(this.epfd, this.ADD, key.fd, this.toEpoll(key.events) | exclusive);
    key.slot = key.events;
  }

  protected update(key: SelectorKey<T>): void {
    if (this.exclusive || key.exclusive) {
      // The kernel refuses EPOLL_CTL_MOD on an EPOLLEXCLUSIVE registration (EINVAL): re-add it.
      this.epoll.epoll_ctl(this.epfd, this.DEL, key.fd);
      this.add(key);
      return;
    }
    if (this.batch) {
      if ((key.slot & PENDING) === 0) {
        key.slot |= PENDING;
        this.pending[this.pendingCount++] = key;
      }
      return;
    }
    this.epoll.epoll_ctl(this.epfd, this.MOD, key.fd, this.toEpoll(key.events));
  }

  protected remove(key: SelectorKey<T>): void {
    try {
      this.epoll.epoll_ctl(this.epfd, this.DEL, key.fd);
    } catch (err) {
      // Closing a descriptor removes it from every epoll set: unregistering it afterwards is fine.
      if (!isSystemError(err, 'EBADF') && !isSystemError(err, 'ENOENT')) throw err;
    }
  }

  protected override rearmsOnModify(): boolean {
    return this.oneShot;
  }

  protected wait(timeoutMs: number): void {
    if (this.pendingCount > 0) this.applyChanges();
    const events = this.events;
    const n = this.epoll.epoll_wait(this.epfd, events, this.maxEvents, timeoutMs);
    for (let i = 0; i < n; i++) {
      const key = this.map.get(events[2 * i]);
      if (key === undefined) continue;
      const raw = events[2 * i + 1];
      const ready = ((raw & this.READ_BITS ? EVENT_READ : 0) | (raw & this.WRITE_BITS ? EVENT_WRITE : 0) |
        (raw & this.CONDITION_BITS ? EVENT_CONDITION : 0)) & key.events;
      if (ready === 0) continue;
      key.readyEvents = ready;
      this.pushReady(key);
    }
  }

  protected release(): void {
    binding.close(this.epfd);
  }

  private toEpoll(events: number): number {
    return (events & EVENT_READ ? this.IN : 0) | (events & EVENT_WRITE ? this.OUT : 0) |
      (events & EVENT_CONDITION ? this.CONDITION_ASK : 0) | this.flags;
  }
}
