/**
 * io_uring (Linux 5.13+): readiness as completions of multishot IORING_OP_POLL_ADD requests in a
 * ring shared with the kernel. A registration is a persistent poll, like an epoll registration; the
 * interest changes made between two waits go to the kernel in the same io_uring_enter as the wait.
 *
 * What the kernel does (Linux 6.18; test/lab-io-uring.test.ts shows each point):
 * - A multishot poll is edge-like: it posts one completion per wake-up of the descriptor (a new
 *   arrival, new send space, the peer's FIN), never again for data left unread. The flag that
 *   asks for level-triggered poll (IORING_POLL_ADD_LEVEL) is refused with EINVAL.
 * - So, by default, this selector keeps Python's level-triggered contract itself: a key it
 *   reported is re-checked at the next wait by a one-shot POLL_ADD, submitted with the wait, which
 *   completes at once while the descriptor is still ready (and stays armed otherwise). With
 *   `edgeTriggered: true` it reports the raw edges instead (drain until EAGAIN, as EPOLLET).
 * - A completion without IORING_CQE_F_MORE ends the multishot poll. The kernel ends one when the
 *   completion ring is full (the last completion goes to its overflow list): the selector then
 *   arms it again, with the next wait.
 * - A pending poll holds a reference to the descriptor's file: closing the descriptor does not
 *   end the poll (epoll forgets a closed descriptor; io_uring does not), and the socket really
 *   closes only once the poll is removed, by unregister() and the next wait (or applyChanges()).
 *
 * Stale completions: each registration gets a fresh 31-bit id, carried in the completions' 32-bit
 * user_data with one bit for the kind (persistent poll or re-check). A completion whose id is no
 * longer registered (a removed, replaced or cancelled poll) is dropped, so it can never reach a
 * key registered later on the same descriptor number.
 */
import { systemError } from '../errors';
import { binding, constants, IoUringBinding, IoUringConstructor, WaitMechanism, WaitThread } from '../native';
import { BaseSelector, EVENT_READ, EVENT_WRITE, SelectorKey } from './selector';

export interface IoUringOptions {
  /** Report the multishot poll's edges as they come (drain until EAGAIN), with no level re-check. */
  edgeTriggered?: boolean;
  /** How many completions one wait takes from the ring (the rest wait for the next call). Default 1024. */
  maxEvents?: number;
  /** Submission ring size (default 1024); a fuller queue is submitted early, with one more enter. */
  entries?: number;
  /**
   * Completion ring size (default 4 * entries). A ring too small for one wait's completions makes the
   * kernel end multishot polls (see above); the selector re-arms them, at the cost of one completion.
   */
  cqEntries?: number;
}

/** One registration's kernel side: the key, its current id and whether a re-check is in flight. */
class Registration<T> {
  /** The wait that last reported this key, so two completions in one wait make one report. */
  reportedIn = -1;
  rechecking = false;
  constructor(readonly key: SelectorKey<T>, public id: number) {}
}

const KIND_RECHECK = 1;
/** user_data 0 and 1: the removals' own completions, which nobody reads. */
const INTERNAL = 0;
const MAX_ID = 0x7fffffff;

let probed: Error | null | undefined;

/**
 * Why io_uring cannot be used in this process, or null when it can. Decided once, by setting up a
 * ring and closing it again: the kernel's version, kernel.io_uring_disabled and a seccomp filter
 * all show up there, as the error io_uring_setup returns.
 */
export function ioUringUnavailable(): Error | null {
  if (probed !== undefined) return probed;
  const IoUring = binding.IoUring;
  if (IoUring === undefined) {
    probed = Object.assign(new Error(`io_uring exists only on Linux (this is ${binding.platform})`), { code: 'ENOSYS' });
    return probed;
  }
  try {
    new IoUring(1).close();
    probed = null;
  } catch (err) {
    probed = explainSetupFailure(err);
  }
  return probed;
}

