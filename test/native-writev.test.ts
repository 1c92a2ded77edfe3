/**
 * writev: a queue of chunks gathered into one system call (sendmsg with MSG_NOSIGNAL), on real
 * sockets. What a stream's write queue relies on: order, the offset into the head chunk, partial
 * counts when the send buffer fills, the IOV_MAX cap, and EPIPE instead of SIGPIPE.
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { binding as b, constants as C } from '../lib/native';
import { PollFdArray } from '../lib/pollfds';
import {
  Resources,
  assertSystemError,
  connectedPair,
  releaseAfterEach,
  resizableBuffer,
  settle,
  signalLater,
  withFatalSigpipe,
} from './fixtures/sockets';

const res = new Resources();
const NONBLOCK = C.SOCK_NONBLOCK!;

/** A write queue as the stream layer keeps one: chunks, the head's index and the bytes of it already sent. */
class ChunkQueue {
  first = 0;
  offset = 0;
  sent = 0;
  readonly total: number;

  constructor(readonly chunks: Buffer[]) {
    this.total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  }

  get done(): boolean {
    return this.sent === this.total;
  }

  /** One writev of everything still queued; moves the head past what went out. */
  writev(fd: number): number {
    const n = b.writev(fd, this.chunks, this.first, this.chunks.length - this.first, this.offset);
    if (n > 0) this.advance(n);
    return n;
  }

  private advance(n: number): void {
    this.sent += n;
    while (n > 0) {
      const left = this.chunks[this.first].length - this.offset;
      if (n < left) {
        this.offset += n;
        return;
      }
      n -= left;
      this.first++;
      this.offset = 0;
    }
  }
}

/**
 * Sends the queue from `writer` and reads it at `reader` until every byte has arrived, waiting in
 * poll whenever neither side can move. Returns the bytes received.
 */
function pump(queue: ChunkQueue, writer: number, reader: number): Buffer {
  const received: Buffer[] = [];
  let bytes = 0;
  const sink = Buffer.alloc(65536);
  const waits = new PollFdArray(2);
  while (bytes < queue.total) {
    const wrote = queue.done ? -1 : queue.writev(writer);
    const got = b.recv(reader, sink);
    assert.notEqual(got, 0, 'end of stream before every byte arrived');
    if (got > 0) {
      received.push(Buffer.from(sink.subarray(0, got)));
      bytes += got;
    }
    if (wrote === -1 && got === -1) {
      waits.clear();
      waits.push(reader, C.POLLIN);
      if (!queue.done) waits.push(writer, C.POLLOUT);
      assert.ok(b.poll!(waits.buffer, waits.length, 5000) > 0, 'neither side became ready');
    }
  }
  return Buffer.concat(received);
}

const sha256 = (data: Buffer | Buffer[]): string => {
  const hash = createHash('sha256');
  for (const part of Array.isArray(data) ? data : [data]) hash.update(part);
  return hash.digest('hex');
};

