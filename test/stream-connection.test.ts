/**
 * The stream layer's Connection on every mechanism (epoll level- and edge-triggered) and both write
 * strategies, against Node `net` peers on loopback: writing and backpressure, half-close in both
 * directions, a peer's reset mid-write, idle timeouts, connect's failures, sendFile, and the promise
 * that error and close callbacks each run exactly once.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { binding, constants } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { Connection, WriteStrategy } from '../lib/stream/connection';
import { LengthPrefixedDecoder, writeFrame, frameHeader } from '../lib/stream/framing';
import { makeSelector, selectorVariants } from './fixtures';
import { leakedSince, openKernelObjects } from './helpers';
import { client, closed, finish, patternFile, readAll, readSlowly, serve, watch } from './stream-fixtures';

/** A port nobody listens on: bound, then closed, so the kernel refuses it. */
function closedPort(): number {
  const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
  binding.bind(fd, '127.0.0.1', 0);
  const { port } = binding.getsockname(fd);
  binding.close(fd);
  return port;
}

/** A file of `size` bytes in a directory of its own (removed by the test), and its sha256. */
function bigFile(size: number): { file: string; hash: string } {
  return patternFile(fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-sendfile-')), size);
}

for (const variant of selectorVariants()) {
  describe(`stream connection: ${variant.name}`, function () {
    this.timeout(60000);
    let reactor: Reactor;
    let before: Map<number, string>;

    beforeEach(() => {
      before = openKernelObjects();
      reactor = new Reactor(makeSelector(variant));
      reactor.attach();
    });

    afterEach(() => {
      reactor.close();
      assert.deepEqual(leakedSince(before), []);
    });

    for (const write of ['direct', 'queued'] as WriteStrategy[]) {
      it(`${write}: writes made while handling one read leave together, in order`, async () => {
        const served = serve(reactor, (conn) => {
          conn.onData = function (data) {
            this.write('<');
            this.write(data);
            this.write('>');
          };
        }, { connection: { write } });
        const socket = await client(served.port);
        const conn = await served.next();
        const { closedPromise } = watch(conn);
        socket.end('abc');
        assert.equal((await readAll(socket)).toString(), '<abc>');
        assert.equal(await closedPromise, null, 'closed without error');
        await closed(socket);
        served.listener.close();
      });

      it(`${write}: write() says stop at highWater, onDrain says go once the reader catches up; every byte arrives`, async () => {
        const highWater = 64 * 1024;
        const chunk = Buffer.alloc(16 * 1024);
        const total = 16 * 1024 * 1024;
        let written = 0;
        let refusals = 0;
        let drains = 0;
        let peakAtRefusal = 0;
        const expected = createHash('sha256');
        const pump = (conn: Connection): void => {
          while (written < total) {
            chunk.writeUInt32LE(written, 0);
            expected.update(chunk);
            written += chunk.length;
            if (!conn.write(chunk)) {
              refusals++;
              peakAtRefusal = Math.max(peakAtRefusal, conn.writableLength);
              return;
            }
          }
          conn.end();
        };
        const served = serve(reactor, (conn) => {
          conn.onDrain = function () {
            drains++;
            assert.ok(this.writableLength <= highWater / 4, `drained at ${this.writableLength} bytes`);
            pump(this);
          };
        }, { connection: { write, highWater } });
        const socket = await client(served.port);
        socket.pause();
        const conn = await served.next();
        const { closedPromise } = watch(conn);
        pump(conn);
        assert.equal(refusals, 1, 'the first refusal comes before the reader reads anything');
        // The peer ends only once it has everything (its end would end ours: onEnd's default).
        const { bytes, hash } = await readSlowly(socket, 1024 * 1024, 1);
        socket.end();
        assert.equal(bytes, total);
        assert.equal(hash, expected.digest('hex'));
        assert.equal(drains, refusals, 'one drain per refusal');
        assert.ok(refusals > 1);
        assert.ok(peakAtRefusal < highWater + chunk.length, `a queue reached ${peakAtRefusal} bytes`);
        assert.ok(conn.peakWritableLength < highWater + chunk.length, `a queue reached ${conn.peakWritableLength} bytes`);
        assert.equal(await closedPromise, null);
        await closed(socket);
        served.listener.close();
      });
    }

    it('half-close by the peer: onEnd, then our replies still go out, then our end', async () => {
      const served = serve(reactor, (conn) => {
        const got: Buffer[] = [];
        conn.onData = (data) => got.push(Buffer.from(data));
        conn.onEnd = function () {
          this.write(`got ${Buffer.concat(got).toString()}; `);
          reactor.setTimeout(() => this.end('bye'), 10); // Later: the peer's end does not close us.
        };
      });
      const socket = await client(served.port);
      const conn = await served.next();
      const { events, closedPromise } = watch(conn);
      socket.end('hello');
      assert.equal((await readAll(socket)).toString(), 'got hello; bye');
      assert.equal(await closedPromise, null);
      assert.deepEqual(events, ['data', 'close']);
      await closed(socket);
      served.listener.close();
    });

    it('half-close by us: end() sends end of stream while we go on receiving until the peer ends', async () => {
      const served = serve(reactor, (conn) => conn.end('hi'));
      const socket = await client(served.port);
      const conn = await served.next();
      const record = watch(conn);
      assert.equal((await readAll(socket)).toString(), 'hi');
      socket.end('after your end');
      assert.equal(await record.closedPromise, null);
      assert.equal(Buffer.concat(record.data).toString(), 'after your end');
      assert.deepEqual(record.events.filter((e) => e !== 'data'), ['close']);
      await closed(socket);
      served.listener.close();
    });

    it('onFinish: after end(), once everything queued is in the kernel and our side is shut, before the peer has ended', async () => {
      const total = 8 * 1024 * 1024;
      const finishes: { writable: number; written: number; closed: boolean }[] = [];
      const served = serve(reactor, (conn) => {
        conn.onFinish = function () {
          finishes.push({ writable: this.writableLength, written: this.bytesWritten, closed: this.closed });
        };
        conn.write(Buffer.alloc(total, 7)); // Far more than the socket takes at once: most of it waits in the queue.
        conn.end();
        assert.equal(finishes.length, 0, 'not finished while bytes are queued');
      });
      const socket = await client(served.port);
      const conn = await served.next();
      const { events, closedPromise } = watch(conn);
      const received = await readAll(socket); // Our end of stream arrives after every byte.
      assert.equal(received.length, total);
      assert.deepEqual(finishes, [{ writable: 0, written: total, closed: false }], 'once, with the queue empty, still open');
      socket.end();
      assert.equal(await closedPromise, null);
      assert.deepEqual(events, ['close']);
      await closed(socket);

      // The peer finished first: end() with nothing queued finishes at once, and closes.
      const order: string[] = [];
      const second = serve(reactor, (c) => {
        c.onEnd = function () {
          this.onFinish = () => order.push('finish');
          this.onClose = () => order.push('close');
          this.end('bye');
        };
      });
      const peer = await client(second.port);
      await second.next();
      peer.end();
      assert.equal((await readAll(peer)).toString(), 'bye');
      await closed(peer);
      assert.deepEqual(order, ['finish', 'close']);
      served.listener.close();
      second.listener.close();
    });

    it('a peer that resets mid-write: one onError (ECONNRESET or EPIPE), one onClose, nothing more', async () => {
      const served = serve(reactor, (conn) => {
        const block = Buffer.alloc(256 * 1024, 1);
        const pump = (): void => {
          while (conn.write(block)) {
            // Fill the queue; onDrain continues.
          }
        };
        conn.onDrain = pump;
        pump();
      }, { connection: { highWater: 1024 * 1024 } });
      const socket = await client(served.port);
      const conn = await served.next();
      const record = watch(conn);
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.resetAndDestroy();
      const err = await record.closedPromise;
      assert.ok(err !== null && ['ECONNRESET', 'EPIPE'].includes((err as NodeJS.ErrnoException).code!), `got ${String(err)}`);
      assert.deepEqual(record.events, ['error', 'close']);
      assert.equal(conn.closed, true);
      assert.equal(conn.write('more'), false, 'a write after the reset is dropped, not thrown');
      await closed(socket);
      served.listener.close();
    });

    it('idle timeout: fires once after the period, with ETIMEDOUT, and the peer sees the close', async () => {
      const served = serve(reactor, (conn) => conn.setIdleTimeout(100));
      const started = performance.now();
      const socket = await client(served.port);
      const conn = await served.next();
      const record = watch(conn);
      const err = await record.closedPromise;
      assert.ok(performance.now() - started >= 100, 'not before the period');
      assert.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
      assert.deepEqual(record.events, ['error', 'close']);
      await finish(socket);
      served.listener.close();
    });

    it('idle timeout: never fires while there is activity, and once when it stops', async () => {
      let timeouts = 0;
      let activeUntil = Infinity;
      const served = serve(reactor, (conn) => {
        conn.setIdleTimeout(400);
        conn.onData = () => undefined;
        conn.onTimeout = function () {
          timeouts++;
          assert.ok(performance.now() >= activeUntil, 'fired while the peer was active');
          this.destroy();
        };
      });
      const socket = await client(served.port);
      const conn = await served.next();
      const { closedPromise } = watch(conn);
      // A byte every 20 ms for a second: twenty times less than the period, so only a stalled machine
      // could let the period pass between two of them.
      for (let i = 0; i < 50; i++) {
        socket.write('x');
        await new Promise((r) => setTimeout(r, 20));
      }
      activeUntil = performance.now();
      assert.equal(timeouts, 0);
      await closedPromise;
      assert.equal(timeouts, 1);
      await finish(socket);
      served.listener.close();
    });

    it('connect: to a port nobody listens on is one ECONNREFUSED error and one close', async () => {
      const conn = Connection.connect(reactor, { host: '127.0.0.1', port: closedPort() });
      let connected = 0;
      conn.onConnect = () => connected++;
      conn.write('queued before the connect failed');
      const record = watch(conn);
      const err = await record.closedPromise;
      assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      assert.equal((err as NodeJS.ErrnoException).syscall, 'connect');
      assert.deepEqual(record.events, ['error', 'close']);
      assert.equal(connected, 0);
    });

    it('connect: a SYN the peer drops (its backlog is full) times out with one ETIMEDOUT', async () => {
      // listen(0) with one connection waiting fills the accept queue: Linux drops further SYNs.
      const full = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
      const waiting: number[] = [];
      try {
        binding.bind(full, '127.0.0.1', 0);
        binding.listen(full, 0);
        const { port } = binding.getsockname(full);
        for (let i = 0; i < 2; i++) {
          const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
          waiting.push(fd);
          binding.connect(fd, '127.0.0.1', port);
        }
        const conn = Connection.connect(reactor, { host: '127.0.0.1', port }, { timeoutMs: 300 });
        const record = watch(conn);
        const err = await record.closedPromise;
        assert.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
        assert.deepEqual(record.events, ['error', 'close']);
      } finally {
        for (const fd of [full, ...waiting]) binding.close(fd);
      }
    });

    it('connect: succeeds once; what was written before is sent first, in order', async () => {
      const served = serve(reactor, (conn) => {
        conn.onData = function (data) {
          this.write(data);
        };
      });
      const conn = Connection.connect(reactor, { host: '127.0.0.1', port: served.port }, { timeoutMs: 10000 });
      let connects = 0;
      const echoed: Buffer[] = [];
      conn.write('early ');
      conn.onConnect = function () {
        connects++;
        this.write('late');
        this.end();
      };
      const record = watch(conn);
      conn.onData = (data) => echoed.push(Buffer.from(data));
      assert.equal(await record.closedPromise, null);
      assert.equal(connects, 1);
      assert.equal(Buffer.concat(echoed).toString(), 'early late');
      served.listener.close();
    });

    it('an exception in onData destroys that connection alone, with the exception as its error', async () => {
      const served = serve(reactor, (conn) => {
        conn.onData = function (data) {
          if (data.includes('boom')) throw new Error('handler failed');
          this.write(data);
        };
      });
      const [bad, good] = [await client(served.port), await client(served.port)];
      const [badConn, goodConn] = [await served.next(), await served.next()];
      const badRecord = watch(badConn);
      const goodRecord = watch(goodConn);
      bad.write('boom');
      const err = await badRecord.closedPromise;
      assert.equal(err?.message, 'handler failed');
      assert.deepEqual(badRecord.events, ['data', 'error', 'close']);
      good.end('still served');
      assert.equal((await readAll(good)).toString(), 'still served');
      assert.equal(await goodRecord.closedPromise, null);
      await Promise.all([finish(bad), closed(good)]);
      served.listener.close();
    });

    it('framing on a connection: an oversize frame closes that connection alone', async () => {
      const served = serve(reactor, (conn) => {
        const decoder = new LengthPrefixedDecoder((frame) => writeFrame(conn, frame), { maxFrameSize: 1024 });
        conn.onData = (data) => decoder.push(data);
      });
      const [bad, good] = [await client(served.port), await client(served.port)];
      const [badConn, goodConn] = [await served.next(), await served.next()];
      const badRecord = watch(badConn);
      const goodRecord = watch(goodConn);
      bad.write(frameHeader(1025));
      assert.equal(((await badRecord.closedPromise) as NodeJS.ErrnoException).code, 'ERR_FRAME_TOO_LARGE');
      const body = Buffer.alloc(1024, 5);
      good.end(Buffer.concat([frameHeader(body.length), body]));
      assert.deepEqual(await readAll(good), Buffer.concat([frameHeader(body.length), body]));
      assert.equal(await goodRecord.closedPromise, null);
      await Promise.all([finish(bad), closed(good)]);
      served.listener.close();
    });

    it('sendFile: 256 MiB to a slow reader, byte-exact, between two writes, the file never buffered', async function () {
      this.timeout(120000);
      const size = 256 * 1024 * 1024;
      const { file, hash } = bigFile(size);
      const fd = fs.openSync(file, 'r');
      try {
        let sent: Error | null | undefined;
        const served = serve(reactor, (conn) => {
          conn.write('HEAD');
          conn.sendFile(fd, 0, size, (err) => {
            sent = err;
          });
          conn.end('TAIL');
        }, { connection: { highWater: 64 * 1024 } });
        const socket = await client(served.port);
        const conn = await served.next();
        const { closedPromise } = watch(conn);
        const expected = createHash('sha256').update('HEAD');
        // The hash of HEAD + file + TAIL, from the file's own hash is not composable: stream it again.
        await new Promise<void>((resolve, reject) => {
          fs.createReadStream(file).on('data', (d) => expected.update(d)).on('end', () => resolve()).on('error', reject);
        });
        expected.update('TAIL');
        const received = await readSlowly(socket, 32 * 1024 * 1024, 5);
        socket.end();
        assert.equal(received.bytes, size + 8);
        assert.equal(received.hash, expected.digest('hex'));
        assert.equal(sent, null, 'done reported success');
        assert.equal(await closedPromise, null);
        assert.ok(conn.peakWritableLength <= 8, `bytes queued in memory: ${conn.peakWritableLength}`);
        assert.equal(fs.fstatSync(fd).size, size);
        assert.ok(hash.length === 64);
        await closed(socket);
        served.listener.close();
      } finally {
        fs.closeSync(fd);
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }
    });

    it('sendFile: a range of a file (offset, length), and a file shorter than the range destroys the connection', async () => {
      const { file } = bigFile(1024 * 1024);
      const fd = fs.openSync(file, 'r');
      const content = fs.readFileSync(file);
      try {
        const outcomes: (Error | null)[] = [];
        let record!: ReturnType<typeof watch>;
        const served = serve(reactor, (conn) => {
          record = watch(conn); // Before the sends: all of this may happen at once.
          conn.sendFile(fd, 1000, 5000, (err) => outcomes.push(err));
          conn.sendFile(fd, content.length - 10, 20, (err) => outcomes.push(err));
        });
        const socket = await client(served.port);
        await served.next();
        const chunks: Buffer[] = [];
        socket.on('data', (d: Buffer) => chunks.push(d));
        const err = await record.closedPromise;
        assert.equal((err as NodeJS.ErrnoException).code, 'ERR_FILE_TRUNCATED');
        assert.deepEqual(outcomes.map((o) => o && (o as NodeJS.ErrnoException).code), [null, 'ERR_FILE_TRUNCATED']);
        await finish(socket);
        const received = Buffer.concat(chunks);
        assert.deepEqual(received.subarray(0, 5000), content.subarray(1000, 6000));
        assert.deepEqual(received.subarray(5000), content.subarray(content.length - 10));
        served.listener.close();
      } finally {
        fs.closeSync(fd);
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }
    });
  });
}
