/**
 * The write queue's memory follows what is queued, not how many writes were made: a producer that
 * follows the documented flow control (write until false, go on at onDrain) keeps the queue between
 * its low and high water marks, never empty, for a million writes; the item storage stays bounded.
 * Level- and edge-triggered, over a real socket with a small send buffer (so the queue never empties).
 */
import * as assert from 'node:assert/strict';
import { constants, binding } from '../lib/native';
import { Reactor } from '../lib/reactor';
import { createSelector } from '../lib/selectors/default';
import { Connection } from '../lib/stream/connection';
import { leakedSince, openKernelObjects } from './helpers';
import { client, closed, serve } from './stream-fixtures';

// The private array itself (also how the test reads it on code without storageLength).
const storageOf = (conn: Connection): number => (conn as unknown as { queue: { items: unknown[] } }).queue.items.length;

const variants = binding.epoll_wait
  ? [{ name: 'epoll', edge: false }, { name: 'epoll-et', edge: true }]
  : [{ name: 'poll', edge: false }];

for (const variant of variants) {
  describe(`stream write queue: ${variant.name}`, function () {
    this.timeout(120000);

    it('1,000,000 writes of 100 bytes swinging between low and high water: the item storage stays bounded and every byte arrives', async () => {
      const before = openKernelObjects();
      const reactor = new Reactor(createSelector(variant.name === 'poll' ? 'poll' : 'epoll', { edgeTriggered: variant.edge }));
      reactor.attach();
      const writes = 1_000_000;
      const chunk = Buffer.alloc(100, 0x61);
      const highWater = 64 * 1024;
      let made = 0;
      let swings = 0;
      let emptyAtDrain = 0;
      let maxStorage = 0;
      const pump = (conn: Connection): void => {
        while (made < writes) {
          made++;
          if (!conn.write(chunk)) return;
        }
        conn.end();
      };
      const served = serve(reactor, (conn) => {
        // A send buffer far below lowWater: each flush moves less than the queue holds, so it never empties.
        binding.setsockopt(conn.fd, constants.SOL_SOCKET, constants.SO_SNDBUF, 4096);
        conn.onDrain = function () {
          swings++;
          if (this.writableLength === 0) emptyAtDrain++;
          maxStorage = Math.max(maxStorage, storageOf(this));
          pump(this);
        };
        pump(conn);
      }, { connection: { highWater, lowWater: highWater / 4 } });
      const socket = await client(served.port);
      const conn = await served.next();
      let received = 0;
      socket.on('data', (d: Buffer) => { received += d.length; });
      await new Promise((resolve) => socket.once('end', resolve));
      socket.end();
      await closed(socket);
      while (!conn.closed) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(received, writes * chunk.length, 'every byte arrived');
      assert.ok(swings > 100, `the queue swung between the marks (${swings} drains)`);
      assert.ok(emptyAtDrain < swings / 2, `the queue was mostly non-empty at drain (${emptyAtDrain} of ${swings} empty)`);
      // At most ~655 chunks are queued at once (64 KiB of 100 bytes), plus one read's worth: the
      // compacting array stays within a small multiple of that, never a slot per write.
      const live = Math.ceil(highWater / chunk.length) + 1;
      assert.ok(maxStorage <= 4 * live, `item storage ${maxStorage} slots for at most ${live} queued chunks`);
      assert.ok(storageOf(conn) <= 4 * live);
      served.listener.close();
      reactor.close();
      assert.deepEqual(leakedSince(before), []);
    });
  });
}