describe('native writev: gathered sends', () => {
  releaseAfterEach(res);

  for (const transport of ['socketpair', 'tcp4', 'unix'] as const) {
    it(`${transport}: chunks (empty ones too) arrive in order, the first from firstOffset; the one call returns the total`, () => {
      const { client, server } = connectedPair(res, transport);
      const chunks = [Buffer.from('xxhead'), Buffer.alloc(0), Buffer.from('-middle-'), new Uint8Array(0), Buffer.from('tail')];
      assert.equal(b.writev(client, chunks, 0, chunks.length, 2), 4 + 8 + 4);
      settle(server, C.POLLIN);
      const buffer = Buffer.alloc(64);
      assert.equal(buffer.toString('latin1', 0, b.recv(server, buffer)), 'head-middle-tail');
      assert.equal(b.recv(server, buffer), -1, 'nothing else was sent');
    });
  }

  it('first and count choose a window of the array; by default the whole array goes', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const chunks = ['a', 'bb', 'ccc', 'dddd'].map((text) => Buffer.from(text));
    const buffer = Buffer.alloc(16);
    assert.equal(b.writev(client, chunks, 1, 2), 5);
    assert.equal(buffer.toString('latin1', 0, b.recv(server, buffer)), 'bbccc');
    assert.equal(b.writev(client, chunks, 2), 7, 'count defaults to the rest of the array');
    assert.equal(buffer.toString('latin1', 0, b.recv(server, buffer)), 'cccdddd');
    assert.equal(b.writev(client, chunks), 10);
    assert.equal(buffer.toString('latin1', 0, b.recv(server, buffer)), 'abbcccdddd');
    assert.equal(b.writev(client, chunks, 3, 1, 4), 0, 'a head sent to its end: nothing left, 0');
    assert.equal(b.writev(client, chunks, 4, 0), 0, 'no chunks: sendmsg with no iovec sends nothing');
    assert.equal(b.recv(server, buffer), -1);
  });

  it('any view is a chunk: typed arrays of every width, DataView, a view at an offset, shared memory', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const memory = new ArrayBuffer(16);
    new Uint8Array(memory).forEach((_, i, bytes) => (bytes[i] = 0x41 + i));
    const chunks = [
      new Uint8Array(memory, 0, 2),
      new Uint16Array(memory, 2, 1),
      new Float64Array(memory, 8, 1),
      new BigInt64Array(memory, 0, 1),
      new DataView(memory, 4, 3),
      new Uint8Array(new SharedArrayBuffer(2)).fill(0x7a),
    ];
    assert.equal(b.writev(client, chunks), 2 + 2 + 8 + 8 + 3 + 2);
    const buffer = Buffer.alloc(64);
    assert.equal(buffer.toString('latin1', 0, b.recv(server, buffer)), 'ABCDIJKLMNOPABCDEFGHEFGzz');
  });

  it('one writev on a TCP loopback connection is one segment: ONE recv on the peer reads all of it', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    const chunks = [Buffer.from('>>GET '), Buffer.from('/index.html'), Buffer.from(' HTTP/1.1\r\n'), Buffer.from('\r\n')];
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0) - 2;
    assert.equal(b.writev(client, chunks, 0, chunks.length, 2), total);
    settle(server, C.POLLIN);
    const buffer = Buffer.alloc(1024);
    assert.equal(b.recv(server, buffer), total);
    assert.equal(buffer.toString('latin1', 0, total), 'GET /index.html HTTP/1.1\r\n\r\n');
    assert.equal(b.recv(server, buffer), -1);
  });

  it('into a full send buffer: a partial count, then -1; looping on the count delivers every byte exactly once (sha256)', () => {
    const { client, server } = connectedPair(res, 'tcp4');
    // Small buffers fill fast; a receive window much under the loopback MSS (64 KiB) would crawl.
    b.setsockopt(client, C.SOL_SOCKET, C.SO_SNDBUF, 16384);
    b.setsockopt(server, C.SOL_SOCKET, C.SO_RCVBUF, 65536);
    const chunks = Array.from({ length: 48 }, (_, i) => randomBytes(i % 7 === 3 ? 0 : 1000 + ((i * 7919) % 9000)));
    const queue = new ChunkQueue(chunks);
    // Nobody reads yet: the first call takes what fits and says how much that was.
    const first = queue.writev(client);
    assert.ok(first > 0 && first < queue.total, `first writev sent ${first} of ${queue.total}`);
    let n: number;
    while ((n = queue.writev(client)) > 0) assert.ok(!queue.done, 'the buffers hold less than the whole queue');
    assert.equal(n, -1, 'a full send buffer is -1, not an exception');
    assert.ok(queue.offset > 0 || queue.first > 0);
    const received = pump(queue, client, server);
    assert.equal(received.length, queue.total);
    assert.equal(sha256(received), sha256(chunks));
  });

  it(`more than IOV_MAX (${C.IOV_MAX}) chunks: one call sends the first IOV_MAX, and looping sends them all`, () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const chunks = Array.from({ length: 2 * C.IOV_MAX + 452 }, (_, i) => Buffer.from(`${i}`.padStart(6, '.')));
    const queue = new ChunkQueue(chunks);
    assert.equal(queue.writev(client), C.IOV_MAX * 6);
    assert.deepEqual([queue.first, queue.offset], [C.IOV_MAX, 0]);
    const received = pump(queue, client, server);
    assert.equal(received.toString('latin1'), chunks.join(''));
  });

  it('a datagram socket: the chunks make one datagram', () => {
    const [x, y] = b.socketpair!(C.AF_UNIX, C.SOCK_DGRAM | NONBLOCK).map((fd) => res.fd(fd));
    assert.equal(b.writev(x, [Buffer.from('one '), Buffer.from('datagram')]), 12);
    assert.equal(b.writev(x, []), 0, 'no chunks: an empty datagram, as send of 0 bytes would');
    const buffer = Buffer.alloc(64);
    assert.equal(buffer.toString('latin1', 0, b.recv(y, buffer)), 'one datagram');
    assert.equal(b.recv(y, buffer), 0, 'the empty datagram');
    assert.equal(b.recv(y, buffer), -1);
  });

  it('every element is read before any memory: a getter that shrinks an earlier chunk\'s buffer cannot make writev send past its new end', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const shrinking = resizableBuffer(4096, 8192);
    const chunks: Uint8Array[] = [new Uint8Array(shrinking).fill(0x41)];
    // Reading chunks[1] runs JavaScript that shrinks chunks[0]'s buffer to 3 bytes.
    Object.defineProperty(chunks, 1, {
      enumerable: true,
      get: () => {
        shrinking.resize(3);
        return Buffer.from('|z');
      },
    });
    assert.equal(b.writev(client, chunks), 5, 'chunk 0 as it is after the getter ran: 3 bytes');
    const buffer = Buffer.alloc(8192);
    assert.equal(buffer.toString('latin1', 0, b.recv(server, buffer)), 'AAA|z');
  });

  it('after the peer closed: EPIPE, and no SIGPIPE even where SIGPIPE is fatal; write(2) is the control', () => {
    const child = withFatalSigpipe(`
      const [x, y] = b.socketpair(C.AF_UNIX, C.SOCK_STREAM);
      b.close(y);
      try { b.writev(x, [Buffer.from('a'), Buffer.from('b')]); } catch (err) { console.log('writev: ' + err.code + ' ' + err.syscall); }
      fs.writeSync(x, 'x'); // write(2) raises SIGPIPE: the process dies here.
      console.log('not reached');
    `);
    assert.equal(child.stderr, '');
    assert.equal(child.stdout, 'SIGPIPE ignored: false\nwritev: EPIPE sendmsg\n');
    assert.equal(child.signal, 'SIGPIPE');
  });

  it('a signal during a blocked writev (EINTR) is retried: the call goes on until SO_SNDTIMEO ends it with -1', async () => {
    const { client } = connectedPair(res, 'socketpair');
    const filler = Buffer.alloc(65536);
    while (b.send(client, filler) > 0);
    b.setNonBlocking(client, false);
    b.setsockopt(client, C.SOL_SOCKET, C.SO_SNDTIMEO, 1000);
    const { signalled, exited } = signalLater(100);
    // With a send timeout the kernel reports the signal as EINTR instead of restarting the call.
    assert.equal(b.writev(client, [Buffer.alloc(1000), Buffer.alloc(1000)]), -1);
    assert.equal(await exited, 0);
    await signalled;
  });

  it('bad input is refused before any byte is sent, naming what is wrong', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const chunks = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('f')];
    const refusals: Array<[unknown[], RegExp | string, typeof TypeError | typeof RangeError]> = [
      [[chunks[0]], 'The "chunks" argument must be an Array of TypedArrays or DataViews', TypeError],
      [[[...chunks, 5]], 'The "chunks[3]" argument must be a TypedArray or DataView', TypeError],
      [[[...chunks, new ArrayBuffer(1)]], 'The "chunks[3]" argument must be a TypedArray or DataView', TypeError],
      [[chunks, 4], 'The "first" argument (4) is past the end of chunks (3)', RangeError],
      [[chunks, 1, 3], 'first + count (4) is past the end of chunks (3)', RangeError],
      [[chunks, 1, 2, 3], 'The "firstOffset" argument (3) is past the end of chunks[1] (2)', RangeError],
      [[chunks, 3, 0, 1], 'The "firstOffset" argument (1) is past the end of the 0 chunks selected (0)', RangeError],
      [[chunks, 0.5], /^The "first" argument must be an integer$/, TypeError],
      [[chunks, 0, -1], /^The "count" argument must be >= 0/, RangeError],
    ];
    for (const [args, message, type] of refusals) {
      assert.throws(() => (b.writev as (fd: number, ...rest: unknown[]) => number)(client, ...args), (err: Error) => {
        assert.ok(err instanceof type, `${err}`);
        if (typeof message === 'string') assert.equal(err.message, message);
        else assert.match(err.message, message);
        return true;
      });
    }
    assert.equal(b.recv(server, Buffer.alloc(8)), -1, 'nothing was sent');
  });

  it('only the chunks a call sends are read: a bad element past IOV_MAX is refused by the call that reaches it', () => {
    const { client, server } = connectedPair(res, 'socketpair');
    const chunks: unknown[] = Array.from({ length: C.IOV_MAX }, () => Buffer.from('x'));
    chunks.push('not a chunk');
    const writev = b.writev as (fd: number, chunks: unknown[], first?: number) => number;
    assert.equal(writev(client, chunks), C.IOV_MAX);
    assert.throws(() => writev(client, chunks, C.IOV_MAX), { name: 'TypeError', message: `The "chunks[${C.IOV_MAX}]" argument must be a TypedArray or DataView` });
    assert.equal(b.recv(server, Buffer.alloc(2 * C.IOV_MAX)), C.IOV_MAX);
  });

  it('the errors name sendmsg: EPIPE after shutdown(SHUT_WR), ENOTSOCK on a file', () => {
    const { client } = connectedPair(res, 'tcp4');
    b.shutdown(client, C.SHUT_WR);
    assertSystemError(() => b.writev(client, [Buffer.from('late')]), 'EPIPE', 'sendmsg');
    const file = fs.openSync('/dev/null', 'r');
    try {
      assertSystemError(() => b.writev(file, [Buffer.from('x')]), 'ENOTSOCK', 'sendmsg');
    } finally {
      fs.closeSync(file);
    }
  });
});
