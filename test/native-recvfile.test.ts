/**
 * recvfile (Linux): a socket's bytes into a file inside the kernel (splice through a pipe), at an
 * explicit offset, on real sockets and files. What an upload relies on — byte-exact at the offset,
 * the bytes around it and the file position untouched, -1 with nothing there, 0 at the end, the
 * pipe empty between calls — and the errors, each naming the side that failed.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding as b, constants as C } from '../lib/native';
import { mountTmpfs, tmpfsUnavailable } from './files-fixtures';
import { Resources, assertSystemError, connectedPair, descriptorFlags, O_CLOEXEC, releaseAfterEach, settle, withFatalSigpipe } from './fixtures/sockets';
import { linuxFeature, skipUnless } from './skip';

const res = new Resources();
const O_NONBLOCK = 0o4000;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('native recvfile (Linux)', function () {
  before(function () {
    linuxFeature(this, b.recvfile, 'recvfile (elsewhere an upload is recv then write)');
  });
  releaseAfterEach(res);

  let dir: string;
  let target: string;
  let files: number[];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-recvfile-'));
    target = path.join(dir, 'target');
    files = [];
  });
  afterEach(() => {
    for (const fd of files) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  /** A file descriptor closed after the test. */
  const open = (name: string, flags: string): number => {
    const fd = fs.openSync(name, flags);
    files.push(fd);
    return fd;
  };
  const newPipe = (size?: number): [number, number] => {
    const ends = b.pipe!(size);
    ends.forEach((fd) => res.fd(fd));
    return ends;
  };
  /** The pipe holds nothing: a read of its (non-blocking) read end would block. */
  const assertEmpty = (pipe: [number, number]): void => {
    assert.throws(() => fs.readSync(pipe[0], Buffer.alloc(1)), { code: 'EAGAIN' });
  };

  /**
   * Sends `data` from `writer` and moves it with recvfile into `outFd` from `offset`, `length` at
   * most per call; returns each call's result.
   */
  function pumpInto(writer: number, reader: number, outFd: number, offset: number, data: Buffer, pipe: [number, number], length = 1 << 20): number[] {
    const results: number[] = [];
    let sent = 0;
    let moved = 0;
    while (moved < data.length) {
      if (sent < data.length) {
        const n = b.send(writer, data, sent, Math.min(65536, data.length - sent));
        if (n > 0) sent += n;
      }
      const got = b.recvfile!(outFd, reader, offset + moved, length, pipe);
      results.push(got);
      assert.notEqual(got, 0, 'no end of stream before the writer ended');
      if (got > 0) moved += got;
      if (got === -1 && sent === data.length) settle(reader, C.POLLIN);
    }
    return results;
  }

  for (const transport of ['tcp4', 'tcp6', 'socketpair'] as const) {
    it(`${transport}: a stream lands byte-exact at the offset; the bytes before it, the file position and the pipe are untouched`, () => {
      const { client, server } = connectedPair(res, transport);
      const before = randomBytes(5000);
      fs.writeFileSync(target, before);
      const outFd = open(target, 'r+');
      assert.equal(fs.readSync(outFd, Buffer.alloc(10), 0, 10, null), 10); // The file position is now 10.
      const pipe = newPipe(1 << 20);
      const data = randomBytes(3 * 1024 * 1024 + 17);
      pumpInto(client, server, outFd, 1234, data, pipe);
      assertEmpty(pipe);
      const written = fs.readFileSync(target);
      assert.equal(written.length, 1234 + data.length);
      assert.deepEqual(written.subarray(0, 1234), before.subarray(0, 1234));
      assert.equal(sha256(written.subarray(1234)), sha256(data));
      const next = Buffer.alloc(10);
      assert.equal(fs.readSync(outFd, next, 0, 10, null), 10);
      assert.deepEqual(next, before.subarray(10, 20), 'the next read continues at 10');
    });
  }

  it('-1 when nothing is there; 0 once the peer ended and everything moved, and again after', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    const outFd = open(target, 'w');
    const pipe = newPipe();
    assert.equal(b.recvfile!(outFd, server, 0, 100, pipe), -1);
    b.send(client, Buffer.from('the last bytes'));
    b.shutdown(client, C.SHUT_WR);
    settle(server, C.POLLIN);
    assert.equal(b.recvfile!(outFd, server, 0, 100, pipe), 14, 'the bytes first, though the end came with them');
    assert.equal(b.recvfile!(outFd, server, 14, 100, pipe), 0);
    assert.equal(b.recvfile!(outFd, server, 14, 100, pipe), 0);
    assert.equal(fs.readFileSync(target, 'latin1'), 'the last bytes');
  });

  it('moves at most `length` per call, leaving the rest in the socket and none in the pipe', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const outFd = open(target, 'w');
    const pipe = newPipe();
    const data = randomBytes(100_000);
    assert.equal(b.send(client, data), data.length);
    assert.equal(b.recvfile!(outFd, server, 0, 30_000, pipe), 30_000);
    assertEmpty(pipe);
    const rest = Buffer.alloc(100_000);
    assert.equal(b.recv(server, rest), 70_000);
    assert.deepEqual(rest.subarray(0, 70_000), data.subarray(30_000));
    assert.deepEqual(fs.readFileSync(target), data.subarray(0, 30_000));
  });

  it('a pipe of the default size (64 KiB) carries a stream larger than itself in one call', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    b.setsockopt(client, C.SOL_SOCKET, C.SO_SNDBUF, 1 << 20);
    const outFd = open(target, 'w');
    const pipe = newPipe();
    const data = randomBytes(200_000);
    let sent = 0;
    while (sent < data.length) sent += Math.max(0, b.send(client, data, sent));
    assert.equal(b.recvfile!(outFd, server, 0, 1 << 20, pipe), data.length);
    assert.deepEqual(fs.readFileSync(target), data);
  });

  it('pipe(): non-blocking, close-on-exec, of the size asked (above pipe-max-size: the default, no error)', () => {
    const [readEnd, writeEnd] = newPipe(1 << 20);
    for (const fd of [readEnd, writeEnd]) {
      const flags = descriptorFlags(fd);
      assert.equal(flags & O_NONBLOCK, O_NONBLOCK);
      assert.equal(flags & O_CLOEXEC, O_CLOEXEC);
    }
    // No F_GETPIPE_SZ in Node: a write of the whole capacity fits, one byte more does not.
    const fill = (fd: number): number => {
      let total = 0;
      for (;;) {
        try {
          total += fs.writeSync(fd, Buffer.alloc(65536));
        } catch (err) {
          assert.equal((err as NodeJS.ErrnoException).code, 'EAGAIN');
          return total;
        }
      }
    };
    const max = Number(fs.readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
    assert.equal(fill(writeEnd), Math.min(1 << 20, max));
    assert.equal(fill(newPipe(2 ** 30)[1]), 65536, 'a refused size leaves the default');
  });

  it('errors from the file side name outFd: EBADF (read-only), EINVAL (O_APPEND: splice cannot append)', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    fs.writeFileSync(target, 'x');
    for (const [flags, code] of [['r', 'EBADF'], ['a', 'EINVAL']] as const) {
      b.send(client, Buffer.from('data'));
      const outFd = open(target, flags);
      let failure: unknown = null;
      assertSystemError(() => {
        try {
          b.recvfile!(outFd, server, 0, 4, newPipe()); // A fresh pipe: a failed call may leave bytes in one.
        } catch (err) {
          failure = err;
          throw err;
        }
      }, code, 'splice');
      assert.equal((failure as { fd?: number }).fd, outFd);
    }
  });

  it('errors from the connection side name inFd: EBADF (closed), ECONNRESET (a reset, reported once)', () => {
    const outFd = open(target, 'w');
    const pipe = newPipe();
    const closed = fs.openSync(target, 'r');
    fs.closeSync(closed);
    assert.throws(() => b.recvfile!(outFd, closed, 0, 4, pipe),
      (err: Error & { code?: string; fd?: number; syscall?: string }) => err.code === 'EBADF' && err.fd === closed && err.syscall === 'splice');

    const { client, server } = connectedPair(res, 'tcp4');
    b.setsockopt(client, C.SOL_SOCKET, C.SO_LINGER, { onoff: true, linger: 0 });
    res.close(client); // A reset.
    settle(server, C.POLLIN);
    assert.throws(() => b.recvfile!(outFd, server, 0, 4, pipe),
      (err: Error & { code?: string; fd?: number }) => err.code === 'ECONNRESET' && err.fd === server);
    assert.equal(b.recvfile!(outFd, server, 0, 4, pipe), 0, 'after the reset was reported: the end');
  });

  it('a pipe whose read end was closed: EPIPE, without SIGPIPE (the kernel raises one: splice has no MSG_NOSIGNAL)', () => {
    const child = withFatalSigpipe(`
      const [x, y] = b.socketpair(C.AF_UNIX, C.SOCK_STREAM);
      b.send(x, Buffer.from('data'));
      const [readEnd, writeEnd] = b.pipe();
      fs.closeSync(readEnd);
      const outFd = fs.openSync(${JSON.stringify(path.join(os.tmpdir(), `iomux-recvfile-epipe-${process.pid}`))}, 'w');
      try { b.recvfile(outFd, y, 0, 4, [readEnd, writeEnd]); } catch (err) { console.log('recvfile: ' + err.code); }
      fs.writeSync(writeEnd, 'x'); // The control: write(2) to the same pipe raises SIGPIPE and the process dies here.
      console.log('not reached');
    `);
    fs.rmSync(path.join(os.tmpdir(), `iomux-recvfile-epipe-${process.pid}`), { force: true });
    assert.equal(child.stderr, '');
    assert.equal(child.stdout, 'SIGPIPE ignored: false\nrecvfile: EPIPE\n');
    assert.equal(child.signal, 'SIGPIPE');
  });

  it('argument checks: descriptors, offset, a length of at least 1, a pipe of two descriptors', () => {
    const { server } = connectedPair(res, 'socketpair');
    const outFd = open(target, 'w');
    const pipe = newPipe();
    assert.throws(() => b.recvfile!(outFd, server, 0, 0, pipe), RangeError);
    assert.throws(() => b.recvfile!(outFd, server, -1, 1, pipe), RangeError);
    assert.throws(() => b.recvfile!(outFd, server, 2 ** 53, 1, pipe), RangeError);
    assert.throws(() => b.recvfile!(-1, server, 0, 1, pipe), RangeError);
    assert.throws(() => b.recvfile!(outFd, server, 0.5, 1, pipe), TypeError);
    for (const bad of [undefined, null, 5, [pipe[0]], [...pipe, 9], [pipe[0], '9'], new Int32Array(pipe), { 0: 1, 1: 2, length: 2 }]) {
      assert.throws(() => b.recvfile!(outFd, server, 0, 1, bad as unknown as [number, number]), TypeError, `pipe ${String(bad)}`);
    }
    assert.throws(() => b.recvfile!(outFd, server, 0, 1, [pipe[0], -2]), RangeError);
    assert.throws(() => b.pipe!(-1), RangeError);
    assert.throws(() => b.pipe!('big' as unknown as number), TypeError);
  });

  describe('a full file system', function () {
    const noTmpfs = tmpfsUnavailable();
    before(function () {
      skipUnless(this, noTmpfs === null, `the ENOSPC tests need a small tmpfs: ${noTmpfs}`);
    });

    it('ENOSPC names outFd, after what fit was written; the socket keeps what was not taken', () => {
      const disk = mountTmpfs('256k');
      try {
        const { client, server } = connectedPair(res, 'socketpair');
        b.setsockopt(client, C.SOL_SOCKET, C.SO_SNDBUF, 1 << 20);
        const outFd = open(path.join(disk.dir, 'full'), 'w');
        const pipe = newPipe(1 << 20);
        const data = randomBytes(400_000);
        let sent = 0;
        while (sent < data.length) sent += Math.max(0, b.send(client, data, sent));
        let moved = 0;
        let failure: (Error & { code?: string; fd?: number }) | null = null;
        try {
          for (;;) moved += b.recvfile!(outFd, server, moved, 65536, pipe);
        } catch (err) {
          failure = err as Error & { code?: string; fd?: number };
        }
        assert.equal(failure?.code, 'ENOSPC');
        assert.equal(failure?.fd, outFd);
        const stored = fs.readFileSync(path.join(disk.dir, 'full'));
        assert.ok(stored.length >= moved && stored.length <= 256 * 1024, `${stored.length} bytes stored, ${moved} reported`);
        assert.deepEqual(stored, data.subarray(0, stored.length));
      } finally {
        for (const fd of files.splice(0)) fs.closeSync(fd);
        disk.unmount();
      }
    });
  });
});
