/**
 * Python's ThreadingTCPServer on worker threads: every connection is served by a blocking handler
 * on a thread of its own, so one slow client never holds up the others.
 *
 * - The accepting thread (this one) hands each connection's descriptor to a worker by number;
 *   from then on only the worker closes it (ownership.ts says who may, at every moment).
 * - Workers come from a pool that grows on demand up to `maxThreads` (ThreadingMixIn starts a
 *   thread per request; starting a worker costs far more than a thread in Python, so idle ones are
 *   kept for `idleTimeoutMs`, then retire).
 * - When every worker is busy, connections wait in a queue of `queueSize`; past that they are
 *   refused (closed at once) with a log line.
 * - A handler that throws is logged, its connection closed, its worker kept. A worker that dies
 *   (process.exit() in a handler, an uncaught error) is replaced; its connection is closed by this
 *   thread, never leaked.
 * - shutdown() stops accepting, closes the connections still queued, and waits up to `graceMs` for
 *   the running handlers; then it takes their descriptors back, shuts them down (which wakes a
 *   handler blocked in recv or send) and stops their threads.
 *
 * Events: 'workerStart' (id), 'workerReady' (id: its handler is loaded), 'workerRetire' (id),
 * 'workerDeath' (id, exit code), 'queue' (peer), 'refuse' (peer), 'requestDone' (peer),
 * 'handlerError' (peer, description).
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding, constants, SocketAddress } from '../native';
import type { Endpoint } from '../stream/endpoint';
import { BaseServer, ServerOptions } from './base-server';
import { handlerModule, loadHandler } from './handler-module';
import { OwnershipSlot, RECLAIMED } from './ownership';
import type { RequestHandlerClass } from './request-handler';
import type { WorkerData, WorkerJob, WorkerReport } from './worker-protocol';

export interface ThreadingServerOptions extends ServerOptions {
  /** The most worker threads at once. Default 32. */
  maxThreads?: number;
  /** Workers kept even when idle (started by serveForever()). Default 0. */
  minThreads?: number;
  /** An idle worker retires after this long (down to minThreads). Default 10 s. */
  idleTimeoutMs?: number;
  /** Connections that may wait for a worker; past that they are refused. Default 64. */
  queueSize?: number;
  /** How long shutdown() lets running handlers finish. Default 5 s. */
  graceMs?: number;
}

export interface ThreadingServerStats {
  /** Worker threads alive now, busy now, and the most at once. */
  threads: number;
  busy: number;
  peakThreads: number;
  /** Workers started, retired (idle), and dead (replaced). */
  started: number;
  retired: number;
  died: number;
  /** Requests whose handler finished (errors: of those, the ones whose handler threw). */
  handled: number;
  errors: number;
  /** Connections waiting for a worker now, and the most at once. */
  queued: number;
  peakQueued: number;
  /** Connections closed unserved: the queue was full; it was still queued at shutdown. */
  refused: number;
  dropped: number;
  /** Handlers still running when shutdown()'s grace period ran out. */
  aborted: number;
}

interface Job extends WorkerJob {}

interface PoolWorker {
  id: number;
  worker: Worker;
  slot: OwnershipSlot;
  /** The connection it serves; its descriptor is the worker's until 'done' (or reclaimed). */
  job: Job | null;
  ready: boolean;
  /** Stopped on purpose (idle, or shutdown): its exit is no death. */
  retiring: boolean;
  idleTimer: NodeJS.Timeout | null;
  exited: Promise<void>;
}

const WORKER_SCRIPT = path.join(__dirname, 'handler-worker.js');

/** "127.0.0.1:5000", "[::1]:5000", "unix:/path". */
function describePeer(peer: SocketAddress): string {
  if (peer.family === 'unix') return `unix:${peer.address || '(unnamed)'}`;
  return peer.family === 'IPv6' ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
}

export class ThreadingServer extends BaseServer {
  readonly maxThreads: number;
  readonly minThreads: number;
  readonly idleTimeoutMs: number;
  readonly queueSize: number;
  readonly graceMs: number;
  private readonly handler: { module: string; exportName: string };
  private readonly workers = new Set<PoolWorker>();
  private readonly idle: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private readonly counts = { peakThreads: 0, started: 0, retired: 0, died: 0, handled: 0, errors: 0, peakQueued: 0, refused: 0, dropped: 0, aborted: 0 };
  private nextId = 1;
  private shuttingDown = false;
  /** Called whenever a busy worker becomes free or goes away (shutdown waits on it). */
  private onSettled: (() => void) | null = null;

