/**
 * Scaling, in the manner of libevent's test/bench.c: N watched descriptors, A of them made readable
 * each round (spread evenly, shifted by one each round), one wait, then the reads of what is ready.
 * Measures the time per round and of the wait call alone, per mechanism, through iomux's
 * zero-allocation paths (a PollFdArray for poll/select, epoll_wait into a reused Int32Array, recv
 * into one reused Buffer) and the same loop in C (bench/scaling.c), so each row has a JS/C ratio.
 *
 * Watched descriptors are UDP sockets connected to themselves by default: one descriptor each, so
 * N = 10000 fits a 20000-descriptor limit that 10000 socketpairs (20000 + stdio) do not.
 */
import { performance } from 'node:perf_hooks';
import { binding, constants, hasEpoll, IoUringBinding, IoUringConstructor } from '../lib/native';
import { ioUringUnavailable } from '../lib/selectors/io-uring';
import { PollFdArray } from '../lib/pollfds';
import { freeDescriptors } from './machine';
import { programPath, runJsonLines } from './programs';
import { groupBy, ratio, spread, Spread } from './stats';

export const SCALING_MECHANISMS = ['select', 'poll', 'epoll-lt', 'epoll-et', 'io_uring'] as const;
export type ScalingMechanism = (typeof SCALING_MECHANISMS)[number];
export type Transport = 'udp' | 'socketpair';
export type Impl = 'js' | 'c';

export interface ScalingOptions {
  n: number[];
  a: number[];
  mechanisms: ScalingMechanism[];
  repeat: number;
  /** Timed rounds run for at least this long per cell. */
  timeMs: number;
  warmupRounds: number;
  transport: Transport;
}

/** One timed cell of one repetition. Times in nanoseconds. */
export interface ScalingSample {
  impl: Impl;
  mechanism: ScalingMechanism;
  n: number;
  a: number;
  repetition: number;
  rounds: number;
  roundNs: number;
  waitNs: number;
}

export interface ScalingSkip {
  impl: Impl;
  mechanism: ScalingMechanism;
  n: number;
  a: number;
  reason: string;
}

export interface ImplSummary {
  roundNs: Spread;
  waitNs: Spread;
  /** Timed rounds, summed over the repetitions. */
  rounds: number;
}

/** One (mechanism, N, A) cell: JavaScript and C side by side. */
export interface ScalingRow {
  mechanism: ScalingMechanism;
  n: number;
  a: number;
  js: ImplSummary | null;
  c: ImplSummary | null;
  /** Median JS round / median C round. */
  roundJsToC: number | null;
  waitJsToC: number | null;
  /** Why a side has no numbers. */
  skipped: Partial<Record<Impl, string>>;
}

export interface ScalingResult {
  options: ScalingOptions;
  notes: string[];
  samples: ScalingSample[];
  skips: ScalingSkip[];
  rows: ScalingRow[];
}

const WAIT_TIMEOUT_MS = 1000;

/** How many cells a run will report on (for the progress bar): one per (repetition, N, A, mechanism, impl). */
export function scalingCellCount(o: ScalingOptions): number {
  let cells = 0;
  for (const n of o.n) cells += o.a.filter((a) => a <= n).length * o.mechanisms.length * 2;
  return cells * o.repeat;
}

