/**
 * Node's idiomatic file transfer, the file benchmark's everyday baseline: `stream.pipeline` of
 * `fs.createReadStream` into a `net` socket on one side, and of the socket into `fs.createWriteStream`
 * on the other. No framing, no hash, no resume. Same interface and output as bench/file-pipe.c:
 *
 *   node dist/bench/node-file-pipe.js --listen [--port 0] (--send FILE | --recv FILE)
 *   node dist/bench/node-file-pipe.js --connect PORT       (--send FILE | --recv FILE)
 *
 * The listening side prints {"port":N} and serves one connection. The sender's time runs from the
 * connection to the receiver's close (the receiver closes once its file is written), so it covers
 * the last write. Each side prints {"role":..., "bytes":N, "seconds":S, "cpuSeconds":C}, C being the
 * whole process's user + system time (its thread pool's writes included).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { pipeline } from 'node:stream/promises';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : undefined;
}

const listening = process.argv.includes('--listen');
const sendPath = option('--send');
const recvPath = option('--recv');
if ((sendPath === undefined) === (recvPath === undefined)) throw new Error('give one of --send FILE or --recv FILE');

async function transfer(socket: net.Socket): Promise<void> {
  socket.setNoDelay(true);
  const started = performance.now();
  let bytes: number;
  if (sendPath !== undefined) {
    bytes = fs.statSync(sendPath).size;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.resume(); // The receiver sends nothing; its end must still be read.
    await pipeline(fs.createReadStream(sendPath), socket);
    await closed;
  } else {
    await pipeline(socket, fs.createWriteStream(recvPath!));
    bytes = fs.statSync(recvPath!).size;
    socket.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(`${JSON.stringify({ role: sendPath !== undefined ? 'send' : 'recv', bytes, seconds, cpuSeconds })}\n`);
}

if (listening) {
  const server = net.createServer((socket) => {
    server.close();
    transfer(socket).catch((err: Error) => {
      process.stderr.write(`node-file-pipe: ${err.message}\n`);
      process.exitCode = 2;
    });
  });
  server.listen(Number(option('--port') ?? '0'), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
  });
} else {
  const socket = net.connect(Number(option('--connect')), '127.0.0.1', () => {
    transfer(socket).catch((err: Error) => {
      process.stderr.write(`node-file-pipe: ${err.message}\n`);
      process.exitCode = 2;
    });
  });
}
