/**
 * What the main thread and a serve-worker (lib/echo/serve-worker.ts) say to each other. Kept apart
 * from the worker script, which starts serving as soon as it is loaded.
 */
import type { EchoServerOptions, EchoStats } from './server';

export interface ServeWorkerData {
  options: Omit<EchoServerOptions, 'reactor' | 'log'>;
  /** Readable when the main thread wants something: a graceful stop, or (with `control`) the stats. */
  stopFd: number;
  /** Milliseconds to let queues flush before closing anyway. */
  graceMs: number;
  /** One of several reactor threads (ThreadedEchoServer); without it a wake-up means stop. */
  thread?: ThreadRole;
}

export interface ThreadRole {
  /** 0-based. */
  index: number;
  count: number;
  /**
   * Two Int32s per thread: COMMAND_* bits, set (Atomics.or) before that thread is woken, and the
   * grace period of a stop.
   */
  control: SharedArrayBuffer;
  /** Every thread's Waker write end, by index: any thread may wake any other. */
  wakeFds: number[];
  /** ConnectionBalancer memory, when a shared listener's connections are balanced exactly. */
  balancer: SharedArrayBuffer | null;
}

/** Bits of a thread's control word. */
export const COMMAND_STOP = 1;
export const COMMAND_STATS = 2;
/** Another thread handed connections to this one (ConnectionBalancer). */
export const COMMAND_ADOPT = 4;

/** Sets `bits` in `thread`'s control word; then wake that thread. */
export function postCommand(control: Int32Array, thread: number, bits: number): void {
  Atomics.or(control, 2 * thread, bits);
}

export type ServeWorkerMessage =
  | { type: 'listening'; address: { family: string; address: string; port: number }; tid: number | null }
  | { type: 'log'; line: string }
  /** The listener is closed (or, shared, no longer watched by this thread). */
  | { type: 'stopped-accepting' }
  /** `final`: after run() returned, the last word of this thread. `handedOff`: see ConnectionBalancer. */
  | { type: 'stats'; stats: EchoStats; final?: boolean; handedOff?: number };

