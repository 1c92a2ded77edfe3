/**
 * SHA-256 of open files, off the reactor's thread: FileHasher runs one helper thread that reads the
 * files itself (hash-worker.ts), so the reactor thread only receives and writes, and a file is never
 * held in memory to be hashed.
 *
 * A transfer feeds its job as bytes reach the file (`feed(end)`: hash up to here); the thread reads
 * them back from the page cache while the next ones arrive, on the other core. A resumed upload
 * feeds the bytes already on disk first, with no special case. `digest()` answers once everything
 * fed is hashed. `abort()` answers once the thread no longer reads the descriptor: close it then,
 * not before (a reused descriptor number would be hashed instead).
 *
 * Answers arrive through a wake-up socket the reactor watches and are read with
 * receiveMessageOnPort, so they come on a reactor that blocks its thread in run() as well as on an
 * attached one. The socket is registered only while jobs are pending: an idle hasher keeps no
 * reactor running.
 *
 * Failures. If the thread cannot be started (no descriptor left for its wake-up socket, a failing
 * `new Worker`), `hash()` throws and holds nothing. If it exits (a crash, an out-of-memory kill of
 * the thread, `terminate()`), every pending job ends with an ERR_HASH_THREAD error (an abort waiting
 * is answered: nothing reads its descriptor any more) and the next `hash()` starts a new thread. The
 * exit is seen through Node's 'exit' event, so on a reactor blocking its thread in run() it is seen
 * once run() returns.
 */
import * as path from 'node:path';
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker, WorkerOptions } from 'node:worker_threads';
import { Reactor } from '../reactor';
import { EVENT_READ } from '../selectors/selector';
import { Waker } from '../waker';
import type { HashReply, HashRequest, HashWorkerData } from './hash-worker';

/** Feeds are sent to the thread in steps of at least this much (fewer messages; the thread reads in 1 MiB slices). */
const FEED_STEP = 1024 * 1024;

export interface HashJobOptions {
  /** Report progress every this many bytes (0: never). */
  progressEvery?: number;
  onProgress?: (hashed: number) => void;
}

export class HashJob {
  /** Bytes hashed, as last reported by the thread (exact once digest() has answered). */
  hashed = 0;
  private requested = 0;
  private posted = 0;
  private finished = false;
  private onDigest: ((err: Error | null, digest: Buffer | null) => void) | null = null;
  private onAborted: (() => void) | null = null;

  constructor(private readonly hasher: FileHasher, readonly id: number, readonly fd: number,
    private readonly onProgress: ((hashed: number) => void) | null) {}

  /** Hash the file up to byte `end` (never backwards). Cheap: sent in steps of at least 1 MiB. */
  feed(end: number): void {
    if (this.finished || this.over || end <= this.requested) return;
    this.requested = end;
    if (end - this.posted >= FEED_STEP) this.post();
  }

  /** An error the thread reported before anyone asked for the digest. */
  private failure: Error | null = null;

  /**
   * Answers with the SHA-256 of bytes 0 to the last feed, or with the error that ended the job (a
   * read failed, the file is shorter than fed), always from a later reactor turn.
   */
  digest(callback: (err: Error | null, digest: Buffer | null) => void): void {
    if (this.finished) throw new Error('This hash job is finished');
    this.finished = true;
    if (this.failure !== null) {
      const err = this.failure;
      this.hasher.reactor.setTimeout(() => callback(err, null), 0);
      return;
    }
    this.onDigest = callback;
    this.post();
    this.hasher.send({ op: 'digest', id: this.id });
  }

  /** Stops the job; `callback` runs once the thread no longer reads the descriptor (close it then). */
  abort(callback?: () => void): void {
    if (this.over) {
      callback?.();
      return;
    }
    if (this.onAborted !== null) throw new Error('This hash job is being aborted already');
    this.finished = true;
    this.onDigest = null;
    this.onAborted = callback ?? (() => undefined);
    this.hasher.send({ op: 'abort', id: this.id });
  }

  /** The thread has given the job up (answered, failed or aborted): it reads the descriptor no more. */
  private over = false;

  /** @internal An answer from the thread; true once the job is over. */
  receive(reply: HashReply): boolean {
    if (reply.type === 'progress') {
      this.hashed = reply.hashed;
      this.onProgress?.(reply.hashed);
      return false;
    }
    this.over = true;
    const aborted = this.onAborted;
    const digested = this.onDigest;
    this.onAborted = this.onDigest = null;
    if (reply.type === 'digest') this.hashed = reply.hashed;
    // Whatever the last answer was, an abort waiting for it is answered: the descriptor is free.
    if (aborted !== null) {
      aborted();
    } else if (reply.type === 'digest') {
      digested?.(null, Buffer.from(reply.digest));
    } else if (reply.type === 'error') {
      const err = Object.assign(new Error(`hashing: ${reply.message}`), { code: reply.code });
      if (digested !== null) digested(err, null);
      else this.failure = err;
    }
    return true;
  }

  private post(): void {
    if (this.requested <= this.posted) return;
    this.posted = this.requested;
    this.hasher.send({ op: 'feed', id: this.id, end: this.requested });
  }
}

export interface FileHasherOptions {
  /** Makes the hashing thread: `new Worker(filename, options)` by default (a seam for tests that inject failures). */
  createWorker?: (filename: string, options: WorkerOptions) => Worker;
}

