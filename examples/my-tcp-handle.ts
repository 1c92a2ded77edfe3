#!/usr/bin/env node
/**
 * The seed's socketserver example on iomux: `MyTCPHandle`, a handler written as blocking code —
 * recv, print, send back upper-cased, until the client leaves — served by a ThreadingServer, so
 * every client gets a thread of its own and a slow one holds up nobody.
 *
 *   node dist/examples/my-tcp-handle.js --port 9999 [--host 127.0.0.1] [--max-threads 16]
 *
 * In Python it was:
 *
 *   class MyTCPHandle(socketserver.BaseRequestHandler):
 *       def setup(self): print("before handle, connection established:", self.client_address)
 *       def handle(self):
 *           while True:
 *               data = self.request.recv(1024)
 *               if not data: print("connection lost"); break
 *               print("{} sent: {}".format(self.client_address, data))
 *               self.request.sendall(data.upper())
 *       def finish(self): print("finish run after handle")
 *
 *   server = socketserver.ThreadingTCPServer((HOST, PORT), MyTCPHandle)
 *   server.serve_forever()
 *
 * It prints `listening on HOST:PORT` before the first accept; SIGINT/SIGTERM shut it down.
 */
import { Command } from 'commander';
import { isMainThread } from 'node:worker_threads';
import { BaseRequestHandler, ThreadingServer } from '../lib/index';
import { DEFAULT_HOST, DEFAULT_PORT, formatEndpoint, parsePort, parsePositive } from './endpoint';

export class MyTCPHandle extends BaseRequestHandler {
  /** Worker threads load the handler from this file. */
  static module = __filename;

  private get who(): string {
    return formatEndpoint(this.clientAddress.address, this.clientAddress.port);
  }

  override setup(): void {
    console.log(`before handle, connection established: ${this.who}`);
  }

  override handle(): void {
    for (;;) {
      let data: Buffer;
      try {
        data = this.request.recv(1024);
      } catch (err) {
        console.log(`${this.who} err ${(err as Error).message}`); // a reset: the client is gone
        break;
      }
      if (data.length === 0) {
        console.log(`${this.who} connection lost`);
        break;
      }
      console.log(`${this.who} sent: ${JSON.stringify(data.toString())}`);
      this.request.sendAll(data.toString().toUpperCase());
    }
  }

  override finish(): void {
    console.log(`finish run after handle: ${this.who}`);
  }
}

export function main(argv: string[] = process.argv): void {
  const program = new Command('my-tcp-handle')
    .description('The seed\'s socketserver example: each client on a worker thread, its bytes sent back upper-cased')
    .option('--host <address>', 'address to listen on', DEFAULT_HOST)
    .option('--port <port>', 'port to listen on (0: any free port, printed on start)', parsePort, DEFAULT_PORT)
    .option('--max-threads <count>', 'clients served at once (more wait, then are refused)', parsePositive, 16)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ host: string; port: number; maxThreads: number }>();
  const server = new ThreadingServer({ host: opts.host, port: opts.port }, MyTCPHandle, { maxThreads: opts.maxThreads });
  const { address, port } = server.serverAddress;
  console.log(`listening on ${formatEndpoint(address, port)}`);
  const stop = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    void server.shutdown().then(() => server.serverClose());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  void server.serveForever();
}

// Worker threads load this file for the class alone.
if (require.main === module && isMainThread) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`my-tcp-handle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
