/**
 * The FTP servers the benchmark compares, started as their users would start them, each as its own
 * process (pinned to one core when asked), and what each costs: CPU time and memory of the whole
 * process tree.
 *
 * - iomux: `iomux ftp serve` on epoll, poll or select (scrypt password hashes).
 * - pyftpdlib: Debian's python3-pyftpdlib, set up as its CLI does (one process, its own epoll loop,
 *   sendfile for downloads; plain-text password) but with no cap on sessions.
 * - vsftpd: Debian's vsftpd, standalone in the foreground from a configuration file written into the
 *   run's temporary directory. It forks a process per session, so its cost is the listener's and its
 *   session processes': those alive (their threads' run time) and those that have exited (the
 *   listener reaps them: cutime + cstime). `run_as_launching_user` lets it run without root and without the
 *   `ftp` account; that mode allows anonymous logins only (a password is asked for and not checked),
 *   and it has no privilege separation: vsftpd's cheapest way to serve a session.
 * - ftp-srv: the Node FTP server on npm (`bench/ftp-srv-server.ts`).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { UserStore } from '../lib/ftp/users';
import { undoOnExit } from './cleanup';
import { CpuGroup } from './cpu-group';
import { childrenOf, descendants, statFields } from './descendants';
import { constants } from '../lib/native';
import { onPath } from './machine';
import { SYSTEM_PYTHON, withPin } from './echo';

export const FTP_SERVERS = ['iomux-epoll', 'iomux-poll', 'iomux-select', 'pyftpdlib', 'vsftpd', 'ftp-srv'] as const;
export type FtpServerName = (typeof FTP_SERVERS)[number];

const packageRoot = path.resolve(__dirname, '..', '..');
/** The account every server has; vsftpd's anonymous login takes any password. */
const FTP_USER = 'bench';
const PASSWORD = 'bench-password-1';
const START_TIMEOUT_MS = 20000;
/** pyftpdlib as its CLI serves one user with write permission, without the CLI's 512-session cap. */
const PYFTPDLIB_SERVER = `
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
home, user, password = sys.argv[1:4]
logging.basicConfig(level=logging.INFO)
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, home, perm='elradfmwMT')
FTPHandler.authorizer = authorizer
server = FTPServer(('127.0.0.1', 0), FTPHandler)
server.max_cons = 0
server.serve_forever()
`;
/** Descriptors a server holds besides two per client (control and data) at the busiest step. */
const SELECT_HEADROOM = 64;

/** The server's vsftpd program, or null. */
function vsftpdPath(): string | null {
  for (const candidate of ['/usr/sbin/vsftpd', '/usr/local/sbin/vsftpd']) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return onPath('vsftpd') ? 'vsftpd' : null;
}

/** Why `server` cannot run here with `clients` sessions at once, or null. */
export function unfitFtpServer(server: FtpServerName, clients: number): string | null {
  if (server === 'iomux-select' && 2 * clients + SELECT_HEADROOM >= constants.FD_SETSIZE) {
    return `select cannot watch ${clients} clients with their data connections: descriptors must stay below FD_SETSIZE (${constants.FD_SETSIZE})`;
  }
  if (server === 'pyftpdlib' && spawnSync(SYSTEM_PYTHON, ['-c', 'import pyftpdlib'], { stdio: 'ignore' }).status !== 0) {
    return `${SYSTEM_PYTHON} -m pyftpdlib is not available: apt-get install python3-pyftpdlib`;
  }
  if (server === 'vsftpd' && vsftpdPath() === null) return 'vsftpd is not installed: apt-get install vsftpd';
  if (server === 'ftp-srv') {
    try {
      require.resolve('ftp-srv');
    } catch {
      return 'ftp-srv is not installed: npm install ftp-srv (an optional package of the benchmark)';
    }
  }
  return null;
}

export interface RunningFtpServer {
  server: FtpServerName;
  pid: number;
  port: number;
  /** The login that works on it. */
  user: string;
  password: string;
  /** The directory the account sees as its root. */
  home: string;
  /** CPU time of the server's processes so far (their threads' run time), exited session processes included (s). */
  cpuSeconds(): number;
  /** Resident memory: VmRSS; for a forking server, the Pss of all its processes summed (MiB). */
  memoryMiB(): number;
  /**
   * Resolves once the server has stopped using the CPU: what it does after a reply (a file closed in
   * the background, a session process exiting) is counted for the work that caused it.
   */
  quiet(): Promise<void>;
  /** As quiet(), once no session process of a forking server is left (they exit after QUIT). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

interface Launch {
  file: string;
  args: string[];
  /** The line that says where it listens (its first group is the port); null: poll `port` for a greeting. */
  ready: RegExp | null;
  port: number;
  user: string;
  password: string;
  /** It forks a process per session. */
  forks: boolean;
}

