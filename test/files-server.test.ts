/**
 * The file-transfer server and client in this process, on real loopback sockets and real files:
 * round trips on every mechanism, resume in both directions, the "never spliced" rule, and each
 * fault — unsafe names, symlinks leaving the directory, malformed frames, the same name twice,
 * --max-size, a full disk, a shutdown mid-transfer — closing nothing but what it must.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { getFile, putFile } from '../lib/files/client';
import { FileHasher } from '../lib/files/hasher';
import { MessageType } from '../lib/files/protocol';
import { Reactor } from '../lib/reactor';
import { frameHeader } from '../lib/stream/framing';
import { EVENT_READ } from '../lib/selectors/selector';
import { Waker } from '../lib/waker';
import { makeSelector, selectorVariants } from './fixtures';
import {
  expectError, failure, Log, mountTmpfs, partialOf, partials, pattern, RawClient, removeTempDirs, Served, sha256, sha256File, startServer, tempDir,
  tmpfsUnavailable, waitForSize, writePattern,
} from './files-fixtures';
import { leakedSince, openKernelObjects } from './helpers';

const MiB = 1024 * 1024;

describe('files: server and client on every mechanism', () => {
  for (const variant of selectorVariants()) {
    it(`${variant.name}: put then get, 3 MiB byte-exact, verified, no partial left behind`, async () => {
      const before = openKernelObjects();
      const reactor = new Reactor(makeSelector(variant)).attach();
      const dir = tempDir('srv');
      const local = tempDir('cli');
      const served = startServer(reactor, dir);
      try {
        const endpoint = { port: served.port };
        const data = writePattern(path.join(local, 'a.bin'), 3 * MiB + 7, 1);
        const put = await putFile({ reactor, endpoint, file: path.join(local, 'a.bin') });
        assert.deepEqual([put.name, put.size, put.offset, put.sha256], ['a.bin', data.length, 0, sha256(data).toString('hex')]);
        assert.ok(fs.readFileSync(path.join(dir, 'a.bin')).equals(data));
        assert.deepEqual(partials(dir), []);
        const got = await getFile({ reactor, endpoint, name: 'a.bin', output: path.join(local, 'b.bin') });
        assert.equal(got.sha256, put.sha256);
        assert.ok(fs.readFileSync(path.join(local, 'b.bin')).equals(data));
        assert.deepEqual(fs.readdirSync(local).sort(), ['a.bin', 'b.bin'], 'the client\'s partial and metadata are gone');
        assert.deepEqual([served.server.stats.stored, served.server.stats.sent], [1, 1]);
      } finally {
        await served.close();
        reactor.close();
      }
      assert.deepEqual(leakedSince(before), []);
    });
  }
});

describe('files: resume, faults and limits (epoll or the best mechanism here)', function () {
  let reactor: Reactor;
  let dir: string;
  let local: string;
  let served: Served;
  let before: Map<number, string>;

  beforeEach(() => {
    before = openKernelObjects();
    reactor = new Reactor().attach();
    dir = tempDir('srv');
    local = tempDir('cli');
    served = startServer(reactor, dir);
  });

  afterEach(async () => {
    await served.close();
    reactor.close();
    assert.deepEqual(leakedSince(before), [], 'descriptors leaked');
  });

  const endpoint = () => ({ port: served.port });

  /** A raw upload of `data` as `name` that sends `sent` bytes of its body and stops there. */
  async function halfUpload(name: string, data: Buffer, sent: number): Promise<RawClient> {
    const raw = await RawClient.connect(served.port);
    raw.send({ type: 'put', name, size: data.length, sha256: sha256(data) });
    const accept = await raw.next();
    assert.deepEqual(accept, { type: 'accept', offset: 0 });
    await raw.write(data.subarray(0, sent));
    return raw;
  }

  it('an upload cut off mid-body resumes from what the server holds, and the result is verified', async () => {
    const data = writePattern(path.join(local, 'big.bin'), 4 * MiB, 2);
    const raw = await halfUpload('big.bin', data, 1536 * 1024);
    raw.end();
    const [, held] = await served.log.waitFor(/put "big\.bin" .*connection lost at byte (\d+) of/);
    assert.equal(Number(held), 1536 * 1024);
    assert.deepEqual(partials(dir).map((p) => p.size), [1536 * 1024]);
    const log = new Log();
    const put = await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'big.bin'), log: log.add });
    assert.equal(put.offset, 1536 * 1024);
    assert.equal(put.transferred, data.length - 1536 * 1024);
    assert.match(log.lines.join('\n'), /resuming "big\.bin" at byte 1572864 of 4194304/);
    await served.log.waitFor(/put "big\.bin" .*resuming at byte 1572864 of 4194304/);
    assert.equal(sha256File(path.join(dir, 'big.bin')), sha256(data).toString('hex'));
    assert.deepEqual(partials(dir), []);
  });

  it('never splices: a partial of other content under the same name is dropped, the upload starts from 0', async () => {
    const first = pattern(2 * MiB, 3);
    const raw = await halfUpload('same.bin', first, MiB);
    raw.end();
    await served.log.waitFor(/"same\.bin" .*connection lost at byte 1048576/);
    const second = writePattern(path.join(local, 'same.bin'), 2 * MiB, 4); // Same name, same size, other bytes.
    const put = await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'same.bin') });
    assert.equal(put.offset, 0);
    assert.ok(fs.readFileSync(path.join(dir, 'same.bin')).equals(second));
  });

  it('a complete partial (the verdict never reached the client) is verified and stored without sending a byte', async () => {
    const data = writePattern(path.join(local, 'done.bin'), MiB, 5);
    fs.writeFileSync(partialOf(dir, 'done.bin'), data);
    fs.writeFileSync(partialOf(dir, 'done.bin').replace(/\.data$/, '.json'),
      JSON.stringify({ version: 1, name: 'done.bin', size: data.length, sha256: sha256(data).toString('hex') }));
    const put = await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'done.bin') });
    assert.deepEqual([put.offset, put.transferred], [data.length, 0]);
    assert.ok(fs.readFileSync(path.join(dir, 'done.bin')).equals(data));
    assert.deepEqual(partials(dir), []);
  });

  it('get resumes from the client\'s partial when it is of the same version, and starts over when the source changed', async () => {
    const source = path.join(dir, 'src.bin');
    const data = writePattern(source, 3 * MiB, 6);
    const out = path.join(local, 'out.bin');
    const holdPartial = (bytes: Buffer, of: Buffer) => {
      const st = fs.statSync(source, { bigint: true });
      fs.writeFileSync(`${out}.partial`, bytes);
      fs.writeFileSync(`${out}.partial.json`, JSON.stringify({
        version: 1, name: 'src.bin', size: of.length, mtimeNs: st.mtimeNs.toString(), sha256: sha256(of).toString('hex'),
      }));
    };
    holdPartial(data.subarray(0, MiB), data);
    const log = new Log();
    const got = await getFile({ reactor, endpoint: endpoint(), name: 'src.bin', output: out, log: log.add });
    assert.deepEqual([got.offset, got.transferred], [MiB, 2 * MiB]);
    assert.match(log.lines.join('\n'), /resuming "src\.bin" at byte 1048576 of 3145728/);
    assert.ok(fs.readFileSync(out).equals(data));
    // The source is replaced by other content; a partial of the old one must not be continued.
    fs.rmSync(out);
    holdPartial(data.subarray(0, MiB), data);
    const changed = writePattern(source, 3 * MiB, 7);
    const again = await getFile({ reactor, endpoint: endpoint(), name: 'src.bin', output: out, log: log.add });
    assert.equal(again.offset, 0);
    assert.match(log.lines.join('\n'), /"src\.bin" changed since the partial was made: starting again from 0/);
    assert.ok(fs.readFileSync(out).equals(changed));
  });

  it('get: a partial whose bytes are wrong is caught by the hash (mismatch) and dropped, never kept as the file', async () => {
    const source = path.join(dir, 'src.bin');
    const data = writePattern(source, 2 * MiB, 8);
    const out = path.join(local, 'out.bin');
    const st = fs.statSync(source, { bigint: true });
    fs.writeFileSync(`${out}.partial`, Buffer.alloc(MiB, 0x55)); // Right metadata, wrong bytes.
    fs.writeFileSync(`${out}.partial.json`, JSON.stringify({
      version: 1, name: 'src.bin', size: data.length, mtimeNs: st.mtimeNs.toString(), sha256: sha256(data).toString('hex'),
    }));
    const err = await failure(getFile({ reactor, endpoint: endpoint(), name: 'src.bin', output: out }));
    assert.equal(err.reason, 'mismatch');
    assert.deepEqual(fs.readdirSync(local), [], 'neither the file nor the partial is kept');
    const retry = await getFile({ reactor, endpoint: endpoint(), name: 'src.bin', output: out });
    assert.equal(retry.offset, 0);
    assert.ok(fs.readFileSync(out).equals(data));
  });

  it('unsafe names are refused with a clear error, on a connection that stays usable, while another upload goes on', async () => {
    const data = pattern(2 * MiB, 9);
    const busy = await halfUpload('ok.bin', data, MiB);
    writePattern(path.join(dir, 'fine.txt'), 10, 10);
    const raw = await RawClient.connect(served.port);
    const name = (bytes: Buffer) => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length);
      // GET: have, size, mtime (u64 each) and an empty hash (u8 0), then the name.
      const body = Buffer.concat([Buffer.from([MessageType.GET]), Buffer.alloc(25), length, bytes]);
      return Buffer.concat([frameHeader(body.length), body]);
    };
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from('..'), /not a file name/],
      [Buffer.from('/etc/passwd'), /path separator/],
      [Buffer.from('../outside'), /path separator/],
      [Buffer.from('sub\\dir'), /path separator/],
      [Buffer.from('nul\0byte'), /NUL/],
      [Buffer.alloc(256, 0x61), /256 bytes/],
      [Buffer.from('.iomux-partial'), /reserved/],
    ];
    for (const [bytes, message] of cases) {
      await raw.write(name(bytes));
      expectError(await raw.next(), 'BAD_NAME', message);
    }
    // The same connection still serves a good request.
    raw.send({ type: 'get', name: 'fine.txt', have: 0, size: 0, mtimeNs: 0n, sha256: null });
    const sending = await raw.next();
    assert.equal(sending?.type, 'sending');
    raw.destroy();
    await raw.ended;
    // And the upload in flight was never disturbed.
    await busy.write(data.subarray(MiB));
    assert.deepEqual(await busy.next(), { type: 'stored', size: data.length, sha256: sha256(data) });
    busy.end();
    await busy.ended;
    assert.ok(fs.readFileSync(path.join(dir, 'ok.bin')).equals(data));
    assert.equal(served.server.stats.refused, cases.length);
  });

  it('names reach no log line raw: C1 controls (U+009B, a one-character ESC [) and bidi overrides are escaped', async () => {
    const data = writePattern(path.join(local, 'up.bin'), 1000, 3);
    for (const name of ['csi\u009b2J.bin', 'rtl\u202egnp.exe']) {
      await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'up.bin'), name });
      assert.ok(fs.readFileSync(path.join(dir, name)).equals(data), 'stored under the name as sent');
    }
    const raw = await RawClient.connect(served.port);
    raw.send({ type: 'get', name: 'missing\u009b.bin', have: 0, size: 0, mtimeNs: 0n, sha256: null });
    expectError(await raw.next(), 'NOT_FOUND');
    raw.destroy();
    await raw.ended;
    const unprintable = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
    assert.deepEqual(served.log.lines.filter((line) => unprintable.test(line)), [], 'log lines with raw control characters');
    const log = served.log.lines.join('\n');
    for (const escaped of ['csi\\x9b2J.bin', 'rtl\\u202egnp.exe', 'missing\\x9b.bin']) assert.ok(log.includes(escaped), `${escaped} in:\n${log}`);
  });

  it('a symlink inside DIR pointing outside it is refused (get and put); one to a file inside DIR is followed', async () => {
    const outside = path.join(tempDir('outside'), 'secret.txt');
    fs.writeFileSync(outside, 'not for you');
    fs.symlinkSync(outside, path.join(dir, 'escape'));
    fs.symlinkSync('/etc', path.join(dir, 'etc'));
    const data = writePattern(path.join(dir, 'real.bin'), 1000, 11);
    fs.symlinkSync('real.bin', path.join(dir, 'alias'));
    const out = path.join(local, 'x');
    for (const name of ['escape', 'etc']) {
      const err = await failure(getFile({ reactor, endpoint: endpoint(), name, output: out }));
      assert.equal(err.reason, 'refused');
      assert.equal(err.code, 'FORBIDDEN');
      assert.match(err.message, new RegExp(`"${name}" is a symbolic link to .*, outside the served directory`));
    }
    fs.writeFileSync(path.join(local, 'escape'), 'overwrite?');
    const put = await failure(putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'escape') }));
    assert.equal(put.code, 'FORBIDDEN');
    assert.match(put.message, /"escape" is a symbolic link to .*outside the served directory; an upload never replaces one/);
    assert.equal(fs.readFileSync(outside, 'utf8'), 'not for you');
    const got = await getFile({ reactor, endpoint: endpoint(), name: 'alias', output: out });
    assert.ok(fs.readFileSync(got.path).equals(data));
  });

  it('a FIFO or a directory in DIR is refused, not opened for reading', async () => {
    fs.mkdirSync(path.join(dir, 'subdir'));
    const fifo = path.join(dir, 'pipe');
    const made = require('node:child_process').spawnSync('mkfifo', [fifo]);
    const names = made.status === 0 ? ['subdir', 'pipe'] : ['subdir'];
    for (const name of names) {
      const err = await failure(getFile({ reactor, endpoint: endpoint(), name, output: path.join(local, 'x') }));
      assert.equal(err.code, 'FORBIDDEN');
      assert.match(err.message, /is not a regular file/);
    }
  });

  describe('malformed frames close that connection only', () => {
    const putBody = (size: Buffer, hash: Buffer) => Buffer.concat([
      Buffer.from([MessageType.PUT]), size, Buffer.from([hash.length]), hash, Buffer.from([0, 1]), Buffer.from('m'),
    ]);
    const framed = (body: Buffer) => Buffer.concat([frameHeader(body.length), body]);
    const u64 = (v: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(v);
      return b;
    };
    const cases: Array<{ what: string; bytes: Buffer; answer: RegExp | null }> = [
      { what: 'a truncated header (2 of 4 bytes, then the end)', bytes: Buffer.from([0, 0]), answer: null },
      { what: 'an oversize header (a 1 MiB frame)', bytes: Buffer.concat([frameHeader(MiB), Buffer.alloc(100)]), answer: /A frame of 1048576 bytes is larger than the limit of 2048/ },
      { what: 'an absurd header (4 GiB - 1)', bytes: Buffer.from([0xff, 0xff, 0xff, 0xff]), answer: /4294967295 bytes is larger/ },
      { what: 'a negative size', bytes: framed(putBody(u64((1n << 64n) - 10n), Buffer.alloc(32))), answer: /size is negative \(-10/ },
      { what: 'an absurd size', bytes: framed(putBody(u64(1n << 62n), Buffer.alloc(32))), answer: /is absurd/ },
      { what: 'a malformed hash (20 bytes)', bytes: framed(putBody(u64(5n), Buffer.alloc(20))), answer: /sha256 is 20 bytes; a SHA-256 is 32/ },
      { what: 'an unknown message type', bytes: framed(Buffer.from([0x7e, 1, 2])), answer: /unknown message type 0x7e/ },
      { what: 'a reply type from a client', bytes: framed(Buffer.from([MessageType.ACCEPT, 0, 0, 0, 0, 0, 0, 0, 0])), answer: /a client sent a ACCEPT/ },
    ];

    it(`each of ${cases.length} kinds gets its reason and a closed connection; an upload in flight completes`, async () => {
      const data = pattern(2 * MiB, 12);
      const busy = await halfUpload('survivor.bin', data, MiB);
      for (const { what, bytes, answer } of cases) {
        const raw = await RawClient.connect(served.port);
        await raw.write(bytes);
        if (answer === null) raw.end();
        const reply = await raw.next();
        if (answer === null) assert.equal(reply, null, what);
        else expectError(reply, 'BAD_MESSAGE', answer);
        assert.equal(await raw.next(), null, `${what}: the server closed the connection`);
        raw.destroy();
        await raw.ended;
      }
      await served.log.waitFor(/the connection ended inside a frame \(2 bytes of it\)/);
      assert.equal(served.server.stats.malformed, cases.length);
      await busy.write(data.subarray(MiB));
      assert.deepEqual(await busy.next(), { type: 'stored', size: data.length, sha256: sha256(data) });
      busy.end();
      await busy.ended;
    });

    it('one request at a time: a second request sent before the first is answered is malformed', async () => {
      writePattern(path.join(dir, 'x.bin'), 2 * MiB, 13);
      const raw = await RawClient.connect(served.port);
      const get = { type: 'get' as const, name: 'x.bin', have: 0, size: 0, mtimeNs: 0n, sha256: null };
      raw.send(get);
      raw.send(get);
      expectError(await raw.next(), 'BAD_MESSAGE', /a request arrived before the answer to the previous one/);
      assert.equal(await raw.next(), null);
      raw.destroy();
      await raw.ended;
    });
  });

  it('two clients uploading the same name at once: the second is refused (BUSY), the first one\'s bytes are stored alone', async () => {
    const first = pattern(2 * MiB, 14);
    const raw = await halfUpload('contested.bin', first, MiB);
    writePattern(path.join(local, 'contested.bin'), 2 * MiB, 15);
    const err = await failure(putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'contested.bin') }));
    assert.deepEqual([err.reason, err.code], ['refused', 'BUSY']);
    assert.match(err.message, /"contested\.bin" is being uploaded by another client/);
    await raw.write(first.subarray(MiB));
    assert.deepEqual(await raw.next(), { type: 'stored', size: first.length, sha256: sha256(first) });
    raw.end();
    await raw.ended;
    assert.ok(fs.readFileSync(path.join(dir, 'contested.bin')).equals(first));
    // Once it is done, the name is free again.
    const second = await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'contested.bin') });
    assert.equal(second.offset, 0);
  });

  it('--max-size is enforced before any byte is stored', async () => {
    await served.close();
    served = startServer(reactor, dir, { maxSize: MiB });
    writePattern(path.join(local, 'big.bin'), MiB + 1, 16);
    const err = await failure(putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'big.bin') }));
    assert.deepEqual([err.reason, err.code], ['refused', 'TOO_LARGE']);
    assert.match(err.message, /"big\.bin" is 1048577 bytes; this server takes at most 1048576 \(--max-size\)/);
    assert.deepEqual(fs.readdirSync(path.join(dir, '.iomux-partial')), [], 'no partial, no metadata');
    assert.ok(!fs.existsSync(path.join(dir, 'big.bin')));
    writePattern(path.join(local, 'small.bin'), MiB, 17);
    await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'small.bin') });
  });

  it('16 uploads and 16 downloads at once, on one reactor, all verified', async () => {
    // One hashing thread for all 32 transfers, as a program making many would share it.
    const hasher = new FileHasher(reactor);
    const files = Array.from({ length: 16 }, (_, i) => {
      const file = path.join(local, `f${i}.bin`);
      writePattern(file, 256 * 1024 + i, 100 + i);
      writePattern(path.join(dir, `g${i}.bin`), 128 * 1024 + i, 200 + i);
      return file;
    });
    const results = await Promise.all([
      ...files.map((file) => putFile({ reactor, endpoint: endpoint(), file, hasher })),
      ...files.map((_, i) => getFile({ reactor, endpoint: endpoint(), name: `g${i}.bin`, output: path.join(local, `g${i}.bin`), hasher })),
    ]);
    await hasher.close();
    for (const r of results) assert.equal(sha256File(r.path), r.sha256);
    assert.deepEqual([served.server.stats.stored, served.server.stats.sent], [16, 16]);
  });

  it('close(): transfers in flight are told, keep their partials, and resume on the next server', async () => {
    const data = writePattern(path.join(local, 'cut.bin'), 2 * MiB, 18);
    const raw = await halfUpload('cut.bin', data, 768 * 1024);
    await waitForSize(partialOf(dir, 'cut.bin'), 768 * 1024);
    await served.close();
    expectError(await raw.next(), 'SHUTTING_DOWN');
    await raw.ended;
    assert.deepEqual(partials(dir).map((p) => p.size), [768 * 1024]);
    served = startServer(reactor, dir);
    const put = await putFile({ reactor, endpoint: endpoint(), file: path.join(local, 'cut.bin') });
    assert.equal(put.offset, 768 * 1024);
    assert.ok(fs.readFileSync(path.join(dir, 'cut.bin')).equals(data));
  });

  const noTmpfs = tmpfsUnavailable();
  (noTmpfs === null ? it : it.skip)(`no space left (a 2 MiB tmpfs): NO_SPACE, the partial is kept, everything else is served, and it resumes once there is room${
    noTmpfs === null ? '' : ` [skipped here: ${noTmpfs}]`}`, async () => {
    const fsDisk = mountTmpfs('2m');
    let disk: Served | null = null;
    try {
      disk = startServer(reactor, fsDisk.dir);
      writePattern(path.join(fsDisk.dir, 'small.txt'), 1000, 19);
      const data = writePattern(path.join(local, 'huge.bin'), 3 * MiB, 20);
      const err = await failure(putFile({ reactor, endpoint: { port: disk.port }, file: path.join(local, 'huge.bin') }));
      assert.deepEqual([err.reason, err.code], ['no space', 'NO_SPACE']);
      assert.match(err.message, /no space left on the server after \d+ of 3145728 bytes of "huge\.bin"; what was written is kept for a retry/);
      const held = partials(fsDisk.dir);
      assert.equal(held.length, 1);
      assert.ok(held[0].size > MiB && held[0].size < 3 * MiB, `partial of ${held[0].size} bytes`);
      await disk.log.waitFor(/ENOSPC.*partial kept/);
      // Nothing else broke: downloads are served, the server still accepts.
      const small = await getFile({ reactor, endpoint: { port: disk.port }, name: 'small.txt', output: path.join(local, 'small.txt') });
      assert.equal(small.size, 1000);
      fsDisk.resize('8m');
      const put = await putFile({ reactor, endpoint: { port: disk.port }, file: path.join(local, 'huge.bin') });
      assert.equal(put.offset, held[0].size);
      assert.ok(fs.readFileSync(path.join(fsDisk.dir, 'huge.bin')).equals(data));
    } finally {
      await disk?.close();
      fsDisk.unmount();
    }
  });
});

