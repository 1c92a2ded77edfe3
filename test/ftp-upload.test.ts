/**
 * How the FTP server stores an upload. A binary STOR on Linux moves the bytes inside the kernel
 * (recvfile: socket → pipe → file); TYPE A and APPE read and write. Each way must end as before:
 * 226 with every byte in place, 552 when the disk fills, 426 when the client goes away — and its
 * pipe closed every time.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { binding } from '../lib/native';
import { tmpfsUnavailable } from './files-fixtures';
import { pattern, sha256, startServer, TestServer } from './ftp-fixtures';
import { leakedSince, openKernelObjects } from './helpers';
import { linuxFeature, skipUnless } from './skip';

function run(...args: string[]): void {
  const done = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  if (done.status !== 0) throw new Error(`${args.join(' ')}: ${done.stderr}`);
}

/** The pipes this process holds (openKernelObjects counts sockets and epoll, not pipes). */
function openPipes(): string[] {
  const pipes: string[] = [];
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${name}`);
      if (target.startsWith('pipe:')) pipes.push(`${name} -> ${target}`);
    } catch {
      // The directory's own descriptor, gone by now.
    }
  }
  return pipes.sort();
}

/** This process's descriptors open on `file`. */
function descriptorsOf(file: string): string[] {
  return fs.readdirSync('/proc/self/fd').filter((name) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${name}`) === file;
    } catch {
      return false;
    }
  });
}

describe('ftp server: storing uploads', function () {
  this.timeout(30000);
  let t: TestServer;
  let kernelObjects: Map<number, string>;
  let pipesBefore: string[];
  /** recvfile calls the server made (the binding, counted in place; the server runs in this process). */
  let recvfileCalls = 0;
  const realRecvfile = binding.recvfile;

  beforeEach(async () => {
    kernelObjects = openKernelObjects();
    pipesBefore = openPipes();
    recvfileCalls = 0;
    if (realRecvfile) {
      (binding as { recvfile?: typeof realRecvfile }).recvfile = (...args) => {
        recvfileCalls++;
        return realRecvfile(...args);
      };
    }
    t = await startServer({ dataTimeoutMs: 2000 });
  });

  afterEach(async () => {
    (binding as { recvfile?: typeof realRecvfile }).recvfile = realRecvfile;
    await t.stop();
    assert.deepEqual(leakedSince(kernelObjects), []);
    assert.deepEqual(openPipes(), pipesBefore, 'every transfer closed its pipe');
  });

  it('a binary STOR goes socket → file inside the kernel (Linux), byte-exact, also after REST', async function () {
    linuxFeature(this, realRecvfile, 'recvfile (elsewhere every upload is recv then write: the other tests cover it)');
    const body = pattern(5 * 1024 * 1024 + 3, 11);
    const c = await t.login();
    await c.expect('TYPE I', 200);
    assert.equal((await c.upload('STOR big.bin', body)).code, 226);
    assert.ok(recvfileCalls > 0, 'the upload went through recvfile');
    assert.equal(sha256(fs.readFileSync(path.join(t.home, 'big.bin'))), sha256(body));
    await c.expect('REST 4000000', 350);
    assert.equal((await c.upload('STOR big.bin', body.subarray(4000000))).code, 226);
    assert.equal(sha256(fs.readFileSync(path.join(t.home, 'big.bin'))), sha256(body));
    await c.quit();
  });

  it('the file is closed after the upload (off the reactor\'s thread): no descriptor of it is left', async () => {
    const file = path.join(t.home, 'closed.bin');
    const c = await t.login();
    await c.expect('TYPE I', 200);
    for (const command of ['STOR', 'STOR', 'APPE']) { // The second truncates what the first wrote: ext4 flushes at its close.
      assert.equal((await c.upload(`${command} closed.bin`, pattern(2 * 1024 * 1024, 5))).code, 226);
      await new Promise<void>((resolve) => {
        const check = () => (descriptorsOf(file).length === 0 ? resolve() : setTimeout(check, 5));
        check();
      });
    }
    assert.equal(fs.statSync(file).size, 4 * 1024 * 1024);
    await c.quit();
  });

  it('TYPE A and APPE read and write instead (splice can neither convert nor append)', async () => {
    const c = await t.login();
    await c.expect('TYPE A', 200);
    assert.equal((await c.upload('STOR text.txt', Buffer.from('one\r\ntwo\r\n'))).code, 226);
    assert.equal((await c.upload('APPE text.txt', Buffer.from('three\r\n'))).code, 226);
    await c.expect('TYPE I', 200);
    assert.equal((await c.upload('APPE text.txt', Buffer.from('four\n'))).code, 226);
    assert.equal(fs.readFileSync(path.join(t.home, 'text.txt'), 'latin1'), 'one\ntwo\nthree\nfour\n');
    assert.equal(recvfileCalls, 0);
    await c.quit();
  });

  it('a client that resets its data connection mid-upload gets 426; the session goes on', async () => {
    const c = await t.login();
    await c.expect('TYPE I', 200);
    const data = await c.passive();
    await c.expect('STOR cut.bin', 150);
    data.write(Buffer.alloc(300000, 4));
    await new Promise<void>((resolve) => {
      const check = () => (fs.statSync(path.join(t.home, 'cut.bin')).size === 300000 ? resolve() : setImmediate(check));
      check();
    });
    data.resetAndDestroy();
    assert.equal((await c.reply()).code, 426);
    await c.expect('NOOP', 200);
    assert.equal(fs.statSync(path.join(t.home, 'cut.bin')).size, 300000);
    await c.quit();
  });

  describe('a full disk', function () {
    const noTmpfs = tmpfsUnavailable();
    before(function () {
      skipUnless(this, noTmpfs === null, `the ENOSPC tests need a small tmpfs: ${noTmpfs}`);
    });

    for (const type of ['I', 'A'] as const) {
      it(`TYPE ${type}: 552 once the disk is full, the file keeps what fit, and the session goes on`, async () => {
        const small = path.join(t.home, 'small');
        fs.mkdirSync(small);
        run('mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small);
        try {
          const c = await t.login();
          await c.expect(`TYPE ${type}`, 200);
          const data = await c.passive();
          await c.expect('STOR small/full.bin', 150);
          data.on('error', () => undefined); // The server may reset it once it has failed the upload.
          data.end(Buffer.alloc(3 * 1024 * 1024, 0x41));
          const reply = await c.reply();
          assert.equal(reply.code, 552);
          assert.match(reply.text, /insufficient storage space \(ENOSPC\)/);
          await c.expect('NOOP', 200);
          const stored = fs.readFileSync(path.join(small, 'full.bin'));
          assert.ok(stored.length > 0 && stored.length <= 1024 * 1024, `${stored.length} bytes stored`);
          assert.ok(stored.every((byte) => byte === 0x41));
          assert.equal(recvfileCalls > 0, type === 'I' && realRecvfile !== undefined);
          await c.quit();
        } finally {
          run('umount', small);
        }
      });
    }
  });
});
