/** `iomux serve`: the multiplexed echo server on a chosen mechanism. */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EchoServer, EchoServerOptions, EchoStats } from '../../lib/echo/server';
import type { ServeWorkerData, ServeWorkerMessage } from '../../lib/echo/serve-protocol';
import { Balance, BALANCES, defaultBalance, ThreadedEchoServer } from '../../lib/echo/threaded-server';
import type { AttachedVia } from '../../lib/attachment';
import { SocketAddress } from '../../lib/native';
import { availableMechanisms, MechanismName } from '../../lib/selectors/default';
import { Waker } from '../../lib/waker';

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function describe(address: SocketAddress | { family: string; address: string; port: number }): string {
  if (address.family === 'unix') return `unix:${address.address}`;
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

const quietLog = (): void => undefined;

function printStats(stats: EchoStats): void {
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
}

interface ServeFlags {
  mechanism: MechanismName;
  edge?: boolean;
  batch: boolean;
  host: string;
  port: number;
  unix?: string;
  backlog: number;
  write: 'queued' | 'direct';
  greeting?: string;
  suffix?: string;
  highWater: number;
  lowWater?: number;
  mode: 'blocking' | 'attached';
  via?: AttachedVia;
  grace: number;
  quiet?: boolean;
  threads: number;
  balance?: Balance;
  handOff: boolean;
}

export function register(program: Command): void {
  const mechanisms = availableMechanisms();
  program
    .command('serve')
    .description('Run the read/write-separated multiplexed echo server (RFC 862 by default)')
    .addOption(new Option('-m, --mechanism <name>', 'readiness mechanism').choices(mechanisms).default(mechanisms[0]))
    .option('--edge', 'edge-triggered epoll (EPOLLET), or io_uring\'s raw multishot edges: accept/read/write until EAGAIN')
    .option('--no-batch', 'epoll, level-triggered: one EPOLL_CTL_MOD per interest change, at once (default: applied just before the next wait)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-p, --port <port>', 'TCP port (0 picks a free one)', integer('port', 0, 65535), 0)
    .option('--unix <path>', 'listen on a Unix socket path instead of TCP')
    .option('--backlog <n>', 'listen backlog', integer('backlog', 1, 65535), 511)
    .addOption(new Option('--write <strategy>', 'direct: send at once, queue only what would block; queued: the seed\'s strict separation, every reply waits for a writable event')
      .choices(['direct', 'queued']).default('direct'))
    .option('--greeting <text>', 'sent to each client on connect')
    .option('--suffix <text>', 'appended to every reply (the seed used "好好" or "hello")')
    .option('--high-water <bytes>', 'stop reading a connection whose queue reaches this', integer('high-water', 1, 2 ** 31), 1024 * 1024)
    .option('--low-water <bytes>', 'resume reading below this (default: high-water / 4)', integer('low-water', 0, 2 ** 31))
    .addOption(new Option('--mode <mode>', 'blocking: run() on a worker thread; attached: inside Node\'s event loop')
      .choices(['blocking', 'attached']).default('blocking'))
    .addOption(new Option('--via <route>', 'attached mode: uv-poll (Node\'s loop watches the epoll descriptor; epoll\'s default) or wait-thread (a helper thread waits)')
      .choices(['uv-poll', 'wait-thread']))
    .option('--grace <ms>', 'on SIGINT/SIGTERM, how long queues may flush before closing', integer('grace', 0, 600000), 5000)
    .option('-q, --quiet', 'do not log refusals and errors')
    .option('-t, --threads <n>', 'reactor threads, each with its own echo server on the same port (blocking mode)', integer('threads', 1, 1024), 1)
    .addOption(new Option('--balance <mode>', `how connections reach the threads: reuseport (a SO_REUSEPORT listener per thread; the kernel spreads them) or exclusive (one shared listener, EPOLLEXCLUSIVE on epoll); default ${defaultBalance()}`)
      .choices([...BALANCES]))
    .option('--no-hand-off', 'exclusive: leave the spread of connections to the kernel\'s wake-ups (by default the accepting thread hands each connection to the thread with the fewest)')
    .addHelpText('after', `
Prints "listening on HOST:PORT" once it accepts connections. SIGINT/SIGTERM stop accepting,
flush what is queued, close, and print "stats {...}" (JSON).

With --threads N (N > 1, or any N with --balance) N reactor threads serve the port. It first prints
"threads {...}" (count, balance, mechanism, kernel thread ids), and the stats line holds the totals
and "threads": each thread's own. select and poll cannot share a listener exclusively: with
--balance exclusive every thread wakes for every connection (a warning says so).

Examples:
  iomux serve --mechanism epoll --edge --port 0
  iomux serve --mechanism select --suffix ' hello' --greeting 'Welcome!' --port 9000
  iomux serve --threads 2 --balance reuseport --port 9000`)
    .action((flags: ServeFlags) => {
      if (flags.edge && flags.mechanism !== 'epoll' && flags.mechanism !== 'io_uring') throw new InvalidArgumentError('--edge needs --mechanism epoll or io_uring');
      if (flags.via !== undefined && flags.mode !== 'attached') throw new InvalidArgumentError('--via needs --mode attached');
      const threaded = flags.threads > 1 || flags.balance !== undefined;
      if (threaded && flags.mode === 'attached') throw new InvalidArgumentError('--threads and --balance run blocking reactors on worker threads: not with --mode attached');
      const options: Omit<EchoServerOptions, 'reactor' | 'log'> = {
        mechanism: flags.mechanism,
        edge: flags.edge === true,
        batchInterest: flags.batch,
        host: flags.host,
        port: flags.port,
        unixPath: flags.unix,
        backlog: flags.backlog,
        write: flags.write,
        greeting: flags.greeting,
        suffix: flags.suffix,
        highWater: flags.highWater,
        lowWater: flags.lowWater,
      };
      const log = flags.quiet ? quietLog : (line: string) => process.stderr.write(`${line}\n`);
      if (threaded) return serveThreads(options, flags.threads, flags.balance, flags.handOff, flags.grace, log);
      if (flags.mode === 'attached') serveAttached(options, flags.via, flags.grace, log);
      else serveBlocking(options, flags.grace, log);
    });
}

function serveAttached(options: Omit<EchoServerOptions, 'reactor' | 'log'>, via: AttachedVia | undefined, graceMs: number,
  log: (line: string) => void): void {
  const server = new EchoServer({ ...options, log });
  process.stdout.write(`listening on ${describe(server.listen())}\n`);
  server.reactor.attach({ via });
  const stop = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    // Once, whichever comes first: the last connection closing, or the grace period running out
    // (whose close() closes the last connections, which calls this again).
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(force);
      server.close();
      printStats(server.stats);
    };
    const force = setTimeout(finish, graceMs);
    server.shutdown(finish);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function serveBlocking(options: Omit<EchoServerOptions, 'reactor' | 'log'>, graceMs: number, log: (line: string) => void): void {
  const waker = new Waker();
  const data: ServeWorkerData = { options, stopFd: waker.readFd, graceMs };
  const worker = new Worker(path.join(__dirname, '..', '..', 'lib', 'echo', 'serve-worker.js'), { workerData: data });
  const stop = () => waker.wake();
  worker.on('message', (message: ServeWorkerMessage) => {
    if (message.type === 'listening') process.stdout.write(`listening on ${describe(message.address)}\n`);
    else if (message.type === 'log') log(message.line);
    else if (message.type === 'stats') printStats(message.stats);
  });
  worker.on('error', (err) => {
    process.stderr.write(`iomux serve: ${err.message}\n`);
    process.exitCode = 1;
  });
  worker.on('exit', () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    waker.close();
  });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** N reactor threads on one port; the totals and each thread's stats are printed once, after every thread drained. */
async function serveThreads(options: Omit<EchoServerOptions, 'reactor' | 'log'>, threads: number, balance: Balance | undefined,
  handOff: boolean, graceMs: number, log: (line: string) => void): Promise<void> {
  const server = new ThreadedEchoServer({ ...options, threads, balance, handOff, log });
  // The herd warning is printed even with --quiet: it is about the configuration, not the traffic.
  if (log === quietLog) for (const warning of server.warnings) process.stderr.write(`${warning}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void server.shutdown(graceMs).then((stats) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      printStats(stats);
      if (server.failures.length > 0) process.exitCode = 1;
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const address = await server.listen();
  const info = { count: threads, balance: server.balance, handOff: server.handOff, mechanism: server.mechanism, tids: server.threadIds };
  process.stdout.write(`threads ${JSON.stringify(info)}\n`);
  process.stdout.write(`listening on ${describe(address)}\n`);
}
