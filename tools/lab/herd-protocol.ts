/**
 * The shared-memory protocol between the thundering-herd scenario (main thread) and its worker
 * threads. Workers block in their own wait calls, so they cannot take messages; they coordinate
 * through these counters instead, and report their rows by message when they finish.
 */
import type { Row, Variant } from './model';

/** Indices into the control Int32Array. Counters only grow, so no increment can be lost to a reset. */
export const ROUND = 0; // connection number the main thread is on
export const PHASE = 1; // WATCHING or ACCEPTING
export const IN_WAIT = 2; // workers currently inside their wait loop
export const WOKEN = 3; // wake-ups so far
export const DONE = 4; // woken workers that have tried accept
export const ACCEPTED = 5; // connections accepted by workers
export const STOP = 6; // 1: every worker leaves
export const CONTROL_SLOTS = 7;

export const WATCHING = 0;
export const ACCEPTING = 1;

export interface HerdWorkerData {
  listenFd: number;
  variant: Variant;
  /** 1-based, for the rows. */
  worker: number;
  /** The timeline origin, process.hrtime.bigint() as a string (the monotonic clock is process-wide). */
  origin: string;
  control: SharedArrayBuffer;
  /** Each wait's bound, so a worker notices STOP promptly. */
  sliceMs: number;
  /** A worker leaves by itself after this long without a new round (the main thread is gone). */
  idleLimitMs: number;
}

export type HerdMessage =
  | { type: 'ready' }
  | { type: 'refused'; message: string }
  | { type: 'finished'; rows: Row[] };

/** Waits (bounded) until `done()`; wakes on notifications of control[index] or every few ms. */
export function waitUntil(control: Int32Array, index: number, done: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    Atomics.wait(control, index, Atomics.load(control, index), Math.min(remaining, 5));
  }
}

export function bump(control: Int32Array, index: number, by = 1): void {
  Atomics.add(control, index, by);
  Atomics.notify(control, index);
}
