/**
 * io_uring (Linux 5.13+): readiness as completions of multishot IORING_OP_POLL_ADD requests in a
 * ring shared with the kernel. A registration is a persistent poll, like an epoll registration; the
 * interest changes made between two waits go to the kernel in the same io_uring_enter as the wait.
 *
 * What the kernel does (Linux 6.18; test/lab-io-uring.test.ts and test/io-uring.test.ts show each point):
 * - A multishot poll is edge-like: it posts one completion per wake-up of the descriptor (a new
 *   arrival, new send space, the peer's FIN), never again for data left unread. The flag that
 *   asks for level-triggered poll (IORING_POLL_ADD_LEVEL) is refused with EINVAL.
 * - Updating a multishot poll in place (POLL_REMOVE with IORING_POLL_UPDATE_EVENTS) makes the
 *   kernel poll the descriptor again: it posts a completion at once if the descriptor is ready,
 *   and otherwise simply stays armed (no second request, no duplicate completion later).
 * - So, by default, this selector keeps Python's level-triggered contract itself: each key it
 *   reported is updated in place at the next wait, in the same io_uring_enter, which reports it
 *   again while it is still ready. With `edgeTriggered: true` it reports the raw edges instead
 *   (drain until EAGAIN, as EPOLLET).
 * - A completion without IORING_CQE_F_MORE ends the multishot poll. The kernel ends one when the
 *   completion ring is full (it posts what fits and ends the other polls, whose last completion
 *   comes once the ring has room): the selector then arms it again, with the next wait.
 * - A completion carries only its wake-up's events: an arrival is IN alone even on a writable
 *   socket watched for IN|OUT (epoll reports the full mask).
 * - POLL_REMOVE fails with -EALREADY while a wake-up of the poll is being handled, and a multishot
 *   poll then stays armed (holding its file, below). The selector removes polls with
 *   IORING_OP_ASYNC_CANCEL, which marks the poll so that it ends in that case too.
 * - A pending poll holds a reference to the descriptor's file: closing the descriptor does not
 *   end the poll (epoll forgets a closed descriptor; io_uring does not), and the socket really
 *   closes only once the poll is removed, by unregister() and the next wait (or applyChanges()).
 *
 * Stale completions: each registration (and each modify()) gets a fresh id, carried in the
 * completions' 32-bit user_data. A completion whose id is no longer registered (a removed, replaced
 * or cancelled poll) is dropped, so it can never reach a key registered later on the same
 * descriptor number. Removals and updates post a completion only when they fail (with user_data 0,
 * never an id), and those are dropped too: an update that finds its poll ended is followed by that
 * poll's last completion, which re-arms it.
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
  /**
   * IORING_SETUP_DEFER_TASKRUN (Linux 6.1+; default true): the kernel's completion work for this
   * ring waits for the selector's next io_uring_enter instead of interrupting the thread at each
   * readiness change. The ring then belongs to the thread that created it (SINGLE_ISSUER).
   */
  deferTaskrun?: boolean;
}

/** One registration's kernel side: the key and the id its poll's completions carry. */
class Registration<T> {
  /** The wait that last reported this key, so two completions in one wait make one report. */
  reportedIn = -1;
  /** The wait count when a new POLL_ADD was queued: it polls the descriptor afresh, so the re-check can skip it. */
  armedAt = -1;
  constructor(readonly key: SelectorKey<T>, public id: number) {}
}