export async function runScaling(options: ScalingOptions, onCell: (label: string) => void = () => {}): Promise<ScalingResult> {
  const samples: ScalingSample[] = [];
  const skips: ScalingSkip[] = [];
  const cProgram = programPath('bench-scaling');
  const uringUnavailable = options.mechanisms.includes('io_uring') ? ioUringUnavailable() : null;
  const mechanisms = options.mechanisms.filter((m) => m === 'select' || m === 'poll' || (m === 'io_uring' ? uringUnavailable === null : hasEpoll()));
  // Repetitions outermost, so drift on a shared machine hits every configuration alike.
  for (let repetition = 0; repetition < options.repeat; repetition++) {
    for (const n of options.n) {
      const as = options.a.filter((a) => a <= n);
      if (as.length === 0) continue;
      await runJsCells(n, as, mechanisms, repetition, options, samples, skips, onCell);
      const lines = await runJsonLines<CLine>(cProgram, [
        '--n', String(n), '--a', as.join(','), '--mechanisms', mechanisms.join(','),
        '--time-ms', String(options.timeMs), '--warmup-rounds', String(options.warmupRounds),
        '--transport', options.transport,
      ]);
      for (const line of lines) {
        onCell(`C ${line.mechanism} N=${n} A=${line.a}`);
        if (line.skipped !== undefined) skips.push({ impl: 'c', mechanism: line.mechanism, n, a: line.a, reason: line.skipped });
        else samples.push({ impl: 'c', mechanism: line.mechanism, n, a: line.a, repetition, rounds: line.rounds!, roundNs: line.roundNs!, waitNs: line.waitNs! });
      }
    }
  }
  const notes = [
    `select watches only descriptors below FD_SETSIZE (${constants.FD_SETSIZE}); larger N is skipped for select, never attempted`,
    options.transport === 'udp'
      ? 'each watched descriptor is a UDP socket connected to itself (one descriptor per watched socket)'
      : 'each watched descriptor is one end of an AF_UNIX stream socketpair (two descriptors per watched socket)',
    'epoll-et reads each ready descriptor until it would block (the edge-triggered discipline): one extra recv per ready descriptor',
    'C select copies a master fd_set before each wait (as libevent does); iomux builds it from the pollfd array',
  ];
  if (!hasEpoll()) notes.push('no epoll on this platform: epoll rows are absent');
  if (mechanisms.includes('io_uring')) {
    notes.push('io_uring: one multishot POLL_ADD per descriptor; its completions are edge-like, so a ready descriptor is read until it ' +
      'would block, as under epoll-et. The thread that sends is the thread that waits, so each completion is posted on the way back ' +
      'from send() and the wait finds it in the mapped ring without a system call: compare round times, not only wait times');
  }
  if (uringUnavailable !== null) notes.push(`io_uring rows are absent: ${uringUnavailable.message}`);
  return { options, notes, samples, skips, rows: summarize(samples, skips) };
}

interface CLine {
  impl: 'c';
  mechanism: ScalingMechanism;
  n: number;
  a: number;
  skipped?: string;
  rounds?: number;
  roundNs?: number;
  waitNs?: number;
}

async function runJsCells(n: number, as: number[], mechanisms: ScalingMechanism[], repetition: number, options: ScalingOptions,
  samples: ScalingSample[], skips: ScalingSkip[], onCell: (label: string) => void): Promise<void> {
  const skipAll = (reason: string) => {
    for (const a of as) for (const mechanism of mechanisms) {
      onCell(`JS ${mechanism} N=${n} A=${a}`);
      skips.push({ impl: 'js', mechanism, n, a, reason });
    }
  };
  const needed = n * (options.transport === 'udp' ? 1 : 2);
  const free = freeDescriptors();
  if (needed > free) {
    skipAll(`needs ${needed} descriptors; this process may open ${free} more (RLIMIT_NOFILE)`);
    return;
  }
  const watched = openWatched(n, options.transport);
  try {
    for (const a of as) {
      for (const mechanism of mechanisms) {
        onCell(`JS ${mechanism} N=${n} A=${a}`);
        await yieldToEventLoop();
        if (mechanism === 'select' && watched.maxFd >= constants.FD_SETSIZE) {
          skips.push({ impl: 'js', mechanism, n, a, reason: `descriptors reach FD_SETSIZE (${constants.FD_SETSIZE})` });
          continue;
        }
        const loop = makeLoop(mechanism, watched, a);
        try {
          const t = timeRounds(watched, a, loop, options.timeMs, options.warmupRounds);
          samples.push({ impl: 'js', mechanism, n, a, repetition, ...t });
        } finally {
          loop.close();
        }
      }
    }
  } finally {
    watched.close();
  }
}

/** Lets timers run between synchronous cells (the progress bar redraws on one). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The watched descriptors and, for each, the one written to make it readable (the same one for UDP). */
interface Watched {
  readFds: Int32Array;
  writeFds: Int32Array;
  maxFd: number;
  close(): void;
}

