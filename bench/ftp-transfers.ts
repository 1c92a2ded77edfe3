/**
 * Whole-file transfers (1 GiB by default) with the clients people use — curl, the benchmark's C
 * client (bench/ftp-load.c, 256 KiB reads and writes) and Python's ftplib reading and writing 64 KiB
 * at a time — against every server, RETR and STOR. All the servers run at once, idle but for the one
 * being measured, and the runs are interleaved (round 1: every client, direction and server in turn;
 * then round 2 ...) so that a slow spell of a shared machine falls on all of them alike; each cell's
 * result is the median of its rounds.
 *
 * Each STOR writes a new file (the last one is removed first, untimed). A cell's rate is the
 * client's own figure for the transfer (from the transfer command to its 226;
 * curl: time_total − time_pretransfer); its cost is the server's CPU time from before the client
 * started until it was idle again (vsftpd: until the session process exited and was reaped).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, SYSTEM_PYTHON, withPin } from './echo';
import { FtpServerName, RunningFtpServer } from './ftp-servers';
import { programPath } from './programs';
import { spread, Spread } from './stats';

export const TRANSFER_CLIENTS = ['curl', 'c', 'ftplib'] as const;
export type TransferClient = (typeof TRANSFER_CLIENTS)[number];
export type Direction = 'retr' | 'stor';
export const DIRECTIONS: readonly Direction[] = ['retr', 'stor'];

export interface TransferCell {
  server: FtpServerName;
  client: TransferClient;
  direction: Direction;
  /** MB/s (2^20 bytes) of each round. */
  mbPerSec: Spread;
  /** The server's CPU per MB moved, ms, of each round. */
  cpuMsPerMB: Spread;
}

export interface TransferSkip {
  client: TransferClient;
  reason: string;
}

export interface TransferResult {
  /** Bytes of each transfer. */
  size: number;
  rounds: number;
  cells: TransferCell[];
  skips: TransferSkip[];
}

/** A transfer that takes longer than this has hung: the run fails instead of waiting forever. */
const CLIENT_TIMEOUT_MS = 300_000;
/** The RETR file, in every server's home. */
export const RETR_NAME = 'whole-retr.bin';
const STOR_NAME = 'whole-stor.bin';

/**
 * ftplib as its users call it: retrbinary / storbinary with a 64 KiB blocksize, a blocking socket (no
 * timeout: with one, CPython polls before every recv). Prints {"bytes", "seconds"}.
 */
const FTPLIB_CLIENT = `
import ftplib, json, sys, time
port, user, password, direction, name, source = sys.argv[1:7]
ftp = ftplib.FTP()
ftp.connect('127.0.0.1', int(port))
ftp.login(user, password)
moved = 0
def count(data):
    global moved
    moved += len(data)
start = time.monotonic()
if direction == 'retr':
    ftp.retrbinary('RETR ' + name, count, blocksize=65536)
else:
    with open(source, 'rb') as f:
        ftp.storbinary('STOR ' + name, f, blocksize=65536, callback=count)
seconds = time.monotonic() - start
ftp.quit()
print(json.dumps({'bytes': moved, 'seconds': seconds}))
`;

/** Why `client` cannot run here, or null. */
function unfitTransferClient(client: TransferClient): string | null {
  const runs = (file: string, args: string[]) => spawnSync(file, args, { stdio: 'ignore' }).status === 0;
  if (client === 'curl' && !runs('curl', ['--version'])) return 'curl is not installed: apt-get install curl';
  if (client === 'ftplib' && !runs(SYSTEM_PYTHON, ['-c', 'import ftplib'])) return `${SYSTEM_PYTHON} (with ftplib) is not installed: apt-get install python3`;
  return null;
}

/** The command that makes one transfer of `size` bytes with `client`. */
function clientCommand(client: TransferClient, server: RunningFtpServer, direction: Direction, size: number, source: string): Command {
  const name = direction === 'retr' ? RETR_NAME : STOR_NAME;
  const { port, user, password } = server;
  if (client === 'curl') {
    const url = `ftp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${name}`;
    const format = `{"bytes": %{size_${direction === 'retr' ? 'download' : 'upload'}}, "pretransfer": %{time_pretransfer}, "total": %{time_total}}`;
    return { file: 'curl', args: ['-sS', '--fail', '-w', format, ...(direction === 'retr' ? ['-o', '/dev/null', url] : ['-T', source, url])] };
  }
  if (client === 'ftplib') return { file: SYSTEM_PYTHON, args: ['-c', FTPLIB_CLIENT, String(port), user, password, direction, name, source] };
  return { file: programPath('bench-ftp-load'), args: ['--port', String(port), '--user', user, '--pass', password, '--once', direction, '--name', name,
    '--transfer-size', String(size)] };
}

