/**
 * The FTPS benchmark (`iomux bench --ftp --tls`): one client's RETR and STOR of a whole file (1 GiB
 * by default) over explicit FTPS — AUTH TLS, PROT P, TLS 1.3 data connections resuming the control
 * connection's session — against
 *
 * - `iomux ftp serve --tls-cert --tls-key --require-tls` (epoll): the addon drives Node's OpenSSL;
 * - pyftpdlib's `TLS_FTPHandler` (Debian's python3-pyftpdlib and python3-openssl), the anchor;
 * - vsftpd with `ssl_enable` (Debian's vsftpd, OpenSSL in C), the reference: anonymous with write
 *   access, as the user who starts it (`run_as_launching_user`: no root, no privilege separation),
 *   logins and data forced to TLS, `require_ssl_reuse` (its default).
 *
 * The client is lftp (GnuTLS: `ftp:ssl-force`, `ftp:ssl-protect-data`, the CA file), on its own core
 * when taskset exists; the servers share one certificate (EC P-256). curl would be the natural
 * client, but pyftpdlib 1.5.7's TLS data connections fail under it (pyftpdlib starts the data
 * handshake at once, curl after the 150: pyftpdlib closes the connection), while ftplib and lftp
 * work with all three. Rounds interleave the servers; the table gives medians of MB/s (the whole
 * lftp run, login and handshakes included: a few ms against seconds) and of the server's CPU time
 * per MB: the run time of its process's threads, plus what its session processes used (vsftpd forks
 * one per session; the listener reaps it: cutime + cstime) — ftp-servers.ts's treeCpuSeconds.
 */
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserStore } from '../lib/ftp/users';
import { pinning, SYSTEM_PYTHON, withPin } from './echo';
import { childrenGone, freePort, greeted, treeCpuSeconds, vsftpdConfig } from './ftp-servers';
import { onPath } from './machine';
import { makeSelfSigned } from '../tools/tls-cert';

export const FTPS_SERVERS = ['iomux', 'pyftpdlib', 'vsftpd'] as const;
export type FtpsServerName = (typeof FTPS_SERVERS)[number];

export interface FtpsOptions {
  servers: FtpsServerName[];
  /** Bytes of each transfer. Default 1 GiB. */
  transferSize: number;
  rounds: number;
  /** Server on core 0, the client on core 1 (taskset). */
  pin: boolean;
}

export interface FtpsRow {
  server: FtpsServerName;
  command: 'RETR' | 'STOR';
  mbPerSec: number;
  cpuMsPerMB: number;
  samples: number;
}

export interface FtpsResult {
  options: FtpsOptions;
  rows: FtpsRow[];
  skips: { server: FtpsServerName; reason: string }[];
  notes: string[];
}

const packageRoot = path.resolve(__dirname, '..', '..');
const USER = 'bench';
const PASSWORD = 'bench-password-1';
const START_TIMEOUT_MS = 20000;

const PYFTPDLIB_TLS = `
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
home, user, password, cert, key = sys.argv[1:6]
logging.basicConfig(level=logging.INFO)
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, home, perm='elradfmwMT')
TLS_FTPHandler.authorizer = authorizer
TLS_FTPHandler.certfile = cert
TLS_FTPHandler.keyfile = key
TLS_FTPHandler.tls_control_required = True
TLS_FTPHandler.tls_data_required = True
server = FTPServer(('127.0.0.1', 0), TLS_FTPHandler)
server.max_cons = 0
server.serve_forever()
`;

/** Why a server cannot run here, or null. */
function unfit(server: FtpsServerName): string | null {
  if (!onPath('lftp')) return 'lftp is not installed (the client): apt-get install lftp';
  if (server === 'pyftpdlib' && spawnSync(SYSTEM_PYTHON, ['-c', 'import pyftpdlib.handlers, OpenSSL'], { stdio: 'ignore' }).status !== 0) {
    return `${SYSTEM_PYTHON} lacks pyftpdlib or pyOpenSSL: apt-get install python3-pyftpdlib python3-openssl`;
  }
  if (server === 'vsftpd' && !fs.existsSync('/usr/sbin/vsftpd')) return 'vsftpd is not installed: apt-get install vsftpd';
  return null;
}

interface Running {
  server: FtpsServerName;
  child: ChildProcess;
  port: number;
  user: string;
  password: string;
  home: string;
  stop(): Promise<void>;
}

