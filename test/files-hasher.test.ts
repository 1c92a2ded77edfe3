/**
 * FileHasher: SHA-256 of open files on a helper thread that reads them itself. The digests are
 * right whatever the feeding, a large job does not hold up a small one, an abort answers only when
 * the thread no longer reads the descriptor, a file shorter than fed is an error, and answers come
 * on a reactor blocked in run() as well as on an attached one.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileHasher } from '../lib/files/hasher';
import { Reactor } from '../lib/reactor';
import { removeTempDirs, tempDir, writePattern } from './files-fixtures';
import { leakedSince, openKernelObjects } from './helpers';

const MiB = 1024 * 1024;

describe('files: the hashing thread (FileHasher)', () => {
  let reactor: Reactor;
  let hasher: FileHasher;
  let dir: string;
  let before: Map<number, string>;

  beforeEach(() => {
    before = openKernelObjects();
    reactor = new Reactor().attach();
    hasher = new FileHasher(reactor);
    dir = tempDir('hash');
  });

  afterEach(async () => {
    await hasher.close();
    reactor.close();
    assert.deepEqual(leakedSince(before), [], 'the thread and its wake-up socket are gone');
  });

  after(removeTempDirs);

  const digest = (job: ReturnType<FileHasher['hash']>) => new Promise<Buffer>((resolve, reject) => {
    job.digest((err, d) => (err ? reject(err) : resolve(d!)));
  });

  it('gives the SHA-256 of what was fed, fed in any steps, with progress on the way', async () => {
    const data = writePattern(path.join(dir, 'a.bin'), 5 * MiB + 3, 1);
    const fd = fs.openSync(path.join(dir, 'a.bin'), 'r');
    try {
      const progress: number[] = [];
      const job = hasher.hash(fd, { progressEvery: MiB, onProgress: (n) => progress.push(n) });
      for (let end = 0; end <= data.length; end += 12345) job.feed(end);
      job.feed(data.length);
      assert.equal((await digest(job)).toString('hex'), createHash('sha256').update(data).digest('hex'));
      assert.equal(job.hashed, data.length);
      assert.ok(progress.length >= 4 && progress.every((n, i) => i === 0 || n > progress[i - 1]), `progress ${progress}`);
      // A prefix only: what was fed, not the whole file.
      const prefix = hasher.hash(fd);
      prefix.feed(MiB);
      assert.equal((await digest(prefix)).toString('hex'), createHash('sha256').update(data.subarray(0, MiB)).digest('hex'));
    } finally {
      fs.closeSync(fd);
    }
  });

  it('a large job does not hold up a small one: jobs take turns, one slice each', async () => {
    writePattern(path.join(dir, 'big.bin'), 48 * MiB, 2);
    writePattern(path.join(dir, 'small.bin'), 1000, 3);
    const big = fs.openSync(path.join(dir, 'big.bin'), 'r');
    const small = fs.openSync(path.join(dir, 'small.bin'), 'r');
    try {
      const order: string[] = [];
      const bigJob = hasher.hash(big);
      bigJob.feed(48 * MiB);
      const bigDone = digest(bigJob).then(() => order.push('big'));
      const smallJob = hasher.hash(small);
      smallJob.feed(1000);
      const smallDone = digest(smallJob).then(() => order.push('small'));
      await Promise.all([bigDone, smallDone]);
      assert.deepEqual(order, ['small', 'big']);
    } finally {
      fs.closeSync(big);
      fs.closeSync(small);
    }
  });

  it('abort answers once the thread no longer reads the descriptor; the digest callback is not called', async () => {
    writePattern(path.join(dir, 'big.bin'), 32 * MiB, 4);
    const fd = fs.openSync(path.join(dir, 'big.bin'), 'r');
    const job = hasher.hash(fd);
    job.feed(32 * MiB);
    let digested = false;
    job.digest(() => { digested = true; });
    await new Promise<void>((resolve) => job.abort(resolve));
    fs.closeSync(fd);
    assert.equal(digested, false);
    assert.equal(hasher.pending, 0);
  });

  it('a file shorter than what was fed is an error, not a digest of fewer bytes', async () => {
    writePattern(path.join(dir, 'short.bin'), 1000, 5);
    const fd = fs.openSync(path.join(dir, 'short.bin'), 'r');
    try {
      const job = hasher.hash(fd);
      job.feed(5000);
      await assert.rejects(digest(job), (err: NodeJS.ErrnoException) => err.code === 'ERR_FILE_TRUNCATED' && /ended at byte 1000/.test(err.message));
    } finally {
      fs.closeSync(fd);
    }
  });

  it('answers on a reactor that blocks its thread in run(), and leaves it once idle', async () => {
    const blocking = new Reactor();
    const own = new FileHasher(blocking);
    const data = writePattern(path.join(dir, 'r.bin'), 3 * MiB, 6);
    const fd = fs.openSync(path.join(dir, 'r.bin'), 'r');
    let got: Buffer | null = null;
    try {
      const job = own.hash(fd);
      job.feed(data.length);
      job.digest((err, d) => { got = d; });
      // run() returns once nothing is registered: the wake-up socket is removed when no job is pending.
      blocking.run();
      assert.equal(got!.toString('hex'), createHash('sha256').update(data).digest('hex'));
    } finally {
      fs.closeSync(fd);
      blocking.close();
      await own.close();
    }
  });
});