interface ClientOutput {
  bytes: number;
  seconds?: number;
  pretransfer?: number;
  total?: number;
}

function runClient(file: string, args: string[]): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLIENT_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const what = `${path.basename(file)} ${args.filter((a) => !a.includes('\n')).join(' ')}`;
      if (code !== 0) {
        reject(new Error(`${what} failed (${code ?? signal}): ${stderr.trim() || stdout.trim()}`));
        return;
      }
      try {
        const out = JSON.parse(stdout.trim().split('\n').pop()!) as ClientOutput;
        resolve({ bytes: out.bytes, seconds: out.seconds ?? out.total! - out.pretransfer! });
      } catch {
        reject(new Error(`${what} printed no result: ${stdout.trim()}`));
      }
    });
  });
}

/** A file of `size` bytes (not all zeros, not sparse) at `file`. */
export function writeTestFile(file: string, size: number): void {
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < size;) written += fs.writeSync(fd, block, 0, Math.min(block.length, size - written));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The whole-file cells: `rounds` interleaved rounds of every client × direction × server. Every
 * server's home holds the RETR file; `source` is the STOR clients' file (both `size` bytes).
 */
export async function runTransfers(servers: RunningFtpServer[], clients: TransferClient[], size: number, rounds: number, source: string,
  loadCore: string | undefined, onProgress: (label: string) => void = () => {}): Promise<TransferResult> {
  const skips: TransferSkip[] = [];
  const usable = clients.filter((client) => {
    const reason = unfitTransferClient(client);
    if (reason) skips.push({ client, reason });
    return reason === null;
  });
  const samples = new Map<string, { mbPerSec: number[]; cpu: number[] }>();
  const key = (server: string, client: string, direction: string) => `${server} ${client} ${direction}`;
  for (let round = 0; round < rounds; round++) {
    for (const client of usable) {
      for (const direction of DIRECTIONS) {
        onProgress(`ftp whole-file ${direction.toUpperCase()} with ${client}, round ${round + 1} of ${rounds}`);
        for (const server of servers) {
          const { file, args } = withPin(clientCommand(client, server, direction, size, source), loadCore);
          // Every STOR makes a new file: replacing the last one would make each server pay for its
          // predecessor's (truncating pages still being written back) and for ext4's flush at close.
          if (direction === 'stor') fs.rmSync(path.join(server.home, STOR_NAME), { force: true });
          await server.settled();
          const cpuBefore = server.cpuSeconds();
          const { bytes, seconds } = await runClient(file, args);
          await server.settled();
          const cpu = server.cpuSeconds() - cpuBefore;
          const stored = direction === 'stor' ? fs.statSync(path.join(server.home, STOR_NAME)).size : size;
          if (bytes !== size || stored !== size) {
            throw new Error(`${client} ${direction.toUpperCase()} on ${server.server}: ${bytes} bytes moved${direction === 'stor' ? `, ${stored} stored` : ''}, ${size} expected`);
          }
          const cell = samples.get(key(server.server, client, direction)) ?? { mbPerSec: [], cpu: [] };
          cell.mbPerSec.push(bytes / 2 ** 20 / seconds);
          cell.cpu.push((cpu * 1000) / (bytes / 2 ** 20));
          samples.set(key(server.server, client, direction), cell);
        }
      }
    }
  }
  const cells: TransferCell[] = [];
  for (const client of usable) {
    for (const direction of DIRECTIONS) {
      for (const server of servers) {
        const s = samples.get(key(server.server, client, direction))!;
        cells.push({ server: server.server, client, direction, mbPerSec: spread(s.mbPerSec), cpuMsPerMB: spread(s.cpu) });
      }
    }
  }
  return { size, rounds, cells, skips };
}
