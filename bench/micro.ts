/**
 * Micro-benchmarks: the cost of one call through the addon, timed with the `benchmark` package,
 * next to the same system call timed in C (bench/micro.c). Every call is made on an idle
 * descriptor, so nothing is ever ready and each is exactly one system call; JS minus C is the
 * price of crossing into the addon (argument checks, N-API, the return value).
 *
 * The addon has no no-op binding, so the "empty call" is getNonBlocking (one fcntl(F_GETFL)).
 */
import type BenchmarkType from 'benchmark';
import { binding, constants, hasEpoll } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import { programPath, runJsonLines } from './programs';
import { yieldToEventLoop } from './scaling';
import { groupBy, ratio, spread, Spread } from './stats';

export interface MicroOptions {
  repeat: number;
  /** How long each benchmark runs, per repetition. */
  timeMs: number;
}

/** One JavaScript call and the C call it is compared with. */
export interface MicroCall {
  name: string;
  js: string;
  c: string;
  cName: string;
}

export const MICRO_CALLS: readonly MicroCall[] = [
  { name: 'empty call', js: 'getNonBlocking(fd)', c: 'fcntl(fd, F_GETFL)', cName: 'fcntl' },
  { name: 'epoll_wait, empty set', js: 'epoll_wait(epfd, events, 64, 0)', c: 'epoll_wait(epfd, events, 64, 0)', cName: 'epoll_wait' },
  { name: 'poll, one fd', js: 'poll(pollfds, 1, 0)', c: 'poll(&pfd, 1, 0)', cName: 'poll' },
  { name: 'select, one fd (pollfd array)', js: 'selectPollfds(pollfds, 1, 0)', c: 'select(fd + 1, &r, 0, 0, &zero)', cName: 'select' },
  { name: 'select, one fd (arrays)', js: 'select([fd], null, null, 0)', c: 'select(fd + 1, &r, 0, 0, &zero)', cName: 'select' },
  { name: 'recv that would block', js: 'recv(fd, buf, 0, 64) -> -1', c: 'recv(fd, buf, 64, 0) -> EAGAIN', cName: 'recv' },
];

export interface MicroSample {
  impl: 'js' | 'c';
  /** MicroCall.name for JS samples; MicroCall.cName for C samples. */
  call: string;
  repetition: number;
  nsPerCall: number;
}

export interface MicroRow extends MicroCall {
  jsNs: Spread | null;
  cNs: Spread | null;
  /** Median JS / median C. */
  jsToC: number | null;
  /** Median JS minus median C: what one crossing into the addon costs. */
  overheadNs: number | null;
}

export interface MicroResult {
  options: MicroOptions;
  notes: string[];
  samples: MicroSample[];
  rows: MicroRow[];
}

export function microCellCount(o: MicroOptions): number {
  return o.repeat * availableCalls().length + 1;
}

function availableCalls(): MicroCall[] {
  return MICRO_CALLS.filter((c) => (c.cName !== 'epoll_wait' || hasEpoll()) && (c.cName !== 'poll' || binding.poll));
}

export async function runMicro(options: MicroOptions, onCell: (label: string) => void = () => {}): Promise<MicroResult> {
  // An optional package (tools/optional.ts): loaded when this part runs, not when the suite is.
  const Benchmark = require('benchmark') as typeof BenchmarkType;
  const calls = availableCalls();
  const samples: MicroSample[] = [];
  const [idle, peer] = binding.socketpair!(constants.AF_UNIX, constants.SOCK_STREAM | (constants.SOCK_NONBLOCK ?? 0));
  const epfd = hasEpoll() ? binding.epoll_create1!(0) : -1;
  try {
    const fns = callFunctions(idle, epfd);
    for (let repetition = 0; repetition < options.repeat; repetition++) {
      for (const call of calls) {
        onCell(`JS ${call.name}`);
        await yieldToEventLoop();
        // benchmark.js runs about twice its maxTime (calibration, then sampling): halve it to keep timeMs.
        const bench = new Benchmark(call.name, fns[call.name],
          { maxTime: options.timeMs / 2000, minTime: options.timeMs / 20000, minSamples: 5, initCount: 100 });
        bench.run({ async: false });
        if (bench.error) throw bench.error;
        samples.push({ impl: 'js', call: call.name, repetition, nsPerCall: 1e9 / bench.hz });
      }
    }
  } finally {
    if (epfd >= 0) binding.close(epfd);
    binding.close(idle);
    binding.close(peer);
  }
  onCell('C calls');
  const cLines = await runJsonLines<{ call: string; repetition: number; nsPerCall: number }>(programPath('bench-micro'),
    ['--time-ms', String(options.timeMs), '--repeat', String(options.repeat)]);
  for (const line of cLines) samples.push({ impl: 'c', ...line });

  const js = groupBy(samples.filter((s) => s.impl === 'js'), (s) => s.call);
  const c = groupBy(samples.filter((s) => s.impl === 'c'), (s) => s.call);
  const rows = calls.map((call): MicroRow => {
    const jsNs = js.has(call.name) ? spread(js.get(call.name)!.map((s) => s.nsPerCall)) : null;
    const cNs = c.has(call.cName) ? spread(c.get(call.cName)!.map((s) => s.nsPerCall)) : null;
    return {
      ...call, jsNs, cNs,
      jsToC: ratio(jsNs?.median, cNs?.median),
      overheadNs: jsNs && cNs ? jsNs.median - cNs.median : null,
    };
  });
  const notes = [
    'every call is one system call on an idle descriptor (nothing ready, zero timeout)',
    'the addon has no no-op binding: the "empty call" is getNonBlocking, one fcntl(F_GETFL)',
    'C select rebuilds its one-descriptor fd_set per call, as the binding does',
  ];
  return { options, notes, samples, rows };
}

function callFunctions(fd: number, epfd: number): Record<string, () => void> {
  const events = new Int32Array(128);
  const pollfds = new PollFdArray(1);
  pollfds.push(fd, constants.POLLIN);
  const memory = pollfds.buffer;
  const buffer = Buffer.alloc(64);
  const readList = [fd];
  // Each function checks its result, so a broken call fails the run instead of timing an exception.
  const expectZero = (n: number, what: string) => {
    if (n !== 0) throw new Error(`${what} reported ${n} ready on an idle descriptor`);
  };
  return {
    'empty call': () => {
      if (binding.getNonBlocking(fd) !== true) throw new Error('getNonBlocking: the descriptor should be non-blocking');
    },
    'epoll_wait, empty set': () => expectZero(binding.epoll_wait!(epfd, events, 64, 0), 'epoll_wait'),
    'poll, one fd': () => expectZero(binding.poll!(memory, 1, 0), 'poll'),
    'select, one fd (pollfd array)': () => expectZero(binding.selectPollfds(memory, 1, 0), 'selectPollfds'),
    'select, one fd (arrays)': () => expectZero(binding.select(readList, null, null, 0)[0].length, 'select'),
    'recv that would block': () => {
      if (binding.recv(fd, buffer, 0, 64) !== -1) throw new Error('recv should report would-block (-1)');
    },
  };
}
