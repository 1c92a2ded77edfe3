/**
 * The stream layer's Listener: it accepts until EAGAIN (a backlog is never stranded under
 * edge-triggered epoll), goes on past a failing per-connection setsockopt and per-connection accept
 * errors, pauses when the process is out of descriptors (EMFILE) and resumes by itself, and close()
 * cancels that pause.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { binding, constants } from '../lib/native';
import { isSystemError, systemError } from '../lib/errors';
import { Reactor } from '../lib/reactor';
import { Listener, acceptErrorAction } from '../lib/stream/listener';
import { Connection } from '../lib/stream/connection';
import { Resources } from './fixtures/sockets';
import { makeSelector, selectorVariants, socketPair } from './fixtures';
import { leakedSince, openKernelObjects, startChild } from './helpers';
import { client, closed, readAll } from './stream-fixtures';
import { EpollSelector } from '../lib/selectors/epoll';
import { PollSelector } from '../lib/selectors/poll';
import { linuxFeature } from './skip';

function echo(conn: Connection): void {
  conn.onData = function (data) {
    this.write(data);
  };
}

function connectAll(port: number, count: number): Promise<net.Socket[]> {
  return Promise.all(Array.from({ length: count }, () => new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  })));
}

describe('stream listener', function () {
  this.timeout(60000);
  let before: Map<number, string>;
  beforeEach(() => {
    before = openKernelObjects();
  });
  afterEach(() => {
    assert.deepEqual(leakedSince(before), []);
  });

  for (const variant of selectorVariants()) {
    it(`${variant.name}: 200 connections waiting in the backlog are all accepted in one wake-up`, async () => {
      const reactor = new Reactor(makeSelector(variant));
      const accepted: Connection[] = [];
      const listener = new Listener(reactor, { backlog: 1024 }, (conn) => accepted.push(conn));
      const { port } = listener.listen();
      // The reactor is not running yet: every connection completes its handshake into the backlog.
      const sockets = await connectAll(port, 200);
      const turn = reactor.runOnce(10000);
      assert.equal(turn, 1, 'one handler call');
      assert.equal(accepted.length, 200);
      assert.equal(listener.stats.accepted, 200);
      const gone = sockets.map(closed);
      for (const socket of sockets) socket.destroy();
      await Promise.all(gone);
      for (const conn of accepted) conn.destroy();
      listener.close();
      reactor.close();
    });
  }

  it('a per-connection setsockopt that fails (TCP_NODELAY on a Unix socket: ENOTSUP) is logged, and serving goes on', async () => {
    const res = new Resources();
    const socketPath = res.socketPath();
    const fd = binding.socket(constants.AF_UNIX, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
    binding.bind(fd, socketPath);
    binding.listen(fd, 16);
    const reactor = new Reactor();
    reactor.attach();
    const logged: string[] = [];
    // An adopted descriptor with no endpoint: the listener takes it for TCP and sets TCP_NODELAY.
    const listener = new Listener(reactor, { fd, log: (line) => logged.push(line) }, echo);
    listener.listen();
    try {
      for (let i = 0; i < 3; i++) {
        const socket = net.connect(socketPath);
        socket.end(`client ${i}`);
        assert.equal((await readAll(socket)).toString(), `client ${i}`);
        await closed(socket);
      }
      assert.equal(logged.filter((l) => /TCP_NODELAY.*(EOPNOTSUPP|ENOTSUP)/.test(l)).length, 3, logged.join('\n'));
    } finally {
      listener.close();
      reactor.close();
      res.release();
    }
  });

  it('accept errors that belong to one connection are skipped; out of descriptors, or unknown, pauses', () => {
    for (const code of ['ECONNABORTED', 'EPROTO', 'EPERM', 'ENOBUFS', 'ENOMEM', 'ENETDOWN', 'EHOSTUNREACH']) {
      assert.equal(acceptErrorAction(systemError(constants.errno[code], 'accept')), 'skip', code);
    }
    for (const code of ['EMFILE', 'ENFILE', 'EBADF', 'EINVAL']) {
      assert.equal(acceptErrorAction(systemError(constants.errno[code], 'accept')), 'pause', code);
    }
    assert.equal(acceptErrorAction(new Error('not a system error')), 'pause');
    assert.ok(isSystemError(systemError(constants.errno.EPROTO, 'accept'), 'EPROTO'));
  });

  it('out of descriptors (EMFILE): accepting pauses instead of spinning, and resumes by itself; every client is served', async () => {
    // A child with a small descriptor limit, so that EMFILE is real and nothing else is starved.
    const script = path.join(__dirname, 'fixtures', 'emfile-server.js');
    const { child, match, exited, output } = await startChild('sh', ['-c', `ulimit -n 40 && exec "${process.execPath}" "${script}"`], /port (\d+)/);
    const port = Number(match[1]);
    // More clients at once than the server has descriptors: some wait in the backlog until others finish.
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
      socket.on('error', reject);
      socket.end(`client ${i}`);
    })));
    replies.forEach((reply, i) => assert.equal(reply, `client ${i}`));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const stats = JSON.parse(/stats (.*)/.exec(output())![1]) as { accepted: number; pauses: number; acceptErrors: number; wakeups: number };
    assert.equal(stats.accepted, 60);
    assert.ok(stats.pauses >= 1, 'accepting paused at least once');
    // Spinning on a level-triggered listener would take thousands of wake-ups.
    assert.ok(stats.wakeups < 2000, `${stats.wakeups} wake-ups`);
  });

  it('close() during an EMFILE pause cancels the pause: run() ends, nothing is left behind', () => {
    const reactor = new Reactor();
    const listener = new Listener(reactor, {}, echo);
    const { port } = listener.listen();
    // Use up this process's descriptors, then make one connection wait in the backlog.
    const client = binding.socket(constants.AF_INET, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
    binding.connect(client, '127.0.0.1', port);
    const hogs: number[] = [];
    try {
      for (;;) hogs.push(binding.socket(constants.AF_INET, constants.SOCK_STREAM));
    } catch (err) {
      if (!isSystemError(err, 'EMFILE')) throw err;
    }
    try {
      reactor.runOnce(5000);
      assert.equal(listener.stats.pauses, 1);
    } finally {
      for (const fd of hogs) binding.close(fd);
    }
    listener.close();
    reactor.run(); // Returns at once: no descriptor and no timer is left.
    reactor.close();
    binding.close(client);
  });

  describe('serving one port from several reactors (threads), and handing descriptors out', () => {
    /** The kernel's events mask for `fd` in epoll instance `epfd` (/proc/self/fdinfo). */
    function epollMask(epfd: number, fd: number): number {
      const line = fs.readFileSync(`/proc/self/fdinfo/${epfd}`, 'utf8').split('\n').find((l) => new RegExp(`^tfd:\\s+${fd}\\s`).test(l));
      if (!line) throw new Error(`fd ${fd} is not watched by epoll instance ${epfd}`);
      return parseInt(/events:\s*([0-9a-f]+)/.exec(line)![1], 16);
    }

    function sharedListeningSocket(): { fd: number; port: number } {
      const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM | constants.SOCK_NONBLOCK!);
      binding.bind(fd, '127.0.0.1', 0);
      binding.listen(fd, 64);
      return { fd, port: binding.getsockname(fd).port };
    }

    it('a shared descriptor: two listeners on two reactors both accept from it; close() leaves it open for its owner', async () => {
      const { fd, port } = sharedListeningSocket();
      const reactors = [new Reactor(), new Reactor()];
      const listeners = reactors.map((reactor) => new Listener(reactor, { fd, shared: true }, echo));
      try {
        listeners.forEach((l) => l.listen());
        for (const reactor of reactors) reactor.attach();
        // Serve through the first listener alone, then through the second alone: each accepts from the one descriptor.
        reactors[1].detach();
        const first = await client(port);
        first.end('one');
        assert.equal((await readAll(first)).toString(), 'one');
        listeners[0].close();
        assert.equal(listeners[0].listening, false);
        assert.equal(binding.getsockname(fd).port, port, 'still open after the first listener closed');
        reactors[1].attach();
        const second = await client(port);
        second.end('two');
        assert.equal((await readAll(second)).toString(), 'two');
        assert.equal(listeners[0].stats.accepted, 1);
        assert.equal(listeners[1].stats.accepted, 1);
        listeners[1].close();
        assert.equal(binding.getsockname(fd).port, port, 'still open after both closed: the owner closes it');
        await Promise.all([closed(first), closed(second)]);
      } finally {
        listeners.forEach((l) => l.close());
        reactors.forEach((r) => r.close());
        binding.close(fd);
      }
    });

    it('exclusive: on epoll the listening descriptor alone is registered with EPOLLEXCLUSIVE', function () {
      linuxFeature(this, binding.epoll_wait, 'EPOLLEXCLUSIVE');
      const { fd } = sharedListeningSocket();
      const reactor = new Reactor(new EpollSelector());
      const listener = new Listener(reactor, { fd, shared: true, exclusive: true }, echo);
      try {
        listener.listen();
        const epfd = (reactor.selector as EpollSelector).epfd;
        assert.equal(epollMask(epfd, fd) & constants.EPOLLEXCLUSIVE!, constants.EPOLLEXCLUSIVE);
      } finally {
        listener.close();
        reactor.close();
        binding.close(fd);
      }
    });

    it('exclusive on poll is refused at listen() with a RangeError; a shared descriptor stays open, an own one is closed', () => {
      const { fd } = sharedListeningSocket();
      const reactor = new Reactor(new PollSelector());
      const objects = openKernelObjects();
      try {
        assert.throws(() => new Listener(reactor, { fd, shared: true, exclusive: true }, echo).listen(), RangeError);
        assert.ok(binding.getsockname(fd).port > 0, 'the shared descriptor is still open');
        assert.throws(() => new Listener(reactor, { exclusive: true }, echo).listen(), RangeError);
        assert.deepEqual(leakedSince(objects), [], 'the listener\'s own socket was closed');
      } finally {
        reactor.close();
        binding.close(fd);
      }
    });

    it('onDescriptor: accepted descriptors are handed out as numbers with the peer\'s address; a throwing callee\'s descriptor is closed', async () => {
      const reactor = new Reactor();
      reactor.attach();
      const handed: { fd: number; peer: { address: string; port: number } }[] = [];
      const logged: string[] = [];
      let refuseNext = false;
      let announce!: () => void;
      const firstHanded = new Promise<void>((resolve) => {
        announce = resolve;
      });
      const listener = new Listener(reactor, {
        endpoint: { port: 0 },
        log: (line) => logged.push(line),
        onDescriptor: (fd, peer) => {
          if (refuseNext) throw new Error('no room');
          handed.push({ fd, peer });
          announce();
        },
      });
      const { port } = listener.listen();
      try {
        const socket = await client(port);
        await firstHanded;
        const [{ fd, peer }] = handed;
        assert.deepEqual(peer, { family: 'IPv4', address: '127.0.0.1', port: socket.localPort });
        assert.equal(reactor.has(fd), false, 'the listener does not watch what it handed out');
        assert.equal(binding.getsockopt(fd, constants.IPPROTO_TCP, constants.TCP_NODELAY), 1);
        // The number is ours now: write through it, then close it.
        binding.send(fd, Buffer.from('from the callee'));
        binding.close(fd);
        assert.equal((await readAll(socket)).toString(), 'from the callee');
        refuseNext = true;
        const refused = await client(port);
        await readAll(refused).catch(() => Buffer.alloc(0)); // closed by the listener: its end or a reset
        assert.match(logged.join('\n'), /descriptor handler threw: no room/);
        assert.equal(listener.stats.accepted, 2);
        refused.destroy();
        socket.destroy();
      } finally {
        listener.close();
        reactor.close();
      }
    });

    it('a Listener needs onConnection or onDescriptor (with both, adopt() serves handed-over descriptors as tracked connections); shared needs fd', () => {
      const reactor = new Reactor();
      const [mine, theirs] = socketPair();
      try {
        assert.throws(() => new Listener(reactor, {}), TypeError);
        assert.throws(() => new Listener(reactor, { onDescriptor: () => undefined }).adopt(mine), /adopt\(\) needs the onConnection/);
        const served: Connection[] = [];
        const both = new Listener(reactor, { onDescriptor: () => undefined }, (conn) => served.push(conn));
        const adopted = both.adopt(mine);
        assert.deepEqual(served, [adopted]);
        assert.equal(both.connectionCount, 1);
        adopted!.destroy();
        reactor.runOnce(0); // onClose, then the listener forgets it.
        assert.equal(both.connectionCount, 0);
        assert.throws(() => new Listener(reactor, { shared: true }, echo), /shared needs options.fd/);
      } finally {
        reactor.close();
        binding.close(theirs);
      }
    });
  });
});

