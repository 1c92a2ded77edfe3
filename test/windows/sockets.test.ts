/**
 * The socket bindings on Winsock: a loopback TCP round trip, and errors that carry the same
 * `code` strings as on Linux (WSAGetLastError() mapped in native/platform_win.cc).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { binding, constants } from '../../lib/native';
import { errnoName, isSystemError } from '../../lib/errors';
import { Socket } from '../../lib/socket';
import { closedPort, socketsPerTest } from './loopback';

const { AF_INET, SOCK_STREAM, SOL_SOCKET, SO_ERROR } = constants;
const E = constants.errno;

describe('Winsock sockets (Windows)', () => {
  const { track, untrack, pair, listener: listening } = socketsPerTest();

  it('round trip over loopback TCP: what one side sends, the other receives, both ways', () => {
    const [client, server] = pair();
    const buffer = Buffer.alloc(16);
    assert.equal(binding.send(client, Buffer.from('ping')), 4);
    let n = -1;
    for (let tries = 0; n < 0 && tries < 1000; tries++) {
      binding.select([server], null, null, 1000);
      n = binding.recv(server, buffer);
    }
    assert.equal(buffer.toString('latin1', 0, n), 'ping');
    assert.equal(binding.send(server, Buffer.from('pong!'), 0, 4), 4);
    binding.select([client], null, null, 1000);
    assert.equal(binding.recv(client, buffer, 2, 4), 4);
    assert.equal(buffer.toString('latin1', 2, 6), 'pong');
  });

  it('accept and the names agree: the server side\'s peer is the client\'s own address', () => {
    const [client, server] = pair();
    assert.deepEqual(binding.getpeername(server), binding.getsockname(client));
    assert.deepEqual(binding.getpeername(client), binding.getsockname(server));
    assert.equal(binding.getsockname(client).family, 'IPv4');
  });

  it('would-block is a value, not an exception: recv and accept return -1 when nothing is there', () => {
    const [, server] = pair();
    assert.equal(binding.recv(server, Buffer.alloc(8)), -1);
    const listener = listening();
    binding.setNonBlocking(listener, true);
    assert.equal(binding.accept(listener), -1);
    assert.equal(binding.acceptWithAddress(listener), null);
  });

  it('a non-blocking connect is in progress (false), then writable with SO_ERROR 0', () => {
    const listener = listening();
    const fd = track(binding.socket(AF_INET, SOCK_STREAM));
    binding.setNonBlocking(fd, true);
    const connected = binding.connect(fd, '127.0.0.1', binding.getsockname(listener).port);
    assert.equal(typeof connected, 'boolean');
    const [, writable] = binding.select(null, [fd], [fd], 5000);
    assert.deepEqual(writable, [fd]);
    assert.equal(binding.getsockopt(fd, SOL_SOCKET, SO_ERROR), 0);
  });

  it('connect to a port nobody listens on throws ECONNREFUSED, errno and syscall as on Linux', () => {
    const fd = track(binding.socket(AF_INET, SOCK_STREAM));
    assert.throws(() => binding.connect(fd, '127.0.0.1', closedPort()), (err: unknown) => {
      assert.ok(isSystemError(err, 'ECONNREFUSED'), String(err));
      assert.equal(err.errno, -E.ECONNREFUSED);
      assert.equal(err.syscall, 'connect');
      assert.match(err.message, /^connect ECONNREFUSED: ./);
      return true;
    });
  });

  it('bind to the port of a listening socket throws EADDRINUSE', () => {
    const listener = listening();
    const fd = track(binding.socket(AF_INET, SOCK_STREAM));
    const port = binding.getsockname(listener).port;
    assert.throws(() => binding.bind(fd, '127.0.0.1', port), { code: 'EADDRINUSE', syscall: 'bind' });
  });

  it('send after shutdown(SHUT_WR) throws EPIPE, as Linux says (WSAESHUTDOWN)', () => {
    const [client] = pair();
    binding.shutdown(client, constants.SHUT_WR);
    assert.throws(() => binding.send(client, Buffer.from('late')), { code: 'EPIPE', syscall: 'send' });
  });

  it('a closed handle is not a socket any more: ENOTSOCK (Linux would say EBADF)', () => {
    const fd = binding.socket(AF_INET, SOCK_STREAM);
    binding.close(fd);
    assert.throws(() => binding.recv(fd, Buffer.alloc(1)), { code: 'ENOTSOCK', syscall: 'recv' });
    assert.throws(() => binding.close(fd), { code: 'ENOTSOCK', syscall: 'close' });
  });

  it('Winsock keeps no readable non-blocking flag: getNonBlocking throws ENOTSUP naming ioctlsocket', () => {
    const [client] = pair();
    assert.throws(() => binding.getNonBlocking(client), { code: 'ENOTSUP', syscall: 'ioctlsocket' });
  });

  it('errno names resolve to this platform\'s values, so SO_ERROR and JS-built errors read alike', () => {
    assert.equal(errnoName(E.ECONNREFUSED), 'ECONNREFUSED');
    assert.equal(errnoName(E.EAGAIN), 'EAGAIN');
    // Names the C runtime lacks take Winsock's values (as Python's errno module does on Windows).
    assert.equal(E.ESHUTDOWN, 10058);
  });

  it('refuses bad arguments with TypeError/RangeError, never a crash', () => {
    assert.throws(() => binding.socket('inet' as unknown as number, SOCK_STREAM), TypeError);
    const fd = track(binding.socket(AF_INET, SOCK_STREAM));
    assert.throws(() => binding.bind(fd, '127.0.0.1', 70000), RangeError);
    assert.throws(() => binding.bind(fd, 'not an address', 0), TypeError);
    assert.throws(() => binding.recv(-1, Buffer.alloc(1)), RangeError);
    assert.throws(() => binding.recv(fd, Buffer.alloc(4), 2, 3), RangeError);
  });

  /** Reads from `fd` (waiting in select) until `length` bytes have come. */
  function receive(fd: number, length: number): Buffer {
    const parts: Buffer[] = [];
    let got = 0;
    const buffer = Buffer.alloc(65536);
    while (got < length) {
      const n = binding.recv(fd, buffer);
      assert.notEqual(n, 0, 'end of stream before every byte arrived');
      if (n < 0) {
        assert.deepEqual(binding.select([fd], null, null, 5000)[0], [fd], 'no data came');
        continue;
      }
      parts.push(Buffer.from(buffer.subarray(0, n)));
      got += n;
    }
    return Buffer.concat(parts);
  }

  it('writev (WSASend): chunks, empty ones too, arrive in order from firstOffset; one call returns the total', () => {
    const [client, server] = pair();
    const chunks = [Buffer.from('xxhead'), Buffer.alloc(0), Buffer.from('-middle-'), new Uint16Array(0), Buffer.from('tail')];
    assert.equal(binding.writev(client, chunks, 0, chunks.length, 2), 16);
    assert.equal(receive(server, 16).toString('latin1'), 'head-middle-tail');
    assert.equal(binding.writev(client, chunks, 2, 1), 8, 'first and count choose a window');
    assert.equal(receive(server, 8).toString('latin1'), '-middle-');
  });

  it('writev into a full send buffer: a partial count or -1, and looping on the count delivers every byte (sha256)', () => {
    const [client, server] = pair();
    binding.setsockopt(client, SOL_SOCKET, constants.SO_SNDBUF, 16384);
    binding.setsockopt(server, SOL_SOCKET, constants.SO_RCVBUF, 65536);
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(65536 + i, i));
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    let [first, offset, sent] = [0, 0, 0];
    const advance = (n: number): void => {
      sent += n;
      while (n > 0) {
        const left = chunks[first].length - offset;
        if (n < left) {
          offset += n;
          return;
        }
        n -= left;
        first++;
        offset = 0;
      }
    };
    // Nobody reads yet: the calls take what fits until the buffers are full.
    let n: number;
    while ((n = binding.writev(client, chunks, first, chunks.length - first, offset)) > 0) advance(n);
    assert.equal(n, -1, 'a full send buffer is -1, not an exception');
    assert.ok(sent > 0 && sent < total, `${sent} of ${total} bytes went before the buffers filled`);
    const parts: Buffer[] = [];
    let received = 0;
    const buffer = Buffer.alloc(65536);
    while (received < total) {
      if (sent < total) {
        const wrote = binding.writev(client, chunks, first, chunks.length - first, offset);
        if (wrote > 0) advance(wrote);
      }
      const got = binding.recv(server, buffer);
      if (got > 0) {
        parts.push(Buffer.from(buffer.subarray(0, got)));
        received += got;
      } else {
        assert.notEqual(got, 0, 'end of stream before every byte arrived');
        binding.select([server], sent < total ? [client] : null, null, 5000);
      }
    }
    const sha256 = (data: Buffer[]): string => data.reduce((hash, part) => hash.update(part), createHash('sha256')).digest('hex');
    assert.equal(sha256(parts), sha256(chunks));
  });

  it(`writev sends at most IOV_MAX (${constants.IOV_MAX}) chunks per call; looping sends the rest`, () => {
    const [client, server] = pair();
    const chunks = Array.from({ length: constants.IOV_MAX + 100 }, (_, i) => Buffer.from(`${i}`.padStart(5, '.')));
    assert.equal(binding.writev(client, chunks), constants.IOV_MAX * 5);
    assert.equal(binding.writev(client, chunks, constants.IOV_MAX), 100 * 5);
    assert.equal(receive(server, chunks.length * 5).toString('latin1'), chunks.join(''));
  });

  it('writev after shutdown(SHUT_WR) throws EPIPE naming WSASend; bad chunks are TypeErrors, bad ranges RangeErrors', () => {
    const [client] = pair();
    assert.throws(() => binding.writev(client, 'chunks' as unknown as Buffer[]), TypeError);
    assert.throws(() => binding.writev(client, [Buffer.alloc(1), {} as Buffer]), { name: 'TypeError', message: /"chunks\[1\]"/ });
    assert.throws(() => binding.writev(client, [Buffer.alloc(1)], 1, 1), RangeError);
    assert.throws(() => binding.writev(client, [Buffer.alloc(1)], 0, 1, 2), RangeError);
    binding.shutdown(client, constants.SHUT_WR);
    assert.throws(() => binding.writev(client, [Buffer.from('late')]), { code: 'EPIPE', syscall: 'WSASend' });
  });

  it('sendfile is Linux-only: not exported here (the stream layer reads and sends instead)', () => {
    assert.equal(binding.sendfile, undefined);
  });

  it('new sockets are not inherited by child processes (Windows\' close-on-exec)', async () => {
    const listener = listening();
    const port = binding.getsockname(listener).port;
    // libuv starts children with bInheritHandles = TRUE: every inheritable handle goes along.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      untrack(listener);
      binding.close(listener);
      // Had the child inherited the listener, the port would still be taken while it lives.
      const again = track(binding.socket(AF_INET, SOCK_STREAM));
      binding.bind(again, '127.0.0.1', port);
      binding.listen(again);
    } finally {
      child.kill();
    }
  });

  it('the Socket class works on Winsock: blocking send, recv with a timeout, then SocketTimeoutError', () => {
    const [client, server] = pair();
    const a = Socket.fromFd(client, AF_INET);
    const b = Socket.fromFd(server, AF_INET);
    untrack(client); // The Socket objects own them now.
    untrack(server);
    try {
      a.setTimeout(null);
      a.sendAll('hello windows');
      b.setTimeout(2000);
      assert.equal(b.recv(64).toString(), 'hello windows');
      b.setTimeout(10);
      assert.throws(() => b.recv(64), { name: 'SocketTimeoutError', code: 'ETIMEDOUT' });
    } finally {
      a.close();
      b.close();
    }
  });
});
