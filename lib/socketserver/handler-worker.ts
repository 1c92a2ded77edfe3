/**
 * A ThreadingServer worker thread: loads the handler class from its module once, then serves one
 * connection per message — blocking, as handlers are written — and reports when it is done. The
 * descriptor arrives by number; the ownership slot says whether this thread may still close it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { binding } from '../native';
import { OwnershipSlot } from './ownership';
import { loadHandler } from './handler-module';
import { describeHandlerError, runHandler } from './request-handler';
import { RequestSocket } from './request-socket';
import type { WorkerData, WorkerJob, WorkerReport } from './worker-protocol';

function main(): void {
  const port = parentPort!;
  const { module, exportName, slot: slotMemory, serverAddress } = workerData as WorkerData;
  const Handler = loadHandler(module, exportName);
  const slot = new OwnershipSlot(slotMemory);
  const server = Object.freeze({ serverAddress });
  const release = (fd: number) => {
    // Reclaimed by the main thread (grace period over): the number is its to close, not ours.
    if (!slot.release()) return;
    try {
      binding.close(fd);
    } finally {
      slot.closed();
    }
  };
  port.on('message', ({ fd, peer }: WorkerJob) => {
    let request: RequestSocket | null = null;
    let error: unknown = null;
    try {
      request = new RequestSocket(fd, peer, release);
    } catch (err) {
      error = err;
    }
    if (request === null) {
      release(fd);
    } else {
      error = runHandler(Handler, request, peer, server);
      request.finish();
    }
    const report: WorkerReport = { type: 'done', error: error === null ? null : describeHandlerError(peer, error) };
    port.postMessage(report);
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReport);
}

main();
