/**
 * Node's idiomatic echo server, the benchmark's everyday baseline: `net` with `socket.pipe(socket)`
 * (the example in Node's own documentation), with TCP_NODELAY like every other server measured.
 *
 *   node dist/bench/node-echo-server.js [--host 127.0.0.1] [--port 0]
 *
 * Prints "listening on HOST:PORT" when ready; SIGTERM/SIGINT close it and print "stats {...}".
 */
import * as net from 'node:net';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option('--host', '127.0.0.1');
const port = Number(option('--port', '0'));
let accepted = 0;

const server = net.createServer({ noDelay: true }, (socket) => {
  accepted++;
  socket.on('error', () => socket.destroy()); // a reset peer is normal at the end of a run
  socket.pipe(socket);
});

server.listen(port, host, () => {
  const address = server.address() as net.AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(`listening on ${shown}:${address.port}\n`);
});

const stop = () => {
  process.stdout.write(`stats ${JSON.stringify({ accepted })}\n`);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
