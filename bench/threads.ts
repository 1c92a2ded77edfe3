/**
 * Echo across threads: the same closed-loop load (bench/loadgen.c) against servers of 1 and N
 * threads — `iomux serve --threads N` in each balance mode, Node's `cluster` with N workers running
 * the `net` echo, and the C ceiling (bench/echo-server.c) with N SO_REUSEPORT threads — at D = 1.
 *
 * Per cell: msgs/s, the server's CPU per message (all its threads, all its processes), each
 * thread's share of a core over the timed window (from /proc/PID/task/TID/stat, read by the load
 * generator at the window's edges), and how evenly connections and messages spread over the
 * threads (max/min, from the server's own per-thread stats).
 *
 * Pinning: the load generator gets the last core and the server the ones before it (at most N).
 * On two cores that is one core for the server whatever N is: an N-thread server cannot go faster
 * there, so scaling is judged by what does not need spare cores (CPU per message, and 1 → N
 * against the C server's own 1 → N in the same run).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { boundBy, BoundBy, Command, runLoadgen, startServer } from './echo';
import { onPath } from './machine';
import { programPath } from './programs';
import { groupBy, ratio, spread, Spread } from './stats';
import { CostOptions, CostResult, costCellCount, runCosts } from './costs';

export const THREAD_BALANCES = ['reuseport', 'exclusive'] as const;

export interface ThreadsOptions {
  /** Thread (and worker) counts compared; the first is the baseline (1). */
  counts: number[];
  /** Which servers: 'c', 'node-cluster', 'iomux-reuseport', 'iomux-exclusive', 'iomux-exclusive-kernel' (no hand-off). */
  kinds: ThreadsServerKind[];
  connections: number[];
  size: number;
  depth: number;
  repeat: number;
  warmupMs: number;
  durationMs: number;
  pin: boolean;
  /** The cost table (threads vs reactor); null skips it. */
  costs: CostOptions | null;
}

export const THREADS_SERVER_KINDS = ['c', 'node-cluster', 'iomux-reuseport', 'iomux-exclusive', 'iomux-exclusive-kernel'] as const;
export type ThreadsServerKind = (typeof THREADS_SERVER_KINDS)[number];

export interface ThreadsSample {
  server: string;
  kind: ThreadsServerKind;
  threads: number;
  connections: number;
  repetition: number;
  messagesPerSec: number;
  /** Messages echoed over warm-up and window together, and the bytes of them the load generator verified. */
  messagesTotal: number;
  bytesVerified: number;
  serverCpuNsPerMessage: number;
  windowNs: number;
  loadgenCpuShare: number;
  /** The server's CPU time over the window, in cores (can pass 1 with several threads). */
  serverCpuShare: number;
  /** Cores the server may run on (pinned), or its thread count. */
  usableCores: number;
  p50Us: number;
  /** CPU share of each serving thread (C and iomux) or worker process (cluster), then the cluster's primary. */
  taskShares: number[];
  /** Per thread, from the server's stats at exit (whole run): connections and messages. */
  connectionsPerThread: number[];
  messagesPerThread: number[];
}

export interface ThreadsRow {
  server: string;
  kind: ThreadsServerKind;
  threads: number;
  connections: number;
  messagesPerSec: Spread;
  serverCpuNsPerMessage: Spread;
  p50Us: Spread;
  serverCpuShare: number;
  usableCores: number;
  loadgenCpuShare: number;
  boundBy: BoundBy;
  /** Median share of a core per thread (and, for the cluster, its primary last). */
  taskShares: number[];
  taskLabels: string[];
  /** max/min over the threads (median over repetitions); 1 for one thread. */
  connectionSpread: number | null;
  messageSpread: number | null;
  /** The median connections and messages per thread of the last repetition, for the table. */
  connectionsPerThread: number[];
  messagesPerThread: number[];
}

export interface ThreadsResult {
  options: ThreadsOptions;
  notes: string[];
  samples: ThreadsSample[];
  rows: ThreadsRow[];
  costs: CostResult | null;
}

/** Server name as it appears in tables: c-2, node-cluster-2, iomux-2-reuseport, iomux-2-exclusive-kernel. */
export function serverName(kind: ThreadsServerKind, threads: number): string {
  if (kind === 'c') return `c-${threads}`;
  if (kind === 'node-cluster') return `node-cluster-${threads}`;
  return `iomux-${threads}-${kind.slice('iomux-'.length)}`;
}

interface Cell {
  kind: ThreadsServerKind;
  threads: number;
}

/** The cells of one repetition at one C: every kind at every count it makes sense for. */
export function threadCells(o: ThreadsOptions): Cell[] {
  const cells: Cell[] = [];
  for (const kind of o.kinds) {
    for (const threads of o.counts) {
      // A cluster of one worker, and exclusive balance without a second thread to balance against, add nothing.
      if (kind === 'node-cluster' && threads < 2) continue;
      if (kind === 'iomux-exclusive-kernel' && threads < 2) continue;
      cells.push({ kind, threads });
    }
  }
  return cells;
}