/** The setup error with a sentence on the likely reason (the code, errno and syscall are kept). */
export function explainSetupFailure(err: unknown): Error {
  const error = err as NodeJS.ErrnoException;
  let reason = '';
  if (error.code === 'ENOSYS') {
    reason = 'the kernel has no io_uring (older than 5.1, or built without it), or a seccomp filter answers ENOSYS';
  } else if (error.code === 'EPERM') {
    const disabled = readSysctl('/proc/sys/kernel/io_uring_disabled');
    reason = disabled === '2'
      ? 'kernel.io_uring_disabled is 2: io_uring is off for every process'
      : disabled === '1'
        ? 'kernel.io_uring_disabled is 1: only processes in kernel.io_uring_group (or with CAP_SYS_ADMIN) may use it'
        : 'a seccomp filter refuses io_uring_setup (Docker\'s default profile does)';
  }
  if (reason !== '' && typeof error.message === 'string') error.message = `${error.message} (${reason})`;
  return error;
}

function readSysctl(file: string): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('node:fs') as typeof import('node:fs')).readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

export class IoUringSelector<T = unknown> extends BaseSelector<T> {
  readonly mechanism = 'io_uring';
  /** Changes reach the kernel with applyChanges() (the attached reactor's arm() calls it). */
  override readonly liveInterest = true;
  /** The ring's descriptor: readable while a completion waits in the ring (what an attached reactor watches). */
  readonly fd: number;
  /** How many multishot polls the kernel ended (a completion without IORING_CQE_F_MORE) and this selector re-armed. */
  rearmed = 0;
  private readonly ring: IoUringBinding;
  private readonly registrations = new Map<number, Registration<T>>();
  private readonly events: Int32Array;
  private readonly maxEvents: number;
  private readonly edge: boolean;
  /** Keys the last wait reported: the level re-check's candidates. */
  private readonly reported: Registration<T>[] = [];
  private reportedCount = 0;
  private waits = 0;
  private nextId = 1;
  private readonly MULTI: number;
  private readonly MORE: number;
  private readonly IN: number;
  private readonly OUT: number;
  private readonly READ_BITS: number;
  private readonly WRITE_BITS: number;

  constructor(readonly options: IoUringOptions = {}) {
    super();
    const unavailable = ioUringUnavailable();
    if (unavailable !== null) throw unavailable;
    const IoUring = binding.IoUring as IoUringConstructor;
    this.maxEvents = options.maxEvents ?? 1024;
    if (!Number.isInteger(this.maxEvents) || this.maxEvents < 1) throw new RangeError('maxEvents must be an integer >= 1');
    const entries = options.entries ?? 1024;
    this.ring = new IoUring(entries, options.cqEntries ?? 4 * entries);
    this.fd = this.ring.fd;
    this.events = new Int32Array(2 * this.maxEvents);
    this.edge = options.edgeTriggered === true;
    this.MULTI = IoUring.POLL_ADD_MULTI;
    this.MORE = IoUring.MORE;
    this.IN = constants.POLLIN;
    this.OUT = constants.POLLOUT;
    const c = constants;
    this.READ_BITS = c.POLLIN | c.POLLPRI | (c.POLLRDHUP ?? 0) | c.POLLHUP | c.POLLERR;
    this.WRITE_BITS = c.POLLOUT | c.POLLHUP | c.POLLERR;
  }

  /** Submissions queued for the next enter (registrations, removals, re-arms): none reach the kernel before it. */
  get queued(): number {
    return this.closed ? 0 : this.ring.pending();
  }

  armWait(thread: WaitThread, timeoutMs: number | null): void {
    this.applyChanges();
    // The ring's descriptor is pollable like an epoll descriptor: readable while completions wait.
    thread.arm(WaitMechanism.Epoll, null, 0, this.fd, timeoutMs);
  }

  /** Queues the level re-checks and hands everything queued to the kernel, without waiting. */
  override applyChanges(): void {
    this.queueRechecks();
    if (this.ring.pending() > 0) this.ring.submit();
  }

  protected add(key: SelectorKey<T>): void {
    const registration = new Registration(key, this.allocateId());
    this.registrations.set(registration.id, registration);
    key.slot = registration.id;
    this.ring.pollAdd(key.fd, this.toPoll(key.events), registration.id * 2, this.MULTI);
  }

