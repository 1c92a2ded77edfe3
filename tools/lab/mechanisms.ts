/**
 * Thin adapters over the raw bindings, one per mechanism, so a scenario's script is written once and
 * run under each. They add nothing the kernel does not do: each wait is one system call, and the
 * events are the kernel's bits turned into names.
 */
import { binding, constants, hasEpoll } from '../../lib/native';
import type { EpollBinding, IoUringBinding, IoUringConstructor } from '../../lib/native';
import { ioUringUnavailable } from '../../lib/selectors/io-uring';
import { PollFdArray } from '../../lib/pollfds';
import type { EventName, MechanismName, Variant } from './model';

export const MECHANISMS: readonly MechanismName[] = ['select', 'poll', 'epoll-lt', 'epoll-et', 'epoll-oneshot', 'io_uring'];

/** What the lab watches a descriptor for. */
export interface Interest {
  read?: boolean;
  write?: boolean;
}

export interface Readiness {
  fd: number;
  events: EventName[];
}

export interface Watcher {
  readonly variant: Variant;
  add(fd: number, interest: Interest): void;
  /** Changes the interest; for epoll this is EPOLL_CTL_MOD, which also re-arms a one-shot descriptor. */
  modify(fd: number, interest: Interest): void;
  remove(fd: number): void;
  /** One wait of at most `timeoutMs`; an empty array when nothing was reported. */
  wait(timeoutMs: number): Readiness[];
  /** The registration as the system call would be written, e.g. `epoll_ctl(ADD, 7, EPOLLIN|EPOLLET)`. */
  describe(fd: number, interest: Interest): string;
  close(): void;
}

/** Why a mechanism cannot run here, or null if it can. */
export function unavailableReason(mechanism: MechanismName): string | null {
  if (mechanism === 'poll' && typeof binding.poll !== 'function') return 'poll: not available on this platform';
  if (mechanism.startsWith('epoll') && !hasEpoll()) return `${mechanism}: epoll is Linux-only`;
  if (mechanism === 'io_uring') {
    const why = ioUringUnavailable();
    if (why !== null) return `io_uring: ${why.message}`;
  }
  return null;
}

/** 'select', 'poll+rdhup', 'epoll-lt+exclusive'. */
export function variantLabel(v: Variant): string {
  return v.mechanism + (v.rdhup ? '+rdhup' : '') + (v.pri ? '+pri' : '') + (v.exclusive ? '+exclusive' : '') +
    (v.batched ? '+batched' : '') + (v.cqEntries !== undefined ? `+cq${v.cqEntries}` : '') + (v.unix ? ' unix' : '');
}

export function plainVariant(mechanism: MechanismName): Variant {
  return { mechanism, rdhup: false, exclusive: false };
}

/**
 * Turns `--mechanism` values into mechanisms, in the lab's order. Accepts comma lists and the
 * shorthands 'all' and 'epoll' (its three modes); an unknown name is a RangeError.
 */
export function parseMechanisms(values: readonly string[] | undefined): MechanismName[] {
  if (!values || values.length === 0) return [...MECHANISMS];
  const wanted = new Set<MechanismName>();
  for (const value of values.flatMap((v) => v.split(','))) {
    const name = value.trim();
    if (name === 'all') MECHANISMS.forEach((m) => wanted.add(m));
    else if (name === 'epoll') MECHANISMS.filter((m) => m.startsWith('epoll')).forEach((m) => wanted.add(m));
    else if ((MECHANISMS as readonly string[]).includes(name)) wanted.add(name as MechanismName);
    else throw new RangeError(`Unknown mechanism "${name}"; choose from ${MECHANISMS.join(', ')}, epoll, all`);
  }
  return MECHANISMS.filter((m) => wanted.has(m));
}

export function openWatcher(variant: Variant): Watcher {
  const reason = unavailableReason(variant.mechanism);
  if (reason) throw new Error(reason);
  if (variant.mechanism === 'io_uring' && binding.IoUring === undefined) throw new Error('io_uring is Linux-only');
  if (variant.exclusive && !variant.mechanism.startsWith('epoll')) {
    throw new RangeError('EPOLLEXCLUSIVE exists only for epoll');
  }
  if (variant.rdhup && variant.mechanism === 'select') throw new RangeError('select has no RDHUP');
  if (variant.mechanism === 'select') return new SelectWatcher(variant);
  if (variant.mechanism === 'poll') return new PollWatcher(variant);
  if (variant.mechanism === 'io_uring') return new IoUringWatcher(variant);
  return new EpollWatcher(variant);
}

