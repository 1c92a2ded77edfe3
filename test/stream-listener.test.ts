/**
 * The stream layer's Listener: it accepts until EAGAIN (a backlog is never stranded under
 * edge-triggered epoll), goes on past a failing per-connection setsockopt and per-connection accept
 * errors, pauses when the process is out of descriptors (EMFILE) and resumes by itself, and close()
 * cancels that pause.
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { binding, constants } from '../lib/native';
import { isSystemError, systemError } from '../lib/errors';
import { Reactor } from '../lib/reactor';
import { Listener, acceptErrorAction } from '../lib/stream/listener';
import { Connection } from '../lib/stream/connection';
import { Resources } from './fixtures/sockets';
import { makeSelector, selectorVariants } from './fixtures';
import { leakedSince, openKernelObjects, startChild } from './helpers';
import { closed, readAll } from './stream-fixtures';

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
});
