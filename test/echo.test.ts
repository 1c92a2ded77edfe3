/**
 * The echo server on every mechanism (epoll in both trigger modes) and both write strategies,
 * against real loopback clients. The server runs attached to this process's event loop; the
 * CLI tests run it blocking in a child process.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { binding, constants } from '../lib/native';
import { EchoServer, EchoServerOptions, WriteStrategy } from '../lib/echo/server';
import { Reactor } from '../lib/reactor';
import { AttachVariant, attachVariants, makeSelector } from './fixtures';
import { concurrentEcho, echoOnce, random, randomBytes, waitFor } from './echo-clients';
import { descriptorLimit, leakedSince, openKernelObjects } from './helpers';

function startServer(variant: AttachVariant, write: WriteStrategy, options: EchoServerOptions = {}): { server: EchoServer; port: number } {
  const reactor = new Reactor(makeSelector(variant));
  const server = new EchoServer({ reactor, write, edge: variant.options.edgeTriggered, ...options });
  const { port } = server.listen();
  reactor.attach({ via: variant.via });
  assert.equal(reactor.attachedVia, variant.via);
  return { server, port };
}

function stop(server: EchoServer): void {
  server.close();
  server.reactor.close();
}

for (const variant of attachVariants()) {
  for (const write of ['queued', 'direct'] as WriteStrategy[]) {
    describe(`echo server: ${variant.name}, ${write} writes`, function () {
      this.timeout(60000);
      let before: Map<number, string>;
      let server: EchoServer;
      let port: number;

      beforeEach(() => {
        before = openKernelObjects();
        ({ server, port } = startServer(variant, write, { highWater: 256 * 1024, readSize: 64 * 1024 }));
      });

      afterEach(() => {
        // Every client of a test has closed by the time it ends: nothing to wait for.
        stop(server);
        assert.deepEqual(leakedSince(before), []);
      });

      it('200 concurrent clients with random sizes (1 B to 256 KiB) and random split points get back exactly their bytes', async () => {
        const total = await concurrentEcho({ port }, 200, 256 * 1024, 862);
        await waitFor(() => server.stats.connections === 0, 5000, 'all connections to close');
        const stats = server.stats;
        assert.equal(stats.accepted, 200);
        assert.equal(stats.closed, 200);
        assert.equal(stats.bytesIn, total);
        assert.equal(stats.bytesOut, total);
      });

      it('half-close: a client that shuts down its write side receives everything, then end-of-stream', async () => {
        const payload = randomBytes(random(7), 3 * 1024 * 1024 + 17);
        const reply = await echoOnce({ port }, payload, random(8), 40);
        assert.ok(reply.equals(payload));
      });

      it('a client that resets (SO_LINGER 0) is dropped without affecting the others', async () => {
        const fd = binding.socket(constants.AF_INET, constants.SOCK_STREAM);
        binding.connect(fd, '127.0.0.1', port);
        await waitFor(() => server.stats.accepted === 1, 5000, 'the server to accept');
        binding.send(fd, Buffer.alloc(1000, 1));
        binding.setsockopt(fd, constants.SOL_SOCKET, constants.SO_LINGER, { onoff: true, linger: 0 });
        binding.close(fd);
        const survivors = concurrentEcho({ port }, 10, 64 * 1024, 99);
        await survivors;
        await waitFor(() => server.stats.connections === 0, 5000, 'the reset connection to be dropped');
        assert.equal(server.stats.closed, 11);
      });

      it('a client that sends 64 MiB without reading is held to the high-water mark plus one read, and others are still served', async () => {
        const highWater = 256 * 1024;
        const readSize = 64 * 1024;
        const total = 64 * 1024 * 1024;
        const hog = net.connect(port, '127.0.0.1');
        hog.pause(); // Never read, for now.
        const sentHash = createHash('sha256');
        const block = randomBytes(random(64), 1024 * 1024);
        await new Promise<void>((resolve) => hog.on('connect', resolve));
        for (let sent = 0; sent < total; sent += block.length) {
          sentHash.update(block);
          hog.write(block);
        }
        hog.end();
        // The server stops reading once the hog's queue is full: bytesIn stops growing.
        let last = -1;
        await waitFor(() => {
          const now = server.stats.bytesIn;
          const settled = now === last && now > 0;
          last = now;
          return settled;
        }, 10000, 'the server to stop reading the hog');
        assert.ok(server.stats.bytesIn < total, 'the server must not have swallowed everything');
        // Others keep being served meanwhile.
        await concurrentEcho({ port }, 20, 32 * 1024, 5);
        assert.ok(server.stats.maxQueued <= highWater + readSize, `a queue reached ${server.stats.maxQueued} bytes`);
        // Now read: every byte comes back, in order.
        const receivedHash = createHash('sha256');
        let received = 0;
        await new Promise<void>((resolve, reject) => {
          hog.on('data', (chunk: Buffer) => {
            received += chunk.length;
            receivedHash.update(chunk);
          });
          hog.on('close', () => resolve());
          hog.on('error', reject);
          hog.resume();
        });
        assert.equal(received, total);
        assert.equal(receivedHash.digest('hex'), sentHash.digest('hex'));
        assert.ok(server.stats.maxQueued <= highWater + readSize, `a queue reached ${server.stats.maxQueued} bytes`);
      });
    });
  }
}

describe('echo server: many connections', function () {
  this.timeout(60000);

  for (const variant of attachVariants().filter((v) => v.mechanism !== 'select')) {
    it(`${variant.name}: 1000 simultaneous connections are all served`, async function () {
      if (descriptorLimit() < 2200) throw new Error(`needs a descriptor limit of 2200 (ulimit -n); it is ${descriptorLimit()}`);
      const before = openKernelObjects();
      const { server, port } = startServer(variant, 'queued');
      try {
        await concurrentEcho({ port }, 1000, 2048, 1000);
        await waitFor(() => server.stats.connections === 0, 5000, 'all connections to close');
        assert.equal(server.stats.accepted, 1000);
        assert.equal(server.stats.refused, 0);
      } finally {
        stop(server);
      }
      assert.deepEqual(leakedSince(before), []);
    });
  }

  it('select: connections whose descriptor would reach FD_SETSIZE are refused cleanly; the rest are served', async function () {
    if (descriptorLimit() < 2600) throw new Error(`needs a descriptor limit of 2600 (ulimit -n); it is ${descriptorLimit()}`);
    const before = openKernelObjects();
    const logged: string[] = [];
    const { server, port } = startServer({ name: 'select', mechanism: 'select', options: {}, via: 'wait-thread' }, 'queued', { log: (l) => logged.push(l) });
    const clients: net.Socket[] = [];
    try {
      // Hold 1100 connections open at once: server-side descriptors pass 1024 (the clients' too).
      const outcomes = await Promise.all(Array.from({ length: 1100 }, () => new Promise<'served' | 'refused'>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        clients.push(socket);
        let got = 0;
        socket.on('connect', () => socket.write('ping'));
        socket.on('data', (d) => {
          got += d.length;
          if (got === 4) resolve('served');
        });
        socket.on('end', () => resolve(got === 4 ? 'served' : 'refused'));
        socket.on('error', () => resolve('refused'));
      })));
      const served = outcomes.filter((o) => o === 'served').length;
      const refused = outcomes.length - served;
      assert.ok(refused > 0, 'some connections must be refused');
      assert.ok(served > 500, `only ${served} served`);
      assert.equal(server.stats.refused, refused);
      assert.ok(logged.some((l) => /FD_SETSIZE/.test(l)), 'refusals are logged with the reason');
      // Still alive and serving.
      for (const c of clients) c.destroy();
      await waitFor(() => server.stats.connections === 0, 10000, 'connections to close');
      await concurrentEcho({ port }, 5, 1024, 3);
    } finally {
      const gone = clients.map((c) => new Promise((resolve) => (c.closed ? resolve(null) : c.once('close', resolve))));
      for (const c of clients) c.destroy();
      stop(server);
      await Promise.all(gone);
    }
    assert.deepEqual(leakedSince(before), []);
  });
});

describe('echo server: graceful shutdown', function () {
  this.timeout(30000);
  for (const variant of attachVariants()) {
    it(`${variant.name}: shutdown() delivers every reply to a slow reader, then end-of-stream (no reset)`, async () => {
      const before = openKernelObjects();
      const { server, port } = startServer(variant, 'queued', { highWater: 64 * 1024 });
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((r) => socket.on('connect', r));
      socket.pause();
      socket.write(randomBytes(random(3), 1024 * 1024));
      // Let the server read what it can and fill its queue toward this paused reader.
      await waitFor(() => server.stats.maxQueued > 0, 5000, 'the server to queue replies');
      let drained = false;
      server.shutdown(() => { drained = true; });
      const received: Buffer[] = [];
      const outcome = new Promise<string>((resolve) => {
        socket.on('data', (d: Buffer) => received.push(d));
        socket.on('end', () => { socket.end(); resolve('end'); });
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
      socket.resume();
      assert.equal(await outcome, 'end');
      await waitFor(() => drained, 5000, 'shutdown to report every connection closed');
      assert.equal(Buffer.concat(received).length, server.stats.bytesIn, 'every byte read was echoed before the close');
      stop(server);
      const gone = new Promise((resolve) => (socket.closed ? resolve(null) : socket.once('close', resolve)));
      socket.destroy();
      await gone;
      assert.deepEqual(leakedSince(before), []);
    });
  }
});
