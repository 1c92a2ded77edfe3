/**
 * The Socket class on real loopback sockets: IPv4, IPv6, Unix stream and UDP, in its three modes
 * (blocking, non-blocking, timeout). Blocking calls block this thread, so the other side of those
 * tests runs in a worker thread: this same file, started with `workerData` (see `peerMain`).
 */
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { binding, constants } from '../lib/native';
import { errnoName, isSystemError, SocketTimeoutError } from '../lib/errors';
import { Socket } from '../lib/socket';
import { leakedSince, openKernelObjects } from './helpers';
import { skipUnless } from './skip';

const { AF_INET, AF_INET6, AF_UNIX, SOCK_STREAM, SOCK_DGRAM, SOL_SOCKET, IPPROTO_TCP } = constants;
const E = constants.errno;
/** Every wait a worker or a blocking test makes is bounded by this, so a bug fails instead of hanging. */
const SAFETY_MS = 5000;

// ---------------------------------------------------------------------------------------------
// The worker side: a peer that runs its own blocking calls while the main thread blocks in its own.

type Target = [string] | [string, number];

type PeerJob =
  /** Connect, wait `delayMs`, send `text`, then read until end of stream. */
  | { role: 'client'; family: number; target: Target; delayMs: number; text: string }
  /** Connect with a small receive buffer and read everything slowly; report the count and SHA-256. */
  | { role: 'slowReader'; family: number; target: Target; chunk: number; pauseEvery: number; pauseMs: number }
  /** Wait `delayMs`, then send one datagram. */
  | { role: 'datagram'; family: number; target: Target; delayMs: number; text: string };

