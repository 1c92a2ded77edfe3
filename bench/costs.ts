/**
 * "Threads or a multiplexer?" in numbers: what a connection costs a ThreadingServer (a worker
 * thread per connection) next to what it costs a reactor (a Connection on one thread).
 *
 * - start-up: new Worker() until the handler module is loaded, one worker at a time;
 * - connect → first echo: a connection that needs a new worker (the pool grows), one given to an
 *   idle pooled worker, and one on the reactor — each measured from a blocking client here;
 * - memory: the server process's RSS (VmRSS) with N connections held open, less before, per connection.
 *
 * The servers run in bench/cost-probe.ts, a process of their own, so their memory is read alone.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { constants } from '../lib/native';
import { Socket } from '../lib/socket';
import { spread, Spread } from './stats';

export interface CostOptions {
  /** Connections held open on the reactor for its memory per connection. */
  reactorConnections: number;
  /** Connections held open on the ThreadingServer (one worker each). */
  threadConnections: number;
  /** Sequential connections timed on the reactor and on a warm worker. */
  samples: number;
  /** Workers started one after another for the start-up time. */
  startups: number;
}

export interface CostResult {
  options: CostOptions;
  /** ms, new Worker() → handler loaded. */
  workerStartupMs: Spread;
  /** ms, new Worker() → first message, for a worker that loads nothing (Node's own part). */
  emptyWorkerStartupMs: Spread;
  /** ms, connect → first echo when the pool has to start a worker. */
  coldConnectMs: Spread;
  /** µs, connect → first echo on an idle pooled worker. */
  warmConnectUs: Spread;
  /** µs, connect → first echo on the reactor. */
  reactorConnectUs: Spread;
  /** RSS growth per held connection, in bytes. */
  workerBytesPerConnection: number;
  reactorBytesPerConnection: number;
  notes: string[];
}

const PROBE = path.join(__dirname, 'cost-probe.js');

interface Probe {
  child: ChildProcess;
  port: number;
  /** Resolves once the probe has printed `line`. */
  printed(line: string): Promise<void>;
  stop(): Promise<void>;
}

function startProbe(args: string[]): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROBE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const waiters: { line: string; resolve: () => void }[] = [];
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const w of [...waiters]) {
        if (out.split('\n').includes(w.line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
      const m = /^port (\d+)$/m.exec(out);
      if (m) resolve({
        child, port: Number(m[1]),
        printed: (line) => new Promise((done) => {
          if (out.split('\n').includes(line)) done();
          else waiters.push({ line, resolve: done });
        }),
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.once('exit', (code) => reject(new Error(`cost-probe ${args.join(' ')} exited (${code}) before listening: ${out}`)));
  });
}

function rssBytes(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? NaN) * 1024;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects, sends one byte and waits for it back; returns the socket (open) and the time it took in ms. */
function echoOnce(port: number): { socket: Socket; ms: number } {
  const started = performance.now();
  const socket = new Socket(constants.AF_INET, constants.SOCK_STREAM);
  socket.connect('127.0.0.1', port);
  socket.sendAll('x');
  const reply = socket.recv(1);
  if (reply.length !== 1) throw new Error('the server closed the connection instead of echoing');
  return { socket, ms: performance.now() - started };
}

/** Sequential connections, each closed (and its end seen) before the next. */
function timeSequential(port: number, samples: number): number[] {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const { socket, ms } = echoOnce(port);
    times.push(ms);
    socket.shutdown('write');
    socket.recv(1); // the server's end: its handler is done before the next connection
    socket.close();
  }
  return times;
}

/** RSS growth per connection with `count` connections held open (each echoed once). */
async function memoryPerConnection(probe: Probe, count: number, onEach?: (ms: number) => void): Promise<number> {
  await pause(200);
  const before = rssBytes(probe.child.pid!);
  const held: Socket[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const { socket, ms } = echoOnce(probe.port);
      held.push(socket);
      onEach?.(ms);
    }
    await pause(200);
    return (rssBytes(probe.child.pid!) - before) / count;
  } finally {
    for (const socket of held) socket.close();
  }
}

export function costCellCount(): number {
  return 4;
}

export async function runCosts(options: CostOptions, onCell: (label: string) => void = () => {}): Promise<CostResult> {
  onCell('worker start-up');
  const startup = await new Promise<{ pool: number[]; empty: number[] }>((resolve, reject) => {
    const child = spawn(process.execPath, [PROBE, 'startup', String(options.startups)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { pool: number[]; empty: number[] }) : reject(new Error(`cost-probe startup exited ${code}`))));
  });

  onCell('ThreadingServer: a worker per held connection');
  const cold: number[] = [];
  const growing = await startProbe(['threading', '0', String(options.threadConnections), '600000', '0']);
  let workerBytes: number;
  try {
    workerBytes = await memoryPerConnection(growing, options.threadConnections, (ms) => cold.push(ms));
  } finally {
    await growing.stop();
  }

  onCell('ThreadingServer: an idle pooled worker');
  const warmProbe = await startProbe(['threading', '1', '1', '600000', '64']);
  let warm: number[];
  try {
    await warmProbe.printed('ready 1');
    warm = timeSequential(warmProbe.port, options.samples);
  } finally {
    await warmProbe.stop();
  }

  onCell('reactor connections');
  const reactor = await startProbe(['reactor']);
  let reactorTimes: number[];
  let reactorBytes: number;
  try {
    reactorTimes = timeSequential(reactor.port, options.samples);
    reactorBytes = await memoryPerConnection(reactor, options.reactorConnections);
  } finally {
    await reactor.stop();
  }
  return {
    options,
    workerStartupMs: spread(startup.pool),
    emptyWorkerStartupMs: spread(startup.empty),
    coldConnectMs: spread(cold),
    warmConnectUs: spread(warm.map((ms) => ms * 1000)),
    reactorConnectUs: spread(reactorTimes.map((ms) => ms * 1000)),
    workerBytesPerConnection: workerBytes,
    reactorBytesPerConnection: reactorBytes,
    notes: [
      `start-up: ${options.startups} pool workers started one after another (new Worker() until its handler module is loaded), and as many empty workers (Node's own part)`,
      `a connection that needs a new worker: ${options.threadConnections} connections held open at once, so each one grows the pool`,
      `an idle pooled worker and the reactor: ${options.samples} connections one after another, each closed before the next`,
      `memory: the server process's VmRSS with the connections held open, less before, per connection (${options.threadConnections} on threads, ${options.reactorConnections} on the reactor)`,
    ],
  };
}
