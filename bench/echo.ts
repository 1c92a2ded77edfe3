/**
 * Echo throughput: one closed-loop load generator (bench/loadgen.c) driven against each server in
 * turn — iomux's echo server on every mechanism and write strategy, Node's idiomatic `net` server,
 * the peers a Python reader would pick (the tutorial's select server, asyncio), a small C epoll
 * server (the readiness ceiling) and a C io_uring server (completion: multishot recv on provided
 * buffers) — each a separate process, pinned to its own core when `taskset` exists. Reports
 * messages/s, p50/p99 latency, the server's CPU time per message (from /proc/PID/stat), the load
 * generator's own CPU share (is it the bottleneck?), ratios to the C ceiling and to Node's `net`, and
 * system calls per message from a short extra run (bench/syscalls.ts: perf, or strace).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { constants } from '../lib/native';
import { ioUringUnavailable } from '../lib/selectors/io-uring';
import { onPath } from './machine';
import { programPath, runJsonLines } from './programs';
import { groupBy, ratio, spread, Spread } from './stats';
import { countingTool, startCounting, SyscallCounter, SyscallTool, syscallTool } from './syscalls';

/**
 * iomux servers run `iomux serve`'s default write strategy (direct); "-queued" is the seed's strict
 * separation. They run blocking (reactor.run() on a worker thread) unless "-attached": inside Node's
 * event loop, on epoll by Node's own loop watching the epoll descriptor (uv-poll), or with
 * "-attached-thread" by the helper thread (wait-thread). "iomux-io_uring" is the echo server on
 * IoUringSelector (multishot polls, level re-checks submitted with the wait); "-et" its raw edges.
 */
export const ECHO_SERVERS = [
  'c', 'c-uring', 'node', 'py-select', 'py-asyncio', 'iomux-select', 'iomux-poll', 'iomux-epoll', 'iomux-epoll-attached', 'iomux-epoll-et', 'iomux-epoll-queued',
  'iomux-epoll-attached-thread', 'iomux-poll-queued', 'iomux-epoll-et-queued', 'iomux-epoll-queued-unbatched',
  'iomux-io_uring', 'iomux-io_uring-et', 'iomux-io_uring-attached',
] as const;
export type EchoServerName = (typeof ECHO_SERVERS)[number];
/**
 * The default suite's servers: the ceilings (readiness and completion), the peers people would pick
 * instead, and iomux on epoll (blocking and attached) and io_uring. select and poll join in --full (the
 * scaling part shows what they cost); the edge-triggered and queued variants run in the interest part
 * (bench/interest.ts), side by side with iomux-epoll.
 */
export const DEFAULT_ECHO_SERVERS: EchoServerName[] = [
  'c', 'c-uring', 'node', 'py-select', 'py-asyncio', 'iomux-epoll', 'iomux-epoll-attached', 'iomux-io_uring',
];

export interface EchoOptions {
  servers: EchoServerName[];
  connections: number[];
  sizes: number[];
  depth: number;
  repeat: number;
  warmupMs: number;
  durationMs: number;
  /** Pin server and load generator to different cores (needs taskset and two cores). */
  pin: boolean;
  /** Count system calls per message (perf, or strace) on a short extra run per server (C = syscallConnections). */
  syscalls: boolean;
  syscallConnections: number;
  syscallSize: number;
  syscallDurationMs: number;
  /** What counts them: perf where its tracepoints work, else strace (unless one is asked for). */
  syscallTool?: SyscallTool;
}

/** What bench/loadgen.c prints. */
export interface LoadgenReport {
  connections: number;
  depth: number;
  size: number;
  warmupMs: number;
  durationMs: number;
  connectMs: number;
  windowNs: number;
  messages: number;
  messagesTotal: number;
  bytesVerified: number;
  messagesPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number; mean: number; max: number };
  loadgenCpu: { userNs: number; sysNs: number; share: number };
  serverCpuNs: number;
  serverCpuNsPerMessage: number;
}

