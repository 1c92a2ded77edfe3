/**
 * short-read's sender thread: many small sends as fast as the socket takes them, then its FIN, while
 * the main thread reads. Two threads, so arrivals land at any moment of the reader's wait, recv and
 * decision to stop, not only between its steps. It says where it is through a shared Int32Array:
 * [0] 1 once started, [1] 1 once everything is sent and shut down.
 */
import { workerData } from 'node:worker_threads';
import { binding, constants } from '../../lib/native';

export interface BurstData {
  fd: number;
  messages: number;
  size: number;
  state: SharedArrayBuffer;
}

export const STARTED = 0;
/** Between sends, so arrivals land all through the reader's cycle (wait, recv, stop) instead of all before it. */
const PAUSE_NS = 20_000n;
export const FINISHED = 1;

function main({ fd, messages, size, state }: BurstData): void {
  const flags = new Int32Array(state);
  const message = Buffer.alloc(size, 0x62);
  Atomics.store(flags, STARTED, 1);
  Atomics.notify(flags, STARTED);
  for (let i = 0; i < messages; i++) {
    for (let sent = 0; sent < size;) {
      const n = binding.send(fd, message, sent, size - sent);
      if (n > 0) sent += n;
      else binding.select(null, [fd], null, 1000); // The reader is behind: wait for room.
    }
    pause(PAUSE_NS);
  }
  binding.shutdown(fd, constants.SHUT_WR);
  Atomics.store(flags, FINISHED, 1);
  Atomics.notify(flags, FINISHED);
}

/** A busy pause: sleeping calls are too coarse for tens of microseconds. */
function pause(ns: bigint): void {
  const until = process.hrtime.bigint() + ns;
  while (process.hrtime.bigint() < until) { /* spin */ }
}

if (workerData) main(workerData as BurstData);
