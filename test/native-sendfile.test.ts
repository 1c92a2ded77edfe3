/**
 * sendfile (Linux): file bytes to a socket inside the kernel, from an explicit offset, on real
 * files and sockets. What the stream layer relies on — byte-exact ranges, an untouched file
 * position, -1 on a full socket, 0 at the end — and the errors the kernel really gives.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding as b, constants as C } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import { Resources, assertSystemError, connectedPair, releaseAfterEach, signalLater, withFatalSigpipe } from './fixtures/sockets';
import { linuxFeature, skipUnless } from './skip';

const res = new Resources();
const FILE_SIZE = 1 << 20;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('native sendfile (Linux)', function () {
  before(function () {
    linuxFeature(this, b.sendfile, 'sendfile (elsewhere the stream layer reads and sends)');
  });
  releaseAfterEach(res);

  let dir: string;
  let content: Buffer;
  let file: string;
  let files: number[];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-sendfile-'));
    file = path.join(dir, 'content');
    content = randomBytes(FILE_SIZE);
    fs.writeFileSync(file, content);
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
  const sendfile = (...args: [number, number, number, number]): number => b.sendfile!(...args);

  /**
   * Sends [offset, offset + length) of `inFd` to `writer` (the first `sent` bytes of it went
   * already) and reads it at `reader`; returns what arrived.
   */
  function pumpFile(writer: number, reader: number, inFd: number, offset: number, length: number, sent = 0): Buffer {
    const received: Buffer[] = [];
    let bytes = 0;
    const sink = Buffer.alloc(65536);
    const waits = new PollFdArray(2);
    while (bytes < length) {
      const wrote = sent < length ? sendfile(writer, inFd, offset + sent, length - sent) : -1;
      if (wrote > 0) sent += wrote;
      assert.notEqual(wrote, 0, 'sendfile found the end of the file inside the range');
      const got = b.recv(reader, sink);
      if (got > 0) {
        received.push(Buffer.from(sink.subarray(0, got)));
        bytes += got;
      }
      if (wrote === -1 && got === -1) {
        waits.clear();
        waits.push(reader, C.POLLIN);
        if (sent < length) waits.push(writer, C.POLLOUT);
        assert.ok(b.poll!(waits.buffer, waits.length, 5000) > 0, 'neither side became ready');
      }
    }
    return Buffer.concat(received);
  }

  for (const transport of ['socketpair', 'tcp4'] as const) {
    it(`${transport}: a range of a file from an offset arrives byte-exact`, () => {
      const { client, server } = connectedPair(res, transport);
      const inFd = open(file, 'r');
      const [offset, length] = [12_345, 700_001];
      const received = pumpFile(client, server, inFd, offset, length);
      assert.equal(received.length, length);
      assert.equal(sha256(received), sha256(content.subarray(offset, offset + length)));
    });
  }

  it('the file position is neither used nor moved', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    const head = Buffer.alloc(10);
    assert.equal(fs.readSync(inFd, head, 0, 10, null), 10); // The position is now 10.
    assert.equal(sendfile(client, inFd, 1000, 16), 16);
    const buffer = Buffer.alloc(64);
    assert.deepEqual(buffer.subarray(0, b.recv(server, buffer)), content.subarray(1000, 1016));
    assert.equal(fs.readSync(inFd, head, 0, 10, null), 10);
    assert.deepEqual(head, content.subarray(10, 20), 'the next read continues at 10');
  });

  it('a full socket is -1, not an exception; once the peer reads, sendfile sends again', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    // Small buffers fill fast; a receive window much under the loopback MSS (64 KiB) would crawl.
    b.setsockopt(client, C.SOL_SOCKET, C.SO_SNDBUF, 16384);
    b.setsockopt(server, C.SOL_SOCKET, C.SO_RCVBUF, 65536);
    const inFd = open(file, 'r');
    let sent = 0;
    let n: number;
    while ((n = sendfile(client, inFd, sent, FILE_SIZE - sent)) > 0) sent += n;
    assert.equal(n, -1);
    assert.ok(sent > 0 && sent < FILE_SIZE, `${sent} bytes went before the buffers filled`);
    const received = pumpFile(client, server, inFd, 0, FILE_SIZE, sent);
    assert.equal(sha256(received), sha256(content));
  });

  it('0 at and past the end of the file, and for a length of 0; a length past the end sends what is there', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    assert.equal(sendfile(client, inFd, FILE_SIZE, 100), 0);
    assert.equal(sendfile(client, inFd, FILE_SIZE + 4096, 100), 0);
    assert.equal(sendfile(client, inFd, 2 ** 40, 100), 0);
    assert.equal(sendfile(client, inFd, 0, 0), 0);
    assert.equal(b.recv(server, Buffer.alloc(8)), -1, 'nothing was sent');
    assert.equal(sendfile(client, inFd, FILE_SIZE - 5, Number.MAX_SAFE_INTEGER), 5);
    const buffer = Buffer.alloc(64);
    assert.deepEqual(buffer.subarray(0, b.recv(server, buffer)), content.subarray(FILE_SIZE - 5));
  });

  it('an offset past the largest file the file system allows is EOVERFLOW, not 0 (ext4: 2^44 bytes; tmpfs: none)', function () {
    const EXT4 = 0xef53;
    const TMPFS = 0x01021994;
    const { client } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    const type = fs.statfsSync(dir).type;
    if (type === EXT4) {
      assert.equal(sendfile(client, inFd, 2 ** 44 - 2 ** 20, 1), 0);
      assertSystemError(() => sendfile(client, inFd, 2 ** 44, 1), 'EOVERFLOW', 'sendfile');
      assertSystemError(() => sendfile(client, inFd, Number.MAX_SAFE_INTEGER, 1), 'EOVERFLOW', 'sendfile');
    } else if (type === TMPFS) {
      assert.equal(sendfile(client, inFd, Number.MAX_SAFE_INTEGER, 1), 0);
    } else {
      skipUnless(this, false, `each file system has its own limit; ext4's and tmpfs's are the ones known here, and ${os.tmpdir()} is neither`);
    }
  });

  it('EBADF: a closed descriptor, a file opened for writing as inFd, a read-only file as outFd', () => {
    const { client } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    const closed = fs.openSync(file, 'r');
    fs.closeSync(closed);
    assertSystemError(() => sendfile(closed, inFd, 0, 1), 'EBADF', 'sendfile');
    assertSystemError(() => sendfile(client, closed, 0, 1), 'EBADF', 'sendfile');
    assertSystemError(() => sendfile(client, open(file, 'a'), 0, 1), 'EBADF', 'sendfile');
    assertSystemError(() => sendfile(open(file, 'r'), inFd, 0, 1), 'EBADF', 'sendfile');
  });

  it('a socket as inFd is ESPIPE, not EINVAL: an explicit offset needs a file that can be read at one', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    b.send(server, Buffer.from('queued'));
    assertSystemError(() => sendfile(client, server, 0, 6), 'ESPIPE', 'sendfile');
  });

  it('EINVAL: an O_APPEND file or an epoll descriptor as outFd, a directory as inFd', () => {
    const { client } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    const epfd = res.fd(b.epoll_create1!());
    assertSystemError(() => sendfile(open(path.join(dir, 'log'), 'a'), inFd, 0, 1), 'EINVAL', 'sendfile');
    assertSystemError(() => sendfile(epfd, inFd, 0, 1), 'EINVAL', 'sendfile');
    assertSystemError(() => sendfile(client, open(dir, 'r'), 0, 1), 'EINVAL', 'sendfile');
  });

  it('any writable file is an outFd too (Linux >= 2.6.33): file to file, at the copy\'s own position', () => {
    const inFd = open(file, 'r');
    const copy = path.join(dir, 'copy');
    const outFd = open(copy, 'w');
    assert.equal(sendfile(outFd, inFd, 100, 50), 50);
    assert.equal(sendfile(outFd, inFd, 0, 10), 10);
    assert.deepEqual(fs.readFileSync(copy), Buffer.concat([content.subarray(100, 150), content.subarray(0, 10)]));
  });

  it('an unconnected TCP socket as outFd is EPIPE (Linux), like send', () => {
    const inFd = open(file, 'r');
    const fd = res.fd(b.socket(C.AF_INET, C.SOCK_STREAM));
    assertSystemError(() => sendfile(fd, inFd, 0, 1), 'EPIPE', 'sendfile');
  });

  it('after the peer closed: EPIPE without SIGPIPE, though the kernel raises one (no MSG_NOSIGNAL for sendfile)', () => {
    fs.writeFileSync(file, 'abc');
    // SigBlk and SigPnd/ShdPnd: after the call SIGPIPE is neither left blocked nor left pending.
    const child = withFatalSigpipe(`
      const bit = (field) => (BigInt('0x' + new RegExp('^' + field + ':\\\\s+(\\\\w+)', 'm').exec(fs.readFileSync('/proc/thread-self/status', 'utf8'))[1]) >> 12n) & 1n;
      const [x, y] = b.socketpair(C.AF_UNIX, C.SOCK_STREAM);
      b.close(y);
      const inFd = fs.openSync(${JSON.stringify(file)}, 'r');
      try { b.sendfile(x, inFd, 0, 3); } catch (err) { console.log('sendfile: ' + err.code); }
      console.log('blocked ' + bit('SigBlk') + ', pending ' + bit('SigPnd') + bit('ShdPnd'));
      fs.writeSync(x, 'x'); // The control: write(2) raises SIGPIPE and the process dies here.
      console.log('not reached');
    `);
    assert.equal(child.stderr, '');
    assert.equal(child.stdout, 'SIGPIPE ignored: false\nsendfile: EPIPE\nblocked 0, pending 00\n');
    assert.equal(child.signal, 'SIGPIPE');
  });

  /** The environment for a child traced by strace: LeakSanitizer cannot run under ptrace (npm run test:asan). */
  function underPtrace(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    return env.ASAN_OPTIONS === undefined ? env : { ...env, ASAN_OPTIONS: `${env.ASAN_OPTIONS}:detect_leaks=0` };
  }

  /**
   * The system calls one sendfile() makes, under strace, in a child Node: those between two marker
   * writes, as lines. `fatal`: SIGPIPE is SIG_DFL there (a listener added and removed), not ignored.
   */
  function traced(call: string, fatal: boolean): string[] {
    if (spawnSync('strace', ['-V']).status !== 0) throw new Error('this test needs strace (apt-get install strace; .ci/run installs it)');
    const trace = path.join(dir, 'trace');
    const child = spawnSync('strace', ['-f', '-e', 'trace=sendfile,rt_sigprocmask,rt_sigaction,write', '-o', trace, process.execPath, '-e', `
      const fs = require('node:fs');
      const { binding: b } = require(${JSON.stringify(require.resolve('../lib/native'))});
      if (${fatal}) { const noop = () => {}; process.on('SIGPIPE', noop); process.removeListener('SIGPIPE', noop); }
      const inFd = fs.openSync(${JSON.stringify(file)}, 'r');
      const outFd = fs.openSync(${JSON.stringify(path.join(dir, 'copy'))}, 'w');
      setImmediate(() => {
        fs.writeSync(outFd, 'begin');
        const sent = ${call};
        fs.writeSync(outFd, 'end');
        console.log(sent);
      });
    `], { encoding: 'utf8', env: underPtrace(process.env) });
    assert.equal(child.status, 0, child.stderr);
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const begin = lines.findIndex((l) => l.includes('"begin"'));
    const end = lines.findIndex((l) => l.includes('"end"'));
    assert.ok(begin >= 0 && end > begin, 'the markers are in the trace');
    return [child.stdout.trim(), ...lines.slice(begin + 1, end).map((l) => l.replace(/^\d+\s+/, ''))];
  }

  it('a chunk bounds each sendfile(2) of one call: 1 MiB in chunks of 256 KiB is four system calls, byte-exact', () => {
    const [sent, ...calls] = traced(`b.sendfile(outFd, inFd, 5, ${FILE_SIZE} - 5, 262144)`, false);
    assert.equal(Number(sent), FILE_SIZE - 5);
    const sendfiles = calls.filter((l) => l.startsWith('sendfile('));
    assert.deepEqual(sendfiles.map((l) => /, (\d+)\) += (\d+)/.exec(l)!.slice(1).map(Number)),
      [[262144, 262144], [262144, 262144], [262144, 262144], [262139, 262139]]);
    // The copy holds the marker "begin", the range, then "end" (sendfile writes at the copy's position).
    assert.equal(sha256(fs.readFileSync(path.join(dir, 'copy')).subarray(5, FILE_SIZE)), sha256(content.subarray(5)));
  });

  it('SIGPIPE ignored (Node\'s default): one rt_sigaction to see so, and no signal-mask calls around the sendfiles', () => {
    const [, ...calls] = traced(`b.sendfile(outFd, inFd, 0, ${FILE_SIZE}, 65536)`, false);
    assert.deepEqual(calls.filter((l) => !l.startsWith('sendfile(')).map((l) => l.replace(/\(.*/, '')), ['rt_sigaction']);
    assert.match(calls[0], /^rt_sigaction\(SIGPIPE, NULL, \{sa_handler=SIG_IGN/);
    assert.equal(calls.filter((l) => l.startsWith('sendfile(')).length, FILE_SIZE / 65536);
  });

  it('SIGPIPE not ignored: blocked once around all the sendfiles of the call, and the old mask restored', () => {
    const [, ...calls] = traced(`b.sendfile(outFd, inFd, 0, ${FILE_SIZE}, 262144)`, true);
    const kinds = calls.map((l) => l.replace(/\(.*/, ''));
    assert.deepEqual(kinds, ['rt_sigaction', 'rt_sigprocmask', 'sendfile', 'sendfile', 'sendfile', 'sendfile', 'rt_sigprocmask']);
    assert.match(calls[0], /^rt_sigaction\(SIGPIPE, NULL, \{sa_handler=SIG_DFL/);
    assert.match(calls[1], /^rt_sigprocmask\(SIG_BLOCK, \[PIPE\]/);
    assert.match(calls[6], /^rt_sigprocmask\(SIG_SETMASK, \[\]/);
  });

  it('a full socket mid-call: the bytes that went, then -1 on the next call', () => {
    const { client } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    const sent = sendfile(client, inFd, 0, FILE_SIZE);
    assert.ok(sent > 0 && sent < FILE_SIZE, `a socketpair takes less than ${FILE_SIZE} bytes at once; sent ${sent}`);
    assert.equal(b.sendfile!(client, inFd, sent, FILE_SIZE - sent, 4096), -1);
  });

  it('a signal during a blocked sendfile (EINTR) is retried: the call goes on until SO_SNDTIMEO ends it with -1', async () => {
    const { client } = connectedPair(res, 'socketpair');
    const inFd = open(file, 'r');
    while (sendfile(client, inFd, 0, FILE_SIZE) > 0);
    b.setNonBlocking(client, false);
    b.setsockopt(client, C.SOL_SOCKET, C.SO_SNDTIMEO, 1000);
    const { signalled, exited } = signalLater(100);
    // With a send timeout the kernel reports the signal as EINTR instead of restarting the call.
    assert.equal(sendfile(client, inFd, 0, 1000), -1);
    assert.equal(await exited, 0);
    await signalled;
  });
});