export interface EchoSample {
  server: EchoServerName;
  connections: number;
  size: number;
  repetition: number;
  report: LoadgenReport;
  /** The server's own "stats {...}" line at exit, when it printed one. */
  serverStats: Record<string, number> | null;
}

export interface EchoSkip {
  server: EchoServerName;
  connections: number;
  size: number;
  reason: string;
}

export interface EchoRow {
  server: EchoServerName;
  connections: number;
  size: number;
  messagesPerSec: Spread;
  p50Us: Spread;
  p99Us: Spread;
  serverCpuNsPerMessage: Spread;
  /** The load generator's CPU time / wall time in the window (median); near 1 means it may be the bottleneck. */
  loadgenCpuShare: number;
  /**
   * Who limited the rate, from the two CPU shares (CAPPED_SHARE and above = saturated): 'server';
   * 'load generator' or 'both' — the rate is capped by the client, not the server's own limit; or
   * 'latency' — neither side saturated, the closed loop waited on wake-ups and the network.
   */
  boundBy: BoundBy;
  /** The server's CPU time / wall time in the window (median): below 1 with the load generator also below 1 means latency-bound. */
  serverCpuShare: number | null;
  bytesVerified: number;
  /**
   * Readiness events the server dispatched per echoed message (its own stats, whole run; iomux only):
   * 1 when a reply goes out at once, 2 when every reply waits for a writable event.
   */
  eventsPerMessage: number | null;
  /** Median messages/s over the C ceiling's. */
  toCeiling: number | null;
  /** Median messages/s over Node's net. */
  toNode: number | null;
  /** Median server CPU per message over Node's net. */
  cpuToNode: number | null;
}

export type BoundBy = 'server' | 'load generator' | 'both' | 'latency';

/** A CPU share at or above this counts as saturated (its core was the limit). */
export const CAPPED_SHARE = 0.9;

export function boundBy(serverShare: number | null, loadgenShare: number): BoundBy {
  const server = serverShare !== null && serverShare >= CAPPED_SHARE;
  const loadgen = loadgenShare >= CAPPED_SHARE;
  return server && loadgen ? 'both' : loadgen ? 'load generator' : server ? 'server' : 'latency';
}

/** The rate of this cell is the load generator's limit (it saturated its core), not the server's. */
export function isCapped(row: Pick<EchoRow, 'boundBy'>): boolean {
  return row.boundBy === 'load generator' || row.boundBy === 'both';
}

export interface SyscallCount {
  server: EchoServerName;
  connections: number;
  size: number;
  messages: number;
  /** Calls per echoed message, by system call name (the whole server process). */
  perMessage: Record<string, number>;
  totalPerMessage: number;
  /** What counted them (absent in runs saved before perf was used: strace). */
  tool?: SyscallTool;
}

export interface EchoResult {
  options: EchoOptions;
  notes: string[];
  samples: EchoSample[];
  skips: EchoSkip[];
  rows: EchoRow[];
  syscalls: SyscallCount[];
  /** Why syscall counts are missing, if they are. */
  syscallsSkipped: string | null;
}

const packageRoot = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 5000;
/** Descriptors a server holds besides its connections (stdio, listener, epoll, wakers, Node's own). */
const SELECT_HEADROOM = 40;

export interface Command {
  file: string;
  args: string[];
}

