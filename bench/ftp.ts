/**
 * The FTP benchmark: pyftpdlib's ftpbench procedure (bench/ftp-load.c is the client) against each
 * server in turn, side by side in one run — iomux's `iomux ftp serve` on epoll, poll and select,
 * pyftpdlib (Debian's python3-pyftpdlib, the anchor: one process, its own select/poll/epoll loop,
 * sendfile for downloads) and ftp-srv (the Node FTP server on npm). Each server runs as its own
 * process, pinned to one core with the load on the other when `taskset` exists.
 *
 * For every step: its result (MB/s, or seconds for the concurrent steps), the server's CPU time
 * during it (utime + stime of the whole process, from /proc/PID/stat: the cost that does not
 * depend on how busy the machine is), and the server's resident memory after it (VmRSS).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { UserStore } from '../lib/ftp/users';
import { constants } from '../lib/native';
import { onPath } from './machine';
import { programPath } from './programs';
import { ratio } from './stats';

export const FTP_SERVERS = ['iomux-epoll', 'iomux-poll', 'iomux-select', 'pyftpdlib', 'ftp-srv'] as const;
export type FtpServerName = (typeof FTP_SERVERS)[number];

/** ftpbench's steps, in its order. */
export const FTP_STEPS = ['stor', 'retr', 'login', 'stor-idle', 'retr-idle', 'retr-n', 'stor-n', 'quit'] as const;
export type FtpStepName = (typeof FTP_STEPS)[number];
export const THROUGHPUT_STEPS: readonly FtpStepName[] = ['stor', 'retr', 'stor-idle', 'retr-idle'];

export interface FtpOptions {
  servers: FtpServerName[];
  /** N: concurrent clients in the login, retr-n, stor-n and quit steps (and idle in stor-idle, retr-idle). */
  clients: number;
  /** Bytes each client moves in retr-n and stor-n. */
  fileSize: number;
  /** Bytes of each whole transfer in the one-client throughput steps. */
  transferSize: number;
  /** How long each throughput step keeps transferring. */
  seconds: number;
  /** Server on one core, load on the other (taskset). */
  pin: boolean;
}

export interface FtpStep {
  step: FtpStepName;
  /** Throughput steps. */
  mbPerSec: number | null;
  /** Wall time of the step (the result of the concurrent steps). */
  seconds: number;
  bytes: number | null;
  /** The server's CPU time during the step (user + system, all threads). */
  serverCpuSec: number;
  /** The server's resident memory after the step. */
  rssMiB: number;
}

export interface FtpRun {
  server: FtpServerName;
  steps: FtpStep[];
  /** Resident memory before the first step (after one warm-up upload). */
  rssStartMiB: number;
  /** (RSS after login − RSS before it) / N. */
  rssPerIdleClientKiB: number | null;
}

export interface FtpSkip {
  server: FtpServerName;
  reason: string;
}

export interface FtpResult {
  options: FtpOptions;
  notes: string[];
  runs: FtpRun[];
  skips: FtpSkip[];
}

const packageRoot = path.resolve(__dirname, '..', '..');
const PYTHON = '/usr/bin/python3';
const USER = 'bench';
const PASSWORD = 'bench-password-1';
const START_TIMEOUT_MS = 20000;
/** Descriptors a server holds besides two per client (control and data) at the busiest step. */
const SELECT_HEADROOM = 64;

export function ftpCellCount(o: FtpOptions): number {
  return o.servers.length;
}

/** Why a server cannot run here, or null. */
function unfit(server: FtpServerName, o: FtpOptions): string | null {
  if (server === 'iomux-select' && 2 * o.clients + SELECT_HEADROOM >= constants.FD_SETSIZE) {
    return `select cannot watch ${o.clients} clients with their data connections: descriptors must stay below FD_SETSIZE (${constants.FD_SETSIZE})`;
  }
  if (server === 'pyftpdlib' && spawnSync(PYTHON, ['-c', 'import pyftpdlib'], { stdio: 'ignore' }).status !== 0) {
    return `${PYTHON} -m pyftpdlib is not available: apt-get install python3-pyftpdlib`;
  }
  if (server === 'ftp-srv') {
    try {
      require.resolve('ftp-srv');
    } catch {
      return 'ftp-srv is not installed: npm install ftp-srv (an optional package of the benchmark)';
    }
  }
  return null;
}

