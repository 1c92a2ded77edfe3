/**
 * One thundering-herd worker thread: its own watcher on the shared listening socket. When woken it
 * counts the wake-up, waits for the main thread to open the accept phase (so every worker the kernel
 * woke has had the chance to notice), tries one accept, and reports what it got.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { binding } from '../../lib/native';
import { isSystemError } from '../../lib/errors';
import { openWatcher } from './mechanisms';
import type { Row } from './model';
import {
  ACCEPTED, ACCEPTING, DONE, IN_WAIT, PHASE, ROUND, STOP, WOKEN, bump, waitUntil,
  type HerdMessage, type HerdWorkerData,
} from './herd-protocol';
import { Timeline } from './timeline';

function main(data: HerdWorkerData): void {
  const port = parentPort;
  if (!port) throw new Error('herd-worker runs only as a worker thread');
  const post = (message: HerdMessage): void => port.postMessage(message);
  const control = new Int32Array(data.control);
  const timeline = new Timeline(BigInt(data.origin));
  const interest = { read: true };
  let watcher;
  try {
    watcher = openWatcher(data.variant);
    watcher.add(data.listenFd, interest);
  } catch (err) {
    watcher?.close();
    post({ type: 'refused', message: describeError(err) });
    return;
  }
  const rows: Row[] = [];
  try {
    post({ type: 'ready' });
    bump(control, IN_WAIT);
    let lastRound = Atomics.load(control, ROUND);
    let lastProgress = Date.now();
    while (Atomics.load(control, STOP) === 0) {
      const ready = watcher.wait(data.sliceMs);
      const round = Atomics.load(control, ROUND);
      if (round !== lastRound) {
        lastRound = round;
        lastProgress = Date.now();
      }
      if (ready.length === 0) {
        if (Date.now() - lastProgress > data.idleLimitMs) break;
        continue;
      }
      const t = timeline.elapsed();
      bump(control, IN_WAIT, -1);
      bump(control, WOKEN);
      const stopped = (): boolean => Atomics.load(control, STOP) !== 0;
      waitUntil(control, PHASE, () => stopped() || Atomics.load(control, ROUND) !== round ||
        Atomics.load(control, PHASE) === ACCEPTING, data.idleLimitMs);
      const fd = binding.accept(data.listenFd, true);
      if (fd >= 0) {
        binding.close(fd);
        bump(control, ACCEPTED);
      }
      const action = fd >= 0
        ? `worker ${data.worker} woke; accept → the connection`
        : `worker ${data.worker} woke; accept → EAGAIN (woken for nothing)`;
      rows.push({
        kind: 'wake', t, fd: data.listenFd, events: ready[0].events, action, bytes: fd >= 0 ? 1 : 0, worker: data.worker,
        calls: [{ op: 'accept', result: fd >= 0 ? 1 : -1 }],
      });
      bump(control, DONE);
      waitUntil(control, ROUND, () => stopped() || Atomics.load(control, ROUND) !== round, data.idleLimitMs);
      // A one-shot registration is disabled by the event it just reported.
      if (data.variant.mechanism === 'epoll-oneshot') watcher.modify(data.listenFd, interest);
      bump(control, IN_WAIT);
    }
  } finally {
    watcher.close();
    post({ type: 'finished', rows });
  }
}

function describeError(err: unknown): string {
  if (isSystemError(err)) return `${err.syscall} failed with ${err.code}`;
  return err instanceof Error ? err.message : String(err);
}

main(workerData as HerdWorkerData);