/** The Python peers run on the system Python (Debian's), not whichever python3 comes first on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
const PYTHON_SERVERS: Partial<Record<EchoServerName, string>> = { 'py-select': 'py-select-echo.py', 'py-asyncio': 'py-asyncio-echo.py' };

export function serverCommand(name: EchoServerName): Command {
  const listen = ['--host', '127.0.0.1', '--port', '0', '--backlog', '4096'];
  if (name === 'c') return { file: programPath('bench-echo-server'), args: listen };
  if (name === 'c-uring') return { file: programPath('bench-echo-uring'), args: listen };
  const script = PYTHON_SERVERS[name];
  if (script) return { file: SYSTEM_PYTHON, args: [path.join(packageRoot, 'bench', script), ...listen] };
  if (name === 'node') return { file: process.execPath, args: [path.join(__dirname, 'node-echo-server.js'), '--host', '127.0.0.1', '--port', '0'] };
  const [, mechanism, ...variant] = name.split('-');
  const args = [path.join(packageRoot, 'dist', 'tools', 'cli.js'), 'serve', '--mechanism', mechanism, ...listen, '--quiet', '--grace', '0'];
  if (variant.includes('et')) args.push('--edge');
  args.push('--write', variant.includes('queued') ? 'queued' : 'direct');
  if (variant.includes('attached')) args.push('--mode', 'attached');
  if (variant.includes('thread')) args.push('--via', 'wait-thread');
  if (variant.includes('unbatched')) args.push('--no-batch');
  return { file: process.execPath, args };
}

let cUringUnfit: string | null | undefined;

/**
 * Why the C io_uring server cannot run here — no io_uring, its source does not build (old kernel
 * headers), or the kernel lacks multishot recv into provided buffers (its --check) — or null. Decided once.
 */