function openWatched(n: number, transport: Transport): Watched {
  const opened: number[] = [];
  const readFds = new Int32Array(n);
  const writeFds = new Int32Array(n);
  const close = () => {
    for (const fd of opened) binding.close(fd);
    opened.length = 0;
  };
  try {
    for (let i = 0; i < n; i++) {
      if (transport === 'socketpair') {
        const [r, w] = binding.socketpair!(constants.AF_UNIX, constants.SOCK_STREAM | (constants.SOCK_NONBLOCK ?? 0));
        opened.push(r, w);
        readFds[i] = r;
        writeFds[i] = w;
      } else {
        const fd = binding.socket(constants.AF_INET, constants.SOCK_DGRAM | (constants.SOCK_NONBLOCK ?? 0));
        opened.push(fd);
        binding.bind(fd, '127.0.0.1', 0);
        binding.connect(fd, '127.0.0.1', binding.getsockname(fd).port);
        readFds[i] = writeFds[i] = fd;
      }
    }
  } catch (err) {
    close();
    throw err;
  }
  return { readFds, writeFds, maxFd: Math.max(...readFds), close };
}

/** One wait and the reads of what it reported; returns how many descriptors were ready. */
interface WaitLoop {
  waitAndRead(): number;
  /** Milliseconds spent inside the wait call, accumulated. */
  waitMs: number;
  close(): void;
}

const recvBuffer = Buffer.alloc(64);
const oneByte = Buffer.from('x');

/** Reads a ready descriptor once, or (edge-triggered) until it would block. */
function drain(fd: number, untilWouldBlock: boolean): void {
  for (;;) {
    const got = binding.recv(fd, recvBuffer, 0, 64);
    if (got < 0) return;
    if (got === 0) throw new Error(`fd ${fd}: unexpected end of stream`);
    if (!untilWouldBlock) return;
  }
}

/** poll() and select() share the pollfd array; only the wait call differs. */
class PollFdLoop implements WaitLoop {
  waitMs = 0;
  private readonly fds: PollFdArray;
  private readonly memory: ArrayBuffer;
  private readonly count: number;

  constructor(watched: Watched, private readonly useSelect: boolean) {
    this.count = watched.readFds.length;
    this.fds = new PollFdArray(this.count);
    for (const fd of watched.readFds) this.fds.push(fd, constants.POLLIN);
    this.memory = this.fds.buffer;
  }

  waitAndRead(): number {
    const t0 = performance.now();
    const n = this.useSelect
      ? binding.selectPollfds(this.memory, this.count, WAIT_TIMEOUT_MS)
      : binding.poll!(this.memory, this.count, WAIT_TIMEOUT_MS);
    this.waitMs += performance.now() - t0;
    let found = 0;
    for (let i = 0; found < n && i < this.count; i++) {
      if (this.fds.revents(i) !== 0) {
        drain(this.fds.fd(i), false);
        found++;
      }
    }
    return n;
  }

  close(): void {}
}

class EpollLoop implements WaitLoop {
  waitMs = 0;
  private readonly epfd: number;
  private readonly events: Int32Array;

  constructor(private readonly watched: Watched, private readonly a: number, private readonly edge: boolean) {
    this.epfd = binding.epoll_create1!(0);
    try {
      const events = constants.EPOLLIN! | (edge ? constants.EPOLLET! : 0);
      watched.readFds.forEach((fd, index) => binding.epoll_ctl!(this.epfd, constants.EPOLL_CTL_ADD!, fd, events, index));
    } catch (err) {
      binding.close(this.epfd);
      throw err;
    }
    this.events = new Int32Array(2 * a);
  }

  waitAndRead(): number {
    const t0 = performance.now();
    const n = binding.epoll_wait!(this.epfd, this.events, this.a, WAIT_TIMEOUT_MS);
    this.waitMs += performance.now() - t0;
    const readFds = this.watched.readFds;
    for (let j = 0; j < n; j++) drain(readFds[this.events[2 * j]], this.edge);
    return n;
  }

  close(): void {
    binding.close(this.epfd);
  }
}

/** io_uring: one multishot POLL_ADD per descriptor (data = its index); see bench/scaling.c's twin. */
class IoUringLoop implements WaitLoop {
  waitMs = 0;
  private readonly ring: IoUringBinding;
  private readonly events: Int32Array;
  private readonly MORE: number;
  private readonly MULTI: number;

  constructor(private readonly watched: Watched, private readonly a: number) {
    const IoUring = binding.IoUring as IoUringConstructor;
    let cq = 4096;
    while (cq < 2 * a) cq *= 2;
    this.ring = new IoUring(1024, cq);
    this.MORE = IoUring.MORE;
    this.MULTI = IoUring.POLL_ADD_MULTI;
    try {
      watched.readFds.forEach((fd, index) => this.ring.pollAdd(fd, constants.POLLIN, index, this.MULTI));
      this.ring.submit();
    } catch (err) {
      this.ring.close();
      throw err;
    }
    this.events = new Int32Array(2 * a);
  }