function namesOf(bits: number, table: ReadonlyArray<readonly [EventName, number | undefined]>): EventName[] {
  return table.filter(([, bit]) => bit !== undefined && (bits & bit) !== 0).map(([name]) => name);
}

function joinFlags(names: string[]): string {
  return names.length ? names.join('|') : '0';
}

/** select(): the three lists are rebuilt from the registrations on every call, as select needs. */
class SelectWatcher implements Watcher {
  private readonly interests = new Map<number, Interest>();

  constructor(readonly variant: Variant) {}

  add(fd: number, interest: Interest): void {
    if (this.interests.has(fd)) throw new Error(`fd ${fd} is already registered`);
    this.interests.set(fd, { ...interest });
  }

  modify(fd: number, interest: Interest): void {
    this.interests.set(fd, { ...interest });
  }

  remove(fd: number): void {
    this.interests.delete(fd);
  }

  wait(timeoutMs: number): Readiness[] {
    const fds = [...this.interests.keys()];
    const read = fds.filter((fd) => this.interests.get(fd)?.read);
    const write = fds.filter((fd) => this.interests.get(fd)?.write);
    const [r, w, x] = binding.select(read, write, fds, timeoutMs);
    const ready: Readiness[] = [];
    for (const fd of fds) {
      const events: EventName[] = [];
      if (r.includes(fd)) events.push('IN');
      if (x.includes(fd)) events.push('PRI');
      if (w.includes(fd)) events.push('OUT');
      if (events.length) ready.push({ fd, events });
    }
    return ready;
  }

  describe(fd: number, interest: Interest): string {
    return describeRegistration(this.variant, fd, interest);
  }

  close(): void {
    this.interests.clear();
  }
}

/** The poll(2) bits the lab names: poll's revents and io_uring's POLL_ADD completions share them. */
const POLL_REPORTED: ReadonlyArray<readonly [EventName, number | undefined]> = [
  ['IN', constants.POLLIN],
  ['PRI', constants.POLLPRI],
  ['OUT', constants.POLLOUT],
  ['ERR', constants.POLLERR],
  ['HUP', constants.POLLHUP],
  ['RDHUP', constants.POLLRDHUP],
  ['NVAL', constants.POLLNVAL],
];

/** poll(): one pollfd array, used in place by every call. */
class PollWatcher implements Watcher {
  private readonly pollfds = new PollFdArray(4);
  private readonly slots = new Map<number, number>();

  constructor(readonly variant: Variant) {
    if (variant.rdhup && constants.POLLRDHUP === undefined) throw new Error('POLLRDHUP is Linux-only');
  }

  add(fd: number, interest: Interest): void {
    if (this.slots.has(fd)) throw new Error(`fd ${fd} is already registered`);
    this.slots.set(fd, this.pollfds.push(fd, pollBits(interest, this.variant)));
  }

  modify(fd: number, interest: Interest): void {
    this.pollfds.setEvents(this.slot(fd), pollBits(interest, this.variant));
  }

  remove(fd: number): void {
    const index = this.slot(fd);
    const moved = this.pollfds.swapRemove(index);
    this.slots.delete(fd);
    // The last entry now sits where `fd` was.
    if (moved >= 0) this.slots.set(this.pollfds.fd(index), index);
  }

  wait(timeoutMs: number): Readiness[] {
    const poll = binding.poll;
    if (!poll) throw new Error('poll: not available on this platform');
    const n = poll(this.pollfds.buffer, this.pollfds.length, timeoutMs);
    const ready: Readiness[] = [];
    for (let i = 0; i < this.pollfds.length && ready.length < n; i++) {
      const revents = this.pollfds.revents(i);
      if (revents) ready.push({ fd: this.pollfds.fd(i), events: namesOf(revents, POLL_REPORTED) });
    }
    return ready;
  }

  describe(fd: number, interest: Interest): string {
    return describeRegistration(this.variant, fd, interest);
  }

  close(): void {
    this.pollfds.clear();
    this.slots.clear();
  }

  private slot(fd: number): number {
    const index = this.slots.get(fd);
    if (index === undefined) throw new Error(`fd ${fd} is not registered`);
    return index;
  }
}