function cUringUnavailable(): string | null {
  if (cUringUnfit === undefined) {
    try {
      execFileSync(programPath('bench-echo-uring'), ['--check'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
      cUringUnfit = null;
    } catch (err) {
      const e = err as Error & { stderr?: Buffer };
      cUringUnfit = e.stderr?.toString().trim() || e.message;
    }
  }
  return cUringUnfit;
}

/** Why a server cannot take a cell, or null. */
function unfit(server: EchoServerName, connections: number): string | null {
  if (server.startsWith('iomux-io_uring') && ioUringUnavailable() !== null) return `io_uring: ${ioUringUnavailable()!.message}`;
  if (server === 'c-uring') return cUringUnavailable();
  if (PYTHON_SERVERS[server] && !fs.existsSync(SYSTEM_PYTHON)) {
    return `the system Python (${SYSTEM_PYTHON}) is not installed, so py-select and py-asyncio do not run (Debian: apt-get install python3)`;
  }
  if ((server === 'iomux-select' || server === 'py-select') && connections + SELECT_HEADROOM > constants.FD_SETSIZE) {
    return `select cannot watch ${connections} connections: descriptors must stay below FD_SETSIZE (${constants.FD_SETSIZE})`;
  }
  return null;
}

export function echoCellCount(o: EchoOptions): number {
  let cells = 0;
  for (const server of o.servers) for (const c of o.connections) if (!unfit(server, c)) cells += o.sizes.length;
  return cells * o.repeat + (o.syscalls ? o.servers.length : 0);
}

/** Cores for (server, load generator) when pinning is possible. */
export function pinning(pin: boolean): [string, string] | null {
  return pin && onPath('taskset') && os.cpus().length >= 2 ? ['0', '1'] : null;
}

export function withPin(command: Command, core: string | undefined): Command {
  return core === undefined ? command : { file: 'taskset', args: ['-c', core, command.file, ...command.args] };
}

export async function runLoadgen(command: Command): Promise<LoadgenReport> {
  const [report] = await runJsonLines<LoadgenReport>(command.file, command.args);
  if (!report) throw new Error('the load generator printed no report');
  return report;
}

export async function runEcho(options: EchoOptions, onCell: (label: string) => void = () => {}): Promise<EchoResult> {
  const samples: EchoSample[] = [];
  const skips: EchoSkip[] = [];
  const cores = pinning(options.pin);
  const loadgen = programPath('bench-loadgen');
  for (let repetition = 0; repetition < options.repeat; repetition++) {
    for (const connections of options.connections) {
      for (const size of options.sizes) {
        for (const server of options.servers) {
          const reason = unfit(server, connections);
          if (reason) {
            if (repetition === 0) skips.push({ server, connections, size, reason });
            continue;
          }
          onCell(`${server} C=${connections} S=${size}`);
          const running = await startServer(withPin(serverCommand(server), cores?.[0]));
          try {
            const report = await runLoadgen(withPin({ file: loadgen, args: [
              '--port', String(running.port), '--connections', String(connections), '--depth', String(options.depth),
              '--size', String(size), '--warmup-ms', String(options.warmupMs), '--duration-ms', String(options.durationMs),
              '--server-pid', String(running.child.pid),
            ] }, cores?.[1]));
            samples.push({ server, connections, size, repetition, report, serverStats: await running.stop() });
          } finally {
            await running.stop();
          }
        }
      }
    }
  }
  let syscalls: SyscallCount[] = [];
  let syscallsSkipped: string | null = null;
  if (!options.syscalls) {
    syscallsSkipped = 'not asked for (--no-syscalls)';
  } else {
    const counting = syscallTool(options.syscallTool); // probes perf: only when counting
    if ('skipped' in counting) syscallsSkipped = counting.skipped;
    else syscalls = await countSyscalls(options, counting.tool, cores, loadgen, onCell);
  }
  const notes = [
    `closed loop: each connection keeps ${options.depth} message(s) in flight; every echoed byte is compared with what was sent`,
    cores ? `server pinned to core ${cores[0]}, load generator to core ${cores[1]} (taskset)` : 'no pinning (taskset missing, one core, or --no-pin)',
    'server CPU per message = (utime + stime of the whole server process over the timed window) / messages; /proc ticks are 1/CLK_TCK s',
    'the iomux servers run `iomux serve`: blocking (reactor.run() on a worker thread) or "-attached" (inside Node\'s event loop; on epoll Node\'s loop watches the epoll descriptor, "-attached-thread" a helper thread waits); "direct" sends at once and queues only the rest, "queued" always waits for a writable event',
    `bound by: a side whose CPU share reached ${CAPPED_SHARE * 100} % saturated its core; "load generator" or "both" marks the rate as capped by the client (msgs/s and its ratios are then the load generator's limit, CPU per message is still the server's own)`,
    countingTool(syscalls) === 'strace'
      ? 'system calls per message come from a separate, shorter run under strace -c -f (perf\'s syscall tracepoints were not available): tracing slows the server, so batching (calls per wait) can differ from the timed runs'
      : 'system calls per message come from a separate, shorter run counted by perf stat\'s syscall tracepoints (raw_syscalls:sys_enter for the total; in the kernel, without stopping the server), every thread the server had when counting began',
  ];
  return { options, notes, samples, skips, rows: summarize(samples), syscalls, syscallsSkipped };
}

export interface RunningServer {
  child: ChildProcess;
  port: number;
  /** Everything it printed on stdout so far. */
  output: () => string;
  /** Stops the server (SIGTERM, then SIGKILL) and resolves with its stats line, if any. Idempotent. */
  stop(): Promise<Record<string, number> | null>;
}

export function startServer(command: Command): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stopping: Promise<Record<string, number> | null> | null = null;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const stop = () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
        const line = stdout.split('\n').find((l) => l.startsWith('stats '));
        try {
          return line ? (JSON.parse(line.slice(6)) as Record<string, number>) : null;
        } catch {
          return null;
        }
      })();
      return stopping;
    };
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${command.args.join(' ')} did not print "listening on" within ${START_TIMEOUT_MS} ms: ${stderr.trim()}`));
    }, START_TIMEOUT_MS);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on .*:(\d+)\s*$/m.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), stop, output: () => stdout });
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server ${command.file} exited (${code ?? signal}) before listening: ${stderr.trim()}`));
    });
  });
}