  waitAndRead(): number {
    const t0 = performance.now();
    const n = this.ring.wait(this.events, this.a, WAIT_TIMEOUT_MS);
    this.waitMs += performance.now() - t0;
    const readFds = this.watched.readFds;
    for (let j = 0; j < n; j++) {
      const index = this.events[2 * j];
      const result = this.events[2 * j + 1];
      if (result < 0) throw new Error(`io_uring poll of #${index} failed (errno ${-result})`);
      // The kernel ended this multishot poll: arm it again (submitted with the next wait).
      if ((result & this.MORE) === 0) this.ring.pollAdd(readFds[index], constants.POLLIN, index, this.MULTI);
      drain(readFds[index], true);
    }
    return n;
  }

  close(): void {
    this.ring.close();
  }
}

function makeLoop(mechanism: ScalingMechanism, watched: Watched, a: number): WaitLoop {
  switch (mechanism) {
    case 'io_uring': return new IoUringLoop(watched, a);
    case 'select': return new PollFdLoop(watched, true);
    case 'poll': return new PollFdLoop(watched, false);
    case 'epoll-lt': return new EpollLoop(watched, a, false);
    case 'epoll-et': return new EpollLoop(watched, a, true);
  }
}

/** Warm-up rounds, then timed rounds until `timeMs` has passed; the same structure as scaling.c's run_cell. */
function timeRounds(watched: Watched, a: number, loop: WaitLoop, timeMs: number, warmupRounds: number) {
  const n = watched.readFds.length;
  const writeFds = watched.writeFds;
  const offsets = new Int32Array(a);
  for (let k = 0; k < a; k++) offsets[k] = Math.floor((k * n) / a);
  let round = 0;
  const oneRound = () => {
    for (let k = 0; k < a; k++) {
      if (binding.send(writeFds[(offsets[k] + round) % n], oneByte, 0, 1) !== 1) throw new Error('send did not take one byte');
    }
    round++;
    let got = 0;
    while (got < a) got += loop.waitAndRead();
    if (got !== a) throw new Error(`${got} descriptors ready, expected ${a}`);
  };
  for (let i = 0; i < warmupRounds; i++) oneRound();
  loop.waitMs = 0;
  let rounds = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    oneRound();
    rounds++;
    elapsed = performance.now() - start;
  } while (elapsed < timeMs);
  return { rounds, roundNs: (elapsed * 1e6) / rounds, waitNs: (loop.waitMs * 1e6) / rounds };
}

function summarize(samples: ScalingSample[], skips: ScalingSkip[]): ScalingRow[] {
  const cellKey = (x: { mechanism: string; n: number; a: number }) => `${x.mechanism}|${x.n}|${x.a}`;
  const keys = new Map<string, { mechanism: ScalingMechanism; n: number; a: number }>();
  for (const x of [...samples, ...skips]) if (!keys.has(cellKey(x))) keys.set(cellKey(x), x);
  const byCell = groupBy(samples, (s) => `${cellKey(s)}|${s.impl}`);
  const implSummary = (key: string): ImplSummary | null => {
    const group = byCell.get(key);
    if (!group) return null;
    return {
      roundNs: spread(group.map((s) => s.roundNs)),
      waitNs: spread(group.map((s) => s.waitNs)),
      rounds: group.reduce((sum, s) => sum + s.rounds, 0),
    };
  };
  const rows: ScalingRow[] = [];
  for (const [key, cell] of keys) {
    const js = implSummary(`${key}|js`);
    const c = implSummary(`${key}|c`);
    const skipped: Partial<Record<Impl, string>> = {};
    for (const s of skips) if (cellKey(s) === key) skipped[s.impl] = s.reason;
    rows.push({
      ...cell, js, c, skipped,
      roundJsToC: ratio(js?.roundNs.median, c?.roundNs.median),
      waitJsToC: ratio(js?.waitNs.median, c?.waitNs.median),
    });
  }
  const order = (m: ScalingMechanism) => SCALING_MECHANISMS.indexOf(m);
  return rows.sort((x, y) => x.a - y.a || order(x.mechanism) - order(y.mechanism) || x.n - y.n);
}