  constructor(address: Endpoint, Handler: RequestHandlerClass, options: ThreadingServerOptions = {}) {
    const handler = handlerModule(Handler);
    // Load it here first, so a wrong module or export is an error now, not in every worker.
    loadHandler(handler.module, handler.exportName);
    const positive = (name: string, value: number | undefined, fallback: number, min: number) => {
      const v = value ?? fallback;
      if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}; got ${String(value)}`);
      return v;
    };
    const maxThreads = positive('maxThreads', options.maxThreads, 32, 1);
    const minThreads = positive('minThreads', options.minThreads, 0, 0);
    if (minThreads > maxThreads) throw new RangeError(`minThreads (${minThreads}) must not exceed maxThreads (${maxThreads})`);
    const idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs, 10_000, 0);
    const queueSize = positive('queueSize', options.queueSize, 64, 0);
    const graceMs = positive('graceMs', options.graceMs, 5000, 0);
    super(address, Handler, options);
    this.handler = handler;
    this.maxThreads = maxThreads;
    this.minThreads = minThreads;
    this.idleTimeoutMs = idleTimeoutMs;
    this.queueSize = queueSize;
    this.graceMs = graceMs;
  }

  get stats(): ThreadingServerStats {
    return { threads: this.workers.size, busy: this.busyCount(), queued: this.queue.length, ...this.counts };
  }

  override serveForever(): Promise<void> {
    const serving = super.serveForever();
    while (!this.shuttingDown && this.staying() < this.minThreads) this.makeIdle(this.spawn());
    return serving;
  }

  protected processRequest(fd: number, peer: SocketAddress): void {
    const job: Job = { fd, peer };
    const free = this.idle.pop();
    if (free !== undefined) return this.give(free, job);
    if (this.staying() < this.maxThreads) return this.give(this.spawn(), job);
    if (this.queue.length < this.queueSize) {
      this.queue.push(job);
      this.counts.peakQueued = Math.max(this.counts.peakQueued, this.queue.length);
      this.emit('queue', peer);
      return;
    }
    binding.close(fd);
    this.counts.refused++;
    this.log(`refused ${describePeer(peer)}: all ${this.maxThreads} threads are busy and ${this.queueSize} connections are waiting`);
    this.emit('refuse', peer);
  }

  protected async drain(): Promise<void> {
    this.shuttingDown = true;
    this.dropQueued('the server is shutting down');
    for (const w of [...this.idle]) this.retire(w);
    if (this.busyCount() > 0) {
      let timer: NodeJS.Timeout | null = null;
      await new Promise<void>((resolve) => {
        this.onSettled = () => {
          if (this.busyCount() === 0) resolve();
        };
        timer = setTimeout(resolve, this.graceMs);
      });
      clearTimeout(timer!);
      this.onSettled = null;
      this.abortBusy(`did not finish within the ${this.graceMs} ms grace period`);
    }
    await Promise.all([...this.workers].map((w) => w.exited));
  }

  protected closeRequests(): void {
    this.shuttingDown = true;
    this.dropQueued('the server was closed');
    for (const w of [...this.idle]) this.retire(w);
    this.abortBusy('was still running when the server was closed');
  }

  private busyCount(): number {
    let busy = 0;
    for (const w of this.workers) if (w.job !== null) busy++;
    return busy;
  }

  private dropQueued(why: string): void {
    if (this.queue.length === 0) return;
    const dropped = this.queue.splice(0);
    for (const job of dropped) binding.close(job.fd);
    this.counts.dropped += dropped.length;
    this.log(`closed ${dropped.length} connection(s) still waiting for a thread: ${why}`);
  }

  /**
   * Takes back the descriptor of every handler still running, shuts the connection down (a blocked
   * recv or send returns at once) and stops the thread; its exit closes the descriptor.
   */
  private abortBusy(why: string): void {
    for (const w of this.workers) {
      if (w.job === null || w.retiring) continue;
      const fd = w.slot.reclaim();
      if (fd >= 0) {
        try {
          binding.shutdown(fd, constants.SHUT_RDWR);
        } catch {
          // Already reset by the peer: closing it is all that is left.
        }
        this.counts.aborted++;
        this.log(`the handler serving ${describePeer(w.job.peer)} ${why}: its connection is shut down and its thread stopped`);
      }
      this.retire(w);
    }
  }

  private spawn(): PoolWorker {
    const slot = new OwnershipSlot();
    const data: WorkerData = { ...this.handler, slot: slot.buffer, serverAddress: this.serverAddress };
    const worker = new Worker(WORKER_SCRIPT, { workerData: data });
    const w: PoolWorker = {
      id: this.nextId++, worker, slot, job: null, ready: false, retiring: false, idleTimer: null,
      exited: new Promise((resolve) => worker.once('exit', (code) => {
        this.onExit(w, code);
        resolve();
      })),
    };
    this.workers.add(w);
    this.counts.started++;
    this.counts.peakThreads = Math.max(this.counts.peakThreads, this.workers.size);
    worker.on('message', (report: WorkerReport) => {
      if (report.type === 'ready') {
        w.ready = true;
        this.emit('workerReady', w.id);
      }
      else this.onDone(w, report.error);
    });
    worker.on('error', (err) => this.log(`worker ${w.id}: ${err.stack ?? err.message}`));
    this.emit('workerStart', w.id);
    return w;
  }

  /** Ownership passes with the message: the slot says so before the worker can see the job. */
  private give(w: PoolWorker, job: Job): void {
    if (w.idleTimer !== null) clearTimeout(w.idleTimer);
    w.idleTimer = null;
    w.job = job;
    w.slot.assign(job.fd);
    w.worker.postMessage(job);
  }

  private onDone(w: PoolWorker, error: string | null): void {
    const job = w.job;
    if (job === null) return;
    this.counts.handled++;
    this.emit('requestDone', job.peer);
    if (error !== null) {
      this.counts.errors++;
      this.log(error);
      this.emit('handlerError', job.peer, error);
    }
    this.closeIfReclaimed(w);
    w.job = null;
    if (w.retiring) return;
    const next = this.shuttingDown ? undefined : this.queue.shift();
    if (next !== undefined) this.give(w, next);
    else if (this.shuttingDown) this.retire(w);
    else this.makeIdle(w);
    this.onSettled?.();
  }

  /** The worker is gone (its thread has ended: no code of it can touch a number any more). */
  private onExit(w: PoolWorker, code: number): void {
    this.workers.delete(w);
    const at = this.idle.indexOf(w);
    if (at >= 0) this.idle.splice(at, 1);
    if (w.idleTimer !== null) clearTimeout(w.idleTimer);
    const job = w.job;
    if (job !== null) {
      // Still the worker's (it died holding it), or taken back already: this thread closes it.
      w.slot.reclaim();
      this.closeIfReclaimed(w);
    }
    w.job = null;
    if (w.retiring) {
      this.counts.retired++;
      this.emit('workerRetire', w.id);
    } else {
      this.counts.died++;
      const serving = job === null ? 'while idle' : `while serving ${describePeer(job.peer)} (its connection is closed)`;
      this.log(`worker ${w.id} died (exit code ${code}) ${serving}${this.shuttingDown ? '' : '; replacing it'}`);
      this.emit('workerDeath', w.id, code);
      if (!this.shuttingDown) this.replace(w);
    }
    this.onSettled?.();
  }

  /** A new worker for a dead one; one that died before it could load its handler is not retried forever. */
  private replace(dead: PoolWorker): void {
    if (!dead.ready) {
      this.dropQueued(`worker ${dead.id} could not start`);
      return;
    }
    const next = this.queue.shift();
    const w = this.spawn();
    if (next !== undefined) this.give(w, next);
    else this.makeIdle(w);
  }

  private closeIfReclaimed(w: PoolWorker): void {
    if (w.job !== null && w.slot.state === RECLAIMED) {
      binding.close(w.job.fd);
      w.slot.reclaimedClosed();
    }
  }

  private makeIdle(w: PoolWorker): void {
    this.idle.push(w);
    w.idleTimer = setTimeout(() => {
      w.idleTimer = null;
      if (w.job === null && this.staying() > this.minThreads) this.retire(w);
    }, this.idleTimeoutMs);
    w.idleTimer.unref();
  }

  /** Workers not on their way out. */
  private staying(): number {
    let n = 0;
    for (const w of this.workers) if (!w.retiring) n++;
    return n;
  }

  private retire(w: PoolWorker): void {
    if (w.retiring) return;
    w.retiring = true;
    const at = this.idle.indexOf(w);
    if (at >= 0) this.idle.splice(at, 1);
    if (w.idleTimer !== null) clearTimeout(w.idleTimer);
    w.idleTimer = null;
    void w.worker.terminate();
  }
}