/**
 * Starts `server` serving `root/bench` (created if missing) and resolves once it answers. `base` is
 * a private temporary directory for its users file or configuration. The server runs in a session
 * of its own (so in a scheduler autogroup of its own, as each vsftpd session is: bench/cpu-group.ts),
 * pinned to `core` if given, and in `group` if given.
 */
export async function startFtpServer(server: FtpServerName, root: string, base: string, core: string | undefined,
  group: CpuGroup | null = null): Promise<RunningFtpServer> {
  const home = path.join(root, FTP_USER);
  fs.mkdirSync(home, { recursive: true });
  const launch = await launchOf(server, root, home, base);
  const { file, args } = withPin(launch, core);
  const { child, port } = await start(file, args, launch, group);
  const pid = child.pid!;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let cpuHigh = 0;
  return {
    server, pid, port, user: launch.user, password: launch.password, home,
    // The reaped total is in whole ticks: as sessions exit, up to one tick of theirs can vanish from
    // the sum. CPU time only grows, so a reading below the last one is the last one.
    cpuSeconds: () => (cpuHigh = Math.max(cpuHigh, treeCpuSeconds(pid))),
    memoryMiB: () => (launch.forks ? treePssMiB(pid) : rssMiB(pid)),
    quiet: () => cpuQuiet(pid),
    settled: async () => {
      if (launch.forks) await childrenGone(pid);
      await cpuQuiet(pid);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

async function launchOf(server: FtpServerName, root: string, home: string, base: string): Promise<Launch> {
  const login = { user: FTP_USER, password: PASSWORD, forks: false };
  if (server === 'pyftpdlib') {
    // What its CLI (`python3 -m pyftpdlib -w -u -P -d`) runs, logging connections and transfers at
    // INFO as iomux does, but with no cap on sessions: the CLI keeps FTPServer's max_cons of 512.
    return { ...login, file: SYSTEM_PYTHON, args: ['-c', PYFTPDLIB_SERVER, home, FTP_USER, PASSWORD],
      ready: /starting FTP server on 127\.0\.0\.1:(\d+)/, port: 0 };
  }
  if (server === 'ftp-srv') {
    return { ...login, file: process.execPath, args: [path.join(__dirname, 'ftp-srv-server.js'), '--root', home, '--user', FTP_USER, '--pass', PASSWORD],
      ready: /listening on 127\.0\.0\.1:(\d+)/, port: 0 };
  }
  if (server === 'vsftpd') {
    const port = await freePort();
    const config = path.join(base, 'vsftpd.conf');
    fs.writeFileSync(config, vsftpdConfig(home, port, path.join(base, 'vsftpd.log')));
    return { file: vsftpdPath()!, args: [config], ready: null, port, user: 'anonymous', password: 'bench@', forks: true };
  }
  const usersFile = path.join(base, 'users.json');
  if (!fs.existsSync(usersFile)) new UserStore(usersFile).add(FTP_USER, PASSWORD);
  return {
    ...login,
    file: process.execPath,
    args: [path.join(packageRoot, 'dist', 'tools', 'cli.js'), 'ftp', 'serve', '--root', root, '--users', usersFile, '--port', '0',
      '--mechanism', server.split('-')[1], '--max-clients', '100000', '--max-per-ip', '0', '--max-per-user', '0'],
    ready: /listening on 127\.0\.0\.1:(\d+)/, port: 0,
  };
}

/**
 * vsftpd standalone in the foreground, anonymous with write access in `home`, as the user who starts
 * it (no chroot, no privilege separation: see the file's comment), no limits on sessions; then `extra` lines.
 */
export function vsftpdConfig(home: string, port: number, log: string, extra: readonly string[] = []): string {
  return [
    'listen=YES', 'listen_ipv6=NO', 'listen_address=127.0.0.1', `listen_port=${port}`, 'background=NO',
    'run_as_launching_user=YES', 'seccomp_sandbox=NO',
    'anonymous_enable=YES', 'no_anon_password=NO', 'local_enable=NO', `anon_root=${home}`,
    'write_enable=YES', 'anon_upload_enable=YES', 'anon_mkdir_write_enable=YES', 'anon_other_write_enable=YES', 'anon_umask=022',
    'pasv_enable=YES', 'max_clients=0', 'max_per_ip=0', 'dirmessage_enable=NO', 'xferlog_enable=NO',
    `vsftpd_log_file=${log}`, 'ftpd_banner=vsftpd', ...extra, '',
  ].join('\n');
}

/** A port nobody listens on now (vsftpd and pyftpdlib must be told one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function start(file: string, args: string[], launch: Launch, group: CpuGroup | null): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true }); // detached: setsid().
    if (child.pid !== undefined) {
      // In a session of its own, a signal to the benchmark's process group does not reach it: it goes when we do.
      child.once('exit', undoOnExit(() => child.kill('SIGKILL')));
      group?.join(child.pid); // Before it can fork a session: its children are born in the group.
    }
    let seen = '';
    let settled = false;
    const finish = (err: Error | null, port = 0) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err === null) {
        resolve({ child, port });
        return;
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      reject(err);
    };
    const timer = setTimeout(() => finish(new Error(`${path.basename(file)} ${args.join(' ')} did not start within ${START_TIMEOUT_MS} ms: ${seen.slice(-2000)}`)),
      START_TIMEOUT_MS);
    const watch = (chunk: Buffer) => {
      // Servers log a line per connection and transfer: keep only what the start needs.
      if (settled || launch.ready === null) return;
      seen += chunk.toString();
      const match = launch.ready.exec(seen);
      if (match) finish(null, Number(match[1]));
    };
    child.stdout!.on('data', watch);
    child.stderr!.on('data', (chunk: Buffer) => {
      if (launch.ready === null && seen.length < 4000) seen += chunk.toString();
      watch(chunk);
    });
    child.once('error', (err) => finish(err));
    child.once('exit', (code, signal) => finish(new Error(`${path.basename(file)} exited (${code ?? signal}) before listening: ${seen.slice(-2000)}`)));
    if (launch.ready === null) {
      void greeted(launch.port, () => settled).then((ok) => {
        if (ok) finish(null, launch.port);
      });
    }
  });
}

/** Connects to `port` until a 220 greeting comes (true), or `stop()` says give up (false). */
export async function greeted(port: number, stop: () => boolean): Promise<boolean> {
  while (!stop()) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(2000, () => socket.destroy());
      socket.once('data', (data) => {
        socket.end('QUIT\r\n');
        resolve(data.toString().startsWith('220'));
      });
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((done) => setTimeout(done, 50));
  }
  return false;
}

/**
 * The CPU time of `pid` and of its descendants, alive or exited and reaped (cutime + cstime), in
 * seconds. A living process counts the run time of its threads (/proc/PID/task/TID/schedstat, in
 * ns), not stat's utime + stime: those are whole clock ticks (10 ms), truncated per process, and a
 * forking server's thousand sessions of a few ms each read as 0 until they exit (vsftpd's 1,000
 * concurrent RETRs cost "0.0 s", its QUIT 2.4 s). A child reaped between the two reads would be
 * counted twice or not at all: the reads are repeated until the reaped total stood still around them.
 */
export function treeCpuSeconds(pid: number): number {
  for (let attempt = 0; ; attempt++) {
    const before = statFields(pid);
    if (before === null) return 0;
    let seconds = runSeconds(pid);
    for (const child of descendants(pid)) seconds += runSeconds(child);
    const after = statFields(pid) ?? before;
    const reaped = Number(after[13]) + Number(after[14]); // cutime, cstime (stat(5) fields 16, 17).
    if (reaped === Number(before[13]) + Number(before[14]) || attempt === 5) return seconds + reaped / clockTicks();
  }
}

/** The kernel keeps per-thread run times (CONFIG_SCHED_INFO: Debian's and most distributions' kernels do). */
const hasSchedstat = fs.existsSync('/proc/self/schedstat');

/**
 * What `pid`'s threads have run so far, in seconds: the first field of each thread's schedstat (ns;
 * a thread that ended is the process's until it is reaped). Without schedstat: stat's utime + stime.
 * 0 once it has gone.
 */
function runSeconds(pid: number): number {
  if (!hasSchedstat) {
    const fields = statFields(pid);
    return fields === null ? 0 : (Number(fields[11]) + Number(fields[12])) / clockTicks();
  }
  let ns = 0;
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    // Gone.
  }
  for (const task of tasks) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1e9;
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

/** The Pss of `pid` and its descendants: each page they share counted once, split among them. */
function treePssMiB(pid: number): number {
  let kib = 0;
  for (const each of [pid, ...descendants(pid)]) {
    try {
      const match = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${each}/smaps_rollup`, 'utf8'));
      if (match) kib += Number(match[1]);
    } catch {
      // Exited meanwhile.
    }
  }
  return kib / 1024;
}

/** Resolves once `pid` has no children left, or after 10 s (a session that lingers is then counted later). */
export async function childrenGone(pid: number): Promise<void> {
  const deadline = Date.now() + 10000;
  while (childrenOf(pid).length > 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 5));
}

/** Resolves once `pid` and its descendants used under 2 ms of CPU in 50 ms, or after 10 s. */
async function cpuQuiet(pid: number): Promise<void> {
  const deadline = Date.now() + 10000;
  let last = treeCpuSeconds(pid);
  while (Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 50));
    const now = treeCpuSeconds(pid);
    if (now - last < 0.002) return;
    last = now;
  }
}