/** epoll: one instance per watcher; the mode (level, edge, one-shot) is a flag on each registration. */
class EpollWatcher implements Watcher {
  private readonly epfd: number;
  private readonly events = new Int32Array(2 * 64);
  private static readonly REPORTED: ReadonlyArray<readonly [EventName, number | undefined]> = [
    ['IN', constants.EPOLLIN],
    ['PRI', constants.EPOLLPRI],
    ['OUT', constants.EPOLLOUT],
    ['ERR', constants.EPOLLERR],
    ['HUP', constants.EPOLLHUP],
    ['RDHUP', constants.EPOLLRDHUP],
  ];

  constructor(readonly variant: Variant) {
    this.epfd = epoll().epoll_create1(0);
  }

  add(fd: number, interest: Interest): void {
    epoll().epoll_ctl(this.epfd, need(constants.EPOLL_CTL_ADD), fd, this.flags(interest));
  }

  modify(fd: number, interest: Interest): void {
    epoll().epoll_ctl(this.epfd, need(constants.EPOLL_CTL_MOD), fd, this.flags(interest));
  }

  remove(fd: number): void {
    epoll().epoll_ctl(this.epfd, need(constants.EPOLL_CTL_DEL), fd);
  }

  wait(timeoutMs: number): Readiness[] {
    const n = epoll().epoll_wait(this.epfd, this.events, this.events.length / 2, timeoutMs);
    const ready: Readiness[] = [];
    for (let i = 0; i < n; i++) {
      ready.push({ fd: this.events[2 * i], events: namesOf(this.events[2 * i + 1], EpollWatcher.REPORTED) });
    }
    return ready;
  }

  describe(fd: number, interest: Interest): string {
    return describeRegistration(this.variant, fd, interest);
  }

  close(): void {
    binding.close(this.epfd);
  }

  private flags(interest: Interest): number {
    // EPOLLEXCLUSIVE is bit 28; `>>> 0` keeps the value an unsigned 32-bit number.
    return epollFlags(this.variant, interest).reduce((acc, [, bit]) => (acc | need(bit)) >>> 0, 0);
  }
}

/**
 * io_uring: one multishot IORING_OP_POLL_ADD per descriptor, and nothing more: no re-check, no
 * automatic re-arm (the selector adds those; the lab shows what the kernel does). A completion's
 * user_data is the descriptor plus a generation, so one from a poll already removed is not
 * mistaken for the new poll's; a completion without IORING_CQE_F_MORE is shown as END.
 */
class IoUringWatcher implements Watcher {
  private readonly ring: IoUringBinding;
  private readonly events = new Int32Array(2 * 64);
  /** fd -> the generation of its live poll (user_data = generation * 2^20 + fd). */
  private readonly generations = new Map<number, number>();
  private nextGeneration = 1;
  private static readonly FD_BITS = 2 ** 20;
  /** The removals' own completions carry this, and are not shown. */
  private static readonly INTERNAL = 0xffffffff;

  constructor(readonly variant: Variant) {
    const IoUring = binding.IoUring as IoUringConstructor;
    // The submission ring may not be larger than the completion ring.
    this.ring = new IoUring(Math.min(64, variant.cqEntries ?? 64), variant.cqEntries ?? 0);
  }

  add(fd: number, interest: Interest): void {
    if (this.generations.has(fd)) throw new Error(`fd ${fd} is already registered`);
    if (fd >= IoUringWatcher.FD_BITS) throw new RangeError(`fd ${fd} is too large for the lab's io_uring tokens`);
    const generation = this.nextGeneration++ % 4095 + 1;
    this.generations.set(fd, generation);
    this.ring.pollAdd(fd, pollBits(interest, this.variant), generation * IoUringWatcher.FD_BITS + fd, (binding.IoUring as IoUringConstructor).POLL_ADD_MULTI);
  }

  /** A new poll for the new interest (like EPOLL_CTL_MOD, it reports what is ready now). */
  modify(fd: number, interest: Interest): void {
    this.remove(fd);
    this.add(fd, interest);
  }

  remove(fd: number): void {
    const generation = this.generations.get(fd);
    if (generation === undefined) throw new Error(`fd ${fd} is not registered`);
    this.generations.delete(fd);
    this.ring.pollRemove(generation * IoUringWatcher.FD_BITS + fd, IoUringWatcher.INTERNAL);
  }