interface Command {
  file: string;
  args: string[];
  /** The line that says where it listens: its first group is the port. */
  ready: RegExp;
}

function serverCommand(server: FtpServerName, root: string, usersFile: string): Command {
  if (server === 'pyftpdlib') {
    // Its own CLI, as Debian installs it; it logs connections and transfers at INFO, as iomux does.
    return { file: PYTHON, args: ['-m', 'pyftpdlib', '-i', '127.0.0.1', '-p', '0', '-w', '-d', path.join(root, USER), '-u', USER, '-P', PASSWORD],
      ready: /starting FTP server on 127\.0\.0\.1:(\d+)/ };
  }
  if (server === 'ftp-srv') {
    return { file: process.execPath, args: [path.join(__dirname, 'ftp-srv-server.js'), '--root', path.join(root, USER), '--user', USER, '--pass', PASSWORD],
      ready: /listening on 127\.0\.0\.1:(\d+)/ };
  }
  const mechanism = server.split('-')[1];
  return {
    file: process.execPath,
    args: [path.join(packageRoot, 'dist', 'tools', 'cli.js'), 'ftp', 'serve', '--root', root, '--users', usersFile, '--port', '0',
      '--mechanism', mechanism, '--max-clients', '100000', '--max-per-ip', '0'],
    ready: /listening on 127\.0\.0\.1:(\d+)/,
  };
}

/** Cores for (server, load) when pinning is possible. */
function pinning(pin: boolean): [string, string] | null {
  return pin && onPath('taskset') && os.cpus().length >= 2 ? ['0', '1'] : null;
}

function pinned(core: string | undefined, file: string, args: string[]): [string, string[]] {
  return core === undefined ? [file, args] : ['taskset', ['-c', core, file, ...args]];
}

/** utime + stime of a process (all its threads), in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat(5)).
  return ticks / clockTicks();
}

let ticksPerSecond: number | null = null;
function clockTicks(): number {
  if (ticksPerSecond === null) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticksPerSecond = Number(out.stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

function rssMiB(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)\s*kB/.exec(line ?? '0 kB')![1]) / 1024;
}

interface RunningServer {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

function startServer(file: string, args: string[], ready: RegExp): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    let seen = '';
    let listening = false;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(timer);
      }
    };
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${path.basename(file)} ${args.join(' ')} did not start within ${START_TIMEOUT_MS} ms: ${seen.slice(-2000)}`));
    }, START_TIMEOUT_MS);
    const watch = (chunk: Buffer) => {
      // Servers log a line per connection and transfer: keep only what the start needs.
      if (listening) return;
      seen += chunk.toString();
      const match = ready.exec(seen);
      if (match) {
        listening = true;
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), stop });
      }
    };
    child.stdout!.on('data', watch);
    child.stderr!.on('data', watch);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!listening) reject(new Error(`${path.basename(file)} exited (${code ?? signal}) before listening: ${seen.slice(-2000)}`));
    });
  });
}

interface LoadLine {
  step: string;
  bytes?: number;
  seconds?: number;
  mbPerSec?: number;
  clients?: number;
}

/** Runs the load against `server`, sampling its CPU and memory at every step boundary. */
function runLoad(file: string, args: string[], serverPid: number): Promise<{ steps: FtpStep[]; rssStartMiB: number }> {
  return new Promise((resolve, reject) => {
    const load = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    load.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const steps: FtpStep[] = [];
    let lastCpu = cpuSeconds(serverPid);
    let rssStartMiB = 0;
    const lines = readline.createInterface({ input: load.stdout! });
    lines.on('line', (text) => {
      const line = JSON.parse(text) as LoadLine;
      const cpu = cpuSeconds(serverPid);
      const rss = rssMiB(serverPid);
      if (line.step === 'start') {
        rssStartMiB = rss;
      } else if ((FTP_STEPS as readonly string[]).includes(line.step)) {
        steps.push({
          step: line.step as FtpStepName, mbPerSec: line.mbPerSec ?? null, seconds: line.seconds ?? 0, bytes: line.bytes ?? null,
          serverCpuSec: cpu - lastCpu, rssMiB: rss,
        });
      }
      lastCpu = cpu;
      if (line.step !== 'done') load.stdin!.write('\n');
    });
    load.once('error', reject);
    load.once('exit', (code) => {
      if (code === 0 && steps.length === FTP_STEPS.length) resolve({ steps, rssStartMiB });
      else reject(new Error(`bench-ftp-load failed (${code}): ${stderr.trim() || `${steps.length} of ${FTP_STEPS.length} steps`}`));
    });
  });
}

