/**
 * File transfer over loopback: `iomux files` put and get of one large file, next to the two
 * baselines the issue names — Node's idiomatic `stream.pipeline` (fs stream ⇄ net socket,
 * bench/node-file-pipe.ts) and the plain copy limit, a C sendfile pipe (bench/file-pipe.c) — with
 * the server's memory (VmHWM: its peak resident set, kept by the kernel, so no sampling misses a
 * peak), and N concurrent uploads into one server (bench/files-load.ts).
 *
 * Every configuration is a fresh set of processes; repetitions are the outer loop, so drift on a
 * shared machine hits every configuration alike. Rates are bytes / seconds of the transfer as its
 * client measures it: iomux from the request to the verdict (the SHA-256 verified by the receiver
 * included; the client's hashing of a file before a put is not, and is reported apart), the
 * baselines from the connection to the receiver's close (no hash at all).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { programPath } from './programs';
import { groupBy, ratio, spread, Spread } from './stats';

export const FILE_IMPLEMENTATIONS = ['iomux', 'node', 'c'] as const;
export type FileImplementation = (typeof FILE_IMPLEMENTATIONS)[number];
/** get-cold: the server has not hashed this version of the source yet (it does, before sending). */
export type FileDirection = 'put' | 'get' | 'get-cold';

export interface FilesOptions {
  /** The large file, in MiB. */
  sizeMiB: number;
  repeat: number;
  /** Concurrent uploads into one server, and the size of each, in MiB. */
  uploads: number;
  uploadMiB: number;
}

export interface FileSample {
  impl: FileImplementation;
  direction: FileDirection;
  repetition: number;
  bytes: number;
  /** The transfer, as its client measured it. */
  seconds: number;
  /** iomux only: the whole client command (process start, hashing before a put, exit). */
  commandSeconds: number | null;
  /** The server side's CPU time (user + system, all threads) for this transfer. */
  serverCpuSeconds: number;
}

export interface MemorySample {
  repetition: number;
  /** The server's resident set once listening, before any transfer. */
  baselineBytes: number;
  /** Its peak (VmHWM) after the large put and both gets. */
  peakBytes: number;
  /** Its peak after the concurrent uploads too. */
  peakAfterLoadBytes: number;
}

export interface LoadSample {
  repetition: number;
  uploads: number;
  /** Uploads the server stored with their SHA-256 verified. */
  verified: number;
  bytes: number;
  seconds: number;
  failures: string[];
}

export interface FileRow {
  impl: FileImplementation;
  direction: FileDirection;
  mbPerSec: Spread;
  /** iomux only: MB/s of the whole command. */
  commandMbPerSec: Spread | null;
  /** The server side's CPU seconds per GiB moved. */
  serverCpuPerGiB: Spread;
  toNode: number | null;
  toC: number | null;
}

export interface FilesResult {
  options: FilesOptions;
  notes: string[];
  samples: FileSample[];
  rows: FileRow[];
  memory: MemorySample[];
  load: LoadSample[];
  loadMbPerSec: Spread;
}

const MiB = 1024 * 1024;
const packageRoot = path.resolve(__dirname, '..', '..');
const cli = path.join(packageRoot, 'dist', 'tools', 'cli.js');
const TIMEOUT_MS = 600_000;

export function filesCellCount(o: FilesOptions): number {
  // c put/get, node put/get, iomux put/get-cold/get, the concurrent uploads.
  return o.repeat * 8;
}

/** A file of `bytes`: 1 MiB blocks of a pattern, each stamped with its index (no two blocks alike). */
function makeFile(file: string, bytes: number): void {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  const fd = fs.openSync(file, 'w');
  try {
    for (let at = 0; at < bytes; at += MiB) {
      block.writeUInt32LE(at / MiB, 0);
      fs.writeSync(fd, block, 0, Math.min(MiB, bytes - at));
    }
  } finally {
    fs.closeSync(fd);
  }
}

interface Ran {
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(file: string, args: string[]): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr, seconds: (performance.now() - started) / 1000 });
      else reject(new Error(`${path.basename(args[0] ?? file)} ${args.slice(1).join(' ')} failed (${code ?? signal}): ${stderr.trim() || stdout.trim()}`));
    });
  });
}

interface Listening {
  child: ChildProcess;
  port: number;
  /** Resolves with everything printed once it exits (0), rejects otherwise. */
  done: Promise<string>;
}