  wait(timeoutMs: number): Readiness[] {
    const IoUring = binding.IoUring as IoUringConstructor;
    const n = this.ring.wait(this.events, this.events.length / 2, timeoutMs);
    const ready: Readiness[] = [];
    for (let i = 0; i < n; i++) {
      const data = this.events[2 * i] >>> 0;
      const result = this.events[2 * i + 1];
      const fd = data % IoUringWatcher.FD_BITS;
      if (data === IoUringWatcher.INTERNAL || this.generations.get(fd) !== Math.floor(data / IoUringWatcher.FD_BITS)) continue;
      if (result < 0) throw new Error(`io_uring poll of fd ${fd} failed with errno ${-result}`);
      const events = namesOf(result, POLL_REPORTED);
      if ((result & IoUring.MORE) === 0) {
        events.push('END');
        // The kernel holds no poll for it any more: only add() (a new poll) brings it back.
        this.generations.delete(fd);
      }
      ready.push({ fd, events });
    }
    return ready;
  }

  /** Whether `fd` still has a live poll (false once an END was seen). */
  armed(fd: number): boolean {
    return this.generations.has(fd);
  }

  describe(fd: number, interest: Interest): string {
    return describeRegistration(this.variant, fd, interest);
  }

  close(): void {
    this.ring.close();
    this.generations.clear();
  }
}

/** The poll(2) bits for an interest: poll and io_uring's POLL_ADD take the same mask. */
function pollBits(interest: Interest, variant: Variant): number {
  let bits = 0;
  if (interest.read) bits |= constants.POLLIN;
  if (interest.write) bits |= constants.POLLOUT;
  if (variant.rdhup) bits |= constants.POLLRDHUP ?? 0;
  if (variant.pri) bits |= constants.POLLPRI;
  return bits;
}

function epoll(): EpollBinding {
  if (!hasEpoll(binding)) throw new Error('epoll is Linux-only');
  return binding;
}

function need(value: number | undefined): number {
  if (value === undefined) throw new Error('epoll constant missing from the addon');
  return value;
}

/** The registration as the system call would be written, without making it. */
export function describeRegistration(variant: Variant, fd: number, interest: Interest): string {
  if (variant.mechanism === 'select') {
    const list = (on: boolean | undefined): string => (on ? `[${fd}]` : '[]');
    return `select(read=${list(interest.read)}, write=${list(interest.write)}, except=[${fd}]) on every wait`;
  }
  if (variant.mechanism === 'poll') {
    const names: string[] = [];
    if (interest.read) names.push('POLLIN');
    if (interest.write) names.push('POLLOUT');
    if (variant.rdhup) names.push('POLLRDHUP');
    if (variant.pri) names.push('POLLPRI');
    return `poll([{fd: ${fd}, events: ${joinFlags(names)}}]) on every wait`;
  }
  if (variant.mechanism === 'io_uring') {
    const names: string[] = [];
    if (interest.read) names.push('POLLIN');
    if (interest.write) names.push('POLLOUT');
    if (variant.rdhup) names.push('POLLRDHUP');
    if (variant.pri) names.push('POLLPRI');
    return `io_uring POLL_ADD(${fd}, ${joinFlags(names)}, IORING_POLL_ADD_MULTI)`;
  }
  return `epoll_ctl(ADD, ${fd}, ${joinFlags(epollFlags(variant, interest).map(([name]) => name))})`;
}

function epollFlags(variant: Variant, interest: Interest): Array<[string, number | undefined]> {
  const parts: Array<[string, number | undefined]> = [];
  if (interest.read) parts.push(['EPOLLIN', constants.EPOLLIN]);
  if (interest.write) parts.push(['EPOLLOUT', constants.EPOLLOUT]);
  if (variant.rdhup) parts.push(['EPOLLRDHUP', constants.EPOLLRDHUP]);
  if (variant.pri) parts.push(['EPOLLPRI', constants.EPOLLPRI]);
  if (variant.mechanism === 'epoll-et') parts.push(['EPOLLET', constants.EPOLLET]);
  if (variant.mechanism === 'epoll-oneshot') parts.push(['EPOLLONESHOT', constants.EPOLLONESHOT]);
  if (variant.exclusive) parts.push(['EPOLLEXCLUSIVE', constants.EPOLLEXCLUSIVE]);
  return parts;
}