interface PeerResult {
  received: string;
  bytes: number;
  sha256: string;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function connectTo(sock: Socket, target: Target): void {
  if (target.length === 1) sock.connect(target[0]);
  else sock.connect(target[0], target[1]);
}

function peerMain(job: PeerJob): PeerResult {
  const type = job.role === 'datagram' ? SOCK_DGRAM : SOCK_STREAM;
  const sock = new Socket(job.family, type);
  try {
    sock.setTimeout(SAFETY_MS);
    if (job.role === 'datagram') {
      sleep(job.delayMs);
      if (job.target.length === 1) sock.sendTo(job.text, job.target[0]);
      else sock.sendTo(job.text, job.target[0], job.target[1]);
      return { received: '', bytes: 0, sha256: '' };
    }
    if (job.role === 'slowReader') {
      // A small window keeps the sender waiting for room, which is what sendAll must cope with.
      sock.setsockopt(SOL_SOCKET, constants.SO_RCVBUF, 4096);
      connectTo(sock, job.target);
      const hash = createHash('sha256');
      const buffer = Buffer.alloc(job.chunk);
      let bytes = 0;
      for (let reads = 1; ; reads++) {
        const n = sock.recvInto(buffer);
        if (n === 0) break;
        hash.update(buffer.subarray(0, n));
        bytes += n;
        if (reads % job.pauseEvery === 0) sleep(job.pauseMs);
      }
      return { received: '', bytes, sha256: hash.digest('hex') };
    }
    connectTo(sock, job.target);
    sleep(job.delayMs);
    sock.sendAll(job.text);
    const chunks: Buffer[] = [];
    for (let chunk = sock.recv(4096); chunk.length > 0; chunk = sock.recv(4096)) chunks.push(chunk);
    const all = Buffer.concat(chunks);
    return { received: all.toString(), bytes: all.length, sha256: '' };
  } finally {
    sock.close();
  }
}

if (!isMainThread && (workerData as { socketTestPeer?: PeerJob } | null)?.socketTestPeer) {
  parentPort!.postMessage(peerMain((workerData as { socketTestPeer: PeerJob }).socketTestPeer));
}

/** Starts a peer in a worker thread; the promise settles when the worker has closed its socket. */
function startPeer(job: PeerJob): Promise<PeerResult> {
  const worker = new Worker(__filename, { workerData: { socketTestPeer: job } });
  return new Promise((resolve, reject) => {
    let result: PeerResult | undefined;
    worker.once('message', (message: PeerResult) => (result = message));
    worker.once('error', reject);
    worker.once('exit', (code) => (result ? resolve(result) : reject(new Error(`peer worker exited with ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

interface Kind {
  name: string;
  family: number;
  /** Where to bind a listener or a datagram socket in this family. */
  bindArgs(): Target;
}

let tmpDir = '';
let unixCount = 0;
const ipv4: Kind = { name: 'IPv4', family: AF_INET, bindArgs: () => ['127.0.0.1', 0] };
const ipv6: Kind = { name: 'IPv6', family: AF_INET6, bindArgs: () => ['::1', 0] };
const unix: Kind = { name: 'Unix', family: AF_UNIX, bindArgs: () => [path.join(tmpDir, `s${++unixCount}`)] };

function hasIPv6Loopback(): boolean {
  const probe = new Socket(AF_INET6, SOCK_DGRAM);
  try {
    probe.bind('::1', 0);
    return true;
  } catch {
    return false;
  } finally {
    probe.close();
  }
}

/** The kernel refuses IPv6 when the machine has no ::1; that is the machine, not iomux. */
function requireFamily(ctx: Mocha.Context, kind: Kind): void {
  skipUnless(ctx, kind.family !== AF_INET6 || hasIPv6Loopback(), 'this machine has no IPv6 loopback (::1)');
}

/** Where a socket bound with `bindArgs` can be reached. */
function targetOf(sock: Socket): Target {
  const name = sock.getsockname();
  return sock.family === AF_UNIX ? [name.address] : [name.address, name.port];
}

function expectSystemError(fn: () => unknown, code: string, syscall: string): NodeJS.ErrnoException {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(isSystemError(caught, code), `expected ${code} from ${syscall}, got ${String(caught)}`);
  assert.equal(caught.syscall, syscall);
  assert.equal(caught.errno, -E[code]);
  return caught as NodeJS.ErrnoException;
}

function expectTimeout(fn: () => unknown, syscall: string, timeoutMs: number): void {
  const started = performance.now();
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SocketTimeoutError, `expected SocketTimeoutError, got ${String(err)}`);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(err.syscall, syscall);
    assert.equal(err.timeoutMs, timeoutMs);
    return true;
  });
  // A lower bound only (load makes it longer, never shorter): it waited instead of failing at once.
  assert.ok(performance.now() - started >= timeoutMs - 5, 'gave up before the timeout');
}

if (isMainThread) {
  describe('Socket', function () {
    const open: Socket[] = [];
    let atStart: Map<number, string>;

    /** Registers sockets to close after the test, whatever happens. */
    function track<T extends Socket>(sock: T): T {
      open.push(sock);
      return sock;
    }

    function listener(kind: Kind, backlog?: number): Socket {
      const sock = track(new Socket(kind.family, SOCK_STREAM));
      if (kind.family !== AF_UNIX) sock.setsockopt(SOL_SOCKET, constants.SO_REUSEADDR, true);
      const args = kind.bindArgs();
      if (args.length === 1) sock.bind(args[0]);
      else sock.bind(args[0], args[1]);
      sock.listen(backlog);
      return sock;
    }

    /** A connected pair in blocking mode, all in this thread (the kernel completes the handshake). */
    function connectedPair(kind: Kind): { server: Socket; client: Socket; listen: Socket } {
      const listen = listener(kind);
      const client = track(new Socket(kind.family, SOCK_STREAM));
      connectTo(client, targetOf(listen));
      const [server] = listen.accept();
      track(server);
      return { server, client, listen };
    }

    function datagramSocket(kind: Kind): Socket {
      const sock = track(new Socket(kind.family, SOCK_DGRAM));
      const args = kind.bindArgs();
      if (args.length === 1) sock.bind(args[0]);
      else sock.bind(args[0], args[1]);
      return sock;
    }

    /** A port nothing listens on: bound, then released. */
    function closedPort(family: number, host: string): number {
      const sock = new Socket(family, SOCK_STREAM);
      sock.bind(host, 0);
      const { port } = sock.getsockname();
      sock.close();
      return port;
    }

    /** Keeps blocking calls in this thread from hanging the suite if a peer never shows up. */
    function boundBlocking(sock: Socket): void {
      sock.setsockopt(SOL_SOCKET, constants.SO_RCVTIMEO, SAFETY_MS);
      sock.setsockopt(SOL_SOCKET, constants.SO_SNDTIMEO, SAFETY_MS);
    }

    before(() => {
      tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-socket-'));
      atStart = openKernelObjects();
    });

    afterEach(() => {
      for (const sock of open.splice(0)) sock.close();
    });

    after(() => {
      fs.rmSync(tmpDir, { recursive: true, force: true });
      assert.deepEqual(leakedSince(atStart), [], 'descriptors leaked by the Socket tests');
    });

    describe('stream sockets in every family', function () {
      for (const kind of [ipv4, ipv6, unix]) {
        it(`${kind.name}: bind, listen, connect, accept, send and recv carry bytes both ways`, function () {
          requireFamily(this, kind);
          const { server, client, listen } = connectedPair(kind);
          assert.equal(client.send('ping'), 4);
          assert.equal(server.recv(100).toString(), 'ping');
          server.sendAll('pong 好');
          assert.equal(client.recv(100).toString(), 'pong 好');
          assert.deepEqual(client.getpeername(), listen.getsockname());
          if (kind.family !== AF_UNIX) {
            assert.deepEqual(server.getpeername(), client.getsockname());
            assert.equal(listen.getsockname().family, kind.name);
          } else {
            assert.equal(listen.getsockname().family, 'unix');
          }
        });

        it(`${kind.name}: accept reports the connecting peer's address`, function () {
          requireFamily(this, kind);
          const listen = listener(kind);
          const client = track(new Socket(kind.family));
          connectTo(client, targetOf(listen));
          const [conn, peer] = listen.accept();
          track(conn);
          assert.deepEqual(peer, conn.getpeername());
          if (kind.family !== AF_UNIX) assert.deepEqual(peer, client.getsockname());
        });

        it(`${kind.name}: shutdown('write') ends the peer's stream while the other direction stays open`, function () {
          requireFamily(this, kind);
          const { server, client } = connectedPair(kind);
          client.sendAll('last words');
          client.shutdown('write');
          assert.equal(server.recv(100).toString(), 'last words');
          assert.equal(server.recv(100).length, 0, 'end of stream after shutdown');
          server.sendAll('still heard');
          assert.equal(client.recv(100).toString(), 'still heard');
        });

        it(`${kind.name}: connectEx returns 0 on success`, function () {
          requireFamily(this, kind);
          const listen = listener(kind);
          const client = track(new Socket(kind.family));
          const target = targetOf(listen);
          const err = target.length === 1 ? client.connectEx(target[0]) : client.connectEx(target[0], target[1]);
          assert.equal(err, 0);
          assert.deepEqual(client.getpeername(), listen.getsockname());
        });
      }

      it('recvInto fills the caller\'s buffer, nbytes limits it, and 0 means the whole buffer', function () {
        const { server, client } = connectedPair(ipv4);
        client.sendAll('abcdefgh');
        const buffer = Buffer.alloc(8);
        assert.equal(server.recvInto(buffer, 3), 3);
        assert.equal(buffer.toString('latin1', 0, 3), 'abc');
        assert.equal(server.recvInto(buffer, 0), 5);
        assert.equal(buffer.toString('latin1', 0, 5), 'defgh');
        const view = new Uint8Array(buffer.buffer, buffer.byteOffset + 2, 4);
        client.sendAll('WXYZ');
        assert.equal(server.recvInto(view), 4);
        assert.equal(buffer.toString('latin1', 2, 6), 'WXYZ', 'a view receives at its own offset');
      });

      it('recv returns only the bytes that arrived, even when far more were asked for', function () {
        const { server, client } = connectedPair(ipv4);
        client.sendAll('tiny');
        const data = server.recv(1 << 20);
        assert.equal(data.toString(), 'tiny');
        assert.ok(data.buffer.byteLength < 1 << 20, 'a 4-byte result does not pin a 1 MiB allocation');
      });

      it('MSG_PEEK leaves the bytes for the next recv', function () {
        const { server, client } = connectedPair(ipv4);
        client.sendAll('peek');
        assert.equal(server.recv(100, constants.MSG_PEEK).toString(), 'peek');
        assert.equal(server.recv(100).toString(), 'peek');
      });

      it('send takes only what the kernel has room for on a non-blocking socket', function () {
        const { server, client } = connectedPair(ipv4);
        void server;
        client.setsockopt(SOL_SOCKET, constants.SO_SNDBUF, 4096);
        client.setBlocking(false);
        const payload = Buffer.alloc(8 << 20, 1);
        const n = client.send(payload);
        assert.ok(n > 0 && n < payload.length, `sent ${n} of ${payload.length}`);
      });
    });

    describe('datagram sockets', function () {
      for (const kind of [ipv4, ipv6, unix]) {
        it(`${kind.name}: sendTo delivers one datagram and recvFrom names its sender`, function () {
          requireFamily(this, kind);
          const a = datagramSocket(kind);
          const b = datagramSocket(kind);
          const [host, port] = targetOf(a);
          const sent = port === undefined ? b.sendTo('héllo', host) : b.sendTo('héllo', host, port);
          assert.equal(sent, Buffer.byteLength('héllo'));
          const [data, peer] = a.recvFrom(100);
          assert.equal(data.toString(), 'héllo');
          assert.deepEqual(peer, b.getsockname());
          assert.equal(a.getsockopt(SOL_SOCKET, constants.SO_TYPE), SOCK_DGRAM);
        });
      }

      it('a datagram longer than the buffer is cut to the buffer (the rest is discarded)', function () {
        const a = datagramSocket(ipv4);
        const b = datagramSocket(ipv4);
        b.sendTo('0123456789', ...(targetOf(a) as [string, number]));
        b.sendTo('next', ...(targetOf(a) as [string, number]));
        assert.equal(a.recvFrom(4)[0].toString(), '0123');
        assert.equal(a.recvFrom(100)[0].toString(), 'next', 'each recvFrom takes one whole datagram');
      });

      it('recvFromInto fills the caller\'s buffer and reports the sender', function () {
        const a = datagramSocket(ipv4);
        const b = datagramSocket(ipv4);
        b.sendTo('into', ...(targetOf(a) as [string, number]));
        const buffer = Buffer.alloc(16);
        const [n, peer] = a.recvFromInto(buffer);
        assert.equal(n, 4);
        assert.equal(buffer.toString('latin1', 0, 4), 'into');
        assert.deepEqual(peer, b.getsockname());
      });

      it('a connected UDP socket uses send/recv, and a closed port comes back as ECONNREFUSED', function () {
        const a = datagramSocket(ipv4);
        const b = datagramSocket(ipv4);
        b.connect(...(targetOf(a) as [string, number]));
        b.send('over');
        assert.equal(a.recv(100).toString(), 'over');

        const lonely = track(new Socket(AF_INET, SOCK_DGRAM));
        lonely.connect('127.0.0.1', closedPort(AF_INET, '127.0.0.1'));
        lonely.setTimeout(SAFETY_MS);
        lonely.send('anyone?');
        // The ICMP port-unreachable becomes the socket's pending error, reported by the next call.
        expectSystemError(() => lonely.recv(100), 'ECONNREFUSED', 'recv');
      });

      it('blocking recvFrom waits for a datagram sent later from another thread', async function () {
        const a = datagramSocket(ipv4);
        boundBlocking(a);
        const peer = startPeer({ role: 'datagram', family: AF_INET, target: targetOf(a), delayMs: 100, text: 'late' });
        const [data, from] = a.recvFrom(100);
        await peer;
        assert.equal(data.toString(), 'late');
        assert.equal(from?.address, '127.0.0.1');
      });
    });

    describe('modes', function () {
      it('a new socket is blocking: no timeout, descriptor in blocking mode', function () {
        const sock = track(new Socket());
        assert.equal(sock.getTimeout(), null);
        assert.equal(sock.getBlocking(), true);
        assert.equal(binding.getNonBlocking(sock.fileno()), false);
        assert.equal(sock.family, AF_INET);
        assert.equal(sock.type, SOCK_STREAM);
      });

      it('setBlocking(false) is timeout 0 and makes the descriptor non-blocking; setBlocking(true) undoes it', function () {
        const sock = track(new Socket());
        sock.setBlocking(false);
        assert.equal(sock.getTimeout(), 0);
        assert.equal(sock.getBlocking(), false);
        assert.equal(binding.getNonBlocking(sock.fileno()), true);
        sock.setBlocking(true);
        assert.equal(sock.getTimeout(), null);
        assert.equal(binding.getNonBlocking(sock.fileno()), false);
      });

      it('setTimeout(ms) counts as blocking for the caller but uses a non-blocking descriptor', function () {
        const sock = track(new Socket());
        sock.setTimeout(250);
        assert.equal(sock.getTimeout(), 250);
        assert.equal(sock.getBlocking(), true);
        assert.equal(binding.getNonBlocking(sock.fileno()), true);
      });

      it('SOCK_NONBLOCK in the type makes a non-blocking socket whose type is plain SOCK_STREAM', function () {
        const sock = track(new Socket(AF_INET, SOCK_STREAM | constants.SOCK_NONBLOCK!));
        assert.equal(sock.getTimeout(), 0);
        assert.equal(sock.type, SOCK_STREAM);
        assert.equal(binding.getNonBlocking(sock.fileno()), true);
      });

      it('fromFd reads the descriptor\'s mode', function () {
        const fd = binding.socket(AF_INET, SOCK_STREAM | constants.SOCK_NONBLOCK!);
        const sock = track(Socket.fromFd(fd, AF_INET));
        assert.equal(sock.fileno(), fd);
        assert.equal(sock.getTimeout(), 0);
      });

      it('setTimeout rejects what is not null or a number of milliseconds', function () {
        const sock = track(new Socket());
        assert.throws(() => sock.setTimeout(-1), RangeError);
        assert.throws(() => sock.setTimeout(NaN), RangeError);
        assert.throws(() => sock.setTimeout(Infinity), RangeError);
        assert.throws(() => sock.setTimeout('5' as unknown as number), TypeError);
        assert.throws(() => sock.setBlocking(1 as unknown as boolean), TypeError);
        assert.equal(sock.getTimeout(), null, 'a rejected value changes nothing');
      });

      describe('blocking', function () {
        it('accept and recv wait for a peer that connects and sends later from another thread', async function () {
          const listen = listener(ipv4);
          boundBlocking(listen);
          const peer = startPeer({ role: 'client', family: AF_INET, target: targetOf(listen), delayMs: 100, text: 'hello from the worker' });
          const [conn] = listen.accept();
          track(conn);
          boundBlocking(conn);
          assert.equal(conn.getTimeout(), null);
          let text = '';
          while (text.length < 'hello from the worker'.length) text += conn.recv(100).toString();
          conn.sendAll('bye');
          conn.close();
          assert.equal(text, 'hello from the worker');
          assert.equal((await peer).received, 'bye');
        });

        it('an expired SO_RCVTIMEO surfaces as EAGAIN instead of blocking forever', function () {
          const { server } = connectedPair(ipv4);
          server.setsockopt(SOL_SOCKET, constants.SO_RCVTIMEO, 20);
          const err = expectSystemError(() => server.recv(10), 'EAGAIN', 'recv');
          assert.match(err.message, /SO_RCVTIMEO/);
        });
      });

      describe('non-blocking', function () {
        it('accept with nobody waiting throws EAGAIN', function () {
          const listen = listener(ipv4);
          listen.setBlocking(false);
          expectSystemError(() => listen.accept(), 'EAGAIN', 'accept');
        });

        it('recv, recvInto and recvFrom on a silent peer throw EAGAIN', function () {
          const { server } = connectedPair(ipv4);
          server.setBlocking(false);
          expectSystemError(() => server.recv(10), 'EAGAIN', 'recv');
          expectSystemError(() => server.recvInto(Buffer.alloc(10)), 'EAGAIN', 'recv');
          const udp = datagramSocket(ipv4);
          udp.setBlocking(false);
          expectSystemError(() => udp.recvFrom(10), 'EAGAIN', 'recvfrom');
        });

        it('send and sendAll throw EAGAIN once the peer stops reading and the buffers are full', function () {
          const { client } = connectedPair(ipv4);
          client.setBlocking(false);
          const payload = Buffer.alloc(1 << 20);
          expectSystemError(() => { for (;;) client.send(payload); }, 'EAGAIN', 'send');
          expectSystemError(() => client.sendAll(payload), 'EAGAIN', 'send');
        });
      });

      describe('timeout', function () {
        it('recv on a silent peer throws SocketTimeoutError after waiting', function () {
          const { server } = connectedPair(ipv4);
          server.setTimeout(50);
          expectTimeout(() => server.recv(10), 'recv', 50);
        });

        it('accept with nobody connecting throws SocketTimeoutError after waiting', function () {
          const listen = listener(ipv4);
          listen.setTimeout(50);
          expectTimeout(() => listen.accept(), 'accept', 50);
        });

        it('recvFrom on a silent UDP socket throws SocketTimeoutError after waiting', function () {
          const udp = datagramSocket(ipv4);
          udp.setTimeout(30);
          expectTimeout(() => udp.recvFrom(10), 'recvfrom', 30);
        });

        it('sendAll to a peer that never reads throws SocketTimeoutError: the timeout bounds the whole call', function () {
          const { client } = connectedPair(ipv4);
          client.setTimeout(50);
          expectTimeout(() => client.sendAll(Buffer.alloc(32 << 20)), 'send', 50);
        });

        it('recv returns data that arrives within the timeout', async function () {
          const listen = listener(ipv4);
          listen.setTimeout(SAFETY_MS);
          const peer = startPeer({ role: 'client', family: AF_INET, target: targetOf(listen), delayMs: 50, text: 'in time' });
          const [conn] = listen.accept();
          track(conn);
          let text = '';
          while (text.length < 'in time'.length) text += conn.recv(100).toString();
          conn.close();
          assert.equal(text, 'in time');
          await peer;
        });
      });
    });

    describe('accepted sockets take the listener\'s mode', function () {
      const cases: Array<[string, number | null, boolean]> = [
        ['blocking', null, false],
        ['non-blocking', 0, true],
        ['timeout 1234 ms', 1234, true],
      ];
      for (const [name, timeout, nonBlocking] of cases) {
        it(`${name} listener → ${name} connection`, function () {
          const listen = listener(ipv4);
          listen.setTimeout(timeout);
          const client = track(new Socket());
          connectTo(client, targetOf(listen));
          const [conn] = listen.accept();
          track(conn);
          assert.equal(conn.getTimeout(), timeout);
          assert.equal(binding.getNonBlocking(conn.fileno()), nonBlocking);
        });
      }
    });

    describe('connect and connectEx', function () {
      for (const [kind, host] of [[ipv4, '127.0.0.1'], [ipv6, '::1']] as const) {
        it(`${kind.name}: connect to a closed port throws ECONNREFUSED with code, errno, syscall, address and port`, function () {
          requireFamily(this, kind);
          const port = closedPort(kind.family, host);
          const sock = track(new Socket(kind.family));
          const err = expectSystemError(() => sock.connect(host, port), 'ECONNREFUSED', 'connect');
          assert.equal((err as { address?: string }).address, host);
          assert.equal((err as { port?: number }).port, port);
          assert.match(err.message, new RegExp(`ECONNREFUSED ${host.replace(/[.]/g, '\\.')}:${port}`));
        });
      }

      it('Unix: connect to a path nobody listens on throws ECONNREFUSED; to a missing path ENOENT', function () {
        const listen = listener(unix);
        const [address] = targetOf(listen);
        listen.close();
        expectSystemError(() => track(new Socket(AF_UNIX)).connect(address), 'ECONNREFUSED', 'connect');
        expectSystemError(() => track(new Socket(AF_UNIX)).connect(path.join(tmpDir, 'missing')), 'ENOENT', 'connect');
      });

      it('connectEx returns ECONNREFUSED instead of throwing (blocking and timeout mode)', function () {
        const port = closedPort(AF_INET, '127.0.0.1');
        assert.equal(track(new Socket()).connectEx('127.0.0.1', port), E.ECONNREFUSED);
        const timed = track(new Socket());
        timed.setTimeout(SAFETY_MS);
        assert.equal(timed.connectEx('127.0.0.1', port), E.ECONNREFUSED);
      });

      it('connectEx on a non-blocking socket returns EINPROGRESS; writable + SO_ERROR 0 means connected', function () {
        const listen = listener(ipv4);
        const sock = track(new Socket());
        sock.setBlocking(false);
        assert.equal(sock.connectEx(...(targetOf(listen) as [string, number])), E.EINPROGRESS);
        const [, writable] = binding.select(null, [sock.fileno()], null, SAFETY_MS);
        assert.deepEqual(writable, [sock.fileno()]);
        assert.equal(sock.getsockopt(SOL_SOCKET, constants.SO_ERROR), 0);
        assert.deepEqual(sock.getpeername(), listen.getsockname());
      });

      it('with a timeout, connect waits for the handshake and succeeds', function () {
        const listen = listener(ipv4);
        const sock = track(new Socket());
        sock.setTimeout(SAFETY_MS);
        assert.equal(sock.connectEx(...(targetOf(listen) as [string, number])), 0);
        assert.deepEqual(sock.getpeername(), listen.getsockname());
      });

      it('with a timeout, a handshake that never completes (full backlog) times out: connect throws, connectEx returns EAGAIN', function () {
        // Linux drops SYNs while the accept queue is full; listen(0) holds one connection.
        const listen = listener(ipv4, 0);
        const target = targetOf(listen) as [string, number];
        track(new Socket()).connect(...target);
        const first = track(new Socket());
        first.setTimeout(50);
        expectTimeout(() => first.connect(...target), 'connect', 50);
        const second = track(new Socket());
        second.setTimeout(30);
        assert.equal(second.connectEx(...target), E.EAGAIN);
      });

      it('connectEx still throws for bad arguments: a malformed address is a TypeError, not an errno', function () {
        const sock = track(new Socket());
        assert.throws(() => sock.connectEx('not an address', 80), TypeError);
        assert.throws(() => sock.connectEx('127.0.0.1', 70000), RangeError);
      });

      it('localhost and \'\' name the loopback and any address, as in Python', function () {
        const listen = track(new Socket(AF_INET6));
        listen.bind('', 0);
        assert.equal(listen.getsockname().address, '::');
        const v4 = track(new Socket());
        v4.bind('localhost', 0);
        assert.equal(v4.getsockname().address, '127.0.0.1');
      });
    });

    describe('sendAll', function () {
      const payload = randomBytes(6 << 20);
      const digest = createHash('sha256').update(payload).digest('hex');

      for (const [mode, timeout] of [['blocking', null], ['timeout', 20000]] as const) {
        it(`${mode} mode: several MiB to a slow reader arrive complete and in order`, async function () {
          const listen = listener(ipv4);
          boundBlocking(listen);
          const peer = startPeer({
            role: 'slowReader', family: AF_INET, target: targetOf(listen), chunk: 16384, pauseEvery: 16, pauseMs: 1,
          });
          const [conn] = listen.accept();
          track(conn);
          conn.setsockopt(SOL_SOCKET, constants.SO_SNDBUF, 16384);
          if (timeout === null) conn.setsockopt(SOL_SOCKET, constants.SO_SNDTIMEO, 20000);
          else conn.setTimeout(timeout);
          conn.sendAll(payload);
          conn.close();
          const result = await peer;
          assert.equal(result.bytes, payload.length);
          assert.equal(result.sha256, digest);
        });
      }

      it('strings go out as UTF-8', function () {
        const { server, client } = connectedPair(unix);
        client.sendAll('好好 hello');
        assert.equal(server.recv(100).toString('utf8'), '好好 hello');
      });
    });

    describe('socket options', function () {
      it('boolean and integer options read back as set', function () {
        const sock = track(new Socket());
        sock.setsockopt(SOL_SOCKET, constants.SO_REUSEADDR, true);
        assert.equal(sock.getsockopt(SOL_SOCKET, constants.SO_REUSEADDR), 1);
        sock.setsockopt(IPPROTO_TCP, constants.TCP_NODELAY, 1);
        assert.equal(sock.getsockopt(IPPROTO_TCP, constants.TCP_NODELAY), 1);
        sock.setsockopt(SOL_SOCKET, constants.SO_KEEPALIVE, false);
        assert.equal(sock.getsockopt(SOL_SOCKET, constants.SO_KEEPALIVE), 0);
      });

      it('SO_LINGER and SO_RCVTIMEO take their own shapes', function () {
        const sock = track(new Socket());
        sock.setsockopt(SOL_SOCKET, constants.SO_LINGER, { onoff: true, linger: 3 });
        assert.deepEqual(sock.getsockopt(SOL_SOCKET, constants.SO_LINGER), { onoff: true, linger: 3 });
        sock.setsockopt(SOL_SOCKET, constants.SO_RCVTIMEO, 1500);
        assert.equal(sock.getsockopt(SOL_SOCKET, constants.SO_RCVTIMEO), 1500);
      });

      it('an option the level does not have fails with a system error', function () {
        const sock = track(new Socket());
        expectSystemError(() => sock.getsockopt(SOL_SOCKET, 0x7fff), 'ENOPROTOOPT', 'getsockopt');
      });
    });

    describe('errors', function () {
      it('bind to a port in use throws EADDRINUSE', function () {
        const listen = listener(ipv4);
        const other = track(new Socket());
        expectSystemError(() => other.bind(...(targetOf(listen) as [string, number])), 'EADDRINUSE', 'bind');
      });

      it('accept on a socket that is not listening throws EINVAL; listen on UDP EOPNOTSUPP', function () {
        const sock = track(new Socket());
        sock.bind('127.0.0.1', 0);
        expectSystemError(() => sock.accept(), 'EINVAL', 'accept');
        // EOPNOTSUPP and ENOTSUP are one value on Linux; the code is the first name (as libuv's).
        expectSystemError(() => track(new Socket(AF_INET, SOCK_DGRAM)).listen(), errnoName(E.EOPNOTSUPP)!, 'listen');
      });

      it('getpeername on an unconnected socket throws ENOTCONN', function () {
        expectSystemError(() => track(new Socket()).getpeername(), 'ENOTCONN', 'getpeername');
      });

      it('sizes and shutdown modes are checked before any system call', function () {
        const { server } = connectedPair(ipv4);
        assert.throws(() => server.recv(-1), RangeError);
        assert.throws(() => server.recv(1.5), TypeError);
        assert.throws(() => server.recv('10' as unknown as number), TypeError);
        assert.throws(() => server.recvInto(Buffer.alloc(4), 8), RangeError);
        assert.throws(() => server.recvFrom(-1), RangeError);
        assert.throws(() => server.shutdown('sideways' as 'read'), TypeError);
        assert.throws(() => new Socket(12345), (err: unknown) => isSystemError(err, 'EAFNOSUPPORT'));
      });
    });

    describe('close', function () {
      it('is idempotent: the second close does nothing, fileno() is -1, closed is true', function () {
        const sock = new Socket();
        const fd = sock.fileno();
        assert.ok(fd >= 0);
        sock.close();
        sock.close();
        assert.equal(sock.fileno(), -1);
        assert.equal(sock.closed, true);
        expectSystemError(() => binding.getNonBlocking(fd), 'EBADF', 'fcntl');
      });

      it('every call after close throws EBADF naming the call', function () {
        const sock = new Socket();
        sock.close();
        const buffer = Buffer.alloc(4);
        const calls: Array<[string, () => unknown]> = [
          ['bind', () => sock.bind('127.0.0.1', 0)],
          ['listen', () => sock.listen()],
          ['accept', () => sock.accept()],
          ['connect', () => sock.connect('127.0.0.1', 1)],
          ['connect', () => sock.connectEx('127.0.0.1', 1)],
          ['recv', () => sock.recv(4)],
          ['recv', () => sock.recvInto(buffer)],
          ['send', () => sock.send('x')],
          ['send', () => sock.sendAll('x')],
          ['recvfrom', () => sock.recvFrom(4)],
          ['recvfrom', () => sock.recvFromInto(buffer)],
          ['sendto', () => sock.sendTo('x', '127.0.0.1', 1)],
          ['setTimeout', () => sock.setTimeout(10)],
          ['setTimeout', () => sock.setBlocking(false)],
          ['setsockopt', () => sock.setsockopt(SOL_SOCKET, constants.SO_REUSEADDR, true)],
          ['getsockopt', () => sock.getsockopt(SOL_SOCKET, constants.SO_REUSEADDR)],
          ['getsockname', () => sock.getsockname()],
          ['getpeername', () => sock.getpeername()],
          ['shutdown', () => sock.shutdown('both')],
        ];
        for (const [syscall, call] of calls) expectSystemError(call, 'EBADF', syscall);
      });

      it('detach hands the descriptor over without closing it', function () {
        const sock = new Socket();
        const fd = sock.detach();
        assert.equal(sock.closed, true);
        sock.close(); // Must not close the detached descriptor.
        assert.equal(binding.getNonBlocking(fd), false, 'still open');
        binding.close(fd);
      });

      it('Symbol.dispose closes the socket, and so does the end of a using block', function () {
        // Were Symbol.dispose undefined, the method would be named "undefined" and this would prove nothing.
        assert.equal(typeof Symbol.dispose, 'symbol');
        const sock = new Socket();
        sock[Symbol.dispose]();
        assert.equal(sock.closed, true);
        let outer: Socket;
        {
          using scoped = new Socket();
          outer = scoped;
          assert.equal(scoped.closed, false);
        }
        assert.equal(outer.closed, true);
      });

      for (const kind of [ipv4, unix]) {
        it(`${kind.name}: closing one end is end of stream for the other`, function () {
          const { server, client } = connectedPair(kind);
          client.close();
          assert.equal(server.recv(10).length, 0);
        });
      }
    });
  });
}
