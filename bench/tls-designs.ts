/**
 * The measurement behind TLS's design (docs/ARCHITECTURE.md, "TLS"): one 1 GiB transfer each way
 * over one TLS connection, served by
 *
 * - `adapter`: design (a) — a stream.Duplex over an iomux Connection, handed to Node's own
 *   `tls.TLSSocket` (attached reactor; it cannot work under a blocking run(), see below);
 * - `engine`: design (b) — TlsConnection, the addon driving Node's OpenSSL on memory BIOs, attached;
 * - `engine-run`: the same on a reactor blocking its thread in run();
 * - `node-tls`: Node's own `tls.createServer` (libuv sockets, TLSWrap): what a Node user has today;
 * - `plain`: iomux without TLS (sendfile out, recv in): the transport's own cost.
 *
 * The client is Node's `tls` in this process; each server runs in a process of its own and reports
 * its CPU time (user + system) from accept to close. Rounds interleave the servers, so the machine's
 * noise falls on all of them alike; the table gives medians.
 *
 *   node dist/bench/tls-designs.js [--mib 1024] [--rounds 3] [--json FILE]
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { Connection } from '../lib/stream/connection';
import { Listener } from '../lib/stream/listener';
import { TlsConnection } from '../lib/stream/tls-connection';
import { TlsContext } from '../lib/stream/tls-context';
import { Reactor } from '../lib/reactor';
import { makeSelfSigned } from '../tools/tls-cert';

export const DESIGNS = ['adapter', 'engine', 'engine-run', 'node-tls', 'plain'] as const;
export type Design = typeof DESIGNS[number];
type Direction = 'upload' | 'download';

const READ_SIZE = 256 * 1024;

interface ServerReport {
  bytes: number;
  cpuMs: number;
}

export interface DesignResult {
  design: Design;
  direction: Direction;
  /** MB/s (10^6 bytes) of the whole transfer, handshake included, as the client saw it. */
  mbps: number;
  /** The server's CPU milliseconds per MB. */
  cpuMsPerMB: number;
}

// ---- the server side (a child process: `--server design direction dir file`) ----

/** Design (a): a Duplex whose bytes are an iomux Connection's, for tls.TLSSocket. */
function duplexOver(conn: Connection): Duplex {
  let drained: (() => void) | null = null;
  const duplex = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (conn.closed) {
        callback(new Error('closed'));
        return;
      }
      if (conn.write(chunk)) callback();
      else drained = callback;
    },
    read() {
      conn.resume();
    },
    final(callback) {
      conn.end();
      callback();
    },
    destroy(err, callback) {
      conn.destroy();
      callback(err);
    },
  });
  conn.onData = (view) => {
    if (!duplex.push(Buffer.from(view))) conn.pause(); // The view is the shared read buffer: copied.
  };
  conn.onDrain = () => {
    const callback = drained;
    drained = null;
    callback?.();
  };
  conn.onEnd = () => {
    duplex.push(null);
  };
  return duplex;
}

/** Node's streams (designs a and node-tls): count an upload, or pipe the file out. */
function serveNodeSocket(socket: tls.TLSSocket, direction: Direction, file: string, report: (bytes: number) => void): void {
  let bytes = 0;
  socket.on('error', () => undefined);
  if (direction === 'upload') {
    socket.on('data', (data: Buffer) => {
      bytes += data.length;
    });
    socket.on('end', () => socket.end());
  } else {
    socket.resume();
    const stream = fs.createReadStream(file, { highWaterMark: READ_SIZE });
    stream.on('data', (chunk) => {
      bytes += chunk.length;
    });
    stream.pipe(socket);
  }
  socket.on('close', () => report(bytes));
}

export function runServer(design: Design, direction: Direction, certDir: string, file: string): void {
  const cert = fs.readFileSync(path.join(certDir, 'cert.pem'));
  const key = fs.readFileSync(path.join(certDir, 'key.pem'));
  let start = process.cpuUsage();
  const report = (bytes: number): void => {
    const used = process.cpuUsage(start);
    const result: ServerReport = { bytes, cpuMs: (used.user + used.system) / 1000 };
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  };
  const announce = (port: number): void => {
    process.stdout.write(`${port}\n`);
  };
  if (design === 'node-tls') {
    const server = tls.createServer({ cert, key }, (socket) => {
      server.close();
      serveNodeSocket(socket, direction, file, report);
    });
    server.on('connection', () => {
      start = process.cpuUsage();
    });
    server.listen(0, '127.0.0.1', () => announce((server.address() as net.AddressInfo).port));
    return;
  }
  const reactor = new Reactor();
  const context = design === 'plain' ? null : TlsContext.server({ cert, key });
  const secureContext = design === 'adapter' ? tls.createSecureContext({ cert, key }) : null;
  const listener = new Listener(reactor, { endpoint: { port: 0 }, connection: { readSize: READ_SIZE } }, (conn) => {
    start = process.cpuUsage();
    listener.close();
    if (design === 'adapter') {
      const socket = new tls.TLSSocket(duplexOver(conn), { isServer: true, secureContext: secureContext! });
      serveNodeSocket(socket, direction, file, (bytes) => report(bytes));
      return;
    }
    const stream = design === 'plain' ? conn : TlsConnection.server(conn, { context: context! });
    let bytes = 0;
    stream.onData = (data: Buffer) => {
      bytes += data.length;
    };
    stream.onClose = () => {
      if (direction === 'download') bytes = stream.bytesWritten;
      reactor.stop();
      report(bytes);
    };
    if (direction === 'download') {
      const fd = fs.openSync(file, 'r');
      stream.sendFile(fd, 0, fs.fstatSync(fd).size, () => stream.end());
    }
  });
  announce(listener.listen().port);
  if (design === 'engine-run') reactor.run();
  else reactor.attach();
}

