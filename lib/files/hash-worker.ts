/**
 * The hashing thread behind FileHasher (hasher.ts). It reads the files itself, by descriptor and
 * position (pread: the page cache, since the bytes were just written or are about to be sent), so
 * no file content crosses threads. Jobs take turns one slice at a time, and messages are read
 * between slices: a 1 GiB prefix does not hold up everyone else's digest, and an abort is answered
 * only when this thread no longer touches the descriptor.
 *
 * Replies go to a MessagePort the reactor's thread drains with receiveMessageOnPort after a byte on
 * the wake-up socket: that works while the reactor blocks its thread in run(), where no Node
 * callback would ever run.
 */
import { createHash, Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { MessagePort, parentPort, workerData } from 'node:worker_threads';

export type HashRequest =
  | { op: 'start'; id: number; fd: number; progressEvery: number }
  | { op: 'feed'; id: number; end: number }
  | { op: 'digest'; id: number }
  | { op: 'abort'; id: number };

export type HashReply =
  | { id: number; type: 'progress'; hashed: number }
  | { id: number; type: 'digest'; hashed: number; digest: Uint8Array }
  | { id: number; type: 'aborted' }
  | { id: number; type: 'error'; message: string; code: string | undefined };

export interface HashWorkerData {
  port: MessagePort;
  wakeFd: number;
}

interface Job {
  fd: number;
  hash: Hash;
  position: number;
  target: number;
  digestWanted: boolean;
  progressEvery: number;
  nextProgress: number;
}

const SLICE = 1024 * 1024;

if (parentPort !== null) {
  const { port, wakeFd } = workerData as HashWorkerData;
  const jobs = new Map<number, Job>();
  const buffer = Buffer.allocUnsafe(SLICE);
  const one = Buffer.from([1]);
  let scheduled = false;

  const reply = (message: HashReply): void => {
    port.postMessage(message);
    try {
      fs.writeSync(wakeFd, one);
    } catch {
      // EAGAIN: the wake-up socket is full, so it is readable already. EPIPE: the reactor is gone.
    }
  };

  const fail = (id: number, err: unknown): void => {
    jobs.delete(id);
    const e = err as NodeJS.ErrnoException;
    reply({ id, type: 'error', message: e.message ?? String(err), code: e.code });
  };

  /** Hashes one slice of `job`; false once it has failed. */
  const slice = (id: number, job: Job): boolean => {
    const want = Math.min(SLICE, job.target - job.position);
    let got: number;
    try {
      got = fs.readSync(job.fd, buffer, 0, want, job.position);
    } catch (err) {
      fail(id, err);
      return false;
    }
    if (got === 0) {
      fail(id, Object.assign(new Error(`the file ended at byte ${job.position}, before the ${job.target} bytes to hash`),
        { code: 'ERR_FILE_TRUNCATED' }));
      return false;
    }
    job.hash.update(buffer.subarray(0, got));
    job.position += got;
    if (job.progressEvery > 0 && job.position >= job.nextProgress) {
      job.nextProgress = job.position + job.progressEvery;
      reply({ id, type: 'progress', hashed: job.position });
    }
    return true;
  };

  const work = (): void => {
    scheduled = false;
    let more = false;
    for (const [id, job] of jobs) {
      if (job.position < job.target && !slice(id, job)) continue;
      if (job.position < job.target) {
        more = true;
      } else if (job.digestWanted) {
        jobs.delete(id);
        reply({ id, type: 'digest', hashed: job.position, digest: job.hash.digest() });
      }
    }
    if (more) schedule();
  };

  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    // setImmediate, not a loop: messages (a new job, an abort) are taken between slices.
    setImmediate(work);
  };

  parentPort.on('message', (m: HashRequest) => {
    switch (m.op) {
      case 'start':
        jobs.set(m.id, {
          fd: m.fd, hash: createHash('sha256'), position: 0, target: 0, digestWanted: false,
          progressEvery: m.progressEvery, nextProgress: m.progressEvery,
        });
        return;
      case 'feed': {
        const job = jobs.get(m.id);
        if (job !== undefined && m.end > job.target) job.target = m.end;
        break;
      }
      case 'digest': {
        const job = jobs.get(m.id);
        if (job !== undefined) job.digestWanted = true;
        break;
      }
      case 'abort':
        // Between slices: nothing reads this job's descriptor any more.
        jobs.delete(m.id);
        reply({ id: m.id, type: 'aborted' });
        return;
    }
    schedule();
  });
}
