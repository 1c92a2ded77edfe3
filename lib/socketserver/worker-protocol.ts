/** What a ThreadingServer and its worker threads (handler-worker.ts) say to each other. */
import type { SocketAddress } from '../native';

export interface WorkerData {
  /** The file the handler class is loaded from, and its export name. */
  module: string;
  exportName: string;
  /** This worker's OwnershipSlot memory. */
  slot: SharedArrayBuffer;
  serverAddress: SocketAddress;
}

/** One connection to serve: its descriptor (owned by the worker from now on: see ownership.ts) and peer. */
export interface WorkerJob {
  fd: number;
  peer: SocketAddress;
}

export type WorkerReport =
  /** The handler module is loaded: jobs are served from now on. */
  | { type: 'ready' }
  /** One job is over and its descriptor closed (or reclaimed); `error`: what the handler threw, described. */
  | { type: 'done'; error: string | null };