export function threadsCellCount(o: ThreadsOptions): number {
  return threadCells(o).length * o.connections.length * o.repeat + (o.costs ? costCellCount() : 0);
}

const packageRoot = path.resolve(__dirname, '..', '..');

function serverCommand(kind: ThreadsServerKind, threads: number): Command {
  const listen = ['--host', '127.0.0.1', '--port', '0', '--backlog', '4096'];
  if (kind === 'c') return { file: programPath('bench-echo-server'), args: [...listen, '--threads', String(threads), '--reuseport'] };
  if (kind === 'node-cluster') {
    return { file: process.execPath, args: [path.join(__dirname, 'node-cluster-echo-server.js'), '--workers', String(threads), '--host', '127.0.0.1', '--port', '0'] };
  }
  const balance = kind === 'iomux-reuseport' ? 'reuseport' : 'exclusive';
  const args = [path.join(packageRoot, 'dist', 'tools', 'cli.js'), 'serve', '--mechanism', 'epoll', ...listen, '--quiet', '--grace', '0',
    '--threads', String(threads), '--balance', balance];
  if (kind === 'iomux-exclusive-kernel') args.push('--no-hand-off');
  return { file: process.execPath, args };
}

/** Cores for (server, load generator): the load generator takes the last one, the server up to `threads` before it. */
function pinning(pin: boolean, threads: number): [string, string] | null {
  const cores = os.cpus().length;
  if (!pin || !onPath('taskset') || cores < 2) return null;
  const serverCores = Math.max(1, Math.min(threads, cores - 1));
  return [serverCores === 1 ? '0' : `0-${serverCores - 1}`, String(cores - 1)];
}

function withPin(command: Command, cores: string | undefined): Command {
  return cores === undefined ? command : { file: 'taskset', args: ['-c', cores, command.file, ...command.args] };
}

/** What to read each thread's CPU time from: "PID/TID" per serving thread, or "PID" per cluster worker (then the primary). */
function tasksOf(kind: ThreadsServerKind, pid: number, output: string): { tasks: string[]; labels: string[] } {
  if (kind === 'node-cluster') {
    const pids = (JSON.parse(/^workers (.*)$/m.exec(output)?.[1] ?? '{"pids":[]}') as { pids: number[] }).pids;
    return { tasks: [...pids.map(String), String(pid)], labels: [...pids.map((_, i) => `worker ${i + 1}`), 'primary'] };
  }
  const tids = (JSON.parse(/^threads (.*)$/m.exec(output)?.[1] ?? '{"tids":[]}') as { tids: (number | null)[] }).tids;
  const known = tids.filter((t): t is number => t !== null);
  return { tasks: known.map((tid) => `${pid}/${tid}`), labels: known.map((_, i) => `thread ${i + 1}`) };
}

interface ServerThreadStats {
  accepted: number;
  bytesIn?: number;
  bytesEchoed?: number;
}

/** Per-thread connections and messages from the server's stats line. */
function perThread(stats: Record<string, unknown> | null, size: number): { connections: number[]; messages: number[] } {
  const threads = (stats?.threads ?? []) as ServerThreadStats[];
  return {
    connections: threads.map((t) => t.accepted),
    messages: threads.map((t) => Math.round((t.bytesIn ?? t.bytesEchoed ?? 0) / size)),
  };
}

/** max/min, or null when a thread had none (or there is nothing to compare). */
export function maxOverMin(values: number[]): number | null {
  if (values.length === 0) return null;
  if (values.length === 1) return 1;
  const min = Math.min(...values);
  return min > 0 ? Math.max(...values) / min : null;
}

