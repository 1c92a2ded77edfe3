/**
 * `iomux serve` in blocking mode: the echo server's reactor runs() on this worker thread, so
 * the main thread stays free to receive signals; it wakes us through a Waker descriptor.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { binding } from '../native';
import { EVENT_READ } from '../selectors/selector';
import { EchoServer, EchoServerOptions, EchoStats } from './server';

export interface ServeWorkerData {
  options: Omit<EchoServerOptions, 'reactor' | 'log'>;
  /** Readable when the main thread wants a graceful stop. */
  stopFd: number;
  /** Milliseconds to let queues flush before closing anyway. */
  graceMs: number;
}

export type ServeWorkerMessage =
  | { type: 'listening'; address: { family: string; address: string; port: number } }
  | { type: 'log'; line: string }
  | { type: 'stats'; stats: EchoStats };

function post(message: ServeWorkerMessage): void {
  parentPort?.postMessage(message);
}

function main(): void {
  const { options, stopFd, graceMs } = workerData as ServeWorkerData;
  const server = new EchoServer({ ...options, log: (line) => post({ type: 'log', line }) });
  const { reactor } = server;
  post({ type: 'listening', address: server.listen() });
  const drainScratch = Buffer.alloc(64);
  reactor.add(stopFd, EVENT_READ, () => {
    while (binding.recv(stopFd, drainScratch) > 0) {
      // Drain the wake-up bytes.
    }
    reactor.remove(stopFd);
    const force = reactor.setTimeout(() => server.close(), graceMs);
    server.shutdown(() => reactor.clearTimer(force));
  });
  reactor.run();
  post({ type: 'stats', stats: server.stats });
  server.close();
}

main();