/** Starts a program that prints its port first (`{"port":N}` or `listening on HOST:PORT`). */
function listen(file: string, args: string[]): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let resolved = false;
    const done = new Promise<string>((ok, fail) => {
      child.once('close', (code, signal) => {
        if (code === 0) ok(stdout);
        else fail(new Error(`${path.basename(args[0] ?? file)} failed (${code ?? signal}): ${stderr.trim()}`));
      });
    });
    done.catch((err: Error) => {
      if (!resolved) reject(err);
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^\{"port":(\d+)\}$/m.exec(stdout) ?? /^listening on .*:(\d+)$/m.exec(stdout);
      if (m && !resolved) {
        resolved = true;
        resolve({ child, port: Number(m[1]), done });
      }
    });
  });
}

/** utime + stime of a live process, all threads, in seconds (/proc/PID/stat; CLK_TCK is 100 on Linux). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A field of /proc/PID/status, in bytes. */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  if (!line) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(/(\d+)\s*kB/.exec(line)![1]) * 1024;
}

/** One transfer through a pipe program (C or Node): the listener plays the server, the connecting side the client. */
async function pipeTransfer(impl: 'c' | 'node', direction: 'put' | 'get', source: string, target: string): Promise<{ seconds: number; serverCpuSeconds: number }> {
  const program = impl === 'c'
    ? { file: programPath('bench-file-pipe'), args: [] as string[] }
    : { file: process.execPath, args: [path.join(__dirname, 'node-file-pipe.js')] };
  const serverRole = direction === 'put' ? ['--recv', target] : ['--send', source];
  const clientRole = direction === 'put' ? ['--send', source] : ['--recv', target];
  const server = await listen(program.file, [...program.args, '--listen', ...serverRole]);
  const client = await run(program.file, [...program.args, '--connect', String(server.port), ...clientRole]);
  const last = (text: string) => JSON.parse(text.trim().split('\n').pop()!) as { bytes: number; seconds: number; cpuSeconds: number };
  const serverReport = last(await server.done);
  const report = last(client.stdout);
  const expected = fs.statSync(source).size;
  if (report.bytes !== expected || fs.statSync(target).size !== expected) throw new Error(`${impl} ${direction}: ${report.bytes} of ${expected} bytes`);
  return { seconds: report.seconds, serverCpuSeconds: serverReport.cpuSeconds };
}

/** The transfer time an `iomux files put/get` printed in its final line. */
function iomuxSeconds(ran: Ran, bytes: number): number {
  const m = /verified; (?:resumed at byte \d+, )?(\d+) bytes in ([\d.]+) s/.exec(ran.stdout);
  if (!m || Number(m[1]) !== bytes) throw new Error(`unexpected output: ${ran.stdout.trim()} ${ran.stderr.trim()}`);
  return Number(m[2]);
}

