/**
 * TLS on the stream layer (TlsConnection over a Connection, Node's OpenSSL through the addon),
 * against Node's own `tls` as the peer: on every mechanism attached, and blocking in run(); the
 * STARTTLS upgrade; backpressure, half-close with close_notify, the lingering close, sendFile
 * encrypted with bounded memory; certificate checks, pinning and session resumption; and the
 * hostile cases — a peer that stops mid-handshake, one that speaks plaintext, one that resets.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { addonFile, binding } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { Listener } from '../lib/stream/listener';
import { TlsConnection } from '../lib/stream/tls-connection';
import { ioUringUnavailable } from '../lib/selectors/io-uring';
import { fingerprint256, TlsContext, tlsUnavailable } from '../lib/stream/tls-context';
import { makeSelector, selectorVariants } from './fixtures';
import { leakedSince, openKernelObjects, runNode } from './helpers';
import { requireTool } from './run-tool';
import { closed, patternFile, readAll, readSlowly } from './stream-fixtures';
import { TlsFixtures, tlsFixtures } from './tls-fixtures';
import { skipUnless } from './skip';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A TLS listener on an attached reactor: each accepted connection goes through `setup`. */
function serveTls(reactor: Reactor, context: TlsContext, setup: (conn: TlsConnection) => void,
  options: { handshakeTimeoutMs?: number; sessionIdContext?: Buffer } = {}) {
  const accepted: TlsConnection[] = [];
  const closings: Promise<Error | null>[] = [];
  const listener = new Listener(reactor, { endpoint: { port: 0 } }, (plain) => {
    const conn = TlsConnection.server(plain, { context, ...options });
    accepted.push(conn);
    setup(conn);
    closings.push(onClosed(conn));
  });
  return {
    listener, port: listener.listen().port, accepted,
    /** Every connection accepted so far has closed; then the listener closes. */
    async shutDown(): Promise<void> {
      await Promise.all(closings);
      listener.close();
    },
  };
}

