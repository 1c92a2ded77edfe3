/**
 * `iomux serve` in blocking mode: the echo server's reactor runs() on this worker thread, so
 * the main thread stays free to receive signals; it wakes us through a Waker descriptor.
 *
 * As one of several reactor threads (ThreadedEchoServer, `workerData.thread`), a wake-up carries
 * commands in a shared word: report the stats, stop, or adopt connections another thread handed
 * over. A reactor blocked in its wait cannot take messages, so the Waker is how others reach it;
 * replies go back by postMessage, which never blocks.
 */
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { binding } from '../native';
import { EVENT_READ } from '../selectors/selector';
import { ConnectionBalancer } from './connection-balancer';
import { EchoServer } from './server';
import { COMMAND_ADOPT, COMMAND_STATS, COMMAND_STOP, postCommand, ServeWorkerData, ServeWorkerMessage } from './serve-protocol';

export type { ServeWorkerData, ServeWorkerMessage } from './serve-protocol';

function post(message: ServeWorkerMessage): void {
  parentPort?.postMessage(message);
}

/** This thread's kernel id (Linux: /proc/thread-self), so a benchmark can read its CPU time alone. */
function kernelThreadId(): number | null {
  try {
    return Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return null;
  }
}

const ONE = Buffer.from([1]);

function main(): void {
  const { options, stopFd, graceMs, thread } = workerData as ServeWorkerData;
  const control = thread === undefined ? null : new Int32Array(thread.control);
  const balancer = thread?.balancer ? new ConnectionBalancer(thread.balancer, thread.count, thread.index, (target) => {
    postCommand(control!, target, COMMAND_ADOPT);
    binding.send(thread.wakeFds[target], ONE); // A full wake-up socket is readable already: would-block loses nothing.
  }) : null;
  const server = new EchoServer({ ...options, balancer: balancer ?? undefined, log: (line) => post({ type: 'log', line }) });
  const { reactor } = server;
  const stats = (final?: boolean): ServeWorkerMessage => ({ type: 'stats', stats: server.stats, final, handedOff: balancer?.handedOff });
  post({ type: 'listening', address: server.listen(), tid: kernelThreadId() });
  const drainScratch = Buffer.alloc(64);
  const stop = () => {
    reactor.remove(stopFd);
    // Connections handed to us and not yet adopted were never served: nobody else will close them.
    for (const fd of balancer?.close() ?? []) binding.close(fd);
    const force = reactor.setTimeout(() => server.close(), control === null ? graceMs : Atomics.load(control, 2 * thread!.index + 1));
    server.shutdown(() => reactor.clearTimer(force));
    post({ type: 'stopped-accepting' });
  };
  reactor.add(stopFd, EVENT_READ, () => {
    while (binding.recv(stopFd, drainScratch) > 0) {
      // Drain the wake-up bytes.
    }
    const command = control === null ? COMMAND_STOP : Atomics.exchange(control, 2 * thread!.index, 0);
    if (command & COMMAND_ADOPT && balancer !== null) for (const fd of balancer.takeHandedIn()) server.adopt(fd);
    if (command & COMMAND_STATS) post(stats());
    if (command & COMMAND_STOP) stop();
  });
  reactor.run();
  post(stats(true));
  server.close();
}

main();
