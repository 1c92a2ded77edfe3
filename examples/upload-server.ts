#!/usr/bin/env node
/**
 * The seed's file upload server, as the seed wrote it, on iomux's blocking Socket. Kept as an
 * example of what NOT to ship: it works on a quiet loopback, by luck. `iomux files serve` is the
 * tool done right (docs/file-transfer.md).
 *
 * Per connection: `size = int(recv(1024))`, echo the size back ("to solve the sticky-packet
 * problem"), then append recv(1024) chunks to the file until `size` bytes have come or the client
 * goes away. Why it is fragile:
 *
 * - The header is whatever the first recv returns. TCP keeps no message boundaries: if the size and
 *   the first bytes of the file arrive together, the recv(1024) swallows them (or int() fails on
 *   them). The echo round trip only hides this as long as the client waits for it. See it happen:
 *   `iomux trace sticky-packets` (docs/readiness-lab.md): 1019 bytes of the file vanish into a
 *   5-byte header.
 * - A resumed upload appends from wherever the client *thinks* the server stopped; the server never
 *   says what it holds, so a lost or duplicated chunk goes unnoticed.
 * - Nothing checks the result: no hash, no final size check, no atomic rename. A half-written file
 *   looks like a finished one.
 *
 *   node dist/examples/upload-server.js --dir DIR [--port 9999] [--connections N]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { Socket } from '../lib/index';
import { DEFAULT_HOST, DEFAULT_PORT, formatEndpoint, parsePort, parsePositive } from './endpoint';
import { listenOn } from './greeting-server';

/** The seed's one destination: every upload appends to this file in DIR. */
export const DESTINATION = 'upload.bin';

/** The seed's header read: the first recv(1024), taken whole as the decimal size (Python's int()). */
function readSize(conn: Socket): number {
  const header = conn.recv(1024).toString();
  if (!/^\d+$/.test(header)) throw new Error(`invalid literal for int() with base 10: ${JSON.stringify(header.slice(0, 40))}`);
  return Number(header);
}

/** One upload: size, echo, then append until `size` bytes or the end of the stream. Returns bytes stored. */
export function receiveUpload(conn: Socket, file: string): { size: number; stored: number } {
  const size = readSize(conn);
  conn.sendAll(String(size));
  const fd = fs.openSync(file, 'a');
  let stored = 0;
  try {
    while (stored < size) {
      const data = conn.recv(1024);
      if (data.length === 0) break; // The client went away: the seed keeps what it got, and says nothing.
      fs.writeSync(fd, data);
      stored += data.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size, stored };
}

export function main(argv: string[] = process.argv): void {
  const program = new Command('upload-server')
    .description('The seed\'s naive upload server: size, echo, then append the data (fragile on purpose: see iomux trace sticky-packets)')
    .requiredOption('--dir <dir>', `where ${DESTINATION} is written`)
    .option('--host <address>', 'IPv4 or IPv6 address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port (0 picks a free one)', parsePort, DEFAULT_PORT)
    .option('--connections <n>', 'stop after this many connections (default: serve forever)', parsePositive)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ dir: string; host: string; port: number; connections?: number }>();
  const listener = listenOn(opts.host, opts.port);
  const { address, port } = listener.getsockname();
  process.stdout.write(`listening on ${formatEndpoint(address, port)}\n`);
  const file = path.join(opts.dir, DESTINATION);
  try {
    for (let served = 0; served < (opts.connections ?? Infinity); served++) {
      const [conn] = listener.accept();
      try {
        const { size, stored } = receiveUpload(conn, file);
        process.stdout.write(`received ${stored} of ${size} bytes, appended to ${file}\n`);
      } catch (err) {
        process.stdout.write(`upload failed: ${(err as Error).message}\n`);
      } finally {
        conn.close();
      }
    }
  } finally {
    listener.close();
  }
}

if (require.main === module) main();