// ---- the client side and the rounds ----

function startServer(design: Design, direction: Direction, certDir: string, file: string): Promise<{ child: ChildProcess; port: number; done: Promise<ServerReport> }> {
  const child = spawn(process.execPath, [__filename, '--server', design, direction, certDir, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    let resolveDone: (report: ServerReport) => void;
    const done = new Promise<ServerReport>((res) => {
      resolveDone = res;
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const lines = text.split('\n');
      if (lines.length > 1 && /^\d+$/.test(lines[0])) resolve({ child, port: Number(lines[0]), done });
      if (lines.length > 2 && lines[1].startsWith('{')) resolveDone(JSON.parse(lines[1]) as ServerReport);
    });
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`the ${design} server exited with ${code}`));
    });
  });
}

function clientTransfer(design: Design, direction: Direction, port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const socket = design === 'plain' ? net.connect(port, '127.0.0.1') : tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    socket.on('error', reject);
    let received = 0;
    socket.on('data', (data: Buffer) => {
      received += data.length;
    });
    socket.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (direction === 'download' && received !== bytes) reject(new Error(`${design}: received ${received} of ${bytes} bytes`));
      else resolve(bytes / 1e6 / seconds);
    });
    if (direction === 'download') return;
    const chunk = Buffer.alloc(READ_SIZE, 0x5a);
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    socket.once(design === 'plain' ? 'connect' : 'secureConnect', pump);
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export async function measureDesigns(options: { mib: number; rounds: number; designs?: readonly Design[]; progress?: (line: string) => void }): Promise<DesignResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-tls-designs-'));
  try {
    const { cert, key } = makeSelfSigned({}, 'bench');
    fs.writeFileSync(path.join(dir, 'cert.pem'), cert);
    fs.writeFileSync(path.join(dir, 'key.pem'), key);
    const bytes = options.mib * 1024 * 1024;
    const file = path.join(dir, 'payload');
    const fd = fs.openSync(file, 'w');
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < options.mib; i++) fs.writeSync(fd, require('node:crypto').randomFillSync(block));
    fs.closeSync(fd);
    const samples = new Map<string, { mbps: number[]; cpu: number[] }>();
    const designs = options.designs ?? DESIGNS;
    for (let round = 1; round <= options.rounds; round++) {
      for (const design of designs) {
        for (const direction of ['upload', 'download'] as const) {
          const server = await startServer(design, direction, dir, file);
          const mbps = await clientTransfer(design, direction, server.port, bytes);
          const report = await server.done;
          if (report.bytes !== bytes) throw new Error(`${design} ${direction}: the server counted ${report.bytes} of ${bytes} bytes`);
          const key = `${design} ${direction}`;
          const entry = samples.get(key) ?? { mbps: [], cpu: [] };
          entry.mbps.push(mbps);
          entry.cpu.push(report.cpuMs / (bytes / 1e6));
          samples.set(key, entry);
          options.progress?.(`round ${round}/${options.rounds} ${key}: ${mbps.toFixed(0)} MB/s, server ${(report.cpuMs / (bytes / 1e6)).toFixed(3)} CPU ms/MB`);
        }
      }
    }
    return [...samples].map(([key, entry]) => {
      const [design, direction] = key.split(' ') as [Design, Direction];
      return { design, direction, mbps: median(entry.mbps), cpuMsPerMB: median(entry.cpu) };
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatDesigns(results: readonly DesignResult[]): string {
  const lines = ['| server | direction | MB/s | server CPU ms/MB | CPU vs engine |', '|---|---|---:|---:|---:|'];
  for (const result of results) {
    const engine = results.find((r) => r.design === 'engine' && r.direction === result.direction);
    const ratio = engine ? (result.cpuMsPerMB / engine.cpuMsPerMB).toFixed(2) : '';
    lines.push(`| ${result.design} | ${result.direction} | ${result.mbps.toFixed(0)} | ${result.cpuMsPerMB.toFixed(3)} | ${ratio} |`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--server') {
    runServer(argv[1] as Design, argv[2] as Direction, argv[3], argv[4]);
    return;
  }
  const option = (name: string, fallback: number): number => {
    const at = argv.indexOf(name);
    return at >= 0 ? Number(argv[at + 1]) : fallback;
  };
  const jsonAt = argv.indexOf('--json');
  const results = await measureDesigns({
    mib: option('--mib', 1024), rounds: option('--rounds', 3), progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatDesigns(results)}\n`);
  if (jsonAt >= 0) fs.writeFileSync(argv[jsonAt + 1], JSON.stringify(results, null, 2));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
