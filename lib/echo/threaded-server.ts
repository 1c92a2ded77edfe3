/**
 * Multi-reactor serving: N worker threads, each running its own reactor and echo server on one
 * port, so the echo server uses N cores. How connections reach the threads (`balance`):
 *
 * - 'reuseport': each thread opens its own listening socket with SO_REUSEPORT; the kernel spreads
 *   incoming connections over them (by a hash of the addresses) and no thread sees another's.
 * - 'exclusive': the main thread opens one listening socket and every thread's reactor watches it,
 *   on epoll with EPOLLEXCLUSIVE so a connection wakes one thread instead of all. select and poll
 *   have no such flag: every thread wakes for every connection (the thundering herd), which is
 *   allowed with a warning. EPOLLEXCLUSIVE does not spread connections (the kernel wakes the first
 *   waiting thread), so by default the accepting thread hands each connection to the thread with
 *   the fewest open ones (`handOff`, ConnectionBalancer).
 *
 * Each thread is lib/echo/serve-worker.ts: a blocking run() woken by its own Waker, which also
 * carries the commands (stats, stop) — a thread blocked in its wait cannot take messages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding, constants, SocketAddress } from '../native';
import { availableMechanisms } from '../selectors/default';
import { bindTo, Endpoint, isUnix, streamSocket } from '../stream/endpoint';
import { Waker } from '../waker';
import { EchoServerOptions, EchoStats } from './server';
import { ConnectionBalancer } from './connection-balancer';
import { COMMAND_STATS, COMMAND_STOP, postCommand, ServeWorkerData, ServeWorkerMessage } from './serve-protocol';

export type Balance = 'reuseport' | 'exclusive';
export const BALANCES: readonly Balance[] = ['reuseport', 'exclusive'];

export interface ThreadedEchoOptions extends Omit<EchoServerOptions, 'reactor' | 'log' | 'reusePort' | 'sharedFd' | 'exclusive'> {
  /** Reactor threads. */
  threads: number;
  /** Default: 'reuseport' where SO_REUSEPORT exists, else 'exclusive'. */
  balance?: Balance;
  /**
   * With 'exclusive': the accepting thread hands a connection to the thread with the fewest open
   * connections (exact balance, at accept time only). Default true; false leaves the spread to the
   * kernel's wake-ups.
   */
  handOff?: boolean;
  /** Where warnings, refusals and errors are reported (each thread's lines are prefixed with its number). */
  log?: (line: string) => void;
}

export interface ThreadStats extends EchoStats {
  /** 1-based. */
  thread: number;
  /** Connections this thread accepted and handed to another ('exclusive' with handOff). */
  handedOff: number;
  /** The kernel's thread id (Linux), to read its CPU time from /proc/PID/task/TID/stat. */
  tid: number | null;
}

/** The totals (sums; maxQueued is the largest), and each thread's own. */
export interface ThreadedEchoStats extends EchoStats {
  threads: ThreadStats[];
}

export function defaultBalance(): Balance {
  return constants.SO_REUSEPORT !== undefined ? 'reuseport' : 'exclusive';
}

/** The warning for a shared listener on a mechanism without EPOLLEXCLUSIVE, or null. */
export function herdWarning(mechanism: string, balance: Balance, threads: number): string | null {
  if (balance !== 'exclusive' || mechanism === 'epoll' || threads < 2) return null;
  return `warning: ${mechanism} has no exclusive registration: all ${threads} threads wake for every new connection and ` +
    'all but one find nothing to accept (the thundering herd). See `iomux trace thundering-herd` ' +
    '(docs/readiness-lab.md), or use --balance reuseport.';
}

/** Totals over the threads: counters add up, the largest queue is the largest of any thread. */
export function aggregate(threads: ThreadStats[]): ThreadedEchoStats {
  const total: EchoStats & { handedOff: number } = {
    connections: 0, accepted: 0, refused: 0, closed: 0, errors: 0, bytesIn: 0, bytesOut: 0, maxQueued: 0, wakeups: 0, events: 0, handedOff: 0,
  };
  for (const t of threads) {
    for (const key of Object.keys(total) as (keyof typeof total)[]) {
      total[key] = key === 'maxQueued' ? Math.max(total[key], t[key]) : total[key] + t[key];
    }
  }
  return { ...total, threads };
}