  /** A new interest is a new poll under a new id: whatever the old one still posts is stale. */
  protected update(key: SelectorKey<T>): void {
    const registration = this.registrations.get(key.slot) as Registration<T>;
    this.cancel(registration);
    registration.id = this.allocateId();
    this.registrations.set(registration.id, registration);
    key.slot = registration.id;
    this.ring.pollAdd(key.fd, this.toPoll(key.events), registration.id * 2, this.MULTI);
  }

  protected remove(key: SelectorKey<T>): void {
    const registration = this.registrations.get(key.slot);
    if (registration !== undefined) this.cancel(registration);
  }

  protected wait(timeoutMs: number): void {
    this.queueRechecks();
    const events = this.events;
    const n = this.ring.wait(events, this.maxEvents, timeoutMs);
    const stamp = ++this.waits;
    let failure: unknown = null;
    for (let i = 0; i < n; i++) {
      const token = events[2 * i];
      const registration = this.registrations.get(token >>> 1);
      if (registration === undefined) continue; // Removed, replaced or internal: stale.
      const result = events[2 * i + 1];
      const recheck = (token & KIND_RECHECK) !== 0;
      if (recheck) registration.rechecking = false;
      const key = registration.key;
      if (result < 0) {
        if (recheck) continue; // The persistent poll reports the same descriptor's trouble.
        // The poll could not be armed: the descriptor was closed before the registration reached
        // the kernel (EBADF), or it cannot be polled. The kernel holds nothing: forget the key.
        this.registrations.delete(registration.id);
        this.forget(key);
        if (result !== -constants.errno.EBADF) failure ??= systemError(-result, 'io_uring_enter', `(poll of fd ${key.fd})`);
        continue;
      }
      if (!recheck && (result & this.MORE) === 0) {
        // The kernel ended this multishot poll: arm it again (it goes with the next enter).
        this.rearmed++;
        this.ring.pollAdd(key.fd, this.toPoll(key.events), registration.id * 2, this.MULTI);
      }
      const ready = ((result & this.READ_BITS ? EVENT_READ : 0) | (result & this.WRITE_BITS ? EVENT_WRITE : 0)) & key.events;
      if (ready === 0) continue;
      if (registration.reportedIn === stamp) {
        key.readyEvents |= ready;
        continue;
      }
      registration.reportedIn = stamp;
      key.readyEvents = ready;
      this.pushReady(key);
      if (!this.edge) this.reported[this.reportedCount++] = registration;
    }
    if (failure !== null) throw failure;
  }

  protected release(): void {
    // Closing the ring ends every poll and drops its file references.
    this.ring.close();
    this.registrations.clear();
    this.reportedCount = 0;
  }

  /**
   * Level-triggered contract: each key the last wait reported gets a one-shot poll, which completes
   * inside the coming enter if the descriptor is still ready. One in flight per key at most.
   */
  private queueRechecks(): void {
    const count = this.reportedCount;
    if (count === 0) return;
    this.reportedCount = 0;
    for (let i = 0; i < count; i++) {
      const registration = this.reported[i];
      const key = registration.key;
      if (registration.rechecking || !key.registered || this.registrations.get(registration.id) !== registration) continue;
      registration.rechecking = true;
      this.ring.pollAdd(key.fd, this.toPoll(key.events), registration.id * 2 + KIND_RECHECK, 0);
    }
  }

  /** Removes both of a registration's polls; their last completions are stale from now on. */
  private cancel(registration: Registration<T>): void {
    this.registrations.delete(registration.id);
    this.ring.pollRemove(registration.id * 2, INTERNAL);
    if (registration.rechecking) {
      this.ring.pollRemove(registration.id * 2 + KIND_RECHECK, INTERNAL);
      registration.rechecking = false;
    }
  }

  /** A fresh id (31 bits, never 0), skipping any still registered after a wrap-around. */
  private allocateId(): number {
    let id = this.nextId;
    while (this.registrations.has(id)) id = id === MAX_ID ? 1 : id + 1;
    this.nextId = id === MAX_ID ? 1 : id + 1;
    return id;
  }

  private toPoll(events: number): number {
    return (events & EVENT_READ ? this.IN : 0) | (events & EVENT_WRITE ? this.OUT : 0);
  }
}