describe('files: the server on a reactor that blocks its thread in run()', () => {
  it('serves a put and a get from a worker thread whose reactor runs blocking, and stops through a Waker', async () => {
    const dir = tempDir('run');
    const local = tempDir('run-cli');
    const data = writePattern(path.join(local, 'r.bin'), 2 * MiB, 21);
    const waker = new Waker();
    const worker = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads');
      const { Reactor } = require(${JSON.stringify(path.resolve(__dirname, '../lib/reactor.js'))});
      const { FileServer } = require(${JSON.stringify(path.resolve(__dirname, '../lib/files/server.js'))});
      const reactor = new Reactor();
      const server = new FileServer({ reactor, dir: workerData.dir });
      parentPort.postMessage(server.listen().port);
      reactor.add(workerData.stopFd, ${EVENT_READ}, () => {
        reactor.remove(workerData.stopFd);
        server.close(() => reactor.stop());
      });
      reactor.run();
      reactor.close();
      parentPort.postMessage(server.stats);
    `, { eval: true, workerData: { dir, stopFd: waker.readFd } });
    const messages: unknown[] = [];
    const port = await new Promise<number>((resolve) => worker.once('message', resolve));
    worker.on('message', (m) => messages.push(m));
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const reactor = new Reactor().attach();
    try {
      await putFile({ reactor, endpoint: { port }, file: path.join(local, 'r.bin') });
      const got = await getFile({ reactor, endpoint: { port }, name: 'r.bin', output: path.join(local, 'back.bin') });
      assert.ok(fs.readFileSync(got.path).equals(data));
    } finally {
      reactor.close();
      waker.wake();
      await exited;
      waker.close();
    }
    assert.deepEqual((messages[0] as { stored: number; sent: number }).stored, 1);
    assert.deepEqual((messages[0] as { stored: number; sent: number }).sent, 1);
  });
});

after(removeTempDirs);
