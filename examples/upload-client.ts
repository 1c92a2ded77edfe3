#!/usr/bin/env node
/**
 * The seed's file upload client, as the seed wrote it, on iomux's blocking Socket: it sends the
 * file's size, waits for the server to echo it ("to solve the sticky-packet problem"), sends ONE
 * line and breaks off to simulate an interruption; then it reconnects and resumes from a seek to
 * where it *believes* the server stopped. Kept as an example of what not to ship: `iomux files put`
 * is the tool done right (docs/file-transfer.md).
 *
 * Why it works only by luck:
 * - The echo wait is all that keeps the size and the data apart: without it (or with a client that
 *   pipelines), both arrive in the server's recv(1024) and the header swallows the data. Watch it
 *   happen with exact counts: `iomux trace sticky-packets`.
 * - The resume offset is the client's own guess (the bytes it handed to send()), not what the
 *   server stored: data still in flight when the connection broke is simply lost.
 * - Nothing verifies the result; the server cannot tell a whole file from a truncated one.
 *
 *   node dist/examples/upload-client.js FILE [--host 127.0.0.1] [--port 9999]
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { constants, Socket } from '../lib/index';
import { DEFAULT_HOST, DEFAULT_PORT, familyOf, parsePort } from './endpoint';

function connect(host: string, port: number): Socket {
  const sock = new Socket(familyOf(host), constants.SOCK_STREAM);
  sock.connect(host, port);
  return sock;
}

/** The seed's handshake: send the size, wait for the echo. */
function announce(sock: Socket, size: number): void {
  sock.sendAll(String(size));
  sock.recv(1024);
}

export function upload(file: string, host: string, port: number, log: (line: string) => void): void {
  const content = fs.readFileSync(file);
  const firstLine = content.subarray(0, content.indexOf(0x0a) + 1 || content.length);

  // First attempt: one line, then "the connection breaks".
  let sock = connect(host, port);
  announce(sock, content.length);
  sock.sendAll(firstLine);
  sock.close();
  const guess = firstLine.length;
  log(`sent one line (${guess} bytes), then broke off to simulate an interruption`);

  // Resume: the client seeks to its own guess of what the server holds, and sends the rest.
  sock = connect(host, port);
  announce(sock, content.length - guess);
  sock.sendAll(content.subarray(guess));
  sock.close();
  log(`resumed from byte ${guess} (the client's guess; the server was never asked) and sent ${content.length - guess} bytes`);
}

export function main(argv: string[] = process.argv): void {
  const program = new Command('upload-client')
    .description('The seed\'s naive upload client: size, echo, one line, "interruption", resume from its own guess')
    .argument('<file>', 'the file to upload')
    .option('--host <address>', 'server address', DEFAULT_HOST)
    .option('--port <port>', 'server port', parsePort, DEFAULT_PORT)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ host: string; port: number }>();
  upload(program.args[0], opts.host, opts.port, (line) => process.stdout.write(`${line}\n`));
}

if (require.main === module) main();