describe('stream listener: tracking, maxConnections, shutdown', function () {
  this.timeout(30000);
  let before: Map<number, string>;
  let reactor: Reactor;
  beforeEach(() => {
    before = openKernelObjects();
    reactor = new Reactor();
    reactor.attach();
  });
  afterEach(() => {
    reactor.close();
    assert.deepEqual(leakedSince(before), []);
  });

  it('tracks its connections until each one closes (its onClose sees it gone); refuses and counts past maxConnections', async () => {
    const closes: Connection[] = [];
    let countInOnClose = -1;
    const listener = new Listener(reactor, { maxConnections: 2 }, (conn) => {
      echo(conn);
      conn.onClose = () => {
        closes.push(conn);
        countInOnClose = listener.connectionCount;
      };
    });
    const { port } = listener.listen();
    const [a, b] = await connectAll(port, 2);
    while (listener.connectionCount < 2) await new Promise((resolve) => setImmediate(resolve));
    assert.equal([...listener.connections].length, 2);
    const refused = await connectAll(port, 1); // The handshake completes in the backlog; the listener closes it.
    assert.equal((await readAll(refused[0])).length, 0, 'the one past the limit is closed at once');
    assert.equal(listener.stats.overLimit, 1);
    assert.equal(listener.stats.refused, 1);
    assert.equal(listener.connectionCount, 2);
    a.end();
    await closed(a);
    while (closes.length < 1) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(listener.connectionCount, 1, 'forgotten once closed');
    assert.equal(countInOnClose, 1, 'already gone in its onClose');
    assert.ok(!listener.connections.has(closes[0]));
    const [c] = await connectAll(port, 1); // Room again.
    while (listener.connectionCount < 2) await new Promise((resolve) => setImmediate(resolve));
    for (const s of [b, c, refused[0]]) s.destroy();
    await Promise.all([b, c, refused[0]].map(closed));
    while (listener.connectionCount > 0) await new Promise((resolve) => setImmediate(resolve));
    listener.close();
  });

  it('shutdown(graceMs, done): stops accepting, closes every connection gracefully, destroys a half-open one after the grace, calls done once, from the turn', async () => {
    const listener = new Listener(reactor, {}, echo);
    const { port } = listener.listen();
    const polite = await client(port);
    const stubborn = await client(port); // Half-open: never ends its side.
    while (listener.connectionCount < 2) await new Promise((resolve) => setImmediate(resolve));
    const stubbornEnded = new Promise((resolve) => { stubborn.once('end', resolve); stubborn.once('error', resolve); });
    const politeClosed = closed(polite);
    let doneCalls = 0;
    let inCall = true;
    const done = new Promise<void>((resolve) => listener.shutdown(100, () => {
      assert.equal(inCall, false, 'done never runs inside shutdown()');
      doneCalls++;
      resolve();
    }));
    inCall = false;
    assert.equal(listener.listening, false);
    polite.on('end', () => polite.end()); // Answers our end with its own: a graceful close.
    polite.resume();
    stubborn.resume();
    await done;
    assert.equal(doneCalls, 1);
    assert.equal(listener.connectionCount, 0);
    await Promise.all([politeClosed, stubbornEnded]);
    stubborn.destroy();
    await closed(stubborn);

    // No connection at all: done still comes from the turn, never inside the call.
    const empty = new Listener(reactor, {}, echo);
    empty.listen();
    let emptyInCall = true;
    const emptyDone = new Promise<void>((resolve) => empty.shutdown(0, () => {
      assert.equal(emptyInCall, false);
      resolve();
    }));
    emptyInCall = false;
    await emptyDone;
  });

  it("listens on 'localhost' (127.0.0.1, no lookup) and refuses other names with a clear TypeError", () => {
    const listener = new Listener(reactor, { endpoint: { host: 'localhost', port: 0 } }, echo);
    assert.equal(listener.listen().address, '127.0.0.1');
    listener.close();
    const named = new Listener(reactor, { endpoint: { host: 'example.com', port: 0 } }, echo);
    assert.throws(() => named.listen(), (e: Error & { code?: string }) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_VALUE' && /localhost/.test(e.message));
  });
});