async function startServer(server: FtpsServerName, base: string, cert: string, key: string, core: string | null): Promise<Running> {
  const root = path.join(base, server, 'root');
  const home = path.join(root, USER);
  fs.mkdirSync(home, { recursive: true });
  let file: string;
  let args: string[];
  let ready: RegExp | null = /starting FTP(?:\+SSL)? server on 127\.0\.0\.1:(\d+)|listening on 127\.0\.0\.1:(\d+)/;
  let port = 0;
  let login = { user: USER, password: PASSWORD };
  if (server === 'iomux') {
    const users = path.join(base, server, 'users.json');
    new UserStore(users).add(USER, PASSWORD);
    file = process.execPath;
    args = [path.join(packageRoot, 'dist', 'tools', 'cli.js'), 'ftp', 'serve', '--root', root, '--users', users, '--port', '0',
      '--mechanism', 'epoll', '--tls-cert', cert, '--tls-key', key, '--require-tls', '--max-per-ip', '0'];
  } else if (server === 'pyftpdlib') {
    file = SYSTEM_PYTHON;
    args = ['-c', PYFTPDLIB_TLS, home, USER, PASSWORD, cert, key];
  } else {
    port = await freePort();
    const config = path.join(base, server, 'vsftpd.conf');
    fs.writeFileSync(config, vsftpdConfig(home, port, path.join(base, server, 'log'), [
      'ssl_enable=YES', `rsa_cert_file=${cert}`, `rsa_private_key_file=${key}`, 'allow_anon_ssl=YES',
      'force_anon_logins_ssl=YES', 'force_anon_data_ssl=YES', 'require_ssl_reuse=YES',
    ]));
    file = '/usr/sbin/vsftpd';
    args = [config];
    ready = null;
    login = { user: 'anonymous', password: 'bench@' };
  }
  const pinned = withPin({ file, args }, core ?? undefined);
  const child = spawn(pinned.file, pinned.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    if (ready === null) {
      // vsftpd prints nothing when it listens: its greeting says it is up.
      const deadline = Date.now() + START_TIMEOUT_MS;
      if (!(await greeted(port, () => Date.now() >= deadline))) throw new Error(`nothing answered on port ${port} within ${START_TIMEOUT_MS} ms`);
    } else {
      port = await new Promise<number>((resolve, reject) => {
        let seen = '';
        const timer = setTimeout(() => reject(new Error(`${server} did not start: ${seen.slice(-1000)}`)), START_TIMEOUT_MS);
        const watch = (chunk: Buffer): void => {
          if (seen.length > 100_000) return;
          seen += chunk.toString();
          const match = ready!.exec(seen);
          if (match) {
            clearTimeout(timer);
            resolve(Number(match[1] ?? match[2]));
          }
        };
        child.stdout!.on('data', watch);
        child.stderr!.on('data', watch);
        child.once('exit', (code) => reject(new Error(`${server} exited (${code}) before listening: ${seen.slice(-1000)}`)));
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  // Keep reading its logs, or a full pipe would stop it.
  child.stdout!.resume();
  child.stderr!.resume();
  return { server, child, port, home, stop, ...login };
}

/** Runs one lftp session of `commands` against `r`; resolves with its wall time in seconds. */
function lftp(r: Running, certFile: string, commands: string, core: string | null): Promise<number> {
  const script = ['set ftp:ssl-force true', 'set ftp:ssl-protect-data true', `set ssl:ca-file ${certFile}`,
    'set net:max-retries 1', 'set cmd:fail-exit true', 'set xfer:clobber on', commands, 'bye'].join('; ');
  const args = ['-u', `${r.user},${r.password}`, '-p', String(r.port), '-e', script, '127.0.0.1'];
  const { file, args: all } = withPin({ file: 'lftp', args }, core ?? undefined);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(file, all, { timeout: 600_000, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`lftp against ${r.server} (${commands}): ${stderr.trim() || err.message}`));
      else resolve(Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export async function runFtps(options: FtpsOptions, onStep: (label: string) => void = () => {}): Promise<FtpsResult> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-ftps-bench-'));
  const pinned = pinning(options.pin);
  const cores = pinned ? { server: pinned[0], client: pinned[1] } : null;
  const running: Running[] = [];
  const skips: FtpsResult['skips'] = [];
  try {
    const { cert, key } = makeSelfSigned({}, 'bench');
    const certFile = path.join(base, 'cert.pem');
    const keyFile = path.join(base, 'key.pem');
    fs.writeFileSync(certFile, cert);
    fs.writeFileSync(keyFile, key, { mode: 0o600 });
    const payload = path.join(base, 'payload.bin');
    const received = path.join(base, 'received.bin');
    const fd = fs.openSync(payload, 'w');
    const block = Buffer.allocUnsafe(1024 * 1024);
    for (let done = 0; done < options.transferSize; done += block.length) {
      fs.writeSync(fd, crypto.randomFillSync(block), 0, Math.min(block.length, options.transferSize - done));
    }
    fs.closeSync(fd);
    for (const server of options.servers) {
      const reason = unfit(server);
      if (reason !== null) skips.push({ server, reason });
      else running.push(await startServer(server, base, certFile, keyFile, cores?.server ?? null));
    }
    const samples = new Map<string, { mbps: number[]; cpu: number[] }>();
    const mb = options.transferSize / 1e6;
    for (let round = 1; round <= options.rounds; round++) {
      for (const r of running) {
        for (const command of ['STOR', 'RETR'] as const) {
          onStep(`ftps ${r.server} ${command} round ${round}/${options.rounds}`);
          const before = treeCpuSeconds(r.child.pid!);
          const seconds = await lftp(r, certFile, command === 'STOR' ? `put ${payload} -o bench.bin` : `get bench.bin -o ${received}`,
            cores?.client ?? null);
          await childrenGone(r.child.pid!); // vsftpd's session process outlives lftp by a moment
          const cpu = treeCpuSeconds(r.child.pid!) - before;
          if (command === 'STOR' && fs.statSync(path.join(r.home, 'bench.bin')).size !== options.transferSize) {
            throw new Error(`${r.server}: the stored file is not ${options.transferSize} bytes`);
          }
          const key = `${r.server} ${command}`;
          const entry = samples.get(key) ?? { mbps: [], cpu: [] };
          if (command === 'RETR' && fs.statSync(received).size !== options.transferSize) {
            throw new Error(`${r.server}: the file received is not ${options.transferSize} bytes`);
          }
          entry.mbps.push(mb / seconds);
          entry.cpu.push((cpu * 1000) / mb);
          samples.set(key, entry);
        }
      }
    }
    const rows: FtpsRow[] = [];
    for (const [key, entry] of samples) {
      const [server, command] = key.split(' ') as [FtpsServerName, 'RETR' | 'STOR'];
      rows.push({ server, command, mbPerSec: median(entry.mbps), cpuMsPerMB: median(entry.cpu), samples: entry.mbps.length });
    }
    const notes = [
      `one client (lftp with ftp:ssl-force and ftp:ssl-protect-data, TLS 1.3, the control connection's session resumed on data connections) moving a ${Math.round(options.transferSize / 2 ** 20)} MiB file, ` +
      `${options.rounds} rounds, servers interleaved; medians`,
      cores ? 'server pinned to core 0, lftp to core 1 (taskset)' : 'no pinning',
      'server CPU = run time of the server process\'s threads and its session processes\' (vsftpd forks one per session; those reaped: cutime + cstime)',
    ];
    return { options, rows, skips, notes };
  } finally {
    for (const r of running) await r.stop();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

export function formatFtps(result: FtpsResult): string {
  const anchor = (command: string) => result.rows.find((r) => r.server === 'pyftpdlib' && r.command === command);
  const lines = [
    '| server | command | MB/s | server CPU ms/MB | MB/s vs pyftpdlib | CPU/MB vs pyftpdlib |',
    '|---|---|---:|---:|---:|---:|',
  ];
  for (const row of result.rows) {
    const a = anchor(row.command);
    lines.push(`| ${row.server} | ${row.command} | ${row.mbPerSec.toFixed(0)} | ${row.cpuMsPerMB.toFixed(2)} | ` +
      `${a ? (row.mbPerSec / a.mbPerSec).toFixed(2) : '–'} | ${a ? (row.cpuMsPerMB / a.cpuMsPerMB).toFixed(2) : '–'} |`);
  }
  for (const skip of result.skips) lines.push(`(${skip.server} skipped: ${skip.reason})`);
  return [...lines, '', ...result.notes.map((note) => `- ${note}`)].join('\n');
}
