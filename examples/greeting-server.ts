#!/usr/bin/env node
/**
 * The seed's first example on iomux's blocking Socket: a TCP server that greets each client,
 * answers every line with that line plus a suffix until the client sends `q`, then closes that
 * client and serves the next. One client at a time, like the original: every call blocks.
 *
 *   node dist/examples/greeting-server.js --port 0 [--host ::1] [--suffix ' 好好'] [--clients 2]
 *
 * It prints `listening on HOST:PORT` (the real port when --port is 0) before the first accept.
 */
import { Command } from 'commander';
import { constants, Socket } from '../lib/index';
import { DEFAULT_HOST, DEFAULT_PORT, familyOf, formatEndpoint, parsePort, parsePositive } from './endpoint';
import { LineReader } from './line-reader';

export const GREETING = 'Welcome to iomux!';
export const QUIT = 'q';

export interface GreetingServerOptions {
  host: string;
  port: number;
  /** Appended to every line the client sends. */
  suffix: string;
  /** Stop after serving this many clients (default: serve forever). */
  clients: number;
  /** Where progress lines go (`listening on …`, connects, departures). */
  log: (line: string) => void;
}

/** A listening socket; SO_REUSEADDR so a restarted server can bind while old connections linger in TIME_WAIT. */
export function listenOn(host: string, port: number): Socket {
  const listener = new Socket(familyOf(host), constants.SOCK_STREAM);
  try {
    listener.setsockopt(constants.SOL_SOCKET, constants.SO_REUSEADDR, true);
    listener.bind(host, port);
    listener.listen();
    return listener;
  } catch (err) {
    listener.close();
    throw err;
  }
}

/** One client's session: the greeting, then a reply per line until `q` or the end of its stream. */
export function serveClient(conn: Socket, suffix: string): void {
  conn.sendAll(`${GREETING}\n`);
  const lines = new LineReader(conn);
  for (let line = lines.readLine(); line !== null && line !== QUIT; line = lines.readLine()) {
    conn.sendAll(`${line}${suffix}\n`);
  }
}

export function runServer(options: GreetingServerOptions): void {
  const listener = listenOn(options.host, options.port);
  try {
    const { address, port } = listener.getsockname();
    options.log(`listening on ${formatEndpoint(address, port)}`);
    for (let served = 0; served < options.clients; served++) {
      const [conn, peer] = listener.accept();
      const who = formatEndpoint(peer.address, peer.port);
      options.log(`${who} connected`);
      try {
        serveClient(conn, options.suffix);
        options.log(`${who} left`);
      } catch (err) {
        // One client's failure (a reset, an endless line) must not stop the server.
        options.log(`${who} dropped: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        conn.close();
      }
    }
  } finally {
    listener.close();
  }
}

export function main(argv: string[] = process.argv): void {
  const program = new Command('greeting-server')
    .description('A blocking TCP server that greets each client and answers every line with a suffix until "q"')
    .option('--host <address>', 'IPv4 or IPv6 address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port to listen on (0: any free port, printed on start)', parsePort, DEFAULT_PORT)
    .option('--suffix <text>', 'appended to every line the client sends', ' hello')
    .option('--clients <count>', 'exit after serving this many clients', parsePositive)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ host: string; port: number; suffix: string; clients?: number }>();
  runServer({
    host: opts.host,
    port: opts.port,
    suffix: opts.suffix,
    clients: opts.clients ?? Infinity,
    // Synchronous on Linux pipes, files and terminals, so each line is out before the next blocking accept.
    log: (line) => process.stdout.write(`${line}\n`),
  });
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`greeting-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
