/**
 * The socket bindings on Winsock: a loopback TCP round trip, and errors that carry the same
 * `code` strings as on Linux (WSAGetLastError() mapped in native/platform_win.cc).
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