interface ReactorThread {
  index: number;
  worker: Worker;
  waker: Waker;
  tid: number | null;
  /** The latest stats it reported. */
  last: EchoStats | null;
  handedOff: number;
  /** Waiting for its next stats report (or its exit). */
  statsWaiters: (() => void)[];
  gone: boolean;
  exited: Promise<void>;
}

const WORKER_SCRIPT = path.join(__dirname, 'serve-worker.js');

export class ThreadedEchoServer {
  readonly balance: Balance;
  readonly mechanism: string;
  readonly handOff: boolean;
  /** What the configuration warns about (printed by `iomux serve`, also sent to `log`). */
  readonly warnings: string[] = [];
  private readonly log: (line: string) => void;
  private readonly threads: ReactorThread[] = [];
  private readonly wakers: Waker[] = [];
  /** Per thread [command bits, grace ms] (serve-protocol.ts). */
  private readonly control: Int32Array;
  private readonly balancerMemory: SharedArrayBuffer | null;
  /** The listening descriptor every thread shares ('exclusive'), owned by this (main) thread. */
  private sharedFd = -1;
  private boundAddress: SocketAddress | null = null;
  private stoppedAccepting = 0;
  private stopping: Promise<ThreadedEchoStats> | null = null;
  /** Errors that ended a thread (an uncaught exception in it). */
  readonly failures: Error[] = [];

  constructor(private readonly options: ThreadedEchoOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError('threads must be an integer >= 1');
    this.balance = options.balance ?? defaultBalance();
    if (!BALANCES.includes(this.balance)) throw new RangeError(`balance must be one of ${BALANCES.join(', ')}`);
    this.mechanism = options.mechanism ?? availableMechanisms()[0];
    if (this.balance === 'reuseport') {
      if (constants.SO_REUSEPORT === undefined) throw new RangeError('balance reuseport needs SO_REUSEPORT, which this platform lacks: use exclusive');
      if (options.unixPath !== undefined) throw new RangeError('balance reuseport is for TCP: a Unix socket path cannot be bound twice; use exclusive');
    }
    this.handOff = this.balance === 'exclusive' && options.handOff !== false && options.threads > 1;
    this.control = new Int32Array(new SharedArrayBuffer(8 * options.threads));
    this.balancerMemory = this.handOff ? ConnectionBalancer.allocate(options.threads) : null;
    this.log = options.log ?? (() => undefined);
    const warning = herdWarning(this.mechanism, this.balance, options.threads);
    if (warning !== null) {
      this.warnings.push(warning);
      this.log(warning);
    }
  }

  get address(): SocketAddress | null {
    return this.boundAddress;
  }

  /** The kernel thread ids of the reactor threads, in thread order (null where unknown). */
  get threadIds(): (number | null)[] {
    return this.threads.map((t) => t.tid);
  }

  /** Starts the threads; resolves with the bound address once every one of them accepts. */
  async listen(): Promise<SocketAddress> {
    if (this.threads.length > 0) throw new Error('This server is already listening');
    const { threads } = this.options;
    for (let i = 0; i < threads; i++) this.wakers.push(new Waker());
    try {
      if (this.balance === 'exclusive') {
        this.openSharedListener();
        await Promise.all(Array.from({ length: threads }, (_, i) => this.startThread(i)));
      } else {
        // Port 0: the first thread picks the port, the others join it.
        const first = await this.startThread(0);
        await Promise.all(Array.from({ length: threads - 1 }, (_, i) => this.startThread(i + 1, first.port)));
      }
    } catch (err) {
      await this.shutdown(0).catch(() => undefined);
      throw err;
    }
    return this.boundAddress!;
  }

  /** Each thread's stats now, and the totals. */
  async stats(): Promise<ThreadedEchoStats> {
    await Promise.all(this.threads.map((t) => new Promise<void>((resolve) => {
      if (t.gone) return resolve();
      t.statsWaiters.push(resolve);
      this.command(t, COMMAND_STATS);
    })));
    return this.collect();
  }

