/**
 * The file server's error paths, with the failures injected where they happen: the hashing thread
 * cannot start (EMFILE, a Worker that throws, a Worker whose script does not load) or exits in the
 * middle of a job. Whatever was claimed before the failing step is given back — the partial's
 * descriptor, the name, the download's file — every request is answered, close(done) calls done,
 * and the next hashing job gets a new thread.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker, WorkerOptions } from 'node:worker_threads';
import { FileServer } from '../lib/files/server';
import { Reactor } from '../lib/reactor';
import { expectError, pattern, RawClient, removeTempDirs, sha256, startServer, tempDir, writePattern } from './files-fixtures';
import { leakedSince, openKernelObjects } from './helpers';

/** This process's descriptors open on files under `dir` (the partials and sources the server holds). */
function filesOpenUnder(dir: string): string[] {
  const real = fs.realpathSync(dir);
  const open: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${real}/`)) open.push(target);
    } catch {
      // Closed meanwhile (the directory listing's own descriptor).
    }
  }
  return open;
}

/** A Worker factory that fails its first `failures` calls with `fail()`, then makes real threads (kept in `made`). */
function flakyWorkers(failures: number, fail: (filename: string, options: WorkerOptions) => Worker) {
  const made: Worker[] = [];
  let calls = 0;
  return {
    made,
    get calls() {
      return calls;
    },
    create: (filename: string, options: WorkerOptions): Worker => {
      calls++;
      if (calls <= failures) return fail(filename, options);
      const worker = new Worker(filename, options);
      made.push(worker);
      return worker;
    },
  };
}

const emfile = (): Worker => {
  throw Object.assign(new Error('EMFILE: too many open files, the hashing thread\'s pipes'), { code: 'EMFILE' });
};

describe('files: error paths, with the failure injected', function () {
  this.timeout(30000);
  let reactor: Reactor;
  let dir: string;
  let before: Map<number, string>;

  beforeEach(() => {
    before = openKernelObjects();
    reactor = new Reactor().attach();
    dir = tempDir('fail');
  });

  afterEach(() => {
    reactor.close();
    removeTempDirs();
    assert.deepEqual(leakedSince(before), [], 'descriptors leaked');
  });

  /** close(done): once `done` is called (a stuck close fails the test by its timeout), and the hashing thread has exited. */
  async function closed(server: FileServer): Promise<void> {
    let exited: Promise<void> = Promise.resolve();
    await new Promise<void>((done) => {
      exited = server.close(done);
    });
    await exited;
  }

  for (const [kind, fail] of [
    ['EMFILE when the thread is made', emfile],
    ['a Worker constructor that throws', (): Worker => {
      throw new Error('Worker failed to start');
    }],
  ] as const) {
    it(`${kind}: the upload is answered and gives back its file and its name; a download is answered; close(done) calls done`, async () => {
      const workers = flakyWorkers(2, fail);
      const served = startServer(reactor, dir, { createHashWorker: workers.create });
      const source = writePattern(path.join(dir, 'source.bin'), 100_000, 1);
      const data = pattern(50_000, 2);
      const raw = await RawClient.connect(served.port);
      raw.send({ type: 'put', name: 'up.bin', size: data.length, sha256: sha256(data) });
      expectError(await raw.next(), 'SERVER_ERROR');
      assert.deepEqual(filesOpenUnder(dir), [], 'the partial\'s descriptor was closed');
      // A download whose source needs hashing: answered, not left paused.
      raw.send({ type: 'get', name: 'source.bin', have: 0, size: 0, mtimeNs: 0n, sha256: null });
      expectError(await raw.next(), 'SERVER_ERROR');
      assert.deepEqual(filesOpenUnder(dir), [], 'the source\'s descriptor was closed');
      // The thread starts now: the same name is free, and both requests are served on the same connection.
      raw.send({ type: 'put', name: 'up.bin', size: data.length, sha256: sha256(data) });
      assert.deepEqual(await raw.next(), { type: 'accept', offset: 0 });
      await raw.write(data);
      assert.deepEqual(await raw.next(), { type: 'stored', size: data.length, sha256: sha256(data) });
      raw.send({ type: 'get', name: 'source.bin', have: 0, size: 0, mtimeNs: 0n, sha256: null });
      const sending = await raw.next();
      assert.equal(sending?.type, 'sending');
      assert.deepEqual(fs.readFileSync(path.join(dir, 'up.bin')), data);
      assert.equal(workers.calls, 3);
      assert.equal(source.length, 100_000);
      raw.destroy();
      await raw.ended;
      await closed(served.server);
      assert.deepEqual(filesOpenUnder(dir), []);
    });
  }

  it('a Worker whose script does not load (an error event, then exit): the upload in flight fails cleanly and keeps its bytes; the retry is hashed by a new thread', async () => {
    const workers = flakyWorkers(1, (_filename, options) => new Worker(path.join(dir, 'no-such-hash-worker.js'), options));
    const served = startServer(reactor, dir, { createHashWorker: workers.create });
    const data = pattern(300_000, 3);
    const raw = await RawClient.connect(served.port);
    raw.send({ type: 'put', name: 'up.bin', size: data.length, sha256: sha256(data) });
    assert.deepEqual(await raw.next(), { type: 'accept', offset: 0 });
    await raw.write(data);
    expectError(await raw.next(), 'SERVER_ERROR', /hashing/);
    assert.equal(fs.existsSync(path.join(dir, 'up.bin')), false, 'nothing stored unverified');
    assert.deepEqual(filesOpenUnder(dir), []);
    // The partial is kept: the retry sends nothing more, a new thread hashes it, and it is stored.
    raw.send({ type: 'put', name: 'up.bin', size: data.length, sha256: sha256(data) });
    assert.deepEqual(await raw.next(), { type: 'accept', offset: data.length });
    assert.deepEqual(await raw.next(), { type: 'stored', size: data.length, sha256: sha256(data) });
    assert.equal(workers.calls, 2);
    raw.destroy();
    await raw.ended;
    await closed(served.server);
  });

  it('a hashing thread that exits mid-upload is replaced: that upload fails cleanly (partial kept), later ones are verified by the new thread', async () => {
    const workers = flakyWorkers(0, emfile);
    const served = startServer(reactor, dir, { createHashWorker: workers.create });
    const data = pattern(2 * 1024 * 1024, 4);
    const raw = await RawClient.connect(served.port);
    raw.send({ type: 'put', name: 'big.bin', size: data.length, sha256: sha256(data) });
    assert.deepEqual(await raw.next(), { type: 'accept', offset: 0 });
    await raw.write(data.subarray(0, 1024 * 1024));
    await workers.made[0].terminate(); // The thread dies with the job half fed.
    await raw.write(data.subarray(1024 * 1024));
    expectError(await raw.next(), 'SERVER_ERROR', /hashing/);
    assert.deepEqual(filesOpenUnder(dir), [], 'the partial\'s descriptor was closed');
    raw.send({ type: 'put', name: 'big.bin', size: data.length, sha256: sha256(data) });
    assert.deepEqual(await raw.next(), { type: 'accept', offset: data.length });
    assert.deepEqual(await raw.next(), { type: 'stored', size: data.length, sha256: sha256(data) });
    assert.deepEqual(fs.readFileSync(path.join(dir, 'big.bin')), data);
    assert.equal(workers.made.length, 2, 'a second thread');
    raw.destroy();
    await raw.ended;
    await closed(served.server);
    assert.deepEqual(filesOpenUnder(dir), []);
  });
});