export async function runFtp(options: FtpOptions, onCell: (label: string) => void = () => {}): Promise<FtpResult> {
  const runs: FtpRun[] = [];
  const skips: FtpSkip[] = [];
  const cores = pinning(options.pin);
  const load = programPath('bench-ftp-load');
  for (const server of options.servers) {
    onCell(`ftp ${server} (N=${options.clients})`);
    const reason = unfit(server, options);
    if (reason) {
      skips.push({ server, reason });
      continue;
    }
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftp-bench-'));
    const root = path.join(base, 'root');
    fs.mkdirSync(path.join(root, USER), { recursive: true });
    const usersFile = path.join(base, 'users.json');
    if (server.startsWith('iomux')) new UserStore(usersFile).add(USER, PASSWORD);
    const command = serverCommand(server, root, usersFile);
    const [file, args] = pinned(cores?.[0], command.file, command.args);
    const running = await startServer(file, args, command.ready);
    try {
      const [loadFile, loadArgs] = pinned(cores?.[1], load, [
        '--port', String(running.port), '--user', USER, '--pass', PASSWORD, '--clients', String(options.clients),
        '--file-size', String(options.fileSize), '--transfer-size', String(options.transferSize), '--seconds', String(options.seconds),
      ]);
      const { steps, rssStartMiB } = await runLoad(loadFile, loadArgs, running.child.pid!);
      const login = steps.find((s) => s.step === 'login');
      const before = steps[steps.findIndex((s) => s.step === 'login') - 1]?.rssMiB ?? rssStartMiB;
      runs.push({
        server, steps, rssStartMiB,
        rssPerIdleClientKiB: login ? ((login.rssMiB - before) * 1024) / options.clients : null,
      });
    } finally {
      await running.stop();
      fs.rmSync(base, { recursive: true, force: true });
    }
  }
  const notes = [
    `pyftpdlib's ftpbench procedure with a C client (bench/ftp-load.c, 256 KiB reads and writes): one client's STOR and RETR of whole ${mib(options.transferSize)} transfers for ${options.seconds} s; ` +
    `${options.clients} clients connecting and logging in at once; the same STOR and RETR with them idle; ${options.clients} concurrent RETRs and STORs of ${mib(options.fileSize)}; ${options.clients} concurrent QUITs`,
    cores ? `server pinned to core ${cores[0]}, load to core ${cores[1]} (taskset)` : 'no pinning (taskset missing, one core, or --no-pin)',
    'server CPU = utime + stime of the whole server process during the step (/proc/PID/stat); RSS = VmRSS after the step',
    'iomux runs `iomux ftp serve` (attached to Node\'s loop; scrypt password checks, the first login of a user costs one scrypt and later ones a remembered HMAC); pyftpdlib runs `/usr/bin/python3 -m pyftpdlib` (plain-text password, INFO logging like iomux\'s); ftp-srv logs nothing',
  ];
  return { options, notes, runs, skips };
}

function mib(bytes: number): string {
  return `${Math.round((bytes / 2 ** 20) * 10) / 10} MiB`;
}

/** iomux-epoll's value over `other`'s for one step: MB/s for throughput steps, seconds otherwise. */
export function stepRatio(result: FtpResult, step: FtpStepName, other: FtpServerName, server: FtpServerName = 'iomux-epoll'): number | null {
  const value = (name: FtpServerName) => {
    const s = result.runs.find((r) => r.server === name)?.steps.find((x) => x.step === step);
    if (!s) return null;
    return THROUGHPUT_STEPS.includes(step) ? s.mbPerSec : s.seconds;
  };
  return ratio(value(server), value(other));
}
