/**
 * `iomux client`: the seed's interactive client on the blocking Socket API. It prints what the
 * server sends on connect, then sends each line typed and prints the reply; `q` quits.
 */
import * as readline from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import { SocketTimeoutError } from '../../lib/errors';
import { constants } from '../../lib/native';
import { Socket } from '../../lib/socket';

/** How long to wait for a first reply byte, and for the rest of a reply that arrives in pieces. */
const REPLY_TIMEOUT_MS = 5000;
const REPLY_SETTLE_MS = 50;

/** Receives whatever arrives within `firstMs`, then keeps reading while more follows within REPLY_SETTLE_MS. */
function receiveReply(socket: Socket, firstMs: number): Buffer | null {
  const parts: Buffer[] = [];
  socket.setTimeout(firstMs);
  try {
    for (;;) {
      const chunk = socket.recv(65536);
      if (chunk.length === 0) return parts.length > 0 ? Buffer.concat(parts) : null;
      parts.push(chunk);
      socket.setTimeout(REPLY_SETTLE_MS);
    }
  } catch (err) {
    if (!(err instanceof SocketTimeoutError)) throw err;
  }
  return Buffer.concat(parts);
}

export function register(program: Command): void {
  program
    .command('client')
    .description('The seed\'s interactive client: prints the greeting, sends each line, prints the reply; q quits')
    .option('--host <host>', 'server address', '127.0.0.1')
    .requiredOption('-p, --port <port>', 'server port', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('port must be 1..65535');
      return n;
    })
    .action(async (flags: { host: string; port: number }) => {
      const family = flags.host.includes(':') ? constants.AF_INET6 : constants.AF_INET;
      const socket = new Socket(family);
      try {
        socket.connect(flags.host, flags.port);
        const greeting = receiveReply(socket, 200);
        if (greeting && greeting.length > 0) process.stdout.write(`${greeting.toString()}\n`);
        const lines = readline.createInterface({ input: process.stdin, terminal: false });
        for await (const line of lines) {
          if (line === 'q') break;
          if (line.length === 0) continue; // Nothing to send, so nothing would come back.
          // As the seed's client: the line as typed, no newline (the echo server replies per chunk).
          socket.sendAll(line);
          const reply = receiveReply(socket, REPLY_TIMEOUT_MS);
          if (reply === null) {
            process.stdout.write('(the server closed the connection)\n');
            break;
          }
          process.stdout.write(reply.toString().replace(/\n$/, '') + '\n');
        }
        lines.close();
      } finally {
        socket.close();
      }
    });
}