export class FileHasher {
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private waker: Waker | null = null;
  private watching = false;
  private readonly jobs = new Map<number, HashJob>();
  private nextId = 1;
  private closed = false;
  private readonly onWake = (): void => this.drain();
  private readonly createWorker: (filename: string, options: WorkerOptions) => Worker;

  constructor(readonly reactor: Reactor, options: FileHasherOptions = {}) {
    this.createWorker = options.createWorker ?? ((filename, workerOptions) => new Worker(filename, workerOptions));
  }

  /** Jobs not yet answered (digest or abort). */
  get pending(): number {
    return this.jobs.size;
  }

  /** Starts hashing the open file `fd` (still yours: keep it open until the job has answered). */
  hash(fd: number, options: HashJobOptions = {}): HashJob {
    if (this.closed) throw new Error('The hasher is closed');
    this.start(); // Throws, holding nothing, if the thread cannot be started.
    const job = new HashJob(this, this.nextId++, fd, options.onProgress ?? null);
    this.jobs.set(job.id, job);
    this.send({ op: 'start', id: job.id, fd, progressEvery: options.progressEvery ?? 0 });
    if (!this.watching) {
      this.reactor.add(this.waker!.readFd, EVENT_READ, this.onWake);
      this.watching = true;
    }
    return job;
  }

  /**
   * Ends the thread. Jobs still pending are dropped without an answer: abort them (and wait for the
   * answers) first if their descriptors are to be closed. The promise resolves once the thread has
   * exited and given back its own loop's descriptors (that takes Node's loop to turn).
   */
  close(): Promise<void> {
    if (this.closed) return this.exited;
    this.closed = true;
    this.unwatch();
    this.jobs.clear();
    if (this.worker !== null) this.exited = this.worker.terminate().then(() => undefined);
    this.port?.close();
    this.waker?.close();
    this.worker = null;
    this.port = null;
    this.waker = null;
    return this.exited;
  }

  private exited: Promise<void> = Promise.resolve();

  /** @internal */
  send(request: HashRequest): void {
    this.worker?.postMessage(request);
  }

  private start(): void {
    if (this.worker !== null) return;
    const { port1, port2 } = new MessageChannel();
    let waker: Waker | null = null;
    let worker: Worker;
    try {
      waker = new Waker();
      const data: HashWorkerData = { port: port2, wakeFd: waker.writeFd };
      worker = this.createWorker(path.join(__dirname, 'hash-worker.js'), { workerData: data, transferList: [port2] });
    } catch (err) {
      waker?.close();
      port1.close();
      port2.close();
      throw err;
    }
    // The reactor's own handles decide whether the process stays alive, not this thread.
    worker.unref();
    let failure: Error | null = null;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('exit', (code) => this.threadExited(worker, failure ?? new Error(`the hashing thread exited (code ${code})`)));
    this.worker = worker;
    this.port = port1;
    this.port.unref();
    this.waker = waker;
  }

  /**
   * The thread is gone: the next hash() starts a new one; the answers it sent before are delivered,
   * and every other job fails — from a reactor turn, so that a callback that throws goes where the
   * reactor sends errors, as it would from drain().
   */
  private threadExited(worker: Worker, err: Error): void {
    if (this.closed || this.worker !== worker) return;
    const port = this.port;
    const jobs = new Map(this.jobs);
    this.jobs.clear();
    this.unwatch();
    this.waker?.close();
    this.worker = null;
    this.port = null;
    this.waker = null;
    const answerAll = () => {
      const failure = port === null ? null : deliver(port, jobs);
      port?.close();
      // Whatever the thread did not answer is answered now: with its exit.
      const exited = [...jobs.values()].map((job): HashReply => ({ id: job.id, type: 'error', message: err.message, code: 'ERR_HASH_THREAD' }));
      const failedLate = answer(jobs, exited);
      if (failure !== null) throw failure;
      if (failedLate !== null) throw failedLate;
    };
    if (this.reactor.selector.closed) answerAll();
    else this.reactor.defer(answerAll);
  }

  private drain(): void {
    this.waker?.drain();
    const failure = this.port === null ? null : deliver(this.port, this.jobs);
    if (this.jobs.size === 0) this.unwatch();
    // One job's callback failing did not strand the answers behind it; now the reactor's onError gets it.
    if (failure !== null) throw failure;
  }

  private unwatch(): void {
    if (!this.watching) return;
    this.watching = false;
    if (!this.reactor.selector.closed) this.reactor.remove(this.waker!.readFd);
  }
}

/** Hands every reply waiting on `port` to its job in `jobs` (answer()); returns the first exception a callback threw, or null. */
function deliver(port: MessagePort, jobs: Map<number, HashJob>): unknown {
  const replies: HashReply[] = [];
  // All read first: a callback may close the hasher, and its port with it.
  for (let received = receiveMessageOnPort(port); received !== undefined; received = receiveMessageOnPort(port)) {
    replies.push(received.message as HashReply);
  }
  return answer(jobs, replies);
}

/**
 * Hands each reply to its job (one that is over leaves `jobs`; a reply for a job not there is
 * dropped). Every reply is delivered even if a callback throws: the first exception is returned
 * (null if none) for the caller to throw once all are answered.
 */
function answer(jobs: Map<number, HashJob>, replies: readonly HashReply[]): unknown {
  let failure: unknown = null;
  for (const reply of replies) {
    const job = jobs.get(reply.id);
    if (job === undefined) continue;
    let over = reply.type !== 'progress';
    try {
      over = job.receive(reply);
    } catch (err) {
      failure ??= err;
    }
    if (over) jobs.delete(reply.id);
  }
  return failure;
}