function nodeClient(port: number, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function onClosed(conn: TlsConnection): Promise<Error | null> {
  return new Promise((resolve) => {
    const previous = conn.onClose;
    conn.onClose = function (err) {
      previous?.call(this, err);
      resolve(err);
    };
  });
}

describe('TLS on the stream layer', function () {
  this.timeout(60000);
  let fx: TlsFixtures;
  let serverContext: TlsContext;

  before(async function () {
    const why = tlsUnavailable();
    assert.equal(why, null, `this addon has no TLS: ${why}`);
    fx = await tlsFixtures();
    serverContext = TlsContext.server({ certFile: fx.self.certFile, keyFile: fx.self.keyFile });
  });

  it('the addon calls exactly the OpenSSL functions it checks for at load (nm agrees with the list)', function () {
    requireTool('nm', ['--version'], 'binutils');
    const undefinedSymbols = execFileSync('nm', ['-u', addonFile], { encoding: 'utf8' }).split('\n')
      .map((line) => line.trim().split(/\s+/).pop() ?? '')
      .filter((name) => /^(SSL|BIO|ERR|EVP|PEM|X509|OPENSSL|OpenSSL|TLS|d2i|i2d|CRYPTO|RAND|ASN1|BN)_?/.test(name))
      .sort();
    assert.deepEqual(undefinedSymbols, [...binding.tlsFunctions!].sort());
  });

  for (const variant of selectorVariants()) {
    describe(`on ${variant.name}`, () => {
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

      it('echoes through a TLS 1.3 handshake; close_notify ends both ways; everything is closed after', async () => {
        let server!: TlsConnection;
        const secured: string[] = [];
        const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
          server = conn;
          conn.onSecure = function () {
            secured.push(`${this.protocol} ${this.cipher}`);
          };
          conn.onData = function (data) {
            this.write(data);
          };
        });
        const socket = await nodeClient(port);
        const serverClosed = onClosed(server);
        const received = readAll(socket);
        const message = Buffer.alloc(200_000, 'tls!');
        socket.end(message);
        assert.equal(sha256(await received), sha256(message));
        await closed(socket);
        assert.equal(await serverClosed, null);
        assert.equal(secured.length, 1);
        assert.match(secured[0], /^TLSv1\.3 TLS_AES_/);
        assert.equal(server.bytesRead, message.length);
        assert.equal(server.bytesWritten, message.length);
        assert.equal(server.truncated, false);
        await shutDown();
      });

      it('sendFile: 32 MiB read and encrypted as a slow reader takes it, between two writes, byte-exact, bounded memory', async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomux-tls-file-'));
        try {
          const { file, hash } = patternFile(dir, 32 * 1024 * 1024);
          const fd = fs.openSync(file, 'r');
          let server!: TlsConnection;
          let sent: Error | null | undefined;
          const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
            server = conn;
            conn.write('BEGIN\n');
            conn.sendFile(fd, 0, 32 * 1024 * 1024, (err) => {
              sent = err;
            });
            conn.end('END\n');
          });
          const socket = await nodeClient(port);
          const serverClosed = onClosed(server);
          const whole = createHash('sha256');
          const head = Buffer.from('BEGIN\n');
          const tail = Buffer.from('END\n');
          const expected = createHash('sha256').update(head);
          // The file's hash, framed by the two writes: computed from the file itself.
          expected.update(fs.readFileSync(file)).update(tail);
          const slow = readSlowly(socket, 1024 * 1024, 5);
          socket.on('data', (chunk: Buffer) => whole.update(chunk));
          const got = await slow;
          socket.end();
          await closed(socket);
          assert.equal(await serverClosed, null);
          fs.closeSync(fd);
          assert.equal(got.bytes, 32 * 1024 * 1024 + head.length + tail.length);
          assert.equal(got.hash, expected.digest('hex'));
          assert.equal(sent, null);
          assert.ok(hash.length === 64);
          // Never more than one encrypted step (256 KiB) beyond the transport's high-water mark.
          assert.ok(server.transport.peakWritableLength < 64 * 1024 + 300 * 1024, `peak ${server.transport.peakWritableLength}`);
          await shutDown();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    });
  }

  describe('a reactor blocking its thread in run()', () => {
    for (const mechanism of ['epoll', 'io_uring'] as const) {
      it(`${mechanism}: a TLS echo server in run() serves a Node client in another process`, async function () {
        skipUnless(this, selectorVariants().some((v) => v.mechanism === mechanism), `${mechanism} refused here: ${ioUringUnavailable()?.message}`);
        const script = `
          const { Reactor, Listener, TlsConnection, TlsContext, createSelector } = require('./dist/lib');
          const { spawn } = require('node:child_process');
          const context = TlsContext.server({ certFile: ${JSON.stringify(fx.self.certFile)}, keyFile: ${JSON.stringify(fx.self.keyFile)} });
          const reactor = new Reactor(createSelector('${mechanism}'));
          const listener = new Listener(reactor, { endpoint: { port: 0 } }, (plain) => {
            listener.close();
            const conn = TlsConnection.server(plain, { context });
            conn.onData = function (data) { this.write(data); };
            conn.onClose = (err) => { console.log('server closed', err ? err.code : null, conn.bytesRead); reactor.stop(); };
          });
          const port = listener.listen().port;
          spawn(process.execPath, ['-e', \`
            const s = require('node:tls').connect({ port: \${port}, host: '127.0.0.1', rejectUnauthorized: false }, () => s.end('x'.repeat(100000)));
            let n = 0; s.on('data', (d) => n += d.length); s.on('end', () => console.log('client got', n));
          \`], { stdio: 'inherit' });
          reactor.run();
        `;
        const result = await runNode(script, { timeoutMs: 30000 });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /client got 100000/);
        assert.match(result.stdout, /server closed null 100000/);
      });
    }
  });

  describe('on the default mechanism', () => {
    let reactor: Reactor;
    let before: Map<number, string>;
    beforeEach(() => {
      before = openKernelObjects();
      reactor = new Reactor();
      reactor.attach();
    });
    afterEach(() => {
      reactor.close();
      assert.deepEqual(leakedSince(before), []);
    });

    it('STARTTLS: a plaintext exchange, then TLS on the same connection; what was written before goes out in clear first', async () => {
      let upgraded: TlsConnection | null = null;
      const listener = new Listener(reactor, { endpoint: { port: 0 } }, (plain) => {
        plain.write('220 plain hello\r\n');
        plain.onData = function (data) {
          if (data.toString() !== 'STARTTLS\r\n') return;
          this.write('220 go ahead\r\n');
          upgraded = TlsConnection.server(this, { context: serverContext });
          upgraded.onData = function (line) {
            this.write(`secret: ${line.toString()}`);
          };
        };
      });
      const { port } = listener.listen();
      const socket = net.connect(port, '127.0.0.1');
      const greeting = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
      assert.equal(greeting, '220 plain hello\r\n');
      socket.write('STARTTLS\r\n');
      const goAhead = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
      assert.equal(goAhead, '220 go ahead\r\n');
      const secure = tls.connect({ socket, rejectUnauthorized: false });
      await new Promise((resolve) => secure.once('secureConnect', resolve));
      const reply = readAll(secure);
      secure.end('password');
      assert.equal((await reply).toString(), 'secret: password');
      await closed(secure);
      assert.ok(upgraded !== null && (upgraded as TlsConnection).isSecure);
      listener.close();
    });

    it('backpressure: write() says stop at highWater and onDrain says go; 16 MiB reach a slow reader byte-exact', async () => {
      const total = 16 * 1024 * 1024;
      const piece = Buffer.alloc(100_000);
      for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) & 0xff;
      let falses = 0;
      let drains = 0;
      const expected = createHash('sha256');
      for (let sent = 0; sent < total; sent += piece.length) expected.update(piece.subarray(0, Math.min(piece.length, total - sent)));
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            const n = Math.min(piece.length, total - sent);
            sent += n;
            if (!conn.write(piece.subarray(0, n))) {
              falses++;
              return;
            }
          }
          conn.end();
        };
        conn.onDrain = () => {
          drains++;
          pump();
        };
        conn.onSecure = pump;
      });
      const socket = await nodeClient(port);
      const got = await readSlowly(socket, 2 * 1024 * 1024, 20);
      socket.end();
      await closed(socket);
      assert.equal(got.bytes, total);
      assert.equal(got.hash, expected.digest('hex'));
      assert.ok(falses > 0, 'write() never said stop');
      assert.equal(drains, falses);
      await shutDown();
    });

    it('half-close by the peer (close_notify): our replies still go out, then our close_notify', async () => {
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        const chunks: Buffer[] = [];
        conn.onData = (data) => {
          chunks.push(Buffer.from(data));
        };
        conn.onEnd = function () {
          // Answered after the peer finished: TLS's half-close carries it.
          setTimeout(() => this.end(`got ${Buffer.concat(chunks).length} bytes`), 20);
        };
      });
      const socket = await nodeClient(port);
      const reply = readAll(socket);
      socket.end(Buffer.alloc(1000));
      assert.equal((await reply).toString(), 'got 1000 bytes');
      await closed(socket);
      await shutDown();
    });

    it('half-close by us: after our end() we go on receiving until the peer ends', async () => {
      let received = 0;
      let server!: TlsConnection;
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        server = conn;
        conn.onSecure = function () {
          this.end('bye\n');
        };
        conn.onData = (data) => {
          received += data.length;
        };
      });
      // allowHalfOpen reaches the TLSSocket (tls.connect passes it on; @types/node leaves it out).
      const socket = await nodeClient(port, { allowHalfOpen: true } as tls.ConnectionOptions);
      const serverClosed = onClosed(server);
      const reply = readAll(socket);
      assert.equal((await reply).toString(), 'bye\n');
      socket.end(Buffer.alloc(50_000));
      await closed(socket);
      assert.equal(await serverClosed, null);
      assert.equal(received, 50_000);
      await shutDown();
    });

    it('close(): the lingering close delivers replies in flight before the descriptor closes', async () => {
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        conn.onData = function (data) {
          if (data.toString().includes('QUIT')) {
            this.write(Buffer.alloc(1024 * 1024, 'r'));
            this.close();
          }
        };
      });
      const socket = await nodeClient(port);
      const reply = readAll(socket);
      socket.write('QUIT\n');
      // Keep sending after QUIT: a plain close would reset and destroy the reply in flight.
      const timer = setInterval(() => socket.write('noise\n'), 1);
      const got = await reply;
      clearInterval(timer);
      socket.end();
      await closed(socket);
      assert.equal(got.length, 1024 * 1024);
      await shutDown();
    });

    it('lifecycle moves with the transport: once our side is shut it says so at once, not a turn later with onFinish (the peer can see our end first)', async () => {
      const secured: TlsConnection[] = [];
      let secure!: () => void;
      const bothSecure = new Promise<void>((resolve) => { secure = resolve; });
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        conn.onSecure = function () {
          secured.push(this);
          if (secured.length === 2) secure();
        };
      });
      // Half-open peers: they do not answer our end with theirs until told to.
      const halfOpen = { allowHalfOpen: true } as tls.ConnectionOptions;
      const sockets = [await nodeClient(port, halfOpen), await nodeClient(port, halfOpen)];
      await bothSecure;
      const [ending, closing] = secured;
      let finishes = 0;
      for (const conn of secured) conn.onFinish = () => { finishes++; };
      ending.end('bye');
      closing.close();
      // Called outside the reactor's turn: the transports shut (or still flush) inside these calls.
      assert.equal(ending.lifecycle, ending.transport.lifecycle);
      assert.equal(closing.lifecycle, closing.transport.lifecycle);
      assert.equal(finishes, 0, 'onFinish is still to come, from the turn');
      const peerOf = (conn: TlsConnection) => sockets.find((s) => s.localPort === conn.remoteAddress.port)!;
      const received = await Promise.all([readAll(peerOf(ending)), readAll(peerOf(closing))]);
      assert.deepEqual(received.map(String), ['bye', '']);
      // The peers have our close_notify and FIN: so must our lifecycle, whatever the turn has run.
      assert.equal(ending.lifecycle, 'writeShut');
      assert.equal(closing.lifecycle, 'lingering');
      for (const socket of sockets) socket.end();
      await Promise.all(sockets.map((s) => closed(s)));
      await shutDown();
      assert.equal(finishes, 2);
    });

    it('a peer that stops in the middle of its handshake is cut off at handshakeTimeoutMs, holding nothing', async () => {
      const before = openKernelObjects();
      let server!: TlsConnection;
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        server = conn;
      }, { handshakeTimeoutMs: 300 });
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      // The first bytes of a ClientHello, then one byte every 100 ms: a trickle keeps an idle
      // timeout alive, but the handshake's limit is on its total time.
      const hello = await captureClientHello();
      socket.write(hello.subarray(0, 40));
      let at = 40;
      const dripper = setInterval(() => socket.write(hello.subarray(at, ++at)), 100);
      while (server === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
      const err = await onClosed(server);
      clearInterval(dripper);
      assert.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
      assert.match(err!.message, /tls handshake/);
      await closed(socket.destroy());
      await shutDown();
      assert.deepEqual(leakedSince(before), []);
    });

    it('plaintext to a TLS server is a TLS error (the alert goes out), that connection alone', async () => {
      let err: Error | null = null;
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        conn.onError = (e) => {
          err = e;
        };
      });
      const socket = net.connect(port, '127.0.0.1');
      const reply = readAll(socket).catch(() => Buffer.alloc(0));
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      const got = await reply;
      await closed(socket);
      assert.match((err as unknown as NodeJS.ErrnoException).code ?? '', /^ERR_SSL_(HTTP_REQUEST|WRONG_VERSION_NUMBER)$/);
      // An alert record (content type 21) if the socket took it before the close.
      if (got.length > 0) assert.equal(got[0], 21);
      await shutDown();
    });

    it('a peer that closes during the handshake: one onError (ECONNRESET), one onClose', async () => {
      const events: string[] = [];
      let server!: TlsConnection;
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        server = conn;
        conn.onError = (e) => events.push(`error ${(e as NodeJS.ErrnoException).code}`);
      });
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.end((await captureClientHello()).subarray(0, 10));
      while (server === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
      await onClosed(server);
      await closed(socket);
      assert.deepEqual(events, ['error ECONNRESET']);
      await shutDown();
    });

    it('close() during the handshake, then the peer leaves: closed at once without an error, not at handshakeTimeoutMs', async () => {
      const events: string[] = [];
      let server: TlsConnection | undefined;
      let accepted!: () => void;
      const acceptedNow = new Promise<void>((resolve) => { accepted = resolve; });
      // An hour: only the peer's leaving can close it within the test's timeout.
      const listener = new Listener(reactor, { endpoint: { port: 0 } }, (plain) => {
        server = TlsConnection.server(plain, { context: serverContext, handshakeTimeoutMs: 3600000 });
        server.onError = (e) => events.push(`error ${(e as NodeJS.ErrnoException).code}`);
        server.close();
        accepted();
      });
      const { port } = listener.listen();
      const socket = net.connect(port, '127.0.0.1');
      await acceptedNow;
      socket.end((await captureClientHello()).subarray(0, 10));
      assert.equal(await onClosed(server!), null);
      await closed(socket);
      assert.deepEqual(events, []);
      listener.close();
    });

    it('ending inside onEnd, then writing to another TLS connection: our close_notify still goes out intact', async () => {
      // Inside its transport's onData a connection's last records are only lent to the corked
      // transport (one record buffer per thread); a record for another connection made before that
      // transport uncorks must not overwrite them. FTPS does this: a data connection's end, then 226.
      const conns: TlsConnection[] = [];
      let secured = 0;
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        conns.push(conn);
        conn.onSecure = () => void secured++;
        conn.onEnd = function () {
          this.end('goodbye');
          for (const other of conns) if (other !== this) other.write('a word to the other');
        };
      });
      const a = await nodeClient(port);
      const b = await nodeClient(port);
      while (secured < 2) await new Promise((resolve) => setTimeout(resolve, 5)); // Both handshakes done on our side.
      const toB = new Promise<string>((resolve) => b.once('data', (d: Buffer) => resolve(d.toString())));
      const aEnded = readAll(a); // Rejects on a corrupt record.
      a.end();
      assert.equal((await aEnded).toString(), 'goodbye');
      assert.equal(await toB, 'a word to the other');
      b.end();
      await Promise.all([closed(a), closed(b)]);
      await shutDown();
    });

    it('an exception in onData destroys that connection alone; the others go on', async () => {
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        conn.onData = function (data) {
          if (data.toString() === 'boom') throw new Error('handler failed');
          this.write(data);
        };
      });
      const bad = await nodeClient(port);
      const good = await nodeClient(port);
      const badClosed = closed(bad);
      bad.write('boom');
      await badClosed;
      const reply = new Promise<string>((resolve) => good.once('data', (d: Buffer) => resolve(d.toString())));
      good.write('still here');
      assert.equal(await reply, 'still here');
      good.end();
      await closed(good);
      await shutDown();
    });

    it('the idle timeout applies to the TLS connection (default: ETIMEDOUT)', async () => {
      let server!: TlsConnection;
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        server = conn;
        conn.setIdleTimeout(200);
      });
      const socket = await nodeClient(port);
      const err = await onClosed(server);
      assert.equal((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
      await closed(socket);
      await shutDown();
    });

    it('before the handshake: lifecycle connecting, writes wait; end() and close() are remembered, and the peer gets the bytes, then close_notify', async () => {
      const seen: string[] = [];
      const closes: (Error | null)[] = [];
      let accepted = 0;
      const listener = new Listener(reactor, { endpoint: { port: 0 } }, (plain) => {
        const conn = TlsConnection.server(plain, { context: serverContext });
        conn.onClose = (err) => closes.push(err);
        seen.push(`${conn.lifecycle} ${conn.isConnecting} ${conn.writable}`);
        conn.write('early ');
        if (accepted++ === 0) {
          assert.equal(conn.end('bye'), true);
          assert.equal(conn.writable, false);
          assert.equal(conn.closing, false);
        } else {
          conn.write('then close');
          conn.close();
          assert.equal(conn.closing, true);
        }
        assert.equal(conn.lifecycle, 'connecting', 'remembered until the handshake is complete');
        assert.equal(conn.write('late'), false);
        assert.equal(conn.droppedWrites, 1);
      });
      const { port } = listener.listen();
      for (const expected of ['early bye', 'early then close']) {
        const socket = await nodeClient(port, { allowHalfOpen: true } as tls.ConnectionOptions);
        assert.equal((await readAll(socket)).toString(), expected);
        socket.end();
        await closed(socket);
      }
      while (closes.length < 2) await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(seen, ['connecting true true', 'connecting true true']);
      assert.deepEqual(closes, [null, null]);
      listener.close();
    });

    it('a throwing onSecure destroys that connection alone, and is logged when no onError hears of it', async () => {
      const logged: string[] = [];
      let first = true;
      const listener = new Listener(reactor, { endpoint: { port: 0 }, connection: { log: (line) => logged.push(line) } }, (plain) => {
        const conn = TlsConnection.server(plain, { context: serverContext });
        const throws = first;
        first = false;
        conn.onSecure = function () {
          if (throws) throw new Error('from onSecure');
          this.end('fine\n');
        };
      });
      const { port } = listener.listen();
      const bad = net.connect(port, '127.0.0.1');
      const badTls = tls.connect({ socket: bad, rejectUnauthorized: false });
      badTls.on('error', () => undefined); // A reset is one way for it to end.
      await closed(badTls);
      assert.ok(logged.some((line) => /onSecure threw: Error: from onSecure/.test(line)), logged.join('\n'));
      const good = await nodeClient(port);
      assert.equal((await readAll(good)).toString(), 'fine\n');
      await closed(good);
      listener.close();
    });

    it('Listener.shutdown() closes TLS connections with close_notify: openssl s_client sees a clean close, as does a Node client; a silent one is destroyed after the grace', async function () {
      requireTool('openssl', ['version'], 'openssl');
      let secured = 0;
      const closes: (Error | null)[] = [];
      let ready!: () => void;
      const allSecure = new Promise<void>((resolve) => { ready = resolve; });
      const listener = new Listener(reactor, { endpoint: { port: 0 } }, (plain) => {
        const conn = TlsConnection.server(plain, { context: serverContext });
        conn.onSecure = function () {
          this.write('hello\n');
          if (++secured === 2) ready();
        };
        conn.onClose = (err) => closes.push(err);
      });
      const { port } = listener.listen();
      // -state prints OpenSSL's own account of each alert; stdin stays open, so s_client waits for the server.
      const sClient = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-state'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let said = '';
      sClient.stdout.on('data', (d: Buffer) => { said += d.toString(); });
      sClient.stderr.on('data', (d: Buffer) => { said += d.toString(); });
      const sClientExit = new Promise<number | null>((resolve) => sClient.once('exit', resolve));
      const node = await nodeClient(port);
      const nodeGot = readAll(node);
      const silent = net.connect(port, '127.0.0.1'); // Never sends its ClientHello.
      silent.on('error', () => undefined);
      await new Promise((resolve) => silent.once('connect', resolve));
      await allSecure;
      const done = new Promise<void>((resolve) => listener.shutdown(1000, resolve));
      assert.equal(await sClientExit, 0, said);
      assert.match(said, /hello/);
      assert.match(said, /SSL3 alert read:warning:close notify/, 'our close_notify reached s_client');
      assert.doesNotMatch(said, /unexpected eof/);
      assert.equal((await nodeGot).toString(), 'hello\n');
      await done;
      assert.equal(listener.connectionCount, 0);
      // The silent one by the grace's destroy: its handshake's own deadline (30 s, ETIMEDOUT) is far off.
      assert.deepEqual(closes, [null, null, null]);
      sClient.stdin.end();
      await Promise.all([closed(node), closed(silent)]);
    });

    describe('the client side', () => {
      let nodeServer: tls.Server;
      let port: number;
      const startNodeServer = (options: tls.TlsOptions): Promise<void> => new Promise((resolve) => {
        nodeServer = tls.createServer(options, (socket) => socket.pipe(socket));
        nodeServer.listen(0, '127.0.0.1', () => {
          port = (nodeServer.address() as net.AddressInfo).port;
          resolve();
        });
      });
      afterEach(() => new Promise<void>((resolve) => nodeServer.close(() => resolve())));

      function talk(options: Parameters<typeof TlsConnection.connect>[2]): Promise<{ reply: string; error: NodeJS.ErrnoException | null; conn: TlsConnection }> {
        return new Promise((resolve) => {
          const conn = TlsConnection.connect(reactor, { host: '127.0.0.1', port }, options);
          const chunks: Buffer[] = [];
          let error: NodeJS.ErrnoException | null = null;
          conn.write('ping');
          conn.onData = function (data) {
            chunks.push(Buffer.from(data));
            if (Buffer.concat(chunks).toString() === 'ping') this.end();
          };
          conn.onError = (err) => {
            error = err;
          };
          conn.onClose = () => resolve({ reply: Buffer.concat(chunks).toString(), error, conn });
        });
      }

      it('verifies the server against a CA, by name: a good chain works; no trust, a wrong name fail with Node\'s codes', async () => {
        await startNodeServer({ cert: fx.chain.leaf.cert, key: fx.chain.leaf.key });
        const trusted = TlsContext.client({ caFile: fx.chain.caFile });
        const ok = await talk({ context: trusted });
        assert.equal(ok.error, null);
        assert.equal(ok.reply, 'ping');
        const untrusted = await talk({ context: TlsContext.client() });
        assert.equal(untrusted.error?.code, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
        const wrongName = await talk({ context: trusted, servername: 'example.com' });
        assert.equal(wrongName.error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
        const byName = await talk({ context: trusted, servername: 'localhost' });
        assert.equal(byName.error, null);
      });

      it('a self-signed server: refused when verifying, accepted when pinned by fingerprint, refused on a wrong pin', async () => {
        await startNodeServer({ cert: fx.self.cert, key: fx.self.key });
        const verified = await talk({ context: TlsContext.client() });
        assert.equal(verified.error?.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
        const pinning = TlsContext.client({ verify: false });
        const pinned = await talk({ context: pinning, fingerprint256: fx.self.fingerprint256.toLowerCase() });
        assert.equal(pinned.error, null);
        assert.equal(pinned.reply, 'ping');
        assert.equal(fingerprint256(new X509Certificate(fx.self.cert).raw), fx.self.fingerprint256);
        const wrong = await talk({ context: pinning, fingerprint256: fx.chain.leaf.fingerprint256 });
        assert.equal(wrong.error?.code, 'ERR_TLS_CERT_FINGERPRINT');
        assert.equal(wrong.reply, '', 'nothing may be sent to a server whose pin does not match');
      });
    });

    it('session resumption: a second connection resumes the first one\'s session only under the same sessionIdContext', async () => {
      const context = TlsContext.client({ verify: false });
      const sid = Buffer.from('control-connection-1');
      const { shutDown, port } = serveTls(reactor, serverContext, (conn) => {
        conn.onData = function (data) {
          this.write(data);
        };
      }, { sessionIdContext: sid });
      const other = serveTls(reactor, serverContext, (conn) => {
        conn.onData = function (data) {
          this.write(data);
        };
      }, { sessionIdContext: Buffer.from('control-connection-2') });
      const roundTrip = (to: number, session?: Buffer): Promise<{ session: Buffer | null; reused: boolean }> => new Promise((resolve) => {
        const conn = TlsConnection.connect(reactor, { port: to }, { context, session });
        let result = { session: null as Buffer | null, reused: false };
        conn.write('hello');
        conn.onData = function () {
          // TLS 1.3 hands the session over after the handshake, with the first bytes read.
          result = { session: this.session, reused: this.sessionReused };
          this.end();
        };
        conn.onClose = () => resolve(result);
      });
      const first = await roundTrip(port);
      assert.equal(first.reused, false);
      assert.ok(first.session !== null);
      const second = await roundTrip(port, first.session!);
      assert.equal(second.reused, true, 'the same server context and sessionIdContext resume');
      const foreign = await roundTrip(other.port, first.session!);
      assert.equal(foreign.reused, false, 'another sessionIdContext does not');
      await shutDown();
      await other.shutDown();
    });
  });
});

/** The first bytes of a real ClientHello, taken from Node's tls client against a socket that only listens. */
function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.once('data', (data: Buffer) => {
        resolve(Buffer.from(data));
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
      client.on('error', () => undefined);
    });
  });
}