async function countSyscalls(options: EchoOptions, tool: SyscallTool, cores: [string, string] | null, loadgen: string,
  onCell: (label: string) => void): Promise<SyscallCount[]> {
  const counts: SyscallCount[] = [];
  const c = options.syscallConnections;
  const size = options.syscallSize;
  for (const server of options.servers) {
    onCell(`${server}: system calls (${tool})`);
    if (unfit(server, c)) continue;
    const running = await startServer(withPin(serverCommand(server), cores?.[0]));
    let counter: SyscallCounter | null = null;
    try {
      counter = await startCounting(running.child.pid!, tool);
      const report = await runLoadgen(withPin({ file: loadgen, args: [
        '--port', String(running.port), '--connections', String(c), '--depth', String(options.depth), '--size', String(size),
        '--warmup-ms', '0', '--duration-ms', String(options.syscallDurationMs),
      ] }, cores?.[1]));
      const { calls, total } = await counter.stop();
      if (report.messagesTotal === 0) throw new Error(`${server} echoed no message while its system calls were counted (${options.syscallDurationMs} ms)`);
      const perMessage: Record<string, number> = {};
      for (const [name, n] of Object.entries(calls)) perMessage[name] = n / report.messagesTotal;
      counts.push({ server, connections: c, size, messages: report.messagesTotal, perMessage, totalPerMessage: total / report.messagesTotal, tool });
    } finally {
      counter?.kill();
      await running.stop();
    }
  }
  return counts;
}

function eventsPerMessage(group: EchoSample[]): number | null {
  const values = group.flatMap((s) => {
    const stats = s.serverStats;
    if (!stats || typeof stats.events !== 'number' || !(stats.bytesIn > 0)) return [];
    return [stats.events / (stats.bytesIn / s.size)];
  });
  return values.length > 0 ? spread(values).median : null;
}

function summarize(samples: EchoSample[]): EchoRow[] {
  const groups = groupBy(samples, (s) => `${s.server}|${s.connections}|${s.size}`);
  const rows: EchoRow[] = [];
  for (const group of groups.values()) {
    const { server, connections, size } = group[0];
    const reports = group.map((s) => s.report);
    const loadgenCpuShare = spread(reports.map((r) => r.loadgenCpu.share)).median;
    const serverCpuShare = reports.some((r) => r.serverCpuNs >= 0)
      ? spread(reports.filter((r) => r.serverCpuNs >= 0).map((r) => r.serverCpuNs / r.windowNs)).median : null;
    rows.push({
      server, connections, size,
      messagesPerSec: spread(reports.map((r) => r.messagesPerSec)),
      p50Us: spread(reports.map((r) => r.latencyUs.p50)),
      p99Us: spread(reports.map((r) => r.latencyUs.p99)),
      serverCpuNsPerMessage: spread(reports.map((r) => r.serverCpuNsPerMessage).filter((x) => x >= 0)),
      loadgenCpuShare,
      serverCpuShare,
      boundBy: boundBy(serverCpuShare, loadgenCpuShare),
      bytesVerified: reports.reduce((sum, r) => sum + r.bytesVerified, 0),
      eventsPerMessage: eventsPerMessage(group),
      toCeiling: null, toNode: null, cpuToNode: null,
    });
  }
  const find = (server: EchoServerName, row: EchoRow) =>
    rows.find((r) => r.server === server && r.connections === row.connections && r.size === row.size);
  for (const row of rows) {
    const ceiling = find('c', row);
    const node = find('node', row);
    row.toCeiling = ratio(row.messagesPerSec.median, ceiling?.messagesPerSec.median);
    row.toNode = ratio(row.messagesPerSec.median, node?.messagesPerSec.median);
    row.cpuToNode = ratio(row.serverCpuNsPerMessage.median, node?.serverCpuNsPerMessage.median);
  }
  const order = (s: EchoServerName) => ECHO_SERVERS.indexOf(s);
  return rows.sort((x, y) => x.size - y.size || x.connections - y.connections || order(x.server) - order(y.server));
}