  /**
   * Stops every thread gracefully: no new connections; queues flush, connections close the lingering
   * way, for at most `graceMs` (then they are closed). Resolves once every thread has finished, with
   * the final stats (a thread that failed is in `failures`). Idempotent.
   */
  shutdown(graceMs = 5000): Promise<ThreadedEchoStats> {
    this.stopping ??= (async () => {
      for (const t of this.threads) {
        Atomics.store(this.control, 2 * t.index + 1, graceMs);
        this.command(t, COMMAND_STOP);
      }
      await Promise.all(this.threads.map((t) => t.exited));
      // Every thread is gone: nobody can wake another any more.
      for (const waker of this.wakers) waker.close();
      this.closeSharedListener();
      return this.collect();
    })();
    return this.stopping;
  }

  private collect(): ThreadedEchoStats {
    return aggregate(this.threads.map((t) => ({ ...(t.last ?? emptyStats()), thread: t.index + 1, tid: t.tid, handedOff: t.handedOff })));
  }

  /** Sets command bits, then wakes the thread (its handler takes them all at once). */
  private command(t: ReactorThread, bits: number): void {
    if (t.gone) return;
    postCommand(this.control, t.index, bits);
    t.waker.wake();
  }

  private openSharedListener(): void {
    const endpoint: Endpoint = this.options.unixPath !== undefined
      ? { path: this.options.unixPath }
      : { host: this.options.host, port: this.options.port };
    const fd = streamSocket(endpoint);
    try {
      if (!isUnix(endpoint) && binding.platform !== 'win32') binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_REUSEADDR, true);
      bindTo(fd, endpoint);
      binding.listen(fd, this.options.backlog ?? 511);
    } catch (err) {
      binding.close(fd);
      throw err;
    }
    this.sharedFd = fd;
  }

  /** Once no thread watches it any more (or none ever will): close it, and remove a Unix path. */
  private closeSharedListener(): void {
    if (this.sharedFd < 0) return;
    binding.close(this.sharedFd);
    this.sharedFd = -1;
    if (this.options.unixPath !== undefined) fs.rmSync(this.options.unixPath, { force: true });
  }

  private startThread(index: number, port?: number): Promise<SocketAddress> {
    const { threads: _threads, balance: _balance, log: _log, ...echo } = this.options;
    const options: ServeWorkerData['options'] = this.balance === 'exclusive'
      ? { ...echo, sharedFd: this.sharedFd, exclusive: this.mechanism === 'epoll' }
      : { ...echo, port: port ?? echo.port, reusePort: true };
    const waker = this.wakers[index];
    const data: ServeWorkerData = {
      options, stopFd: waker.readFd, graceMs: 5000,
      thread: {
        index, count: this.options.threads, control: this.control.buffer as SharedArrayBuffer,
        wakeFds: this.wakers.map((w) => w.writeFd), balancer: this.balancerMemory,
      },
    };
    const worker = new Worker(WORKER_SCRIPT, { workerData: data });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const t: ReactorThread = { index, worker, waker, tid: null, last: null, handedOff: 0, statsWaiters: [], gone: false, exited };
    this.threads.push(t);
    void exited.then(() => {
      t.gone = true;
      release(t); // A thread that is gone answers no more.
    });
    return new Promise<SocketAddress>((resolve, reject) => {
      worker.on('message', (message: ServeWorkerMessage) => {
        if (message.type === 'listening') {
          t.tid = message.tid;
          this.boundAddress ??= message.address as SocketAddress;
          resolve(message.address as SocketAddress);
        } else if (message.type === 'log') {
          this.log(`thread ${index + 1}: ${message.line}`);
        } else if (message.type === 'stopped-accepting') {
          if (++this.stoppedAccepting === this.threads.length) this.closeSharedListener();
        } else if (message.type === 'stats') {
          t.last = message.stats;
          t.handedOff = message.handedOff ?? 0;
          release(t);
        }
      });
      worker.on('error', (err) => {
        this.failures.push(err);
        this.log(`thread ${index + 1}: ${err.message}`);
        reject(err);
      });
      void exited.then(() => reject(new Error(`reactor thread ${index + 1} exited before listening`)));
    });
  }

}

function release(t: ReactorThread): void {
  for (const resolve of t.statsWaiters.splice(0)) resolve();
}

function emptyStats(): EchoStats {
  return { connections: 0, accepted: 0, refused: 0, closed: 0, errors: 0, bytesIn: 0, bytesOut: 0, maxQueued: 0, wakeups: 0, events: 0 };
}