/** user_data 0: a removal's or update's failure, which nobody needs. */
const MAX_ID = 0xffffffff;

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
  get fd(): number {
    return this.ring.fd;
  }
  /** How many multishot polls the kernel ended (a completion without IORING_CQE_F_MORE) and this selector re-armed. */
  rearmed = 0;
  private ring: IoUringBinding;
  private readonly entries: number;
  private readonly cqEntries: number;
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
  private readonly RECHECK: number;
  private readonly MORE: number;
  private readonly IN: number;
  private readonly OUT: number;
  private readonly READ_BITS: number;
  private readonly WRITE_BITS: number;
  /** A poll failure found after ready keys were collected: thrown by the next wait. */
  private owedFailure: unknown = null;

  constructor(readonly options: IoUringOptions = {}) {
    super();
    const unavailable = ioUringUnavailable();
    if (unavailable !== null) throw unavailable;
    const IoUring = binding.IoUring as IoUringConstructor;
    this.maxEvents = options.maxEvents ?? 1024;
    if (!Number.isInteger(this.maxEvents) || this.maxEvents < 1) throw new RangeError('maxEvents must be an integer >= 1');
    this.entries = options.entries ?? 1024;
    this.cqEntries = options.cqEntries ?? 4 * this.entries;
    this.ring = new IoUring(this.entries, this.cqEntries, options.deferTaskrun !== false);
    this.events = new Int32Array(2 * this.maxEvents);
    this.edge = options.edgeTriggered === true;
    this.MULTI = IoUring.POLL_ADD_MULTI;
    this.RECHECK = IoUring.POLL_UPDATE_EVENTS | IoUring.POLL_ADD_MULTI;
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

  /**
   * For an attached reactor, which waits outside the selector (Node's loop or a helper thread polls the
   * ring's descriptor): a DEFER_TASKRUN ring never wakes such a waiter — its completion work waits for
   * an io_uring_enter that nobody makes — so the selector starts over on a plain ring, every
   * registration armed again under a new id (a fresh poll reports what is ready now: nothing is
   * missed). Idempotent; a no-op on a plain ring.
   */
  prepareToAttach(): void {
    if (!this.ring.deferTaskrun || this.closed) return;
    const IoUring = binding.IoUring as IoUringConstructor;
    const plain = new IoUring(this.entries, this.cqEntries, false);
    this.ring.close();
    this.ring = plain;
    const registrations = [...this.registrations.values()];
    this.registrations.clear();
    this.reportedCount = 0;
    for (const registration of registrations) {
      registration.id = this.allocateId();
      registration.key.slot = registration.id;
      this.registrations.set(registration.id, registration);
      this.arm(registration);
    }
  }

  armWait(thread: WaitThread, timeoutMs: number | null): void {
    this.applyChanges();
    // The ring's descriptor is pollable like an epoll descriptor: readable while completions wait.
    thread.arm(WaitMechanism.Epoll, null, 0, this.fd, timeoutMs);
  }

  /** Queues the level re-checks and hands everything queued to the kernel, without waiting (attached mode's arm). */
  override applyChanges(): void {
    this.queueRechecks();
    if (this.ring.pending() > 0) this.ring.submit();
  }

  protected add(key: SelectorKey<T>): void {
    const registration = new Registration(key, this.allocateId());
    this.registrations.set(registration.id, registration);
    key.slot = registration.id;
    this.arm(registration);
  }

  /**
   * A new interest is a new poll under a new id (removal and POLL_ADD go with the next enter):
   * whatever the old one still posts is stale. Re-adding, not updating in place, is what works
   * even when the kernel has just ended the old poll and its last completion is still unread.
   */
  protected update(key: SelectorKey<T>): void {
    const registration = this.registrations.get(key.slot) as Registration<T>;
    this.registrations.delete(registration.id);
    this.ring.cancel(registration.id);
    registration.id = this.allocateId();
    this.registrations.set(registration.id, registration);
    key.slot = registration.id;
    this.arm(registration);
  }

  protected remove(key: SelectorKey<T>): void {
    const registration = this.registrations.get(key.slot);
    if (registration === undefined) return; // Forgotten already (its poll failed).
    this.registrations.delete(registration.id);
    this.ring.cancel(registration.id);
  }

  protected wait(timeoutMs: number): void {
    // A failure the last wait found after it had collected ready keys: those were delivered first.
    const owed = this.owedFailure;
    if (owed !== null) {
      this.owedFailure = null;
      throw owed;
    }
    this.queueRechecks();
    const events = this.events;
    const n = this.ring.wait(events, this.maxEvents, timeoutMs);
    const stamp = ++this.waits;
    let failure: unknown = null;
    let collected = 0;
    for (let i = 0; i < n; i++) {
      const registration = this.registrations.get(events[2 * i] >>> 0);
      if (registration === undefined) continue; // Removed, replaced, or a removal's failure: stale.
      const result = events[2 * i + 1];
      const key = registration.key;
      if (result < 0) {
        // The poll could not be armed: the descriptor was closed before the registration reached
        // the kernel (EBADF), or it cannot be polled. The kernel holds nothing: forget the key.
        this.registrations.delete(registration.id);
        this.forget(key);
        if (result !== -constants.errno.EBADF) failure ??= systemError(-result, 'io_uring_enter', `(poll of fd ${key.fd})`);
        continue;
      }
      if ((result & this.MORE) === 0) {
        // The kernel ended this multishot poll: arm it again (it goes with the next enter).
        this.rearmed++;
        this.arm(registration);
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
      collected++;
      if (!this.edge) this.reported[this.reportedCount++] = registration;
    }
    if (failure === null) return;
    // Edge-triggered, a ready key not delivered now is never reported again: deliver them, and
    // report the failure from the next wait (before it waits).
    if (collected > 0) this.owedFailure = failure;
    else throw failure;
  }

  protected release(): void {
    // Closing the ring ends every poll and drops its file references.
    this.ring.close();
    this.registrations.clear();
    this.reportedCount = 0;
  }

  /**
   * Level-triggered contract: each key the last wait reported has its multishot poll updated in
   * place, which makes the kernel poll the descriptor again inside the coming enter and post a
   * completion if it is still ready. A key whose poll is being re-added needs none.
   */
  private queueRechecks(): void {
    const count = this.reportedCount;
    if (count === 0) return;
    this.reportedCount = 0;
    for (let i = 0; i < count; i++) {
      const registration = this.reported[i];
      const key = registration.key;
      if (registration.armedAt === this.waits || !key.registered || this.registrations.get(registration.id) !== registration) continue;
      this.ring.pollUpdate(registration.id, 0, this.toPoll(key.events), this.RECHECK);
    }
  }

  /** A new multishot POLL_ADD for the registration's current id and interest. */
  private arm(registration: Registration<T>): void {
    registration.armedAt = this.waits;
    this.ring.pollAdd(registration.key.fd, this.toPoll(registration.key.events), registration.id, this.MULTI);
  }

  /** A fresh id (32 bits, never 0), skipping any still registered after a wrap-around. */
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