export async function runThreads(options: ThreadsOptions, onCell: (label: string) => void = () => {}): Promise<ThreadsResult> {
  const samples: ThreadsSample[] = [];
  const loadgen = programPath('bench-loadgen');
  const labels = new Map<string, string[]>();
  for (let repetition = 0; repetition < options.repeat; repetition++) {
    for (const connections of options.connections) {
      for (const { kind, threads } of threadCells(options)) {
        const server = serverName(kind, threads);
        onCell(`${server} C=${connections}`);
        const cores = pinning(options.pin, threads);
        const running = await startServer(withPin(serverCommand(kind, threads), cores?.[0]));
        try {
          // taskset execs the server: its pid is the child's.
          const pid = running.child.pid!;
          const { tasks, labels: taskLabels } = tasksOf(kind, pid, running.output());
          labels.set(server, taskLabels);
          const serverPids = kind === 'node-cluster' ? tasks.join(',') : String(pid);
          const report = await runLoadgen(withPin({ file: loadgen, args: [
            '--port', String(running.port), '--connections', String(connections), '--depth', String(options.depth),
            '--size', String(options.size), '--warmup-ms', String(options.warmupMs), '--duration-ms', String(options.durationMs),
            '--server-pid', serverPids, ...(tasks.length > 0 ? ['--server-tasks', tasks.join(',')] : []),
          ] }, cores?.[1]));
          const stats = (await running.stop()) as Record<string, unknown> | null;
          const spreadOf = perThread(stats, options.size);
          const taskCpu = (report as unknown as { serverTasksCpuNs?: number[] }).serverTasksCpuNs ?? [];
          samples.push({
            server, kind, threads, connections, repetition,
            messagesPerSec: report.messagesPerSec,
            messagesTotal: report.messagesTotal,
            bytesVerified: report.bytesVerified,
            serverCpuNsPerMessage: report.serverCpuNsPerMessage,
            windowNs: report.windowNs,
            loadgenCpuShare: report.loadgenCpu.share,
            serverCpuShare: report.serverCpuNs >= 0 ? report.serverCpuNs / report.windowNs : NaN,
            usableCores: cores ? Math.max(1, Math.min(threads, os.cpus().length - 1)) : threads,
            p50Us: report.latencyUs.p50,
            taskShares: taskCpu.map((ns) => (ns >= 0 ? ns / report.windowNs : NaN)),
            connectionsPerThread: spreadOf.connections,
            messagesPerThread: spreadOf.messages,
          });
        } finally {
          await running.stop();
        }
      }
    }
  }
  const costs = options.costs ? await runCosts(options.costs, onCell) : null;
  const pinned = pinning(options.pin, Math.max(...options.counts));
  const notes = [
    `closed loop at D = ${options.depth}, S = ${options.size}; every echoed byte is compared with what was sent`,
    pinned
      ? `load generator pinned to core ${pinned[1]}; servers to core(s) ${pinned[0]} (at most one core per thread, never the load generator's)`
      : 'no pinning (taskset missing, one core, or --no-pin)',
    'server CPU per message = CPU time of all the server\'s threads (and, for the cluster, all its processes) over the window / messages',
    'thread shares: each serving thread\'s CPU time over the window (/proc/PID/task/TID/stat) as a share of one core; for the cluster, each worker process, then the primary',
    'spread = max/min over the threads of connections (or messages) served in the whole run, from the server\'s own stats; 1.00 is perfectly even',
    'iomux-N-exclusive hands each accepted connection to the thread with the fewest (EPOLLEXCLUSIVE alone does not spread them); iomux-N-exclusive-kernel leaves it to the kernel\'s wake-ups',
  ];
  return { options, notes, samples, rows: summarize(samples, labels), costs };
}

function summarize(samples: ThreadsSample[], labels: Map<string, string[]>): ThreadsRow[] {
  const rows: ThreadsRow[] = [];
  for (const group of groupBy(samples, (s) => `${s.server}|${s.connections}`).values()) {
    const { server, kind, threads, connections } = group[0];
    const median = (values: number[]) => spread(values.filter((v) => Number.isFinite(v))).median;
    const taskCount = Math.max(...group.map((s) => s.taskShares.length));
    const serverCpuShare = median(group.map((s) => s.serverCpuShare));
    const loadgenCpuShare = median(group.map((s) => s.loadgenCpuShare));
    const spreads = (pick: (s: ThreadsSample) => number[]) => {
      const values = group.map((s) => maxOverMin(pick(s))).filter((v): v is number => v !== null);
      return values.length > 0 ? spread(values).median : null;
    };
    const last = group[group.length - 1];
    rows.push({
      server, kind, threads, connections,
      messagesPerSec: spread(group.map((s) => s.messagesPerSec)),
      serverCpuNsPerMessage: spread(group.map((s) => s.serverCpuNsPerMessage).filter((x) => x >= 0)),
      p50Us: spread(group.map((s) => s.p50Us)),
      serverCpuShare, loadgenCpuShare, usableCores: group[0].usableCores,
      // A multi-threaded server is saturated when it fills the cores it may use.
      boundBy: boundBy(serverCpuShare / group[0].usableCores, loadgenCpuShare),
      taskShares: Array.from({ length: taskCount }, (_, i) => median(group.map((s) => s.taskShares[i] ?? NaN))),
      taskLabels: labels.get(server) ?? [],
      connectionSpread: spreads((s) => s.connectionsPerThread),
      messageSpread: spreads((s) => s.messagesPerThread),
      connectionsPerThread: last.connectionsPerThread,
      messagesPerThread: last.messagesPerThread,
    });
  }
  const order = (r: ThreadsRow) => THREADS_SERVER_KINDS.indexOf(r.kind) * 1000 + r.threads;
  return rows.sort((x, y) => x.connections - y.connections || order(x) - order(y));
}

/** The row of `kind` with `threads` at `connections`. */
export function threadsRow(r: ThreadsResult, kind: ThreadsServerKind, threads: number, connections: number): ThreadsRow | undefined {
  return r.rows.find((row) => row.kind === kind && row.threads === threads && row.connections === connections);
}

/** 1 → N msgs/s of `kind`, over the C server's own 1 → N (null if either is missing). */
export function scalingAgainstC(r: ThreadsResult, kind: ThreadsServerKind, n: number, connections: number): number | null {
  const one = threadsRow(r, kind, 1, connections);
  const many = threadsRow(r, kind, n, connections);
  const c1 = threadsRow(r, 'c', 1, connections);
  const cn = threadsRow(r, 'c', n, connections);
  return ratio(ratio(many?.messagesPerSec.median, one?.messagesPerSec.median), ratio(cn?.messagesPerSec.median, c1?.messagesPerSec.median));
}