export async function runFiles(options: FilesOptions, onCell: (label: string) => void = () => {}): Promise<FilesResult> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-bench-files-'));
  const samples: FileSample[] = [];
  const memory: MemorySample[] = [];
  const load: LoadSample[] = [];
  const bytes = options.sizeMiB * MiB;
  try {
    const source = path.join(work, 'source.bin');
    const loadSource = path.join(work, 'load-source.bin');
    makeFile(source, bytes);
    makeFile(loadSource, options.uploadMiB * MiB);
    const target = path.join(work, 'received.bin');
    const served = path.join(work, 'served');
    const size = `${options.sizeMiB} MiB`;
    for (let repetition = 0; repetition < options.repeat; repetition++) {
      for (const impl of ['c', 'node'] as const) {
        for (const direction of ['put', 'get'] as const) {
          onCell(`${impl} ${direction} ${size}`);
          const { seconds, serverCpuSeconds } = await pipeTransfer(impl, direction, source, target);
          samples.push({ impl, direction, repetition, bytes, seconds, commandSeconds: null, serverCpuSeconds });
          fs.rmSync(target, { force: true });
        }
      }
      fs.rmSync(served, { recursive: true, force: true });
      fs.mkdirSync(served);
      const server = await listen(process.execPath, [cli, 'files', 'serve', '--dir', served, '--port', '0', '--quiet']);
      const pid = server.child.pid!;
      try {
        const to = `127.0.0.1:${server.port}`;
        const baselineBytes = statusBytes(pid, 'VmRSS');
        onCell(`iomux put ${size}`);
        let cpu = cpuSeconds(pid);
        const put = await run(process.execPath, [cli, 'files', 'put', source, '--to', to, '--name', 'put.bin', '--no-progress']);
        samples.push({ impl: 'iomux', direction: 'put', repetition, bytes, seconds: iomuxSeconds(put, bytes), commandSeconds: put.seconds,
          serverCpuSeconds: cpuSeconds(pid) - cpu });
        fs.rmSync(path.join(served, 'put.bin'));
        // A source the server has not hashed yet (a hard link: no copy), fetched twice.
        fs.linkSync(source, path.join(served, 'source.bin'));
        for (const direction of ['get-cold', 'get'] as const) {
          onCell(`iomux ${direction} ${size}`);
          cpu = cpuSeconds(pid);
          const get = await run(process.execPath, [cli, 'files', 'get', 'source.bin', '--from', to, '-o', target, '--no-progress']);
          samples.push({ impl: 'iomux', direction, repetition, bytes, seconds: iomuxSeconds(get, bytes), commandSeconds: get.seconds,
            serverCpuSeconds: cpuSeconds(pid) - cpu });
          fs.rmSync(target);
        }
        const peakBytes = statusBytes(pid, 'VmHWM');
        onCell(`iomux ${options.uploads} uploads of ${options.uploadMiB} MiB`);
        const loaded = await run(process.execPath, [path.join(__dirname, 'files-load.js'), '--port', String(server.port), '--file', loadSource,
          '--uploads', String(options.uploads)]);
        const report = JSON.parse(loaded.stdout.trim()) as Omit<LoadSample, 'repetition'>;
        load.push({ repetition, ...report });
        memory.push({ repetition, baselineBytes, peakBytes, peakAfterLoadBytes: statusBytes(pid, 'VmHWM') });
      } finally {
        server.child.kill('SIGTERM');
        await server.done.catch(() => undefined);
        fs.rmSync(served, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const notes = [
    `one file of ${options.sizeMiB} MiB over loopback TCP; rate = bytes / the transfer's seconds as its client measured them; the source is in the page cache, received files go to ${os.tmpdir()}`,
    'iomux: `iomux files put/get` against `iomux files serve` (one reactor, attached to Node\'s loop); its seconds run from the request to the verdict, the receiver\'s SHA-256 check included; "command MB/s" is the whole client process (start, hashing the file before a put, exit)',
    'iomux get-cold: the first request for a version of a file, which the server hashes before it answers (then caches); get: the same file again',
    'node: stream.pipeline(fs.createReadStream, socket) into a net socket piped into fs.createWriteStream (bench/node-file-pipe.ts); c: sendfile(2) into the socket, read(2) + write(2) out of it (bench/file-pipe.c); neither hashes',
    'server CPU s/GiB: user + system time of the server side (the receiver of a put, the sender of a get), all threads (iomux: the reactor and the hashing thread; Node: its thread pool too), per GiB moved; /proc ticks are 10 ms',
    `memory: the iomux server's VmRSS once listening, and its VmHWM (the kernel's peak) after the large put and gets, and after ${options.uploads} concurrent uploads`,
    `concurrency: ${options.uploads} uploads of ${options.uploadMiB} MiB at once from one client process into one server; seconds from the first request to the last verdict, hashing on the client included`,
  ];
  return { options, notes, samples, rows: summarize(samples), memory, load, loadMbPerSec: spread(load.map((l) => l.bytes / l.seconds / 1e6)) };
}

function summarize(samples: FileSample[]): FileRow[] {
  const rows: FileRow[] = [];
  for (const group of groupBy(samples, (s) => `${s.impl}|${s.direction}`).values()) {
    const { impl, direction } = group[0];
    const commands = group.filter((s) => s.commandSeconds !== null);
    rows.push({
      impl, direction,
      mbPerSec: spread(group.map((s) => s.bytes / s.seconds / 1e6)),
      commandMbPerSec: commands.length > 0 ? spread(commands.map((s) => s.bytes / s.commandSeconds! / 1e6)) : null,
      serverCpuPerGiB: spread(group.map((s) => s.serverCpuSeconds / (s.bytes / 2 ** 30))),
      toNode: null, toC: null,
    });
  }
  for (const row of rows) {
    const baseline = row.direction === 'put' ? 'put' : 'get';
    row.toNode = ratio(row.mbPerSec.median, rows.find((r) => r.impl === 'node' && r.direction === baseline)?.mbPerSec.median);
    row.toC = ratio(row.mbPerSec.median, rows.find((r) => r.impl === 'c' && r.direction === baseline)?.mbPerSec.median);
  }
  const order = (r: FileRow) => ['put', 'get', 'get-cold'].indexOf(r.direction) * 10 + FILE_IMPLEMENTATIONS.indexOf(r.impl);
  return rows.sort((a, b) => order(a) - order(b));
}
